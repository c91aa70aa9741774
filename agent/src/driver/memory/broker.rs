//! The in-process memory broker: topics with partitions and the four
//! subscription types, an optional capacity (a single-server queue shared
//! by all of a run's topics in this process: each publish takes 1/capacity
//! seconds of broker time, so past capacity publishes wait and latency
//! grows; the coordinator gives each agent process its share of the
//! scenario's capacity) and an added latency. It exists for the
//! zero-setup quickstart, for tests of everything above the drivers, and for
//! generator-headroom benchmarks. Agents in one process share one instance.
//!
//! Semantics: a message is visible to consumers and acknowledged to the
//! producer at the same instant (`ready_at`: queueing + service + latency).
//! Shared dispatch is round-robin; KeyShared hashes the key; Failover gives
//! each partition to one consumer (partition i -> consumer i mod n, the
//! first subscriber for a non-partitioned topic); Exclusive refuses a second
//! consumer. A subscription with no consumer keeps a backlog. A consumer
//! that closes hands what it had not taken back to the subscription, marked
//! as redelivered. Fault knobs drop, duplicate or misroute (to the next
//! consumer) every Nth publish, stall a topic, or cap its backlog.
//!
//! Imports nothing from the agent: the driver (`super`) adapts it to the
//! driver traits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use common::scenario::SubType;
use tokio::sync::mpsc;
// tokio's clock: the process's outside tests, the paused one in tests that pause it.
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct MemMessage {
    pub stamp: [u8; common::stamp::STAMP_LEN],
    pub key: Option<u64>,
    pub payload: Bytes,
    /// None: visible at once (no capacity cap, no latency).
    pub ready_at: Option<Instant>,
    pub redelivered: bool,
    /// None for a non-partitioned topic.
    pub partition: Option<u32>,
    /// Goes to the next consumer (`misroute_every`).
    pub misrouted: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryConfig {
    pub capacity_msgs_per_s: Option<f64>,
    pub latency: Duration,
    /// How long each consumer ack takes to complete (the driver waits it
    /// out; the broker keeps no ack state).
    pub ack_latency: Duration,
    /// Every Nth publish is acknowledged but not delivered (0: never).
    pub drop_every: u64,
    /// Every Nth publish is delivered twice (0: never).
    pub duplicate_every: u64,
    /// Every Nth publish goes to the next consumer of each subscription
    /// rather than the one its type picks (0: never).
    pub misroute_every: u64,
    /// After N publishes per topic nothing is delivered any more (0: never).
    pub stall_after: u64,
    /// The most messages the topic holds undelivered, summed over its
    /// subscriptions, before publish acks wait for consumers (0: no limit).
    pub max_backlog: u64,
}

/// Shared handle; cheap to clone.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Mutex<HashMap<String, Arc<TopicState>>>>,
    /// One single-server queue per group of topics (a run): the capacity is
    /// the broker's, shared by every topic of the group.
    servers: Arc<Mutex<HashMap<String, Arc<Mutex<Instant>>>>>,
}

pub struct TopicState {
    name: String,
    cfg: MemoryConfig,
    partitions: Vec<Mutex<Partition>>,
    /// Broker time at which the (single) server is next free; shared by
    /// the topics of one group (see [`MemoryBroker::create_topic_in`]).
    server_free_at: Arc<Mutex<Instant>>,
    service: Option<Duration>,
    /// Counted only when a fault setting needs it (stall, drop, duplicate).
    published: Padded<std::sync::atomic::AtomicU64>,
    /// Messages handed to subscriptions and not yet taken by a consumer
    /// (kept only with `max_backlog`; consumers give back in batches).
    undelivered: Padded<std::sync::atomic::AtomicU64>,
    /// Signalled when `undelivered` falls to the low-water mark.
    drained: tokio::sync::Notify,
    /// How many taken messages a consumer gives back at a time (never,
    /// but before waiting, without `max_backlog`).
    taken_batch: u64,
}

/// A counter on a cache line of its own: producers and consumers on other
/// cores update it per message, and sharing a line with other hot fields
/// (or the other counter) made every update a cross-core miss.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Consumers give taken messages back to `undelivered` up to this many at
/// a time (and whenever they are about to wait), not one by one; at most
/// 1/1024 of `max_backlog`, so a small limit stays exact.
const TAKEN_BATCH: u64 = 64;

#[derive(Default)]
struct Partition {
    subs: HashMap<String, Sub>,
}

