//! The run engine: prepares an agent's shard on a driver (topics, then
//! consumers, then producers), starts every task at one instant, streams one
//! interval report per `report_interval`, and builds the final report.
//!
//! Hot path: every task owns its counters and histograms; nobody else
//! touches them. At each interval boundary the aggregator bumps a watch
//! value; each task swaps its stats out (`mem::take`) and sends them over a
//! channel. No lock is shared across tasks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::clock::TimeBase;
use common::plan::{ConsumerInstance, ProducerInstance, Shard};
use common::proto::{self, agent_message::Msg, AgentMessage};
use common::rangeset::RangeSet;
use common::scenario::{ProducerGroup, Scenario};
use common::schedule::Schedule;
use common::stamp::Stamp;
use common::stats::GroupPhases;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::driver::{ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError};
use crate::metrics::AgentMetrics;
use crate::payload::{KeyGen, PayloadGen};
use crate::procstat;

/// A send later than this behind its intended time counts as late. Tokio
/// timers tick in milliseconds, so smaller lags are timer granularity.
pub const LATE_NS: i64 = 5_000_000;

/// How far past the end of the measurement a producer behind its schedule
/// keeps sending what was scheduled before the end.
pub const END_GRACE_NS: i64 = 100_000_000;

/// Sender of messages to the coordinator.
pub type Outbox = mpsc::Sender<Result<AgentMessage, tonic::Status>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

/// One task's stats for one interval.
struct TaskReport {
    interval: u64,
    role: Role,
    group: usize,
    stats: GroupPhases,
    /// Consumers: messages new to this consumer's sets in the interval.
    unique_new: u64,
    /// The task's last report.
    done: bool,
}

struct ProducerFinal {
    inst: ProducerInstance,
    sent: u64,
    acked: RangeSet,
    error: Option<String>,
    /// Actual time of its first send (coordinator time); None if it sent nothing.
    first_send_ns: Option<i64>,
}

struct ConsumerFinal {
    inst: ConsumerInstance,
    seen: Vec<Option<Seen>>,
    duplicates: u64,
    redelivered: u64,
    /// Times it subscribed again plus deliveries the broker flagged as
    /// redelivered: what makes a message two consumers got a redelivery.
    redelivery_causes: u64,
    reordered: u64,
    deliveries: u64,
    undecodable: u64,
    partitions: HashMap<u32, u64>,
    faulted: bool,
    error: Option<String>,
    errors: RecvErrors,
}

/// Receive and ack failures a consumer went on after: how many, the first
/// and the last (a final-report note; the count is also in the
/// interval stats as `receive_errors`).
#[derive(Default)]
struct RecvErrors {
    count: u64,
    first: Option<String>,
    last: Option<String>,
}

impl RecvErrors {
    fn add(&mut self, e: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.last = Some(e);
        }
    }

    fn note(&self) -> Option<String> {
        let first = self.first.as_deref()?;
        Some(match &self.last {
            None => format!("1 receive error: {first}"),
            Some(last) => format!("{} receive errors, the first: {first}; the last: {last}", self.count),
        })
    }
}

#[derive(Default, Clone)]
struct Seen {
    set: RangeSet,
    max: Option<u64>,
}

/// What one delivery of a producer's message was to a consumer.
#[derive(Debug, PartialEq)]
enum Receipt {
    /// First time; `reordered` when a later message came before it.
    New { reordered: bool },
    /// Again, and the broker says it redelivers, or the consumer had it
    /// before it last subscribed again (its ack may never have landed).
    Redelivered,
    /// Again, with nothing to explain it.
    Duplicate,
}

impl Seen {
    /// Records `seq`; `before` is what this consumer had received when it
    /// last subscribed again.
    fn receive(&mut self, seq: u64, before: Option<&RangeSet>, flagged: bool) -> Receipt {
        if self.set.insert(seq) {
            let reordered = self.max.is_some_and(|m| seq < m);
            if !reordered {
                self.max = Some(seq);
            }
            Receipt::New { reordered }
        } else if flagged || before.is_some_and(|b| b.contains(seq)) {
            Receipt::Redelivered
        } else {
            Receipt::Duplicate
        }
    }
}

/// Cumulative data of the whole run, per group.
#[derive(Default)]
struct Aggregate {
    producers: HashMap<usize, GroupPhases>,
    consumers: HashMap<usize, GroupPhases>,
}

type Tasks = (Vec<JoinHandle<ConsumerFinal>>, Vec<JoinHandle<ProducerFinal>>);

/// A prepared run: every client created, every task waiting for Start.
pub struct PreparedRun {
    shard: Arc<Shard>,
    start_tx: watch::Sender<Option<i64>>,
    /// Cancels everything (abort).
    cancel: CancellationToken,
    /// Ends the consumers (normal stop after the drain).
    stop_consumers: CancellationToken,
    producers: Vec<JoinHandle<ProducerFinal>>,
    consumers: Vec<JoinHandle<ConsumerFinal>>,
    aggregator: JoinHandle<Aggregate>,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
    cpu_at_prepare: u64,
    wall_at_prepare: std::time::Instant,
    out: Outbox,
    notes: Vec<String>,
    /// The run's time base, shared with every task (clock re-sync).
    time: TimeBase,
}

/// A topic the shard names; validation guarantees it exists, a hand-made shard may not.
fn scenario_topic<'a>(sc: &'a Scenario, name: &str) -> Result<&'a common::scenario::Topic, DriverError> {
    sc.topic(name).ok_or_else(|| DriverError::Topic { topic: name.to_string(), reason: "not in scenario".into() })
}

