//! Shared by the coordinator and the agent: the scenario model and its
//! validation, sharding, the histogram codec, the message stamp, sequence
//! range sets, the clock, the report model and the wire contract between
//! coordinator and agent (`wire`). Holds driver settings as plain data and
//! never depends on a broker client crate.

pub mod clock;
pub mod errors;
pub mod hist;
pub mod metrics;
pub mod percentile;
pub mod plan;
pub mod rangeset;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod schedule;
pub mod stamp;
pub mod stats;
pub mod units;
pub mod wire;

/// Generated protocol types (`proto/loadgen/v1/agent.proto`).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("loadgen.v1");
}

/// Bumped only for a protocol change an older peer cannot safely ignore.
pub const PROTOCOL_VERSION: u32 = 1;

/// The shard encoding carried in `Prepare.shard_format`.
pub const SHARD_FORMAT_JSON_V1: &str = "json/v1";

/// Version of this build, reported in `HelloAck` and report.json.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
