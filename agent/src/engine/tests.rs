//! The engine run end to end on one agent: a shard prepared on a driver,
//! started, and finished; what the final report says.

use std::sync::Arc;
use std::time::Duration;

use common::clock::TimeBase;
use common::proto::{self, agent_message::Msg, AgentMessage};
use common::scenario::ProducerGroup;
use common::stats::GroupPhases;
use tokio::sync::mpsc;

use super::prepare;
use crate::driver::memory::{MemoryBroker, MemoryConfig, MemoryDriver};
use crate::driver::{ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError};
use crate::metrics::AgentMetrics;

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
