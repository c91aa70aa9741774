//! The run engine: prepares an agent's shard on a driver (topics, then
//! consumers, then producers), starts every task at one instant, streams one
//! interval report per `report_interval`, and builds the final report.
//!
//! ```text
//! prepare ──spawns──┬─ producer.rs    send on schedule (due.rs) → ack or time out (in_flight.rs, deadlines.rs)
//!                   ├─ consumer.rs    receive → classify (seen.rs), note when (activity.rs) → ack
//!                   └─ aggregator.rs  tick boundaries → merge TaskReports (tally.rs) → IntervalReport ─→ Outbox
//!        each task: interval.rs (which interval its counts belong to) ─TaskReport→ aggregator
//! finish ── every task's final + the run's tally ─→ final_report.rs → FinalReport ─→ Outbox
//! ```
//!
//! Hot path: every task owns its counters and histograms; nobody else
//! touches them. At each interval boundary the aggregator bumps a watch
//! value; each task swaps its stats out (`mem::take`) and sends them over a
//! channel. No lock is shared across tasks.
//!
//! Time: every instant is read from the [`TimeBase`] the run is given, and
//! every wait is a tokio timer, so under tokio's paused clock the engine's
//! timing (tests) follows `tokio::time::advance`.
//!
//! Imports: this file (the lifecycle) uses the other engine files, and none
//! of them uses it. `task.rs`, `deadlines.rs`, `due.rs`, `seen.rs` and
//! `activity.rs` import no engine file; see each file's header for the rest.

mod activity;
mod aggregator;
mod consumer;
mod deadlines;
mod due;
mod final_report;
mod in_flight;
mod interval;
mod producer;
mod seen;
mod tally;
mod task;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clock::TimeBase;
use common::plan::Shard;
use common::proto::{self, agent_message::Msg, AgentMessage};
use common::scenario::{Scenario, SubType, Topic};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::driver::{Driver, DriverError};
use crate::metrics::AgentMetrics;
use crate::procstat;
use activity::Activity;
use aggregator::Aggregator;
use consumer::{ConsumerFinal, ConsumerTask};
use due::PaceChange;
use final_report::{Finals, Since};
use interval::Reporter;
use producer::{rate_limiter, PaceRx, ProducerFinal, ProducerTask, RateCap};
use tally::GroupTally;
use task::{Role, TaskReport};

pub use producer::{END_GRACE_NS, LATE_NS};
pub use task::Outbox;

/// A prepared run: every client created, every task waiting for Start.
pub struct PreparedRun {
    shard: Arc<Shard>,
    start_tx: watch::Sender<Option<i64>>,
    /// Cancels everything (abort).
    cancel: CancellationToken,
    /// Ends the consumers (normal stop after the drain).
    stop_consumers: CancellationToken,
    /// Ends the producers' sending; they still await what is in flight (leave).
    stop_sending: CancellationToken,
    producers: Vec<JoinHandle<ProducerFinal>>,
    consumers: Vec<JoinHandle<ConsumerFinal>>,
    aggregator: JoinHandle<GroupTally>,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
    since: Since,
    out: Outbox,
    notes: Vec<String>,
    /// The run's time base, shared with every task (clock re-sync).
    time: TimeBase,
    /// Run control: each producer group's pace changes (its producers
    /// watch them), the factor and pause in force per group, and the
    /// agent's cap (`--max-rate`) a new rate is checked against.
    pace: Vec<watch::Sender<Arc<Vec<PaceChange>>>>,
    paces: Vec<(f64, bool)>,
    rate_cap: Option<f64>,
}

/// What every task of one run is wired to, while `prepare` spawns them.
struct Wiring {
    time: TimeBase,
    start: watch::Receiver<Option<i64>>,
    ticks: watch::Receiver<u64>,
    reports: mpsc::UnboundedSender<TaskReport>,
    /// Stops producers (and everything else): abort.
    cancel: CancellationToken,
    /// Stops consumers: the normal end, after the drain.
    stop_consumers: CancellationToken,
    /// Stops the producers' sending, not their wait for the acks in flight
    /// (the agent leaves: [`PreparedRun::leave`]; an interrupted run:
    /// [`PreparedRun::stop_producers`]).
    stop_sending: CancellationToken,
    /// The agent's self-imposed cap (`agent --max-rate`), enforced at run
    /// time for every producer of this agent together: a closed-loop
    /// producer, or an open-loop one catching up on its schedule, never
    /// exceeds it.
    cap: Option<RateCap>,
    /// Run control's changes, per producer group.
    pace: Vec<PaceRx>,
}

