//! What the coordinator and the agent must agree on beyond the generated
//! protocol types (`crate::proto`, versioned by `crate::PROTOCOL_VERSION`):
//! the shared token every call carries (`auth.rs`), the HTTP/2 keepalive
//! both ends set, the largest message either accepts, and the TLS client
//! settings the coordinator dials agents with (`tls.rs`; the agent's
//! server side stays in the agent). Imports nothing of the crate.

mod auth;
pub mod tls;

use std::time::Duration;

pub use auth::{Token, TokenError, AUTH_HEADER, MIN_TOKEN_LEN};

/// Largest gRPC message either side accepts (final reports carry range sets).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// HTTP/2 PINGs on every connection, so a peer that vanished without a
/// FIN/RST (cut link, frozen host) is noticed.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How long an HTTP/2 PING may go unanswered before the connection is dropped.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
