//! The end of a followed run ([`Running::drain`]): every live agent is
//! told to stop (producers are done, or aborted; consumers stop), and the
//! final reports come back — each agent's acknowledged and received sets,
//! its whole-run histograms. An agent that sends none in time is lost.
//! An interrupted run waits for them [`FINAL_WAIT_INTERRUPTED`] at most.
//!
//! May import `follow` (the run it ends), `events`, `options` (the
//! shutdown) and `agents`.

use std::time::Duration;

use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage};
use common::scenario::OnAgentLoss;
use tokio::sync::mpsc;

use super::events::{Event, Inbound};
use super::follow::Running;
use super::options::Shutdown;

/// How long past the longest send timeout the final reports may take.
const FINAL_GRACE: Duration = Duration::from_secs(30);

/// How long an interrupted run waits for the final reports: the agents'
/// producers are stopped, so they come at once; one that does not is
/// recorded as lost, not waited for (the whole interrupted path must fit
/// a Kubernetes grace period).
pub(super) const FINAL_WAIT_INTERRUPTED: Duration = Duration::from_secs(3);

impl Running<'_> {
    /// Stops every live agent (an abort when the run is incomplete) and
    /// waits for their final reports; interval reports still arriving are
    /// merged.
    pub async fn drain(&mut self, events: &mut mpsc::UnboundedReceiver<Event>, shutdown: &Shutdown) {
        let abort = self.incomplete.is_some() || self.interrupted.is_some();
        for (i, s) in self.agents.sessions.iter().enumerate() {
            if self.agents.alive[i] {
                let reason = if abort { "abort".into() } else { "drain complete".into() };
                let _ = s.send(CMsg::Stop(proto::Stop { reason, abort })).await;
            }
        }
        let max_send_timeout = self.sc.producers.iter().map(|p| p.send_timeout).max().unwrap_or_default();
        let now = tokio::time::Instant::now();
        let mut final_deadline = if self.interrupted.is_some() {
            now + FINAL_WAIT_INTERRUPTED
        } else {
            now + max_send_timeout + FINAL_GRACE
        };
        while self.agents.awaiting_final() {
            let next = tokio::select! {
                n = tokio::time::timeout_at(final_deadline, events.recv()) => n,
                _ = shutdown.stop.cancelled(), if self.interrupted.is_none() => {
                    self.mark_interrupted(shutdown);
                    final_deadline = final_deadline.min(tokio::time::Instant::now() + FINAL_WAIT_INTERRUPTED);
                    continue;
                }
            };
            match next {
                Err(_) => self.no_final_in_time(),
                Ok(None) => break,
                Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Final(f)) })))) if self.agents.alive[i] => {
                    self.agents.outcomes[i].final_report = Some(f)
                }
                Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Leaving(l)) })))) if self.agents.alive[i] => {
                    // Told to go while stopping: recorded `left`, the run ends anyway.
                    let policy = OnAgentLoss::Continue;
                    let _ = self.agents.leave(i, &l.reason, l.at_ns, self.times.start_ns, policy, self.out);
                }
                Ok(Some((i, Inbound::Interval(report)))) if self.agents.alive[i] => {
                    let (r, read) = *report;
                    self.take_interval(i, &r, read);
                }
                Ok(Some((i, Inbound::Ended(why)))) => {
                    if self.agents.alive[i] && self.agents.outcomes[i].final_report.is_none() {
                        let why = format!("before its final report: {why}");
                        if let Some(stop) = self.agents.lose(i, "lost", why, self.sc.on_agent_loss, self.out) {
                            self.incomplete.get_or_insert(stop);
                        }
                    }
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// The final reports' deadline passed: the agents still owing one are
    /// lost; the run cannot complete under `on_agent_loss: abort`, or with
    /// no final report at all.
    fn no_final_in_time(&mut self) {
        self.agents.no_final_in_time();
        let none = self.agents.outcomes.iter().all(|o| o.final_report.is_none());
        if self.sc.on_agent_loss == OnAgentLoss::Abort || none {
            self.incomplete.get_or_insert_with(|| "some agents sent no final report".into());
        }
    }
}
