//! The scenario: loaded from YAML (`raw`), overridden with `--set`
//! (`overrides`), checked into the model below. Every bad input becomes a
//! [`ScenarioError`] naming the file, line and key, with a hint; never a panic.

pub mod locate;
pub mod overrides;
pub mod raw;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::schedule::GroupPace;
pub use crate::schedule::{Arrivals, LoadShape, Step};
use crate::units::{parse_bytes, parse_duration};
use locate::LineIndex;
pub use overrides::Override;
use raw::*;

/// Largest scenario file read; a scenario is a few KiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most producer plus consumer instances in one scenario.
pub const MAX_INSTANCES: u64 = 100_000;
/// Highest rate of one producer, messages per second.
pub const MAX_RATE_PER_PRODUCER: f64 = 10_000_000.0;
/// Largest message payload.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

// ------------------------------------------------------------------ model

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub broker: Broker,
    pub topics: Vec<Topic>,
    pub producers: Vec<ProducerGroup>,
    pub consumers: Vec<ConsumerGroup>,
    pub phases: Phases,
    pub report_interval: Duration,
    pub placement: Placement,
    pub slo: Slo,
    pub seed: u64,
    pub faults: Vec<Fault>,
    /// What the coordinator does when an agent is lost mid-run.
    #[serde(default)]
    pub on_agent_loss: OnAgentLoss,
    /// `mode: ceiling`: the search settings; `None` for a plain run.
    #[serde(default)]
    pub ceiling: Option<CeilingSpec>,
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
    pub fn as_str(self) -> &'static str {
        match self {
            OnAgentLoss::Abort => "abort",
            OnAgentLoss::Continue => "continue",
        }
    }
}

/// A fault action at a fixed time from the start instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub at: Duration,
    pub action: FaultAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Close consumers 0..count of consumer group `group` (an index).
    StopConsumers { group: usize, count: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    Memory,
    Pulsar,
    Danube,
}

impl BrokerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Memory => "memory",
            BrokerKind::Pulsar => "pulsar",
            BrokerKind::Danube => "danube",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    pub kind: BrokerKind,
    pub url: Option<String>,
    /// Pulsar only: the admin REST API, where the coordinator creates
    /// partitioned topics before Prepare.
    pub admin_url: Option<String>,
    pub connect_timeout: Duration,
    /// Memory broker only: messages per second accepted before publishes queue.
    pub capacity_msgs_per_s: Option<f64>,
    /// Memory broker only: latency added to every publish.
    pub latency: Duration,
    /// Memory broker only: every Nth message acknowledged but not delivered (0: never).
    pub drop_every: u64,
    /// Memory broker only: every Nth message delivered twice (0: never).
    pub duplicate_every: u64,
    /// Memory broker only: deliveries stop after N messages per topic (0: never).
    pub stall_after: u64,
    /// Memory broker only: the most messages a topic holds undelivered
    /// (summed over its subscriptions) before it holds publish acks (0: no limit).
    pub max_backlog: u64,
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
}

