//! Apache Pulsar driver on the `pulsar` crate (tokio, rustls; no OpenSSL).
//!
//! The stamp travels in a message property (`lg-stamp`, the short form of
//! `Stamp::to_property`: run tag, producer id, sequence, sent time and
//! lateness, base64url; typically 26 characters), so payloads stay whatever
//! the scenario says. Messages whose tag is another run's (a durable
//! subscription reused across runs) are counted as foreign, not accounted.
//! Every producer keeps many sends in flight (`send_non_blocking`); a send's
//! ack future resolves on the broker's receipt.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::scenario::{
    pulsar_topic_name, AckMode, Auth, Broker, Compression, ConsumerGroup, ProducerGroup, SubType, Topic,
};
use common::stamp::{Stamp, StampError};
use futures::StreamExt;
use pulsar::compression as pc;
use pulsar::consumer::Message;
use pulsar::producer::SendFuture;
use pulsar::{
    Authentication, ConnectionRetryOptions, Consumer, ConsumerOptions, OperationRetryOptions, Producer,
    ProducerOptions, Pulsar, TokioExecutor,
};
use tokio_util::task::AbortOnDropHandle;

use super::{
    nodelay, ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError,
    SendOutcome,
};

const STAMP_PROPERTY: &str = "lg-stamp";

pub struct PulsarDriver {
    client: Pulsar<TokioExecutor>,
    url: String,
    run_tag: u32,
    /// How long topic, producer and consumer creation may keep retrying.
    retry_for: Duration,
    /// TCP_NODELAY on the crate's connections, made again after an outage
    /// too (see `nodelay`); stops with the driver. None: the scenario keeps
    /// Nagle's algorithm (`broker.tcp_nodelay: false`).
    nodelay: Option<AbortOnDropHandle<()>>,
}

/// Reads the broker token on this host (never from the scenario text).
pub fn read_token(auth: &Auth) -> Result<String, DriverError> {
    auth.read_token().map_err(|e| DriverError::Unsupported(e.to_string()))
}

impl PulsarDriver {
    /// The connections a new producer or consumer opened get TCP_NODELAY
    /// at once (the periodic sweep would within a second).
    fn sweep_nodelay(&self) {
        if self.nodelay.is_some() {
            nodelay::sweep_logged();
        }
    }

    pub async fn connect(broker: &Broker, run_id: &str) -> Result<PulsarDriver, DriverError> {
        let url = broker.url.clone().unwrap_or_default();
        let connect_err = |reason: String| DriverError::Connect { url: url.clone(), reason };
        let mut b = Pulsar::builder(url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                max_retries: 2,
                connection_timeout: broker.connect_timeout,
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                ..Default::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: broker.connect_timeout,
                retry_delay: Duration::from_millis(200),
                max_retries: Some(5),
            });
        let token = broker.auth.as_ref().map(read_token).transpose()?;
        if let Some(token) = &token {
            b = b.with_auth(Authentication { name: "token".into(), data: token.as_bytes().to_vec() });
        }
        if let Some(tls) = &broker.tls {
            if let Some(ca) = &tls.ca_file {
                b = b
                    .with_certificate_chain_file(ca)
                    .map_err(|e| connect_err(format!("cannot read CA file {ca}: {e}")))?;
            }
            b = b
                .with_allow_insecure_connection(tls.allow_insecure)
                .with_tls_hostname_verification_enabled(tls.verify_hostname);
        }
        let built =
            tokio::time::timeout(broker.connect_timeout + Duration::from_secs(1), b.build()).await.map_err(|_| {
                connect_err(format!("no answer within {}", common::units::format_duration(broker.connect_timeout)))
            })?;
        let client = match built {
            Ok(c) => c,
            // The crate keeps a refused handshake's reason in its log: ask
            // the broker ourselves.
            Err(e) => {
                let why = super::pulsar_probe::why_refused(
                    &url,
                    token.as_deref(),
                    broker.tls.as_ref(),
                    broker.connect_timeout,
                )
                .await;
                return Err(connect_err(why.unwrap_or_else(|| e.to_string())));
            }
        };
        if broker.tcp_nodelay {
            nodelay::sweep_logged();
        }
        Ok(PulsarDriver {
            client,
            url,
            run_tag: common::stamp::run_tag(run_id),
            retry_for: broker.connect_timeout,
            nodelay: broker.tcp_nodelay.then(nodelay::keep_sweeping),
        })
    }
}

