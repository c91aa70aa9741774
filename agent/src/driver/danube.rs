//! Danube driver on `danube-client` 0.16.
//!
//! * Topics: Danube names them `/namespace/topic` (a scenario's short name
//!   lives in `default`). A consumer cannot subscribe before its topic
//!   exists, so `create_topic` creates it with a producer of its own (with
//!   the topic's partitions, dispatch strategy and schema), after
//!   registering the topic's schema in Danube's schema registry.
//! * The stamp travels in a message attribute (`lg-stamp`, the same short
//!   base64url form as the Pulsar driver's property), so payloads stay
//!   what the topic's schema says: text for `string` and `json` (a
//!   `{"lg": "..."}` document of the scenario's size), 8 big-endian bytes
//!   for `int64`. Another run's messages are counted as foreign.
//! * A Danube `Producer` has one send in flight (it holds a lock across the
//!   unary send RPC). Each of our producers therefore owns `clients` of them,
//!   each driven by a worker task that takes sends from one bounded queue;
//!   the engine's schedule and rate stay those of the one logical producer.
//!   With more than one client, sends of one producer may be acknowledged
//!   (and delivered) out of order; the report counts that as reordering.
//! * Consumers: every subscription type the client has (exclusive, shared,
//!   failover, key_shared), individual acks. The client reopens a dropped
//!   message stream by itself; what the broker lost on the way shows as loss.
//! * A broker restart: the broker forgets every producer and consumer, and
//!   danube-client 0.16 takes its "not found" as final (its producers fail
//!   every send after it, its consumers' streams end for good — seen on the
//!   real danube-broker). We do what an application must: a producer the
//!   broker no longer knows is created again (that send fails, the next go
//!   to the new one), and a consumer whose streams ended subscribes again
//!   (one receive error says so; what the broker hands out again after it
//!   counts as redelivered). Both keep trying for the connect timeout.
//! * The client cannot close a producer: each one's 5-second health check
//!   keeps running until the broker forgets it (a limit of danube-client 0.16).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::scenario::{
    danube_topic_name, Broker, ConsumerGroup, PayloadKind, ProducerGroup, SubType, Topic, TopicSchema,
};
use common::stamp::StampError;
use danube_client::errors::DanubeError;
use danube_client::{Consumer, DanubeClient, Producer, SchemaType};
use danube_core::message::StreamMessage;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use tokio::task::JoinHandle;
use tracing::warn;

use super::pulsar::read_token;
use super::{
    ConsumerClient, Delivery, Driver, DriverError, OutMessage, ProducerClient, RecvError, SendError, SendOutcome,
};

/// The message attribute that carries the stamp.
pub const STAMP_ATTRIBUTE: &str = "lg-stamp";

pub struct DanubeDriver {
    client: DanubeClient,
    url: String,
    run_tag: u32,
    /// How long topic, producer and consumer creation may keep retrying.
    retry_for: Duration,
    /// The producers that created this run's topics (they send nothing; the
    /// client has no way to close them, so they live as long as the driver).
    topic_makers: Mutex<Vec<Producer>>,
}

/// The full text of a client error, its causes included (a transport
/// error's Display alone says only "transport error").
fn describe(e: &DanubeError) -> String {
    if let DanubeError::FromStatus(s) = e {
        return format!("{}: {}", code_name(s.code()), s.message());
    }
    common::errors::source_chain(e)
}

/// A TLS broker answers a plain-text client by dropping the connection,
/// which the client reports as a cancelled or failed call: say what to try.
fn plaintext_hint(url: &str, e: &DanubeError) -> &'static str {
    let dropped = match e {
        DanubeError::FromStatus(s) => {
            matches!(s.code(), tonic::Code::Cancelled | tonic::Code::Unknown | tonic::Code::Internal)
        }
        _ => true,
    };
    if url.starts_with("http://") && dropped {
        " (if the broker uses TLS: an https:// URL with `broker.tls.ca_file`)"
    } else {
        ""
    }
}