struct Sub {
    sub_type: SubType,
    consumers: Vec<Slot>,
    rr: usize,
    backlog: VecDeque<MemMessage>,
}

struct Slot {
    id: u64,
    tx: mpsc::UnboundedSender<MemMessage>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a broker lock leaves plain data; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("no topic `{0}`")]
    NoTopic(String),
    #[error("topic `{0}` exists with {1} partitions, not {2}")]
    PartitionMismatch(String, usize, usize),
    #[error("exclusive subscription `{0}` already has a consumer")]
    ExclusiveTaken(String),
    #[error("subscription `{0}` is {1}, not {2}")]
    TypeMismatch(String, &'static str, &'static str),
}

impl MemoryBroker {
    pub fn new() -> MemoryBroker {
        MemoryBroker::default()
    }

    /// Creates `name` with `partitions` (0 = one, non-partitioned) if
    /// absent, with a capacity of its own.
    pub fn create_topic(&self, name: &str, partitions: u32, cfg: MemoryConfig) -> Result<Arc<TopicState>, MemError> {
        self.create_topic_in(name, name, partitions, cfg)
    }

    /// Creates `name` if absent, in `group`: the topics of one group share
    /// one server, so `cfg.capacity_msgs_per_s` is their total (a broker's
    /// capacity, not a topic's).
    pub fn create_topic_in(
        &self,
        group: &str,
        name: &str,
        partitions: u32,
        cfg: MemoryConfig,
    ) -> Result<Arc<TopicState>, MemError> {
        let n = partitions.max(1) as usize;
        let mut topics = lock(&self.inner);
        if let Some(t) = topics.get(name) {
            if t.partitions.len() != n {
                return Err(MemError::PartitionMismatch(name.to_string(), t.partitions.len(), n));
            }
            return Ok(t.clone());
        }
        let service =
            cfg.capacity_msgs_per_s.filter(|c| c.is_finite() && *c > 0.0).map(|c| Duration::from_secs_f64(1.0 / c));
        let t = Arc::new(TopicState {
            name: name.to_string(),
            cfg,
            partitions: (0..n).map(|_| Mutex::new(Partition::default())).collect(),
            server_free_at: lock(&self.servers)
                .entry(group.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Instant::now())))
                .clone(),
            service,
            published: Padded(std::sync::atomic::AtomicU64::new(0)),
            undelivered: Padded(std::sync::atomic::AtomicU64::new(0)),
            drained: tokio::sync::Notify::new(),
            taken_batch: match cfg.max_backlog {
                0 => u64::MAX,
                max => (max / 1024).clamp(1, TAKEN_BATCH),
            },
        });
        topics.insert(name.to_string(), t.clone());
        Ok(t)
    }

    pub fn topic(&self, name: &str) -> Result<Arc<TopicState>, MemError> {
        lock(&self.inner).get(name).cloned().ok_or_else(|| MemError::NoTopic(name.to_string()))
    }

    /// Drops every topic and topic group whose name starts with `prefix`
    /// (end of a run).
    pub fn remove_prefix(&self, prefix: &str) {
        lock(&self.inner).retain(|k, _| !k.starts_with(prefix));
        lock(&self.servers).retain(|k, _| !k.starts_with(prefix));
    }
}