/// Where each agent reads the broker token from (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    TokenFile(String),
    TokenEnv(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tls {
    pub ca_file: Option<String>,
    pub allow_insecure: bool,
    pub verify_hostname: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Batching {
    pub max_messages: u32,
    pub max_delay: Duration,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    Individual,
    Cumulative,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
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
    Bytes,
    String,
    Int64,
    /// The JSON Schema text.
    Json(String),
}

/// The JSON Schema registered for `schema: json` without `json_schema`: it
/// admits the documents the Danube driver generates (`{"lg": "<text>"}`).
pub const DEFAULT_JSON_SCHEMA: &str =
    r#"{"type": "object", "properties": {"lg": {"type": "string"}}, "required": ["lg"]}"#;

/// Danube's full topic name: `/namespace/topic`; a short name lives in
/// `default` (`orders` -> `/default/orders`).
pub fn danube_topic_name(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/default/{name}")
    }
}

/// Danube topic names, as its broker checks them: `/namespace/topic` (or a
/// short `topic`), each part ASCII letters, digits, `_` and `-`.
pub fn danube_topic_ok(name: &str) -> Result<(), String> {
    let full = danube_topic_name(name);
    let parts: Vec<&str> = full.split('/').collect();
    if parts.len() != 3 {
        return Err("use a short name (`orders`) or `/namespace/topic`".into());
    }
    for part in &parts[1..] {
        if part.is_empty() {
            return Err("empty path segment".into());
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(format!("character `{c}` is not allowed (letters, digits, `_` and `-` only)"));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerGroup {
    pub name: String,
    pub topic: String,
    pub count: u32,
    /// Group rate in milli-messages per second (exact integer split over producers).
    pub total_rate_milli: u64,
    pub message_size: SizeDist,
    pub keys: KeyPattern,
    pub max_in_flight: u32,
    pub send_timeout: Duration,
    pub payload: PayloadKind,
    pub batching: Option<Batching>,
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

impl Scenario {
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeDist {
    Fixed(u64),
    Uniform { min: u64, max: u64 },
    Normal { mean: u64, stddev: u64 },
}

impl SizeDist {
    pub fn max(&self) -> u64 {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform { max, .. } => max,
            // Samples are clamped to mean + 4 stddev.
            SizeDist::Normal { mean, stddev } => mean.saturating_add(stddev.saturating_mul(4)),
        }
    }
    pub fn mean(&self) -> u64 {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform { min, max } => (min + max) / 2,
            SizeDist::Normal { mean, .. } => mean,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPattern {
    None,
    RoundRobin { keys: u64 },
    Random { keys: u64 },
    Zipf { keys: u64, exponent: f64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    Random,
    Text,
    /// Every message carries this file's bytes (path on the agent's host).
    File(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubType {
    Exclusive,
    Shared,
    Failover,
    KeyShared,
}

impl SubType {
    pub fn as_str(self) -> &'static str {
        match self {
            SubType::Exclusive => "exclusive",
            SubType::Shared => "shared",
            SubType::Failover => "failover",
            SubType::KeyShared => "key_shared",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerGroup {
    pub name: String,
    pub topic: String,
    pub subscription: String,
    pub sub_type: SubType,
    pub count: u32,
    pub receiver_queue: u32,
    pub ack: AckMode,
    pub ack_every: u32,
    /// Windows (offsets from the start instant) in which the group's
    /// consumers take nothing: a late start, a pause. Sorted, disjoint.
    #[serde(default)]
    pub pauses: Vec<Pause>,
}

/// `[from, until)` as offsets from the start instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: Duration,
    pub until: Duration,
}

impl Pause {
    /// The end of the pause in `pauses` that `offset` (from the start
    /// instant) falls in.
    pub fn until_after(pauses: &[Pause], offset: Duration) -> Option<Duration> {
        pauses.iter().find(|p| p.from <= offset && offset < p.until).map(|p| p.until)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub warmup: Duration,
    pub duration: Duration,
    pub cooldown: Duration,
    pub drain_timeout: Duration,
}

impl Phases {
    /// Producers send from 0 until this offset from the start instant.
    pub fn send_end(&self) -> Duration {
        self.warmup + self.duration
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Spread,
    Split,
}

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
    pub max_loss: Option<u64>,
    pub max_duplicates: Option<u64>,
    pub min_rate_ratio: Option<f64>,
    pub max_send_errors: Option<u64>,
}

impl Scenario {
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }
    /// When a fault action stops consumer `index` of consumer group `group`.
    /// The end of the pause `offset` (from the start instant) falls in, for
    /// consumer group `group`.
    pub fn consumer_paused_until(&self, group: usize, offset: Duration) -> Option<Duration> {
        Pause::until_after(&self.consumers.get(group)?.pauses, offset)
    }

    pub fn consumer_stop_after(&self, group: usize, index: u32) -> Option<Duration> {
        self.faults
            .iter()
            .filter_map(|f| match f.action {
                FaultAction::StopConsumers { group: g, count } if g == group && index < count => Some(f.at),
                _ => None,
            })
            .min()
    }

    pub fn total_instances(&self) -> u64 {
        self.producers.iter().map(|p| u64::from(p.count)).sum::<u64>()
            + self.consumers.iter().map(|c| u64::from(c.count)).sum::<u64>()
    }
}

// ------------------------------------------------------------------ errors

/// One problem with a scenario, at a place in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Dotted key path (`producers[1].rate`); empty for the whole file.
    pub key: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// true when the key was set with `--set` rather than in the file.
    pub from_set: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found in one scenario; `Display` prints one line each as
/// `file:line:col: key: message` with an indented hint.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub source: String,
    pub issues: Vec<Issue>,
}

impl std::error::Error for ScenarioError {}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, is) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source)?;
            if is.from_set {
                write!(f, ": --set {}", is.key)?;
            } else {
                if let Some(l) = is.line {
                    write!(f, ":{l}")?;
                    if let Some(c) = is.column {
                        write!(f, ":{c}")?;
                    }
                }
                if !is.key.is_empty() {
                    write!(f, ": {}", is.key)?;
                }
            }
            write!(f, ": {}", is.message)?;
            if let Some(h) = &is.hint {
                write!(f, "\n  hint: {h}")?;
            }
        }
        Ok(())
    }
}

impl ScenarioError {
    fn whole(source: &str, message: impl Into<String>, hint: Option<&str>) -> ScenarioError {
        ScenarioError {
            source: source.to_string(),
            issues: vec![Issue {
                key: String::new(),
                line: None,
                column: None,
                from_set: false,
                message: message.into(),
                hint: hint.map(str::to_string),
            }],
        }
    }
}

// ------------------------------------------------------------------ loading

/// Reads and validates a scenario file, applying `overrides` first.
pub fn load_file(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let source = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| ScenarioError::whole(&source, format!("cannot read: {e}"), Some("check the path")))?;
    if meta.is_dir() {
        return Err(ScenarioError::whole(&source, "is a directory, not a scenario file", None));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(
            &source,
            format!("file is {} bytes; a scenario is at most {} bytes", meta.len(), MAX_FILE_BYTES),
            Some("is this the right file?"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| ScenarioError::whole(&source, format!("cannot read: {e}"), None))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(&source, "file grew past the size limit while reading", None));
    }
    let text = decode_text(&source, &bytes)?;
    load_str(&text, &source, overrides)
}

fn decode_text(source: &str, bytes: &[u8]) -> Result<String, ScenarioError> {
    if bytes.contains(&0) {
        return Err(ScenarioError::whole(
            source,
            "is a binary file, not YAML text",
            Some("a scenario is a YAML text file; see `coordinator init`"),
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        ScenarioError::whole(
            source,
            format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            Some("save the file as UTF-8"),
        )
    })
}

/// Validates scenario text; `source` names it in errors.
pub fn load_str(text: &str, source: &str, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(source, "scenario text is too large", None));
    }
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(ScenarioError::whole(
            source,
            "is empty",
            Some("write a scenario or start from `coordinator init`"),
        ));
    }
    if let Err((line, msg)) = check_nesting(text) {
        return Err(ScenarioError {
            source: source.to_string(),
            issues: vec![Issue {
                key: String::new(),
                line: Some(line),
                column: None,
                from_set: false,
                message: msg,
                hint: None,
            }],
        });
    }
    let index = LineIndex::build(text);
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (Some(l.line()), Some(l.column()))).unwrap_or((None, None));
        ScenarioError {
            source: source.to_string(),
            issues: vec![Issue {
                key: String::new(),
                line,
                column,
                from_set: false,
                message: format!("not valid YAML: {}", strip_location(&e.to_string())),
                hint: None,
            }],
        }
    })?;
    if !value.is_mapping() {
        return Err(ScenarioError::whole(
            source,
            format!("the top level is {}, not a mapping of keys", kind_of(&value)),
            Some("a scenario starts with keys such as `name:`, `broker:`, `topics:`"),
        ));
    }
    let mut set_paths = Vec::new();
    for o in overrides {
        match o.apply(&mut value) {
            Ok(canon) => set_paths.push(canon),
            Err(msg) => {
                return Err(ScenarioError {
                    source: source.to_string(),
                    issues: vec![Issue {
                        key: o.raw.clone(),
                        line: None,
                        column: None,
                        from_set: true,
                        message: msg,
                        hint: None,
                    }],
                })
            }
        }
    }
    let mut cx = Cx { source, index: &index, set_paths: &set_paths, issues: Vec::new() };
    let raw: RawScenario = match serde_path_to_error::deserialize(value) {
        Ok(r) => r,
        Err(e) => {
            let mut path = e.path().to_string();
            if path == "." {
                path.clear();
            }
            let inner = e.into_inner().to_string();
            let hint = serde_hint(&inner);
            cx.push(&path, inner, hint);
            return Err(cx.finish());
        }
    };
    let scenario = validate(&raw, &mut cx);
    if cx.issues.is_empty() {
        if let Some(s) = scenario {
            return Ok(s);
        }
    }
    Err(cx.finish())
}

/// Refuses nesting deeper than any scenario needs before a parser sees it
/// (parsers recurse; a hostile file must not overflow the stack).
fn check_nesting(text: &str) -> Result<(), (usize, String)> {
    const MAX_FLOW: usize = 64;
    const MAX_INDENT: usize = 128;
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent > MAX_INDENT && quote.is_none() && flow == 0 {
            return Err((n + 1, format!("indented {indent} columns; nesting this deep is not a scenario")));
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '#') => break,
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                (None, '[') | (None, '{') => {
                    flow += 1;
                    if flow > MAX_FLOW {
                        return Err((
                            n + 1,
                            format!("brackets nested more than {MAX_FLOW} deep; this is not a scenario"),
                        ));
                    }
                }
                (None, ']') | (None, '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn serde_hint(msg: &str) -> Option<String> {
    if msg.starts_with("unknown field") {
        Some("check the spelling; `coordinator init` writes a commented template with every key".into())
    } else if msg.starts_with("missing field") {
        Some("this key is required".into())
    } else if msg.contains("invalid type") && msg.contains("expected a string") {
        Some("durations and names are strings, e.g. `30s`".into())
    } else {
        None
    }
}

struct Cx<'a> {
    source: &'a str,
    index: &'a LineIndex,
    set_paths: &'a [String],
    issues: Vec<Issue>,
}

impl Cx<'_> {
    fn push(&mut self, key: &str, message: impl Into<String>, hint: Option<String>) {
        let from_set = self
            .set_paths
            .iter()
            .any(|p| key == p || key.starts_with(&format!("{p}.")) || key.starts_with(&format!("{p}[")));
        let (line, column) = if from_set {
            (None, None)
        } else {
            self.index.find(key).map(|(l, c)| (Some(l), Some(c))).unwrap_or((None, None))
        };
        self.issues.push(Issue { key: key.to_string(), line, column, from_set, message: message.into(), hint });
    }
    fn err(&mut self, key: &str, message: impl Into<String>) {
        self.push(key, message, None);
    }
    fn hint(&mut self, key: &str, message: impl Into<String>, hint: &str) {
        self.push(key, message, Some(hint.to_string()));
    }
    fn finish(mut self) -> ScenarioError {
        self.issues.sort_by_key(|i| (i.line.unwrap_or(usize::MAX), i.column.unwrap_or(0)));
        ScenarioError { source: self.source.to_string(), issues: self.issues }
    }
    fn duration(&mut self, key: &str, v: Option<&Dur>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(&s.0) {
                Ok(d) => d,
                Err(e) => {
                    self.err(key, e);
                    default
                }
            },
        }
    }
    fn opt_duration(&mut self, key: &str, v: Option<&Dur>) -> Option<Duration> {
        v.and_then(|s| match parse_duration(&s.0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(key, e);
                None
            }
        })
    }
}

