//! One complete run on a set of agents, merged into a report; nothing
//! written (`run` writes it, a ceiling search judges it). The phases, in
//! order ([`RunStep::run`]): connect (sessions, Hello, clock sync), plan
//! (shards), prepare (every agent subscribes and creates its producers:
//! a barrier), start (one instant for all), follow (the interval loop),
//! drain (stop, final reports), finish (the report). From the start
//! instant the run keeps its journal (journal.jsonl in its results
//! directory). A stop request (SIGTERM, SIGINT) during connect ends the
//! step with [`CliError::Interrupted`]; during prepare, with a report of
//! what was set up (verdict `interrupted`); later, see `follow`.
//!
//! May import the other stages of `run` except `mod.rs` (`connect`,
//! `events`, `agents`, `follow`, `drain`), and `merge`, `journal`,
//! `report::console`, `session`.

use std::time::{Duration, Instant, SystemTime};

use common::clock;
use common::plan::{self, AgentSlot, Plan};
use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage};
use common::report::{Interruption, Report};
use common::scenario::Scenario;
use tokio::sync::mpsc;
use tracing::warn;

use super::agents::Agents;
use super::connect::{self, Caller};
use super::events::{self, Event, Inbound};
use super::follow::Running;
use super::options::RunOptions;
use crate::error::CliError;
use crate::journal::Journal;
use crate::merge::{self, AgentOutcome, Intervals};
use crate::report::console::{self, Console};
use crate::session::AgentSession;

