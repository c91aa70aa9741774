//! report.json: the stable result format scripts rely on (see DESIGN.md).
//! Fields are only added, never renamed or removed. Latencies are in
//! microseconds (floating point, so sub-microsecond figures survive);
//! histograms carry the full-fidelity nanosecond data.
//!
//! Version 2 added the reported percentile list (`percentiles`, the
//! scenario's `report.percentiles`), a `percentiles` map in every latency
//! and `percentiles_us` in every interval row keyed by label (`p99.9`), and
//! `p95`; readers of version 1 find the same figures in the named fields
//! ([`Latency::at`], [`IntervalRow::at`], [`Report::reported_percentiles`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::percentile::{self, Percentile};

pub const REPORT_SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    pub scenario_file: String,
    pub tool_version: String,
    /// RFC 3339 wall-clock time of the start instant.
    pub started_at: String,
    /// "pass" or "fail" against the SLOs; "incomplete" when the run could not complete.
    pub verdict: String,
    pub broker: BrokerInfo,
    pub phases: PhasesInfo,
    pub agents: Vec<AgentReport>,
    /// Whole run (warmup included): what was sent and what arrived.
    pub totals: Totals,
    /// Per producer and consumer group, measurement phase only.
    pub groups: Vec<GroupReport>,
    /// Delivery accounting per subscription, whole run.
    pub subscriptions: Vec<SubscriptionReport>,
    pub slo: Vec<SloCheck>,
    /// Merged HDR histograms (ns), measurement phase, V2+deflate base64.
    pub histograms: Vec<HistogramRecord>,
    /// One row per interval and group.
    pub intervals: Vec<IntervalRow>,
    pub notes: Vec<String>,
    /// After a ceiling search: the highest rate sustained within the SLOs,
    /// and the steps that found it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// When agents were lost and the run went on (`on_agent_loss:
    /// continue`): how much of the run the verdict covers. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// What the run cost the coordinator itself (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<CoordinatorCost>,
    /// Spans with send or receive errors (broker faults), in time order;
    /// absent when there were none (and in older reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultWindow>,
    /// A run stopped by a signal (verdict `interrupted`): which signal, when
    /// and in which phase. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// Run control during the run (the dashboard, `coordinator ctl`), in
    /// order: rate changes, pauses, resumes, an early stop. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RunEvent>,
    /// The percentiles reported, ascending, in percent (`[50.0, 90.0, 95.0,
    /// 99.0, 99.9]` by default): the scenario's `report.percentiles` plus
    /// any an SLO names. Each latency's `percentiles` and each interval
    /// row's `percentiles_us` hold exactly these. Absent in version-1
    /// reports, which carried p50, p90, p99 and p99.9.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<Percentile>,
    /// The run measured the generator, not only the broker: an agent's CPU
    /// was saturated, or producers fell behind their schedule while they
    /// had room in flight (the criteria of a ceiling step, judged on every
    /// run). Null (absent) when the figures were the broker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_bound: Option<ClientBound>,
}

/// Why a run's figures were bounded by the client (the generator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientBound {
    /// One line for people: every reason, `; `-separated.
    pub summary: String,
    pub reasons: Vec<ClientBoundReason>,
}

/// One reason the figures were bounded by the client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientBoundReason {
    /// "cpu": an agent used more than `slo.max_client_cpu` of its CPUs over
    /// the measurement (`agents[].measure_cpu_percent`; over the run when
    /// no interval report fell inside it). "lag": a producer group fell further behind its schedule
    /// than `slo.max_client_lag` (or left sends unsent) although it had
    /// room in flight most of the time (the generator could not keep up).
    /// "in_flight_wait": a producer group behind its schedule waited for
    /// room in flight most of the time, but with an agent over its CPU
    /// limit (a saturated process takes its acks late).
    pub criterion: String,
    /// The agents concerned (`agents[].id`): over the CPU limit, or with
    /// producers whose lag passed the limit.
    pub agents: Vec<String>,
    /// "lag" and "in_flight_wait": the producer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What was measured and its limit, in `unit`: "cpu": percent of the
    /// agent's CPUs; "lag": the group's largest schedule lag, ms;
    /// "in_flight_wait": percent of the measurement spent waiting for room
    /// in flight (limit: 50, from which waiting would be the broker's pace
    /// had no agent been over its CPU limit).
    pub value: f64,
    pub limit: f64,
    /// "%" or "ms".
    pub unit: String,
    /// "cpu": the share of the measurement's intervals (percent) in which
    /// the agent was over the limit; absent without interval reports in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_limit_percent: Option<f64>,
    /// One line for people (what the console and the HTML print).
    pub detail: String,
}

