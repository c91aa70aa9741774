//! The validated scenario: what the coordinator plans with and every
//! agent runs. Only `validate` builds it, so nothing after validation checks
//! a value again; it travels to agents inside each shard (serde, JSON), so
//! a field added here needs `#[serde(default)]` for older peers.
//!
//! Imports the load-shape types from `crate::schedule` and
//! `crate::percentile`, nothing else of the crate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::percentile::{self, Percentile};
use crate::schedule::GroupPace;
pub use crate::schedule::{Arrivals, LoadShape, Step};

// ------------------------------------------------------ the scenario

/// A whole validated scenario. Groups and faults refer to each other by
/// index (`ProducerInstance.group`, `FaultAction::StopConsumers.group`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Used in the run id and the report.
    pub name: String,
    /// Free text for the report ("" when not given).
    pub description: String,
    pub broker: Broker,
    /// Topic names are unique.
    pub topics: Vec<Topic>,
    pub producers: Vec<ProducerGroup>,
    pub consumers: Vec<ConsumerGroup>,
    pub phases: Phases,
    /// How often agents report and the live view refreshes.
    pub report_interval: Duration,
    pub placement: Placement,
    /// What the run is judged by.
    pub slo: Slo,
    /// Seeds payloads, keys, sizes and poisson gaps.
    pub seed: u64,
    pub faults: Vec<Fault>,
    /// What the coordinator does when an agent is lost mid-run.
    #[serde(default)]
    pub on_agent_loss: OnAgentLoss,
    /// `mode: ceiling`: the search settings; `None` for a plain run.
    #[serde(default)]
    pub ceiling: Option<CeilingSpec>,
    /// What the reports show.
    #[serde(default)]
    pub report: ReportSettings,
}

/// `report`: what the reports show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSettings {
    /// The latency percentiles every report shows (console, report.json,
    /// CSV, HTML, /metrics, `compare`), ascending, no repeats: the
    /// scenario's `report.percentiles` (default [`percentile::DEFAULT`])
    /// plus every percentile a latency SLO names.
    pub percentiles: Vec<Percentile>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { percentiles: percentile::DEFAULT.to_vec() }
    }
}

impl Scenario {
    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }
    /// The end of the pause `offset` (from the start instant) falls in, for
    /// consumer group `group`.
    pub fn consumer_paused_until(&self, group: usize, offset: Duration) -> Option<Duration> {
        Pause::until_after(&self.consumers.get(group)?.pauses, offset)
    }

    /// When a fault action stops consumer `index` of consumer group `group`.
    pub fn consumer_stop_after(&self, group: usize, index: u32) -> Option<Duration> {
        self.faults
            .iter()
            .filter_map(|f| match f.action {
                FaultAction::StopConsumers { group: g, count } if g == group && index < count => Some(f.at),
                _ => None,
            })
            .min()
    }

    /// Sum of the producer groups' nominal rates, msg/s (closed-loop groups count 0).
    pub fn nominal_rate(&self) -> f64 {
        self.producers.iter().filter(|g| !g.closed_loop()).map(ProducerGroup::total_rate).sum()
    }

    /// A copy whose producer groups are scaled together so their nominal
    /// rates add up to `total` msg/s.
    pub fn scaled_to(&self, total: f64) -> Scenario {
        let mut s = self.clone();
        let base = self.nominal_rate();
        if base > 0.0 {
            let factor = total / base;
            s.producers.iter_mut().for_each(|g| g.scale_rates(factor));
        }
        s
    }
}

// ------------------------------------------------------------ broker

/// Which broker the run drives (`broker.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    /// The in-process broker (one per agent process), for tests and calibration.
    Memory,
    Pulsar,
    Danube,
}

impl BrokerKind {
    /// The word the scenario uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Memory => "memory",
            BrokerKind::Pulsar => "pulsar",
            BrokerKind::Danube => "danube",
        }
    }
}

