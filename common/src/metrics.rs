//! Prometheus: the exposition of agent and coordinator metrics, encoded by
//! the `prometheus-client` crate (OpenMetrics text), and a small `/metrics`
//! HTTP server on axum, which tonic already brings into the build. Used by
//! the agent (`agent --metrics ADDR`) and the coordinator (`coordinator run
//! --metrics ADDR`).
//!
//! The families are computed from the run's state at each scrape (merged
//! intervals, per-group counters), so they are handed to the crate as one
//! [`Collector`] that [`Exposition`] fills: `family` then its samples.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::hist::Hist;
use crate::percentile::Percentile;
use crate::scenario::Scenario;
use crate::stats::{GroupPhases, PhaseStats};

/// The content type of the exposition (OpenMetrics text 1.0.0, which
/// Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Real(f64),
    /// Exact, where a float would round above 2^53.
    Whole(u64),
}

#[derive(Debug)]
struct Family {
    /// As exported: counters end in `_total`.
    name: String,
    kind: Kind,
    help: String,
    samples: Vec<(Vec<(String, String)>, Value)>,
}

/// Builds one exposition: `family` (HELP and TYPE once per name) and then
/// its samples; [`Exposition::finish`] encodes it.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a metric family. Counter names end in `_total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.families.push(Family { name: name.into(), kind, help: help.into(), samples: Vec::new() });
    }

    /// One sample of the family started last (`name` is that family's).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, labels, Value::Real(value));
    }

    /// One integer sample (exact, where a float would round above 2^53).
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.push(name, labels, Value::Whole(value));
    }

    fn push(&mut self, name: &str, labels: &[(&str, &str)], value: Value) {
        if self.families.last().is_none_or(|f| f.name != name) {
            // A sample without its family: a gauge with no help.
            self.family(name, Kind::Gauge, "");
        }
        // The crate writes label values as given: escape them here.
        let labels = labels.iter().map(|(k, v)| (k.to_string(), escape_label(v))).collect();
        if let Some(f) = self.families.last_mut() {
            f.samples.push((labels, value));
        }
    }

    /// The OpenMetrics text, ending in `# EOF`.
    pub fn finish(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families(self.families)));
        let mut out = String::new();
        // Writing into a String cannot fail; a family the crate refuses
        // would end the text early, which the tests would see.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The families of one scrape, as a collector the crate encodes.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            // The crate adds `_total` to a counter's samples itself.
            let (name, metric_type) = match f.kind {
                Kind::Counter => (f.name.strip_suffix("_total").unwrap_or(&f.name), MetricType::Counter),
                Kind::Gauge => (f.name.as_str(), MetricType::Gauge),
            };
            let help = escape_help(&f.help);
            let mut metric = encoder.encode_descriptor(name, &help, None, metric_type)?;
            match f.samples.as_slice() {
                // One sample without labels: `name value`, not `name{} value`.
                [(labels, value)] if labels.is_empty() => encode_value(f.kind, *value, metric)?,
                samples => {
                    for (labels, value) in samples {
                        encode_value(f.kind, *value, metric.encode_family(labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_value(kind: Kind, value: Value, to: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result {
    match (kind, value) {
        (Kind::Counter, Value::Whole(n)) => ConstCounter::new(n).encode(to),
        (Kind::Counter, Value::Real(x)) => ConstCounter::new(x).encode(to),
        (Kind::Gauge, Value::Whole(n)) => ConstGauge::new(n).encode(to),
        (Kind::Gauge, Value::Real(x)) => ConstGauge::new(x).encode(to),
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

// ------------------------------------------------------------------ groups

/// Producer or consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Producer,
    Consumer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }

    pub fn of_proto(role: i32) -> Role {
        if role == crate::proto::Role::Producer as i32 {
            Role::Producer
        } else {
            Role::Consumer
        }
    }
}

/// The labels of one group's series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub role: Role,
    pub group: String,
    pub topic: String,
    /// Consumers: the subscription; producers: empty (and not a label).
    pub subscription: String,
}

impl GroupKey {
    /// The key of producer group `index` or consumer group `index` of `sc`.
    pub fn of(sc: &Scenario, role: Role, index: usize) -> Option<GroupKey> {
        match role {
            Role::Producer => sc.producers.get(index).map(|g| GroupKey {
                role,
                group: g.name.clone(),
                topic: g.topic.clone(),
                subscription: String::new(),
            }),
            Role::Consumer => sc.consumers.get(index).map(|g| GroupKey {
                role,
                group: g.name.clone(),
                topic: g.topic.clone(),
                subscription: g.subscription.clone(),
            }),
        }
    }

    fn labels(&self) -> Vec<(&str, &str)> {
        let mut l = vec![("group", self.group.as_str()), ("topic", self.topic.as_str()), ("role", self.role.as_str())];
        if self.role == Role::Consumer {
            l.push(("subscription", self.subscription.as_str()));
        }
        l
    }
}

/// Whole-run counters of one group (warmup and measurement together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupCounters {
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub late_sends: u64,
    pub received: u64,
    pub bytes: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub redelivered: u64,
    pub receive_errors: u64,
    /// Producers: time due to send but held for room in flight, summed
    /// over producers (ns).
    pub in_flight_wait_ns: u64,
}

impl GroupCounters {
    pub fn add(&mut self, p: &PhaseStats) {
        self.sent += p.sent;
        self.acked += p.acked;
        self.send_errors += p.send_errors;
        self.late_sends += p.late_sends;
        self.received += p.received;
        self.bytes += p.bytes;
        self.duplicates += p.duplicates;
        self.reordered += p.reordered;
        self.redelivered += p.redelivered;
        self.receive_errors += p.receive_errors;
        self.in_flight_wait_ns += p.window_wait_ns;
    }

    /// Adds the counters of a wire group without decoding its histograms.
    pub fn add_proto(&mut self, g: &crate::proto::GroupStats) {
        for p in [&g.warmup, &g.measure].into_iter().flatten() {
            self.add(&PhaseStats::counters_of(p));
        }
    }
}

/// One group in the last complete interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalGauges {
    /// Producers: acknowledged messages per second; consumers: received.
    pub rate: f64,
    /// Latency quantiles in seconds by `quantile` label (`0.999`), the
    /// scenario's `report.percentiles` (producers: publish response time,
    /// from the intended send; consumers: end to end); empty without
    /// samples.
    pub latency_s: Vec<(String, f64)>,
    /// Consumers: ack latency quantiles in seconds, the same way (from the
    /// ack call to its completion); empty without samples, as on a client
    /// that only queues acks.
    pub ack_latency_s: Vec<(String, f64)>,
    /// Producers: the largest schedule lag, seconds.
    pub max_lag_s: f64,
}

impl IntervalGauges {
    /// From one interval's stats of a group (both phases), `secs` long,
    /// with the quantiles of `percentiles`.
    pub fn of(role: Role, s: &GroupPhases, secs: f64, percentiles: &[Percentile]) -> IntervalGauges {
        let secs = secs.max(1e-9);
        let (w, m) = (&s.warmup, &s.measure);
        let (count, latency_s, ack_latency_s) = match role {
            Role::Producer => (w.acked + m.acked, quantiles(&w.response, &m.response, percentiles), Vec::new()),
            Role::Consumer => (
                w.received + m.received,
                quantiles(&w.service, &m.service, percentiles),
                quantiles(&w.ack, &m.ack, percentiles),
            ),
        };
        let max_lag_ns = w.max_lag_ns.max(m.max_lag_ns);
        IntervalGauges { rate: count as f64 / secs, latency_s, ack_latency_s, max_lag_s: max_lag_ns as f64 / 1e9 }
    }
}

/// The quantiles of two phases' histograms together, in seconds by label;
/// empty without samples.
fn quantiles(warmup: &Hist, measure: &Hist, percentiles: &[Percentile]) -> Vec<(String, f64)> {
    // Merge the two phases' histograms only when both have samples.
    let merged;
    let hist = if warmup.is_empty() {
        measure
    } else if measure.is_empty() {
        warmup
    } else {
        let mut h = warmup.clone();
        h.add(measure);
        merged = h;
        &merged
    };
    if hist.is_empty() {
        return Vec::new();
    }
    percentiles.iter().map(|p| (p.quantile_label(), hist.quantile_ns(p.quantile()) as f64 / 1e9)).collect()
}

/// What /metrics shows of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupMetrics {
    pub counters: GroupCounters,
    /// The last complete interval; None before the first and after the run.
    pub interval: Option<IntervalGauges>,
    /// Producers: the target rate, messages per second.
    pub target_rate: Option<f64>,
}

pub type Groups = BTreeMap<GroupKey, GroupMetrics>;

type Pick = fn(&GroupMetrics) -> Option<f64>;
/// A counter family: name, role, help, and the counter it shows.
type CounterFamily = (&'static str, Role, &'static str, fn(&GroupCounters) -> u64);

/// Writes the per-group families (only those with a series).
pub fn write_groups(e: &mut Exposition, groups: &Groups) {
    write_counters(e, groups);
    write_real_valued(e, groups);
    write_latency(e, groups);
}

fn write_counters(e: &mut Exposition, groups: &Groups) {
    use Role::{Consumer, Producer};
    let counters: [CounterFamily; 10] = [
        ("loadgen_messages_sent_total", Producer, "Messages handed to the broker client.", |c| c.sent),
        ("loadgen_messages_acked_total", Producer, "Messages the broker acknowledged.", |c| c.acked),
        ("loadgen_send_errors_total", Producer, "Sends that failed or timed out.", |c| c.send_errors),
        ("loadgen_publish_bytes_total", Producer, "Payload bytes acknowledged.", |c| c.bytes),
        ("loadgen_late_sends_total", Producer, "Sends that left more than 5 ms after their intended time.", |c| {
            c.late_sends
        }),
        ("loadgen_messages_received_total", Consumer, "Messages received (duplicates included).", |c| c.received),
        ("loadgen_receive_bytes_total", Consumer, "Payload bytes received.", |c| c.bytes),
        ("loadgen_duplicates_total", Consumer, "Deliveries a consumer had already received.", |c| c.duplicates),
        ("loadgen_reordered_total", Consumer, "Messages received after a later one of the same producer.", |c| {
            c.reordered
        }),
        ("loadgen_receive_errors_total", Consumer, "Failed receives or acknowledgements.", |c| c.receive_errors),
    ];
    for (name, role, help, pick) in counters {
        let mut started = false;
        for (k, g) in groups.iter().filter(|(k, _)| k.role == role) {
            if !started {
                e.family(name, Kind::Counter, help);
                started = true;
            }
            e.sample_u64(name, &k.labels(), pick(&g.counters));
        }
    }
}

/// Families of seconds and rates (f64); a counter in seconds among them.
fn write_real_valued(e: &mut Exposition, groups: &Groups) {
    use Role::{Consumer, Producer};
    let real_valued: [(&str, Kind, Role, &str, Pick); 5] = [
        (
            "loadgen_in_flight_wait_seconds_total",
            Kind::Counter,
            Producer,
            "Time producers were due to send but held back for room in flight (max_in_flight sends awaiting acks, \
             or client backpressure), summed over producers.",
            |g| Some(g.counters.in_flight_wait_ns as f64 / 1e9),
        ),
        (
            "loadgen_publish_rate_msgs_per_second",
            Kind::Gauge,
            Producer,
            "Acknowledged messages per second in the last interval.",
            |g| g.interval.as_ref().map(|i| i.rate),
        ),
        ("loadgen_target_publish_rate_msgs_per_second", Kind::Gauge, Producer, "The scenario's target rate.", |g| {
            g.target_rate
        }),
        (
            "loadgen_schedule_lag_seconds",
            Kind::Gauge,
            Producer,
            "Largest send schedule lag in the last interval.",
            |g| g.interval.as_ref().map(|i| i.max_lag_s),
        ),
        (
            "loadgen_receive_rate_msgs_per_second",
            Kind::Gauge,
            Consumer,
            "Received messages per second in the last interval.",
            |g| g.interval.as_ref().map(|i| i.rate),
        ),
    ];
    for (name, kind, role, help, pick) in real_valued {
        let mut started = false;
        for (k, g) in groups.iter().filter(|(k, _)| k.role == role) {
            let Some(v) = pick(g) else { continue };
            if !started {
                e.family(name, kind, help);
                started = true;
            }
            e.sample(name, &k.labels(), v);
        }
    }
}

/// Latency quantiles of the last interval.
fn write_latency(e: &mut Exposition, groups: &Groups) {
    use Role::{Consumer, Producer};
    let latency = [
        (
            "loadgen_publish_latency_seconds",
            Producer,
            "Publish latency quantiles in the last interval, from the intended send time to the acknowledgement.",
        ),
        ("loadgen_e2e_latency_seconds", Consumer, "End-to-end latency quantiles in the last interval."),
        (
            "loadgen_ack_latency_seconds",
            Consumer,
            "Consumer ack latency quantiles in the last interval, from the ack call to its completion (absent where the client only queues acks).",
        ),
    ];
    for (name, role, help) in latency {
        let mut started = false;
        for (k, g) in groups.iter().filter(|(k, _)| k.role == role) {
            let Some(i) = &g.interval else { continue };
            let values = if name == "loadgen_ack_latency_seconds" { &i.ack_latency_s } else { &i.latency_s };
            for (q, v) in values {
                if !started {
                    e.family(name, Kind::Gauge, help);
                    started = true;
                }
                let mut labels = vec![("quantile", q.as_str())];
                labels.extend(k.labels());
                e.sample(name, &labels, *v);
            }
        }
    }
}

/// A mutex that shrugs off poisoning: metrics are plain numbers, and a
/// panicked writer leaves nothing half-done worth refusing a scrape for.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Renders the current exposition; called on every scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, render: Render, shutdown: CancellationToken) -> std::io::Result<()> {
    use axum::http::header;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = render.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render()) }
            }),
        )
        .route("/", get(|| async { "loadgen: metrics at /metrics\n" }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// One parsed sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses the text format (the subset [`Exposition`] writes, Prometheus
/// 0.0.4 or OpenMetrics): for tests
/// and scripts that read a scrape.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: cannot parse `{line}`", n + 1);
        let (head, value) = line.rsplit_once(' ').ok_or_else(bad)?;
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" | "inf" => f64::INFINITY,
            "-Inf" | "-inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad())?,
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').ok_or_else(bad)?;
                (name.to_string(), parse_labels(body).ok_or_else(bad)?)
            }
        };
        out.push(Sample { name, labels, value });
    }
    Ok(out)
}