/// Why and where a run was interrupted (SIGTERM, SIGINT).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// "SIGTERM", "SIGINT" (or "stop request" when not from a signal).
    pub signal: String,
    /// Seconds from the start instant; before the start (phase `connect` or
    /// `prepare`), seconds since the coordinator began the run.
    pub at_s: f64,
    /// connect, prepare, warmup, measure, cooldown or drain.
    pub phase: String,
}

/// One run-control change, applied by every agent at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// Seconds from the start instant to the instant the agents applied it.
    pub t_s: f64,
    /// "rate", "pause", "resume" or "stop".
    pub kind: String,
    /// `rate`: the new total rate of the groups it names (msg/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The producer groups it applied to (every one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Who asked: "dashboard" (the page or `coordinator ctl`) and its peer.
    pub who: String,
    /// One line for people (chart markers, the summary).
    pub label: String,
}

/// The coordinator's own cost: is it keeping up with its agents?
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorCost {
    pub agents: u32,
    /// Connect, Hello and clock sync of every agent, plan, Prepare, until
    /// every agent is Ready (seconds).
    pub setup_s: f64,
    /// Time the run loop spent taking every agent's report of one interval
    /// (merge, live view; the histograms are read beforehand, in parallel,
    /// on the sessions' tasks), per interval: median and worst, milliseconds.
    pub interval_merge_ms_p50: f64,
    pub interval_merge_ms_max: f64,
    /// The whole cost of an interval's merge in CPU time: the run loop's
    /// plus the reading of the histograms on every thread; without the
    /// time a thread was preempted (ms; 0 in older reports).
    #[serde(default)]
    pub interval_merge_cpu_ms_p50: f64,
    #[serde(default)]
    pub interval_merge_cpu_ms_max: f64,
    /// Building the final report from every agent's final report (ms).
    pub report_build_ms: f64,
    /// How far apart the agents began sending: the largest minus the
    /// smallest `agents[].start_offset_ms` (ms). Null when no agent's
    /// producers sent (or in older reports).
    #[serde(default)]
    pub start_spread_ms: Option<f64>,
}

/// What a verdict covers after agents were lost: their producers' and
/// consumers' data never arrived, so loss accounting leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub agents: u32,
    pub agents_lost: u32,
    /// Producer instances whose acknowledged sets were reported.
    pub producers: u32,
    pub producers_reported: u32,
    /// Subscriptions whose loss was judged (none of its consumers was on a lost agent).
    pub subscriptions: u32,
    pub subscriptions_judged: u32,
    /// "topic/subscription" of each subscription left out of the loss accounting.
    pub not_judged: Vec<String>,
    /// Agents that left mid-run (told to go: SIGTERM) after their final
    /// report: what they reported is judged; what they would have done
    /// after they left is missing.
    #[serde(default)]
    pub agents_left: u32,
}

/// Result of a ceiling search: the rate steps tried and the highest one
/// that held the SLOs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Highest achieved rate (msg/s) whose step passed.
    pub rate_msgs_per_s: f64,
    /// What limited it: "broker" or "client" (the generator itself), or
    /// "search_max" when every step up to `ceiling.max` passed (the rate is
    /// a lower bound: nothing failed).
    pub bound_by: String,
    pub steps: Vec<CeilingStep>,
}