/// `broker`: where the brokers are and how to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    pub kind: BrokerKind,
    /// Service URL; None only for the memory broker.
    pub url: Option<String>,
    /// Pulsar only: the admin REST API, where the coordinator creates
    /// partitioned topics before Prepare.
    pub admin_url: Option<String>,
    /// Pulsar only: TCP_NODELAY on the client's broker connections.
    #[serde(default = "yes")]
    pub tcp_nodelay: bool,
    /// How long an agent waits to connect (and drivers retry creation).
    pub connect_timeout: Duration,
    /// Memory broker only: messages per second accepted before publishes queue.
    pub capacity_msgs_per_s: Option<f64>,
    /// Memory broker only: latency added to every publish.
    pub latency: Duration,
    /// Memory broker only: how long each consumer ack takes to complete.
    #[serde(default)]
    pub ack_latency: Duration,
    /// Memory broker only: every Nth message acknowledged but not delivered (0: never).
    pub drop_every: u64,
    /// Memory broker only: every Nth message delivered twice (0: never).
    pub duplicate_every: u64,
    /// Memory broker only: every Nth message to the next consumer (0: never).
    #[serde(default)]
    pub misroute_every: u64,
    /// Memory broker only: deliveries stop after N messages per topic (0: never).
    pub stall_after: u64,
    /// Memory broker only: the most messages a topic holds undelivered
    /// (summed over its subscriptions) before it holds publish acks (0: no limit).
    pub max_backlog: u64,
    /// The broker token's place; None: no authentication.
    pub auth: Option<Auth>,
    /// TLS settings for pulsar+ssl:// and https:// URLs.
    pub tls: Option<Tls>,
}

/// Where each agent reads the broker token from (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A file holding the token (JWT).
    TokenFile(String),
    /// An environment variable holding the token.
    TokenEnv(String),
}

/// `broker.tls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tls {
    /// PEM file of the CA certificate(s) to trust; None: the system's roots.
    pub ca_file: Option<String>,
    /// Accept any certificate (testing only).
    pub allow_insecure: bool,
    /// Check the certificate's host name.
    pub verify_hostname: bool,
}

// ------------------------------------------------------------ topics

/// One of `topics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// As written (trimmed); drivers make it the broker's full name.
    pub name: String,
    /// 0: non-partitioned.
    pub partitions: u32,
    /// Danube only: the schema registered for the topic.
    #[serde(default)]
    pub schema: TopicSchema,
    /// Danube only: reliable dispatch.
    #[serde(default)]
    pub reliable_dispatch: bool,
}

/// A Danube topic's schema (Danube's schema registry). It decides the
/// payloads: text for `String`, an 8-byte big-endian integer for `Int64`, a
/// JSON document for `Json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicSchema {
    /// No schema registered.
    #[default]
    None,
    /// Raw bytes.
    Bytes,
    /// UTF-8 text.
    String,
    /// An 8-byte big-endian integer.
    Int64,
    /// The JSON Schema text.
    Json(String),
}

/// The JSON Schema registered for `schema: json` without `json_schema`: it
/// admits the documents the Danube driver generates (`{"lg": "<text>"}`).
pub const DEFAULT_JSON_SCHEMA: &str =
    r#"{"type": "object", "properties": {"lg": {"type": "string"}}, "required": ["lg"]}"#;

// --------------------------------------------------------- producers

/// One of `producers`: `count` identical producers on one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerGroup {
    /// Unique among producer groups.
    pub name: String,
    /// One of the scenario's topics.
    pub topic: String,
    /// Number of producers.
    pub count: u32,
    /// Group rate in milli-messages per second (exact integer split over producers).
    pub total_rate_milli: u64,
    /// Payload sizes.
    pub message_size: SizeDist,
    /// Message keys.
    pub keys: KeyPattern,
    /// Sends outstanding per producer before it waits for an acknowledgement.
    pub max_in_flight: u32,
    /// A send not acknowledged within this time is an error.
    pub send_timeout: Duration,
    /// Payload bytes.
    pub payload: PayloadKind,
    /// Pulsar client-side batching; None: unbatched.
    pub batching: Option<Batching>,
    /// Pulsar compression.
    pub compression: Compression,
    /// How the group's rate moves over time (`total_rate_milli` is its peak).
    #[serde(default)]
    pub load: LoadShape,
    /// Spacing of sends on an open-loop schedule.
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Danube: client producers behind each producer (1 unless said).
    #[serde(default = "one")]
    pub clients: u32,
}