static NEXT_CONSUMER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl TopicState {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Publishes to `partition`; returns when the message is acknowledged
    /// and visible (`ready_at`).
    pub fn publish(
        &self,
        partition: usize,
        stamp: [u8; common::stamp::STAMP_LEN],
        key: Option<u64>,
        payload: Bytes,
    ) -> Option<Instant> {
        // No clock read on the plain path (no cap, no latency).
        let ready_at = match (self.service, self.cfg.latency) {
            (None, latency) if latency.is_zero() => None,
            (None, latency) => Some(Instant::now() + latency),
            (Some(service), latency) => {
                // Single-server queue shared by the topic's partitions.
                let mut free = lock(&self.server_free_at);
                let start = (*free).max(Instant::now());
                *free = start + service;
                Some(*free + latency)
            }
        };
        let mut copies = 1;
        let mut misrouted = false;
        if self.cfg.stall_after > 0
            || self.cfg.drop_every > 0
            || self.cfg.duplicate_every > 0
            || self.cfg.misroute_every > 0
        {
            let n = self.published.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let stalled = self.cfg.stall_after > 0 && n > self.cfg.stall_after;
            if stalled || (self.cfg.drop_every > 0 && n.is_multiple_of(self.cfg.drop_every)) {
                return ready_at; // acknowledged, never delivered
            }
            if self.cfg.duplicate_every > 0 && n.is_multiple_of(self.cfg.duplicate_every) {
                copies = 2;
            }
            misrouted = self.cfg.misroute_every > 0 && n.is_multiple_of(self.cfg.misroute_every);
        }
        let msg = MemMessage {
            stamp,
            key,
            payload,
            ready_at,
            redelivered: false,
            partition: (self.partitions.len() > 1).then_some(partition as u32),
            misrouted,
        };
        let p = &self.partitions[partition % self.partitions.len()];
        let mut part = lock(p);
        let np = self.partitions.len();
        if self.cfg.max_backlog > 0 {
            self.undelivered.fetch_add(copies * part.subs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        for sub in part.subs.values_mut() {
            for _ in 0..copies {
                sub.dispatch(msg.clone(), partition, np);
            }
        }
        ready_at
    }

    /// More undelivered messages than `max_backlog` allows.
    pub fn over_backlog(&self) -> bool {
        self.cfg.max_backlog > 0 && self.undelivered.load(std::sync::atomic::Ordering::Relaxed) > self.cfg.max_backlog
    }

    /// Where held publishers resume: three quarters of `max_backlog`.
    fn low_water(&self) -> u64 {
        self.cfg.max_backlog - self.cfg.max_backlog / 4
    }

    /// Waits until consumers brought the backlog down to the low-water mark.
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.undelivered.load(std::sync::atomic::Ordering::Relaxed) <= self.low_water() {
                return;
            }
            notified.await;
        }
    }

    /// A consumer took `n` messages.
    fn taken(&self, n: u64) {
        if self.cfg.max_backlog == 0 || n == 0 {
            return;
        }
        let before = self.undelivered.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        let low = self.low_water();
        if before > low && before - n <= low {
            self.drained.notify_waiters();
        }
    }

    /// Subscribes a consumer to every partition of the topic.
    pub fn subscribe(self: &Arc<Self>, subscription: &str, sub_type: SubType) -> Result<MemConsumer, MemError> {
        let id = NEXT_CONSUMER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let np = self.partitions.len();
        for (pi, p) in self.partitions.iter().enumerate() {
            let mut part = lock(p);
            let sub = part.subs.entry(subscription.to_string()).or_insert_with(|| Sub {
                sub_type,
                consumers: Vec::new(),
                rr: 0,
                backlog: VecDeque::new(),
            });
            if sub.sub_type != sub_type {
                let have = sub.sub_type.as_str();
                drop(part);
                self.unsubscribe_slot(subscription, id);
                return Err(MemError::TypeMismatch(subscription.to_string(), have, sub_type.as_str()));
            }
            if sub_type == SubType::Exclusive && !sub.consumers.is_empty() {
                drop(part);
                self.unsubscribe_slot(subscription, id);
                return Err(MemError::ExclusiveTaken(subscription.to_string()));
            }
            sub.consumers.push(Slot { id, tx: tx.clone() });
            let backlog: Vec<MemMessage> = sub.backlog.drain(..).collect();
            for m in backlog {
                sub.dispatch(m, pi, np);
            }
        }
        Ok(MemConsumer { topic: self.clone(), subscription: subscription.to_string(), id, rx, pending: None, taken: 0 })
    }

    fn unsubscribe_slot(&self, subscription: &str, id: u64) {
        for p in &self.partitions {
            if let Some(sub) = lock(p).subs.get_mut(subscription) {
                sub.consumers.retain(|s| s.id != id);
            }
        }
    }

    fn redispatch(&self, subscription: &str, msgs: Vec<MemMessage>) {
        let np = self.partitions.len();
        // Without partition information in the message, hand them to partition 0's dispatcher.
        let mut part = lock(&self.partitions[0]);
        if let Some(sub) = part.subs.get_mut(subscription) {
            for mut m in msgs {
                m.redelivered = true;
                sub.dispatch(m, 0, np);
            }
        }
    }
}

impl Sub {
    fn dispatch(&mut self, mut msg: MemMessage, partition: usize, partitions: usize) {
        loop {
            let n = self.consumers.len();
            if n == 0 {
                self.backlog.push_back(msg);
                return;
            }
            let i = match self.sub_type {
                SubType::Exclusive => 0,
                SubType::Failover => {
                    if partitions > 1 {
                        partition % n
                    } else {
                        0
                    }
                }
                SubType::Shared => {
                    self.rr = self.rr.wrapping_add(1);
                    self.rr % n
                }
                SubType::KeyShared => match msg.key {
                    Some(k) => (mix64(k) % n as u64) as usize,
                    None => {
                        self.rr = self.rr.wrapping_add(1);
                        self.rr % n
                    }
                },
            };
            let i = if msg.misrouted { (i + 1) % n } else { i };
            match self.consumers[i].tx.send(msg) {
                Ok(()) => return,
                Err(mpsc::error::SendError(m)) => {
                    // Consumer gone without closing: drop its slot, try again.
                    self.consumers.remove(i);
                    msg = m;
                }
            }
        }
    }
}

fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Waits until about `at`, centred on it. The tokio timer wakes on the
/// first 1 ms tick at or after a deadline (plus the wake-up itself), so a
/// plain `sleep_until(at)` is late by half a tick on average and a
/// configured latency reads back 0.5-1 ms high. Aiming half a tick early
/// spreads the wake over `at ± 0.5 ms` with its median at `at`, and costs no
/// CPU (a spin to the exact instant would burn a core per waiting message
/// once latencies are short or messages many). Cancel-safe.
pub async fn sleep_until_centred(at: Instant) {
    const HALF_TICK: Duration = Duration::from_micros(500);
    let aim = at.checked_sub(HALF_TICK).unwrap_or(at);
    if aim > Instant::now() {
        tokio::time::sleep_until(aim).await;
    }
}

pub struct MemConsumer {
    topic: Arc<TopicState>,
    subscription: String,
    id: u64,
    rx: mpsc::UnboundedReceiver<MemMessage>,
    /// A message taken from the channel but not yet ready (cancel safety).
    pending: Option<MemMessage>,
    /// Taken, not yet given back to the topic's `undelivered`.
    taken: u64,
}

impl MemConsumer {
    /// Next message once it is ready; cancel-safe. None when the topic is gone.
    pub async fn recv(&mut self) -> Option<MemMessage> {
        let msg = match self.pending.take() {
            Some(m) => m,
            None => match self.rx.try_recv() {
                Ok(m) => m,
                Err(_) => {
                    // About to wait: what was taken counts now.
                    self.give_back();
                    self.rx.recv().await?
                }
            },
        };
        if let Some(at) = msg.ready_at.filter(|&at| at > Instant::now()) {
            self.pending = Some(msg);
            self.give_back();
            sleep_until_centred(at).await;
            let msg = self.pending.take();
            if msg.is_some() {
                self.took();
            }
            return msg;
        }
        self.took();
        Some(msg)
    }

    #[inline]
    fn took(&mut self) {
        self.taken += 1;
        if self.taken >= self.topic.taken_batch {
            self.give_back();
        }
    }

    fn give_back(&mut self) {
        self.topic.taken(std::mem::take(&mut self.taken));
    }

    /// Leaves the subscription, handing untaken messages back as redeliveries.
    pub fn close(&mut self) {
        self.give_back();
        self.topic.unsubscribe_slot(&self.subscription, self.id);
        self.rx.close();
        let mut left: Vec<MemMessage> = self.pending.take().into_iter().collect();
        while let Ok(m) = self.rx.try_recv() {
            left.push(m);
        }
        if !left.is_empty() {
            self.topic.redispatch(&self.subscription, left);
        }
    }
}

impl Drop for MemConsumer {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(i: u8) -> [u8; 32] {
        [i; 32]
    }

    #[tokio::test]
    async fn shared_round_robin_and_exclusive() {
        let b = MemoryBroker::new();
        let t = b.create_topic("t", 0, MemoryConfig::default()).expect("topic");
        let mut c1 = t.subscribe("s", SubType::Shared).expect("sub");
        let mut c2 = t.subscribe("s", SubType::Shared).expect("sub");
        let mut ex = t.subscribe("x", SubType::Exclusive).expect("sub");
        assert_eq!(t.subscribe("x", SubType::Exclusive).err(), Some(MemError::ExclusiveTaken("x".into())));
        assert!(t.subscribe("s", SubType::Failover).is_err());
        for i in 0..10 {
            t.publish(0, stamp(i), None, Bytes::new());
        }
        let mut n1 = 0;
        while let Ok(m) = c1.rx.try_recv() {
            n1 += 1;
            drop(m);
        }
        let mut n2 = 0;
        while c2.rx.try_recv().is_ok() {
            n2 += 1;
        }
        assert_eq!((n1, n2), (5, 5));
        for _ in 0..10 {
            assert!(ex.recv().await.is_some());
        }
    }

