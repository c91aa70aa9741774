//! The agents' streams merged into one channel for the run loop: one task
//! per session reads its agent's messages, feeds keepalive Pongs to the
//! session's clock follower, and reads each interval report's histograms on
//! the way (on any worker thread, with the CPU time that took), so the run
//! loop only merges.
//!
//! May import `merge` (reading histograms) and `session`.

use common::proto::{self, agent_message::Msg as AMsg, AgentMessage};
use tokio::sync::mpsc;

use crate::merge;
use crate::session::AgentSession;

/// One event from an agent's session for the run loop, with the agent's index.
pub(super) type Event = (usize, Inbound);

/// What an agent's session hands the run loop.
pub(super) enum Inbound {
    /// An interval report, its histograms read on the session's task.
    Interval(Box<(proto::IntervalReport, ReadAhead)>),
    /// Any other message.
    Msg(AgentMessage),
    /// The session ended, and why.
    Ended(String),
}

/// An interval report's histograms, read on the session's task.
pub(super) struct ReadAhead {
    pub groups: Vec<common::stats::ReadGroup>,
    /// CPU time the reading took (part of the interval's merge cost).
    pub cpu_ns: u64,
}

/// Starts one reader per session (taking its stream) and returns the
/// channel they all feed. It ends when every reader has.
pub(super) fn forward(sessions: &mut [AgentSession]) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    for (i, s) in sessions.iter_mut().enumerate() {
        let Some(mut stream) = s.take_stream() else {
            continue;
        };
        let tx = tx.clone();
        let clock = s.clock_follower();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if let Some(AMsg::Pong(p)) = &m.msg {
                            clock.pong(p);
                        }
                        if tx.send((i, inbound(m))).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send((i, Inbound::Ended("the agent closed the session".into())));
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send((i, Inbound::Ended(format!("session failed: {}", e.message()))));
                        break;
                    }
                }
            }
        });
    }
    rx
}

/// An agent's message as the run loop takes it: interval reports read ahead.
fn inbound(m: AgentMessage) -> Inbound {
    match m.msg {
        Some(AMsg::Interval(r)) => {
            let c0 = thread_cpu_ns();
            let groups = merge::read_ahead(&r);
            let cpu_ns = thread_cpu_ns().saturating_sub(c0);
            Inbound::Interval(Box::new((r, ReadAhead { groups, cpu_ns })))
        }
        msg => Inbound::Msg(AgentMessage { msg }),
    }
}

/// CPU time of the calling thread (ns).
pub(super) fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}
