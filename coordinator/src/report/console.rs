//! What a person sees while a run runs (the summary at the end is
//! [`super::summary`]). The live output goes to stderr.
//!
//! Three modes: `--quiet` shows nothing; when stderr is a terminal, a live
//! view redrawn in place at every interval (ANSI escapes: cursor up, clear
//! to the end of the screen, line wrap off while drawing so a narrow
//! terminal truncates instead of wrapping); otherwise one plain line per
//! interval. Colour unless `--no-color` or `NO_COLOR` is set.
//!
//! The run loop feeds it through a few calls: [`Console::agents`],
//! [`Console::started`], [`Console::agent_interval`] (every agent report as
//! it arrives), [`Console::interval`] (a merged interval every agent has
//! reported), [`Console::finish`]. The same calls feed `/metrics`.
//!
//! May import `merge` (the merged intervals it shows), `metrics`,
//! `session`, `report::format` and `report::summary` (the verdict).

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use common::metrics::GroupCounters;
use common::plan::Plan;
use common::proto::{self, IntervalReport};
use common::report::Report;
use common::scenario::{ConsumerGroup, ProducerGroup, Scenario};

use crate::merge::{phase_name, IntervalMerge};
use crate::metrics::RunMetrics;
use crate::report::format::{fmt_count, fmt_secs, fmt_us};
use crate::session::AgentSession;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing while running.
    Quiet,
    /// One line per interval (stderr is not a terminal).
    Plain,
    /// A view redrawn in place (stderr is a terminal).
    Live,
}

