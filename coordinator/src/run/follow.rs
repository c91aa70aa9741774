//! A started run, followed until its drain is done ([`Running::follow`]):
//! the interval loop. It takes every agent's messages (interval reports
//! merged, errors shown, final reports kept), loses agents that fall
//! silent past their lease or fail, and ends when every subscription has
//! every acknowledged message, when the drain times out, when the run
//! cannot go on, or when it is cancelled (SIGINT at the command line).
//!
//! May import `agents`, `events`, `merging`, `progress`, `merge` and
//! `report::console`.

use std::time::Duration;

use common::clock;
use common::proto::{agent_message::Msg as AMsg, AgentMessage, IntervalReport};
use common::scenario::Scenario;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::agents::Agents;
use super::events::{Event, Inbound, ReadAhead};
use super::merging::{Merging, Show};
use super::progress::Progress;
use crate::report::console::Console;

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
        }
    }

    /// The interval loop: until the drain is done or timed out, the run
    /// cannot go on (`incomplete` says why), or `shutdown` is cancelled.
    pub async fn follow(&mut self, events: &mut mpsc::UnboundedReceiver<Event>, shutdown: &CancellationToken) {
        let t = self.times;
        let mut next_lease_check = tokio::time::Instant::now();
        loop {
            let now = clock::now_ns();
            let now_i = tokio::time::Instant::now();
            if now_i >= next_lease_check {
                next_lease_check = now_i + LEASE_CHECK_EVERY;
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
                    _ => None,
                }
            }
        }
    }

    /// Agent `i`'s interval report into the merged intervals (and the live view).
    pub fn take_interval(&mut self, i: usize, r: &IntervalReport, read: ReadAhead) {
        let show = Show { sc: self.sc, out: self.out, start_ns: self.times.start_ns };
        self.merging.take(i, r, read, &mut self.agents, &show);
    }
}