fn code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        tonic::Code::ResourceExhausted => "resource exhausted",
        tonic::Code::Unimplemented => "unimplemented",
        _ => "error",
    }
}

/// Errors worth another try while a topic is being created or moved;
/// everything else (bad names, refused auth, mismatched settings) is final.
fn transient(e: &DanubeError) -> bool {
    match e {
        DanubeError::FromStatus(s) => matches!(
            s.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::ResourceExhausted
                | tonic::Code::Aborted
                | tonic::Code::Unknown
        ),
        _ => false,
    }
}

/// Retries of one operation while it fails with a transient error, for up
/// to `within` (brokers busy creating a topic answer "unavailable").
struct Retry {
    deadline: tokio::time::Instant,
    delay: Duration,
}

impl Retry {
    fn new(within: Duration) -> Retry {
        Retry { deadline: tokio::time::Instant::now() + within, delay: Duration::from_millis(100) }
    }

    /// Waits before the next try and says true, or says false: give up.
    async fn again(&mut self, what: &str, e: &DanubeError) -> bool {
        if !transient(e) || tokio::time::Instant::now() + self.delay >= self.deadline {
            return false;
        }
        warn!(error = %describe(e), "{what} failed; retrying in {:?}", self.delay);
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
        true
    }
}

/// The schema-registry subject of a topic: `/default/orders` -> `lg.default.orders`.
pub fn schema_subject(full_topic: &str) -> String {
    format!("lg{}", full_topic.replace('/', "."))
}

/// `/default/orders-part-3` -> Some(3).
pub fn partition_of(topic: &str) -> Option<u32> {
    topic.rsplit_once("-part-").and_then(|(_, n)| n.parse().ok())
}

fn client_sub_type(t: SubType) -> danube_client::SubType {
    match t {
        SubType::Exclusive => danube_client::SubType::Exclusive,
        SubType::Shared => danube_client::SubType::Shared,
        SubType::Failover => danube_client::SubType::FailOver,
        SubType::KeyShared => danube_client::SubType::KeyShared,
    }
}

impl DanubeDriver {
    /// Builds the client and checks the broker answers within the connect timeout.
    pub async fn connect(broker: &Broker, run_id: &str) -> Result<DanubeDriver, DriverError> {
        let url = broker.url.clone().unwrap_or_default();
        let connect_err = |reason: String| DriverError::Connect { url: url.clone(), reason };
        let mut b = DanubeClient::builder().service_url(url.clone());
        if let Some(tls) = &broker.tls {
            if tls.allow_insecure || !tls.verify_hostname {
                return Err(DriverError::Unsupported(
                    "danube-client 0.16 always verifies the broker's certificate: remove `allow_insecure` / `verify_hostname: false`".into(),
                ));
            }
            match &tls.ca_file {
                Some(ca) => {
                    b = b
                        .with_tls(ca)
                        .map_err(|e| connect_err(format!("cannot read CA file {ca}: {}", describe(&e))))?
                }
                None if broker.auth.is_none() => {
                    return Err(DriverError::Unsupported(
                        "TLS to Danube needs `broker.tls.ca_file` (danube-client 0.16 takes the CA from a file)".into(),
                    ))
                }
                None => {}
            }
        }
        if let Some(auth) = &broker.auth {
            if !url.starts_with("https://") {
                return Err(DriverError::Unsupported(format!(
                    "a token goes to Danube over TLS only: use an https:// URL, not {url}"
                )));
            }
            b = b.with_token(read_token(auth)?);
        }
        let client = b.build().await.map_err(|e| connect_err(describe(&e)))?;
        // Building the client connects nothing: open the channel now so an
        // unreachable broker is an error here, not a hang later.
        match tokio::time::timeout(broker.connect_timeout, client.get_service_channel()).await {
            Err(_) => {
                return Err(connect_err(format!(
                    "no answer within {}",
                    common::units::format_duration(broker.connect_timeout)
                )))
            }
            Ok(Err(e)) => return Err(connect_err(describe(&e))),
            Ok(Ok(_)) => {}
        }
        Ok(DanubeDriver {
            client,
            url,
            run_tag: common::stamp::run_tag(run_id),
            retry_for: broker.connect_timeout,
            topic_makers: Mutex::new(Vec::new()),
        })
    }

