//! The aggregator task: ticks interval boundaries to the tasks, merges
//! their reports, and emits one interval report per interval to the
//! coordinator (and to the agent's `/metrics`), a grace after the interval
//! ends so late reports still join it. Returns the whole run's tally once
//! every task is done.
//!
//! Imports `task.rs` and `tally.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clock::TimeBase;
use common::plan::Shard;
use common::proto::{self, agent_message::Msg, AgentMessage};
use common::scenario::Scenario;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::tally::GroupTally;
use super::task::{wait_start, Outbox, Role, TaskReport};
use crate::metrics::AgentMetrics;
use crate::procstat;

/// What the aggregator is wired to.
pub(super) struct Aggregator {
    pub shard: Arc<Shard>,
    pub time: TimeBase,
    pub start: watch::Receiver<Option<i64>>,
    /// The interval that just began, to every task.
    pub ticks: watch::Sender<u64>,
    pub reports: mpsc::UnboundedReceiver<TaskReport>,
    pub out: Outbox,
    /// Cancelled when the coordinator is gone: all load stops.
    pub cancel: CancellationToken,
    pub metrics: AgentMetrics,
}

impl Aggregator {
    pub async fn run(mut self) -> GroupTally {
        let mut total = GroupTally::default();
        let Some(start) = wait_start(self.start.clone(), &self.cancel).await else {
            // Drain reports until tasks end.
            while let Some(r) = self.reports.recv().await {
                total.add(&r);
            }
            return total;
        };
        let shard = self.shard.clone();
        let sc = &shard.scenario;
        self.metrics.run_started(&shard.run_id, sc, &targets(&shard));
        let mut iv = Intervals::new(&shard, start);
        let mut open = true;
        while open {
            let (at, is_tick) = iv.next_wake();
            tokio::select! {
                biased;
                r = self.reports.recv() => match r {
                    Some(r) => {
                        total.add(&r);
                        iv.take(r);
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(self.time.instant_at(at)) => {
                    if is_tick {
                        let _ = self.ticks.send(iv.next_tick);
                        iv.next_tick += 1;
                    } else {
                        let msg = iv.emit(sc, &self.metrics, iv.next_emit, iv.producers_active);
                        iv.next_emit += 1;
                        if self.out.send(Ok(msg)).await.is_err() {
                            // Coordinator gone: stop all load.
                            self.cancel.cancel();
                        }
                    }
                }
            }
        }
        // Every task is done: send what is left as the last interval(s).
        let last = iv.pending.keys().next_back().copied().unwrap_or(iv.next_emit).max(iv.next_emit);
        for k in iv.next_emit..=last {
            let mut msg = iv.emit(sc, &self.metrics, k, 0);
            if let (true, Some(Msg::Interval(r))) = (k == last, msg.msg.as_mut()) {
                // From here the agent only answers keepalives: it says so.
                r.last = true;
            }
            let _ = self.out.send(Ok(msg)).await;
        }
        self.metrics.run_ended();
        total
    }
}

/// Target rate per producer group (milli-messages per second) on this agent.
fn targets(shard: &Shard) -> HashMap<usize, u64> {
    let mut targets: HashMap<usize, u64> = HashMap::new();
    for p in &shard.producers {
        *targets.entry(p.group).or_default() += p.rate_milli;
    }
    targets
}

/// One interval's reports, merged.
#[derive(Default)]
struct IntervalAcc {
    groups: GroupTally,
    reports: u32,
}

/// The aggregator's interval bookkeeping: the next boundary to tick, the
/// next interval to emit, what reports each pending interval holds.
struct Intervals {
    start: i64,
    step: i64,
    step_s: f64,
    /// How long after an interval's end it is emitted.
    grace: i64,
    /// Boundary k is at start + k*step.
    next_tick: u64,
    /// Interval k is emitted at boundary k+1, plus the grace.
    next_emit: u64,
    pending: BTreeMap<u64, IntervalAcc>,
    /// Unique messages received so far, per consumer group.
    progress: Vec<u64>,
    tasks_total: u32,
    producers_active: u32,
    cpu_prev: u64,
    wall_prev: Instant,
}

impl Intervals {
    fn new(shard: &Shard, start: i64) -> Intervals {
        let sc = &shard.scenario;
        let step = sc.report_interval.as_nanos() as i64;
        Intervals {
            start,
            step,
            step_s: sc.report_interval.as_secs_f64(),
            grace: (step / 4).min(200_000_000),
            next_tick: 1,
            next_emit: 0,
            pending: BTreeMap::new(),
            progress: vec![0; sc.consumers.len()],
            tasks_total: (shard.producers.len() + shard.consumers.len()) as u32,
            producers_active: shard.producers.len() as u32,
            cpu_prev: procstat::cpu_ns(),
            wall_prev: Instant::now(),
        }
    }

    /// When to wake next (coordinator time), and whether that is a tick
    /// (else an emit).
    fn next_wake(&self) -> (i64, bool) {
        let tick_at = self.start + self.next_tick as i64 * self.step;
        let emit_at = self.start + (self.next_emit as i64 + 1) * self.step + self.grace;
        if tick_at <= emit_at {
            (tick_at, true)
        } else {
            (emit_at, false)
        }
    }

    /// A task's report joins its interval; late reports join the oldest
    /// interval not yet sent.
    fn take(&mut self, r: TaskReport) {
        let k = r.interval.max(self.next_emit);
        if r.role == Role::Consumer {
            self.progress[r.group] += r.unique_new;
        }
        if r.done && r.role == Role::Producer {
            self.producers_active = self.producers_active.saturating_sub(1);
        }
        let acc = self.pending.entry(k).or_default();
        acc.reports += 1;
        acc.groups.add(&r);
    }

    /// Interval `index`'s report (and its `/metrics` update), with the
    /// process's CPU and wall time since the last one.
    fn emit(&mut self, sc: &Scenario, metrics: &AgentMetrics, index: u64, producers_active: u32) -> AgentMessage {
        let acc = self.pending.remove(&index).unwrap_or_default();
        metrics.interval(sc, self.step_s, &acc.groups.producers, &acc.groups.consumers);
        let (cpu, wall) = (procstat::cpu_ns(), Instant::now());
        let usage = Usage { cpu_ns: cpu.saturating_sub(self.cpu_prev), wall: wall.duration_since(self.wall_prev) };
        self.cpu_prev = cpu;
        self.wall_prev = wall;
        self.report(sc, index, acc, usage, producers_active)
    }

    fn report(&self, sc: &Scenario, index: u64, acc: IntervalAcc, usage: Usage, producers_active: u32) -> AgentMessage {
        let max_lag_ns = acc.groups.max_lag_ns();
        let progress = sc
            .consumers
            .iter()
            .zip(&self.progress)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| proto::SubscriptionProgress {
                topic: c.topic.clone(),
                subscription: c.subscription.clone(),
                unique_received: *n,
            })
            .collect();
        AgentMessage {
            msg: Some(Msg::Interval(proto::IntervalReport {
                index,
                start_ns: self.start + index as i64 * self.step,
                end_ns: self.start + (index as i64 + 1) * self.step,
                groups: acc.groups.into_proto(),
                cpu_ns: usage.cpu_ns,
                wall_ns: usage.wall.as_nanos() as u64,
                progress,
                max_lag_ns,
                tasks_reporting: acc.reports.min(self.tasks_total),
                tasks_total: self.tasks_total,
                producers_active,
                last: false,
            })),
        }
    }
}

/// The process's CPU and wall time over one interval.
struct Usage {
    cpu_ns: u64,
    wall: Duration,
}