fn one() -> u32 {
    1
}

/// What the group's schedule is made of (`Schedule::for_producer(&group, ..)`).
impl<'a> From<&'a ProducerGroup> for GroupPace<'a> {
    fn from(g: &'a ProducerGroup) -> GroupPace<'a> {
        GroupPace { load: &g.load, total_rate_milli: g.total_rate_milli, arrivals: g.arrivals }
    }
}

impl ProducerGroup {
    /// The group's nominal rate: the constant rate, or the peak of its load shape.
    pub fn total_rate(&self) -> f64 {
        self.total_rate_milli as f64 / 1000.0
    }

    /// true for `rate: max`: every producer keeps `max_in_flight` sends
    /// outstanding, no schedule (response-time SLOs do not apply).
    pub fn closed_loop(&self) -> bool {
        self.load == LoadShape::Max
    }

    /// The group's mean scheduled rate (msg/s) over `[from, to)` from the
    /// start; `None` for a closed-loop group (it has no target).
    pub fn target_rate(&self, from: Duration, to: Duration) -> Option<f64> {
        crate::schedule::Curve::of(self).map(|c| c.mean_rate(from, to))
    }

    /// Every rate of the group multiplied by `factor` (ceiling steps).
    pub fn scale_rates(&mut self, factor: f64) {
        let f = |m: &mut u64| *m = ((*m as f64) * factor).round().max(1.0) as u64;
        if self.closed_loop() {
            return;
        }
        f(&mut self.total_rate_milli);
        match &mut self.load {
            LoadShape::Constant | LoadShape::Max => {}
            LoadShape::Ramp { from_milli, to_milli, .. } => {
                f(from_milli);
                f(to_milli);
            }
            LoadShape::Steps(steps) => steps.iter_mut().for_each(|s| f(&mut s.rate_milli)),
            LoadShape::Spike { base_milli, peak_milli, .. } => {
                f(base_milli);
                f(peak_milli);
            }
        }
    }
}

/// `message_size`: bytes per payload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeDist {
    /// Every payload this size.
    Fixed(u64),
    /// Drawn uniformly from `min..=max`.
    Uniform { min: u64, max: u64 },
    /// Drawn from a normal distribution, clamped to 0..=mean + 4 stddev.
    Normal { mean: u64, stddev: u64 },
}

impl SizeDist {
    /// The largest payload drawn.
    pub fn max(&self) -> u64 {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform { max, .. } => max,
            // Samples are clamped to mean + 4 stddev.
            SizeDist::Normal { mean, stddev } => mean.saturating_add(stddev.saturating_mul(4)),
        }
    }
}

/// `keys`: which key each message carries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPattern {
    /// No key.
    None,
    /// Keys 0..keys in turn.
    RoundRobin { keys: u64 },
    /// Keys drawn uniformly from 0..keys.
    Random { keys: u64 },
    /// Keys drawn from a Zipf distribution over 0..keys (a few hot keys).
    Zipf { keys: u64, exponent: f64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// `payload`: what the bytes of a message are.
pub enum PayloadKind {
    /// Random bytes (incompressible).
    Random,
    /// Printable text (compressible).
    Text,
    /// Every message carries this file's bytes (path on the agent's host).
    File(String),
}

/// `batching` (Pulsar): a batch goes out when any limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Batching {
    /// Most messages in one batch.
    pub max_messages: u32,
    /// Longest wait after a batch's first message.
    pub max_delay: Duration,
    /// Most bytes in one batch; None: the client's default.
    pub max_bytes: Option<u64>,
}