    /// A producer builder with the topic's settings (every producer on a
    /// Danube topic must ask for the same dispatch strategy and schema).
    fn producer_builder(&self, topic: &Topic, name: String) -> danube_client::ProducerBuilder {
        let full = danube_topic_name(&topic.name);
        let mut b = self.client.new_producer().with_topic(full.clone()).with_name(name);
        if topic.partitions > 0 {
            b = b.with_partitions(topic.partitions as usize);
        }
        if topic.reliable_dispatch {
            b = b.with_reliable_dispatch();
        }
        if topic.schema != TopicSchema::None {
            b = b.with_schema_subject(schema_subject(&full));
        }
        b
    }

    async fn register_schema(&self, topic: &Topic) -> Result<(), DriverError> {
        let (ty, data): (SchemaType, Vec<u8>) = match &topic.schema {
            TopicSchema::None => return Ok(()),
            TopicSchema::Bytes => (SchemaType::Bytes, b"bytes".to_vec()),
            TopicSchema::String => (SchemaType::String, b"string".to_vec()),
            TopicSchema::Int64 => (SchemaType::Number, b"int64".to_vec()),
            TopicSchema::Json(text) => (SchemaType::JsonSchema, text.as_bytes().to_vec()),
        };
        let subject = schema_subject(&danube_topic_name(&topic.name));
        let registry = self.client.schema();
        let mut retry = Retry::new(self.retry_for);
        loop {
            let r = registry
                .register_schema(subject.clone())
                .with_type(ty)
                .with_schema_data(data.clone())
                .with_created_by("loadgen")
                .execute()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if retry.again("schema registration", &e).await => {}
                Err(e) => {
                    return Err(DriverError::Topic {
                        topic: topic.name.clone(),
                        reason: format!(
                            "registering schema `{subject}` ({ty}) at {} failed: {}",
                            self.url,
                            describe(&e)
                        ),
                    })
                }
            }
        }
    }
}

impl Driver for DanubeDriver {
    type Producer = DanubeProducer;
    type Consumer = DanubeConsumer;

    async fn create_topic(&self, topic: &Topic) -> Result<(), DriverError> {
        self.register_schema(topic).await?;
        // A producer creates the topic (Danube auto-creates on a producer's
        // request); consumers can subscribe once it exists.
        let name = format!("lg-{:08x}-topic-{:08x}", self.run_tag, rand::random::<u32>());
        let mut maker = self
            .producer_builder(topic, name)
            .build()
            .map_err(|e| DriverError::Topic { topic: topic.name.clone(), reason: describe(&e) })?;
        let mut retry = Retry::new(self.retry_for);
        loop {
            match maker.create().await {
                Ok(()) => break,
                Err(e) if retry.again("topic creation", &e).await => {}
                Err(e) => {
                    return Err(DriverError::Topic {
                        topic: topic.name.clone(),
                        reason: format!(
                            "creating `{}` at {} failed: {}{}",
                            danube_topic_name(&topic.name),
                            self.url,
                            describe(&e),
                            plaintext_hint(&self.url, &e)
                        ),
                    })
                }
            }
        }
        self.topic_makers.lock().await.push(maker);
        Ok(())
    }

