//! What `coordinator run` was asked ([`RunOptions`]), how it is stopped
//! from outside ([`Shutdown`]), and how the scenario file becomes a
//! [`Scenario`] (with `--set` overrides). May import `discovery` (the
//! remote agents' settings), `metrics` and `ui` (the dashboard a run feeds).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::scenario::{self, Override, Scenario};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::discovery::Remote;
use crate::error::CliError;
use crate::metrics::RunMetrics;
use crate::ui::{ControlRequest, Dashboard};

/// What `coordinator run` was asked. `Default` leaves `scenario` empty and
/// `local_agents` at 0: set what the run needs (tests use `..Default::default()`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub agents: Vec<String>,
    pub local_agents: usize,
    pub results: Option<PathBuf>,
    pub quiet: bool,
    /// No colour in the live view (also when NO_COLOR is set).
    pub no_color: bool,
    /// Feed these metrics (served by `--metrics`) while running.
    pub metrics: Option<RunMetrics>,
    /// How to find and reach remote agents (`--agents-dns`, token, TLS).
    pub remote: Remote,
    /// `--ceiling`: search for the highest rate within the SLOs (as `mode: ceiling`).
    pub ceiling: bool,
    /// Stops the run early (SIGTERM, SIGINT at the command line): the load
    /// stops, consumers drain for `interrupt_drain`, and the report so far
    /// is written, verdict `interrupted`. Never triggered by default.
    pub shutdown: Shutdown,
    /// `--interrupt-drain`: how long consumers may drain after an
    /// interruption (None: [`DEFAULT_INTERRUPT_DRAIN`]), whatever the
    /// scenario's drain timeout.
    pub interrupt_drain: Option<Duration>,
    /// `--ui`: the live dashboard this run feeds and takes run control from.
    pub ui: Option<UiHook>,
}

/// `--interrupt-drain`'s default.
pub const DEFAULT_INTERRUPT_DRAIN: Duration = Duration::from_secs(5);

impl RunOptions {
    /// Where run `run_id` writes its results: `--results DIR` (default
    /// `./results`), then the run id.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.results.clone().unwrap_or_else(|| PathBuf::from("results")).join(run_id)
    }

    pub fn interrupt_drain(&self) -> Duration {
        self.interrupt_drain.unwrap_or(DEFAULT_INTERRUPT_DRAIN)
    }

    /// The one-line error of a run interrupted before any agent ran load
    /// and before anything could be reported (`doing`: when).
    pub fn interrupted_early(&self, doing: &str) -> CliError {
        let (signal, _) = self.shutdown.cause();
        CliError::Interrupted(format!("interrupted by {signal} {doing}: no load ran, nothing to report"))
    }
}

/// How a run is stopped from outside, in two levels: `stop` at the first
/// request (the load stops, consumers drain briefly, the report is
/// written), `now` at the second (what is left of the drain is skipped).
/// The binary's signal handlers call [`Shutdown::request`]; the run only
/// reads the tokens.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub stop: CancellationToken,
    pub now: CancellationToken,
    first: Arc<OnceLock<(String, Instant)>>,
}

impl Shutdown {
    /// A stop request (`cause`: the signal's name): the first cancels
    /// `stop`, any later one `now`.
    pub fn request(&self, cause: &str) {
        if self.first.set((cause.to_string(), Instant::now())).is_ok() {
            self.stop.cancel();
        } else {
            self.now.cancel();
        }
    }

    /// What the first request was and when it came; a `stop` cancelled
    /// directly reads as "stop request", now.
    pub fn cause(&self) -> (String, Instant) {
        self.first.get().cloned().unwrap_or_else(|| ("stop request".to_string(), Instant::now()))
    }
}

/// `--ui`: the dashboard a run feeds (every merged interval, its agents,
/// notes, control events) and the page's control requests, which the run
/// loop answers while it follows the run.
#[derive(Debug, Clone)]
pub struct UiHook {
    pub dashboard: Arc<Dashboard>,
    pub requests: Arc<Mutex<mpsc::Receiver<ControlRequest>>>,
}

/// Loads and validates the scenario at `path` with `--set KEY=VALUE` overrides.
pub fn load_scenario(path: &Path, sets: &[String]) -> Result<Scenario, CliError> {
    let overrides = sets
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    scenario::load_file(path, &overrides).map_err(|e| CliError::BadInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_stops_the_second_hurries() {
        let s = Shutdown::default();
        let seen_by_the_run = s.clone();
        assert!(!seen_by_the_run.stop.is_cancelled());
        s.request("SIGTERM");
        assert!(seen_by_the_run.stop.is_cancelled() && !seen_by_the_run.now.is_cancelled());
        s.request("SIGINT");
        assert!(seen_by_the_run.now.is_cancelled());
        assert_eq!(seen_by_the_run.cause().0, "SIGTERM", "the first request names the cause");
    }

    #[test]
    fn a_run_dir_is_under_results_or_the_given_directory() {
        let mut o = RunOptions::default();
        assert_eq!(o.run_dir("r1"), PathBuf::from("results/r1"));
        o.results = Some(PathBuf::from("/tmp/x"));
        assert_eq!(o.run_dir("r1"), PathBuf::from("/tmp/x/r1"));
        assert_eq!(o.interrupt_drain(), DEFAULT_INTERRUPT_DRAIN);
    }
}
