//! What the engine's tasks share: the start signal they wait for, the
//! report each task sends the aggregator once per interval, and the outbox
//! to the coordinator.
//!
//! Imports no other engine file.

use common::proto::AgentMessage;
use common::stats::GroupPhases;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Sender of messages to the coordinator.
pub type Outbox = mpsc::Sender<Result<AgentMessage, tonic::Status>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Producer,
    Consumer,
}

/// One task's stats for one interval.
pub(super) struct TaskReport {
    pub interval: u64,
    pub role: Role,
    pub group: usize,
    pub stats: GroupPhases,
    /// Consumers: messages new to this consumer's sets in the interval.
    pub unique_new: u64,
    /// The task's last report.
    pub done: bool,
}

/// Waits for the start instant; None when cancelled first.
pub(super) async fn wait_start(mut rx: watch::Receiver<Option<i64>>, cancel: &CancellationToken) -> Option<i64> {
    loop {
        if let Some(s) = *rx.borrow_and_update() {
            return Some(s);
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            r = rx.changed() => if r.is_err() { return None },
        }
    }
}