    async fn consumer(&self, topic: &Topic, group: &ConsumerGroup, index: u32) -> Result<DanubeConsumer, DriverError> {
        let sub_err = |reason: String| DriverError::Subscribe {
            topic: topic.name.clone(),
            subscription: group.subscription.clone(),
            reason,
        };
        let full = danube_topic_name(&topic.name);
        let builder = self
            .client
            .new_consumer()
            .with_topic(full)
            .with_consumer_name(format!("lg-{:08x}-{}-{index}", self.run_tag, group.name))
            .with_subscription(group.subscription.clone())
            .with_subscription_type(client_sub_type(group.sub_type));
        let (consumer, rx) = subscribe(builder.clone(), self.retry_for).await.map_err(sub_err)?;
        Ok(DanubeConsumer {
            consumer,
            rx,
            run_tag: self.run_tag,
            pending: None,
            remake: (builder, self.retry_for),
            again: None,
            connection: 0,
        })
    }

    async fn producer(&self, topic: &Topic, group: &ProducerGroup, index: u32) -> Result<DanubeProducer, DriverError> {
        let clients = group.clients.max(1) as usize;
        let (jobs, rx) = mpsc::unbounded_channel::<Job>();
        let room = Arc::new(Semaphore::new(clients * QUEUED_PER_CLIENT));
        // One client producer takes from the queue itself; several share it.
        let queues = if clients == 1 {
            vec![Queue::Own(rx)]
        } else {
            let shared = Arc::new(Mutex::new(rx));
            (0..clients).map(|_| Queue::Shared(shared.clone())).collect()
        };
        let mut workers = Vec::with_capacity(clients);
        for (c, queue) in queues.into_iter().enumerate() {
            let name = format!("lg-{:08x}-{}-{index}-{c}", self.run_tag, group.name);
            let builder = self.producer_builder(topic, name);
            let p = match create_producer(builder.clone(), self.retry_for).await {
                Ok(p) => p,
                Err(e) => {
                    workers.iter().for_each(JoinHandle::abort);
                    return Err(DriverError::Producer { topic: topic.name.clone(), reason: describe(&e) });
                }
            };
            workers.push(tokio::spawn(worker(p, queue, room.clone(), group.send_timeout, (builder, self.retry_for))));
        }
        let shape = match &topic.schema {
            TopicSchema::Int64 => Shape::Int64,
            TopicSchema::Json(_) if !matches!(group.payload, PayloadKind::File(_)) => Shape::JsonDoc,
            _ => Shape::AsIs,
        };
        Ok(DanubeProducer {
            jobs,
            room,
            taken: 0,
            take: clients * QUEUED_PER_CLIENT / 2,
            workers,
            run_tag: self.run_tag,
            shape,
        })
    }
}

/// How a producer turns the engine's payload into what the topic's schema wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    AsIs,
    /// 8 bytes, big-endian: the message's sequence number.
    Int64,
    /// `{"lg":"<text>"}` of the payload's size (text payloads hold no `"` or `\`).
    JsonDoc,
}

const JSON_HEAD: &[u8] = b"{\"lg\":\"";
const JSON_TAIL: &[u8] = b"\"}";

fn shape_payload(shape: Shape, payload: &[u8], seq: u64) -> Vec<u8> {
    match shape {
        Shape::AsIs => payload.to_vec(),
        Shape::Int64 => (seq as i64).to_be_bytes().to_vec(),
        Shape::JsonDoc => {
            let text = payload.len().saturating_sub(JSON_HEAD.len() + JSON_TAIL.len());
            let mut v = Vec::with_capacity(text + JSON_HEAD.len() + JSON_TAIL.len());
            v.extend_from_slice(JSON_HEAD);
            v.extend(payload[..text].iter().map(|&b| if b == b'"' || b == b'\\' || b < 0x20 { b'.' } else { b }));
            v.extend_from_slice(JSON_TAIL);
            v
        }
    }
}

/// Sends queued for a producer's workers, per client producer: each worker
/// finds its next send waiting when an answer comes, and the engine,
/// taking room for half the queue at a time, runs once per that many
/// sends instead of once per send (BENCHMARKS.md, Danube ninth run). At a
/// set rate the broker keeps up with, the queue holds only what one timer
/// tick releases at once.
const QUEUED_PER_CLIENT: usize = 16;

