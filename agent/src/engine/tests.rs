//! The engine run end to end on one agent: a shard prepared on a driver,
//! started, and finished; what the interval and final reports say. They
//! run on tokio's paused clock (`start_paused`): every wait is a tokio
//! timer and every reading the run's `TimeBase`, so time jumps from one
//! timer to the next, no test sleeps, and the timing is exact.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::clock::TimeBase;
use common::proto::{self, agent_message::Msg, AgentMessage};
use common::scenario::ProducerGroup;
use common::stats::{GroupPhases, PhaseStats};
use tokio::sync::mpsc;

use super::{prepare, PreparedRun};
use crate::driver::memory::{MemoryBroker, MemoryConfig, MemoryDriver};
use crate::driver::{
    ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError, SendOutcome,
};
use crate::metrics::AgentMetrics;

/// Runs `yaml` (one agent) on `driver` to the end and returns each
/// producer group's phases from the final report.
async fn run_to_the_end<D: Driver>(driver: D, yaml: &str) -> Vec<GroupPhases> {
    let f = run_collecting(driver, yaml)
        .await
        .into_iter()
        .rev()
        .find_map(|m| match m {
            Msg::Final(f) => Some(f),
            _ => None,
        })
        .expect("a final report");
    f.groups
        .iter()
        .filter(|g| g.role == proto::Role::Producer as i32)
        .map(|g| GroupPhases::from_proto(g).expect("decode"))
        .collect()
}

/// `yaml` (one agent) prepared on `driver`, with a task collecting every
/// message the agent sends the coordinator, in order (it ends when the run
/// is finished).
async fn prepared<D: Driver>(
    driver: D,
    yaml: &str,
    rate_cap: Option<f64>,
) -> (PreparedRun, TimeBase, tokio::task::JoinHandle<Vec<Msg>>) {
    let sc = common::scenario::load_str(yaml, "s.yaml", &[]).expect("scenario");
    let slots = [common::plan::AgentSlot { name: "a".into(), instance: "i".into() }];
    let shard = common::plan::plan(&sc, "engine-test", &slots).expect("plan").shards.remove(0);
    let (tx, mut rx) = mpsc::channel(1024);
    let time = TimeBase::new(0);
    let run = prepare(Arc::new(driver), shard, time.clone(), tx, Box::new(|| {}), AgentMetrics::new(), rate_cap)
        .await
        .expect("prepare");
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(m) = rx.recv().await {
            if let Ok(AgentMessage { msg: Some(m) }) = m {
                all.push(m);
            }
        }
        all
    });
    (run, time, collect)
}

/// Runs `yaml` (one agent) on `driver` to the end: every message the agent
/// sent the coordinator, in order.
async fn run_collecting<D: Driver>(driver: D, yaml: &str) -> Vec<Msg> {
    let (run, time, collect) = prepared(driver, yaml, None).await;
    run.start(time.now_ns() + 20_000_000);
    run.finish(false).await;
    collect.await.expect("collector")
}

/// Per interval index, one count of each interval report's `role` groups
/// (warmup and measurement together).
fn per_interval(msgs: &[Msg], role: proto::Role, count: impl Fn(&PhaseStats) -> u64) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let Msg::Interval(r) = m else { continue };
        for g in r.groups.iter().filter(|g| g.role == role as i32) {
            *out.entry(r.index).or_default() += count(&GroupPhases::from_proto(g).expect("decode").total());
        }
    }
    out
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

#[tokio::test(start_paused = true)]
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
/// and answers as `answer` says.
struct SlowClient {
    hold: Duration,
    answer: Answer,
}

/// When a [`SlowClient`]'s answers resolve, and the time they say the
/// broker answered (`noted` after the send; None: they say nothing).
#[derive(Clone, Copy)]
struct Answer {
    after: Duration,
    noted: Option<Duration>,
}

impl Answer {
    const AT_ONCE: Answer = Answer { after: Duration::ZERO, noted: None };
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
        Ok(SlowProducer { hold: self.hold, answer: self.answer })
    }
}

