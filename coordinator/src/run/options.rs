//! What `coordinator run` was asked ([`RunOptions`]) and how the scenario
//! file becomes a [`Scenario`] (with `--set` overrides). May import
//! `discovery` (the remote agents' settings) and `metrics`.

use std::path::{Path, PathBuf};

use common::scenario::{self, Override, Scenario};
use tokio_util::sync::CancellationToken;

use crate::discovery::Remote;
use crate::error::CliError;
use crate::metrics::RunMetrics;

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
    /// Cancelled to stop the run early (SIGINT at the command line): the
    /// agents are stopped and the report so far is written, verdict
    /// `incomplete`. Never cancelled by default.
    pub shutdown: CancellationToken,
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