struct Job {
    data: Vec<u8>,
    attributes: HashMap<String, String>,
    key: Option<String>,
    /// When the engine handed it over (just after its clock read
    /// `sent_ns`, coordinator time): the answer's time and the send
    /// timeout count from here.
    handed: Instant,
    sent_ns: i64,
    reply: oneshot::Sender<SendOutcome>,
}

/// The broker does not know the producer or consumer the client asked
/// about: it restarted (or dropped it), and the client will not recover.
fn forgotten(e: &DanubeError) -> bool {
    matches!(e, DanubeError::FromStatus(s) if s.code() == tonic::Code::NotFound)
}

/// A client producer created (and made known to the broker), retrying
/// transient failures for `retry_for`.
async fn create_producer(
    builder: danube_client::ProducerBuilder,
    retry_for: Duration,
) -> Result<Producer, DanubeError> {
    let mut p = builder.build()?;
    let mut retry = Retry::new(retry_for);
    loop {
        match p.create().await {
            Ok(()) => return Ok(p),
            Err(e) if retry.again("create producer", &e).await => {}
            Err(e) => return Err(e),
        }
    }
}

/// Where a worker takes its sends from: the producer's queue itself when
/// it is the only client producer, else the queue its workers share.
enum Queue {
    Own(mpsc::UnboundedReceiver<Job>),
    Shared(Arc<Mutex<mpsc::UnboundedReceiver<Job>>>),
}

impl Queue {
    async fn next(&mut self) -> Option<Job> {
        match self {
            Queue::Own(rx) => rx.recv().await,
            Queue::Shared(rx) => rx.lock().await.recv().await,
        }
    }
}

/// Drives one client producer: one send at a time, from the queue, giving
/// back the room of each send it takes; a send still queued past the
/// group's `send_timeout` is not sent. A producer the broker has forgotten
/// is created again from `remake`.
async fn worker(
    mut producer: Producer,
    mut jobs: Queue,
    room: Arc<Semaphore>,
    send_timeout: Duration,
    remake: (danube_client::ProducerBuilder, Duration),
) {
    // The queue closed (or this task ended): nobody waits for room then.
    let _closes = CloseOnDrop(room.clone());
    loop {
        let Some(job) = jobs.next().await else { return };
        room.add_permits(1);
        // The engine gave up on this send (its send timeout): never send late.
        if job.reply.is_closed() || job.handed.elapsed() >= send_timeout {
            let _ = job.reply.send(Err(SendError::Timeout));
            continue;
        }
        let r = match &job.key {
            Some(k) => producer.send_with_key(job.data, Some(job.attributes), k).await,
            None => producer.send(job.data, Some(job.attributes)).await,
        };
        let forgot = r.as_ref().err().is_some_and(forgotten);
        let at = job.sent_ns.saturating_add(job.handed.elapsed().as_nanos() as i64);
        let _ = job.reply.send(r.map(|_| Some(at)).map_err(|e| SendError::Broker(describe(&e))));
        if forgot {
            warn!("the broker no longer knows this producer (restarted?): creating it again");
            match create_producer(remake.0.clone(), remake.1).await {
                Ok(p) => producer = p,
                Err(e) => warn!(error = %describe(&e), "creating the producer again failed; will try at the next send"),
            }
        }
    }
}

/// Closes the room semaphore when a worker ends, so a producer waiting for
/// room hears that nobody will take its sends.
struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub struct DanubeProducer {
    jobs: mpsc::UnboundedSender<Job>,
    /// Room in the queue ([`QUEUED_PER_CLIENT`] per client producer): the
    /// engine takes `take` at a time and has `taken` of it left.
    room: Arc<Semaphore>,
    taken: usize,
    take: usize,
    workers: Vec<JoinHandle<()>>,
    run_tag: u32,
    shape: Shape,
}

pub struct DanubeAck(oneshot::Receiver<SendOutcome>);

impl Future for DanubeAck {
    type Output = SendOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(SendError::Closed)))
    }
}

impl ProducerClient for DanubeProducer {
    type Ack = DanubeAck;

