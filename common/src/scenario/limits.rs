//! The bounds a scenario stays within; validation refuses anything past
//! them. Imports nothing.

/// Largest scenario file read; a scenario is a few KiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most producer plus consumer instances in one scenario.
pub const MAX_INSTANCES: u64 = 100_000;
/// Highest rate of one producer, messages per second.
pub const MAX_RATE_PER_PRODUCER: f64 = 10_000_000.0;
/// Largest message payload.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;