// ------------------------------------------------------------------ validation

fn validate(raw: &RawScenario, cx: &mut Cx<'_>) -> Option<Scenario> {
    let name = raw.name.trim().to_string();
    if name.is_empty() {
        cx.err("name", "must not be empty");
    } else if name.len() > 128 {
        cx.err("name", "is longer than 128 characters");
    }

    let broker = validate_broker(&raw.broker, cx);
    let broker_kind = broker.as_ref().map(|b| b.kind);

    // Topics.
    let mut topics: Vec<Topic> = Vec::new();
    if raw.topics.is_empty() {
        cx.hint("topics", "no topics", "list at least one topic: `topics: [{name: orders}]`");
    }
    for (i, t) in raw.topics.iter().enumerate() {
        let key = format!("topics[{i}]");
        let tname = t.name.trim();
        if tname.is_empty() {
            cx.err(&format!("{key}.name"), "must not be empty");
        } else if tname.len() > 255 {
            cx.err(&format!("{key}.name"), "is longer than 255 characters");
        } else if tname.chars().any(char::is_whitespace) {
            cx.err(&format!("{key}.name"), format!("`{tname}` contains white space"));
        }
        if broker_kind == Some(BrokerKind::Pulsar) {
            if let Err(why) = pulsar_topic_ok(tname) {
                cx.hint(
                    &format!("{key}.name"),
                    format!("`{tname}` is not a valid Pulsar topic: {why}"),
                    "e.g. `orders` or `persistent://public/default/orders`",
                );
            }
        }
        if broker_kind == Some(BrokerKind::Danube) {
            if let Err(why) = danube_topic_ok(tname) {
                cx.hint(
                    &format!("{key}.name"),
                    format!("`{tname}` is not a valid Danube topic: {why}"),
                    "e.g. `orders` (in namespace default) or `/default/orders`",
                );
            }
        }
        if topics.iter().any(|o| o.name == tname) {
            cx.err(&format!("{key}.name"), format!("topic `{tname}` is listed twice"));
        }
        let schema = validate_topic_schema(cx, &key, t, broker_kind);
        let partitions = match t.partitions {
            None => 0,
            Some(p) if (0..=10_000).contains(&p) => p as u32,
            Some(p) => {
                cx.hint(&format!("{key}.partitions"), format!("{p} is out of range"), "0 (non-partitioned) to 10000");
                0
            }
        };
        topics.push(Topic {
            name: tname.to_string(),
            partitions,
            schema,
            reliable_dispatch: t.reliable_dispatch.unwrap_or(false),
        });
    }

    // Producers.
    let mut producers: Vec<ProducerGroup> = Vec::new();
    let mut instances: u64 = 0;
    if raw.producers.is_empty() {
        cx.hint("producers", "no producer groups", "a run needs at least one producer group");
    }
    for (i, p) in raw.producers.iter().enumerate() {
        let key = format!("producers[{i}]");
        let pname = p.name.trim().to_string();
        if pname.is_empty() {
            cx.err(&format!("{key}.name"), "must not be empty");
        }
        if producers.iter().any(|o| o.name == pname) {
            cx.err(&format!("{key}.name"), format!("producer group `{pname}` is listed twice"));
        }
        check_topic_ref(cx, &topics, &format!("{key}.topic"), &p.topic);
        let count = check_count(cx, &format!("{key}.count"), p.count);
        instances = instances.saturating_add(u64::from(count));
        let (total_rate_milli, load) = validate_rate(cx, &key, p, count);
        let arrivals = match p.arrivals.as_deref().map(str::trim) {
            None | Some("uniform") => Arrivals::Uniform,
            Some("poisson") => Arrivals::Poisson,
            Some(other) => {
                cx.hint(&format!("{key}.arrivals"), format!("unknown arrivals `{other}`"), "`uniform` or `poisson`");
                Arrivals::Uniform
            }
        };
        if load == LoadShape::Max && p.arrivals.is_some() {
            cx.hint(
                &format!("{key}.arrivals"),
                "`rate: max` has no schedule to space out",
                "remove `arrivals`, or give a rate",
            );
        }
        let topic_schema =
            topics.iter().find(|t| t.name == p.topic.trim()).map(|t| t.schema.clone()).unwrap_or_default();
        let mut message_size = match &p.message_size {
            None => SizeDist::Fixed(1024),
            Some(v) => parse_size_dist(cx, &format!("{key}.message_size"), v).unwrap_or(SizeDist::Fixed(0)),
        };
        if topic_schema == TopicSchema::Int64 {
            if p.message_size.is_some() && message_size != SizeDist::Fixed(8) {
                cx.hint(
                    &format!("{key}.message_size"),
                    format!("topic `{}` has schema int64: every payload is 8 bytes", p.topic.trim()),
                    "remove `message_size` (or give 8)",
                );
            }
            message_size = SizeDist::Fixed(8);
        }
        let keys = match &p.keys {
            None => KeyPattern::None,
            Some(v) => parse_keys(cx, &format!("{key}.keys"), v).unwrap_or(KeyPattern::None),
        };
        let max_in_flight = match p.max_in_flight {
            None => 1000,
            Some(n) if (1..=1_000_000).contains(&n) => n as u32,
            Some(n) => {
                cx.hint(&format!("{key}.max_in_flight"), format!("{n} is out of range"), "1 to 1000000");
                1
            }
        };
        let send_timeout =
            cx.duration(&format!("{key}.send_timeout"), p.send_timeout.as_ref(), Duration::from_secs(30));
        if send_timeout.is_zero() {
            cx.err(&format!("{key}.send_timeout"), "must be more than 0s");
        }
        let text_schema = matches!(topic_schema, TopicSchema::String | TopicSchema::Json(_));
        if text_schema && p.payload.as_deref().map(str::trim) == Some("random") {
            cx.hint(
                &format!("{key}.payload"),
                format!("topic `{}` has a string or json schema: payloads must be text", p.topic.trim()),
                "use `payload: text` (the default for such topics) or `file:PATH`",
            );
        }
        let payload = match p.payload.as_deref() {
            None if text_schema => PayloadKind::Text,
            None | Some("random") => PayloadKind::Random,
            Some("text") => PayloadKind::Text,
            Some(f) if f.starts_with("file:") && f.len() > 5 => {
                if p.message_size.is_some() {
                    cx.hint(
                        &format!("{key}.message_size"),
                        "a payload file sets the message size",
                        "drop `message_size`, or use `payload: random|text`",
                    );
                }
                PayloadKind::File(f[5..].trim().to_string())
            }
            Some(other) => {
                cx.hint(&format!("{key}.payload"), format!("unknown payload `{other}`"), "`random`, `text` or `file:PATH` (read on each agent's host; every message carries the whole file, as OpenMessaging Benchmark's payloadFile)");
                PayloadKind::Random
            }
        };
        let batching = p.batching.as_ref().map(|b| {
            let bk = format!("{key}.batching");
            let max_messages = match b.max_messages {
                None => 1000,
                Some(n) if (1..=1_000_000).contains(&n) => n as u32,
                Some(n) => {
                    cx.hint(&format!("{bk}.max_messages"), format!("{n} is out of range"), "1 to 1000000");
                    1
                }
            };
            let max_delay = cx.duration(&format!("{bk}.max_delay"), b.max_delay.as_ref(), Duration::from_millis(10));
            if max_delay.is_zero() {
                cx.hint(
                    &format!("{bk}.max_delay"),
                    "a max delay of 0 means batches never wait to fill",
                    "use e.g. 10ms, or remove `batching` to send unbatched",
                );
            }
            let max_bytes = b.max_bytes.as_ref().and_then(|v| scalar_bytes(cx, &format!("{bk}.max_bytes"), v));
            Batching { max_messages, max_delay, max_bytes }
        });
        let compression = match p.compression.as_deref().map(|c| c.trim().to_ascii_lowercase()) {
            None => Compression::None,
            Some(c) => match c.as_str() {
                "none" => Compression::None,
                "lz4" => Compression::Lz4,
                "zlib" => Compression::Zlib,
                "zstd" => Compression::Zstd,
                "snappy" => Compression::Snappy,
                other => {
                    cx.hint(
                        &format!("{key}.compression"),
                        format!("unknown compression `{other}`"),
                        "none, lz4, zlib, zstd or snappy",
                    );
                    Compression::None
                }
            },
        };
        if let Some(kind) = broker_kind {
            if kind != BrokerKind::Pulsar {
                if p.batching.is_some() {
                    cx.err(&format!("{key}.batching"), format!("applies to the pulsar broker, not {}", kind.as_str()));
                }
                if compression != Compression::None {
                    cx.err(
                        &format!("{key}.compression"),
                        format!("applies to the pulsar broker, not {}", kind.as_str()),
                    );
                }
            }
        }
        let clients = match p.clients {
            None => 1,
            Some(n) if (1..=64).contains(&n) => n as u32,
            Some(n) => {
                cx.hint(&format!("{key}.clients"), format!("{n} is out of range"), "1 to 64");
                1
            }
        };
        if p.clients.is_some() && broker_kind.is_some_and(|k| k != BrokerKind::Danube) {
            cx.err(&format!("{key}.clients"), "applies to the danube broker only");
        }
        producers.push(ProducerGroup {
            name: pname,
            topic: p.topic.trim().to_string(),
            count,
            total_rate_milli,
            message_size,
            keys,
            max_in_flight,
            send_timeout,
            payload,
            batching,
            compression,
            load,
            arrivals,
            clients,
        });
    }

    // Consumers.
    let mut consumers: Vec<ConsumerGroup> = Vec::new();
    for (i, c) in raw.consumers.iter().enumerate() {
        let key = format!("consumers[{i}]");
        let cname = c.name.trim().to_string();
        if cname.is_empty() {
            cx.err(&format!("{key}.name"), "must not be empty");
        }
        if consumers.iter().any(|o| o.name == cname) {
            cx.err(&format!("{key}.name"), format!("consumer group `{cname}` is listed twice"));
        }
        let topic = c.topic.trim().to_string();
        check_topic_ref(cx, &topics, &format!("{key}.topic"), &topic);
        let subscription = c.subscription.as_deref().map(str::trim).unwrap_or(&cname).to_string();
        if subscription.is_empty() {
            cx.err(&format!("{key}.subscription"), "must not be empty");
        }
        if consumers.iter().any(|o| o.topic == topic && o.subscription == subscription) {
            cx.hint(
                &format!("{key}.subscription"),
                format!("subscription `{subscription}` on `{topic}` is used by two consumer groups"),
                "give each group its own subscription, or raise `count` on one group",
            );
        }
        let sub_type = match c.sub_type.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => SubType::Shared,
            Some(s) => match s.replace('-', "_").as_str() {
                "exclusive" => SubType::Exclusive,
                "shared" => SubType::Shared,
                "failover" => SubType::Failover,
                "key_shared" | "keyshared" => SubType::KeyShared,
                other => {
                    cx.hint(
                        &format!("{key}.type"),
                        format!("unknown subscription type `{other}`"),
                        "one of exclusive, shared, failover, key_shared",
                    );
                    SubType::Shared
                }
            },
        };
        let count = check_count(cx, &format!("{key}.count"), c.count);
        instances = instances.saturating_add(u64::from(count));
        if sub_type == SubType::Exclusive && count > 1 {
            cx.hint(
                &format!("{key}.count"),
                format!("an exclusive subscription admits one consumer, not {count}"),
                "use `type: failover` for standbys or `shared` to split the load",
            );
        }
        let receiver_queue = match c.receiver_queue {
            None => 1000,
            Some(n) if (1..=1_000_000).contains(&n) => n as u32,
            Some(n) => {
                cx.hint(&format!("{key}.receiver_queue"), format!("{n} is out of range"), "1 to 1000000");
                1000
            }
        };
        let ack = match c.ack.as_deref().map(str::trim) {
            None | Some("individual") => AckMode::Individual,
            Some("cumulative") => AckMode::Cumulative,
            Some(other) => {
                cx.hint(&format!("{key}.ack"), format!("unknown ack mode `{other}`"), "`individual` or `cumulative`");
                AckMode::Individual
            }
        };
        if ack == AckMode::Cumulative && matches!(sub_type, SubType::Shared | SubType::KeyShared) {
            cx.hint(
                &format!("{key}.ack"),
                format!("cumulative acks are not allowed on a {} subscription", sub_type.as_str()),
                "use `ack: individual`, or an exclusive/failover subscription",
            );
        }
        if broker_kind == Some(BrokerKind::Danube) {
            if ack == AckMode::Cumulative {
                cx.hint(
                    &format!("{key}.ack"),
                    "the Danube client acknowledges each message; it has no cumulative acks",
                    "use `ack: individual` (the default)",
                );
            }
            if c.receiver_queue.is_some() {
                cx.hint(
                    &format!("{key}.receiver_queue"),
                    "applies to the pulsar broker; the Danube client buffers 100 messages per partition",
                    "remove `receiver_queue`",
                );
            }
            if sub_type == SubType::Failover && count == 1 {
                cx.hint(
                    &format!("{key}.count"),
                    "a failover subscription with one consumer has no standby to fail over to",
                    "use `count: 2` or more, or `type: exclusive`",
                );
            }
        }
        let ack_every = match c.ack_every {
            None => 1,
            Some(n) if (1..=1_000_000).contains(&n) => n as u32,
            Some(n) => {
                cx.hint(&format!("{key}.ack_every"), format!("{n} is out of range"), "1 to 1000000");
                1
            }
        };
        let pauses = consumer_pauses(cx, &key, c);
        consumers.push(ConsumerGroup {
            name: cname,
            topic,
            subscription,
            sub_type,
            count,
            receiver_queue,
            ack,
            ack_every,
            pauses,
        });
    }
    if instances > MAX_INSTANCES {
        cx.hint(
            "producers",
            format!("{instances} producers and consumers in all; the most this tool runs is {MAX_INSTANCES}"),
            "lower the `count`s; more instances add client overhead, not broker load",
        );
    }
    // KeyShared needs keys from every producer on the topic.
    for (i, c) in consumers.iter().enumerate() {
        if c.sub_type != SubType::KeyShared {
            continue;
        }
        for p in producers.iter().filter(|p| p.topic == c.topic) {
            if p.keys == KeyPattern::None {
                cx.hint(
                    &format!("consumers[{i}].type"),
                    format!("key_shared subscription on `{}`, but producer group `{}` sends no keys", c.topic, p.name),
                    "give the producer group `keys: {round_robin: 100}` (or random/zipf)",
                );
            }
        }
    }

    // Phases.
    let ph = &raw.phases;
    let warmup = cx.duration("phases.warmup", ph.warmup.as_ref(), Duration::ZERO);
    let duration = cx.duration("phases.duration", Some(&ph.duration), Duration::from_secs(1));
    let cooldown = cx.duration("phases.cooldown", ph.cooldown.as_ref(), Duration::ZERO);
    let drain_timeout = cx.duration("phases.drain_timeout", ph.drain_timeout.as_ref(), Duration::from_secs(30));
    let week = Duration::from_secs(7 * 24 * 3600);
    if duration.is_zero() {
        cx.err("phases.duration", "must be more than 0s");
    }
    for (k, d) in [
        ("phases.warmup", warmup),
        ("phases.duration", duration),
        ("phases.cooldown", cooldown),
        ("phases.drain_timeout", drain_timeout),
    ] {
        if d > week {
            cx.err(k, "is longer than 7 days");
        }
    }
    // A pause must end while the run still waits for consumers.
    let last = warmup + duration + cooldown + drain_timeout;
    for (i, c) in consumers.iter().enumerate() {
        for p in &c.pauses {
            if p.until >= last {
                cx.hint(
                    &format!("consumers[{i}]"),
                    format!(
                        "takes nothing until {} from the start, but the run waits for consumers only until {}",
                        crate::units::format_duration(p.until),
                        crate::units::format_duration(last)
                    ),
                    "start the consumers earlier, or raise phases.drain_timeout",
                );
            }
        }
    }
    let report_interval = cx.duration("report_interval", raw.report_interval.as_ref(), Duration::from_secs(1));
    if report_interval < Duration::from_millis(100) || report_interval > Duration::from_secs(3600) {
        cx.hint(
            "report_interval",
            format!("{} is out of range", crate::units::format_duration(report_interval)),
            "100ms to 1h; 1s is typical",
        );
    }

    let placement = match raw.placement.as_deref().map(str::trim) {
        None | Some("spread") => Placement::Spread,
        Some("split") => Placement::Split,
        Some(other) => {
            cx.hint("placement", format!("unknown placement `{other}`"), "`spread` or `split`");
            Placement::Spread
        }
    };

    let on_agent_loss = match raw.on_agent_loss.as_deref().map(str::trim) {
        None | Some("abort") => OnAgentLoss::Abort,
        Some("continue") => OnAgentLoss::Continue,
        Some(other) => {
            cx.hint("on_agent_loss", format!("unknown policy `{other}`"), "`abort` (default) or `continue`");
            OnAgentLoss::Abort
        }
    };

    let slo = validate_slo("slo", raw.slo.as_ref(), cx);
    let ceiling = validate_ceiling(raw, &slo, &producers, cx);
    let mut faults = Vec::new();
    for (i, f) in raw.faults.iter().flatten().enumerate() {
        let key = format!("faults[{i}]");
        let at = cx.duration(&format!("{key}.at"), Some(&f.at), Duration::ZERO);
        if at >= warmup + duration {
            cx.hint(&format!("{key}.at"), "is after the producers stop", "faults happen during warmup + duration");
        }
        match &f.stop_consumers {
            None => cx.hint(&key, "no action", "e.g. `stop_consumers: {group: backup, count: 1}`"),
            Some(sc) => match consumers.iter().position(|c| c.name == sc.group) {
                None => cx.hint(
                    &format!("{key}.stop_consumers.group"),
                    format!("no consumer group `{}`", sc.group),
                    "name one of `consumers`",
                ),
                Some(g) => {
                    let n = consumers[g].count;
                    if sc.count < 1 || sc.count > i64::from(n) {
                        cx.hint(
                            &format!("{key}.stop_consumers.count"),
                            format!("{} is out of range", sc.count),
                            &format!("1 to {n} (the group's count)"),
                        );
                    } else {
                        faults.push(Fault {
                            at,
                            action: FaultAction::StopConsumers { group: g, count: sc.count as u32 },
                        });
                    }
                }
            },
        }
    }

    Some(Scenario {
        name,
        description: raw.description.clone().unwrap_or_default(),
        broker: broker?,
        topics,
        producers,
        consumers,
        phases: Phases { warmup, duration, cooldown, drain_timeout },
        report_interval,
        placement,
        slo,
        seed: raw.seed.unwrap_or(0x5eed),
        faults,
        on_agent_loss,
        ceiling,
    })
}

