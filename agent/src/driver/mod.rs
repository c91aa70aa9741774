//! Broker drivers behind one trait. The run engine is generic over the
//! driver, so the per-message path is statically dispatched (no boxed
//! future per send). Drivers translate between the engine's messages and a
//! broker client; they decide where the stamp travels (payload prefix,
//! message properties or attributes).

pub mod danube;
pub mod memory;
pub mod nodelay;
pub mod pulsar;
mod pulsar_probe;

use std::future::Future;

use bytes::Bytes;
use common::scenario::{ConsumerGroup, ProducerGroup, Topic};
use common::stamp::{Stamp, StampError};

/// A message to publish.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub stamp: Stamp,
    pub key: Option<u64>,
    pub payload: Bytes,
}

/// A message as a consumer got it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub stamp: Result<Stamp, StampError>,
    pub payload_len: usize,
    /// The broker says this is a redelivery.
    pub redelivered: bool,
    /// Which subscription of this consumer delivered it: 0 the first, one
    /// more each time the driver subscribed again after losing the broker.
    /// A message seen before a new subscription and delivered again after
    /// it is a redelivery (its ack may not have reached the broker), not a
    /// duplicate.
    pub connection: u32,
    /// Partition of a partitioned topic it came from.
    pub partition: Option<u32>,
    /// The message's key as the producer set it (None: no key).
    pub key: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    #[error("cannot connect to the broker at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("topic `{topic}`: {reason}")]
    Topic { topic: String, reason: String },
    #[error("subscription `{subscription}` on `{topic}`: {reason}")]
    Subscribe { topic: String, subscription: String, reason: String },
    #[error("producer on `{topic}`: {reason}")]
    Producer { topic: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

/// Why a send failed; cheap to build on the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    Timeout,
    Broker(String),
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvError {
    /// The consumer is gone for good (closed, broker gone).
    Closed(String),
    /// One message failed; the consumer goes on.
    Transient(String),
}

/// Everything an agent needs to create clients for one run.
pub trait Driver: Send + Sync + 'static {
    type Producer: ProducerClient;
    type Consumer: ConsumerClient;

    /// Creates (or checks) a topic before anyone subscribes.
    fn create_topic(&self, topic: &Topic) -> impl Future<Output = Result<(), DriverError>> + Send;
    /// Subscribes one consumer of `group` (instance `index`).
    fn consumer(
        &self,
        topic: &Topic,
        group: &ConsumerGroup,
        index: u32,
    ) -> impl Future<Output = Result<Self::Consumer, DriverError>> + Send;
    /// Creates one producer of `group` (instance `index`).
    fn producer(
        &self,
        topic: &Topic,
        group: &ProducerGroup,
        index: u32,
    ) -> impl Future<Output = Result<Self::Producer, DriverError>> + Send;
}

/// What became of one send: acknowledged, or why not. `Ok(Some(t))`: the
/// client noted when the broker's answer came (coordinator time, ns),
/// because the answer may wait before the engine looks at it (the Danube
/// driver's worker hands answers back in batches); `Ok(None)`: the engine
/// takes its own clock when it sees the answer.
pub type SendOutcome = Result<Option<i64>, SendError>;

pub trait ProducerClient: Send + 'static {
    /// Resolves when the broker acknowledges (or refuses) one message.
    type Ack: Future<Output = SendOutcome> + Send + Unpin + 'static;
    /// Hands one message to the client. Resolves once it is enqueued (which
    /// may wait for client-side backpressure); the returned `Ack` resolves
    /// on the broker's answer, so many sends can be in flight.
    fn send(&mut self, msg: OutMessage) -> impl Future<Output = Result<Self::Ack, SendError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

pub trait ConsumerClient: Send + 'static {
    /// Why this client's ack latency is not measured: its acknowledge
    /// resolves without the broker's answer (it only queues the command),
    /// so timing it would measure a queue push, not an ack. None: `ack_last`
    /// resolves when the broker answered (or, in-process, when the ack is
    /// done), and the engine times it.
    const ACK_NOT_TIMED: Option<&'static str> = None;
    /// Next message. Must be cancel-safe: a dropped call loses nothing.
    fn recv(&mut self) -> impl Future<Output = Result<Delivery, RecvError>> + Send;
    /// Acknowledges the message `recv` returned last (after it was recorded,
    /// never inside a cancellable wait); resolves when the ack is done, as
    /// far as the client can tell (see [`ConsumerClient::ACK_NOT_TIMED`]).
    fn ack_last(&mut self) -> impl Future<Output = Result<(), RecvError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Why ack latency is not measured on broker `kind` (its driver's
/// [`ConsumerClient::ACK_NOT_TIMED`]); None where it is. The report says
/// this instead of an ack latency.
pub fn ack_not_timed(kind: common::scenario::BrokerKind) -> Option<&'static str> {
    use common::scenario::BrokerKind;
    match kind {
        BrokerKind::Pulsar => <pulsar::PulsarConsumer as ConsumerClient>::ACK_NOT_TIMED,
        BrokerKind::Danube => <danube::DanubeConsumer as ConsumerClient>::ACK_NOT_TIMED,
        BrokerKind::Memory => <memory::MemConsumerClient as ConsumerClient>::ACK_NOT_TIMED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::scenario::BrokerKind;

    #[test]
    fn ack_latency_is_timed_where_the_client_reports_completion() {
        // danube-client's ack is an RPC answered by the broker; the memory
        // broker's completes in process; the pulsar crate only queues it.
        assert_eq!(ack_not_timed(BrokerKind::Danube), None);
        assert_eq!(ack_not_timed(BrokerKind::Memory), None);
        let why = ack_not_timed(BrokerKind::Pulsar).expect("pulsar acks are not timed");
        assert!(why.contains("without waiting for the broker's receipt"), "{why}");
    }
}