/// One step of a ceiling search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeilingStep {
    /// Offered rate, msg/s.
    pub target: f64,
    /// Acknowledged rate, msg/s.
    pub achieved: f64,
    /// Latency at this step (consumers: end to end).
    pub latency_us: Latency,
    /// "pass" or "fail" against the SLOs.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub kind: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhasesInfo {
    pub warmup_s: f64,
    pub duration_s: f64,
    pub cooldown_s: f64,
    /// How long the drain took (until every acknowledged message arrived, or the timeout).
    pub drain_s: f64,
    pub drain_timeout_s: f64,
    /// true when the drain ended by timeout with messages still missing.
    pub drain_timed_out: bool,
    pub report_interval_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub id: String,
    pub address: String,
    /// "ok", "lost", "error" or "left" (told to go mid-run: SIGTERM; its
    /// final report came in).
    pub status: String,
    pub hostname: String,
    pub instance: String,
    /// Agent clock minus coordinator clock, and its error bound (RTT/2).
    pub clock_offset_us: f64,
    pub clock_error_us: f64,
    /// How far the offset moved during the run (followed from the keepalive
    /// pings; the agent stamped with each correction): drift between the
    /// two clocks. `clock_updates`: corrections sent.
    #[serde(default)]
    pub clock_drift_us: f64,
    #[serde(default)]
    pub clock_updates: u32,
    pub producers: u32,
    pub consumers: u32,
    /// Target publish rate of this agent's producers.
    pub target_rate_msgs_per_s: f64,
    /// Whole run.
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub received: u64,
    /// Measurement phase.
    pub acked_measure: u64,
    pub received_measure: u64,
    pub publish_rate_msgs_per_s: f64,
    pub receive_rate_msgs_per_s: f64,
    /// Agent process CPU over the run, percent of one core.
    pub cpu_percent: f64,
    /// Agent process CPU over the measurement (its interval reports inside
    /// it), percent of one core: what `client_bound` judges. Absent when no
    /// interval fell inside the measurement (and in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_cpu_percent: Option<f64>,
    pub max_lag_ms: f64,
    pub late_sends: u64,
    pub max_rss_mb: f64,
    /// When this agent's load began: its producers' earliest actual send,
    /// minus the run's start instant, ms, as the agent's clock (synced to
    /// the coordinator's, ± `clock_error_us`) read it. Null for an agent
    /// without producers, one whose producers sent nothing, one lost before
    /// its final report (and in older reports).
    #[serde(default)]
    pub start_offset_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    /// Deliveries, duplicates included.
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Repeats after a consumer subscribed again (see the subscriptions').
    #[serde(default)]
    pub redelivered: u64,
    pub reordered: u64,
    /// Received but never acknowledged to the producer (e.g. an ack that timed out).
    pub unacked_received: u64,
}

/// The latency kinds of `groups[].latency`, by role, each with one line
/// saying what it measures (the console, the HTML and the docs use these
/// names and lines).
pub const LATENCY_KINDS: [(&str, &str, &str); 5] = [
    ("producer", "publish_response", "publish: from the intended send time to the broker's ack (response time)"),
    ("producer", "publish_service", "publish: from the actual send to the broker's ack (service time)"),
    ("consumer", "e2e_service", "end to end: from the actual send to the consumer's receipt"),
    ("consumer", "e2e_response", "end to end: from the intended send time to the consumer's receipt"),
    ("consumer", "ack", "consumer ack: from the call to acknowledge to its completion"),
];

/// A latency distribution in microseconds. The named percentiles are
/// always there (scripts read them), whatever the scenario's list;
/// `percentiles` holds the reported list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    /// Absent in version-1 reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
    /// The report's `percentiles`, keyed by label: `{"p50": 812.0,
    /// "p99.99": 4100.0}` (the label is `p` and the percent, shortest
    /// form). Absent in version-1 reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub percentiles: BTreeMap<String, f64>,
}

