//! A Danube-protocol test double: danube-core's own generated tonic server
//! traits (discovery, producer, consumer, health check, schema registry)
//! over a few in-memory maps, on 127.0.0.1:0, with failure knobs. It is
//! test support for the Danube driver, not a broker: no storage, one
//! process, every topic local, the dispatch rules reduced to what the
//! driver's tests need to tell apart:
//!
//! * topics are created by a producer (names checked like the broker does:
//!   `/namespace/topic`, letters, digits, `_`, `-`); a partitioned topic is
//!   its partitions `<name>-part-<i>`; a consumer cannot subscribe to a
//!   topic that does not exist; a producer must ask for the topic's
//!   dispatch strategy and, with a schema, a registered subject;
//! * exclusive admits one consumer; failover delivers to the first
//!   consumer (in subscribe order) with an open stream; shared to whichever
//!   stream asks first; key_shared by a hash of the routing key over the
//!   consumers with open streams;
//! * a message taken for a stream that then ends (dropped by a knob, or the
//!   client went away) is put back on a reliable topic and lost on a
//!   non-reliable one, and on a reliable topic whatever a consumer had not
//!   acknowledged when its last stream ended is delivered again — the
//!   difference reliable dispatch makes;
//! * payloads are checked against the topic's schema (string: UTF-8,
//!   number: 8 bytes, json_schema: a JSON document).
//!
//! Knobs: every Nth send refused, the first stream of every subscription
//! dropped after N messages, [`DanubeDouble::stop_broker`] (broker gone)
//! and [`DanubeDouble::restart_broker`] (gone for a while, then back on the
//! same port: topics and their queues kept, as a broker with storage keeps
//! them; producers and consumers forgotten, unacknowledged messages of
//! reliable topics queued again).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use danube_core::proto::consumer_request::SubscriptionType;
use danube_core::proto::consumer_service_server::{ConsumerService, ConsumerServiceServer};
use danube_core::proto::danube_schema::schema_registry_server::{SchemaRegistry, SchemaRegistryServer};
use danube_core::proto::danube_schema::{self as sr};
use danube_core::proto::discovery_server::{Discovery, DiscoveryServer};
use danube_core::proto::health_check_server::{HealthCheck, HealthCheckServer};
use danube_core::proto::producer_service_server::{ProducerService, ProducerServiceServer};
use danube_core::proto::topic_lookup_response::LookupType;
use danube_core::proto::{
    AckRequest, AckResponse, ConsumerRequest, ConsumerResponse, DispatchStrategy, HealthCheckRequest,
    HealthCheckResponse, MessageResponse, NackRequest, NackResponse, ProducerRequest, ProducerResponse, ReceiveRequest,
    StreamMessage, TopicLookupRequest, TopicLookupResponse, TopicPartitionsResponse,
};
use futures::Stream;
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Failure knobs (all off by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Knobs {
    /// Every Nth `SendMessage` (counted over the whole double, from 1) is
    /// refused with an `internal` status, which the client does not retry.
    pub fail_send_every: u64,
    /// The first message stream opened on each subscription ends after
    /// this many messages (0: never); the message it had taken next is put
    /// back (reliable topic) or lost (non-reliable).
    pub drop_stream_after: u64,
}

/// What one subscription saw (see [`DanubeDouble::snapshot`]).
#[derive(Debug, Clone, Default)]
pub struct SubSnapshot {
    pub sub_type: String,
    /// Consumer names in subscribe order.
    pub consumers: Vec<String>,
    /// Messages delivered, per consumer name.
    pub delivered: HashMap<String, u64>,
    pub acked: u64,
    /// Messages taken for a stream that ended before they were sent, and dropped.
    pub lost_in_flight: u64,
    /// Message streams opened (more than the consumers: someone reconnected).
    pub streams_opened: u64,
    /// Reliable topics: unacknowledged messages put back when their consumer's stream ended.
    pub redelivered: u64,
}

/// What one topic (or partition) saw.
#[derive(Debug, Clone, Default)]
pub struct TopicSnapshot {
    pub reliable: bool,
    pub schema_subject: Option<String>,
    /// Messages accepted.
    pub published: u64,
    /// Messages with a routing key.
    pub keyed: u64,
    pub subscriptions: HashMap<String, SubSnapshot>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub topics: HashMap<String, TopicSnapshot>,
    /// Registered schemas: subject -> schema type.
    pub schemas: HashMap<String, String>,
    /// Sends refused by `fail_send_every`.
    pub refused_sends: u64,
}

struct Sub {
    kind: SubscriptionType,
    queue: VecDeque<StreamMessage>,
    /// Reliable topics: delivered, not yet acknowledged (offset -> consumer, message).
    unacked: HashMap<u64, (u64, StreamMessage)>,
    consumers: Vec<u64>,
    snap: SubSnapshot,
    dropped_once: bool,
}

impl Sub {
    /// Reliable dispatch: what the consumers `of` had delivered without an
    /// acknowledgement goes back to the front of the queue, in order, for
    /// whoever is next (counted as redelivered).
    fn requeue_unacked(&mut self, of: impl Fn(u64) -> bool) {
        let mut back: Vec<(u64, StreamMessage)> = Vec::new();
        self.unacked.retain(|off, (c, m)| {
            if of(*c) {
                back.push((*off, m.clone()));
                false
            } else {
                true
            }
        });
        back.sort_by_key(|(off, _)| std::cmp::Reverse(*off));
        self.snap.redelivered += back.len() as u64;
        for (_, m) in back {
            self.queue.push_front(m);
        }
    }
}

#[derive(Default)]
struct TopicState {
    reliable: bool,
    schema: Option<(String, String)>,
    next_offset: u64,
    subs: HashMap<String, Sub>,
    published: u64,
    keyed: u64,
}

struct ConsumerState {
    name: String,
    topic: String,
    sub: String,
    /// Open message streams.
    streams: u32,
}

#[derive(Default)]
struct Inner {
    topics: HashMap<String, TopicState>,
    producers: HashMap<u64, String>,
    consumers: HashMap<u64, ConsumerState>,
    /// subject -> (id, type, definition)
    schemas: HashMap<String, (u64, String, Vec<u8>)>,
    next_id: u64,
}

struct State {
    inner: Mutex<Inner>,
    /// Woken whenever a queue or the set of open streams changes.
    changed: Notify,
    knobs: Knobs,
    sends: AtomicU64,
    refused: AtomicU64,
    url: String,
    /// Cancelled when the broker goes away; a restart puts a new one here.
    stop: Mutex<CancellationToken>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token of the broker now serving.
    fn stop(&self) -> CancellationToken {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a restart: no producer, consumer or stream survived it; what
    /// reliable topics had delivered without an acknowledgement is queued
    /// again, in order.
    fn forget_clients(&self) {
        let mut inner = self.lock();
        inner.producers.clear();
        inner.consumers.clear();
        for t in inner.topics.values_mut() {
            for s in t.subs.values_mut() {
                s.consumers.clear();
                s.requeue_unacked(|_| true);
            }
        }
    }
}

/// The broker's topic-name rule (`validate_topic_format`).
fn topic_format_ok(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 3
        && parts[0].is_empty()
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

fn bad_format(name: &str) -> Status {
    Status::invalid_argument(format!("The topic: {name} has an invalid format, should be: /namespace_name/topic_name"))
}

fn fnv(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Clone)]
struct Svc(Arc<State>);

#[tonic::async_trait]
impl Discovery for Svc {
    async fn topic_lookup(&self, req: Request<TopicLookupRequest>) -> Result<Response<TopicLookupResponse>, Status> {
        let r = req.into_inner();
        if !topic_format_ok(&r.topic) {
            return Err(bad_format(&r.topic));
        }
        Ok(Response::new(TopicLookupResponse {
            request_id: r.request_id,
            response_type: LookupType::Connect as i32,
            connect_url: self.0.url.clone(),
            broker_url: self.0.url.clone(),
            proxy: false,
        }))
    }

    async fn topic_partitions(
        &self,
        req: Request<TopicLookupRequest>,
    ) -> Result<Response<TopicPartitionsResponse>, Status> {
        let r = req.into_inner();
        if !topic_format_ok(&r.topic) {
            return Err(bad_format(&r.topic));
        }
        let inner = self.0.lock();
        let partitions = if inner.topics.contains_key(&r.topic) {
            vec![r.topic.clone()]
        } else {
            let prefix = format!("{}-part-", r.topic);
            let mut p: Vec<(u32, String)> = inner
                .topics
                .keys()
                .filter_map(|t| t.strip_prefix(&prefix).and_then(|n| n.parse().ok()).map(|n| (n, t.clone())))
                .collect();
            p.sort();
            p.into_iter().map(|(_, t)| t).collect()
        };
        if partitions.is_empty() {
            return Err(Status::not_found(format!("topic {} does not exist", r.topic)));
        }
        Ok(Response::new(TopicPartitionsResponse { request_id: r.request_id, partitions }))
    }
}

#[tonic::async_trait]
impl ProducerService for Svc {
    async fn create_producer(&self, req: Request<ProducerRequest>) -> Result<Response<ProducerResponse>, Status> {
        let r = req.into_inner();
        if !topic_format_ok(&r.topic_name) {
            return Err(bad_format(&r.topic_name));
        }
        let reliable = r.dispatch_strategy == DispatchStrategy::Reliable as i32;
        let mut inner = self.0.lock();
        let schema = match &r.schema_ref {
            None => None,
            Some(s) => match inner.schemas.get(&s.subject) {
                Some((_, ty, _)) => Some((s.subject.clone(), ty.clone())),
                None => {
                    return Err(Status::failed_precondition(format!(
                        "schema subject '{}' is not registered",
                        s.subject
                    )))
                }
            },
        };
        let topic = inner.topics.entry(r.topic_name.clone()).or_insert_with(|| TopicState {
            reliable,
            schema: schema.clone(),
            ..Default::default()
        });
        if topic.reliable != reliable {
            return Err(Status::failed_precondition(
                "Producer requested dispatch strategy does not match topic strategy",
            ));
        }
        if schema.is_some() && topic.schema.is_none() {
            topic.schema = schema;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.producers.insert(id, r.topic_name);
        Ok(Response::new(ProducerResponse {
            request_id: r.request_id,
            producer_id: id,
            producer_name: r.producer_name,
        }))
    }

    async fn send_message(&self, req: Request<StreamMessage>) -> Result<Response<MessageResponse>, Status> {
        let mut m = req.into_inner();
        let n = self.0.sends.fetch_add(1, Ordering::SeqCst) + 1;
        if self.0.knobs.fail_send_every > 0 && n.is_multiple_of(self.0.knobs.fail_send_every) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::internal("injected send failure (test double knob)"));
        }
        let Some(id) = m.msg_id.as_ref().map(|i| i.producer_id) else {
            return Err(Status::invalid_argument("message without msg_id"));
        };
        let mut inner = self.0.lock();
        let Some(topic_name) = inner.producers.get(&id).cloned() else {
            return Err(Status::not_found(format!("producer {id} is not registered")));
        };
        let topic = inner.topics.get_mut(&topic_name).ok_or_else(|| Status::not_found("topic gone"))?;
        if let Some((subject, ty)) = &topic.schema {
            let ok = match ty.as_str() {
                "string" => std::str::from_utf8(&m.payload).is_ok(),
                "number" => m.payload.len() == 8,
                "json_schema" => serde_json::from_slice::<serde_json::Value>(&m.payload).is_ok(),
                _ => true,
            };
            if !ok {
                return Err(Status::invalid_argument(format!("payload does not match schema '{subject}' ({ty})")));
            }
        }
        topic.published += 1;
        if m.routing_key.is_some() {
            topic.keyed += 1;
        }
        if let Some(mid) = m.msg_id.as_mut() {
            mid.topic_offset = topic.next_offset;
            mid.topic_name = topic_name.clone();
            mid.broker_addr = self.0.url.clone();
        }
        topic.next_offset += 1;
        for (name, sub) in topic.subs.iter_mut() {
            let mut copy = m.clone();
            copy.subscription_name = name.clone();
            sub.queue.push_back(copy);
        }
        drop(inner);
        self.0.changed.notify_waiters();
        Ok(Response::new(MessageResponse { request_id: m.request_id }))
    }
}

type MsgStream = Pin<Box<dyn Stream<Item = Result<StreamMessage, Status>> + Send>>;

/// Takes the next message for `consumer` under the subscription's rules.
fn take_for(inner: &mut Inner, consumer: u64) -> Option<(StreamMessage, bool)> {
    let c = inner.consumers.get(&consumer)?;
    let (topic, sub_name) = (c.topic.clone(), c.sub.clone());
    let open: Vec<u64> = {
        let t = inner.topics.get(&topic)?;
        let sub = t.subs.get(&sub_name)?;
        sub.consumers.iter().copied().filter(|id| inner.consumers.get(id).is_some_and(|c| c.streams > 0)).collect()
    };
    let t = inner.topics.get_mut(&topic)?;
    let reliable = t.reliable;
    let sub = t.subs.get_mut(&sub_name)?;
    let idx = match sub.kind {
        SubscriptionType::Exclusive | SubscriptionType::Failover => {
            (open.first() == Some(&consumer) && !sub.queue.is_empty()).then_some(0)
        }
        SubscriptionType::Shared => (!sub.queue.is_empty()).then_some(0),
        SubscriptionType::KeyShared => {
            let mine = open.iter().position(|id| *id == consumer)?;
            sub.queue.iter().position(|m| match &m.routing_key {
                Some(k) => (fnv(k) % open.len() as u64) as usize == mine,
                None => true,
            })
        }
    }?;
    sub.queue.remove(idx).map(|m| (m, reliable))
}

/// Puts a message taken for a stream that ended back (reliable) or counts it lost.
fn give_back(state: &State, consumer: u64, m: StreamMessage, reliable: bool) {
    let mut inner = state.lock();
    let Some(c) = inner.consumers.get(&consumer) else { return };
    let (topic, sub) = (c.topic.clone(), c.sub.clone());
    if let Some(s) = inner.topics.get_mut(&topic).and_then(|t| t.subs.get_mut(&sub)) {
        if reliable {
            s.queue.push_front(m);
        } else {
            s.snap.lost_in_flight += 1;
        }
    }
}

async fn stream_messages(state: Arc<State>, consumer: u64, tx: mpsc::Sender<Result<StreamMessage, Status>>) {
    let stop = state.stop();
    let drop_after = {
        let mut inner = state.lock();
        let Some(c) = inner.consumers.get_mut(&consumer) else { return };
        c.streams += 1;
        let (topic, sub) = (c.topic.clone(), c.sub.clone());
        let knob = state.knobs.drop_stream_after;
        match inner.topics.get_mut(&topic).and_then(|t| t.subs.get_mut(&sub)) {
            Some(s) => {
                s.snap.streams_opened += 1;
                if knob > 0 && !s.dropped_once {
                    s.dropped_once = true;
                    Some(knob)
                } else {
                    None
                }
            }
            None => None,
        }
    };
    state.changed.notify_waiters();
    let mut sent = 0u64;
    loop {
        let notified = state.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let taken = take_for(&mut state.lock(), consumer);
        match taken {
            Some((m, reliable)) => {
                if drop_after.is_some_and(|n| sent >= n) {
                    give_back(&state, consumer, m, reliable);
                    break;
                }
                let name = {
                    let inner = state.lock();
                    inner.consumers.get(&consumer).map(|c| c.name.clone()).unwrap_or_default()
                };
                let delivered = tokio::select! {
                    r = tx.send(Ok(m.clone())) => r.is_ok(),
                    _ = stop.cancelled() => false,
                };
                if !delivered {
                    give_back(&state, consumer, m, reliable);
                    break;
                }
                sent += 1;
                let mut inner = state.lock();
                let Some(c) = inner.consumers.get(&consumer) else { break };
                let (topic, sub) = (c.topic.clone(), c.sub.clone());
                if let Some(s) = inner.topics.get_mut(&topic).and_then(|t| t.subs.get_mut(&sub)) {
                    *s.snap.delivered.entry(name).or_default() += 1;
                    if reliable {
                        let offset = m.msg_id.as_ref().map(|i| i.topic_offset).unwrap_or(0);
                        s.unacked.insert(offset, (consumer, m));
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tx.closed() => break,
                    _ = &mut notified => {}
                }
            }
        }
        if stop.is_cancelled() {
            break;
        }
    }
    {
        // Reliable dispatch: what this consumer had and never acknowledged
        // goes back to the front of the queue, in order, for whoever is next.
        let mut inner = state.lock();
        let gone = match inner.consumers.get_mut(&consumer) {
            Some(c) => {
                c.streams = c.streams.saturating_sub(1);
                (c.streams == 0).then(|| (c.topic.clone(), c.sub.clone()))
            }
            None => None,
        };
        if let Some(s) = gone.and_then(|(t, sub)| inner.topics.get_mut(&t).and_then(|t| t.subs.get_mut(&sub))) {
            s.requeue_unacked(|c| c == consumer);
        }
    }
    state.changed.notify_waiters();
}

#[tonic::async_trait]
impl ConsumerService for Svc {
    async fn subscribe(&self, req: Request<ConsumerRequest>) -> Result<Response<ConsumerResponse>, Status> {
        let r = req.into_inner();
        if !topic_format_ok(&r.topic_name) {
            return Err(bad_format(&r.topic_name));
        }
        let kind = SubscriptionType::try_from(r.subscription_type)
            .map_err(|_| Status::invalid_argument("unknown subscription type"))?;
        let mut inner = self.0.lock();
        let inner = &mut *inner;
        let Some(topic) = inner.topics.get_mut(&r.topic_name) else {
            return Err(Status::not_found(format!("topic {} does not exist", r.topic_name)));
        };
        let sub = topic.subs.entry(r.subscription.clone()).or_insert_with(|| Sub {
            kind,
            queue: VecDeque::new(),
            unacked: HashMap::new(),
            consumers: Vec::new(),
            snap: SubSnapshot { sub_type: kind.as_str_name().to_string(), ..Default::default() },
            dropped_once: false,
        });
        if sub.kind != kind {
            return Err(Status::failed_precondition(format!(
                "subscription {} is {}, not {}",
                r.subscription,
                sub.kind.as_str_name(),
                kind.as_str_name()
            )));
        }
        if let Some(id) =
            sub.consumers.iter().find(|id| inner.consumers.get(id).is_some_and(|c| c.name == r.consumer_name))
        {
            return Ok(Response::new(ConsumerResponse {
                request_id: r.request_id,
                consumer_id: *id,
                consumer_name: r.consumer_name,
            }));
        }
        if kind == SubscriptionType::Exclusive && !sub.consumers.is_empty() {
            return Err(Status::failed_precondition(format!(
                "exclusive subscription {} already has a consumer",
                r.subscription
            )));
        }
        inner.next_id += 1;
        let id = inner.next_id;
        sub.consumers.push(id);
        sub.snap.consumers.push(r.consumer_name.clone());
        inner.consumers.insert(
            id,
            ConsumerState { name: r.consumer_name.clone(), topic: r.topic_name, sub: r.subscription, streams: 0 },
        );
        Ok(Response::new(ConsumerResponse {
            request_id: r.request_id,
            consumer_id: id,
            consumer_name: r.consumer_name,
        }))
    }

    type ReceiveMessagesStream = MsgStream;

    async fn receive_messages(&self, req: Request<ReceiveRequest>) -> Result<Response<MsgStream>, Status> {
        let r = req.into_inner();
        if !self.0.lock().consumers.contains_key(&r.consumer_id) {
            return Err(Status::not_found(format!("consumer {} is not registered", r.consumer_id)));
        }
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(stream_messages(self.0.clone(), r.consumer_id, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ack(&self, req: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        let r = req.into_inner();
        let (topic, offset) = r.msg_id.map(|m| (m.topic_name, m.topic_offset)).unwrap_or_default();
        let mut inner = self.0.lock();
        match inner.topics.get_mut(&topic).and_then(|t| t.subs.get_mut(&r.subscription_name)) {
            Some(s) => {
                s.snap.acked += 1;
                s.unacked.remove(&offset);
            }
            None => return Err(Status::not_found(format!("no subscription {} on {topic}", r.subscription_name))),
        }
        Ok(Response::new(AckResponse { request_id: r.request_id }))
    }

    async fn nack(&self, req: Request<NackRequest>) -> Result<Response<NackResponse>, Status> {
        Ok(Response::new(NackResponse { request_id: req.into_inner().request_id }))
    }
}

#[tonic::async_trait]
impl HealthCheck for Svc {
    async fn health_check(&self, _req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: 0 }))
    }
}

#[tonic::async_trait]
impl SchemaRegistry for Svc {
    async fn register_schema(
        &self,
        req: Request<sr::RegisterSchemaRequest>,
    ) -> Result<Response<sr::RegisterSchemaResponse>, Status> {
        let r = req.into_inner();
        if !["bytes", "string", "number", "json_schema", "avro", "protobuf"].contains(&r.schema_type.as_str()) {
            return Err(Status::invalid_argument(format!("Unknown schema type: {}", r.schema_type)));
        }
        if r.schema_type == "json_schema" && serde_json::from_slice::<serde_json::Value>(&r.schema_definition).is_err()
        {
            return Err(Status::invalid_argument("the JSON schema is not JSON"));
        }
        let mut inner = self.0.lock();
        inner.next_id += 1;
        let fresh = inner.next_id;
        let id = inner.schemas.entry(r.subject.clone()).or_insert((fresh, r.schema_type, r.schema_definition)).0;
        Ok(Response::new(sr::RegisterSchemaResponse {
            schema_id: id,
            version: 1,
            is_new_version: id == fresh,
            fingerprint: String::new(),
        }))
    }

    async fn get_schema(&self, _r: Request<sr::GetSchemaRequest>) -> Result<Response<sr::GetSchemaResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn get_latest_schema(
        &self,
        req: Request<sr::GetLatestSchemaRequest>,
    ) -> Result<Response<sr::GetSchemaResponse>, Status> {
        let subject = req.into_inner().subject;
        let inner = self.0.lock();
        let (id, ty, def) =
            inner.schemas.get(&subject).ok_or_else(|| Status::not_found(format!("no subject {subject}")))?;
        Ok(Response::new(sr::GetSchemaResponse {
            schema_id: *id,
            version: 1,
            subject,
            schema_type: ty.clone(),
            schema_definition: def.clone(),
            ..Default::default()
        }))
    }

    async fn list_versions(
        &self,
        _r: Request<sr::ListVersionsRequest>,
    ) -> Result<Response<sr::ListVersionsResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn check_compatibility(
        &self,
        _r: Request<sr::CheckCompatibilityRequest>,
    ) -> Result<Response<sr::CheckCompatibilityResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn delete_schema_version(
        &self,
        _r: Request<sr::DeleteSchemaVersionRequest>,
    ) -> Result<Response<sr::DeleteSchemaVersionResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn set_compatibility_mode(
        &self,
        _r: Request<sr::SetCompatibilityModeRequest>,
    ) -> Result<Response<sr::SetCompatibilityModeResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn configure_topic_schema(
        &self,
        _r: Request<sr::ConfigureTopicSchemaRequest>,
    ) -> Result<Response<sr::ConfigureTopicSchemaResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn update_topic_validation_policy(
        &self,
        _r: Request<sr::UpdateTopicValidationPolicyRequest>,
    ) -> Result<Response<sr::UpdateTopicValidationPolicyResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn get_topic_schema_config(
        &self,
        _r: Request<sr::GetTopicSchemaConfigRequest>,
    ) -> Result<Response<sr::GetTopicSchemaConfigResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn list_subjects(
        &self,
        _r: Request<sr::ListSubjectsRequest>,
    ) -> Result<Response<sr::ListSubjectsResponse>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }
}

/// Serves the double on `std_listener` from a thread of its own (and its
/// own runtime) until the state's stop token is cancelled.
fn serve(state: Arc<State>, std_listener: std::net::TcpListener) -> std::io::Result<std::thread::JoinHandle<()>> {
    std_listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let svc = Svc(state.clone());
    let stop = state.stop();
    std::thread::Builder::new().name("danube-double".into()).spawn(move || {
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "danube double: listener");
                    return;
                }
            };
            let r = tonic::transport::Server::builder()
                .add_service(DiscoveryServer::new(svc.clone()))
                .add_service(ProducerServiceServer::new(svc.clone()))
                .add_service(ConsumerServiceServer::new(svc.clone()))
                .add_service(HealthCheckServer::new(svc.clone()))
                .add_service(SchemaRegistryServer::new(svc))
                .serve_with_incoming_shutdown(
                    // No Nagle: unary answers would wait for the client's delayed ACK.
                    tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
                        s.inspect(|s| {
                            let _ = s.set_nodelay(true);
                        })
                    }),
                    stop.cancelled_owned(),
                )
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "danube double stopped");
            }
        });
        // Dropping the runtime here ends every task still running.
    })
}