/// `compression` (Pulsar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Uncompressed.
    None,
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}

// --------------------------------------------------------- consumers

/// One of `consumers`: `count` consumers on one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerGroup {
    /// Unique among consumer groups.
    pub name: String,
    /// One of the scenario's topics.
    pub topic: String,
    /// Subscription name (the group name unless given); unique per topic.
    pub subscription: String,
    pub sub_type: SubType,
    /// Number of consumers.
    pub count: u32,
    /// Messages the client buffers ahead (Pulsar).
    pub receiver_queue: u32,
    pub ack: AckMode,
    /// Cumulative acks: acknowledge every Nth message.
    pub ack_every: u32,
    /// Windows (offsets from the start instant) in which the group's
    /// consumers take nothing: a late start, a pause. Sorted, disjoint.
    #[serde(default)]
    pub pauses: Vec<Pause>,
}

/// The subscription type (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubType {
    Exclusive,
    Shared,
    Failover,
    KeyShared,
}

impl SubType {
    /// The word the scenario uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SubType::Exclusive => "exclusive",
            SubType::Shared => "shared",
            SubType::Failover => "failover",
            SubType::KeyShared => "key_shared",
        }
    }
}

/// `ack`: each message, or every `ack_every`th up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Each message on its own.
    Individual,
    /// Every `ack_every`th message, covering those before it.
    Cumulative,
}

/// `[from, until)` as offsets from the start instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// First instant of the pause.
    pub from: Duration,
    /// First instant after it.
    pub until: Duration,
}

impl Pause {
    /// The end of the pause in `pauses` that `offset` (from the start
    /// instant) falls in.
    pub fn until_after(pauses: &[Pause], offset: Duration) -> Option<Duration> {
        pauses.iter().find(|p| p.from <= offset && offset < p.until).map(|p| p.until)
    }
}

// ---------------------------------------------- phases and placement

/// `phases`, in the order they run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Traffic before the measurement, recorded apart.
    pub warmup: Duration,
    /// The measured part.
    pub duration: Duration,
    /// Wait after the producers stop, before the drain check.
    pub cooldown: Duration,
    /// Longest wait for consumers to receive every acknowledged message.
    pub drain_timeout: Duration,
}

impl Phases {
    /// Producers send from 0 until this offset from the start instant.
    pub fn send_end(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// `placement`: where instances go (see `plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Balanced over every agent.
    Spread,
    /// Producers and consumers on different agents.
    Split,
}

// ---------------------------------------------------- service levels

/// `slo`: the limits a run passes or fails by; None: not judged. Latencies
/// are end-to-end (consumer) or publish (from the intended send time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub p50_e2e: Option<Duration>,
    pub p90_e2e: Option<Duration>,
    pub p99_e2e: Option<Duration>,
    pub p999_e2e: Option<Duration>,
    pub max_e2e: Option<Duration>,
    pub p50_publish: Option<Duration>,
    pub p99_publish: Option<Duration>,
    pub p999_publish: Option<Duration>,
    /// Most acknowledged messages a subscription may miss.
    pub max_loss: Option<u64>,
    /// Most duplicate deliveries.
    pub max_duplicates: Option<u64>,
    /// Lowest achieved/target publish rate.
    pub min_rate_ratio: Option<f64>,
    /// Most refused or timed-out publishes.
    pub max_send_errors: Option<u64>,
    /// Latency limits in the general form (`p95_e2e`, `p9999_publish`):
    /// every one the named fields above do not cover.
    #[serde(default)]
    pub other: Vec<LatencyLimit>,
    /// Most uneven spread of a shared or key_shared subscription's
    /// deliveries over its consumers, percent ((max − min) / mean).
    pub max_consumer_imbalance: Option<f64>,
    /// Most keys of a key_shared subscription on two consumers at once.
    pub max_key_overlaps: Option<u64>,
    /// Consumer ack latency limits (where the driver times acks).
    #[serde(default)]
    pub p50_ack: Option<Duration>,
    #[serde(default)]
    pub p99_ack: Option<Duration>,
    /// `slo.allow_client_bound: false`: figures bounded by the client fail the run.
    #[serde(default)]
    pub fail_client_bound: bool,
    /// What counts as bounded by the client (None: the defaults, see
    /// [`Slo::client_cpu_limit`] and [`Slo::client_lag_limit`]).
    #[serde(default)]
    pub max_client_cpu: Option<f64>,
    #[serde(default)]
    pub max_client_lag: Option<Duration>,
}