impl Latency {
    /// Percentile `p`: a named field (the same figure `percentiles` holds
    /// in a version-2 report), else from `percentiles`; None when the
    /// report does not carry it (e.g. p95 in a version-1 report).
    pub fn at(&self, p: Percentile) -> Option<f64> {
        match p {
            Percentile::P50 => Some(self.p50),
            Percentile::P90 => Some(self.p90),
            Percentile::P95 => self.p95,
            Percentile::P99 => Some(self.p99),
            Percentile::P999 => Some(self.p999),
            _ => None,
        }
        .or_else(|| self.percentiles.get(&p.label()).copied())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    /// "producer" or "consumer".
    pub role: String,
    pub topic: String,
    pub subscription: Option<String>,
    pub subscription_type: Option<String>,
    pub instances: u32,
    /// Measurement phase: acknowledged (producers) or received (consumers).
    pub messages: u64,
    pub bytes: u64,
    pub rate_msgs_per_s: f64,
    pub rate_bytes_per_s: f64,
    /// Producers: the scenario's rate for the group.
    pub target_rate_msgs_per_s: Option<f64>,
    pub send_errors: u64,
    pub warmup_messages: u64,
    /// Producers: publish latency from the intended send time (response time).
    /// Consumers: end-to-end latency from the actual send time. Kept for
    /// older readers: `latency` names each kind.
    pub latency_us: Latency,
    /// Producers: publish latency from the actual send (service time).
    /// Consumers: end-to-end latency from the intended send time. Kept for
    /// older readers: `latency` names each kind.
    pub alt_latency_us: Latency,
    /// Every latency of the group by kind ([`LATENCY_KINDS`]: producers
    /// `publish_response` and `publish_service`; consumers `e2e_service`,
    /// `e2e_response` and `ack`), microseconds, measurement phase. `ack`
    /// only where the driver's client reports when an ack is done (see
    /// `ack_latency_not_measured`). Absent in older reports.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub latency: std::collections::BTreeMap<String, Latency>,
    /// Consumers: why `latency.ack` is absent — the broker's client does not
    /// report when an ack is done, so there is no figure to give. Absent
    /// where ack latency is measured (and for producers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_latency_not_measured: Option<String>,
    pub late_sends: u64,
    pub max_lag_ms: f64,
    /// Producers: scheduled sends that had not gone out when sending ended
    /// (the schedule was more than the generator or broker could do).
    #[serde(default)]
    pub unsent: u64,
    /// Producers: the share of the measurement (percent of producers ×
    /// its duration) the producers spent due to send (at or behind their
    /// schedule) but held back: `max_in_flight` sends awaiting acks, or the
    /// client not taking the send (backpressure). Near 100: the broker's
    /// acks paced the producers; near 0: they were never short of room.
    /// Absent for consumers (and in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_wait_percent: Option<f64>,
    /// Producers with `rate: max`: closed loop, no schedule and no target;
    /// response-time SLOs and `min_rate_ratio` do not apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_loop: bool,
    pub duplicates: u64,
    pub reordered: u64,
    pub redelivered: u64,
    /// Consumer groups whose end-to-end samples cross agent processes (a
    /// producer's clock stamps, a consumer's reads): each sample is good to
    /// within this many microseconds (the two agents' clock error bounds,
    /// RTT/2 each, worst pair). Null when every sample stays in one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_clock_error_us: Option<f64>,
    /// Whole run: send, receive and ack errors by kind (`send: timeout`,
    /// `receive: disconnected`, `send: broker NAMEError`, ...), adding up
    /// to the group's errors; absent when there were none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub errors_by_kind: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionReport {
    pub topic: String,
    pub subscription: String,
    #[serde(rename = "type")]
    pub sub_type: String,
    pub consumers: u32,
    /// Messages the topic's producers had acknowledged.
    pub expected: u64,
    /// Distinct messages received.
    pub received_unique: u64,
    pub deliveries: u64,
    pub lost: u64,
    /// Deliveries of a message the subscription had already received, not
    /// explained by a consumer subscribing again.
    pub duplicated: u64,
    /// Deliveries of a message the subscription had already received, after
    /// a consumer subscribed again (the broker restarted or the connection
    /// was lost, and redelivered what it had no ack for): at-least-once
    /// doing its job, counted apart from duplicates.
    /// deliveries = received_unique + duplicated + redelivered.
    #[serde(default)]
    pub redelivered: u64,
    pub reordered: u64,
    pub unacked_received: u64,
    pub undecodable: u64,
    /// Deliveries per partition (partitioned topics only).
    #[serde(default)]
    pub partition_deliveries: std::collections::BTreeMap<u32, u64>,
    /// First missing ranges, as "producer:start-end".
    pub missing_sample: Vec<String>,
    /// true when the subscription stopped receiving while producers were
    /// still sending (nothing new in the last two intervals before they
    /// stopped, nor during the drain) and messages are missing.
    pub stalled: bool,
    /// The backlog over the run (what the topic's producers had
    /// acknowledged minus what this subscription had taken, at each
    /// interval end): its peak, how fast it grew and drained.
    #[serde(default)]
    pub backlog: BacklogReport,
    /// Who received what: one row per consumer instance on an agent that
    /// sent its final report (also those that received nothing), by name.
    /// Empty: not known (no agent reported per consumer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_consumer: Vec<ConsumerShare>,
    /// How unevenly the deliveries spread over the consumers:
    /// (max − min) / mean of `by_consumer[].deliveries`, in percent (0: all
    /// equal; 100: the spread is as large as the mean). Judged by
    /// `slo.max_consumer_imbalance`. Shared and key_shared subscriptions
    /// only (in exclusive and failover one consumer receives by design);
    /// absent there, and when fewer than two consumers reported or nothing
    /// was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_imbalance_percent: Option<f64>,
    /// Exclusive and failover subscriptions: when the receiving consumer
    /// changed (per partition), and whether two received at once. Absent
    /// for shared and key_shared, and when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switches: Option<Switches>,
    /// key_shared subscriptions: keys that two consumers received at
    /// overlapping times. Absent for other types, and when not known (no
    /// consumer reported a key: the producers sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_overlaps: Option<KeyOverlaps>,
}

/// One consumer instance's part of a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerShare {
    /// `agent/group#index`: the agent's id, the consumer group and the
    /// instance's index in the group (stable across runs of one plan).
    pub name: String,
    /// The agent's id.
    pub agent: String,
    /// Messages it received, repeats included.
    pub deliveries: u64,
    /// Distinct messages it received.
    pub unique: u64,
    /// Its deliveries as a percentage of the subscription's (summed over
    /// the consumers listed).
    pub share_percent: f64,
}

