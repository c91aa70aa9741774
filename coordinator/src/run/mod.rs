//! `coordinator run`: find the agents (given with `--agents`, discovered by
//! DNS, or started in-process), then one run on them or a ceiling search of
//! many runs, and write the results directory.
//!
//! One run flows through these files, in order:
//! - [`options`]: what the run was asked ([`RunOptions`]), the scenario;
//! - [`local`]: in-process agents on loopback (no `--agents`);
//! - [`step`]: one complete run, phase by phase (connect, prepare, start,
//!   follow, drain, finish), using
//!   - [`connect`]: the sessions, opened many at a time;
//!   - [`events`]: the agents' streams merged into one channel;
//!   - [`agents`]: the agents of a started run: alive, lost, last heard;
//!   - [`progress`]: drain accounting per consumer group;
//!   - [`merging`]: interval reports merged as they arrive;
//!   - [`follow`]: the interval loop; [`drain`]: stop, final reports;
//!   - [`control`]: run control (rate, pause, resume, stop) from the
//!     dashboard, applied by every agent at one instant;
//!   - [`live`]: what the dashboard is fed while the run follows.
//!
//! A stop request (SIGTERM, SIGINT: [`Shutdown`]) while looking for the
//! agents or creating topics ends the run with one line (exit 4).
//!
//! This file may import all of them, `ceiling`, `discovery`, `journal`,
//! `pulsar_admin` and `report::results`; none of them imports this file
//! but for [`run_id`].

mod agents;
mod connect;
mod control;
mod drain;
mod events;
mod follow;
mod live;
mod local;
mod merging;
mod options;
mod progress;
mod step;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::report::Report;
use common::scenario::Scenario;
use tracing::{info, warn};

pub use local::LocalAgents;
pub use options::{load_scenario, RunOptions, Shutdown, UiHook, DEFAULT_INTERRUPT_DRAIN};

use crate::ceiling;
use crate::discovery;
use crate::error::CliError;

pub struct RunOutcome {
    pub report: Report,
    pub dir: PathBuf,
}

/// `<date>-<time>-<scenario name>-<4 hex digits>`: unique, sortable, readable.
fn run_id(name: &str) -> String {
    let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let ts: String = ts.chars().filter(|c| c.is_ascii_digit()).collect();
    let (date, time) = ts.split_at(8.min(ts.len()));
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(40)
        .collect();
    format!("{date}-{time}-{slug}-{:04x}", rand::random::<u16>())
}

pub async fn run(mut opts: RunOptions) -> Result<RunOutcome, CliError> {
    // `--ceiling` is `mode: ceiling`: the scenario's `ceiling:` block, or
    // defaults, and `--set ceiling.*` apply.
    let sets: Vec<String> = if opts.ceiling {
        std::iter::once("mode=ceiling".to_string()).chain(opts.sets.iter().cloned()).collect()
    } else {
        opts.sets.clone()
    };
    let sc = load_scenario(&opts.scenario, &sets)?;
    until_stopped(&opts, "while creating the topics", prepare_broker_topics(&sc)).await?;
    let local = if opts.agents.is_empty() && opts.remote.agents_dns.is_none() {
        if opts.local_agents == 0 {
            return Err(CliError::BadInput("--local-agents must be at least 1".into()));
        }
        if opts.remote.tls.take().is_some() {
            warn!("the --tls-* flags are for remote agents (--agents, --agents-dns); local agents speak plaintext on loopback");
        }
        Some(LocalAgents::start(opts.local_agents).await?)
    } else {
        None
    };
    // Agents found by name prove that name (their addresses are pod IPs).
    if let (Some(tls), Some(target)) = (opts.remote.tls.as_mut(), &opts.remote.agents_dns) {
        if tls.domain.is_none() {
            tls.domain = Some(crate::session::host_of(target).to_string());
        }
    }
    let addresses = match &local {
        Some(l) => l.addresses.clone(),
        None => until_stopped(&opts, "while looking for the agents", remote_addresses(&opts)).await?,
    };
    let result = if opts.ceiling || sc.ceiling.is_some() {
        ceiling_search(&opts, sc, &addresses).await
    } else {
        match step::run_step(&opts, sc, &addresses, opts.quiet, Duration::ZERO).await {
            Ok(s) => write_results(&opts, s.report).inspect(|out| {
                if let Some(j) = s.journal {
                    end_journal(j, &out.report.verdict);
                }
            }),
            Err(e) => Err(e),
        }
    };
    if let Some(l) = local {
        // Bounded: an interrupted run must end within its grace period.
        if tokio::time::timeout(LOCAL_STOP_GRACE, l.stop()).await.is_err() {
            warn!("the local agents did not stop within {LOCAL_STOP_GRACE:?}");
        }
    }
    if let Some(u) = &opts.ui {
        u.dashboard.end(match &result {
            Ok(o) => serde_json::json!({"verdict": o.report.verdict, "results": o.dir.display().to_string()}),
            Err(e) => serde_json::json!({"verdict": "error", "error": e.to_string()}),
        });
    }
    result
}

