//! The scenario exactly as written in YAML: every field optional where a
//! default exists, unknown keys refused. `super::validate` turns it into the
//! checked model; nothing after validation re-checks.
//!
//! The same types generate the scenario's JSON Schema ([`json_schema`],
//! `coordinator schema`): the doc comments below are its descriptions.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

/// The JSON Schema (draft 2020-12) of a scenario file, generated from these
/// types. Editors use it to complete and check scenarios; validation proper
/// (units, ranges, cross references) is still `coordinator validate`.
pub fn json_schema() -> Schema {
    let mut schema = schemars::schema_for!(RawScenario);
    schema.insert("title".into(), "loadgen scenario".into());
    schema
}

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Name of the scenario; used in the run id and the report.
    pub name: String,
    /// Free text shown in the report.
    pub description: Option<String>,
    /// The broker under test.
    pub broker: RawBroker,
    /// Topics the run creates or uses.
    pub topics: Vec<RawTopic>,
    /// Producer groups: each has `count` identical producers.
    #[serde(default)]
    pub producers: Vec<RawProducerGroup>,
    /// Consumer groups: each has `count` consumers on one subscription.
    #[serde(default)]
    pub consumers: Vec<RawConsumerGroup>,
    /// Warmup, measurement, cooldown and drain.
    pub phases: RawPhases,
    /// How often agents report and the live view refreshes ("1s").
    pub report_interval: Option<Dur>,
    /// Where instances go: `spread` (default) or `split` (producers and
    /// consumers on different agents, so every end-to-end sample crosses hosts).
    #[schemars(with = "Option<PlacementName>")]
    pub placement: Option<String>,
    /// Pass/fail limits; the exit code follows them.
    pub slo: Option<RawSlo>,
    /// Seed for payloads, keys and sizes (reproducible runs).
    pub seed: Option<u64>,
    /// Fault actions at fixed times: `[{at: 30s, stop_consumers: {group: backup, count: 1}}]`.
    pub faults: Option<Vec<RawFault>>,
    /// When an agent is lost mid-run: `abort` (default: every agent stops,
    /// the report is written, exit 3) or `continue` (the others go on; the
    /// report marks it lost and judges what remains).
    #[schemars(with = "Option<OnAgentLossName>")]
    pub on_agent_loss: Option<String>,
    /// `run` (default): one run at the scenario's rates. `ceiling`: a search
    /// for the highest total rate within the SLOs (see `ceiling`).
    #[schemars(with = "Option<ModeName>")]
    pub mode: Option<String>,
    /// Settings of `mode: ceiling`.
    pub ceiling: Option<RawCeiling>,
    /// What the reports show: `{percentiles: [50, 95, 99, 99.9, 99.99]}`.
    pub report: Option<RawReport>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// The latency percentiles reported by the console summary,
    /// report.json, timeseries.csv, report.html, /metrics and `compare`,
    /// in percent: each above 0 and below 100, at most three decimals, at
    /// most 12, no repeats (sorted for you). Default `[50, 90, 95, 99,
    /// 99.9]`. A percentile an SLO names (`p9999_e2e`) is reported too.
    #[schemars(length(min = 1, max = 12))]
    pub percentiles: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// When, from the start of the run (warmup included).
    pub at: Dur,
    /// Close the first `count` consumers of consumer group `group`.
    pub stop_consumers: Option<RawStopConsumers>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPause {
    /// When the pause begins, from the start of the run (warmup included).
    pub at: Dur,
    /// How long it lasts.
    #[serde(rename = "for")]
    pub length: Dur,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStopConsumers {
    /// Name of the consumer group.
    pub group: String,
    /// How many of its consumers to close.
    pub count: i64,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBroker {
    /// `memory`, `pulsar` or `danube`.
    #[schemars(with = "BrokerKindName")]
    pub kind: String,
    /// Service URL, e.g. `pulsar://127.0.0.1:6650` or `http://127.0.0.1:6650`.
    pub url: Option<String>,
    /// Pulsar only: the admin REST API (`http://HOST:8080` or `https://HOST:8443`).
    /// With it, the coordinator creates the scenario's partitioned topics (and
    /// checks existing topics' partition counts) before agents prepare; without
    /// it, agents only check that partitioned topics exist as the scenario says.
    /// Uses `auth` (the token, read on the coordinator's host) and `tls.ca_file`.
    pub admin_url: Option<String>,
    /// Pulsar only: TCP_NODELAY on the client's broker connections (default
    /// true, as Apache's Java client). The `pulsar` crate leaves Nagle's
    /// algorithm on, which held small sends back by milliseconds; the agent
    /// turns it off from outside. `false` keeps Nagle: fewer, fuller segments,
    /// less CPU per message at max rate unbatched, higher latency.
    pub tcp_nodelay: Option<bool>,
    /// Memory broker: messages per second it accepts before publishes queue.
    pub capacity_msgs_per_s: Option<f64>,
    /// Memory broker: latency added to every publish ("2ms").
    pub latency: Option<Dur>,
    /// Memory broker only: how long each consumer ack takes to complete
    /// ("1ms"; default 0s: at once). A consumer acks each message before it
    /// takes the next, as a client waiting for the broker's answer does.
    pub ack_latency: Option<Dur>,
    /// How long an agent waits to connect ("10s").
    pub connect_timeout: Option<Dur>,
    /// Memory broker only, to prove the accounting: every Nth message
    /// published to a topic is acknowledged but never delivered.
    pub drop_every: Option<u64>,
    /// Memory broker only: every Nth message is delivered twice.
    pub duplicate_every: Option<u64>,
    /// Memory broker only, to prove the who-received-what checks: every Nth
    /// message goes to the next consumer of each subscription instead of
    /// the one its type picks (a failover standby receives while the active
    /// one does; a key reaches a second consumer).
    pub misroute_every: Option<u64>,
    /// Authentication to the broker. Secrets never live in the scenario:
    /// `{token_file: /path}` or `{token_env: VAR}`, read on each agent's host.
    pub auth: Option<RawAuth>,
    /// TLS to the broker (pulsar+ssl:// or https:// URLs).
    pub tls: Option<RawTls>,
    /// Memory broker only: after N messages on a topic, deliveries stop
    /// (publishes are still acknowledged) — a stalled dispatcher.
    pub stall_after: Option<u64>,
    /// Memory broker only: the most messages a topic holds undelivered
    /// (summed over its subscriptions); past it, publish acks wait until
    /// consumers catch up (backpressure, as a real broker's backlog quota).
    pub max_backlog: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    /// Topic name.
    pub name: String,
    /// 0 or absent: non-partitioned; N: a partitioned topic with N partitions.
    pub partitions: Option<i64>,
    /// Danube: the topic's schema, registered in Danube's schema registry
    /// before the first producer: `bytes`, `string` (text payloads),
    /// `int64` (8-byte big-endian payloads) or `json` (JSON documents).
    /// Absent: no schema, raw bytes.
    #[schemars(with = "Option<SchemaName>")]
    pub schema: Option<String>,
    /// Danube, with `schema: json`: the JSON Schema text registered for the
    /// topic (default: an object with one string property `lg`).
    pub json_schema: Option<String>,
    /// Danube: reliable dispatch (the broker stores messages and redelivers
    /// until acknowledged) instead of non-reliable (default false). A
    /// property of the topic in Danube: the first producer sets it.
    pub reliable_dispatch: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProducerGroup {
    /// Group name (unique among producer groups).
    pub name: String,
    /// Topic the group publishes to (one of `topics`).
    pub topic: String,
    /// Number of producers (default 1).
    pub count: Option<i64>,
    /// Messages per second per producer, or `max` (closed loop: each producer
    /// keeps `max_in_flight` sends outstanding, no schedule). Give this,
    /// `total_rate` or `load`.
    #[schemars(with = "Option<RateSchema>")]
    pub rate: Option<serde_yaml::Value>,
    /// Messages per second for the whole group, split exactly over its producers.
    pub total_rate: Option<f64>,
    /// Payload size: bytes (`1024`, `"1KiB"`) or a distribution
    /// (`{uniform: {min: 100, max: 2000}}`, `{normal: {mean: 1024, stddev: 200}}`).
    #[schemars(with = "Option<MessageSizeSchema>")]
    pub message_size: Option<serde_yaml::Value>,
    /// Message keys: `none` (default), `{round_robin: N}`, `{random: N}`,
    /// `{zipf: {keys: N, exponent: 1.1}}`.
    #[schemars(with = "Option<KeysSchema>")]
    pub keys: Option<serde_yaml::Value>,
    /// Sends in flight per producer before it waits for an acknowledgement (default 1000).
    pub max_in_flight: Option<i64>,
    /// A send not acknowledged within this time is an error ("30s").
    pub send_timeout: Option<Dur>,
    /// Payload bytes: `random` (default) or `text` (compressible).
    #[schemars(with = "Option<PayloadName>")]
    pub payload: Option<String>,
    /// Client-side batching (Pulsar): `{max_messages: 1000, max_delay: 10ms, max_bytes: 128KiB}`.
    pub batching: Option<RawBatching>,
    /// Compression (Pulsar): none (default), lz4, zlib, zstd, snappy.
    #[schemars(with = "Option<CompressionName>")]
    pub compression: Option<String>,
    /// A rate that changes over time (group totals, split over the producers
    /// like `total_rate`): `{ramp: {from: 1000, to: 100000, over: 60s}}`,
    /// `{steps: [{rate: 1000, for: 10s}, ...]}` or
    /// `{spike: {base: 1000, peak: 5000, every: 20s, for: 2s}}`.
    pub load: Option<RawLoad>,
    /// Danube: client producers behind each producer of the group (default 1).
    /// A Danube producer has one send in flight; with N of them a producer
    /// keeps up to N sends in flight (its rate and schedule stay one), at the
    /// price of ordering across them.
    pub clients: Option<i64>,
    /// Spacing of scheduled sends: `uniform` (default) or `poisson`
    /// (exponential gaps from a seeded generator, same mean rate).
    #[schemars(with = "Option<ArrivalsName>")]
    pub arrivals: Option<String>,
}

/// A load shape: exactly one of `ramp`, `steps`, `spike`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// Linear from `from` to `to` msg/s over `over`, then `to`.
    pub ramp: Option<RawRamp>,
    /// Each rate for its time; the last rate holds after the last step.
    pub steps: Option<Vec<RawStep>>,
    /// `base` msg/s, and `peak` for the last `for` of every `every`.
    pub spike: Option<RawSpike>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRamp {
    /// Group rate at the start, msg/s.
    pub from: f64,
    /// Group rate at the end of the ramp (and after), msg/s.
    pub to: f64,
    /// Length of the ramp ("60s").
    pub over: Dur,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Group rate during this step, msg/s (0: a pause).
    pub rate: f64,
    /// How long the step lasts ("10s").
    #[serde(rename = "for")]
    pub dur: Dur,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpike {
    /// Group rate between spikes, msg/s.
    pub base: f64,
    /// Group rate during a spike, msg/s.
    pub peak: f64,
    /// Period: one spike per period, at its end ("20s").
    pub every: Dur,
    /// Length of each spike ("2s").
    #[serde(rename = "for")]
    pub dur: Dur,
}

/// `ceiling:` settings of `mode: ceiling`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCeiling {
    /// First total target rate, msg/s (default 1000).
    pub start: Option<f64>,
    /// Highest total target rate tried, msg/s (default 1000000).
    pub max: Option<f64>,
    /// Measured time of each step ("10s").
    pub step_duration: Option<Dur>,
    /// Stop bisecting when the interval between the last good and the first
    /// bad rate is within this fraction (default 0.05).
    pub precision: Option<f64>,
    /// SLOs each step is judged by (default: the scenario's `slo`, plus
    /// `min_rate_ratio: 0.98` and `max_loss: 0`).
    pub slo: Option<RawSlo>,
    /// A step where an agent used more than this share of its CPUs is
    /// client-bound, never the broker's ceiling (default: `slo.max_client_cpu`, 0.9).
    pub max_client_cpu: Option<f64>,
    /// A step where a producer group fell further behind its schedule than
    /// this (or left sends unsent) is client-bound unless its producers
    /// spent most of the measurement waiting for room in flight
    /// (`max_in_flight` acknowledgements; measured, see
    /// `in_flight_wait_percent`) (default: `slo.max_client_lag`, "100ms").
    pub max_client_lag: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBatching {
    /// Most messages in one batch.
    pub max_messages: Option<i64>,
    /// A batch goes out at the latest this long after its first message ("10ms").
    pub max_delay: Option<Dur>,
    /// Most bytes in one batch.
    #[schemars(with = "Option<ByteSize>")]
    pub max_bytes: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// File holding the token (JWT), read by each agent.
    pub token_file: Option<String>,
    /// Environment variable holding the token, read by each agent.
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file with the CA certificate(s) to trust.
    pub ca_file: Option<String>,
    /// Accept any certificate (testing only).
    pub allow_insecure: Option<bool>,
    /// Check the certificate's host name (default true).
    pub verify_hostname: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsumerGroup {
    /// Group name (unique among consumer groups).
    pub name: String,
    /// Topic to consume (one of `topics`).
    pub topic: String,
    /// Subscription name (default: the group name).
    pub subscription: Option<String>,
    /// `exclusive`, `shared` (default), `failover` or `key_shared`.
    #[serde(rename = "type")]
    #[schemars(with = "Option<SubTypeName>")]
    pub sub_type: Option<String>,
    /// Number of consumers on the subscription (default 1).
    pub count: Option<i64>,
    /// Messages the client buffers ahead (Pulsar receiver queue; default 1000;
    /// not settable on Danube, whose client buffers 100 per partition).
    pub receiver_queue: Option<i64>,
    /// `individual` (default) or `cumulative` (exclusive/failover only).
    #[schemars(with = "Option<AckName>")]
    pub ack: Option<String>,
    /// Cumulative acks: acknowledge every Nth message (default 1).
    pub ack_every: Option<i64>,
    /// Backlog build and drain: the consumers subscribe before the start (so
    /// the subscription keeps everything published) but take nothing until
    /// this long after it ("20s", warmup included); the report shows the
    /// backlog growing, then draining (`subscriptions[].backlog`).
    pub start_after: Option<Dur>,
    /// The consumers take nothing for a while: `{at: 30s, for: 15s}` (from
    /// the start, warmup included).
    pub pause: Option<RawPause>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPhases {
    /// Traffic before the measurement, recorded apart ("10s"; default 0s).
    pub warmup: Option<Dur>,
    /// The measured part of the run ("60s").
    pub duration: Dur,
    /// Wait after producers stop before the drain check starts (default 0s).
    pub cooldown: Option<Dur>,
    /// Longest wait for consumers to receive every acknowledged message (default 30s).
    pub drain_timeout: Option<Dur>,
}

/// Besides the keys below, a latency limit on any percentile:
/// `pDIGITS_e2e` (consumers, end to end) or `pDIGITS_publish` (producers,
/// from the intended send time), the digits read as `DD.ddd`: `p95_e2e:
/// 20ms`, `p9999_publish: 80ms` (99.99), `p055_e2e` (5.5). A percentile an
/// SLO names is reported even when `report.percentiles` leaves it out.
// Unknown keys land in `other` and are refused by validation (serde's
// `deny_unknown_fields` does not work with `flatten`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(extend(
    "patternProperties" = {"^p[0-9]{1,5}_(e2e|publish)$": {"$ref": "#/$defs/Duration"}},
    "additionalProperties" = false
))]
pub struct RawSlo {
    /// Highest median consumer end-to-end latency ("20ms").
    pub p50_e2e: Option<Dur>,
    /// Highest 90th-percentile consumer end-to-end latency.
    pub p90_e2e: Option<Dur>,
    /// Highest 99th-percentile consumer end-to-end latency.
    pub p99_e2e: Option<Dur>,
    /// Highest 99.9th-percentile consumer end-to-end latency.
    pub p999_e2e: Option<Dur>,
    /// Highest consumer end-to-end latency.
    pub max_e2e: Option<Dur>,
    /// Highest median publish latency, measured from the intended send time.
    pub p50_publish: Option<Dur>,
    /// Highest 99th-percentile publish latency, from the intended send time.
    pub p99_publish: Option<Dur>,
    /// Highest 99.9th-percentile publish latency, from the intended send time.
    pub p999_publish: Option<Dur>,
    /// Highest median consumer ack latency (from the call to acknowledge to
    /// its completion; measured where the broker's client reports it: not
    /// on pulsar, where the check fails as not measured).
    pub p50_ack: Option<Dur>,
    /// Highest 99th-percentile consumer ack latency (see `p50_ack`).
    pub p99_ack: Option<Dur>,
    /// `false`: the run fails when its figures were bounded by the client
    /// (`client_bound` in the report: an agent over `max_client_cpu`, or
    /// producers behind their schedule by more than `max_client_lag` while
    /// they had room in flight). Default `true`: reported, not judged.
    pub allow_client_bound: Option<bool>,
    /// An agent that used more than this share of its CPUs bounded the
    /// figures (default 0.9; a ceiling search's `ceiling.max_client_cpu`
    /// takes this as its default).
    pub max_client_cpu: Option<f64>,
    /// Producers that fell further behind their schedule than this (or
    /// left sends unsent) bounded the figures, unless they spent most of
    /// the measurement waiting for room in flight (the broker's pace)
    /// with no agent over `max_client_cpu` (default "100ms"; the default of
    /// `ceiling.max_client_lag`).
    pub max_client_lag: Option<Dur>,
    /// Most acknowledged messages a subscription may miss (default 0).
    pub max_loss: Option<u64>,
    /// Most duplicate deliveries allowed (default: no limit, reported only).
    pub max_duplicates: Option<u64>,
    /// Lowest achieved/target publish rate, e.g. 0.98.
    pub min_rate_ratio: Option<f64>,
    /// Most send errors (refused or timed out publishes) allowed; default 0.
    pub max_send_errors: Option<u64>,
    /// Any other percentile: `p95_e2e: 20ms`, `p9999_publish: 80ms`. The
    /// digits read as `DD.ddd` (p95 = 95, p999 = 99.9, p9999 = 99.99, p055
    /// = 5.5); `_e2e` limits consumers' end-to-end latency, `_publish`
    /// producers' publish latency from the intended send time. The
    /// percentile is reported even when `report.percentiles` leaves it out.
    #[serde(flatten)]
    #[schemars(with = "std::collections::BTreeMap<String, Dur>")]
    pub other: std::collections::BTreeMap<String, Dur>,
    /// Most uneven spread of deliveries over a shared or key_shared
    /// subscription's consumers, in percent: (max − min) / mean of their
    /// deliveries (report: `subscriptions[].consumer_imbalance_percent`), e.g.
    /// 20. Judged per subscription with two or more consumers.
    pub max_consumer_imbalance: Option<f64>,
    /// Most keys of a key_shared subscription received by two consumers at
    /// once (report: `subscriptions[].key_overlaps`), e.g. 0. Without it,
    /// overlaps are a note, not a failure.
    pub max_key_overlaps: Option<u64>,
}

/// A duration as written: a humantime string ("30s"). Numbers are kept so
/// validation can say they lack a unit instead of a bare type error.
#[derive(Debug, Clone, PartialEq)]
pub struct Dur(pub String);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(Dur(s)),
            serde_yaml::Value::Number(n) => Ok(Dur(n.to_string())),
            _ => Err(serde::de::Error::custom("expected a duration such as `30s`, `250ms` or `5m`")),
        }
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: `30s`, `250ms`, `5m`, `1m 30s`. A bare number is refused.",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zA-Zµ]+(\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zA-Zµ]+)*\\s*$",
            "examples": ["30s", "250ms", "5m"]
        })
    }
}