impl Slo {
    /// Every percentile a latency limit names (named fields and `other`).
    pub fn percentiles(&self) -> Vec<Percentile> {
        let named = [
            (self.p50_e2e.or(self.p50_publish), Percentile::P50),
            (self.p90_e2e, Percentile::P90),
            (self.p99_e2e.or(self.p99_publish), Percentile::P99),
            (self.p999_e2e.or(self.p999_publish), Percentile::P999),
        ];
        let named = named.into_iter().filter_map(|(limit, p)| limit.map(|_| p));
        named.chain(self.other.iter().map(|l| l.percentile)).collect()
    }
    /// The share of an agent's CPUs above which it bounded the figures.
    pub fn client_cpu_limit(&self) -> f64 {
        self.max_client_cpu.unwrap_or(0.9)
    }
    /// The schedule lag past which producers with room in flight bounded the figures.
    pub fn client_lag_limit(&self) -> Duration {
        self.max_client_lag.unwrap_or(Duration::from_millis(100))
    }
}

/// One latency limit in the general form: `p95_e2e: 20ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyLimit {
    /// As written: `p95_e2e`.
    pub key: String,
    pub percentile: Percentile,
    /// true: producers' publish latency (from the intended send); false:
    /// consumers' end-to-end latency.
    pub publish: bool,
    pub limit: Duration,
}

// --------------------------------------------- faults and agent loss

/// A fault action at a fixed time from the start instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// From the start instant (warmup included).
    pub at: Duration,
    pub action: FaultAction,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Close consumers 0..count of consumer group `group` (an index).
    StopConsumers { group: usize, count: u32 },
}

/// `on_agent_loss`: what happens to a run when an agent is lost (its
/// session ends, it stops answering, or it fails fatally) after Start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAgentLoss {
    /// Every agent stops; the report is still written; exit 3.
    #[default]
    Abort,
    /// The others go on. The report marks the agent `lost` with its counts
    /// until then, leaves what it could not report out of the loss
    /// accounting (and says so), and the SLOs judge what remains.
    Continue,
}

impl OnAgentLoss {
    /// The word the scenario uses.
    pub fn as_str(self) -> &'static str {
        match self {
            OnAgentLoss::Abort => "abort",
            OnAgentLoss::Continue => "continue",
        }
    }
}

// ---------------------------------------------------- ceiling search

/// `mode: ceiling`: a search for the highest total rate that holds `slo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeilingSpec {
    /// First total target, msg/s.
    pub start: f64,
    /// Highest total target tried, msg/s.
    pub max: f64,
    /// Measured time of each step.
    pub step_duration: Duration,
    /// The search ends when (first bad - last good) / last good is at most this.
    pub precision: f64,
    /// What each step is judged by: the scenario's `slo` with
    /// `min_rate_ratio` (default 0.98) and `max_loss` (default 0) filled in.
    pub slo: Slo,
    /// A step where any agent used more than this share of its CPUs is client-bound.
    pub max_client_cpu: f64,
    /// A step where a producer group ran this far behind its schedule (or
    /// left sends unsent) without being held by full windows (measured
    /// wait for room in flight) is client-bound.
    pub max_client_lag: Duration,
}

fn yes() -> bool {
    true
}