fn sub_type(t: SubType) -> pulsar::SubType {
    match t {
        SubType::Exclusive => pulsar::SubType::Exclusive,
        SubType::Shared => pulsar::SubType::Shared,
        SubType::Failover => pulsar::SubType::Failover,
        SubType::KeyShared => pulsar::SubType::KeyShared,
    }
}

fn compression(c: Compression) -> Option<pc::Compression> {
    match c {
        Compression::None => None,
        Compression::Lz4 => Some(pc::Compression::Lz4(pc::CompressionLz4::default())),
        Compression::Zlib => Some(pc::Compression::Zlib(pc::CompressionZlib::default())),
        Compression::Zstd => Some(pc::Compression::Zstd(pc::CompressionZstd::default())),
        Compression::Snappy => Some(pc::Compression::Snappy(pc::CompressionSnappy::default())),
    }
}

/// Retries `op` while it fails, for up to `within` (brokers busy creating
/// a topic drop connections when several clients subscribe to a new topic
/// at once).
async fn retrying<T, E: std::fmt::Display, F, Fut>(what: &str, within: Duration, mut op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "{what} failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Driver for PulsarDriver {
    type Producer = PulsarProducer;
    type Consumer = PulsarConsumer;

    async fn create_topic(&self, topic: &Topic) -> Result<(), DriverError> {
        // Pulsar creates topics on first use; partitioned topics must exist
        // (pulsar-admin, or a namespace default). Check what the broker has.
        let n = retrying("topic lookup", self.retry_for, || {
            self.client.lookup_partitioned_topic_number(pulsar_topic_name(&topic.name))
        })
        .await
        .map_err(|e| DriverError::Topic {
            topic: topic.name.clone(),
            reason: format!("lookup failed at {}: {e}", self.url),
        })?;
        if topic.partitions > 0 && n != topic.partitions {
            return Err(DriverError::Topic {
                topic: topic.name.clone(),
                reason: if n == 0 {
                    format!(
                        "the scenario says {} partitions but the broker has a non-partitioned topic; create it first (pulsar-admin topics create-partitioned-topic -p {} {})",
                        topic.partitions, topic.partitions, topic.name
                    )
                } else {
                    format!("the scenario says {} partitions but the broker has {n}", topic.partitions)
                },
            });
        }
        Ok(())
    }

    async fn consumer(&self, topic: &Topic, group: &ConsumerGroup, index: u32) -> Result<PulsarConsumer, DriverError> {
        let spec = Arc::new(Subscription {
            topic: pulsar_topic_name(&topic.name),
            subscription: group.subscription.clone(),
            sub_type: sub_type(group.sub_type),
            name: format!("{}-{index}", group.name),
            receiver_queue: group.receiver_queue,
        });
        let consumer = retrying("subscribe", self.retry_for, || spec.subscribe(&self.client)).await.map_err(|e| {
            DriverError::Subscribe {
                topic: topic.name.clone(),
                subscription: group.subscription.clone(),
                reason: e.to_string(),
            }
        })?;
        self.sweep_nodelay();
        Ok(PulsarConsumer {
            consumer,
            client: self.client.clone(),
            spec,
            resubscribe: None,
            run_tag: self.run_tag,
            pending: None,
            ack: group.ack,
            ack_every: group.ack_every.max(1),
            since_ack: 0,
            connection: 0,
        })
    }

    async fn producer(&self, topic: &Topic, group: &ProducerGroup, _index: u32) -> Result<PulsarProducer, DriverError> {
        let mut opts = ProducerOptions {
            compression: compression(group.compression),
            block_queue_if_full: true,
            ..Default::default()
        };
        if let Some(b) = group.batching {
            opts.batch_size = Some(b.max_messages);
            opts.batch_timeout = Some(b.max_delay);
            opts.batch_byte_size = b.max_bytes.map(|n| n as usize);
        }
        let producer = retrying("create producer", self.retry_for, || {
            self.client.producer().with_topic(pulsar_topic_name(&topic.name)).with_options(opts.clone()).build()
        })
        .await
        .map_err(|e| DriverError::Producer { topic: topic.name.clone(), reason: e.to_string() })?;
        self.sweep_nodelay();
        Ok(PulsarProducer { producer, run_tag: self.run_tag })
    }
}