fn total_producers(s: &Scenario) -> u64 {
    s.producers.iter().map(|g| u64::from(g.count)).sum()
}

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
    // The agent's self-imposed cap (`agent --max-rate`), enforced at run time
    // for every producer of this agent together: a closed-loop producer, or
    // an open-loop one catching up on its schedule, never exceeds it.
    let cap = rate_cap.and_then(rate_limiter);
    let shard = Arc::new(shard);
    let sc = &shard.scenario;
    let connect = sc.broker.connect_timeout;
    let cancel = CancellationToken::new();
    let stop_consumers = cancel.child_token();
    let (start_tx, start_rx) = watch::channel(None::<i64>);
    let (tick_tx, tick_rx) = watch::channel(0u64);
    let (rep_tx, rep_rx) = mpsc::unbounded_channel::<TaskReport>();

    let timed = |what: String| {
        move |_| {
            DriverError::Unsupported(format!(
                "{what}: no answer from the broker within {}",
                common::units::format_duration(connect)
            ))
        }
    };

    // Topics this shard touches.
    let mut topics: Vec<&str> = shard
        .producers
        .iter()
        .map(|p| sc.producers[p.group].topic.as_str())
        .chain(shard.consumers.iter().map(|c| sc.consumers[c.group].topic.as_str()))
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let result: Result<Tasks, DriverError> = async {
        for name in &topics {
            let topic = scenario_topic(sc, name)?;
            tokio::time::timeout(connect, driver.create_topic(topic))
                .await
                .map_err(timed(format!("creating topic `{name}`")))??;
        }
        let n_producers = total_producers(sc);
        let mut consumers = Vec::new();
        for inst in &shard.consumers {
            let group = &sc.consumers[inst.group];
            let topic = scenario_topic(sc, &group.topic)?;
            let client = tokio::time::timeout(connect, driver.consumer(topic, group, inst.index_in_group))
                .await
                .map_err(timed(format!("subscribing `{}`", group.subscription)))??;
            let task = ConsumerTask {
                inst: inst.clone(),
                time: time.clone(),
                warmup_end: 0,
                n_producers,
                ticks: tick_rx.clone(),
                clock: IntervalClock::new(sc.report_interval),
                reports: rep_tx.clone(),
                stats: GroupPhases::default(),
                unique_new: 0,
                seen: Vec::new(),
                before_reconnect: Vec::new(),
                connection: 0,
                flagged: 0,
                duplicates: 0,
                redelivered: 0,
                reordered: 0,
                deliveries: 0,
                undecodable: 0,
                partitions: HashMap::new(),
                faulted: false,
                errors: RecvErrors::default(),
                pauses: group.pauses.clone(),
            };
            let stop_after = sc.consumer_stop_after(inst.group, inst.index_in_group);
            consumers.push(tokio::spawn(task.run(
                client,
                start_rx.clone(),
                stop_consumers.clone(),
                sc.phases.warmup,
                stop_after,
            )));
        }
        let mut producers = Vec::new();
        for inst in &shard.producers {
            let group = &sc.producers[inst.group];
            let topic = scenario_topic(sc, &group.topic)?;
            let client = tokio::time::timeout(connect, driver.producer(topic, group, inst.index_in_group))
                .await
                .map_err(timed(format!("creating producer on `{}`", group.topic)))??;
            let seed = sc.seed ^ (u64::from(inst.id) << 20);
            let task = ProducerTask {
                inst: inst.clone(),
                group: group.clone(),
                time: time.clone(),
                ticks: tick_rx.clone(),
                clock: IntervalClock::new(sc.report_interval),
                reports: rep_tx.clone(),
                stats: GroupPhases::default(),
                acked: RangeSet::new(),
                payloads: PayloadGen::new(group.message_size, &group.payload, seed)
                    .map_err(|e| DriverError::Producer { topic: group.topic.clone(), reason: e })?,
                keys: KeyGen::new(group.keys, seed, u64::from(inst.index_in_group)),
                cap: cap.clone(),
                sent: 0,
                first_send_ns: None,
                seed,
            };
            producers.push(tokio::spawn(task.run(client, start_rx.clone(), cancel.clone(), sc.phases.clone())));
        }
        Ok((consumers, producers))
    }
    .await;
    drop(rep_tx);
    let (consumers, producers) = match result {
        Ok(v) => v,
        Err(e) => {
            cancel.cancel();
            cleanup();
            return Err(e);
        }
    };
    let aggregator = tokio::spawn(aggregate(
        shard.clone(),
        time.clone(),
        start_rx,
        tick_tx,
        rep_rx,
        out.clone(),
        cancel.clone(),
        metrics,
    ));
    Ok(PreparedRun {
        shard,
        start_tx,
        cancel,
        stop_consumers,
        producers,
        consumers,
        aggregator,
        cleanup: Some(cleanup),
        cpu_at_prepare: procstat::cpu_ns(),
        wall_at_prepare: std::time::Instant::now(),
        out,
        notes: Vec::new(),
        time,
    })
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

    /// Stops at once: producers and consumers end wherever they are.
    pub fn abort(&self) {
        self.cancel.cancel();
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
        let mut pfinals = Vec::new();
        for h in self.producers.drain(..) {
            match h.await {
                Ok(f) => pfinals.push(f),
                Err(e) => self.notes.push(format!("a producer task failed: {e}")),
            }
        }
        self.stop_consumers.cancel();
        let mut cfinals = Vec::new();
        for h in self.consumers.drain(..) {
            match h.await {
                Ok(f) => cfinals.push(f),
                Err(e) => self.notes.push(format!("a consumer task failed: {e}")),
            }
        }
        let agg = match (&mut self.aggregator).await {
            Ok(a) => a,
            Err(e) => {
                self.notes.push(format!("the aggregator failed: {e}"));
                Aggregate::default()
            }
        };
        let report =
            build_final(&self.shard, agg, pfinals, cfinals, &mut self.notes, self.cpu_at_prepare, self.wall_at_prepare);
        let _ = self.out.send(Ok(AgentMessage { msg: Some(Msg::Final(report)) })).await;
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }
}

impl Drop for PreparedRun {
    fn drop(&mut self) {
        // A run dropped without finish (session gone) stops all load.
        self.cancel.cancel();
    }
}

fn build_final(
    shard: &Shard,
    agg: Aggregate,
    pfinals: Vec<ProducerFinal>,
    cfinals: Vec<ConsumerFinal>,
    notes: &mut Vec<String>,
    cpu0: u64,
    wall0: std::time::Instant,
) -> proto::FinalReport {
    let sc = &shard.scenario;
    let mut groups = Vec::new();
    let mut pg: Vec<_> = agg.producers.into_iter().collect();
    pg.sort_by_key(|(g, _)| *g);
    for (g, s) in pg {
        groups.push(s.to_proto(g as u32, proto::Role::Producer));
    }
    let mut cg: Vec<_> = agg.consumers.into_iter().collect();
    cg.sort_by_key(|(g, _)| *g);
    for (g, s) in cg {
        groups.push(s.to_proto(g as u32, proto::Role::Consumer));
    }
    let mut producers = Vec::new();
    let first_send_ns = pfinals.iter().filter_map(|f| f.first_send_ns).min().unwrap_or(0);
    for f in pfinals {
        if let Some(e) = &f.error {
            notes.push(format!("producer {}: {e}", f.inst.id));
        }
        producers.push(proto::ProducerAcks {
            producer_id: u64::from(f.inst.id),
            topic: sc.producers[f.inst.group].topic.clone(),
            group: f.inst.group as u32,
            sent: f.sent,
            acked: Some(f.acked.to_proto()),
        });
    }
    // Merge this agent's consumers per subscription (consumer group).
    struct SubAcc {
        seen: Vec<Option<RangeSet>>,
        duplicates: u64,
        redelivered: u64,
        overlaps: u64,
        redelivery_causes: u64,
        reordered: u64,
        deliveries: u64,
        undecodable: u64,
        partitions: HashMap<u32, u64>,
    }
    let mut subs: HashMap<usize, SubAcc> = HashMap::new();
    for f in cfinals {
        if let Some(e) = &f.error {
            notes.push(format!("consumer {} ({}): {e}", f.inst.id, sc.consumers[f.inst.group].name));
        }
        if let Some(n) = f.errors.note() {
            notes.push(format!("consumer {} ({}): {n}", f.inst.id, sc.consumers[f.inst.group].name));
        }
        if f.faulted {
            notes.push(format!(
                "consumer {} of `{}` was stopped by a fault action",
                f.inst.index_in_group, sc.consumers[f.inst.group].name
            ));
        }
        let acc = subs.entry(f.inst.group).or_insert_with(|| SubAcc {
            seen: Vec::new(),
            duplicates: 0,
            redelivered: 0,
            overlaps: 0,
            redelivery_causes: 0,
            reordered: 0,
            deliveries: 0,
            undecodable: 0,
            partitions: HashMap::new(),
        });
        acc.duplicates += f.duplicates;
        acc.redelivered += f.redelivered;
        acc.redelivery_causes += f.redelivery_causes;
        acc.reordered += f.reordered;
        acc.deliveries += f.deliveries;
        acc.undecodable += f.undecodable;
        for (p, n) in f.partitions {
            *acc.partitions.entry(p).or_default() += n;
        }
        for (pid, s) in f.seen.into_iter().enumerate() {
            let Some(s) = s else { continue };
            if acc.seen.len() <= pid {
                acc.seen.resize(pid + 1, None);
            }
            match &mut acc.seen[pid] {
                Some(existing) => acc.overlaps += existing.union_with(&s.set),
                slot @ None => *slot = Some(s.set),
            }
        }
    }
    let mut subscriptions = Vec::new();
    let mut sg: Vec<_> = subs.into_iter().collect();
    sg.sort_by_key(|(g, _)| *g);
    for (g, acc) in sg {
        let group = &sc.consumers[g];
        subscriptions.push(proto::SubscriptionReceipts {
            topic: group.topic.clone(),
            subscription: group.subscription.clone(),
            producers: acc
                .seen
                .into_iter()
                .enumerate()
                .filter_map(|(pid, s)| {
                    s.map(|s| proto::ProducerReceipts { producer_id: pid as u64, received: Some(s.to_proto()) })
                })
                .collect(),
            duplicates: acc.duplicates,
            redelivered: acc.redelivered,
            overlaps: acc.overlaps,
            redelivery_causes: acc.redelivery_causes,
            reordered: acc.reordered,
            deliveries: acc.deliveries,
            undecodable: acc.undecodable,
            partition_deliveries: acc.partitions.into_iter().collect(),
        });
    }
    proto::FinalReport {
        groups,
        producers,
        subscriptions,
        cpu_ns: procstat::cpu_ns().saturating_sub(cpu0),
        wall_ns: wall0.elapsed().as_nanos() as u64,
        notes: notes.clone(),
        max_rss_bytes: procstat::max_rss_bytes(),
        first_send_ns,
    }
}

