//! Run control while a run follows ([`Controls`]): a request from the
//! dashboard (the page or `coordinator ctl`) is checked against the
//! scenario and the run's state, sent to every live agent as one `Control`
//! with one instant a little ahead (so all agents switch together), and
//! answered once every agent has acknowledged it. When an agent refuses
//! (or does not answer in time) the change is taken back — the same
//! instant with the pace before, which replaces it on every agent before
//! it takes effect — and the answer says who refused and why. Applied
//! changes become report events and pace marks (the target in force at
//! each moment judges the achieved rate).
//!
//! A total rate keeps the groups' proportions: every open-loop group runs
//! at the same factor of its scenario rate. Groups with a load shape
//! (ramp, steps, spike) and closed-loop groups keep their own pace under a
//! rate change (they pause and resume like the others).
//!
//! May import `agents`, `merge` (pace marks) and `ui` (the requests).

use std::time::Duration;

use common::proto::{self, coordinator_message::Msg as CMsg};
use common::report::RunEvent;
use common::scenario::{LoadShape, Scenario};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::agents::Agents;
use crate::merge::PaceMark;
use crate::ui::{Control, ControlRequest};

/// How far ahead of now a change takes effect (and at least four round
/// trips to the slowest agent), like Start's instant.
const AHEAD_NS: i64 = 300_000_000;

/// How long the agents have to acknowledge a change.
const ACK_WITHIN: Duration = Duration::from_secs(5);

/// Run control's state for one run.
pub(super) struct Controls {
    /// Factor and pause in force per producer group.
    paces: Vec<(f64, bool)>,
    /// Whether each group follows a rate change (constant, open loop).
    rated: Vec<bool>,
    next_id: u64,
    pending: Option<Pending>,
    pub events: Vec<RunEvent>,
    pub marks: Vec<PaceMark>,
    /// The early stop's instant (coordinator clock), once applied.
    pub stop_at: Option<i64>,
    /// Events applied since the dashboard last took them.
    pub fresh: Vec<RunEvent>,
}

/// A change sent, waiting for the agents' acknowledgements.
struct Pending {
    msg: proto::Control,
    paces: Vec<(f64, bool)>,
    awaiting: Vec<bool>,
    refused: Vec<String>,
    deadline: Instant,
    reply: oneshot::Sender<Result<String, String>>,
    event: RunEvent,
}

/// What a checked request changes.
struct Change {
    paces: Vec<(f64, bool)>,
    end_sends: bool,
    event: RunEvent,
}

impl Controls {
    pub fn new(sc: &Scenario) -> Controls {
        Controls {
            paces: vec![(1.0, false); sc.producers.len()],
            rated: sc.producers.iter().map(|g| g.load == LoadShape::Constant).collect(),
            next_id: 1,
            pending: None,
            events: Vec::new(),
            marks: Vec::new(),
            stop_at: None,
            fresh: Vec::new(),
        }
    }

    /// The total rate of the open-loop constant groups in force (msg/s).
    pub fn total_rate(&self, sc: &Scenario) -> f64 {
        sc.producers
            .iter()
            .zip(&self.paces)
            .zip(&self.rated)
            .filter(|(_, rated)| **rated)
            .map(|((g, (f, paused)), _)| if *paused { 0.0 } else { g.total_rate() * f })
            .sum()
    }