    async fn send(&mut self, msg: OutMessage) -> Result<DanubeAck, SendError> {
        // The engine read its clock (`sent_ns`) just before: the answer's
        // time counts from here, waiting for room included.
        let handed = Instant::now();
        let mut attributes = HashMap::with_capacity(1);
        attributes.insert(STAMP_ATTRIBUTE.to_string(), msg.stamp.to_property(self.run_tag));
        // Waits while the queue is full: for room for `take` sends at once.
        if self.taken == 0 {
            let room = self.room.acquire_many(self.take as u32).await.map_err(|_| SendError::Closed)?;
            room.forget();
            self.taken = self.take;
        }
        self.taken -= 1;
        let (reply, ack) = oneshot::channel();
        let job = Job {
            data: shape_payload(self.shape, &msg.payload, msg.stamp.seq),
            attributes,
            key: msg.key.map(|k| k.to_string()),
            handed,
            sent_ns: msg.stamp.sent_ns,
            reply,
        };
        self.jobs.send(job).map_err(|_| SendError::Closed)?;
        Ok(DanubeAck(ack))
    }

    async fn close(self) {
        drop(self.jobs);
        // Workers end after their current send (each send is bounded by the
        // client's retries; the engine's send timeout has already passed).
        for w in self.workers {
            let abort = w.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), w).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// A client consumer subscribed and receiving, retrying transient
/// failures for `retry_for`.
async fn subscribe(
    builder: danube_client::ConsumerBuilder,
    retry_for: Duration,
) -> Result<(Consumer, mpsc::Receiver<StreamMessage>), String> {
    let mut consumer = builder.build().map_err(|e| describe(&e))?;
    let mut retry = Retry::new(retry_for);
    loop {
        match consumer.subscribe().await {
            Ok(()) => break,
            Err(e) if retry.again("subscribe", &e).await => {}
            Err(e) => return Err(describe(&e)),
        }
    }
    let rx = consumer.receive().await.map_err(|e| describe(&e))?;
    Ok((consumer, rx))
}

type Subscribing = JoinHandle<Result<(Consumer, mpsc::Receiver<StreamMessage>), String>>;

pub struct DanubeConsumer {
    consumer: Consumer,
    rx: mpsc::Receiver<StreamMessage>,
    run_tag: u32,
    /// The last message handed out, acknowledged by `ack_last`.
    pending: Option<StreamMessage>,
    /// How to subscribe again when the streams end for good.
    remake: (danube_client::ConsumerBuilder, Duration),
    /// Subscribing again (a task, so `recv` stays cancel-safe).
    again: Option<Subscribing>,
    /// Subscriptions since the first ([`Delivery::connection`]).
    connection: u32,
}

impl Drop for DanubeConsumer {
    fn drop(&mut self) {
        if let Some(h) = &self.again {
            h.abort();
        }
    }
}

/// Reads our stamp from a message's attributes (Err(Foreign): another run's).
fn stamp_of(tag: u32, m: &StreamMessage) -> Result<common::stamp::Stamp, StampError> {
    match m.attributes.get(STAMP_ATTRIBUTE) {
        Some(v) => common::stamp::Stamp::from_property(tag, v),
        None => Err(StampError::BadMagic),
    }
}

impl ConsumerClient for DanubeConsumer {
    async fn recv(&mut self) -> Result<Delivery, RecvError> {
        // Cancel-safe: mpsc::Receiver::recv is, and a JoinHandle polled
        // again picks up where it was.
        if let Some(h) = &mut self.again {
            let r = h.await;
            self.again = None;
            match r {
                Ok(Ok((consumer, rx))) => {
                    self.consumer = consumer;
                    self.rx = rx;
                    self.connection += 1;
                }
                Ok(Err(e)) => {
                    return Err(RecvError::Closed(format!(
                        "the consumer's message streams ended for good and subscribing again failed: {e}"
                    )))
                }
                Err(e) => return Err(RecvError::Closed(format!("subscribing again: {e}"))),
            }
        }
        let Some(msg) = self.rx.recv().await else {
            // The broker went away or forgot the consumer (a restart): the
            // client has given up, an application would subscribe again.
            warn!("the consumer's message streams ended for good: subscribing again");
            self.pending = None;
            self.again = Some(tokio::spawn(subscribe(self.remake.0.clone(), self.remake.1)));
            return Err(RecvError::Transient(
                "the message streams ended (broker gone or restarted): subscribing again".into(),
            ));
        };
        let delivery = Delivery {
            stamp: stamp_of(self.run_tag, &msg),
            payload_len: msg.payload.len(),
            redelivered: false,
            connection: self.connection,
            partition: partition_of(&msg.msg_id.topic_name),
            key: msg.routing_key.as_deref().and_then(|k| k.parse().ok()),
        };
        self.pending = Some(msg);
        Ok(delivery)
    }

