//! What the bare client loops (`pulsar-bare`, `danube-bare`) share: their
//! `--flag value` arguments, how they give up, and running their producer
//! loops to the one JSON line they print.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

/// The command line, read as `--flag value` pairs and `--switch`es.
pub struct Flags(Vec<String>);

impl Flags {
    pub fn from_env() -> Flags {
        Flags(std::env::args().collect())
    }

    /// The value after `flag`, when it is there.
    pub fn get(&self, flag: &str) -> Option<String> {
        self.0.iter().position(|a| a == flag).and_then(|i| self.0.get(i + 1)).cloned()
    }

    /// The value after `flag`, which must be there.
    pub fn required(&self, flag: &str) -> Result<String, String> {
        self.get(flag).ok_or_else(|| format!("{flag} is required"))
    }

    /// The number after `flag`, or `default` when the flag is not there.
    pub fn num(&self, flag: &str, default: f64) -> Result<f64, String> {
        self.get(flag).map(|s| s.parse::<f64>().map_err(|_| format!("{flag}: not a number"))).unwrap_or(Ok(default))
    }

    /// Whether the switch `flag` is given.
    pub fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|a| a == flag)
    }
}

/// Says `bin: why` on stderr and exits with `code` (2: bad arguments,
/// 3: the broker or the client refused).
pub fn fail(bin: &str, code: i32, why: impl Display) -> ! {
    eprintln!("{bin}: {why}");
    std::process::exit(code)
}

/// Runs every producer loop on a task of its own until all have ended, each
/// answering (acknowledged, errors), and prints one JSON line: the sums, the
/// seconds since `start` and the acknowledged rate over them.
pub async fn run_loops<F>(loops: impl IntoIterator<Item = F>, start: Instant)
where
    F: Future<Output = (u64, u64)> + Send + 'static,
{
    let tasks: Vec<_> = loops.into_iter().map(tokio::spawn).collect();
    let (mut acked, mut errors) = (0u64, 0u64);
    for t in tasks {
        if let Ok((x, e)) = t.await {
            acked += x;
            errors += e;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"acked\": {acked}, \"errors\": {errors}, \"seconds\": {secs:.3}, \"rate_msgs_per_s\": {:.1}}}",
        acked as f64 / secs
    );
}