/// A running double (its own thread and runtime, so sync tests can use it).
/// Dropping it stops it.
pub struct DanubeDouble {
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: what the driver and the agents connect to.
    pub url: String,
}

impl DanubeDouble {
    pub fn start(knobs: Knobs) -> std::io::Result<DanubeDouble> {
        DanubeDouble::start_on(knobs, std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// The same on `ip` (a free port): a test network namespace's remote
    /// address rather than loopback.
    pub fn start_on(knobs: Knobs, ip: std::net::IpAddr) -> std::io::Result<DanubeDouble> {
        let listener = std::net::TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            knobs,
            sends: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            url: url.clone(),
            stop: Mutex::new(CancellationToken::new()),
        });
        let thread = serve(state.clone(), listener)?;
        Ok(DanubeDouble { state, thread: Some(thread), addr, url })
    }

    /// The broker goes away: streams end, the listener closes, new
    /// connections are refused. Waits (at most 5 s) until it has.
    pub fn stop_broker(&mut self) {
        self.state.stop().cancel();
        self.state.changed.notify_waiters();
        if let Some(t) = self.thread.take() {
            let t0 = std::time::Instant::now();
            while !t.is_finished() && t0.elapsed() < std::time::Duration::from_secs(5) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    /// The broker goes away ([`DanubeDouble::stop_broker`]), stays away for
    /// `down`, and comes back on the same address with its topics and
    /// queues but no producer or consumer (see the module doc).
    pub fn restart_broker(&mut self, down: std::time::Duration) -> std::io::Result<()> {
        self.stop_broker();
        self.state.forget_clients();
        std::thread::sleep(down);
        *self.state.stop.lock().unwrap_or_else(|p| p.into_inner()) = CancellationToken::new();
        // The old listener is closed; std sets SO_REUSEADDR, so the port
        // binds again at once.
        let listener = std::net::TcpListener::bind(self.addr)?;
        self.thread = Some(serve(self.state.clone(), listener)?);
        Ok(())
    }

    /// What the double saw so far.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.state.lock();
        let topics = inner
            .topics
            .iter()
            .map(|(name, t)| {
                let snap = TopicSnapshot {
                    reliable: t.reliable,
                    schema_subject: t.schema.as_ref().map(|s| s.0.clone()),
                    published: t.published,
                    keyed: t.keyed,
                    subscriptions: t.subs.iter().map(|(n, s)| (n.clone(), s.snap.clone())).collect(),
                };
                (name.clone(), snap)
            })
            .collect();
        Snapshot {
            topics,
            schemas: inner.schemas.iter().map(|(s, (_, ty, _))| (s.clone(), ty.clone())).collect(),
            refused_sends: self.state.refused.load(Ordering::SeqCst),
        }
    }

    /// Sums a subscription over a topic's partitions (`/default/t` covers
    /// `/default/t` and `/default/t-part-*`).
    pub fn subscription(&self, topic: &str, sub: &str) -> SubSnapshot {
        let snap = self.snapshot();
        let mut out = SubSnapshot::default();
        let prefix = format!("{topic}-part-");
        for (name, t) in &snap.topics {
            if name != topic && !name.starts_with(&prefix) {
                continue;
            }
            if let Some(s) = t.subscriptions.get(sub) {
                out.sub_type = s.sub_type.clone();
                for c in &s.consumers {
                    if !out.consumers.contains(c) {
                        out.consumers.push(c.clone());
                    }
                }
                for (c, n) in &s.delivered {
                    *out.delivered.entry(c.clone()).or_default() += n;
                }
                out.acked += s.acked;
                out.lost_in_flight += s.lost_in_flight;
                out.streams_opened += s.streams_opened;
                out.redelivered += s.redelivered;
            }
        }
        out
    }

    /// Messages accepted on a topic, its partitions included.
    pub fn published(&self, topic: &str) -> u64 {
        let prefix = format!("{topic}-part-");
        self.snapshot()
            .topics
            .iter()
            .filter(|(n, _)| *n == topic || n.starts_with(&prefix))
            .map(|(_, t)| t.published)
            .sum()
    }
}

impl Drop for DanubeDouble {
    fn drop(&mut self) {
        self.stop_broker();
    }
}