/// How long the in-process agents may take to stop at the end.
const LOCAL_STOP_GRACE: Duration = Duration::from_secs(3);

/// `fut`, unless the run is stopped first (SIGTERM, SIGINT): then
/// interrupted, nothing to report (`doing` says when).
async fn until_stopped<T>(
    opts: &RunOptions,
    doing: &str,
    fut: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::select! {
        r = fut => r,
        _ = opts.shutdown.stop.cancelled() => Err(opts.interrupted_early(doing)),
    }
}

/// The journal of a run whose report.json is written: its last line.
fn end_journal(j: crate::journal::Journal, verdict: &str) {
    if let Err(e) = j.end(verdict) {
        warn!(error = %e, "cannot end the run journal");
    }
}

/// `--agents`, or every address `--agents-dns` resolves to.
async fn remote_addresses(opts: &RunOptions) -> Result<Vec<String>, CliError> {
    let Some(target) = &opts.remote.agents_dns else {
        return Ok(opts.agents.clone());
    };
    let timeout = opts.remote.discovery_timeout.unwrap_or(discovery::DEFAULT_TIMEOUT);
    let found = discovery::discover(target, opts.remote.expect_agents, timeout, discovery::system_lookup)
        .await
        .map_err(|e| CliError::CannotComplete(e.to_string()))?;
    info!(target = %target, agents = found.len(), "agents discovered");
    Ok(found)
}

/// `broker.admin_url`: the scenario's partitioned topics created (or
/// checked) through the Pulsar admin API before any agent prepares.
async fn prepare_broker_topics(sc: &Scenario) -> Result<(), CliError> {
    let Some(admin) = sc.broker.admin_url.as_deref() else { return Ok(()) };
    let budget = crate::pulsar_admin::budget(&sc.broker, sc.topics.len());
    let done = tokio::time::timeout(budget, crate::pulsar_admin::prepare_topics(&sc.broker, admin, &sc.topics))
        .await
        .map_err(|_| {
            CliError::CannotComplete(format!(
                "the Pulsar admin API at {admin} did not finish within {}",
                common::units::format_duration(budget)
            ))
        })?
        .map_err(|e| CliError::CannotComplete(e.to_string()))?;
    info!(created = ?done.created, existing = ?done.existing, admin, "topics ready");
    Ok(())
}

/// A ceiling search on `addresses`: one [`step::run_step`] per step; the
/// report of the best step written. Each step keeps a journal in its own
/// directory while it runs (removed when the step ends: a killed search
/// leaves the journal of the step it was in).
async fn ceiling_search(opts: &RunOptions, sc: Scenario, addresses: &[String]) -> Result<RunOutcome, CliError> {
    let run_one = |sc: Scenario, busy_retry: Duration| async move {
        let ran = step::run_step(opts, sc, addresses, true, busy_retry).await?;
        if let Some(j) = ran.journal {
            let dir = opts.run_dir(&ran.report.run_id);
            end_journal(j, &ran.report.verdict);
            let _ = std::fs::remove_file(dir.join(crate::journal::FILE));
            let _ = std::fs::remove_dir(&dir);
        }
        Ok::<_, CliError>(ceiling::Step { report: ran.report, cpus: ran.cpus })
    };
    let report = ceiling::search(sc, &opts.scenario, opts.quiet, addresses.len(), run_one).await?;
    write_results(opts, report)
}

/// Writes `results/<run-id>/` (or `--results DIR`).
fn write_results(opts: &RunOptions, report: Report) -> Result<RunOutcome, CliError> {
    let dir = opts.run_dir(&report.run_id);
    crate::report::results::write(&dir, &report)
        .map_err(|e| CliError::CannotComplete(format!("cannot write results to {}: {e}", dir.display())))?;
    info!(dir = %dir.display(), "results written");
    Ok(RunOutcome { report, dir })
}