    async fn ack_last(&mut self) -> Result<(), RecvError> {
        let Some(msg) = self.pending.take() else { return Ok(()) };
        self.consumer.ack(&msg).await.map_err(|e| RecvError::Transient(format!("ack failed: {}", describe(&e))))
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.consumer.close()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stamp::Stamp;

    #[test]
    fn names_partitions_and_payload_shapes() {
        assert_eq!(schema_subject("/default/orders"), "lg.default.orders");
        assert_eq!(partition_of("/default/orders-part-3"), Some(3));
        assert_eq!(partition_of("/default/orders"), None);
        assert_eq!(shape_payload(Shape::AsIs, b"abc", 1), b"abc");
        assert_eq!(shape_payload(Shape::Int64, b"", 258), vec![0, 0, 0, 0, 0, 0, 1, 2]);
        let doc = shape_payload(Shape::JsonDoc, &[b'x'; 100], 0);
        assert_eq!(doc.len(), 100, "the document keeps the scenario's size");
        let v: serde_json::Value = serde_json::from_slice(&doc).expect("valid JSON");
        assert_eq!(v["lg"].as_str().map(str::len), Some(91));
        let doc = shape_payload(Shape::JsonDoc, b"a\"b\\c\n", 0);
        assert!(serde_json::from_slice::<serde_json::Value>(&doc).is_ok(), "{}", String::from_utf8_lossy(&doc));
    }

    #[test]
    fn a_dropped_plain_text_call_hints_at_tls() {
        let cancelled = DanubeError::FromStatus(tonic::Status::cancelled("operation was canceled"));
        let refused = DanubeError::FromStatus(tonic::Status::unauthenticated("Invalid token"));
        assert!(plaintext_hint("http://b:6650", &cancelled).contains("https://"));
        assert_eq!(plaintext_hint("https://b:6650", &cancelled), "");
        assert_eq!(plaintext_hint("http://b:6650", &refused), "", "the broker answered: no guess");
    }

    #[test]
    fn stamps_of_this_run_other_runs_and_garbage() {
        let tag = common::stamp::run_tag("run-1");
        let s = Stamp { producer_id: 3, seq: 9, intended_ns: 1, sent_ns: 2 };
        let mut m = StreamMessage {
            request_id: 0,
            msg_id: danube_core::message::MessageID {
                producer_id: 1,
                topic_name: "/default/t-part-1".into(),
                broker_addr: String::new(),
                topic_offset: 0,
            },
            payload: Default::default(),
            publish_time: 0,
            producer_name: String::new(),
            subscription_name: None,
            attributes: HashMap::new(),
            schema_id: None,
            schema_version: None,
            routing_key: None,
        };
        assert_eq!(stamp_of(tag, &m), Err(StampError::BadMagic));
        m.attributes.insert(STAMP_ATTRIBUTE.into(), s.to_property(tag));
        assert_eq!(stamp_of(tag, &m), Ok(s));
        assert_eq!(stamp_of(common::stamp::run_tag("run-2"), &m), Err(StampError::Foreign));
    }
}