/// What each consumer keeps of its activity for the who-received-what
/// checks ([`Switches`], [`KeyOverlaps`]): spans per partition. The agent
/// keeps no more; the report's notes name these caps when one was reached.
pub const ACTIVITY_MAX_SPANS: usize = 1_000;
/// ... distinct keys per consumer,
pub const ACTIVITY_MAX_KEYS: usize = 10_000;
/// ... and spans per key of one consumer.
pub const ACTIVITY_MAX_KEY_SPANS: usize = 16;

/// When the receiving consumer of an exclusive or failover subscription
/// changed. Activity is known in spans: runs of receipts with no gap
/// longer than 1 s; a switch is a span of one consumer starting after
/// another consumer's span on the same partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Switches {
    /// How many times the receiving consumer changed (all partitions).
    pub count: u64,
    /// The first 50, in time order.
    pub list: Vec<Switch>,
    /// Seconds during which two or more consumers received from the same
    /// partition at once (overlaps of their spans beyond 250 ms each): more
    /// than one active consumer. 0 is what exclusive and failover promise.
    pub concurrent_s: f64,
    /// A consumer's span list reached its cap ([`ACTIVITY_MAX_SPANS`] per
    /// partition): later switches of it are not seen.
    #[serde(default)]
    pub cut_short: bool,
}

/// One change of the receiving consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    /// When the new consumer began receiving, seconds from the start.
    pub at_s: f64,
    /// The consumer that received before (its `by_consumer[].name`).
    pub from: String,
    pub to: String,
    /// The partition; absent for a non-partitioned topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// Keys of a key_shared subscription on two consumers at once: both
/// received the key within overlapping spans (runs of receipts of that key
/// with no gap longer than 1 s; keys received less often than once a
/// second show as points, so only overlaps closer than that are seen).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyOverlaps {
    /// Keys received by two consumers at overlapping times.
    pub count: u64,
    /// Distinct keys checked.
    pub keys_checked: u64,
    /// Up to ten, as "key K: A and B at T s".
    pub sample: Vec<String>,
    /// Receipts left out of the check by its caps ([`ACTIVITY_MAX_KEYS`] keys
    /// and [`ACTIVITY_MAX_KEY_SPANS`] spans per key per consumer): when not
    /// 0, the check was cut short.
    pub untracked_receipts: u64,
}