/// A byte size as a plain number or a string with a unit (`1024`, `"1KiB"`, `"4MB"`).
const BYTE_SIZE_PATTERN: &str = "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KkMmGg]([Ii]?[Bb])?|[Bb])?\\s*$";

fn byte_size() -> Schema {
    json_schema!({
        "description": "Bytes: a number (`1024`) or a string with a unit (`\"1KiB\"`, `\"4MB\"`).",
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": BYTE_SIZE_PATTERN}
        ]
    })
}

/// Schema only: a byte size (the field itself stays a YAML value so that
/// validation can name the exact problem).
pub struct ByteSize;

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        byte_size()
    }
}

/// Schema only: `message_size`, a byte size or a size distribution.
pub struct MessageSizeSchema;

impl JsonSchema for MessageSizeSchema {
    fn schema_name() -> Cow<'static, str> {
        "MessageSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let size = byte_size();
        json_schema!({
            "description": "A fixed size, or a distribution of sizes.",
            "anyOf": [
                size,
                {
                    "type": "object",
                    "description": "Sizes drawn uniformly between `min` and `max`.",
                    "properties": {
                        "uniform": {
                            "type": "object",
                            "properties": {"min": size, "max": size},
                            "required": ["min", "max"],
                            "additionalProperties": false
                        }
                    },
                    "required": ["uniform"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "Sizes drawn from a normal distribution (clamped at 0).",
                    "properties": {
                        "normal": {
                            "type": "object",
                            "properties": {"mean": size, "stddev": size},
                            "required": ["mean", "stddev"],
                            "additionalProperties": false
                        }
                    },
                    "required": ["normal"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Schema only: `rate`, a number or `max`.
pub struct RateSchema;

impl JsonSchema for RateSchema {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Messages per second per producer, or `max` (closed loop).",
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"const": "max"}]
        })
    }
}

/// Schema only: `keys`, the message key pattern.
pub struct KeysSchema;

impl JsonSchema for KeysSchema {
    fn schema_name() -> Cow<'static, str> {
        "Keys".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let count = json_schema!({"type": "integer", "minimum": 1, "maximum": 100_000_000});
        json_schema!({
            "anyOf": [
                {"const": "none", "description": "No key."},
                {
                    "type": "object",
                    "description": "Keys 0..N in turn.",
                    "properties": {"round_robin": count},
                    "required": ["round_robin"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "Keys drawn uniformly from N.",
                    "properties": {"random": count},
                    "required": ["random"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "Keys drawn from a Zipf distribution over `keys` (a few hot keys).",
                    "properties": {
                        "zipf": {
                            "type": "object",
                            "properties": {
                                "keys": count,
                                "exponent": {"type": "number", "exclusiveMinimum": 0, "maximum": 10}
                            },
                            "required": ["keys"],
                            "additionalProperties": false
                        }
                    },
                    "required": ["zipf"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Schema-only string enumerations (the fields stay strings so validation
/// can suggest the right word).
macro_rules! string_enum {
    ($name:ident, $schema_name:literal, [$($v:literal),+ $(,)?]) => {
        #[doc = concat!("Schema only: one of ", $(concat!("`", $v, "` ")),+)]
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "enum": [$($v),+]})
            }
        }
    };
}

string_enum!(BrokerKindName, "BrokerKind", ["memory", "pulsar", "danube"]);
string_enum!(PlacementName, "Placement", ["spread", "split"]);
string_enum!(PayloadName, "Payload", ["random", "text"]);
string_enum!(CompressionName, "Compression", ["none", "lz4", "zlib", "zstd", "snappy"]);
string_enum!(SubTypeName, "SubscriptionType", ["exclusive", "shared", "failover", "key_shared"]);
string_enum!(AckName, "AckMode", ["individual", "cumulative"]);
string_enum!(SchemaName, "TopicSchema", ["bytes", "string", "int64", "json"]);
string_enum!(ArrivalsName, "Arrivals", ["uniform", "poisson"]);
string_enum!(ModeName, "Mode", ["run", "ceiling"]);
string_enum!(OnAgentLossName, "OnAgentLoss", ["abort", "continue"]);