/// Waits for the start instant; None when cancelled first.
async fn wait_start(mut rx: watch::Receiver<Option<i64>>, cancel: &CancellationToken) -> Option<i64> {
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

// ------------------------------------------------------------------ producer

struct ProducerTask {
    inst: ProducerInstance,
    group: ProducerGroup,
    time: TimeBase,
    ticks: watch::Receiver<u64>,
    clock: IntervalClock,
    reports: mpsc::UnboundedSender<TaskReport>,
    stats: GroupPhases,
    acked: RangeSet,
    payloads: PayloadGen,
    keys: KeyGen,
    sent: u64,
    /// Actual time of the first send (when the load began here); set once.
    first_send_ns: Option<i64>,
    /// Seeds the poisson arrivals of this producer.
    seed: u64,
    /// The agent-wide rate cap, shared by its producers (lock-free GCRA).
    cap: Option<Arc<governor::DefaultDirectRateLimiter>>,
}

/// A limiter for `rate` msg/s with a burst of 50 ms worth of messages.
fn rate_limiter(rate: f64) -> Option<Arc<governor::DefaultDirectRateLimiter>> {
    if !rate.is_finite() || rate < 1.0 {
        return None;
    }
    let per_s = std::num::NonZeroU32::new(rate.ceil().min(f64::from(u32::MAX)) as u32)?;
    let burst = std::num::NonZeroU32::new(((rate / 20.0).ceil() as u32).max(1))?;
    Some(Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(per_s).allow_burst(burst))))
}

type AckResult = (u64, i64, i64, Result<(), SendError>);

/// Which interval a task's counts belong to, by when they happen. The
/// aggregator's tick for a boundary can reach a busy task late, and what
/// the task takes in between (a burst of backlog after a pause, on a loaded
/// machine) would count in the interval before. So a task checks its own
/// clock readings against the next boundary and reports the interval that
/// ended itself; the tick (which also reaches idle tasks) then finds
/// nothing left to report.
#[derive(Debug, Clone)]
struct IntervalClock {
    start: i64,
    step: i64,
    /// The interval counts go to now.
    open: u64,
    /// Its end (i64::MAX before the start: only ticks count then).
    next_boundary: i64,
}

impl IntervalClock {
    fn new(step: Duration) -> IntervalClock {
        IntervalClock { start: 0, step: (step.as_nanos() as i64).max(1), open: 0, next_boundary: i64::MAX }
    }

    fn started(&mut self, start: i64) {
        self.start = start;
        self.open = 0;
        self.next_boundary = start.saturating_add(self.step);
    }

    /// The interval to report when `now` is past the open one's end.
    #[inline]
    fn crossed(&mut self, now: i64) -> Option<u64> {
        if now < self.next_boundary {
            return None;
        }
        let ended = self.open;
        self.open = ((now - self.start) / self.step) as u64;
        self.next_boundary = self.start + (self.open as i64 + 1) * self.step;
        Some(ended)
    }

    /// A tick: interval `began` began. The interval to report (the one
    /// before it), unless this task reported it already.
    fn tick(&mut self, began: u64) -> Option<u64> {
        if began <= self.open && self.next_boundary != i64::MAX {
            return None;
        }
        self.open = self.open.max(began);
        if self.next_boundary != i64::MAX {
            self.next_boundary = self.start + (self.open as i64 + 1) * self.step;
        }
        Some(began.saturating_sub(1))
    }
}

/// What ended a producer's wait for room in flight.
enum Woke {
    Cancelled,
    Ack(AckResult),
    Tick,
    Timer,
}

impl ProducerTask {
    fn flush(&mut self, interval: u64) {
        let stats = std::mem::take(&mut self.stats);
        let _ = self.reports.send(TaskReport {
            interval,
            role: Role::Producer,
            group: self.inst.group,
            stats,
            unique_new: 0,
            done: false,
        });
    }

    fn on_tick(&mut self) {
        // The tick value names the interval that just began; report the one before.
        let began = *self.ticks.borrow_and_update();
        if let Some(k) = self.clock.tick(began) {
            self.flush(k);
        }
    }

    /// Reports the interval that ended before `now`, if one did.
    #[inline]
    fn at(&mut self, now: i64) {
        if let Some(k) = self.clock.crossed(now) {
            self.flush(k);
        }
    }

    fn record_ack(&mut self, (seq, intended, sent, res): AckResult, now: i64, warmup_end: i64) {
        self.at(now);
        // Throughput counts on acknowledgement: the ack's time picks the phase.
        let ph = if now < warmup_end { &mut self.stats.warmup } else { &mut self.stats.measure };
        match res {
            Ok(()) => {
                ph.acked += 1;
                ph.response.record_ns(now - intended);
                ph.service.record_ns(now - sent);
                self.acked.insert(seq);
            }
            Err(e) => {
                ph.send_errors += 1;
                debug!(producer = self.inst.id, seq, error = ?e, "send failed");
            }
        }
    }

    /// Counts `from..to` (ns, coordinator time) as time spent due to send
    /// but held back (window full, or the client not taking the send), in
    /// the phase it fell in, up to the end of the sends (`end`): the
    /// measurement's share stays within its duration.
    fn add_wait(&mut self, from: i64, to: i64, warmup_end: i64, end: i64) {
        let to = to.min(end);
        if to <= from {
            return;
        }
        if from < warmup_end {
            self.stats.warmup.window_wait_ns += (to.min(warmup_end) - from) as u64;
        }
        if to > warmup_end {
            self.stats.measure.window_wait_ns += (to - from.max(warmup_end)) as u64;
        }
    }

    /// Counts every send past its timeout as failed (its ack, if it ever
    /// comes, is ignored) and re-arms the deadline timer.
    fn expire(&mut self, deadlines: &mut Deadlines, timer: &mut DeadlineTimer, now: i64, warmup_end: i64) {
        timer.armed = None;
        while let Some((seq, sent)) = deadlines.pop_expired(now) {
            self.record_ack((seq, sent, sent, Err(SendError::Timeout)), now, warmup_end);
        }
        timer.arm(deadlines, &self.time);
    }