/// What one step gives: its report, the CPUs of each agent's host (from
/// its Hello), in `report.agents` order, and its journal (to be ended once
/// the report is written).
pub(super) struct StepOutcome {
    pub report: Report,
    pub cpus: Vec<u32>,
    pub journal: Option<Journal>,
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
        let stop = &self.opts.shutdown.stop;
        let early = || self.opts.interrupted_early("while connecting to the agents");
        if stop.is_cancelled() {
            return Err(early());
        }
        let mut sessions = tokio::select! {
            r = self.connect(addresses, busy_retry) => r?,
            _ = stop.cancelled() => return Err(early()),
        };
        let plan = self.plan(&sessions)?;
        let mut events = events::forward(&mut sessions);
        let prepared = tokio::select! {
            r = self.prepare(&sessions, &plan, &mut events) => Some(r),
            _ = stop.cancelled() => None,
        };
        let Some(prepared) = prepared else {
            abort_all(&sessions).await;
            return Ok(self.interrupted_in_prepare(Agents::new(sessions, &plan, &self.sc)));
        };
        prepared?;
        let setup_s = self.began.elapsed().as_secs_f64();
        let start_ns = self.start(&sessions).await?;
        let agents = Agents::new(sessions, &plan, &self.sc);
        let journal = self.open_journal(&agents.outcomes, start_ns);
        let mut run = Running::new(&self.sc, &self.out, agents, start_ns);
        run.merging.journal = journal;
        let ui = self.opts.ui.as_ref();
        if let Some(u) = ui {
            run.attach_ui(u.dashboard.clone(), &self.run_id);
        }
        let mut requests = match ui {
            Some(u) => Some(u.requests.lock().await),
            None => None,
        };
        run.follow(&mut events, &self.opts.shutdown, self.opts.interrupt_drain(), requests.as_deref_mut()).await;
        run.controls.close();
        drop(requests);
        run.drain(&mut events, &self.opts.shutdown).await;
        Ok(self.finish(run, setup_s))
    }

    /// The report of what `agents` were given, nothing measured: what the
    /// journal starts with (verdict `incomplete` until the run ends).
    fn skeleton(&self, outcomes: &[AgentOutcome], start_ns: i64) -> Report {
        let scenario_file = self.opts.scenario.display().to_string();
        let intervals = Intervals::default();
        let mut r = merge::build(merge::ReportInput {
            run_id: &self.run_id,
            scenario: &self.sc,
            scenario_file: &scenario_file,
            started_at: started_at(start_ns),
            agents: outcomes,
            intervals: &intervals,
            start_ns,
            drain_s: 0.0,
            drain_timed_out: false,
            stalled: Vec::new(),
            incomplete: None,
            notes: Vec::new(),
            events: &[],
            paces: &[],
        });
        r.verdict = "incomplete".into();
        r.notes.clear();
        r.slo.clear();
        r.subscriptions.clear();
        r.histograms.clear();
        r.coverage = None;
        r
    }

    /// journal.jsonl in the run's results directory, from the start
    /// instant; a run goes on without one if it cannot be written.
    fn open_journal(&self, outcomes: &[AgentOutcome], start_ns: i64) -> Option<Journal> {
        let dir = self.opts.run_dir(&self.run_id);
        let opened = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| Journal::create(&dir, &self.skeleton(outcomes, start_ns)).map_err(|e| e.to_string()));
        match opened {
            Ok(j) => Some(j),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "no run journal: a killed coordinator will leave nothing");
                None
            }
        }
    }

    /// Stopped while the agents prepared: no load ran; the report says
    /// what was set up, verdict `interrupted`.
    fn interrupted_in_prepare(&self, agents: Agents) -> StepOutcome {
        let (signal, when) = self.opts.shutdown.cause();
        let at_s = when.saturating_duration_since(self.began).as_secs_f64();
        let (outcomes, _) = agents.close();
        let mut report = self.skeleton(&outcomes, clock::now_ns());
        let i = Interruption { signal, at_s, phase: "prepare".into() };
        report.notes.push(format!(
            "interrupted by {} {:.1}s after the coordinator began, while the agents prepared: no load ran",
            i.signal, i.at_s
        ));
        report.verdict = "interrupted".into();
        report.interrupted = Some(i);
        self.out.finish(&report);
        StepOutcome { report, cpus: outcomes.iter().map(|o| o.hello.cpus).collect(), journal: None }
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
        let Running {
            agents,
            mut merging,
            progress,
            incomplete,
            drain_timed_out,
            interrupted,
            drain_cut,
            controls,
            ..
        } = run;
        let mut journal = merging.journal.take();
        let (outcomes, mut silences) = agents.close();
        silences
            .extend(controls.events.iter().map(|e| format!("run control at {:.1} s: {} ({})", e.t_s, e.label, e.who)));
        // Stopped early: the measurement is what ran (the report judges that).
        let stopped = controls.stop_at.map(|at| self.stopped_scenario(at - t.start_ns));
        let sc = stopped.as_ref().unwrap_or(&self.sc);
        let cpus: Vec<u32> = outcomes.iter().map(|o| o.hello.cpus).collect();
        let stalled = progress.stalled(drain_timed_out, t.send_end);
        let scenario_file = self.opts.scenario.display().to_string();
        let t_build = Instant::now();
        // Late agents' intervals (after their line was printed) are summed, not settled.
        merging.intervals.settle_all();
        let mut report = merge::build(merge::ReportInput {
            run_id: &self.run_id,
            scenario: sc,
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
            events: &controls.events,
            paces: &controls.marks,
        });
        report.coordinator = Some(merging.cost(outcomes.len(), setup_s, t_build, &report));
        if let Some(i) = interrupted {
            let note = interrupted_note(&i, drain_s, self.opts.interrupt_drain(), drain_cut);
            if let Some(j) = journal.as_mut() {
                let _ = j.note(&note);
            }
            report.notes.insert(0, note);
            report.verdict = "interrupted".into();
            report.interrupted = Some(i);
        }
        self.out.finish(&report);
        StepOutcome { report, cpus, journal }
    }
}

/// The first note of an interrupted run: what stopped it, what the drain
/// had, and how to read the figures.
fn interrupted_note(i: &Interruption, drain_s: f64, bound: Duration, cut: bool) -> String {
    format!(
        "interrupted by {} {:.1}s into the run, in {}: the load was stopped and consumers drained for {:.1}s \
         ({}; --interrupt-drain {}); the figures are what was measured until then, not judged against the SLOs \
         (`lost` counts what had not arrived when the drain ended)",
        i.signal,
        i.at_s,
        i.phase,
        drain_s,
        if cut { "cut short by a second signal" } else { "bounded" },
        common::units::format_duration(bound)
    )
}

impl RunStep<'_> {
    /// The scenario as run when the sends ended `sent_for_ns` after the
    /// start (run control's stop): the phases cut there.
    fn stopped_scenario(&self, sent_for_ns: i64) -> Scenario {
        let mut sc = self.sc.clone();
        let sent_for = Duration::from_nanos(sent_for_ns.max(0) as u64);
        let p = &mut sc.phases;
        p.warmup = p.warmup.min(sent_for);
        p.duration = sent_for.saturating_sub(p.warmup).max(Duration::from_millis(1)).min(p.duration);
        sc
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