/// The crate re-creates a producer whose connection dropped, at each send
/// while it is gone, and fails a send after its operation timeout.
pub struct PulsarProducer {
    producer: Producer<TokioExecutor>,
    run_tag: u32,
}

/// `persistent://t/n/orders-partition-3` -> Some(3).
fn partition_of(topic: &str) -> Option<u32> {
    topic.rsplit_once("-partition-").and_then(|(_, n)| n.parse().ok())
}

pub struct PulsarAck(SendFuture);

impl Future for PulsarAck {
    type Output = SendOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.map(|_| None).map_err(|e| SendError::Broker(e.to_string())))
    }
}

impl ProducerClient for PulsarProducer {
    type Ack = PulsarAck;

    async fn send(&mut self, msg: OutMessage) -> Result<PulsarAck, SendError> {
        let mut properties = HashMap::with_capacity(1);
        properties.insert(STAMP_PROPERTY.to_string(), msg.stamp.to_property(self.run_tag));
        let m = pulsar::producer::Message {
            payload: msg.payload.to_vec(),
            properties,
            partition_key: msg.key.map(|k| k.to_string()),
            ..Default::default()
        };
        match self.producer.send_non_blocking(m).await {
            Ok(f) => Ok(PulsarAck(f)),
            Err(e) => Err(SendError::Broker(e.to_string())),
        }
    }

    async fn close(mut self) {
        let _ = self.producer.send_batch().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.producer.close()).await;
    }
}

type PulsarClientConsumer = Consumer<Vec<u8>, TokioExecutor>;

/// A consumer subscribing again: the new consumer and how long it took.
type Resubscribe = AbortOnDropHandle<(PulsarClientConsumer, Duration)>;

/// What a consumer subscribes to, kept to subscribe again.
struct Subscription {
    topic: String,
    subscription: String,
    sub_type: pulsar::SubType,
    name: String,
    receiver_queue: u32,
}

impl Subscription {
    async fn subscribe(&self, client: &Pulsar<TokioExecutor>) -> Result<PulsarClientConsumer, pulsar::Error> {
        client
            .consumer()
            .with_topic(&self.topic)
            .with_subscription(&self.subscription)
            .with_subscription_type(self.sub_type)
            .with_consumer_name(&self.name)
            .with_options(ConsumerOptions { receiver_queue_size: Some(self.receiver_queue), ..Default::default() })
            .build()
            .await
    }
}