    /// An acknowledgement from the in-flight set (not one already timed out).
    fn settle(&mut self, r: AckResult, deadlines: &mut Deadlines, now: i64, warmup_end: i64) {
        if deadlines.settle(r.0) {
            self.record_ack(r, now, warmup_end);
        }
    }

    async fn run<P: ProducerClient>(
        mut self,
        mut client: P,
        start_rx: watch::Receiver<Option<i64>>,
        cancel: CancellationToken,
        phases: common::scenario::Phases,
    ) -> ProducerFinal {
        let mut error = None;
        let Some(start) = wait_start(start_rx, &cancel).await else {
            client.close().await;
            return ProducerFinal { inst: self.inst, sent: 0, acked: self.acked, error: None, first_send_ns: None };
        };
        self.clock.started(start);
        let warmup_end = start + phases.warmup.as_nanos() as i64;
        let end = start + phases.send_end().as_nanos() as i64;
        let end_off = phases.send_end().as_nanos() as i64;
        // Open loop: intended times from the group's curve (O(1) amortized
        // per message). Closed loop (`rate: max`): no schedule; each send's
        // intended time is when it goes out.
        let mut schedule = Schedule::for_producer(&self.group, self.inst.rate_milli, self.seed);
        let mut next_off = schedule.as_mut().and_then(Schedule::next_ns).filter(|&t| t < end_off);
        let closed_loop = schedule.is_none();
        let max_in_flight = self.group.max_in_flight as usize;
        // Acks not yet in. Send timeouts are tracked by `deadlines` and one
        // timer, not a timer per send.
        let mut inflight = FuturesUnordered::new();
        let mut deadlines = Deadlines::new(self.group.send_timeout);
        let mut timer = DeadlineTimer::new();
        let mut seq = 0u64;
        let mut aborted = false;
        let producer_id = self.inst.id;
        let mut ended_early = false;
        // The hot path reads the clock once per message (plus once per ack
        // that is not in at once) and builds no wait future unless it waits.
        loop {
            let mut now = self.time.now_ns();
            let intended = match next_off {
                Some(off) => start + off,
                // A closed loop starts at the start instant too (Start
                // arrives ahead of it).
                None if closed_loop && now < end => now.max(start),
                None => break,
            };
            if self.ticks.has_changed().unwrap_or(false) {
                self.on_tick();
            }
            self.at(now);
            // Sending ends with the phase, whatever is left of the schedule:
            // a producer far behind its schedule never runs past the
            // measurement. (A grace covers timer granularity, so a producer
            // a few milliseconds behind still sends its last messages.)
            if now >= end + END_GRACE_NS {
                ended_early = true;
                break;
            }
            if timer.due(now) {
                self.expire(&mut deadlines, &mut timer, now, warmup_end);
            }
            debug_assert!(intended < end + 1);
            if now < intended {
                let at = self.time.instant_at(intended);
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => { aborted = true; break; }
                    Some(r) = inflight.next(), if !inflight.is_empty() => {
                        self.settle(r, &mut deadlines, self.time.now_ns(), warmup_end);
                    }
                    _ = self.ticks.changed() => self.on_tick(),
                    _ = timer.wait(), if timer.is_armed() => {
                        self.expire(&mut deadlines, &mut timer, self.time.now_ns(), warmup_end);
                    }
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                continue;
            }
            if inflight.len() - deadlines.expired() >= max_in_flight {
                // Due to send, and the window is full: the broker holds this
                // producer back. The wait is counted (`window_wait_ns`) from
                // this iteration's clock read to the one after the wake-up,
                // which the ack or the timeout needs anyway; a tick counts
                // the wait so far before the interval is flushed.
                let woke = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Woke::Cancelled,
                    Some(r) = inflight.next() => Woke::Ack(r),
                    _ = self.ticks.changed() => Woke::Tick,
                    _ = timer.wait(), if timer.is_armed() => Woke::Timer,
                };
                let t = self.time.now_ns();
                self.add_wait(now, t, warmup_end, end);
                match woke {
                    Woke::Cancelled => {
                        aborted = true;
                        break;
                    }
                    Woke::Ack(r) => self.settle(r, &mut deadlines, t, warmup_end),
                    Woke::Tick => self.on_tick(),
                    Woke::Timer => self.expire(&mut deadlines, &mut timer, t, warmup_end),
                }
                continue;
            }
            // Over the agent's cap: wait for a permit (the wait shows as lag;
            // the permit it returns is this send's).
            if let Some(cap) = &self.cap {
                if cap.check().is_err() {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => { aborted = true; break; }
                        _ = cap.until_ready() => {}
                    }
                    now = self.time.now_ns();
                }
            }
            // Take acks that are already in without waiting.
            if !inflight.is_empty() {
                let mut took = false;
                while let Some(Some(r)) = inflight.next().now_or_never() {
                    self.settle(r, &mut deadlines, now, warmup_end);
                    took = true;
                }
                if took {
                    now = self.time.now_ns();
                }
            }
            let payload = self.payloads.next_payload();
            let len = payload.len() as u64;
            let key = self.keys.next_key();
            let sent = now;
            let stamp = Stamp { producer_id, seq, intended_ns: intended, sent_ns: sent };
            let lag = sent - intended;
            {
                let ph = if sent < warmup_end { &mut self.stats.warmup } else { &mut self.stats.measure };
                ph.sent += 1;
                ph.bytes += len;
                ph.max_lag_ns = ph.max_lag_ns.max(lag.max(0) as u64);
                if lag > LATE_NS {
                    ph.late_sends += 1;
                }
            }
            if self.sent == 0 {
                // The clock was read for the stamp already: no extra cost per send.
                self.first_send_ns = Some(sent);
            }
            self.sent += 1;
            let sent_res = {
                let send = client.send(OutMessage { stamp, key, payload });
                tokio::pin!(send);
                // Most sends are taken at once; wait (cancellably) only when
                // not. Waiting for the client to take a send (its queue is
                // full: backpressure) counts like waiting for room in flight.
                match futures::poll!(send.as_mut()) {
                    std::task::Poll::Ready(r) => r,
                    std::task::Poll::Pending => {
                        let r = tokio::select! {
                            biased;
                            _ = cancel.cancelled() => None,
                            r = &mut send => Some(r),
                        };
                        self.add_wait(sent, self.time.now_ns(), warmup_end, end);
                        match r {
                            Some(r) => r,
                            None => {
                                aborted = true;
                                break;
                            }
                        }
                    }
                }
            };
            match sent_res {
                Ok(mut ack) => match (&mut ack).now_or_never() {
                    // Acknowledged at once (an in-process broker): no bookkeeping.
                    Some(r) => self.record_ack((seq, intended, sent, r), self.time.now_ns(), warmup_end),
                    None => {
                        deadlines.push(seq, sent);
                        timer.arm(&deadlines, &self.time);
                        inflight.push(ack.map(move |r| (seq, intended, sent, r)));
                    }
                },
                Err(e) => {
                    self.record_ack((seq, intended, sent, Err(e.clone())), now, warmup_end);
                    if e == SendError::Closed {
                        error = Some("producer closed by the client".to_string());
                        break;
                    }
                }
            }
            seq += 1;
            if let Some(s) = schedule.as_mut() {
                next_off = s.next_ns().filter(|&t| t < end_off);
            } else if seq.is_multiple_of(256) {
                // Closed loop against a broker that acknowledges at once:
                // let the runtime's other tasks in, and see a stop.
                tokio::task::yield_now().await;
                if cancel.is_cancelled() {
                    aborted = true;
                    break;
                }
            }
        }
        if ended_early {
            // What the schedule still held before the end (never skipped silently).
            let mut left = u64::from(next_off.is_some());
            if let Some(s) = schedule.as_mut() {
                while s.next_ns().is_some_and(|t| t < end_off) {
                    left += 1;
                }
            }
            self.stats.measure.unsent += left;
        }
        // Every send has a timeout, so this ends.
        while inflight.len() > deadlines.expired() && !aborted {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => { aborted = true; }
                Some(r) = inflight.next() => self.settle(r, &mut deadlines, self.time.now_ns(), warmup_end),
                _ = self.ticks.changed() => self.on_tick(),
                _ = timer.wait(), if timer.is_armed() => {
                    self.expire(&mut deadlines, &mut timer, self.time.now_ns(), warmup_end);
                }
            }
        }
        let unacked = inflight.len() - deadlines.expired();
        if aborted && unacked > 0 {
            error = Some(format!("aborted with {unacked} sends unacknowledged"));
        }
        // A boundary passed but not yet seen: what was recorded belongs before it.
        if self.ticks.has_changed().unwrap_or(false) {
            self.on_tick();
        }
        let last = *self.ticks.borrow();
        let stats = std::mem::take(&mut self.stats);
        let _ = self.reports.send(TaskReport {
            interval: last,
            role: Role::Producer,
            group: self.inst.group,
            stats,
            unique_new: 0,
            done: true,
        });
        client.close().await;
        ProducerFinal { inst: self.inst, sent: self.sent, acked: self.acked, error, first_send_ns: self.first_send_ns }
    }
}

