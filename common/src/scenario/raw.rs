//! The scenario exactly as written in YAML: every field optional where a
//! default exists, unknown keys refused. `super::validate` turns it into the
//! checked model; nothing after validation re-checks.

use serde::Deserialize;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
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
    pub placement: Option<String>,
    /// Pass/fail limits; the exit code follows them.
    pub slo: Option<RawSlo>,
    /// Seed for payloads, keys and sizes (reproducible runs).
    pub seed: Option<u64>,
    /// Fault actions at fixed times: `[{at: 30s, stop_consumers: {group: backup, count: 1}}]`.
    pub faults: Option<Vec<RawFault>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// When, from the start of the run (warmup included).
    pub at: Dur,
    /// Close the first `count` consumers of consumer group `group`.
    pub stop_consumers: Option<RawStopConsumers>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStopConsumers {
    pub group: String,
    pub count: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBroker {
    /// `memory`, `pulsar` or `danube`.
    pub kind: String,
    /// Service URL, e.g. `pulsar://127.0.0.1:6650` or `http://127.0.0.1:6650`.
    pub url: Option<String>,
    /// Memory broker: messages per second it accepts before publishes queue.
    pub capacity_msgs_per_s: Option<f64>,
    /// Memory broker: latency added to every publish ("2ms").
    pub latency: Option<Dur>,
    /// How long an agent waits to connect ("10s").
    pub connect_timeout: Option<Dur>,
    /// Memory broker only, to prove the accounting: every Nth message
    /// published to a topic is acknowledged but never delivered.
    pub drop_every: Option<u64>,
    /// Memory broker only: every Nth message is delivered twice.
    pub duplicate_every: Option<u64>,
    /// Authentication to the broker. Secrets never live in the scenario:
    /// `{token_file: /path}` or `{token_env: VAR}`, read on each agent's host.
    pub auth: Option<RawAuth>,
    /// TLS to the broker (pulsar+ssl:// or https:// URLs).
    pub tls: Option<RawTls>,
    /// Memory broker only: after N messages on a topic, deliveries stop
    /// (publishes are still acknowledged) — a stalled dispatcher.
    pub stall_after: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    /// Topic name.
    pub name: String,
    /// 0 or absent: non-partitioned; N: a partitioned topic with N partitions.
    pub partitions: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProducerGroup {
    /// Group name (unique among producer groups).
    pub name: String,
    /// Topic the group publishes to (one of `topics`).
    pub topic: String,
    /// Number of producers (default 1).
    pub count: Option<i64>,
    /// Messages per second per producer. Give this or `total_rate`.
    pub rate: Option<f64>,
    /// Messages per second for the whole group, split exactly over its producers.
    pub total_rate: Option<f64>,
    /// Payload size: bytes (`1024`, `"1KiB"`) or a distribution
    /// (`{uniform: {min: 100, max: 2000}}`, `{normal: {mean: 1024, stddev: 200}}`).
    pub message_size: Option<serde_yaml::Value>,
    /// Message keys: `none` (default), `{round_robin: N}`, `{random: N}`,
    /// `{zipf: {keys: N, exponent: 1.1}}`.
    pub keys: Option<serde_yaml::Value>,
    /// Sends in flight per producer before it waits for an acknowledgement (default 1000).
    pub max_in_flight: Option<i64>,
    /// A send not acknowledged within this time is an error ("30s").
    pub send_timeout: Option<Dur>,
    /// Payload bytes: `random` (default) or `text` (compressible).
    pub payload: Option<String>,
    /// Client-side batching (Pulsar): `{max_messages: 1000, max_delay: 10ms, max_bytes: 128KiB}`.
    pub batching: Option<RawBatching>,
    /// Compression (Pulsar): none (default), lz4, zlib, zstd, snappy.
    pub compression: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatching {
    /// Most messages in one batch.
    pub max_messages: Option<i64>,
    /// A batch goes out at the latest this long after its first message ("10ms").
    pub max_delay: Option<Dur>,
    /// Most bytes in one batch.
    pub max_bytes: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// File holding the token (JWT), read by each agent.
    pub token_file: Option<String>,
    /// Environment variable holding the token, read by each agent.
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file with the CA certificate(s) to trust.
    pub ca_file: Option<String>,
    /// Accept any certificate (testing only).
    pub allow_insecure: Option<bool>,
    /// Check the certificate's host name (default true).
    pub verify_hostname: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub sub_type: Option<String>,
    /// Number of consumers on the subscription (default 1).
    pub count: Option<i64>,
    /// Messages the client buffers ahead (Pulsar receiver queue; default 1000).
    pub receiver_queue: Option<i64>,
    /// `individual` (default) or `cumulative` (exclusive/failover only).
    pub ack: Option<String>,
    /// Cumulative acks: acknowledge every Nth message (default 1).
    pub ack_every: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    /// Consumer end-to-end latency limits ("20ms").
    pub p50_e2e: Option<Dur>,
    pub p90_e2e: Option<Dur>,
    pub p99_e2e: Option<Dur>,
    pub p999_e2e: Option<Dur>,
    pub max_e2e: Option<Dur>,
    /// Publish latency limits, measured from the intended send time.
    pub p50_publish: Option<Dur>,
    pub p99_publish: Option<Dur>,
    pub p999_publish: Option<Dur>,
    /// Most acknowledged messages a subscription may miss (default 0).
    pub max_loss: Option<u64>,
    /// Most duplicate deliveries allowed (default: no limit, reported only).
    pub max_duplicates: Option<u64>,
    /// Lowest achieved/target publish rate, e.g. 0.98.
    pub min_rate_ratio: Option<f64>,
    /// Most send errors allowed (default: no limit, reported only).
    pub max_send_errors: Option<u64>,
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
