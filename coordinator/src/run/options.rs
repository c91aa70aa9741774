//! What `coordinator run` was asked ([`RunOptions`]) and how the scenario
//! file becomes a [`Scenario`] (with `--set` overrides). May import
//! `discovery` (the remote agents' settings), `metrics` and `ui` (the
//! dashboard a run feeds).

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Cancelled to stop the run early (SIGINT at the command line): the
    /// agents are stopped and the report so far is written, verdict
    /// `incomplete`. Never cancelled by default.
    pub shutdown: CancellationToken,
    /// `--ui`: the live dashboard this run feeds and takes run control from.
    pub ui: Option<UiHook>,
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