impl Wiring {
    fn reporter(&self, role: Role, group: usize, step: Duration) -> Reporter {
        Reporter::new(role, group, step, self.ticks.clone(), self.reports.clone())
    }
}

type Tasks = (Vec<JoinHandle<ConsumerFinal>>, Vec<JoinHandle<ProducerFinal>>);

/// Creates topics, consumers and producers for `shard` on `driver`. On any
/// error, everything created so far is torn down. `metrics` receives the
/// run's intervals (from the aggregator, once per interval).
pub async fn prepare<D: Driver>(
    driver: Arc<D>,
    shard: Shard,
    time: TimeBase,
    out: Outbox,
    cleanup: Box<dyn FnOnce() + Send>,
    metrics: AgentMetrics,
    rate_cap: Option<f64>,
) -> Result<PreparedRun, DriverError> {
    let shard = Arc::new(shard);
    let cancel = CancellationToken::new();
    let (start_tx, start_rx) = watch::channel(None::<i64>);
    let (tick_tx, tick_rx) = watch::channel(0u64);
    let (rep_tx, rep_rx) = mpsc::unbounded_channel::<TaskReport>();
    let (pace, pace_rx): (Vec<_>, Vec<_>) =
        shard.scenario.producers.iter().map(|_| watch::channel(Arc::new(Vec::new()))).unzip();
    let wiring = Wiring {
        time: time.clone(),
        start: start_rx.clone(),
        ticks: tick_rx,
        reports: rep_tx,
        stop_consumers: cancel.child_token(),
        stop_sending: cancel.child_token(),
        cancel: cancel.clone(),
        cap: rate_cap.and_then(rate_limiter),
        pace: pace_rx,
    };
    let spawned = spawn_tasks(&*driver, &shard, &wiring).await;
    let stop_consumers = wiring.stop_consumers.clone();
    let stop_sending = wiring.stop_sending.clone();
    // The aggregator sees the end of the reports when the last task ends.
    drop(wiring);
    let (consumers, producers) = match spawned {
        Ok(v) => v,
        Err(e) => {
            cancel.cancel();
            cleanup();
            return Err(e);
        }
    };
    let aggregator = Aggregator {
        shard: shard.clone(),
        time: time.clone(),
        start: start_rx,
        ticks: tick_tx,
        reports: rep_rx,
        out: out.clone(),
        cancel: cancel.clone(),
        metrics,
    };
    Ok(PreparedRun {
        shard,
        start_tx,
        cancel,
        stop_consumers,
        stop_sending,
        producers,
        consumers,
        aggregator: tokio::spawn(aggregator.run()),
        cleanup: Some(cleanup),
        since: Since { cpu_ns: procstat::cpu_ns(), wall: Instant::now() },
        out,
        notes: Vec::new(),
        time,
        paces: vec![(1.0, false); pace.len()],
        pace,
        rate_cap,
    })
}

/// Creates the topics this shard touches, then its consumers, then its
/// producers, each task spawned waiting for Start.
async fn spawn_tasks<D: Driver>(driver: &D, shard: &Shard, w: &Wiring) -> Result<Tasks, DriverError> {
    let sc = &shard.scenario;
    let mut topics: Vec<&str> = shard
        .producers
        .iter()
        .map(|p| sc.producers[p.group].topic.as_str())
        .chain(shard.consumers.iter().map(|c| sc.consumers[c.group].topic.as_str()))
        .collect();
    topics.sort_unstable();
    topics.dedup();
    for name in &topics {
        let topic = scenario_topic(sc, name)?;
        in_time(sc, driver.create_topic(topic), || format!("creating topic `{name}`")).await?;
    }
    let consumers = spawn_consumers(driver, shard, w).await?;
    let producers = spawn_producers(driver, shard, w).await?;
    Ok((consumers, producers))
}

