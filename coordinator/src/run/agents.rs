//! The agents of a started run as the run loop sees them: their sessions,
//! which are still alive, what each has reported ([`AgentOutcome`]), and
//! when each was last heard. Losing an agent (silent past its lease, a
//! fatal error, a closed session), an agent leaving (told to go: SIGTERM)
//! and noting a silence that ended in time happen here.
//!
//! May import `merge` (the outcome it fills), `report::console` and `session`.

use std::time::Duration;

use common::plan::{Plan, Shard};
use common::proto::{self, coordinator_message::Msg as CMsg};
use common::scenario::{OnAgentLoss, Scenario};
use tokio::time::Instant;
use tracing::warn;

use crate::merge::AgentOutcome;
use crate::report::console::Console;
use crate::session::AgentSession;

/// Silence beyond an agent's lease after which the coordinator calls it lost.
const LOST_AFTER_LEASE: Duration = Duration::from_secs(1);

pub(super) struct Agents {
    pub sessions: Vec<AgentSession>,
    pub alive: Vec<bool>,
    pub outcomes: Vec<AgentOutcome>,
    /// Last time each agent said anything (Pongs to the keepalive included).
    last_heard: Vec<Instant>,
    /// Silence longer than this (per agent) that ends before the lease is
    /// noted, while the agent sends interval reports.
    quiet_limit: Vec<Duration>,
    /// Whether each agent still sends interval reports: false once its
    /// last one came (every task done) or its final report did; from then
    /// only keepalive answers are due, and its silence is judged by
    /// [`keepalive_limit`].
    reporting: Vec<bool>,
    /// The notes of such silences, for the report.
    pub silences: Vec<String>,
}

impl Agents {
    /// The agents of `plan` as the run starts: all alive, all just heard.
    pub fn new(sessions: Vec<AgentSession>, plan: &Plan, sc: &Scenario) -> Agents {
        let outcomes = sessions.iter().zip(&plan.shards).map(|(s, shard)| outcome(s, shard)).collect();
        let n = sessions.len();
        // An agent sends an interval report every report_interval and answers
        // every keepalive ping: silence for twice the shorter of the two (at
        // least 1 s) that ends before the lease is noted, not hidden.
        let quiet_limit = sessions
            .iter()
            .map(|s| (2 * sc.report_interval.min(s.keepalive_every())).max(Duration::from_secs(1)))
            .collect();
        Agents {
            sessions,
            alive: vec![true; n],
            outcomes,
            last_heard: vec![Instant::now(); n],
            quiet_limit,
            reporting: vec![true; n],
            silences: Vec::new(),
        }
    }