/// The group rate and load shape of producer group `p` (`key` names it).
/// `start_after` and `pause` of a consumer group as windows in which it
/// takes nothing.
fn consumer_pauses(cx: &mut Cx<'_>, key: &str, c: &RawConsumerGroup) -> Vec<Pause> {
    let mut pauses = Vec::new();
    if let Some(d) = c.start_after.as_ref() {
        let until = cx.duration(&format!("{key}.start_after"), Some(d), Duration::ZERO);
        if !until.is_zero() {
            pauses.push(Pause { from: Duration::ZERO, until });
        }
    }
    if let Some(p) = c.pause.as_ref() {
        let at = cx.duration(&format!("{key}.pause.at"), Some(&p.at), Duration::ZERO);
        let length = cx.duration(&format!("{key}.pause.for"), Some(&p.length), Duration::ZERO);
        if length.is_zero() {
            cx.hint(&format!("{key}.pause.for"), "is 0s", "e.g. `pause: {at: 30s, for: 15s}`");
        } else if pauses.first().is_some_and(|s| at < s.until) {
            cx.hint(
                &format!("{key}.pause.at"),
                "falls before `start_after` ends",
                "pause after the consumers started, or drop one of the two",
            );
        } else {
            pauses.push(Pause { from: at, until: at + length });
        }
    }
    pauses
}