async fn spawn_consumers<D: Driver>(
    driver: &D,
    shard: &Shard,
    w: &Wiring,
) -> Result<Vec<JoinHandle<ConsumerFinal>>, DriverError> {
    let sc = &shard.scenario;
    let n_producers: u64 = sc.producers.iter().map(|g| u64::from(g.count)).sum();
    let mut consumers = Vec::new();
    for inst in &shard.consumers {
        let group = &sc.consumers[inst.group];
        let topic = scenario_topic(sc, &group.topic)?;
        let subscribing = driver.consumer(topic, group, inst.index_in_group);
        let client = in_time(sc, subscribing, || format!("subscribing `{}`", group.subscription)).await?;
        let rep = w.reporter(Role::Consumer, inst.group, sc.report_interval);
        let activity = Activity::new(group.sub_type == SubType::KeyShared);
        let task = ConsumerTask::new(inst.clone(), n_producers, group.pauses.clone(), w.time.clone(), rep, activity);
        let stop_after = sc.consumer_stop_after(inst.group, inst.index_in_group);
        let run = task.run(client, w.start.clone(), w.stop_consumers.clone(), sc.phases.warmup, stop_after);
        consumers.push(tokio::spawn(run));
    }
    Ok(consumers)
}

async fn spawn_producers<D: Driver>(
    driver: &D,
    shard: &Shard,
    w: &Wiring,
) -> Result<Vec<JoinHandle<ProducerFinal>>, DriverError> {
    let sc = &shard.scenario;
    let mut producers = Vec::new();
    for inst in &shard.producers {
        let group = &sc.producers[inst.group];
        let topic = scenario_topic(sc, &group.topic)?;
        let creating = driver.producer(topic, group, inst.index_in_group);
        let client = in_time(sc, creating, || format!("creating producer on `{}`", group.topic)).await?;
        let seed = sc.seed ^ (u64::from(inst.id) << 20);
        let rep = w.reporter(Role::Producer, inst.group, sc.report_interval);
        let pace = w.pace.get(inst.group).cloned().unwrap_or_else(|| watch::channel(Arc::new(Vec::new())).1);
        let task = ProducerTask::new(inst.clone(), group.clone(), seed, w.time.clone(), rep, w.cap.clone(), pace)
            .map_err(|e| DriverError::Producer { topic: group.topic.clone(), reason: e.to_string() })?;
        let run = task.run(client, w.start.clone(), (w.cancel.clone(), w.stop_sending.clone()), sc.phases.clone());
        producers.push(tokio::spawn(run));
    }
    Ok(producers)
}

/// A topic the shard names; validation guarantees it exists, a hand-made shard may not.
fn scenario_topic<'a>(sc: &'a Scenario, name: &str) -> Result<&'a Topic, DriverError> {
    sc.topic(name).ok_or_else(|| DriverError::Topic { topic: name.to_string(), reason: "not in scenario".into() })
}

/// `call` to the broker, given the scenario's connect timeout to answer.
async fn in_time<T>(
    sc: &Scenario,
    call: impl Future<Output = Result<T, DriverError>>,
    what: impl FnOnce() -> String,
) -> Result<T, DriverError> {
    let connect = sc.broker.connect_timeout;
    match tokio::time::timeout(connect, call).await {
        Ok(r) => r,
        Err(_) => Err(DriverError::Unsupported(format!(
            "{}: no answer from the broker within {}",
            what(),
            common::units::format_duration(connect)
        ))),
    }
}

impl PreparedRun {
    /// The run's time base: a new offset set on it reaches every task.
    pub fn time(&self) -> TimeBase {
        self.time.clone()
    }

    pub fn counts(&self) -> (u32, u32) {
        (self.shard.producers.len() as u32, self.shard.consumers.len() as u32)
    }

    /// Starts every task at `start_at_ns` (coordinator time).
    pub fn start(&self, start_at_ns: i64) {
        let _ = self.start_tx.send(Some(start_at_ns));
    }

    /// Run control (see the proto's `Control`): checked whole, then every
    /// named group's producers take the change at its instant. Refused
    /// (nothing changed) for an unknown group, a factor that is not a
    /// positive number, or a rate above the agent's `--max-rate`.
    pub fn control(&mut self, c: &proto::Control) -> Result<(), String> {
        let mut paces = self.paces.clone();
        for g in &c.groups {
            let slot = paces.get_mut(g.group as usize).ok_or_else(|| format!("no producer group {}", g.group))?;
            if !(g.factor.is_finite() && g.factor > 0.0) {
                return Err(format!("rate factor {}: not a positive number", g.factor));
            }
            *slot = (g.factor, g.paused);
        }
        let rate: f64 = self
            .shard
            .producers
            .iter()
            .map(|p| match paces.get(p.group) {
                Some((f, false)) => p.rate_milli as f64 / 1000.0 * f,
                _ => 0.0,
            })
            .sum();
        if let Some(cap) = self.rate_cap.filter(|cap| rate > cap * 1.000_001) {
            return Err(format!("{rate:.0} msg/s here is above this agent's --max-rate {cap:.0}"));
        }
        self.paces = paces;
        let change = |factor: f64, paused: bool| PaceChange { at_ns: c.at_ns, factor, paused, end_sends: false };
        for g in &c.groups {
            if let Some(tx) = self.pace.get(g.group as usize) {
                tx.send_modify(|log| Arc::make_mut(log).push(change(g.factor, g.paused)));
            }
        }
        if c.end_sends {
            let end = PaceChange { end_sends: true, ..change(1.0, false) };
            self.pace.iter().for_each(|tx| tx.send_modify(|log| Arc::make_mut(log).push(end)));
        }
        Ok(())
    }