    /// Takes a request: refused at once when it cannot apply, else sent to
    /// every live agent (answered when they have acknowledged it).
    pub fn request(&mut self, req: ControlRequest, sc: &Scenario, agents: &Agents, times: (i64, i64)) {
        let (start_ns, send_end) = times;
        let now = common::clock::now_ns();
        let max_rtt = agents.sessions.iter().map(|s| s.rtt_ns).max().unwrap_or(0);
        let at_ns = now + AHEAD_NS.max(max_rtt * 4);
        let checked = if self.pending.is_some() {
            Err("another change is being applied; try again in a moment".to_string())
        } else if self.stop_at.is_some() || at_ns >= send_end {
            Err("the producers are done (or stopping): nothing left to change".to_string())
        } else {
            self.check(&req.control, req.group.as_deref(), sc, (at_ns - start_ns) as f64 / 1e9)
        };
        let change = match checked {
            Ok(c) => c,
            Err(why) => {
                let _ = req.reply.send(Err(why));
                return;
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let msg = proto::Control { id, at_ns, groups: group_paces(&change.paces), end_sends: change.end_sends };
        for (i, s) in agents.sessions.iter().enumerate() {
            if agents.alive[i] {
                s.send_now(CMsg::Control(msg.clone()));
            }
        }
        self.pending = Some(Pending {
            msg,
            paces: change.paces,
            awaiting: agents.alive.clone(),
            refused: Vec::new(),
            deadline: Instant::now() + ACK_WITHIN,
            reply: req.reply,
            event: change.event,
        });
    }

    /// What `c` changes (for producer group `group`, or every group), at
    /// `t_s` into the run; Err: why it cannot apply.
    fn check(&self, c: &Control, group: Option<&str>, sc: &Scenario, t_s: f64) -> Result<Change, String> {
        let event = |kind: &str, value: Option<f64>, label: String| RunEvent {
            t_s,
            kind: kind.into(),
            value,
            group: group.map(str::to_string),
            who: "dashboard".into(),
            label,
        };
        // The groups it takes: one by name, or all.
        let chosen: Vec<bool> = match group {
            None => vec![true; sc.producers.len()],
            Some(name) => {
                let Some(k) = sc.producers.iter().position(|g| g.name == name) else {
                    let names: Vec<&str> = sc.producers.iter().map(|g| g.name.as_str()).collect();
                    return Err(format!("no producer group `{name}` (the groups: {})", names.join(", ")));
                };
                (0..sc.producers.len()).map(|i| i == k).collect()
            }
        };
        let what = match group {
            Some(g) => format!("group {g}"),
            None => "the producers".into(),
        };
        let mut paces = self.paces.clone();
        let mine = |paces: &[(f64, bool)]| -> Vec<(f64, bool)> {
            paces.iter().zip(&chosen).filter(|(_, c)| **c).map(|(p, _)| *p).collect()
        };
        match c {
            Control::Rate(rate) => {
                let base: f64 = sc
                    .producers
                    .iter()
                    .zip(&self.rated)
                    .zip(&chosen)
                    .filter(|((_, r), c)| **r && **c)
                    .map(|((g, _), _)| g.total_rate())
                    .sum();
                if base <= 0.0 {
                    return Err(format!(
                        "{what}: no constant rate to change (load shapes and `rate: max` keep their own pace)"
                    ));
                }
                let factor = rate / base;
                for ((p, r), c) in paces.iter_mut().zip(&self.rated).zip(&chosen) {
                    if *r && *c {
                        p.0 = factor;
                    }
                }
                let label = match group {
                    Some(g) => format!("group {g} rate {} msg/s", crate::report::format::fmt_decimals(*rate)),
                    None => format!("total rate {} msg/s", crate::report::format::fmt_decimals(*rate)),
                };
                Ok(Change { paces, end_sends: false, event: event("rate", Some(*rate), label) })
            }
            Control::Pause if mine(&paces).iter().all(|p| p.1) => Err(format!("{what}: paused already")),
            Control::Pause => {
                paces.iter_mut().zip(&chosen).filter(|(_, c)| **c).for_each(|(p, _)| p.1 = true);
                Ok(Change { paces, end_sends: false, event: event("pause", None, format!("{what} paused")) })
            }
            Control::Resume if !mine(&paces).iter().any(|p| p.1) => Err(format!("{what}: not paused")),
            Control::Resume => {
                paces.iter_mut().zip(&chosen).filter(|(_, c)| **c).for_each(|(p, _)| p.1 = false);
                Ok(Change { paces, end_sends: false, event: event("resume", None, format!("{what} resumed")) })
            }
            Control::Stop if group.is_some() => Err("stop ends the whole run: it takes no group".into()),
            Control::Stop => Ok(Change { paces, end_sends: true, event: event("stop", None, "stopped early".into()) }),
        }
    }

    /// Agent `i`'s acknowledgement; the change is settled once every live
    /// agent has answered.
    pub fn ack(&mut self, i: usize, ack: &proto::ControlAck, agents: &Agents) {
        let Some(p) = self.pending.as_mut().filter(|p| p.msg.id == ack.id) else { return };
        if let Some(w) = p.awaiting.get_mut(i) {
            *w = false;
        }
        if !ack.refused.is_empty() {
            p.refused.push(format!("agent {} refused: {}", agents.sessions[i].address, ack.refused));
        }
        self.settle_if_answered(agents);
    }

    /// Lost agents are not waited for; agents silent past the deadline
    /// count as refusing.
    pub fn check_deadline(&mut self, agents: &Agents) {
        let Some(p) = self.pending.as_mut() else { return };
        for (i, w) in p.awaiting.iter_mut().enumerate() {
            if *w && !agents.alive[i] {
                *w = false;
            } else if *w && Instant::now() >= p.deadline {
                *w = false;
                p.refused.push(format!("agent {} did not answer in time", agents.sessions[i].address));
            }
        }
        self.settle_if_answered(agents);
    }

    fn settle_if_answered(&mut self, agents: &Agents) {
        if self.pending.as_ref().is_some_and(|p| p.awaiting.iter().all(|w| !w)) {
            if let Some(p) = self.pending.take() {
                self.settle(p, agents);
            }
        }
    }

    /// Every agent answered: applied, or taken back on every agent.
    fn settle(&mut self, p: Pending, agents: &Agents) {
        if !p.refused.is_empty() {
            let back = proto::Control { groups: group_paces(&self.paces), end_sends: false, ..p.msg };
            for (i, s) in agents.sessions.iter().enumerate() {
                if agents.alive[i] {
                    s.send_now(CMsg::Control(back.clone()));
                }
            }
            let _ = p.reply.send(Err(format!("{}; nothing was changed", p.refused.join("; "))));
            return;
        }
        for (g, (now, before)) in p.paces.iter().zip(&self.paces).enumerate() {
            if now != before {
                self.marks.push(PaceMark { at_ns: p.msg.at_ns, group: g, factor: now.0, paused: now.1 });
            }
        }
        self.paces = p.paces;
        if p.msg.end_sends {
            self.stop_at = Some(p.msg.at_ns);
        }
        let _ = p.reply.send(Ok(format!("{} (from {:.1} s into the run)", p.event.label, p.event.t_s)));
        self.events.push(p.event.clone());
        self.fresh.push(p.event);
    }

    /// Refuses what is still pending (the run is over).
    pub fn close(&mut self) {
        if let Some(p) = self.pending.take() {
            let _ = p.reply.send(Err("the run ended before every agent answered".into()));
        }
    }
}

/// Every group's pace, as the agents take it.
fn group_paces(paces: &[(f64, bool)]) -> Vec<proto::GroupPace> {
    paces
        .iter()
        .enumerate()
        .map(|(g, (factor, paused))| proto::GroupPace { group: g as u32, factor: *factor, paused: *paused })
        .collect()
}