fn validate_rate(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, count: u32) -> (u64, LoadShape) {
    let n = f64::from(count.max(1));
    let rate = match &p.rate {
        None => None,
        Some(Value::String(s)) if s.trim() == "max" => Some(None),
        Some(Value::Number(num)) => match num.as_f64() {
            Some(r) => Some(Some(r)),
            None => {
                cx.err(&format!("{key}.rate"), "is not a number");
                return (0, LoadShape::Constant);
            }
        },
        Some(other) => {
            cx.hint(
                &format!("{key}.rate"),
                format!("`{}` is not a rate", serde_yaml::to_string(other).unwrap_or_default().trim()),
                "messages per second per producer (e.g. `100`), or `max` for a closed loop",
            );
            return (0, LoadShape::Constant);
        }
    };
    let given = [p.rate.is_some(), p.total_rate.is_some(), p.load.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        let k = if p.load.is_some() { "load" } else { "total_rate" };
        cx.hint(
            &format!("{key}.{k}"),
            "give one of `rate`, `total_rate` and `load`",
            "`rate` is per producer, `total_rate` for the whole group, `load` a shape of group rates",
        );
        return (0, LoadShape::Constant);
    }
    if given == 0 {
        cx.hint(key, "no rate", "add `rate: 100` (messages/s per producer), `total_rate: 1000` or `load: {ramp: ...}`");
        return (0, LoadShape::Constant);
    }
    match (rate, p.total_rate, &p.load) {
        (Some(None), _, _) => (0, LoadShape::Max),
        (Some(Some(r)), _, _) => {
            let milli = check_rate(cx, &format!("{key}.rate"), r, 1.0).map(|per| per.saturating_mul(u64::from(count)));
            (milli.unwrap_or(0), LoadShape::Constant)
        }
        (None, Some(r), _) => (check_rate(cx, &format!("{key}.total_rate"), r, n).unwrap_or(0), LoadShape::Constant),
        (None, None, Some(l)) => validate_load(cx, &format!("{key}.load"), l, n),
        (None, None, None) => (0, LoadShape::Constant),
    }
}

/// A rate of a load shape: 0 allowed where `zero_ok` (a pause).
fn shape_rate(cx: &mut Cx<'_>, key: &str, r: f64, n: f64, zero_ok: bool) -> u64 {
    if zero_ok && r == 0.0 {
        return 0;
    }
    check_rate(cx, key, r, n).unwrap_or(0)
}

