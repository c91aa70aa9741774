//! A started run, followed until its drain is done ([`Running::follow`]):
//! the interval loop. It takes every agent's messages (interval reports
//! merged, errors shown, final reports kept), loses agents that fall
//! silent past their lease or fail, records those that leave (told to go:
//! SIGTERM, their final report sent first), and ends when every
//! subscription has every acknowledged message, when the drain times out,
//! or when the run cannot go on. Interrupted (SIGTERM, SIGINT:
//! [`Shutdown`]'s first level), it stops the agents' producers and drains
//! for at most `--interrupt-drain`; a second signal ends that drain at once.
//!
//! Run control's requests (the dashboard) are taken here too: see
//! [`super::control`]; an early stop moves the end of the sends.
//!
//! May import `agents`, `events`, `merging`, `options` (the shutdown),
//! `progress`, `control`, `live`, `merge`, `ui` and `report::console`.

use std::time::Duration;

use common::clock;
use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, IntervalReport};
use common::report::Interruption;
use common::scenario::Scenario;
use tokio::sync::mpsc;
use tracing::warn;

use super::agents::Agents;
use super::control::Controls;
use super::events::{Event, Inbound, ReadAhead};
use super::live::{Live, LiveState};
use super::merging::{Merging, Show};
use super::options::Shutdown;
use super::progress::Progress;
use crate::report::console::Console;
use crate::ui::{ControlRequest, Dashboard};

/// The instants of a run (coordinator clock, ns).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeline {
    pub start_ns: i64,
    /// Producers stop sending.
    pub send_end: i64,
    /// The cooldown is over: from here the run ends once the drain is done.
    pub drain_start: i64,
    pub drain_deadline: i64,
}

impl Timeline {
    pub fn new(sc: &Scenario, start_ns: i64) -> Timeline {
        let send_end = start_ns + sc.phases.send_end().as_nanos() as i64;
        let drain_start = send_end + sc.phases.cooldown.as_nanos() as i64;
        let drain_deadline = drain_start + sc.phases.drain_timeout.as_nanos() as i64;
        Timeline { start_ns, send_end, drain_start, drain_deadline }
    }
}

/// Leases are checked this often, not on every message (a thousand agents).
const LEASE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Everything a started run reads and writes until its report is built.
pub(super) struct Running<'a> {
    pub sc: &'a Scenario,
    pub out: &'a Console,
    pub times: Timeline,
    pub agents: Agents,
    pub merging: Merging,
    pub progress: Progress<'a>,
    /// Why the run cannot complete, once it cannot.
    pub incomplete: Option<String>,
    /// When the drain ended (coordinator clock, ns), and whether by its timeout.
    pub drain_done_at: Option<i64>,
    pub drain_timed_out: bool,
    /// A signal stopped the run: which, when, in which phase.
    pub interrupted: Option<Interruption>,
    /// A second signal ended the interrupted drain.
    pub drain_cut: bool,
    /// Run control: requests taken, changes applied (report events).
    pub controls: Controls,
    /// The live dashboard, with `--ui`.
    pub live: Option<Live>,
}