/// Send timeouts without a timer per send. Every send of a producer has the
/// same timeout, so deadlines rise with the sequence number: the oldest
/// outstanding send holds the earliest one.
struct Deadlines {
    timeout_ns: i64,
    /// Sequence number of `sent[0]`.
    base: u64,
    /// Send time per sequence number from `base`; `SETTLED` once its ack is in.
    sent: std::collections::VecDeque<i64>,
    /// Timed out (counted as failed) and still in the in-flight set.
    expired: std::collections::HashSet<u64>,
}

const SETTLED: i64 = i64::MIN;

impl Deadlines {
    fn new(timeout: Duration) -> Deadlines {
        Deadlines {
            timeout_ns: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            base: 0,
            sent: Default::default(),
            expired: Default::default(),
        }
    }

    /// A send now awaiting its ack (`seq` rises across calls).
    fn push(&mut self, seq: u64, sent_ns: i64) {
        if self.sent.is_empty() {
            self.base = seq;
        }
        // Sends settled at once in between never entered: fill their places.
        while self.base + (self.sent.len() as u64) < seq {
            self.sent.push_back(SETTLED);
        }
        self.sent.push_back(sent_ns);
    }

    /// An ack came in; false when that send had already timed out.
    fn settle(&mut self, seq: u64) -> bool {
        if self.expired.remove(&seq) {
            return false;
        }
        if let Some(idx) = seq.checked_sub(self.base) {
            if let Some(s) = self.sent.get_mut(idx as usize) {
                *s = SETTLED;
            }
        }
        self.trim();
        true
    }

    fn trim(&mut self) {
        while self.sent.front() == Some(&SETTLED) {
            self.sent.pop_front();
            self.base += 1;
        }
    }

    /// When the oldest outstanding send times out.
    fn next(&self) -> Option<i64> {
        self.sent.front().map(|&s| s.saturating_add(self.timeout_ns))
    }

    /// The oldest outstanding send if it is past its deadline (`seq`, sent).
    fn pop_expired(&mut self, now: i64) -> Option<(u64, i64)> {
        let sent = *self.sent.front()?;
        if sent.saturating_add(self.timeout_ns) > now {
            return None;
        }
        let seq = self.base;
        self.sent.pop_front();
        self.base += 1;
        self.trim();
        self.expired.insert(seq);
        Some((seq, sent))
    }

    /// Timed out but still in the in-flight set.
    fn expired(&self) -> usize {
        self.expired.len()
    }
}

/// One timer per producer, armed at the oldest outstanding deadline. It may
/// fire early (that send was acknowledged since); it then re-arms.
struct DeadlineTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<i64>,
}

impl DeadlineTimer {
    fn new() -> DeadlineTimer {
        DeadlineTimer { sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))), armed: None }
    }

    fn arm(&mut self, deadlines: &Deadlines, time: &TimeBase) {
        if self.armed.is_none() {
            if let Some(d) = deadlines.next() {
                self.sleep.as_mut().reset(time.instant_at(d).into());
                self.armed = Some(d);
            }
        }
    }

    fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    fn due(&self, now: i64) -> bool {
        self.armed.is_some_and(|d| now >= d)
    }

    fn wait(&mut self) -> &mut std::pin::Pin<Box<tokio::time::Sleep>> {
        &mut self.sleep
    }
}

// ------------------------------------------------------------------ consumer

struct ConsumerTask {
    inst: ConsumerInstance,
    time: TimeBase,
    warmup_end: i64,
    n_producers: u64,
    ticks: watch::Receiver<u64>,
    clock: IntervalClock,
    reports: mpsc::UnboundedSender<TaskReport>,
    stats: GroupPhases,
    unique_new: u64,
    seen: Vec<Option<Seen>>,
    /// What `seen` held when the driver last subscribed again: a repeat of
    /// one of these is a redelivery, not a duplicate.
    before_reconnect: Vec<Option<RangeSet>>,
    connection: u32,
    /// Deliveries the broker flagged as redelivered.
    flagged: u64,
    duplicates: u64,
    redelivered: u64,
    reordered: u64,
    deliveries: u64,
    undecodable: u64,
    partitions: HashMap<u32, u64>,
    faulted: bool,
    errors: RecvErrors,
    /// The group's windows without taking anything (offsets from Start).
    pauses: Vec<common::scenario::Pause>,
}

impl ConsumerTask {
    fn flush(&mut self, interval: u64) {
        let stats = std::mem::take(&mut self.stats);
        let unique_new = std::mem::take(&mut self.unique_new);
        let _ = self.reports.send(TaskReport {
            interval,
            role: Role::Consumer,
            group: self.inst.group,
            stats,
            unique_new,
            done: false,
        });
    }