fn validate_load(cx: &mut Cx<'_>, key: &str, l: &RawLoad, n: f64) -> (u64, LoadShape) {
    let given = [l.ramp.is_some(), l.steps.is_some(), l.spike.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        cx.hint(
            key,
            if given == 0 { "no load shape" } else { "more than one load shape" },
            "exactly one of `ramp: {from, to, over}`, `steps: [{rate, for}, ...]`, `spike: {base, peak, every, for}`",
        );
        return (0, LoadShape::Constant);
    }
    if let Some(r) = &l.ramp {
        let k = format!("{key}.ramp");
        let from = shape_rate(cx, &format!("{k}.from"), r.from, n, true);
        let to = shape_rate(cx, &format!("{k}.to"), r.to, n, true);
        let over = cx.duration(&format!("{k}.over"), Some(&r.over), Duration::from_secs(1));
        if over.is_zero() {
            cx.err(&format!("{k}.over"), "must be more than 0s");
        }
        if from == 0 && to == 0 {
            cx.hint(&k, "both rates are 0", "e.g. `{from: 1000, to: 100000, over: 60s}`");
        }
        return (from.max(to), LoadShape::Ramp { from_milli: from, to_milli: to, over });
    }
    if let Some(steps) = &l.steps {
        let k = format!("{key}.steps");
        if steps.is_empty() {
            cx.hint(&k, "no steps", "e.g. `[{rate: 1000, for: 10s}, {rate: 5000, for: 10s}]`");
        }
        let mut out = Vec::new();
        for (i, st) in steps.iter().enumerate() {
            let rate_milli = shape_rate(cx, &format!("{k}[{i}].rate"), st.rate, n, true);
            let dur = cx.duration(&format!("{k}[{i}].for"), Some(&st.dur), Duration::from_secs(1));
            if dur.is_zero() {
                cx.err(&format!("{k}[{i}].for"), "must be more than 0s");
            }
            out.push(Step { rate_milli, dur });
        }
        let peak = out.iter().map(|s| s.rate_milli).max().unwrap_or(0);
        if !steps.is_empty() && peak == 0 {
            cx.hint(&k, "every step's rate is 0", "give at least one step a rate");
        }
        return (peak, LoadShape::Steps(out));
    }
    if let Some(sp) = &l.spike {
        let k = format!("{key}.spike");
        let base = shape_rate(cx, &format!("{k}.base"), sp.base, n, true);
        let peak = shape_rate(cx, &format!("{k}.peak"), sp.peak, n, false);
        let every = cx.duration(&format!("{k}.every"), Some(&sp.every), Duration::from_secs(1));
        let dur = cx.duration(&format!("{k}.for"), Some(&sp.dur), Duration::from_secs(1));
        if dur.is_zero() || dur >= every {
            cx.hint(&format!("{k}.for"), "must be more than 0s and less than `every`", "e.g. `every: 20s, for: 2s`");
        }
        return (base.max(peak), LoadShape::Spike { base_milli: base, peak_milli: peak, every, dur });
    }
    (0, LoadShape::Constant)
}

fn validate_ceiling(raw: &RawScenario, slo: &Slo, producers: &[ProducerGroup], cx: &mut Cx<'_>) -> Option<CeilingSpec> {
    let on = match raw.mode.as_deref().map(str::trim) {
        None | Some("run") => false,
        Some("ceiling") => true,
        Some(other) => {
            cx.hint("mode", format!("unknown mode `{other}`"), "`run` (default) or `ceiling`");
            false
        }
    };
    if !on {
        if raw.ceiling.is_some() {
            cx.hint("ceiling", "is set but `mode` is not `ceiling`", "add `mode: ceiling`, or remove `ceiling:`");
        }
        return None;
    }
    if producers.iter().any(ProducerGroup::closed_loop) {
        cx.hint("mode", "a ceiling search scales rates; `rate: max` has none", "give every producer group a rate");
    }
    Some(ceiling_spec(raw.ceiling.as_ref().unwrap_or(&RawCeiling::default()), slo, cx))
}

fn ceiling_spec(c: &RawCeiling, slo: &Slo, cx: &mut Cx<'_>) -> CeilingSpec {
    let positive = |cx: &mut Cx<'_>, k: &str, v: Option<f64>, default: f64| match v {
        None => default,
        Some(r) if r.is_finite() && r > 0.0 => r,
        Some(r) => {
            cx.hint(k, format!("{r} is not a positive rate"), "messages per second, e.g. 1000");
            default
        }
    };
    let start = positive(cx, "ceiling.start", c.start, 1000.0);
    let max = positive(cx, "ceiling.max", c.max, 1_000_000.0);
    if max < start {
        cx.hint("ceiling.max", format!("{max} is below `start` ({start})"), "max is the highest total rate tried");
    }
    let step_duration = cx.duration("ceiling.step_duration", c.step_duration.as_ref(), Duration::from_secs(10));
    if step_duration < Duration::from_secs(1) {
        cx.hint("ceiling.step_duration", "is shorter than 1s", "each step needs a few report intervals; e.g. 10s");
    }
    let precision = match c.precision {
        None => 0.05,
        Some(p) if p.is_finite() && p > 0.0 && p < 1.0 => p,
        Some(p) => {
            cx.hint("ceiling.precision", format!("{p} is out of range"), "a fraction such as 0.05");
            0.05
        }
    };
    let mut step_slo = match &c.slo {
        Some(raw) => validate_slo("ceiling.slo", Some(raw), cx),
        None => slo.clone(),
    };
    step_slo.min_rate_ratio = step_slo.min_rate_ratio.or(Some(0.98));
    step_slo.max_loss = step_slo.max_loss.or(Some(0));
    let max_client_cpu = match c.max_client_cpu {
        None => 0.9,
        Some(v) if v.is_finite() && v > 0.0 && v <= 1.0 => v,
        Some(v) => {
            cx.hint("ceiling.max_client_cpu", format!("{v} is out of range"), "a share of the agent's CPUs, e.g. 0.9");
            0.9
        }
    };
    let max_client_lag = cx.duration("ceiling.max_client_lag", c.max_client_lag.as_ref(), Duration::from_millis(100));
    CeilingSpec { start, max, step_duration, precision, slo: step_slo, max_client_cpu, max_client_lag }
}

/// The settings of `--ceiling` on a scenario without `mode: ceiling`.
pub fn default_ceiling(slo: &Slo) -> CeilingSpec {
    let mut step_slo = slo.clone();
    step_slo.min_rate_ratio = step_slo.min_rate_ratio.or(Some(0.98));
    step_slo.max_loss = step_slo.max_loss.or(Some(0));
    CeilingSpec {
        start: 1000.0,
        max: 1_000_000.0,
        step_duration: Duration::from_secs(10),
        precision: 0.05,
        slo: step_slo,
        max_client_cpu: 0.9,
        max_client_lag: Duration::from_millis(100),
    }
}