impl<'a> Running<'a> {
    pub fn new(sc: &'a Scenario, out: &'a Console, agents: Agents, start_ns: i64) -> Running<'a> {
        let producers = agents.outcomes.iter().map(|o| o.producers).collect();
        Running {
            sc,
            out,
            times: Timeline::new(sc, start_ns),
            agents,
            merging: Merging::new(),
            progress: Progress::new(sc, producers, start_ns),
            incomplete: None,
            drain_done_at: None,
            drain_timed_out: false,
            interrupted: None,
            drain_cut: false,

            controls: Controls::new(sc),
            live: None,
        }
    }

    /// Feeds `dashboard` from now on (its model starts over for this run).
    pub fn attach_ui(&mut self, dashboard: std::sync::Arc<Dashboard>, run_id: &str) {
        let total = self.controls.total_rate(self.sc);
        dashboard.reset(super::live::start_model(self.sc, run_id, &self.agents, total));
        self.live = Some(Live::new(dashboard, self.agents.sessions.len(), self.sc));
    }

    /// Run control's settled changes: an early stop moves the end of the
    /// sends (the cooldown and drain follow it); the dashboard is told.
    fn after_controls(&mut self) {
        if let Some(stop) = self.controls.stop_at.filter(|s| *s < self.times.send_end) {
            let t = &mut self.times;
            let cooldown = t.drain_start - t.send_end;
            let drain = t.drain_deadline - t.drain_start;
            t.send_end = stop;
            t.drain_start = stop + cooldown;
            t.drain_deadline = t.drain_start + drain;
        }
        if !self.controls.fresh.is_empty() {
            let fresh = std::mem::take(&mut self.controls.fresh);
            if let Some(l) = &self.live {
                l.events(&fresh, self.controls.total_rate(self.sc));
            }
        }
    }

    /// The interval loop: until the drain is done or timed out, or the run
    /// cannot go on (`incomplete` says why). The first stop request of
    /// `shutdown` stops the producers and bounds the drain by
    /// `interrupt_drain`; the second ends it. Run control's `requests` are
    /// answered as they come.
    pub async fn follow(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
        shutdown: &Shutdown,
        interrupt_drain: Duration,
        mut requests: Option<&mut mpsc::Receiver<ControlRequest>>,
    ) {
        let mut next_lease_check = tokio::time::Instant::now();
        loop {
            self.after_controls();
            let t = self.times;
            let now = clock::now_ns();
            let now_i = tokio::time::Instant::now();
            if now_i >= next_lease_check {
                next_lease_check = now_i + LEASE_CHECK_EVERY;
                self.controls.check_deadline(&self.agents);
                if let Some(stop) = self.agents.lose_the_silent(now_i, self.sc.on_agent_loss, self.out) {
                    self.incomplete = Some(stop);
                    return;
                }
            }
            if now >= t.drain_start {
                if self.progress.complete(&self.agents.alive, &self.agents.outcomes) {
                    self.drain_done_at = Some(now);
                    return;
                }
                if now >= t.drain_deadline {
                    // An interrupted drain ends at its bound, not by a timeout of the scenario's.
                    self.drain_timed_out = self.interrupted.is_none();
                    self.drain_done_at = Some(now);
                    return;
                }
            }
            let wake = if now < t.drain_start { t.drain_start } else { (now + 100_000_000).min(t.drain_deadline) };
            let wake = wake.min(now + 500_000_000);
            tokio::select! {
                _ = shutdown.stop.cancelled(), if self.interrupted.is_none() => {
                    self.interrupt(shutdown, interrupt_drain).await;
                }
                _ = shutdown.now.cancelled(), if self.interrupted.is_some() => {
                    self.out.line("second stop signal: the drain ends now");
                    self.drain_cut = true;
                    self.drain_done_at = Some(clock::now_ns());
                    return;
                }
                _ = tokio::time::sleep_until(clock::instant_at(wake).into()) => {}
                Some(req) = next_request(&mut requests) => {
                    self.controls.request(req, self.sc, &self.agents, (t.start_ns, t.send_end));
                }
                ev = events.recv() => {
                    if let Some(stop) = self.take(ev) {
                        self.incomplete = Some(stop);
                        return;
                    }
                }
            }
        }
    }

    /// The first stop request: the producers of every live agent stop now,
    /// and the drain starts now (if it had not) for at most `bound`.
    async fn interrupt(&mut self, shutdown: &Shutdown, bound: Duration) {
        let now = clock::now_ns();
        let i = self.mark_interrupted(shutdown);
        for (k, s) in self.agents.sessions.iter().enumerate() {
            if self.agents.alive[k] {
                let reason = format!("interrupted by {}", i.signal);
                let _ = s.send(CMsg::StopProducers(proto::StopProducers { reason })).await;
            }
        }
        let t = &mut self.times;
        t.drain_start = t.drain_start.min(now);
        t.drain_deadline = t.drain_deadline.min(now + bound.as_nanos() as i64);
        self.out.line(&format!(
            "{} {:.1}s into the run, in {}: producers stopped; consumers drain for up to {} (a second signal ends it)",
            i.signal,
            i.at_s,
            i.phase,
            common::units::format_duration(bound)
        ));
    }

    /// Records the first stop request (signal, instant, phase) once, with a
    /// journal note; returns it.
    pub fn mark_interrupted(&mut self, shutdown: &Shutdown) -> Interruption {
        if let Some(i) = &self.interrupted {
            return i.clone();
        }
        let (signal, when) = shutdown.cause();
        let at_ns = clock::now_ns() - when.elapsed().as_nanos() as i64;
        let t = self.times;
        let phase = if at_ns < t.start_ns {
            "start"
        } else if at_ns < t.start_ns + self.sc.phases.warmup.as_nanos() as i64 {
            "warmup"
        } else if at_ns < t.send_end {
            "measure"
        } else if at_ns < t.drain_start {
            "cooldown"
        } else {
            "drain"
        };
        let i = Interruption { signal, at_s: (at_ns - t.start_ns) as f64 / 1e9, phase: phase.into() };
        self.merging.journal_note(&format!("interrupted by {} {:.1}s into the run, in {}", i.signal, i.at_s, i.phase));
        self.interrupted = Some(i.clone());
        i
    }

    /// Takes one event of the follow phase (`None`: every session has
    /// ended); returns why the run cannot go on, if it cannot.
    fn take(&mut self, ev: Option<Event>) -> Option<String> {
        let policy = self.sc.on_agent_loss;
        match ev {
            None => Some("every agent session ended".into()),
            Some((i, Inbound::Ended(why))) if self.agents.alive[i] => {
                self.agents.lose(i, "lost", why, policy, self.out)
            }
            Some((_, Inbound::Ended(_))) => None,
            // An agent already called lost is not heard any more.
            Some((i, _)) if !self.agents.alive[i] => None,
            Some((i, msg)) => {
                self.agents.heard(i, self.times.start_ns, self.out);
                match msg {
                    Inbound::Interval(report) => {
                        let (r, read) = *report;
                        if r.last {
                            self.agents.reports_done(i);
                        }
                        self.progress.take(i, &r);
                        self.take_interval(i, &r, read);
                        None
                    }
                    Inbound::Msg(AgentMessage { msg: Some(AMsg::Error(e)) }) => {
                        let address = &self.agents.sessions[i].address;
                        warn!(agent = %address, phase = %e.phase, error = %e.message, "agent error");
                        self.out.line(&format!("agent {address}: {} error: {}", e.phase, e.message));
                        if e.fatal && self.agents.alive[i] {
                            self.agents.lose(i, "error", format!("failed: {}", e.message), policy, self.out)
                        } else {
                            None
                        }
                    }
                    Inbound::Msg(AgentMessage { msg: Some(AMsg::Final(f)) }) => {
                        self.agents.reports_done(i);
                        self.agents.outcomes[i].final_report = Some(f);
                        None
                    }
                    Inbound::Msg(AgentMessage { msg: Some(AMsg::ControlAck(a)) }) => {
                        self.controls.ack(i, &a, &self.agents);
                        None
                    }
                    Inbound::Msg(AgentMessage { msg: Some(AMsg::Leaving(l)) }) => {
                        self.agents.leave(i, &l.reason, l.at_ns, self.times.start_ns, policy, self.out)
                    }
                    _ => None,
                }
            }
        }
    }

    /// Agent `i`'s interval report into the merged intervals (and the live view).
    pub fn take_interval(&mut self, i: usize, r: &IntervalReport, read: ReadAhead) {
        if let Some(l) = self.live.as_mut() {
            l.agent_interval(i, r);
        }
        let show = Show { sc: self.sc, out: self.out, start_ns: self.times.start_ns };
        let shown = self.merging.take(i, r, read, &mut self.agents, &show);
        if let (Some(idx), Some(l)) = (shown, self.live.as_mut()) {
            if let Some(m) = self.merging.intervals.by_index.get(&idx) {
                let state = LiveState { agents: &self.agents, progress: &self.progress };
                l.interval(self.sc, (idx, m), self.times.start_ns, state);
            }
        }
    }
}

/// The next run-control request, or never (no dashboard, or it is gone).
async fn next_request(requests: &mut Option<&mut mpsc::Receiver<ControlRequest>>) -> Option<ControlRequest> {
    match requests.as_mut() {
        Some(rx) => match rx.recv().await {
            Some(r) => Some(r),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