    #[inline]
    fn record(&mut self, d: Delivery) {
        let now = self.time.now_ns();
        if let Some(k) = self.clock.crossed(now) {
            self.flush(k);
        }
        self.deliveries += 1;
        if let Some(p) = d.partition {
            *self.partitions.entry(p).or_default() += 1;
        }
        let stamp = match d.stamp {
            Ok(s) if u64::from(s.producer_id) < self.n_producers => s,
            _ => {
                self.undecodable += 1;
                self.stats.measure.receive_errors += 1;
                return;
            }
        };
        // Throughput counts on receipt: the receive time picks the phase.
        let ph = if now < self.warmup_end { &mut self.stats.warmup } else { &mut self.stats.measure };
        ph.received += 1;
        ph.bytes += d.payload_len as u64;
        ph.service.record_ns(now - stamp.sent_ns);
        ph.response.record_ns(now - stamp.intended_ns);
        self.flagged += u64::from(d.redelivered);
        if d.connection != self.connection {
            self.connection = d.connection;
            self.before_reconnect = self.seen.iter().map(|s| s.as_ref().map(|s| s.set.clone())).collect();
        }
        let pid = stamp.producer_id as usize;
        if self.seen.len() <= pid {
            self.seen.resize(pid + 1, None);
        }
        let s = self.seen[pid].get_or_insert_with(Seen::default);
        let before = self.before_reconnect.get(pid).and_then(Option::as_ref);
        match s.receive(stamp.seq, before, d.redelivered) {
            Receipt::New { reordered } => {
                self.unique_new += 1;
                if reordered {
                    ph.reordered += 1;
                    self.reordered += 1;
                }
            }
            Receipt::Redelivered => {
                ph.redelivered += 1;
                self.redelivered += 1;
            }
            Receipt::Duplicate => {
                ph.duplicates += 1;
                self.duplicates += 1;
            }
        }
    }

    fn flush_tick(&mut self) {
        let began = *self.ticks.borrow_and_update();
        if let Some(k) = self.clock.tick(began) {
            self.flush(k);
        }
    }

    /// Records and acknowledges one delivery; Err when the consumer is gone.
    async fn on_delivery<C: ConsumerClient>(
        &mut self,
        c: &mut C,
        d: Result<Delivery, RecvError>,
    ) -> Result<(), String> {
        match d {
            Ok(d) => {
                self.record(d);
                if let Err(RecvError::Transient(e) | RecvError::Closed(e)) = c.ack_last().await {
                    self.stats.measure.receive_errors += 1;
                    debug!(consumer = self.inst.id, error = %e, "ack failed");
                    self.errors.add(format!("ack failed: {e}"));
                }
            }
            Err(RecvError::Transient(e)) => {
                self.stats.measure.receive_errors += 1;
                debug!(consumer = self.inst.id, error = %e, "receive failed");
                self.errors.add(e);
            }
            Err(RecvError::Closed(e)) => {
                warn!(consumer = self.inst.id, error = %e, "consumer closed");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Takes nothing until `until` (coordinator time); false when stopped first.
    async fn pause(&mut self, until: i64, stop: &CancellationToken) -> bool {
        let at = self.time.instant_at(until);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return false,
                _ = self.ticks.changed() => self.flush_tick(),
                _ = tokio::time::sleep_until(at.into()) => return true,
            }
        }
    }

    /// Reports intervals (empty) until the run stops.
    async fn idle(&mut self, stop: &CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.ticks.changed() => self.flush_tick(),
            }
        }
    }

    /// Receives from Start until stopped. `stop_after`: a fault action stops
    /// this consumer (closes it) that long after Start.
    async fn run<C: ConsumerClient>(
        mut self,
        client: C,
        start_rx: watch::Receiver<Option<i64>>,
        stop: CancellationToken,
        warmup: Duration,
        stop_after: Option<Duration>,
    ) -> ConsumerFinal {
        let mut error = None;
        let mut client = Some(client);
        // Messages flow only after Start (no producer sends before it).
        if let (Some(start), Some(c)) = (wait_start(start_rx, &stop).await, client.as_mut()) {
            self.clock.started(start);
            self.warmup_end = start + warmup.as_nanos() as i64;
            let fault_at = stop_after.map(|d| self.time.instant_at(start + d.as_nanos() as i64));
            let fault = async move {
                match fault_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(fault);
            let fault_ns = stop_after.map(|d| start + d.as_nanos() as i64);
            'recv: loop {
                // A late start or a pause: take nothing (the subscription
                // keeps it all: a backlog), report intervals, obey Stop.
                if !self.pauses.is_empty() {
                    let offset = Duration::from_nanos((self.time.now_ns() - start).max(0) as u64);
                    if let Some(until) = common::scenario::Pause::until_after(&self.pauses, offset) {
                        if !self.pause(start + until.as_nanos() as i64, &stop).await {
                            break;
                        }
                        continue;
                    }
                }
                // Take what is in without building the wait futures (a
                // dropped `recv` loses nothing: it is cancel-safe).
                let mut took = 0;
                while took < 256 {
                    let d = {
                        let next = c.recv();
                        tokio::pin!(next);
                        match futures::poll!(next) {
                            std::task::Poll::Ready(d) => d,
                            std::task::Poll::Pending => break,
                        }
                    };
                    took += 1;
                    if let Err(e) = self.on_delivery(c, d).await {
                        error = Some(e);
                        break 'recv;
                    }
                }
                if self.ticks.has_changed().unwrap_or(false) {
                    self.flush_tick();
                }
                if stop.is_cancelled() {
                    break;
                }
                if fault_ns.is_some_and(|f| self.time.now_ns() >= f) {
                    info!(consumer = self.inst.id, "stopped by a fault action");
                    self.faulted = true;
                    break;
                }
                if took == 256 {
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = &mut fault => {
                        info!(consumer = self.inst.id, "stopped by a fault action");
                        self.faulted = true;
                        break;
                    }
                    _ = self.ticks.changed() => self.flush_tick(),
                    d = c.recv() => if let Err(e) = self.on_delivery(c, d).await {
                        error = Some(e);
                        break;
                    },
                }
            }
            if !stop.is_cancelled() {
                // Stopped by a fault or closed by the broker: leave now, keep reporting.
                if let Some(c) = client.take() {
                    c.close().await;
                }
                self.idle(&stop).await;
            }
        }
        if self.ticks.has_changed().unwrap_or(false) {
            self.flush_tick();
        }
        let last = *self.ticks.borrow();
        self.flush(last);
        if let Some(c) = client {
            c.close().await;
        }
        ConsumerFinal {
            inst: self.inst,
            seen: self.seen,
            duplicates: self.duplicates,
            redelivered: self.redelivered,
            redelivery_causes: u64::from(self.connection) + self.flagged,
            reordered: self.reordered,
            deliveries: self.deliveries,
            undecodable: self.undecodable,
            partitions: self.partitions,
            faulted: self.faulted,
            error,
            errors: self.errors,
        }
    }
}

// ------------------------------------------------------------------ aggregator

#[derive(Default)]
struct IntervalAcc {
    producers: HashMap<usize, GroupPhases>,
    consumers: HashMap<usize, GroupPhases>,
    reports: u32,
}

