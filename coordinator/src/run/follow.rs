//! A started run, followed until its drain is done ([`Running::follow`]):
//! the interval loop. It takes every agent's messages (interval reports
//! merged, errors shown, final reports kept), loses agents that fall
//! silent past their lease or fail, and ends when every subscription has
//! every acknowledged message, when the drain times out, when the run
//! cannot go on, or when it is cancelled (SIGINT at the command line).
//!
//! Run control's requests (the dashboard) are taken here too: see
//! [`super::control`]; an early stop moves the end of the sends.
//!
//! May import `agents`, `events`, `merging`, `progress`, `control`,
//! `live`, `merge`, `ui` and `report::console`.

use std::time::Duration;

use common::clock;
use common::proto::{agent_message::Msg as AMsg, AgentMessage, IntervalReport};
use common::scenario::Scenario;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::agents::Agents;
use super::control::Controls;
use super::events::{Event, Inbound, ReadAhead};
use super::live::{Live, LiveState};
use super::merging::{Merging, Show};
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

    /// The interval loop: until the drain is done or timed out, the run
    /// cannot go on (`incomplete` says why), or `shutdown` is cancelled.
    pub async fn follow(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
        shutdown: &CancellationToken,
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
                    self.drain_timed_out = true;
                    self.drain_done_at = Some(now);
                    return;
                }
            }
            let wake = if now < t.drain_start { t.drain_start } else { (now + 100_000_000).min(t.drain_deadline) };
            let wake = wake.min(now + 500_000_000);
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.incomplete = Some("interrupted (Ctrl-C)".into());
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
                        self.agents.outcomes[i].final_report = Some(f);
                        None
                    }
                    Inbound::Msg(AgentMessage { msg: Some(AMsg::ControlAck(a)) }) => {
                        self.controls.ack(i, &a, &self.agents);
                        None
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
