//! One complete run on a set of agents, merged into a report; nothing
//! written (`run` writes it, a ceiling search judges it). The phases, in
//! order ([`RunStep::run`]): connect (sessions, Hello, clock sync), plan
//! (shards), prepare (every agent subscribes and creates its producers:
//! a barrier), start (one instant for all), follow (the interval loop),
//! drain (stop, final reports), finish (the report).
//!
//! May import the other stages of `run` except `mod.rs` (`connect`,
//! `events`, `agents`, `follow`, `drain`), and `merge`, `report::console`,
//! `session`.

use std::time::{Duration, Instant, SystemTime};

use common::clock;
use common::plan::{self, AgentSlot, Plan};
use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage};
use common::report::Report;
use common::scenario::Scenario;
use tokio::sync::mpsc;

use super::agents::Agents;
use super::connect::{self, Caller};
use super::events::{self, Event, Inbound};
use super::follow::Running;
use super::options::RunOptions;
use crate::error::CliError;
use crate::merge;
use crate::report::console::{self, Console};
use crate::session::AgentSession;

/// What one step gives: its report, and the CPUs of each agent's host
/// (from its Hello), in `report.agents` order.
pub(super) struct StepOutcome {
    pub report: Report,
    pub cpus: Vec<u32>,
}

/// The start instant is at least this far ahead of Start (and four round
/// trips to the slowest agent).
const START_AHEAD_NS: i64 = 300_000_000;

/// One run on `addresses`: see the module doc. `quiet` silences the
/// console; an agent still busy is asked again for `busy_retry`.
pub(super) async fn run_step(
    opts: &RunOptions,
    sc: Scenario,
    addresses: &[String],
    quiet: bool,
    busy_retry: Duration,
) -> Result<StepOutcome, CliError> {
    RunStep::new(opts, sc, quiet).run(addresses, busy_retry).await
}

/// What every phase of one run reads.
struct RunStep<'a> {
    opts: &'a RunOptions,
    sc: Scenario,
    run_id: String,
    coordinator_id: String,
    out: Console,
    /// When the run began (its setup time is reported).
    began: Instant,
}

