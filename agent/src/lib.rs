//! The load-generating agent: a gRPC server that runs its shard of a
//! scenario against a broker and streams results to the coordinator.
//! The binary (`src/main.rs`) only parses flags and calls [`server::serve`].

pub mod driver;
pub mod engine;
pub mod metrics;
pub mod payload;
pub mod procstat;
pub mod safety;
pub mod server;
pub mod tls;

pub use server::{serve, serve_with_health, AgentOptions};