struct SlowProducer {
    hold: Duration,
    answer: Answer,
}

impl ProducerClient for SlowProducer {
    type Ack = std::pin::Pin<Box<dyn std::future::Future<Output = SendOutcome> + Send>>;
    async fn send(&mut self, msg: OutMessage) -> Result<Self::Ack, SendError> {
        tokio::time::sleep(self.hold).await;
        let Answer { after, noted } = self.answer;
        let sent = msg.stamp.sent_ns;
        Ok(Box::pin(async move {
            tokio::time::sleep(after).await;
            Ok(noted.map(|n| sent + n.as_nanos() as i64))
        }))
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

#[tokio::test(start_paused = true)]
async fn a_client_that_holds_sends_back_counts_as_waiting() {
    // 20 ms per send: 50 msg/s of the 200 scheduled, the rest is waiting.
    let g =
        run_to_the_end(SlowClient { hold: Duration::from_millis(20), answer: Answer::AT_ONCE }, TWO_SLOW_WINDOWS).await;
    let measure = share(g[0].measure.window_wait_ns, 1.0);
    eprintln!("client backpressure: waited {:.1}% of the measurement", measure * 100.0);
    assert!(measure > 0.9 && measure <= 1.0, "measurement share {measure}");
}

#[tokio::test(start_paused = true)]
async fn an_answer_is_timed_when_the_client_noted_it_not_when_the_engine_looked() {
    // Answers that resolve 30 ms after the send but say the broker answered
    // after 2 ms (a driver whose answers wait in a queue): 2 ms it is.
    let answer = Answer { after: Duration::from_millis(30), noted: Some(Duration::from_millis(2)) };
    let g = run_to_the_end(SlowClient { hold: Duration::ZERO, answer }, TWO_SLOW_WINDOWS).await;
    let m = &g[0].measure;
    assert!(m.acked > 10, "acked {}", m.acked);
    for q in [0.0, 0.5, 1.0] {
        let v = m.service.quantile_ns(q);
        assert!((1_990_000..=2_010_000).contains(&v), "service q{q}: {v} ns");
    }
    // A noted time past when the engine saw the answer is capped at that.
    let answer = Answer { after: Duration::from_millis(30), noted: Some(Duration::from_secs(5)) };
    let g = run_to_the_end(SlowClient { hold: Duration::ZERO, answer }, TWO_SLOW_WINDOWS).await;
    let v = g[0].measure.service.quantile_ns(1.0);
    assert!((29_000_000..=32_000_000).contains(&v), "service max: {v} ns");
    // Saying nothing: the engine's own clock, 30 ms.
    let answer = Answer { after: Duration::from_millis(30), noted: None };
    let g = run_to_the_end(SlowClient { hold: Duration::ZERO, answer }, TWO_SLOW_WINDOWS).await;
    let v = g[0].measure.service.quantile_ns(0.5);
    assert!((29_000_000..=32_000_000).contains(&v), "service p50: {v} ns");
}

#[test]
fn an_answers_noted_time_stays_between_its_send_and_the_look_even_after_a_clock_correction() {
    use super::producer::answered_at;
    assert_eq!(answered_at(&Ok(Some(150)), 100, 200), 150);
    assert_eq!(answered_at(&Ok(Some(50)), 100, 200), 100, "not before the send");
    assert_eq!(answered_at(&Ok(Some(300)), 100, 200), 200, "not after the look");
    assert_eq!(answered_at(&Ok(None), 100, 200), 200, "nothing noted: now");
    assert_eq!(answered_at(&Err(SendError::Timeout), 100, 200), 200);
    // The time base stepped back between the send and the look: no panic, now.
    assert_eq!(answered_at(&Ok(Some(150)), 300, 200), 200);
}

#[tokio::test(start_paused = true)]
async fn the_time_base_follows_the_paused_tokio_clock() {
    // (Here rather than in common/src/clock.rs: tokio's test-util is a dev-dependency of this crate.)
    let t = TimeBase::new(1_000);
    let a = t.now_ns();
    tokio::time::advance(Duration::from_millis(1_500)).await;
    assert_eq!(t.now_ns() - a, 1_500_000_000, "exactly the time advanced");
    // A sleep until an instant of the base ends with the base reading it.
    let target = t.now_ns() + 250_000_000;
    tokio::time::sleep_until(t.instant_at(target)).await;
    assert!(t.now_ns() >= target && t.now_ns() < target + 1_000_000, "{} vs {target}", t.now_ns());
    // The process clock itself is not paused.
    assert!((common::clock::now_ns() - 1_000 - a).abs() < 1_000_000_000);
}

/// One producer at 100 msg/s for 1 s with a consumer, reports every 100 ms.
const STEADY: &str = "name: s\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
    producers: [{name: p, topic: t, rate: 100}]\n\
    consumers: [{name: c, topic: t}]\n\
    phases: {duration: 1s}\nreport_interval: 100ms\n";

#[tokio::test(start_paused = true)]
async fn on_the_paused_clock_each_interval_holds_exactly_its_part_of_the_schedule() {
    let msgs = run_collecting(MemoryDriver::new(MemoryBroker::new(), "steady", MemoryConfig::default()), STEADY).await;
    let ten_each: BTreeMap<u64, u64> = (0..10).map(|k| (k, 10)).collect();
    assert_eq!(per_interval(&msgs, proto::Role::Producer, |s| s.sent), ten_each);
    assert_eq!(per_interval(&msgs, proto::Role::Producer, |s| s.acked), ten_each);
    // Sent on time: the timer's millisecond tick is the only lag.
    let late = per_interval(&msgs, proto::Role::Producer, |s| s.late_sends + u64::from(s.max_lag_ns >= 1_000_000));
    assert!(late.values().all(|&n| n == 0), "{late:?}");
    for m in &msgs {
        if let Msg::Interval(r) = m {
            assert_eq!(r.end_ns - r.start_ns, 100_000_000, "interval {}", r.index);
        }
    }
}

/// STEADY with the consumers taking nothing from 305 ms to 605 ms.
const PAUSED: &str = "name: s\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
    producers: [{name: p, topic: t, rate: 100}]\n\
    consumers: [{name: c, topic: t, pause: {at: 305ms, for: 300ms}}]\n\
    phases: {duration: 1s}\nreport_interval: 100ms\n";

#[tokio::test(start_paused = true)]
async fn a_paused_consumer_takes_nothing_then_the_backlog() {
    let msgs = run_collecting(MemoryDriver::new(MemoryBroker::new(), "paused", MemoryConfig::default()), PAUSED).await;
    let received = per_interval(&msgs, proto::Role::Consumer, |s| s.received);
    let at = |k: u64| received.get(&k).copied().unwrap_or(0);
    assert_eq!((at(0), at(1), at(2)), (10, 10, 10), "{received:?}");
    // The pause begins at the consumer's first wake-up after 305 ms (the
    // message sent at 310 ms) and ends at 605 ms.
    assert_eq!((at(3), at(4), at(5)), (2, 0, 0), "{received:?}");
    // The backlog (sent 320..=600 ms) and the interval's own messages.
    assert_eq!(at(6), 29 + 9, "{received:?}");
    assert_eq!(received.values().sum::<u64>(), 100, "nothing lost: {received:?}");
}

/// Runs `yaml` (one agent, started 20 ms from now) applying each
/// `(at_ms, factor, paused)` run-control change at `at_ms` after the start,
/// sent 100 ms ahead as the coordinator does: every message the agent sent.
async fn run_controlled(yaml: &str, changes: &[(i64, f64, bool)], rate_cap: Option<f64>) -> (Vec<Msg>, Vec<String>) {
    let driver = MemoryDriver::new(MemoryBroker::new(), "control", MemoryConfig::default());
    let (mut run, time, collect) = prepared(driver, yaml, rate_cap).await;
    let start = time.now_ns() + 20_000_000;
    run.start(start);
    let mut refused = Vec::new();
    for (k, &(at_ms, factor, paused)) in changes.iter().enumerate() {
        let at_ns = start + at_ms * 1_000_000;
        tokio::time::sleep_until(time.instant_at(at_ns - 100_000_000)).await;
        let groups = vec![proto::GroupPace { group: 0, factor, paused }];
        if let Err(why) = run.control(&proto::Control { id: k as u64, at_ns, groups, end_sends: false }) {
            refused.push(why);
        }
    }
    run.finish(false).await;
    (collect.await.expect("collector"), refused)
}

#[tokio::test(start_paused = true)]
async fn run_control_rebases_the_schedule_exactly_and_a_pause_owes_nothing() {
    // 100 msg/s; ×3 from 300 ms, paused from 600 ms, resumed (still ×3) at 800 ms.
    let changes = [(300, 3.0, false), (600, 3.0, true), (800, 3.0, false)];
    let (msgs, refused) = run_controlled(STEADY, &changes, None).await;
    assert!(refused.is_empty(), "{refused:?}");
    let sent = per_interval(&msgs, proto::Role::Producer, |s| s.sent);
    let at = |k: u64| sent.get(&k).copied().unwrap_or(0);
    let got: Vec<u64> = (0..10).map(at).collect();
    assert_eq!(got, [10, 10, 10, 30, 30, 30, 0, 0, 30, 30], "no burst, no gap, nothing owed for the pause");
    // Latency stays measured from the intended times: on time throughout.
    let late = per_interval(&msgs, proto::Role::Producer, |s| s.late_sends);
    assert!(late.values().all(|&n| n == 0), "{late:?}");
    let unsent = per_interval(&msgs, proto::Role::Producer, |s| s.unsent);
    assert!(unsent.values().all(|&n| n == 0), "the paused span is not counted as unsent: {unsent:?}");
}

#[tokio::test(start_paused = true)]
async fn run_control_refuses_what_it_cannot_apply_and_changes_nothing() {
    let (msgs, refused) = run_controlled(STEADY, &[(300, -1.0, false), (600, 1.2, false)], None).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("not a positive number"), "{refused:?}");
    let sent = per_interval(&msgs, proto::Role::Producer, |s| s.sent);
    let got: Vec<u64> = (0..10).map(|k| sent.get(&k).copied().unwrap_or(0)).collect();
    assert_eq!(got, [10, 10, 10, 10, 10, 10, 12, 12, 12, 12], "the refused change changed nothing");
    // Above the agent's cap (`agent --max-rate 150`): ×3 of 100 msg/s is
    // refused. (The cap's limiter keeps real time, so on the paused clock
    // only the refusal is checked here.)
    let (_, refused) = run_controlled(STEADY, &[(300, 3.0, false)], Some(150.0)).await;
    assert!(refused.len() == 1 && refused[0].contains("above this agent's --max-rate 150"), "{refused:?}");
}

/// The count of a proto range set (sorted, disjoint, half-open ranges).
fn set_len(s: &Option<proto::RangeSet>) -> u64 {
    s.as_ref().map(|s| s.starts.iter().zip(&s.ends).map(|(a, b)| b - a).sum()).unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn leaving_stops_the_sends_awaits_those_in_flight_drains_and_reports_them() {
    // STEADY measured for 10 s, on a broker that acks and delivers 50 ms
    // after each send: when the agent leaves 1 s in, five sends are in flight.
    let yaml = STEADY.replace("duration: 1s", "duration: 10s");
    let cfg = MemoryConfig { latency: Duration::from_millis(50), ..Default::default() };
    let driver = MemoryDriver::new(MemoryBroker::new(), "leave", cfg);
    let (run, time, collect) = prepared(driver, &yaml, None).await;
    run.start(time.now_ns() + 20_000_000);
    tokio::time::sleep(Duration::from_millis(1_015)).await;
    let t0 = tokio::time::Instant::now();
    run.leave(Duration::from_millis(500)).await;
    // The consumer drains for the whole bound, not longer.
    assert_eq!(t0.elapsed(), Duration::from_millis(500));
    let last = collect.await.expect("collector").pop();
    let Some(Msg::Final(f)) = last else { panic!("the final report is the last message: {last:?}") };
    let p = &f.producers[0];
    let acked = set_len(&p.acked);
    assert_eq!(p.sent, 100, "1 s at 100 msg/s, then no more sends");
    assert_eq!(acked, p.sent, "the sends in flight when it left were awaited");
    let received: u64 = f.subscriptions[0].producers.iter().map(|r| set_len(&r.received)).sum();
    assert_eq!(received, acked, "the consumer drained every acknowledged message");
    let g = f.groups.iter().find(|g| g.role == proto::Role::Producer as i32).expect("producer group");
    let g = GroupPhases::from_proto(g).expect("decode");
    assert_eq!(g.measure.unsent, 0, "a schedule cut short by leaving is not a shortfall");
}

/// Consumer group 0's phases from the final report of `msgs`.
fn consumer_phases(msgs: &[Msg]) -> GroupPhases {
    let f = msgs
        .iter()
        .rev()
        .find_map(|m| match m {
            Msg::Final(f) => Some(f),
            _ => None,
        })
        .expect("a final report");
    let g = f.groups.iter().find(|g| g.role == proto::Role::Consumer as i32).expect("consumer group");
    GroupPhases::from_proto(g).expect("decode")
}

#[tokio::test(start_paused = true)]
async fn each_ack_is_timed_from_the_call_to_its_completion() {
    // The memory broker's acks take 3 ms: each of the 100 deliveries'.
    let cfg = MemoryConfig { ack_latency: Duration::from_millis(3), ..Default::default() };
    let msgs = run_collecting(MemoryDriver::new(MemoryBroker::new(), "acks", cfg), STEADY).await;
    let c = consumer_phases(&msgs);
    let ack = &c.measure.ack;
    assert_eq!((ack.len(), c.measure.received), (100, 100), "one ack latency per delivery");
    // The broker's 3 ms, to the histogram's three significant digits.
    let near_3ms = |ns: u64| ns.abs_diff(3_000_000) <= 3_000;
    assert!(near_3ms(ack.quantile_ns(0.0)) && near_3ms(ack.max_ns()), "{} .. {}", ack.quantile_ns(0.0), ack.max_ns());
    assert!(c.measure.service.quantile_ns(0.5) < 3_000_000, "the ack is not part of the end-to-end latency");
    // A client that only queues its acks (as the pulsar crate's): not timed.
    let msgs = run_collecting(QueuedAcks(MemoryDriver::new(MemoryBroker::new(), "queued", cfg)), STEADY).await;
    let c = consumer_phases(&msgs);
    assert_eq!(c.measure.received, 100);
    assert!(c.measure.ack.is_empty() && c.warmup.ack.is_empty(), "no made-up ack latency");
}

/// The memory driver with consumers that say their acks are only queued.
struct QueuedAcks(MemoryDriver);

struct QueuedAckConsumer(crate::driver::memory::MemConsumerClient);

impl Driver for QueuedAcks {
    type Producer = <MemoryDriver as Driver>::Producer;
    type Consumer = QueuedAckConsumer;

    async fn create_topic(&self, t: &common::scenario::Topic) -> Result<(), DriverError> {
        self.0.create_topic(t).await
    }
    async fn consumer(
        &self,
        t: &common::scenario::Topic,
        g: &common::scenario::ConsumerGroup,
        i: u32,
    ) -> Result<QueuedAckConsumer, DriverError> {
        Ok(QueuedAckConsumer(self.0.consumer(t, g, i).await?))
    }
    async fn producer(
        &self,
        t: &common::scenario::Topic,
        g: &ProducerGroup,
        i: u32,
    ) -> Result<Self::Producer, DriverError> {
        self.0.producer(t, g, i).await
    }
}

impl ConsumerClient for QueuedAckConsumer {
    const ACK_NOT_TIMED: Option<&'static str> = Some("acks are only queued");
    async fn recv(&mut self) -> Result<Delivery, RecvError> {
        self.0.recv().await
    }
    async fn ack_last(&mut self) -> Result<(), RecvError> {
        self.0.ack_last().await
    }
    async fn close(self) {
        self.0.close().await
    }
}