    #[tokio::test]
    async fn backlog_then_close_redelivers() {
        let b = MemoryBroker::new();
        let t = b.create_topic("t", 2, MemoryConfig::default()).expect("topic");
        // The subscription exists but has no consumer: messages wait in its backlog.
        drop(t.subscribe("f", SubType::Failover).expect("sub"));
        for i in 0..4 {
            t.publish(i % 2, stamp(i as u8), Some(i as u64), Bytes::new());
        }
        let mut a = t.subscribe("f", SubType::Failover).expect("sub");
        let mut got = 0;
        while a.rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 4);
        let mut b2 = t.subscribe("f", SubType::Failover).expect("sub");
        t.publish(0, stamp(9), None, Bytes::new());
        t.publish(1, stamp(9), None, Bytes::new());
        // Partition 0 -> consumer 0, partition 1 -> consumer 1.
        assert!(a.rx.try_recv().is_ok());
        // Close b2 without taking its message: it goes back to `a`, redelivered.
        b2.close();
        let m = a.recv().await.expect("redelivered");
        assert!(m.redelivered);
    }

    #[tokio::test]
    async fn capacity_queues_and_latency_delays() {
        let b = MemoryBroker::new();
        let cfg =
            MemoryConfig { capacity_msgs_per_s: Some(1000.0), latency: Duration::from_millis(5), ..Default::default() };
        let t = b.create_topic("t", 0, cfg).expect("topic");
        let start = Instant::now();
        let mut last = start;
        for i in 0..100 {
            last = t.publish(0, stamp(i), None, Bytes::new()).expect("queued");
        }
        // 100 messages at 1000/s take 100 ms of broker time, plus 5 ms.
        let d = last.duration_since(start);
        assert!(d >= Duration::from_millis(104) && d < Duration::from_millis(120), "{d:?}");
        let mut c = t.subscribe("late", SubType::Shared).expect("sub");
        t.publish(0, stamp(1), None, Bytes::new());
        let m = c.recv().await.expect("msg");
        // Centred on the instant: at most half a tick early.
        assert!(Instant::now() + Duration::from_micros(600) >= m.ready_at.expect("delayed"));
    }

    #[test]
    fn topics_of_one_group_share_the_capacity() {
        let b = MemoryBroker::new();
        let cfg = MemoryConfig { capacity_msgs_per_s: Some(1000.0), ..Default::default() };
        let t1 = b.create_topic_in("run/", "run/a", 0, cfg).expect("topic");
        let t2 = b.create_topic_in("run/", "run/b", 0, cfg).expect("topic");
        let other = b.create_topic_in("other/", "other/a", 0, cfg).expect("topic");
        let start = Instant::now();
        let mut last = start;
        for i in 0..50 {
            last = last.max(t1.publish(0, stamp(i), None, Bytes::new()).expect("queued"));
            last = last.max(t2.publish(0, stamp(i), None, Bytes::new()).expect("queued"));
        }
        // 100 publishes over two topics at 1000/s in all: 100 ms of broker time.
        let d = last.duration_since(start);
        assert!(d >= Duration::from_millis(99) && d < Duration::from_millis(115), "{d:?}");
        // Another group has a server of its own.
        let o = other.publish(0, stamp(0), None, Bytes::new()).expect("queued");
        assert!(o.duration_since(start) < Duration::from_millis(20));
        b.remove_prefix("run/");
        assert!(b.topic("run/a").is_err());
        assert_eq!(lock(&b.servers).len(), 1);
    }

    #[tokio::test]
    async fn max_backlog_holds_publishers_until_consumers_catch_up() {
        let b = MemoryBroker::new();
        let cfg = MemoryConfig { max_backlog: 8, ..Default::default() };
        let t = b.create_topic("bp", 0, cfg).expect("topic");
        let mut c = t.subscribe("s", SubType::Shared).expect("sub");
        for i in 0..8 {
            t.publish(0, stamp(i), None, Bytes::new());
        }
        assert!(!t.over_backlog(), "8 undelivered is the limit, not over it");
        t.publish(0, stamp(8), None, Bytes::new());
        assert!(t.over_backlog());
        let t2 = t.clone();
        let mut waiter = tokio::spawn(async move { t2.wait_for_room().await });
        // Low water is 6 (three quarters of 8): taking 2 of 9 is not enough.
        for _ in 0..2 {
            c.recv().await.expect("msg");
        }
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut waiter).await.is_err(), "released too early");
        c.recv().await.expect("msg");
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("released at low water").expect("task");
        assert!(!t.over_backlog());
    }
}