fn validate_broker(b: &RawBroker, cx: &mut Cx<'_>) -> Option<Broker> {
    let kind = match b.kind.trim().to_ascii_lowercase().as_str() {
        "memory" => BrokerKind::Memory,
        "pulsar" => BrokerKind::Pulsar,
        "danube" => BrokerKind::Danube,
        other => {
            cx.hint("broker.kind", format!("unknown broker kind `{other}`"), "one of memory, pulsar, danube");
            return None;
        }
    };
    let url = b.url.as_ref().map(|u| u.trim().to_string());
    match (kind, url.as_deref()) {
        (BrokerKind::Memory, _) => {}
        (_, None) | (_, Some("")) => {
            let eg = if kind == BrokerKind::Pulsar { "pulsar://127.0.0.1:6650" } else { "http://127.0.0.1:6650" };
            cx.hint(
                "broker.url",
                format!("a {} broker needs a url", kind.as_str()),
                &format!("e.g. `url: {eg}` or `--set broker.url={eg}`"),
            );
        }
        (BrokerKind::Pulsar, Some(u)) => {
            if !(u.starts_with("pulsar://") || u.starts_with("pulsar+ssl://")) {
                cx.hint(
                    "broker.url",
                    format!("`{u}` is not a Pulsar service URL"),
                    "use pulsar://HOST:6650 or pulsar+ssl://HOST:6651",
                );
            }
        }
        (BrokerKind::Danube, Some(u)) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                cx.hint(
                    "broker.url",
                    format!("`{u}` is not a Danube service URL"),
                    "use http://HOST:6650 (or https:// with TLS)",
                );
            }
        }
    }
    let admin_url = b.admin_url.as_ref().map(|u| u.trim().trim_end_matches('/').to_string());
    if let Some(u) = &admin_url {
        if kind != BrokerKind::Pulsar {
            cx.err("broker.admin_url", "applies to the pulsar broker only");
        } else if !matches!(u.split_once("://"), Some(("http" | "https", host)) if !host.is_empty()) {
            cx.hint(
                "broker.admin_url",
                format!("`{u}` is not a Pulsar admin URL"),
                "use http://HOST:8080 (or https://HOST:8443 with broker.tls.ca_file)",
            );
        }
    }
    let connect_timeout = cx.duration("broker.connect_timeout", b.connect_timeout.as_ref(), Duration::from_secs(10));
    if connect_timeout.is_zero() {
        cx.err("broker.connect_timeout", "must be more than 0s");
    }
    let latency = cx.duration("broker.latency", b.latency.as_ref(), Duration::ZERO);
    if kind != BrokerKind::Memory {
        if b.capacity_msgs_per_s.is_some() {
            cx.err("broker.capacity_msgs_per_s", "applies to the memory broker only");
        }
        if b.latency.is_some() {
            cx.err("broker.latency", "applies to the memory broker only");
        }
    }
    if kind != BrokerKind::Memory {
        for (k, v) in [
            ("broker.drop_every", b.drop_every),
            ("broker.duplicate_every", b.duplicate_every),
            ("broker.stall_after", b.stall_after),
            ("broker.max_backlog", b.max_backlog),
        ] {
            if v.is_some() {
                cx.err(k, "applies to the memory broker only");
            }
        }
    }
    let auth = match &b.auth {
        None => None,
        Some(RawAuth { token_file: Some(f), token_env: None }) if !f.trim().is_empty() => {
            Some(Auth::TokenFile(f.trim().to_string()))
        }
        Some(RawAuth { token_file: None, token_env: Some(v) }) if !v.trim().is_empty() => {
            Some(Auth::TokenEnv(v.trim().to_string()))
        }
        Some(_) => {
            cx.hint(
                "broker.auth",
                "give exactly one of `token_file` or `token_env`",
                "secrets stay out of the scenario: `auth: {token_file: /var/run/secrets/broker-token}`",
            );
            None
        }
    };
    let tls = b.tls.as_ref().map(|t| Tls {
        ca_file: t.ca_file.clone(),
        allow_insecure: t.allow_insecure.unwrap_or(false),
        verify_hostname: t.verify_hostname.unwrap_or(true),
    });
    if kind == BrokerKind::Memory && (b.auth.is_some() || b.tls.is_some()) {
        cx.err(if b.auth.is_some() { "broker.auth" } else { "broker.tls" }, "does not apply to the memory broker");
    }
    if latency > Duration::from_secs(60) {
        cx.err("broker.latency", "is more than 60s");
    }
    if let Some(c) = b.capacity_msgs_per_s {
        if !c.is_finite() || c <= 0.0 {
            cx.hint(
                "broker.capacity_msgs_per_s",
                format!("{c} is not a positive rate"),
                "messages per second, e.g. 50000",
            );
        }
    }
    Some(Broker {
        kind,
        url,
        admin_url,
        connect_timeout,
        capacity_msgs_per_s: b.capacity_msgs_per_s,
        drop_every: b.drop_every.unwrap_or(0),
        duplicate_every: b.duplicate_every.unwrap_or(0),
        stall_after: b.stall_after.unwrap_or(0),
        max_backlog: b.max_backlog.unwrap_or(0),
        auth,
        tls,
        latency,
    })
}

/// A topic's Danube options: `schema`, `json_schema`, `reliable_dispatch`
/// (errors for other brokers).
fn validate_topic_schema(cx: &mut Cx<'_>, key: &str, t: &RawTopic, kind: Option<BrokerKind>) -> TopicSchema {
    if kind.is_some_and(|k| k != BrokerKind::Danube) {
        for (k, set) in [
            ("schema", t.schema.is_some()),
            ("json_schema", t.json_schema.is_some()),
            ("reliable_dispatch", t.reliable_dispatch.is_some()),
        ] {
            if set {
                cx.err(&format!("{key}.{k}"), "applies to the danube broker only");
            }
        }
        return TopicSchema::None;
    }
    let schema = match t.schema.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => TopicSchema::None,
        Some(v) => match v.as_str() {
            "bytes" => TopicSchema::Bytes,
            "string" => TopicSchema::String,
            "int64" | "number" => TopicSchema::Int64,
            "json" | "json_schema" => {
                TopicSchema::Json(t.json_schema.clone().unwrap_or_else(|| DEFAULT_JSON_SCHEMA.to_string()))
            }
            other => {
                cx.hint(&format!("{key}.schema"), format!("unknown schema `{other}`"), "bytes, string, int64 or json");
                TopicSchema::None
            }
        },
    };
    match (&schema, &t.json_schema) {
        (TopicSchema::Json(text), Some(_)) => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                cx.hint(
                    &format!("{key}.json_schema"),
                    format!("is not JSON: {e}"),
                    "a JSON Schema document, e.g. `{\"type\": \"object\"}`",
                );
            }
        }
        (_, Some(_)) => {
            cx.hint(&format!("{key}.json_schema"), "applies with `schema: json` only", "add `schema: json`");
        }
        _ => {}
    }
    schema
}

/// Pulsar topic names: a short local name, `tenant/namespace/name`, or the
/// full `persistent://tenant/namespace/name` (or non-persistent://).
pub fn pulsar_topic_ok(name: &str) -> Result<(), String> {
    let rest = match name.split_once("://") {
        Some(("persistent" | "non-persistent", r)) => {
            if r.split('/').count() != 3 {
                return Err("a full name is domain://tenant/namespace/topic".into());
            }
            r
        }
        Some((d, _)) => return Err(format!("unknown domain `{d}`; use persistent or non-persistent")),
        None => {
            let parts = name.split('/').count();
            if parts != 1 && parts != 3 {
                return Err("use a short name or tenant/namespace/topic".into());
            }
            name
        }
    };
    for part in rest.split('/') {
        if part.is_empty() {
            return Err("empty path segment".into());
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_=:.%".contains(*c))) {
            return Err(format!("character `{c}` is not allowed"));
        }
    }
    Ok(())
}

fn check_topic_ref(cx: &mut Cx<'_>, topics: &[Topic], key: &str, topic: &str) {
    if !topics.iter().any(|t| t.name == topic.trim()) {
        let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        cx.hint(key, format!("topic `{topic}` is not in `topics`"), &format!("known topics: {}", known.join(", ")));
    }
}

fn check_count(cx: &mut Cx<'_>, key: &str, count: Option<i64>) -> u32 {
    match count {
        None => 1,
        Some(n) if (1..=MAX_INSTANCES as i64).contains(&n) => n as u32,
        Some(n) if n <= 0 => {
            cx.hint(key, format!("{n} is not a positive count"), "at least 1");
            0
        }
        Some(n) => {
            cx.hint(key, format!("{n} instances are more than this tool runs"), &format!("at most {MAX_INSTANCES}"));
            0
        }
    }
}