/// A subscription's backlog: peak, growth to it and drain after it. "Low"
/// is 5 % of the peak; the per-interval values are in `intervals[].backlog`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BacklogReport {
    /// Highest backlog at an interval end, messages, and when (seconds
    /// from the start).
    pub max: u64,
    pub max_at_s: f64,
    /// Mean growth rate to the peak, from the last interval end before it
    /// where the backlog was low.
    pub growth_msgs_per_s: f64,
    /// Mean drain rate from the peak to the first interval end after it
    /// where the backlog was low (or to the last interval).
    pub drain_msgs_per_s: f64,
    /// Seconds from the peak until the backlog was low again; null: not
    /// drained by the last interval.
    pub drained_after_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloCheck {
    pub name: String,
    pub limit: String,
    pub actual: String,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramRecord {
    pub group: String,
    pub role: String,
    /// "publish_response", "publish_service", "e2e" (the group's
    /// `latency.e2e_service`), "e2e_response", "ack" (consumers whose
    /// driver times acks).
    pub kind: String,
    pub unit: String,
    pub encoding: String,
    pub data: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalRow {
    pub index: u64,
    /// Seconds from the start instant to the end of the interval.
    pub t_s: f64,
    pub phase: String,
    pub group: String,
    pub role: String,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub received: u64,
    /// Consumer rows: the subscription's backlog at the interval's end.
    #[serde(default)]
    pub backlog: u64,
    pub rate_msgs_per_s: f64,
    pub p50_us: f64,
    /// Absent in version-1 reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_us: Option<f64>,
    pub p99_us: f64,
    pub p999_us: f64,
    /// The report's `percentiles` in the interval, keyed by label (`p99.9`),
    /// µs; absent in version-1 reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub percentiles_us: BTreeMap<String, f64>,
    pub max_lag_ms: f64,
    /// Agents whose report for this interval arrived.
    pub agents_reporting: u32,
    /// Consumer rows: the 99th percentile of the interval's ack latency
    /// (`latency.ack`); absent where acks are not timed, on producer rows
    /// and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_p99_us: Option<f64>,
    /// Producer rows: the share of the interval the group's producers were
    /// due to send but held for room in flight (percent of the group's
    /// `count` × the interval; as `groups[].in_flight_wait_percent`, but
    /// per interval). Absent on consumer rows and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_wait_percent: Option<f64>,
    /// Consumer rows: failed receives or acknowledgements in the interval
    /// (0 in older reports).
    #[serde(default)]
    pub receive_errors: u64,
    /// Consumer rows: deliveries of messages already received.
    #[serde(default)]
    pub duplicates: u64,
    /// Consumer rows: deliveries the broker marked as redelivered.
    #[serde(default)]
    pub redelivered: u64,
    /// The interval's errors by kind; absent when there were none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Consumer rows: acknowledged messages sent in this interval that the
    /// group's subscription never received (its `lost`, by when the
    /// producer sent them; 0 in older reports and for subscriptions whose
    /// loss was not judged).
    #[serde(default)]
    pub lost: u64,
}

/// A span of the run in which agents met send or receive errors (a broker
/// restarted or unreachable, its port blocked, a link cut), found from the
/// interval rows: each error is counted in the interval it happened in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// Seconds from the start instant: the start of the first interval
    /// with errors and the end of the last (interval resolution).
    pub from_s: f64,
    pub to_s: f64,
    /// The groups that met errors ("producer NAME", "consumer NAME").
    pub groups: Vec<String>,
    pub send_errors: u64,
    pub receive_errors: u64,
    /// A constant-rate producer group acknowledged under a tenth of its
    /// target in the window (sends waited: an outage, not an overload).
    pub stalled: bool,
    /// From the window's start until the SLOs held again (or the run's
    /// end): deliveries of messages already received, and deliveries the
    /// broker marked as redelivered.
    pub duplicates: u64,
    pub redelivered: u64,
    /// Acknowledged messages sent from the window's start until the SLOs
    /// held again (to the window's end when they did not) that a
    /// subscription never received, summed over the subscriptions (as
    /// `intervals[].lost`; 0 in older reports).
    #[serde(default)]
    pub lost: u64,
    /// The start of the first interval after the window, before the drain, in which every
    /// group met the scenario's latency and rate SLOs again, with no error;
    /// None: not before the run ended.
    pub slo_held_again_s: Option<f64>,
    /// `slo_held_again_s - to_s`.
    pub recovery_s: Option<f64>,
}

impl IntervalRow {
    /// Percentile `p` of the interval: a named field, else from
    /// `percentiles_us`; None when the row does not carry it (p90 or p95
    /// of a version-1 row).
    pub fn at(&self, p: Percentile) -> Option<f64> {
        match p {
            Percentile::P50 => Some(self.p50_us),
            Percentile::P95 => self.p95_us,
            Percentile::P99 => Some(self.p99_us),
            Percentile::P999 => Some(self.p999_us),
            _ => None,
        }
        .or_else(|| self.percentiles_us.get(&p.label()).copied())
    }
}

impl Report {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// The percentiles this report carries: `percentiles`, or a version-1
    /// report's p50, p90, p99 and p99.9.
    pub fn reported_percentiles(&self) -> Vec<Percentile> {
        if self.percentiles.is_empty() {
            percentile::V1.to_vec()
        } else {
            self.percentiles.clone()
        }
    }

    /// The earliest and the latest `agents[].start_offset_ms`, and how many
    /// agents have one; None when none has.
    pub fn start_offsets(&self) -> Option<(f64, f64, usize)> {
        let mut offsets = self.agents.iter().filter_map(|a| a.start_offset_ms);
        let first = offsets.next()?;
        Some(offsets.fold((first, first, 1), |(lo, hi, n), o| (lo.min(o), hi.max(o), n + 1)))
    }
}