impl<'a> RunStep<'a> {
    fn new(opts: &'a RunOptions, sc: Scenario, quiet: bool) -> RunStep<'a> {
        let began = Instant::now();
        let run_id = super::run_id(&sc.name);
        let coordinator_id = format!("coordinator-{}", std::process::id());
        let mode = console::Mode::detect(quiet);
        let out = Console::for_run(mode, console::color_wanted(opts.no_color), &sc, &run_id, opts.metrics.clone());
        RunStep { opts, sc, run_id, coordinator_id, out, began }
    }

    /// Every phase, in order.
    async fn run(&self, addresses: &[String], busy_retry: Duration) -> Result<StepOutcome, CliError> {
        let mut sessions = self.connect(addresses, busy_retry).await?;
        let plan = self.plan(&sessions)?;
        let mut events = events::forward(&mut sessions);
        self.prepare(&sessions, &plan, &mut events).await?;
        let setup_s = self.began.elapsed().as_secs_f64();
        let start_ns = self.start(&sessions).await?;
        let mut run = Running::new(&self.sc, &self.out, Agents::new(sessions, &plan, &self.sc), start_ns);
        run.follow(&mut events, &self.opts.shutdown).await;
        run.drain(&mut events).await;
        Ok(self.finish(run, setup_s))
    }

    /// Sessions with every agent, each able to drive the scenario's broker.
    async fn connect(&self, addresses: &[String], busy_retry: Duration) -> Result<Vec<AgentSession>, CliError> {
        let caller = Caller { run_id: &self.run_id, coordinator_id: &self.coordinator_id, remote: &self.opts.remote };
        let sessions = connect::open_all(addresses, &caller, busy_retry).await?;
        let kind = self.sc.broker.kind.as_str();
        for s in &sessions {
            if !s.hello.drivers.iter().any(|d| d == kind) {
                return Err(CliError::CannotComplete(format!(
                    "agent {} cannot drive a `{kind}` broker (it has: {})",
                    s.address,
                    s.hello.drivers.join(", ")
                )));
            }
        }
        Ok(sessions)
    }

    /// The shards of the connected agents, shown with the agents' clocks.
    fn plan(&self, sessions: &[AgentSession]) -> Result<Plan, CliError> {
        let sc = &self.sc;
        let slots: Vec<AgentSlot> = sessions
            .iter()
            .map(|s| AgentSlot { name: s.address.clone(), instance: s.hello.instance_id.clone() })
            .collect();
        let plan = plan::plan(sc, &self.run_id, &slots)
            .map_err(|e| CliError::BadInput(format!("{}: {e}", self.opts.scenario.display())))?;
        let out = &self.out;
        out.line(&format!(
            "run {}: scenario `{}` on {} agent(s), {} broker",
            self.run_id,
            sc.name,
            sessions.len(),
            sc.broker.kind.as_str()
        ));
        for s in sessions {
            out.line(&format!(
                "  agent {:<22} {:<12} clock offset {:+.3} ms (± {:.3} ms)",
                s.address,
                s.hello.agent_id,
                s.clock_offset_ns as f64 / 1e6,
                s.clock_error_ns as f64 / 1e6
            ));
        }
        if let Some(line) = plan.memory_capacity_line(&slots) {
            out.line(&format!("  {line}"));
        }
        out.agents(sessions, &plan);
        Ok(plan)
    }

    /// Every agent subscribes its consumers, then creates its producers,
    /// and says Ready; any failure aborts them all.
    async fn prepare(
        &self,
        sessions: &[AgentSession],
        plan: &Plan,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Result<(), CliError> {
        for (s, shard) in sessions.iter().zip(&plan.shards) {
            s.send(CMsg::Prepare(proto::Prepare {
                shard_format: common::SHARD_FORMAT_JSON_V1.into(),
                shard: shard.to_json(),
                clock_offset_ns: s.clock_offset_ns,
            }))
            .await
            .map_err(CliError::CannotComplete)?;
        }
        let deadline = tokio::time::Instant::now() + self.sc.broker.connect_timeout * 3 + Duration::from_secs(30);
        let mut ready = vec![false; sessions.len()];
        let mut failure: Option<String> = None;
        while ready.iter().any(|r| !r) && failure.is_none() {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => failure = Some(format!("agents not ready in time: {}", not_ready(sessions, &ready))),
                Ok(None) => failure = Some("every agent session ended during prepare".into()),
                Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Ready(_)) })))) => ready[i] = true,
                Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Error(e)) })))) => {
                    failure = Some(format!("agent {} failed to prepare: {}", sessions[i].address, e.message));
                }
                Ok(Some((i, Inbound::Ended(why)))) => failure = Some(format!("agent {}: {why}", sessions[i].address)),
                Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Leaving(l)) })))) => {
                    failure = Some(format!("agent {} left during prepare: {}", sessions[i].address, l.reason));
                }
                Ok(Some(_)) => {}
            }
        }
        if let Some(f) = failure {
            abort_all(sessions).await;
            return Err(CliError::CannotComplete(f));
        }
        Ok(())
    }

    /// Start: one instant in coordinator time, far enough ahead for every
    /// agent. Returns it.
    async fn start(&self, sessions: &[AgentSession]) -> Result<i64, CliError> {
        let max_rtt = sessions.iter().map(|s| s.rtt_ns).max().unwrap_or(0);
        let start_ns = clock::now_ns() + START_AHEAD_NS.max(max_rtt * 4);
        for s in sessions {
            s.send(CMsg::Start(proto::Start { start_at_ns: start_ns })).await.map_err(CliError::CannotComplete)?;
        }
        let p = &self.sc.phases;
        self.out.line(&format!(
            "start: warmup {}, measure {}, cooldown {}, drain up to {}",
            common::units::format_duration(p.warmup),
            common::units::format_duration(p.duration),
            common::units::format_duration(p.cooldown),
            common::units::format_duration(p.drain_timeout)
        ));
        self.out.started();
        Ok(start_ns)
    }

    /// The sessions end; everything the agents sent is merged into the
    /// report, with the coordinator's own cost (`setup_s`: until Ready).
    fn finish(&self, run: Running<'_>, setup_s: f64) -> StepOutcome {
        let t = run.times;
        let drain_s = run.drain_done_at.map(|at| ((at - t.drain_start).max(0)) as f64 / 1e9).unwrap_or(0.0);
        let Running { agents, mut merging, progress, incomplete, drain_timed_out, .. } = run;
        let (outcomes, silences) = agents.close();
        let cpus: Vec<u32> = outcomes.iter().map(|o| o.hello.cpus).collect();
        let stalled = progress.stalled(drain_timed_out, t.send_end);
        let scenario_file = self.opts.scenario.display().to_string();
        let t_build = Instant::now();
        // Late agents' intervals (after their line was printed) are summed, not settled.
        merging.intervals.settle_all();
        let mut report = merge::build(merge::ReportInput {
            run_id: &self.run_id,
            scenario: &self.sc,
            scenario_file: &scenario_file,
            started_at: started_at(t.start_ns),
            agents: &outcomes,
            intervals: &merging.intervals,
            start_ns: t.start_ns,
            drain_s,
            drain_timed_out,
            stalled,
            incomplete,
            notes: silences,
        });
        report.coordinator = Some(merging.cost(outcomes.len(), setup_s, t_build, &report));
        self.out.finish(&report);
        StepOutcome { report, cpus }
    }
}

/// The start instant as report.json's `started_at` (RFC 3339, ms).
fn started_at(start_ns: i64) -> String {
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_nanos(start_ns.max(0) as u64)).to_string()
}

/// The agents not ready yet, for the error.
fn not_ready(sessions: &[AgentSession], ready: &[bool]) -> String {
    sessions.iter().zip(ready).filter(|(_, r)| !**r).map(|(s, _)| s.address.clone()).collect::<Vec<_>>().join(", ")
}

async fn abort_all(sessions: &[AgentSession]) {
    for s in sessions {
        let _ = s.send(CMsg::Stop(proto::Stop { reason: "abort".into(), abort: true })).await;
    }
}