/// Longest pause between two attempts to subscribe again: the consumer is
/// back within a second of the broker (its "subscribed again after" is the
/// outage as the client saw it, give or take that second).
const RESUBSCRIBE_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Subscribes again until it works (the task is aborted when the consumer
/// is closed or dropped, i.e. when the run ends).
fn resubscribe(client: Pulsar<TokioExecutor>, spec: Arc<Subscription>) -> Resubscribe {
    AbortOnDropHandle::new(tokio::spawn(async move {
        let t0 = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match spec.subscribe(&client).await {
                Ok(c) => {
                    tracing::warn!(topic = %spec.topic, subscription = %spec.subscription, after = ?t0.elapsed(), "subscribed again");
                    return (c, t0.elapsed());
                }
                Err(e) => {
                    tracing::warn!(topic = %spec.topic, subscription = %spec.subscription, error = %e, "subscribing again failed; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RESUBSCRIBE_MAX_BACKOFF);
                }
            }
        }
    }))
}

pub struct PulsarConsumer {
    consumer: PulsarClientConsumer,
    client: Pulsar<TokioExecutor>,
    spec: Arc<Subscription>,
    /// Subscribing again after the stream ended; in a task, so that a
    /// dropped `recv` loses nothing.
    resubscribe: Option<Resubscribe>,
    run_tag: u32,
    /// The last message handed out, acknowledged by `ack_last`.
    pending: Option<Message<Vec<u8>>>,
    ack: AckMode,
    ack_every: u32,
    since_ack: u32,
    /// How many times it subscribed again (see `Delivery::connection`).
    connection: u32,
}

impl ConsumerClient for PulsarConsumer {
    /// The `pulsar` crate's `ack` and `cumulative_ack` push the command onto
    /// the consumer engine's channel and return; the broker sends no receipt
    /// the client waits for (CommandAck without a request id).
    const ACK_NOT_TIMED: Option<&'static str> =
        Some("the pulsar client queues an ack without waiting for the broker's receipt");

    async fn recv(&mut self) -> Result<Delivery, RecvError> {
        if let Some(task) = self.resubscribe.as_mut() {
            let joined = task.await;
            self.resubscribe = None;
            return match joined {
                Ok((c, took)) => {
                    self.consumer = c;
                    self.connection += 1;
                    Err(RecvError::Transient(format!(
                        "subscribed again {:.1}s after the consumer stream ended",
                        took.as_secs_f64()
                    )))
                }
                Err(e) => Err(RecvError::Closed(format!("subscribing again failed: {e}"))),
            };
        }
        let msg = match self.consumer.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(RecvError::Transient(e.to_string())),
            // The pulsar crate ends a consumer's stream when it cannot get
            // its connection back within its connection retries (a broker
            // restart takes longer): subscribe again, as the Java client
            // would, until it works or the run closes the consumer.
            None => {
                self.resubscribe = Some(resubscribe(self.client.clone(), self.spec.clone()));
                return Err(RecvError::Transient("the consumer stream ended (connection to the broker lost)".into()));
            }
        };
        let stamp = match msg.payload.metadata.properties.iter().find(|kv| kv.key == STAMP_PROPERTY) {
            Some(kv) => Stamp::from_property(self.run_tag, &kv.value),
            None => Err(StampError::BadMagic),
        };
        let delivery = Delivery {
            stamp,
            payload_len: msg.payload.data.len(),
            redelivered: false,
            connection: self.connection,
            partition: partition_of(&msg.topic),
            key: msg.payload.metadata.partition_key.as_deref().and_then(|k| k.parse().ok()),
        };
        self.pending = Some(msg);
        Ok(delivery)
    }

    async fn ack_last(&mut self) -> Result<(), RecvError> {
        let Some(msg) = self.pending.take() else { return Ok(()) };
        let r = match self.ack {
            AckMode::Individual => self.consumer.ack(&msg).await,
            AckMode::Cumulative => {
                self.since_ack += 1;
                if self.since_ack < self.ack_every {
                    self.pending = Some(msg);
                    return Ok(());
                }
                self.since_ack = 0;
                self.consumer.cumulative_ack(&msg).await
            }
        };
        r.map_err(|e| RecvError::Transient(format!("ack failed: {e}")))
    }

    async fn close(mut self) {
        if let (AckMode::Cumulative, Some(msg)) = (self.ack, self.pending.take()) {
            let _ = self.consumer.cumulative_ack(&msg).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.consumer.close()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_and_partitions() {
        assert_eq!(partition_of("persistent://public/default/t-partition-12"), Some(12));
        assert_eq!(partition_of("persistent://public/default/t"), None);
    }
}
