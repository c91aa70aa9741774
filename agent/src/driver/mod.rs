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

pub trait ProducerClient: Send + 'static {
    /// Resolves when the broker acknowledges (or refuses) one message.
    type Ack: Future<Output = Result<(), SendError>> + Send + Unpin + 'static;
    /// Hands one message to the client. Resolves once it is enqueued (which
    /// may wait for client-side backpressure); the returned `Ack` resolves
    /// on the broker's answer, so many sends can be in flight.
    fn send(&mut self, msg: OutMessage) -> impl Future<Output = Result<Self::Ack, SendError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

pub trait ConsumerClient: Send + 'static {
    /// Next message. Must be cancel-safe: a dropped call loses nothing.
    fn recv(&mut self) -> impl Future<Output = Result<Delivery, RecvError>> + Send;
    /// Acknowledges the message `recv` returned last (after it was recorded,
    /// never inside a cancellable wait).
    fn ack_last(&mut self) -> impl Future<Output = Result<(), RecvError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}