/// Ticks interval boundaries, merges task reports, emits one IntervalReport
/// per interval (and hands it to `metrics`). Returns the whole-run aggregate
/// once every task is done.
#[allow(clippy::too_many_arguments)]
async fn aggregate(
    shard: Arc<Shard>,
    time: TimeBase,
    start_rx: watch::Receiver<Option<i64>>,
    tick_tx: watch::Sender<u64>,
    mut rx: mpsc::UnboundedReceiver<TaskReport>,
    out: Outbox,
    cancel: CancellationToken,
    metrics: AgentMetrics,
) -> Aggregate {
    let sc = &shard.scenario;
    let mut total = Aggregate::default();
    let mut pending: std::collections::BTreeMap<u64, IntervalAcc> = Default::default();
    let mut progress: Vec<u64> = vec![0; sc.consumers.len()];
    let tasks_total = (shard.producers.len() + shard.consumers.len()) as u32;
    let Some(start) = wait_start(start_rx, &cancel).await else {
        // Drain reports until tasks end.
        while let Some(r) = rx.recv().await {
            merge_into(&mut total, &r);
        }
        return total;
    };
    let step = sc.report_interval.as_nanos() as i64;
    let step_s = sc.report_interval.as_secs_f64();
    let mut targets: HashMap<usize, u64> = HashMap::new();
    for p in &shard.producers {
        *targets.entry(p.group).or_default() += p.rate_milli;
    }
    metrics.run_started(&shard.run_id, sc, &targets);
    let grace = (step / 4).min(200_000_000);
    let mut next_tick: u64 = 1; // boundary k at start + k*step
    let mut next_emit: u64 = 0; // interval k emitted at boundary k+1 + grace
    let mut cpu_prev = procstat::cpu_ns();
    let mut wall_prev = std::time::Instant::now();
    let mut open = true;
    let mut producers_active = shard.producers.len() as u32;
    while open {
        let tick_at = start + next_tick as i64 * step;
        let emit_at = start + (next_emit as i64 + 1) * step + grace;
        let (at, is_tick) = if tick_at <= emit_at { (tick_at, true) } else { (emit_at, false) };
        tokio::select! {
            biased;
            r = rx.recv() => match r {
                Some(r) => {
                    // Late reports join the oldest interval not yet sent.
                    let k = r.interval.max(next_emit);
                    merge_into(&mut total, &r);
                    if r.role == Role::Consumer {
                        progress[r.group] += r.unique_new;
                    }
                    if r.done && r.role == Role::Producer {
                        producers_active = producers_active.saturating_sub(1);
                    }
                    let acc = pending.entry(k).or_default();
                    acc.reports += 1;
                    let map = if r.role == Role::Producer { &mut acc.producers } else { &mut acc.consumers };
                    map.entry(r.group).or_default().merge(&r.stats);
                }
                None => open = false,
            },
            _ = tokio::time::sleep_until(time.instant_at(at).into()) => {
                if is_tick {
                    let _ = tick_tx.send(next_tick);
                    next_tick += 1;
                } else {
                    let acc = pending.remove(&next_emit).unwrap_or_default();
                    metrics.interval(sc, step_s, &acc.producers, &acc.consumers);
                    let (cpu, wall) = (procstat::cpu_ns(), std::time::Instant::now());
                    let msg = interval_report(sc, next_emit, start, step, acc, &progress, cpu.saturating_sub(cpu_prev), wall.duration_since(wall_prev), tasks_total, producers_active);
                    cpu_prev = cpu;
                    wall_prev = wall;
                    next_emit += 1;
                    if out.send(Ok(msg)).await.is_err() {
                        // Coordinator gone: stop all load.
                        cancel.cancel();
                    }
                }
            }
        }
    }
    // Every task is done: send what is left as the last interval(s).
    let last = pending.keys().next_back().copied().unwrap_or(next_emit).max(next_emit);
    for k in next_emit..=last {
        let acc = pending.remove(&k).unwrap_or_default();
        metrics.interval(sc, step_s, &acc.producers, &acc.consumers);
        let (cpu, wall) = (procstat::cpu_ns(), std::time::Instant::now());
        let msg = interval_report(
            sc,
            k,
            start,
            step,
            acc,
            &progress,
            cpu.saturating_sub(cpu_prev),
            wall.duration_since(wall_prev),
            tasks_total,
            0,
        );
        cpu_prev = cpu;
        wall_prev = wall;
        let _ = out.send(Ok(msg)).await;
    }
    metrics.run_ended();
    total
}

fn merge_into(total: &mut Aggregate, r: &TaskReport) {
    let map = if r.role == Role::Producer { &mut total.producers } else { &mut total.consumers };
    map.entry(r.group).or_default().merge(&r.stats);
}