impl Mode {
    /// `Live` when stderr is a terminal that understands escapes, else `Plain`.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true) {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// Colour unless `--no-color` or the `NO_COLOR` convention says otherwise.
pub fn color_wanted(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub struct Console {
    mode: Mode,
    color: bool,
    scenario: Option<Scenario>,
    metrics: Option<RunMetrics>,
    view: Mutex<View>,
}

#[derive(Default)]
struct View {
    run_id: String,
    agents: Vec<AgentRow>,
    /// Whole-run counters so far, per producer / consumer group index.
    producers: Vec<GroupCounters>,
    consumers: Vec<GroupCounters>,
    /// The live frame now on screen (its lines).
    frame: Vec<String>,
    drawn: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct AgentRow {
    address: String,
    id: String,
    producers: usize,
    consumers: usize,
    status: String,
    last_index: Option<u64>,
}

impl Console {
    /// Plain or quiet, without a scenario (no live view, no metrics).
    pub fn new(quiet: bool) -> Console {
        Console {
            mode: if quiet { Mode::Quiet } else { Mode::Plain },
            color: false,
            scenario: None,
            metrics: None,
            view: Mutex::new(View::default()),
        }
    }

    /// The console of one run: `mode` (see [`Mode::detect`]), colour, and
    /// the metrics to feed, if any.
    pub fn for_run(mode: Mode, color: bool, sc: &Scenario, run_id: &str, metrics: Option<RunMetrics>) -> Console {
        if let Some(m) = &metrics {
            m.begin(sc, run_id);
        }
        let view = View {
            run_id: run_id.into(),
            producers: vec![GroupCounters::default(); sc.producers.len()],
            consumers: vec![GroupCounters::default(); sc.consumers.len()],
            ..View::default()
        };
        Console {
            mode,
            color: color && mode == Mode::Live,
            scenario: Some(sc.clone()),
            metrics,
            view: Mutex::new(view),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        common::metrics::lock(&self.view)
    }

    /// A line of text (above the live view, when there is one).
    pub fn line(&self, s: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _ = writeln!(std::io::stderr(), "{s}");
            }
            Mode::Live => {
                let mut v = self.view();
                let mut out = erase(v.drawn);
                out.push_str(s);
                out.push('\n');
                let frame = v.frame.clone();
                v.drawn = draw(&mut out, &frame);
                let _ = std::io::stderr().write_all(out.as_bytes());
            }
        }
    }

    /// The agents of the run and what each was given.
    pub fn agents(&self, sessions: &[AgentSession], plan: &Plan) {
        let rows: Vec<AgentRow> = sessions
            .iter()
            .zip(&plan.shards)
            .map(|(s, shard)| AgentRow {
                address: s.address.clone(),
                id: s.hello.agent_id.clone(),
                producers: shard.producers.len(),
                consumers: shard.consumers.len(),
                status: "ready?".into(),
                last_index: None,
            })
            .collect();
        if let Some(m) = &self.metrics {
            m.agents(rows.len() as u32);
        }
        self.view().agents = rows;
    }

    /// An agent's status changed ("lost", "error", ...): shown from the next redraw.
    pub fn agent_status(&self, agent: usize, status: &str) {
        if let Some(a) = self.view().agents.get_mut(agent) {
            a.status = status.into();
        }
    }

    /// Start was sent: the live view appears.
    pub fn started(&self) {
        if let Some(m) = &self.metrics {
            m.set_phase(match &self.scenario {
                Some(sc) if sc.phases.warmup.is_zero() => "measure",
                _ => "warmup",
            });
        }
        let Some(sc) = &self.scenario else { return };
        let mut v = self.view();
        for a in &mut v.agents {
            a.status = "ok".into();
        }
        if self.mode == Mode::Live {
            let frame = frame(sc, &v, None, 0.0, self.color);
            let mut out = erase(v.drawn);
            v.drawn = draw(&mut out, &frame);
            v.frame = frame;
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
    }

    /// One agent's interval report as it arrives (before merging).
    pub fn agent_interval(&self, agent: usize, r: &IntervalReport) {
        let mut v = self.view();
        if let Some(a) = v.agents.get_mut(agent) {
            a.last_index = Some(a.last_index.map_or(r.index, |i| i.max(r.index)));
        }
        for g in &r.groups {
            let list = if g.role == proto::Role::Producer as i32 { &mut v.producers } else { &mut v.consumers };
            if let Some(c) = list.get_mut(g.group as usize) {
                c.add_proto(g);
            }
        }
        drop(v);
        if let (Some(m), Some(sc)) = (&self.metrics, &self.scenario) {
            m.agent_interval(sc, r);
        }
    }

    /// A merged interval that every live agent has reported.
    pub fn interval(&self, sc: &Scenario, idx: u64, m: &IntervalMerge, start_ns: i64, agents: u32) {
        let elapsed = (m.end_ns - start_ns) as f64 / 1e9;
        if let Some(metrics) = &self.metrics {
            metrics.interval(sc, m, phase_at(sc, elapsed).0, elapsed, agents);
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.plain_line(sc, idx, m, start_ns, agents),
            Mode::Live => {
                let mut v = self.view();
                for a in &mut v.agents {
                    if a.status == "ok" || a.status == "late" {
                        a.status = if a.last_index.is_some_and(|i| i >= idx) { "ok" } else { "late" }.into();
                    }
                }
                let frame = frame(sc, &v, Some((idx, m, agents)), elapsed, self.color);
                let mut out = erase(v.drawn);
                v.drawn = draw(&mut out, &frame);
                v.frame = frame;
                let _ = std::io::stderr().write_all(out.as_bytes());
            }
        }
    }

    /// The run is over: the live view shows the verdict; metrics keep the
    /// final values.
    pub fn finish(&self, report: &Report) {
        if let Some(m) = &self.metrics {
            m.finish(report);
        }
        if self.mode != Mode::Live {
            return;
        }
        let mut v = self.view();
        if v.frame.len() > 1 {
            let verdict = crate::report::summary::verdict(report);
            let painted = match report.verdict.as_str() {
                "pass" => paint(self.color, GREEN, &verdict),
                "interrupted" => paint(self.color, YELLOW, &verdict),
                _ => paint(self.color, RED, &verdict),
            };
            let bound = if report.client_bound.is_some() { "; figures bounded by the client" } else { "" };
            v.frame[1] = format!("done — verdict {painted}{bound} (summary below)");
            let frame = v.frame.clone();
            let mut out = erase(v.drawn);
            v.drawn = draw(&mut out, &frame);
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
    }

    /// The plain one-line-per-interval output.
    fn plain_line(&self, sc: &Scenario, idx: u64, m: &IntervalMerge, start_ns: i64, agents: u32) {
        let secs = ((m.end_ns - m.start_ns) as f64 / 1e9).max(1e-9);
        let mut acked = 0u64;
        let mut errors = 0u64;
        let mut received = 0u64;
        let mut e2e = common::hist::Hist::new();
        let mut publish = common::hist::Hist::new();
        for s in m.producers.values() {
            let t = s.total();
            acked += t.acked;
            errors += t.send_errors;
            publish.add(&t.response);
        }
        for s in m.consumers.values() {
            let t = s.total();
            received += t.received;
            e2e.add(&t.service);
        }
        let target: f64 = sc.producers.iter().map(|p| p.total_rate()).sum();
        let t = (m.end_ns - start_ns) as f64 / 1e9;
        let phase = phase_name(sc, m.start_ns - start_ns);
        self.line(&format!(
            "[{t:>6.1}s] #{idx:<4} {phase:<8} pub {:>8}/s (target {:>7})  recv {:>8}/s  pub p99 {:>8}  e2e p50 {:>8} p99 {:>8}  err {errors}  lag {:.1}ms  agents {}/{agents}",
            fmt_count(acked as f64 / secs),
            fmt_count(target),
            fmt_count(received as f64 / secs),
            fmt_us(publish.quantile_ns(0.99) as f64 / 1e3),
            fmt_us(e2e.quantile_ns(0.5) as f64 / 1e3),
            fmt_us(e2e.quantile_ns(0.99) as f64 / 1e3),
            m.max_lag_ns as f64 / 1e6,
            m.agents,
        ));
    }
}

// ------------------------------------------------------------------ live view

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Moves the cursor to the first line of a frame `lines` tall and clears
/// from there to the end of the screen.
fn erase(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("\x1b[{lines}A\r\x1b[J")
    }
}

/// Appends `frame` to `out` with line wrap off (a line wider than the
/// terminal is cut, so every line takes one row); returns the rows drawn.
fn draw(out: &mut String, frame: &[String]) -> usize {
    out.push_str("\x1b[?7l");
    for l in frame {
        out.push_str(l);
        out.push_str("\x1b[K\n");
    }
    out.push_str("\x1b[?7h");
    frame.len()
}

/// The phases of a run: name, start and length in seconds from the start
/// instant (drain: its timeout, an upper bound). Zero-length warmup and
/// cooldown are left out.
pub fn phase_spans(sc: &Scenario) -> Vec<(&'static str, f64, f64)> {
    let w = sc.phases.warmup.as_secs_f64();
    let d = sc.phases.duration.as_secs_f64();
    let c = sc.phases.cooldown.as_secs_f64();
    let mut v = Vec::new();
    if w > 0.0 {
        v.push(("warmup", 0.0, w));
    }
    v.push(("measure", w, d));
    if c > 0.0 {
        v.push(("cooldown", w + d, c));
    }
    v.push(("drain", w + d + c, sc.phases.drain_timeout.as_secs_f64()));
    v
}

/// The phase at `t` seconds from the start instant, and the time spent in it.
pub fn phase_at(sc: &Scenario, t: f64) -> (&'static str, f64) {
    let spans = phase_spans(sc);
    for (name, start, len) in &spans {
        if t < start + len || *name == "drain" {
            return (name, (t - start).max(0.0));
        }
    }
    ("drain", 0.0)
}

fn bar(frac: f64, width: usize) -> String {
    let full = ((frac.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// The lines of the live view.
fn frame(sc: &Scenario, v: &View, iv: Option<(u64, &IntervalMerge, u32)>, elapsed: f64, color: bool) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!(
        "{} {} · run {} · {} broker · {} agent(s)",
        paint(color, BOLD, "loadgen"),
        paint(color, BOLD, &sc.name),
        v.run_id,
        sc.broker.kind.as_str(),
        v.agents.len()
    ));
    let (now, _) = phase_at(sc, elapsed);
    lines.push(phases_line(sc, elapsed, now, color));
    lines.push(paint(
        color,
        BOLD,
        &format!(
            "{:<22} {:<8} {:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8}",
            "GROUP", "ROLE", "TOPIC", "TARGET/s", "RATE/s", "TOTAL", "p50", "p99", "ERRORS", "LAG"
        ),
    ));
    let rows = GroupRows {
        iv,
        v,
        color,
        secs: iv.map(|(_, m, _)| ((m.end_ns - m.start_ns) as f64 / 1e9).max(1e-9)).unwrap_or(1.0),
    };
    lines.extend(sc.producers.iter().enumerate().map(|(i, g)| rows.producer(i, g, now)));
    lines.extend(sc.consumers.iter().enumerate().map(|(i, g)| rows.consumer(i, g)));
    agent_lines(v, color, &mut lines);
    let footer = match iv {
        Some((idx, m, alive)) => {
            format!("interval #{idx} · {}/{alive} agent(s) reporting · (p50/p99: producers publish_response, consumers e2e_service) · Ctrl-C aborts", m.agents)
        }
        None => "starting… · Ctrl-C aborts".to_string(),
    };
    lines.push(paint(color, DIM, &footer));
    lines
}

/// The phases with their progress bars, the current one highlighted.
fn phases_line(sc: &Scenario, elapsed: f64, now: &str, color: bool) -> String {
    let mut phases = Vec::new();
    for (name, start, len) in phase_spans(sc) {
        let spent = (elapsed - start).clamp(0.0, len);
        let total = if name == "drain" { format!("≤{}", fmt_secs(len)) } else { fmt_secs(len) };
        let text = format!("{name} {} {}/{total}", bar(if len > 0.0 { spent / len } else { 1.0 }, 10), fmt_secs(spent));
        phases.push(if name == now {
            paint(color, CYAN, &text)
        } else if spent >= len {
            paint(color, DIM, &text)
        } else {
            text
        });
    }
    format!("{}   elapsed {}", phases.join(" │ "), fmt_secs(elapsed))
}

/// The rows of the groups table: the merged interval's rates and
/// latencies (`iv`, `secs` long), the run's totals so far (`v`).
struct GroupRows<'a> {
    iv: Option<(u64, &'a IntervalMerge, u32)>,
    v: &'a View,
    color: bool,
    secs: f64,
}

impl GroupRows<'_> {
    /// Producer group `i`: its rate in yellow when behind its target while measuring.
    fn producer(&self, i: usize, g: &ProducerGroup, now: &str) -> String {
        let s = self.iv.and_then(|(_, m, _)| m.producers.get(&(i as u32))).map(|s| s.total()).unwrap_or_default();
        let c = self.v.producers.get(i).cloned().unwrap_or_default();
        let rate = s.acked as f64 / self.secs;
        let target = g.total_rate();
        let rate_text = format!("{:>9}", fmt_count(rate));
        let rate_text = if self.iv.is_some() && rate < target * 0.98 && now == "measure" {
            paint(self.color, YELLOW, &rate_text)
        } else {
            rate_text
        };
        let errors = format!("{:>7}", c.send_errors);
        let errors = if c.send_errors > 0 { paint(self.color, RED, &errors) } else { errors };
        let lag_ms = s.max_lag_ns as f64 / 1e6;
        let lag = format!("{:>8}", format!("{lag_ms:.1}ms"));
        let lag = if lag_ms > 5.0 { paint(self.color, YELLOW, &lag) } else { lag };
        format!(
            "{:<22} {:<8} {:<16} {:>9} {rate_text} {:>9} {:>9} {:>9} {errors} {lag}",
            clip(&g.name, 22),
            "producer",
            clip(&g.topic, 16),
            fmt_count(target),
            fmt_count(c.acked as f64),
            latency(&s.response, 0.5),
            latency(&s.response, 0.99),
        )
    }

    fn consumer(&self, i: usize, g: &ConsumerGroup) -> String {
        let s = self.iv.and_then(|(_, m, _)| m.consumers.get(&(i as u32))).map(|s| s.total()).unwrap_or_default();
        let c = self.v.consumers.get(i).cloned().unwrap_or_default();
        let errors = format!("{:>7}", c.receive_errors);
        let errors = if c.receive_errors > 0 { paint(self.color, RED, &errors) } else { errors };
        format!(
            "{:<22} {:<8} {:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {errors} {:>8}",
            clip(&g.name, 22),
            "consumer",
            clip(&g.topic, 16),
            "-",
            fmt_count(s.received as f64 / self.secs),
            fmt_count(c.received as f64),
            latency(&s.service, 0.5),
            latency(&s.service, 0.99),
            "-",
        )
    }
}

/// The agents table.
fn agent_lines(v: &View, color: bool, lines: &mut Vec<String>) {
    lines.push(paint(
        color,
        BOLD,
        &format!("{:<22} {:<16} {:<8} {:>6} {:>6} {:>6}", "AGENT", "ID", "STATUS", "PRODS", "CONS", "LAST"),
    ));
    for a in &v.agents {
        let status = format!("{:<8}", a.status);
        let status = match a.status.as_str() {
            "ok" => paint(color, GREEN, &status),
            "late" | "ready?" | "left" => paint(color, YELLOW, &status),
            _ => paint(color, RED, &status),
        };
        lines.push(format!(
            "{:<22} {:<16} {status} {:>6} {:>6} {:>6}",
            clip(&a.address, 22),
            clip(&a.id, 16),
            a.producers,
            a.consumers,
            a.last_index.map(|i| format!("#{i}")).unwrap_or_else(|| "-".into())
        ));
    }
}

fn latency(h: &common::hist::Hist, q: f64) -> String {
    if h.is_empty() {
        "-".into()
    } else {
        fmt_us(h.quantile_ns(q) as f64 / 1e3)
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stats::GroupPhases;

    fn scenario() -> Scenario {
        common::scenario::load_str(
            "name: live\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
             producers: [{name: pubs, topic: t, count: 2, rate: 500}]\n\
             consumers: [{name: subs, topic: t, count: 1}]\n\
             phases: {warmup: 2s, duration: 10s, drain_timeout: 5s}\n",
            "live.yaml",
            &[],
        )
        .expect("valid")
    }

    fn merged(acked: u64, received: u64) -> IntervalMerge {
        let mut p = GroupPhases::default();
        p.measure.acked = acked;
        p.measure.send_errors = 3;
        p.measure.max_lag_ns = 9_000_000;
        for i in 0..acked {
            p.measure.response.record_ns(1_000_000 + (i as i64 % 100) * 10_000);
        }
        let mut c = GroupPhases::default();
        c.measure.received = received;
        for _ in 0..received {
            c.measure.service.record_ns(2_000_000);
        }
        let mut m = IntervalMerge { agents: 2, start_ns: 4_000_000_000, end_ns: 5_000_000_000, ..Default::default() };
        m.producers.insert(0, p);
        m.consumers.insert(0, c);
        m
    }

    #[test]
    fn phases_and_progress() {
        let sc = scenario();
        assert_eq!(phase_at(&sc, 0.5), ("warmup", 0.5));
        assert_eq!(phase_at(&sc, 2.0), ("measure", 0.0));
        assert_eq!(phase_at(&sc, 11.0), ("measure", 9.0));
        assert_eq!(phase_at(&sc, 13.0), ("drain", 1.0));
        assert_eq!(phase_at(&sc, 60.0).0, "drain");
        assert_eq!(bar(0.5, 10), "█████░░░░░");
        assert_eq!(bar(7.0, 4), "████");
    }

    #[test]
    fn live_frame_shows_groups_agents_and_phases() {
        let sc = scenario();
        let mut v = View {
            run_id: "r1".into(),
            producers: vec![GroupCounters { acked: 4321, send_errors: 3, ..Default::default() }],
            consumers: vec![GroupCounters { received: 4000, ..Default::default() }],
            ..View::default()
        };
        for (i, status) in ["ok", "lost"].iter().enumerate() {
            v.agents.push(AgentRow {
                address: format!("127.0.0.1:700{i}"),
                id: format!("local-{i}"),
                producers: 1,
                consumers: 1,
                status: status.to_string(),
                last_index: Some(4),
            });
        }
        let m = merged(1000, 990);
        let lines = frame(&sc, &v, Some((4, &m, 2)), 5.0, false);
        let text = lines.join("\n");
        assert!(!text.contains('\x1b'), "no colour asked: {text}");
        assert!(text.contains("live · run r1 · memory broker · 2 agent(s)"), "{text}");
        assert!(text.contains("warmup ██████████ 2.0s/2.0s"), "{text}");
        assert!(text.contains("measure ███░░░░░░░ 3.0s/10.0s"), "{text}");
        assert!(text.contains("drain ░░░░░░░░░░ 0.0s/≤5.0s"), "{text}");
        let pubs = lines.iter().find(|l| l.starts_with("pubs")).expect("producer row");
        // target 1000/s, achieved 1000/s, 4321 acked so far, p50 ~1.5ms, 3 errors, lag 9ms
        let cols: Vec<&str> = pubs.split_whitespace().collect();
        assert_eq!(cols[..6], ["pubs", "producer", "t", "1000", "1000", "4321"], "{pubs}");
        assert_eq!(cols[8..], ["3", "9.0ms"], "{pubs}");
        let subs = lines.iter().find(|l| l.starts_with("subs")).expect("consumer row");
        assert!(subs.contains("2.00ms"), "{subs}");
        assert!(lines.iter().any(|l| l.contains("local-1") && l.contains("lost")), "{text}");
        assert!(text.contains("interval #4 · 2/2 agent(s) reporting"), "{text}");
        // Colour: escapes appear, and the columns still line up once stripped.
        let coloured = frame(&sc, &v, Some((4, &m, 2)), 5.0, true).join("\n");
        assert!(coloured.contains("\x1b[31m"), "errors in red");
        assert_eq!(strip_ansi(&coloured), text);
    }

    #[test]
    fn redraw_moves_up_over_the_previous_frame() {
        let mut out = erase(3);
        assert_eq!(out, "\x1b[3A\r\x1b[J");
        let n = draw(&mut out, &["a".to_string(), "b".to_string()]);
        assert_eq!(n, 2);
        assert_eq!(out, "\x1b[3A\r\x1b[J\x1b[?7la\x1b[K\nb\x1b[K\n\x1b[?7h");
        assert_eq!(erase(0), "");
    }

    #[test]
    fn console_counts_every_agent_report() {
        let sc = scenario();
        let c = Console::for_run(Mode::Quiet, false, &sc, "r", None);
        let r = IntervalReport {
            index: 0,
            groups: vec![merged(10, 0).producers[&0].to_proto(0, proto::Role::Producer)],
            ..Default::default()
        };
        c.agent_interval(0, &r);
        c.agent_interval(1, &r);
        assert_eq!(c.view().producers[0].acked, 20);
        assert_eq!(c.view().producers[0].send_errors, 6);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