    pub fn alive_count(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    /// Marks agent `i` lost (`status`: "lost" or "error") and tells it to stop
    /// if it still listens. Returns why the run cannot go on — `on_agent_loss:
    /// abort`, or no agent left — or None when it goes on without this agent.
    pub fn lose(&mut self, i: usize, status: &str, why: String, policy: OnAgentLoss, out: &Console) -> Option<String> {
        let address = &self.sessions[i].address;
        warn!(agent = %address, reason = %why, policy = policy.as_str(), "agent lost");
        self.alive[i] = false;
        self.outcomes[i].status = status.into();
        self.outcomes[i].error = Some(why.clone());
        out.agent_status(i, status);
        self.sessions[i].send_now(CMsg::Stop(proto::Stop { reason: "lost by the coordinator".into(), abort: true }));
        let left = self.alive_count();
        match policy {
            OnAgentLoss::Continue if left > 0 => {
                out.line(&format!(
                    "agent {address} lost ({why}); continuing with {left} agent(s) (on_agent_loss: continue)"
                ));
                None
            }
            OnAgentLoss::Continue => Some(format!("lost agent {address}: {why}; no agent left")),
            OnAgentLoss::Abort => Some(format!("lost agent {address}: {why} (on_agent_loss: abort)")),
        }
    }

    /// Agent `i` said it is leaving (told to go: SIGTERM), its final report
    /// sent just before, at `at_ns` (coordinator clock; 0: now); the run
    /// started at `start_ns`. It is recorded `left`, not waited for again,
    /// and not told to stop (it has). Returns why the run cannot go on —
    /// `on_agent_loss: abort`, or no agent left — or None.
    pub fn leave(
        &mut self,
        i: usize,
        reason: &str,
        at_ns: i64,
        start_ns: i64,
        policy: OnAgentLoss,
        out: &Console,
    ) -> Option<String> {
        let at_ns = if at_ns > 0 { at_ns } else { common::clock::now_ns() };
        let into_s = (at_ns - start_ns) as f64 / 1e9;
        let address = &self.sessions[i].address;
        warn!(agent = %address, reason, at_s = into_s, policy = policy.as_str(), "agent left");
        self.alive[i] = false;
        let o = &mut self.outcomes[i];
        o.status = "left".into();
        o.left_at_ns = Some(at_ns);
        let how = if o.final_report.is_some() { "its final report in" } else { "without a final report" };
        let why = format!("left at {into_s:.1}s into the run, {how}: {reason}");
        o.error = Some(why.clone());
        out.agent_status(i, "left");
        let left = self.alive_count();
        match policy {
            OnAgentLoss::Continue if left > 0 => {
                out.line(&format!("agent {address} {why}; continuing with {left} agent(s) (on_agent_loss: continue)"));
                None
            }
            OnAgentLoss::Continue => Some(format!("agent {address} {why}; no agent left")),
            OnAgentLoss::Abort => Some(format!("agent {address} {why} (on_agent_loss: abort)")),
        }
    }

    /// An agent silent for longer than its lease is frozen or cut off (its
    /// TCP connection may not tell); it has stopped its load by now. Loses
    /// every such agent; returns why the run cannot go on, if so.
    pub fn lose_the_silent(&mut self, now: Instant, policy: OnAgentLoss, out: &Console) -> Option<String> {
        for i in 0..self.sessions.len() {
            let limit = self.sessions[i].lease + LOST_AFTER_LEASE;
            if self.alive[i] && now.saturating_duration_since(self.last_heard[i]) > limit {
                let why = format!("no word from the agent for {}", common::units::format_duration(limit));
                if let Some(stop) = self.lose(i, "lost", why, policy, out) {
                    return Some(stop);
                }
            }
        }
        None
    }

    /// Agent `i` sends no more interval reports (its last one, or its final
    /// report, came): from now on only its keepalive answers are due.
    pub fn reports_done(&mut self, i: usize) {
        self.reporting[i] = false;
    }

    /// Agent `i` said something (the run started at `start_ns`). A silence
    /// before it longer than what the agent owed in that time (see
    /// [`Agents::new`], [`keepalive_limit`]) is noted and shown.
    pub fn heard(&mut self, i: usize, start_ns: i64, out: &Console) {
        let heard = Instant::now();
        let quiet = heard.saturating_duration_since(self.last_heard[i]);
        let s = &self.sessions[i];
        let limit = if self.reporting[i] { self.quiet_limit[i] } else { keepalive_limit(s) };
        if quiet > limit {
            let note = silence_note(s, self.reporting[i], quiet, common::clock::now_ns() - start_ns);
            out.line(&note);
            self.silences.push(note);
        }
        self.last_heard[i] = heard;
    }

    /// Alive agents that have not sent their final report yet.
    pub fn awaiting_final(&self) -> bool {
        self.outcomes.iter().enumerate().any(|(i, o)| self.alive[i] && o.final_report.is_none())
    }

    /// Marks every agent still owing its final report lost.
    pub fn no_final_in_time(&mut self) {
        for (i, o) in self.outcomes.iter_mut().enumerate() {
            if self.alive[i] && o.final_report.is_none() {
                o.status = "lost".into();
                o.error = Some("no final report in time".into());
                self.alive[i] = false;
            }
        }
    }

    /// Ends the sessions (the agents learn the run is over) and returns
    /// what each agent reported, with how its clock moved during the run,
    /// and the notes of silences.
    pub fn close(self) -> (Vec<AgentOutcome>, Vec<String>) {
        let mut outcomes = self.outcomes;
        for (o, s) in outcomes.iter_mut().zip(&self.sessions) {
            let c = s.clock_follower().snapshot();
            o.clock_drift_ns = c.drift_ns();
            o.clock_updates = c.updates();
            // A re-sync may have used a wider bound than the initial one.
            o.clock_error_ns = o.clock_error_ns.max(c.worst_error_ns());
        }
        drop(self.sessions);
        (outcomes, self.silences)
    }
}

/// What agent `s` was given; nothing reported yet.
fn outcome(s: &AgentSession, shard: &Shard) -> AgentOutcome {
    AgentOutcome {
        address: s.address.clone(),
        hello: s.hello.clone(),
        clock_offset_ns: s.clock_offset_ns,
        clock_error_ns: s.clock_error_ns,
        clock_drift_ns: 0,
        clock_updates: 0,
        producers: shard.producers.len() as u32,
        consumers: shard.consumers.len() as u32,
        target_rate_milli: shard.rate_milli(),
        status: "ok".into(),
        error: None,
        final_report: None,
        left_at_ns: None,
        shard_producers: shard.producers.clone(),
        shard_consumers: shard.consumers.clone(),
        interval_totals: Default::default(),
    }
}

/// The silence noted for an agent that only owes keepalive answers (its
/// tasks are done, so no interval report is due): two keepalive periods,
/// i.e. at least one whole ping left unanswered (at least 1 s).
fn keepalive_limit(s: &AgentSession) -> Duration {
    (2 * s.keepalive_every()).max(Duration::from_secs(1))
}

/// What the report says about an agent that fell silent for `quiet` and
/// was heard again `now_ns` into the run (from the start instant); what
/// it owed in that time: interval reports and keepalive answers
/// (`reporting`), or keepalive answers only.
fn silence_note(s: &AgentSession, reporting: bool, quiet: Duration, now_ns: i64) -> String {
    let from_s = (now_ns as f64 / 1e9 - quiet.as_secs_f64()).max(0.0);
    let every = common::units::format_duration(s.keepalive_every());
    let owed = if reporting {
        format!("no interval report, no keepalive answer to its pings every {every}")
    } else {
        format!("its tasks were done, and no keepalive answer to its pings every {every}")
    };
    format!(
        "agent {} was silent for {:.1}s from {:.1}s into the run ({owed}; \
         its lease is {}), then was heard again: a cut link or a stalled host",
        s.address,
        quiet.as_secs_f64(),
        from_s,
        common::units::format_duration(s.lease)
    )
}