    /// Stops at once: producers and consumers end wherever they are.
    pub fn abort(&self) {
        self.cancel.cancel();
    }

    /// The producers stop sending (an interrupted run); consumers go on
    /// until [`PreparedRun::finish`].
    pub fn stop_producers(&self) {
        self.stop_sending.cancel();
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops at once and waits (at most `within`) until every producer and
    /// consumer task has ended: when this returns, this run sends nothing
    /// more. No final report is built.
    pub async fn abort_and_wait(mut self, within: Duration) {
        self.cancel.cancel();
        let producers = futures::future::join_all(self.producers.drain(..));
        let consumers = futures::future::join_all(self.consumers.drain(..));
        if tokio::time::timeout(within, futures::future::join(producers, consumers)).await.is_err() {
            warn!("some tasks did not stop within {within:?} of the abort");
        }
        self.aggregator.abort();
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }

    /// Ends the run normally: consumers stop, producers finish (they stop by
    /// themselves at the end of the measurement), then the final report goes out.
    pub async fn finish(mut self, abort: bool) {
        if abort {
            self.cancel.cancel();
        }
        // If Start never came, nothing will; release the waiting tasks.
        if self.start_tx.borrow().is_none() {
            self.cancel.cancel();
        }
        // Producers end by themselves (schedule done, acks drained or timed out).
        let producers = join_each(std::mem::take(&mut self.producers), "a producer task", &mut self.notes).await;
        self.report(producers).await;
    }

    /// The agent was told to go: producers stop sending now and await their
    /// sends in flight, consumers keep receiving until `drain` has passed
    /// (an agent without consumers does not wait), then the final report
    /// goes out as after a Stop. Whatever has not ended by then is aborted.
    pub async fn leave(mut self, drain: Duration) {
        let deadline = tokio::time::Instant::now() + drain;
        self.stop_sending.cancel();
        if self.start_tx.borrow().is_none() {
            self.cancel.cancel();
        }
        let producers = {
            let joining = join_each(std::mem::take(&mut self.producers), "a producer task", &mut self.notes);
            tokio::pin!(joining);
            tokio::select! {
                finals = &mut joining => finals,
                _ = tokio::time::sleep_until(deadline) => {
                    self.cancel.cancel();
                    joining.await
                }
            }
        };
        if !self.consumers.is_empty() && !self.cancel.is_cancelled() {
            tokio::time::sleep_until(deadline).await;
        }
        self.report(producers).await;
    }

    /// The end of a run: consumers stop, then the final report (with the
    /// producers' `producers` finals) goes out and the driver is cleaned up.
    async fn report(mut self, producers: Vec<ProducerFinal>) {
        self.stop_consumers.cancel();
        let consumers = join_each(std::mem::take(&mut self.consumers), "a consumer task", &mut self.notes).await;
        let total = match (&mut self.aggregator).await {
            Ok(t) => t,
            Err(e) => {
                self.notes.push(format!("the aggregator failed: {e}"));
                GroupTally::default()
            }
        };
        let finals = Finals { shard: &self.shard, total, producers, consumers, since: self.since };
        let report = final_report::build(finals, &mut self.notes);
        let _ = self.out.send(Ok(AgentMessage { msg: Some(Msg::Final(report)) })).await;
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }
}

/// Awaits each task in turn; one that failed (panicked) becomes a note.
async fn join_each<T>(tasks: Vec<JoinHandle<T>>, what: &str, notes: &mut Vec<String>) -> Vec<T> {
    let mut finals = Vec::new();
    for h in tasks {
        match h.await {
            Ok(f) => finals.push(f),
            Err(e) => notes.push(format!("{what} failed: {e}")),
        }
    }
    finals
}

impl Drop for PreparedRun {
    fn drop(&mut self) {
        // A run dropped without finish (session gone) stops all load.
        self.cancel.cancel();
    }
}
