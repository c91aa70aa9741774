//! Driver for the in-process memory broker ([`broker`]). Topic names are
//! prefixed with the run id, so runs never see each other's messages. The
//! stamp travels beside the payload, as it would in message properties.
//!
//! Imports: the driver traits (`super`) and the broker (`broker`); the
//! broker itself imports nothing from the agent.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::scenario::{ConsumerGroup, ProducerGroup, Topic};
use common::stamp::Stamp;
use tokio::time::Instant;

pub mod broker;

use super::{
    ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError, SendOutcome,
};
use broker::{sleep_until_centred, MemConsumer, TopicState};
pub use broker::{MemoryBroker, MemoryConfig};

pub struct MemoryDriver {
    broker: MemoryBroker,
    prefix: String,
    cfg: MemoryConfig,
}

impl MemoryDriver {
    pub fn new(broker: MemoryBroker, run_id: &str, cfg: MemoryConfig) -> MemoryDriver {
        MemoryDriver { broker, prefix: format!("{run_id}/"), cfg }
    }

    fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// Removes this run's topics.
    pub fn cleanup(&self) {
        self.broker.remove_prefix(&self.prefix);
    }
}

impl Driver for MemoryDriver {
    type Producer = MemProducer;
    type Consumer = MemConsumerClient;

    async fn create_topic(&self, topic: &Topic) -> Result<(), DriverError> {
        self.broker
            .create_topic_in(&self.prefix, &self.name(&topic.name), topic.partitions, self.cfg)
            .map(|_| ())
            .map_err(|e| DriverError::Topic { topic: topic.name.clone(), reason: e.to_string() })
    }

    async fn consumer(
        &self,
        topic: &Topic,
        group: &ConsumerGroup,
        _index: u32,
    ) -> Result<MemConsumerClient, DriverError> {
        let t = self
            .broker
            .topic(&self.name(&topic.name))
            .map_err(|e| DriverError::Topic { topic: topic.name.clone(), reason: e.to_string() })?;
        let c = t.subscribe(&group.subscription, group.sub_type).map_err(|e| DriverError::Subscribe {
            topic: topic.name.clone(),
            subscription: group.subscription.clone(),
            reason: e.to_string(),
        })?;
        Ok(MemConsumerClient { inner: c, ack_latency: self.cfg.ack_latency })
    }

    async fn producer(&self, topic: &Topic, _group: &ProducerGroup, index: u32) -> Result<MemProducer, DriverError> {
        let t = self
            .broker
            .topic(&self.name(&topic.name))
            .map_err(|e| DriverError::Producer { topic: topic.name.clone(), reason: e.to_string() })?;
        Ok(MemProducer { topic: t, next_partition: AtomicUsize::new(index as usize) })
    }
}

pub struct MemProducer {
    topic: Arc<TopicState>,
    next_partition: AtomicUsize,
}

/// Resolves at the broker's acknowledgement instant; no timer (and no
/// allocation) when that is now.
pub enum MemAck {
    Now,
    /// At the acknowledgement instant, or (over the topic's `max_backlog`)
    /// once consumers have caught up.
    Later(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl Future for MemAck {
    type Output = SendOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            MemAck::Now => Poll::Ready(Ok(None)),
            MemAck::Later(f) => f.as_mut().poll(cx).map(|()| Ok(None)),
        }
    }
}

impl ProducerClient for MemProducer {
    type Ack = MemAck;

    async fn send(&mut self, msg: OutMessage) -> Result<MemAck, SendError> {
        let np = self.topic.partitions();
        // Keyed messages go to the key's partition; others round-robin.
        let partition = match msg.key {
            Some(k) if np > 1 => (k % np as u64) as usize,
            _ => self.next_partition.fetch_add(1, Ordering::Relaxed) % np,
        };
        let ready_at = self.topic.publish(partition, msg.stamp.encode(), msg.key, msg.payload);
        let held = self.topic.over_backlog().then(|| self.topic.clone());
        let at = ready_at.filter(|&at| at > Instant::now());
        if held.is_none() && at.is_none() {
            return Ok(MemAck::Now);
        }
        Ok(MemAck::Later(Box::pin(async move {
            if let Some(topic) = held {
                topic.wait_for_room().await;
            }
            if let Some(at) = at {
                sleep_until_centred(at).await;
            }
        })))
    }

    async fn close(self) {}
}

pub struct MemConsumerClient {
    inner: MemConsumer,
    /// `MemoryConfig::ack_latency`.
    ack_latency: std::time::Duration,
}

impl ConsumerClient for MemConsumerClient {
    async fn recv(&mut self) -> Result<Delivery, RecvError> {
        match self.inner.recv().await {
            Some(m) => Ok(Delivery {
                stamp: Stamp::decode(&m.stamp),
                payload_len: m.payload.len(),
                redelivered: m.redelivered,
                connection: 0,
                partition: m.partition,
                key: m.key,
            }),
            None => Err(RecvError::Closed("memory topic closed".into())),
        }
    }

    /// The broker keeps no ack state: an ack is done at once, or after
    /// the configured `ack_latency`.
    async fn ack_last(&mut self) -> Result<(), RecvError> {
        if !self.ack_latency.is_zero() {
            tokio::time::sleep(self.ack_latency).await;
        }
        Ok(())
    }

    async fn close(mut self) {
        self.inner.close();
    }
}
