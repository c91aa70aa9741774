//! The tokio runtime both binaries run on: tokio's default multi-thread
//! runtime with 8 MiB worker stacks instead of 2 MiB. The `pulsar` crate's
//! futures hold its command structs by value (several KB each, see
//! BENCHMARKS.md "The crate's floor, profiled"), and a producer that has to
//! retry its creation nests them deep enough that an unoptimised build
//! overflowed a 2 MiB worker stack (agent under test, fresh Apache Pulsar
//! standalone: "thread 'tokio-rt-worker' has overflowed its stack").
//! Release builds stayed far below it; the margin costs only address space.

/// Worker thread stack size.
pub const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

/// The runtime of `agent` and `coordinator`.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(WORKER_STACK_BYTES).build()
}