/// Validates a rate; `per_instance_div` converts a total to a per-producer rate
/// for the bounds check. Returns milli-messages per second.
fn check_rate(cx: &mut Cx<'_>, key: &str, rate: f64, per_instance_div: f64) -> Option<u64> {
    if !rate.is_finite() || rate <= 0.0 {
        cx.hint(key, format!("{rate} is not a positive rate"), "messages per second, e.g. 100");
        return None;
    }
    let per = rate / per_instance_div;
    if per > MAX_RATE_PER_PRODUCER {
        cx.hint(
            key,
            format!("{per:.0} msg/s per producer is more than one producer can send"),
            &format!("at most {MAX_RATE_PER_PRODUCER:.0} msg/s per producer; raise `count`"),
        );
        return None;
    }
    let milli = (rate * 1000.0).round();
    if per * 1000.0 < 1.0 {
        cx.hint(
            key,
            format!("{per} msg/s per producer is below the resolution of 0.001 msg/s"),
            "raise the rate or lower `count`",
        );
        return None;
    }
    Some(milli as u64)
}

fn scalar_bytes(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            None => {
                cx.hint(key, format!("{n} is not a whole, non-negative number of bytes"), "e.g. 1024 or \"1KiB\"");
                return None;
            }
        },
        Value::String(s) => match parse_bytes(s) {
            Ok(n) => n,
            Err(e) => {
                cx.err(key, e);
                return None;
            }
        },
        other => {
            cx.hint(key, format!("expected a size, found {}", kind_of(other)), "e.g. 1024 or \"1KiB\"");
            return None;
        }
    };
    if n > MAX_MESSAGE_BYTES {
        cx.hint(
            key,
            format!("{n} bytes is more than the {MAX_MESSAGE_BYTES}-byte limit"),
            "brokers cap messages at a few MiB",
        );
        return None;
    }
    Some(n)
}

fn parse_size_dist(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<SizeDist> {
    let Value::Mapping(m) = v else {
        return scalar_bytes(cx, key, v).map(SizeDist::Fixed);
    };
    let hint = "`1024`, `\"1KiB\"`, `{uniform: {min: 100, max: 2000}}` or `{normal: {mean: 1024, stddev: 200}}`";
    if m.len() != 1 {
        cx.hint(key, "expected one distribution", hint);
        return None;
    }
    let (k, inner) = m.iter().next()?;
    let field = |name: &str| inner.get(name).cloned();
    match k.as_str() {
        Some("uniform") => {
            let (Some(min), Some(max)) = (field("min"), field("max")) else {
                cx.hint(&format!("{key}.uniform"), "needs `min` and `max`", hint);
                return None;
            };
            if inner.as_mapping().map(|m| m.len()) != Some(2) {
                cx.hint(&format!("{key}.uniform"), "unexpected keys", "only `min` and `max`");
            }
            let min = scalar_bytes(cx, &format!("{key}.uniform.min"), &min)?;
            let max = scalar_bytes(cx, &format!("{key}.uniform.max"), &max)?;
            if min > max {
                cx.err(&format!("{key}.uniform.min"), format!("min {min} is above max {max}"));
                return None;
            }
            Some(SizeDist::Uniform { min, max })
        }
        Some("normal") => {
            let (Some(mean), Some(sd)) = (field("mean"), field("stddev")) else {
                cx.hint(&format!("{key}.normal"), "needs `mean` and `stddev`", hint);
                return None;
            };
            if inner.as_mapping().map(|m| m.len()) != Some(2) {
                cx.hint(&format!("{key}.normal"), "unexpected keys", "only `mean` and `stddev`");
            }
            let mean = scalar_bytes(cx, &format!("{key}.normal.mean"), &mean)?;
            let stddev = scalar_bytes(cx, &format!("{key}.normal.stddev"), &sd)?;
            if mean.saturating_add(stddev.saturating_mul(4)) > MAX_MESSAGE_BYTES {
                cx.err(key, "mean + 4 stddev is above the message size limit");
                return None;
            }
            Some(SizeDist::Normal { mean, stddev })
        }
        _ => {
            cx.hint(
                key,
                format!("unknown size distribution `{}`", serde_yaml::to_string(k).unwrap_or_default().trim()),
                hint,
            );
            None
        }
    }
}

fn parse_keys(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<KeyPattern> {
    let hint = "`none`, `{round_robin: 100}`, `{random: 100}` or `{zipf: {keys: 100, exponent: 1.1}}`";
    let count = |cx: &mut Cx<'_>, k: &str, v: Option<&Value>| -> Option<u64> {
        match v.and_then(Value::as_u64) {
            Some(n) if (1..=100_000_000).contains(&n) => Some(n),
            _ => {
                cx.hint(k, "expected a number of keys from 1 to 100000000", hint);
                None
            }
        }
    };
    match v {
        Value::String(s) if s == "none" => Some(KeyPattern::None),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next()?;
            match k.as_str() {
                Some("round_robin") => {
                    count(cx, &format!("{key}.round_robin"), Some(inner)).map(|keys| KeyPattern::RoundRobin { keys })
                }
                Some("random") => {
                    count(cx, &format!("{key}.random"), Some(inner)).map(|keys| KeyPattern::Random { keys })
                }
                Some("zipf") => {
                    let keys = count(cx, &format!("{key}.zipf.keys"), inner.get("keys"))?;
                    let exponent = inner.get("exponent").and_then(Value::as_f64).unwrap_or(1.0);
                    if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) {
                        cx.hint(
                            &format!("{key}.zipf.exponent"),
                            format!("{exponent} is out of range"),
                            "above 0 and at most 10; 1.0-1.2 is typical",
                        );
                        return None;
                    }
                    Some(KeyPattern::Zipf { keys, exponent })
                }
                _ => {
                    cx.hint(key, "unknown key pattern", hint);
                    None
                }
            }
        }
        _ => {
            cx.hint(key, "unknown key pattern", hint);
            None
        }
    }
}

fn validate_slo(prefix: &str, raw: Option<&RawSlo>, cx: &mut Cx<'_>) -> Slo {
    let Some(s) = raw else {
        return Slo { max_loss: Some(0), max_send_errors: Some(0), ..Slo::default() };
    };
    let min_rate_ratio = s.min_rate_ratio.filter(|r| {
        let ok = r.is_finite() && *r > 0.0 && *r <= 1.5;
        if !ok {
            cx.hint(&format!("{prefix}.min_rate_ratio"), format!("{r} is out of range"), "a ratio such as 0.98");
        }
        ok
    });
    Slo {
        p50_e2e: cx.opt_duration(&format!("{prefix}.p50_e2e"), s.p50_e2e.as_ref()),
        p90_e2e: cx.opt_duration(&format!("{prefix}.p90_e2e"), s.p90_e2e.as_ref()),
        p99_e2e: cx.opt_duration(&format!("{prefix}.p99_e2e"), s.p99_e2e.as_ref()),
        p999_e2e: cx.opt_duration(&format!("{prefix}.p999_e2e"), s.p999_e2e.as_ref()),
        max_e2e: cx.opt_duration(&format!("{prefix}.max_e2e"), s.max_e2e.as_ref()),
        p50_publish: cx.opt_duration(&format!("{prefix}.p50_publish"), s.p50_publish.as_ref()),
        p99_publish: cx.opt_duration(&format!("{prefix}.p99_publish"), s.p99_publish.as_ref()),
        p999_publish: cx.opt_duration(&format!("{prefix}.p999_publish"), s.p999_publish.as_ref()),
        // Loss is what this tool exists to catch: zero unless said otherwise.
        max_loss: Some(s.max_loss.unwrap_or(0)),
        max_duplicates: s.max_duplicates,
        min_rate_ratio,
        // So is a publish that failed or timed out.
        max_send_errors: Some(s.max_send_errors.unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests;