#[allow(clippy::too_many_arguments)]
fn interval_report(
    sc: &Scenario,
    index: u64,
    start: i64,
    step: i64,
    acc: IntervalAcc,
    progress: &[u64],
    cpu_ns: u64,
    wall: Duration,
    tasks_total: u32,
    producers_active: u32,
) -> AgentMessage {
    let mut groups = Vec::new();
    let mut max_lag = 0u64;
    let mut pg: Vec<_> = acc.producers.into_iter().collect();
    pg.sort_by_key(|(g, _)| *g);
    for (g, s) in pg {
        max_lag = max_lag.max(s.warmup.max_lag_ns).max(s.measure.max_lag_ns);
        groups.push(s.to_proto(g as u32, proto::Role::Producer));
    }
    let mut cg: Vec<_> = acc.consumers.into_iter().collect();
    cg.sort_by_key(|(g, _)| *g);
    for (g, s) in cg {
        groups.push(s.to_proto(g as u32, proto::Role::Consumer));
    }
    let progress = sc
        .consumers
        .iter()
        .zip(progress)
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
            start_ns: start + index as i64 * step,
            end_ns: start + (index as i64 + 1) * step,
            groups,
            cpu_ns,
            wall_ns: wall.as_nanos() as u64,
            progress,
            max_lag_ns: max_lag,
            tasks_reporting: acc.reports.min(tasks_total),
            tasks_total,
            producers_active,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::driver::memory::MemoryDriver;
    use crate::memory_broker::{MemoryBroker, MemoryConfig};

    /// Runs `yaml` (one agent) on `driver` to the end and returns each
    /// producer group's phases from the final report.
    async fn run_to_the_end<D: Driver>(driver: D, yaml: &str) -> Vec<GroupPhases> {
        let sc = common::scenario::load_str(yaml, "s.yaml", &[]).expect("scenario");
        let slots = [common::plan::AgentSlot { name: "a".into(), instance: "i".into() }];
        let shard = common::plan::plan(&sc, "wait-test", &slots).expect("plan").shards.remove(0);
        let (tx, mut rx) = mpsc::channel(1024);
        let time = TimeBase::new(0);
        let run = prepare(Arc::new(driver), shard, time.clone(), tx, Box::new(|| {}), AgentMetrics::new(), None)
            .await
            .expect("prepare");
        let collect = tokio::spawn(async move {
            let mut last = None;
            while let Some(m) = rx.recv().await {
                if let Ok(AgentMessage { msg: Some(Msg::Final(f)) }) = m {
                    last = Some(f);
                }
            }
            last
        });
        run.start(time.now_ns() + 20_000_000);
        run.finish(false).await;
        let f = collect.await.expect("collector").expect("a final report");
        f.groups
            .iter()
            .filter(|g| g.role == proto::Role::Producer as i32)
            .map(|g| GroupPhases::from_proto(g).expect("decode"))
            .collect()
    }

    /// Two producers at 200 msg/s each, max_in_flight 2, warmup 0.5 s,
    /// measurement 1 s.
    const TWO_SLOW_WINDOWS: &str = "name: w\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
        producers: [{name: p, topic: t, count: 2, rate: 200, max_in_flight: 2, send_timeout: 5s}]\n\
        phases: {warmup: 500ms, duration: 1s}\n";

    /// The share of `phase_s` seconds two producers spent waiting.
    fn share(wait_ns: u64, phase_s: f64) -> f64 {
        wait_ns as f64 / (2.0 * phase_s * 1e9)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_producer_held_by_slow_acks_reports_its_wait_and_a_fast_broker_none() {
        // Acks 100 ms after each send: 2 in flight carry 20 msg/s of the
        // 200 scheduled, so each producer is due and waiting nearly all the time.
        let slow = MemoryConfig { latency: Duration::from_millis(100), ..Default::default() };
        let g = run_to_the_end(MemoryDriver::new(MemoryBroker::new(), "slow", slow), TWO_SLOW_WINDOWS).await;
        let (warmup, measure) = (share(g[0].warmup.window_wait_ns, 0.5), share(g[0].measure.window_wait_ns, 1.0));
        eprintln!("slow acks: waited {:.1}% of the warmup, {:.1}% of the measurement", warmup * 100.0, measure * 100.0);
        assert!(measure > 0.9 && measure <= 1.0, "measurement share {measure}");
        assert!(warmup > 0.85 && warmup <= 1.0, "warmup share {warmup}");
        assert!(g[0].measure.unsent > 0, "it fell behind");
        // Acknowledged at once: never a full window.
        let fast = MemoryConfig::default();
        let g = run_to_the_end(MemoryDriver::new(MemoryBroker::new(), "fast", fast), TWO_SLOW_WINDOWS).await;
        assert_eq!(g[0].measure.sent, 400);
        assert_eq!((g[0].warmup.window_wait_ns, g[0].measure.window_wait_ns), (0, 0));
    }

    /// A client that takes each send only after `hold` (its queue is full)
    /// and acknowledges at once.
    struct SlowClient {
        hold: Duration,
    }

    impl Driver for SlowClient {
        type Producer = SlowProducer;
        type Consumer = NoConsumer;

        async fn create_topic(&self, _: &common::scenario::Topic) -> Result<(), DriverError> {
            Ok(())
        }
        async fn consumer(
            &self,
            _: &common::scenario::Topic,
            _: &common::scenario::ConsumerGroup,
            _: u32,
        ) -> Result<NoConsumer, DriverError> {
            Ok(NoConsumer)
        }
        async fn producer(
            &self,
            _: &common::scenario::Topic,
            _: &ProducerGroup,
            _: u32,
        ) -> Result<SlowProducer, DriverError> {
            Ok(SlowProducer { hold: self.hold })
        }
    }

    struct SlowProducer {
        hold: Duration,
    }

    impl ProducerClient for SlowProducer {
        type Ack = std::future::Ready<Result<(), SendError>>;
        async fn send(&mut self, _: OutMessage) -> Result<Self::Ack, SendError> {
            tokio::time::sleep(self.hold).await;
            Ok(std::future::ready(Ok(())))
        }
        async fn close(self) {}
    }

    struct NoConsumer;

    impl ConsumerClient for NoConsumer {
        async fn recv(&mut self) -> Result<Delivery, RecvError> {
            std::future::pending().await
        }
        async fn ack_last(&mut self) -> Result<(), RecvError> {
            Ok(())
        }
        async fn close(self) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_holds_sends_back_counts_as_waiting() {
        // 20 ms per send: 50 msg/s of the 200 scheduled, the rest is waiting.
        let g = run_to_the_end(SlowClient { hold: Duration::from_millis(20) }, TWO_SLOW_WINDOWS).await;
        let measure = share(g[0].measure.window_wait_ns, 1.0);
        eprintln!("client backpressure: waited {:.1}% of the measurement", measure * 100.0);
        assert!(measure > 0.9 && measure <= 1.0, "measurement share {measure}");
    }

    #[test]
    fn interval_clock_reports_by_time_and_ticks_fill_in() {
        let s = 1_000_000_000i64;
        let mut c = IntervalClock::new(Duration::from_secs(1));
        // Before the start only ticks count.
        assert_eq!(c.crossed(5 * s), None);
        assert_eq!(c.tick(1), Some(0));
        c.started(10 * s);
        assert_eq!(c.crossed(10 * s + 999_999_999), None);
        // A reading past the boundary reports the interval that ended...
        assert_eq!(c.crossed(11 * s), Some(0));
        assert_eq!(c.crossed(11 * s + 5), None);
        // ...and the late tick for that boundary has nothing left.
        assert_eq!(c.tick(1), None);
        // An idle task: the tick reports, then readings go on from there.
        assert_eq!(c.tick(2), Some(1));
        assert_eq!(c.crossed(12 * s + 1), None);
        assert_eq!(c.crossed(13 * s), Some(2));
        // A jump over several boundaries reports the open one once.
        assert_eq!(c.crossed(16 * s + 3), Some(3));
        assert_eq!(c.crossed(16 * s + 4), None);
        assert_eq!(c.tick(5), None);
        assert_eq!(c.tick(6), None);
        assert_eq!(c.tick(7), Some(6));
    }

    #[test]
    fn repeats_after_subscribing_again_are_redeliveries_others_duplicates() {
        let mut s = Seen::default();
        for seq in 0..3 {
            assert_eq!(s.receive(seq, None, false), Receipt::New { reordered: false });
        }
        assert_eq!(s.receive(1, None, false), Receipt::Duplicate);
        assert_eq!(s.receive(1, None, true), Receipt::Redelivered, "the broker says so");
        // The consumer subscribed again holding 0..3: the broker hands 1 and
        // 2 out again (their acks were lost), then 3 is new; 3 again is not
        // explained by the reconnect.
        let before = s.set.clone();
        assert_eq!(s.receive(1, Some(&before), false), Receipt::Redelivered);
        assert_eq!(s.receive(2, Some(&before), false), Receipt::Redelivered);
        assert_eq!(s.receive(5, Some(&before), false), Receipt::New { reordered: false });
        assert_eq!(s.receive(3, Some(&before), false), Receipt::New { reordered: true });
        assert_eq!(s.receive(3, Some(&before), false), Receipt::Duplicate);
    }

    #[test]
    fn receive_errors_note_the_count_the_first_and_the_last() {
        let mut e = RecvErrors::default();
        assert_eq!(e.note(), None);
        e.add("stream ended".into());
        assert_eq!(e.note().as_deref(), Some("1 receive error: stream ended"));
        e.add("ack failed: x".into());
        e.add("subscribed again".into());
        assert_eq!(e.note().as_deref(), Some("3 receive errors, the first: stream ended; the last: subscribed again"));
    }

    #[test]
    fn deadlines_follow_the_oldest_outstanding_send() {
        let mut d = Deadlines::new(Duration::from_nanos(100));
        assert_eq!(d.next(), None);
        d.push(0, 10);
        // 1 and 2 were acknowledged at once (never pushed).
        d.push(3, 20);
        d.push(4, 30);
        assert_eq!(d.next(), Some(110));
        // Out of order: 3 settles first; 0 still holds the deadline.
        assert!(d.settle(3));
        assert_eq!(d.next(), Some(110));
        assert!(d.settle(0));
        assert_eq!(d.next(), Some(130), "0 and the settled 1..3 are gone; 4 is next");
        assert_eq!(d.pop_expired(129), None);
        assert_eq!(d.pop_expired(130), Some((4, 30)));
        assert_eq!(d.expired(), 1);
        assert_eq!(d.next(), None);
        // The late ack of a timed-out send is not counted again.
        assert!(!d.settle(4));
        assert_eq!(d.expired(), 0);
    }

    #[test]
    fn deadlines_expire_in_send_order_and_skip_settled_ones() {
        let mut d = Deadlines::new(Duration::from_nanos(10));
        for seq in 0..5 {
            d.push(seq, seq as i64);
        }
        assert!(d.settle(1));
        let mut out = Vec::new();
        while let Some((seq, _)) = d.pop_expired(13) {
            out.push(seq);
        }
        assert_eq!(out, vec![0, 2, 3], "sent at 0, 2, 3 are past 13; 1 settled; 4 (due 14) is not");
        assert_eq!(d.next(), Some(14));
    }
}