fn parse_labels(body: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return Some(labels);
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_string(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// Sum of the samples named `name` whose labels include every pair of `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples.iter().filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v))).map(|s| s.value).sum()
}

/// A plain HTTP/1.1 GET of `http://addr/metrics` on a raw TCP stream: for
/// tests and scripts (the server answers with a Content-Length body).
pub async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("scrape failed: {}", head.lines().next().unwrap_or(""))));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let mut e = Exposition::new();
        e.family("loadgen_messages_sent_total", Kind::Counter, "Messages sent.\nTwo lines.");
        e.sample_u64("loadgen_messages_sent_total", &[("group", "a\"b\\c"), ("role", "producer")], 42);
        e.sample_u64("loadgen_messages_sent_total", &[("group", "big"), ("role", "producer")], u64::MAX);
        e.family("loadgen_agents_connected", Kind::Gauge, "Agents.");
        e.sample("loadgen_agents_connected", &[], 2.0);
        e.family("loadgen_x", Kind::Gauge, "A fraction.");
        e.sample("loadgen_x", &[], 0.25);
        e.sample("loadgen_y", &[], f64::NAN);
        let t = e.finish();
        let parsed = parse(&t).expect("parses");
        assert_eq!(parsed[0].name, "loadgen_messages_sent_total", "counters keep their _total samples");
        assert_eq!(parsed[0].label("group"), Some("a\"b\\c"));
        assert_eq!(parsed[0].value, 42.0);
        assert!(
            t.contains("loadgen_messages_sent_total{group=\"big\",role=\"producer\"} 18446744073709551615\n"),
            "{t}"
        );
        assert_eq!(sum(&parsed, "loadgen_messages_sent_total", &[("role", "producer")]), 42.0 + u64::MAX as f64);
        assert!(parsed[4].value.is_nan() && parsed[4].name == "loadgen_y");
        assert!(
            t.starts_with(
                "# HELP loadgen_messages_sent Messages sent.\\nTwo lines.\n\
                 # TYPE loadgen_messages_sent counter\n\
                 loadgen_messages_sent_total{group=\"a\\\"b\\\\c\",role=\"producer\"} 42\n"
            ),
            "{t}"
        );
        assert!(t.contains("# TYPE loadgen_agents_connected gauge\nloadgen_agents_connected 2.0\n"), "{t}");
        assert!(t.ends_with("# EOF\n"), "OpenMetrics ends with EOF: {t}");
    }

    #[test]
    fn interval_quantiles_are_the_listed_percentiles() {
        let mut s = GroupPhases::default();
        for ms in 1..=10_000 {
            s.measure.service.record_ns(ms * 1_000_000);
        }
        s.measure.received = 10_000;
        let list = [Percentile::P50, Percentile::P95, Percentile::new(99.99).expect("valid")];
        let g = IntervalGauges::of(Role::Consumer, &s, 1.0, &list);
        let labels: Vec<&str> = g.latency_s.iter().map(|(q, _)| q.as_str()).collect();
        assert_eq!(labels, ["0.5", "0.95", "0.9999"]);
        // 1 ms .. 10 s, one sample per millisecond: each quantile its share of 10 s (HDR: 3 digits).
        for ((_, v), want) in g.latency_s.iter().zip([5.0, 9.5, 9.999]) {
            assert!((v - want).abs() / want < 0.002, "{v} vs {want}");
        }
        assert!(IntervalGauges::of(Role::Producer, &s, 1.0, &list).latency_s.is_empty(), "no producer samples");
        assert!(g.ack_latency_s.is_empty(), "no ack timed: no ack series");
        // Ack latency: 2 ms each, its own quantiles and family.
        for _ in 0..100 {
            s.measure.ack.record_ns(2_000_000);
        }
        let g = IntervalGauges::of(Role::Consumer, &s, 1.0, &list);
        assert_eq!(g.ack_latency_s.len(), 3);
        for (_, v) in &g.ack_latency_s {
            assert!((v - 0.002).abs() < 0.00001, "{v}");
        }
        let key = GroupKey { role: Role::Consumer, group: "c".into(), topic: "t".into(), subscription: "s".into() };
        let mut groups = Groups::new();
        groups.insert(key, GroupMetrics { interval: Some(g), ..GroupMetrics::default() });
        let mut e = Exposition::new();
        write_groups(&mut e, &groups);
        let text = e.finish();
        assert!(text.contains("# TYPE loadgen_ack_latency_seconds gauge"), "{text}");
        assert!(text.contains("loadgen_ack_latency_seconds{quantile=\"0.5\",group=\"c\""), "{text}");
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, Arc::new(|| "loadgen_up 1\n".to_string()), shutdown.clone()));
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("application/openmetrics-text; version=1.0.0"), "{text}");
        assert!(text.ends_with("loadgen_up 1\n"), "{text}");
        assert_eq!(scrape(addr).await.expect("scrape"), "loadgen_up 1\n");
        shutdown.cancel();
        server.await.expect("join").expect("server");
    }
}
