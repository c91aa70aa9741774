//! The time series of a run, from the merged intervals: the report's
//! interval rows, each consumer group's backlog (and its summary), counts
//! inside a time window, and which phase an interval is in. May import
//! `intervals` and `stats` (siblings).

use std::collections::BTreeMap;

use common::hist::Hist;
use common::percentile::Percentile;
use common::report::{BacklogReport, IntervalRow};
use common::scenario::Scenario;

use super::intervals::{IntervalMerge, Intervals};
use super::stats::{by_label, us, wait_percent};

/// Phase of an interval by its start (for the time series).
pub fn phase_name(sc: &Scenario, offset_ns: i64) -> &'static str {
    let w = sc.phases.warmup.as_nanos() as i64;
    let e = sc.phases.send_end().as_nanos() as i64;
    if offset_ns < w {
        "warmup"
    } else if offset_ns < e {
        "measure"
    } else {
        "drain"
    }
}

/// Each consumer group's backlog at the end of every interval, in order:
/// (seconds from the start, index, messages the topic's producers had
/// acknowledged minus the deliveries the group had taken).
pub(super) fn group_backlogs(sc: &Scenario, iv: &Intervals, start_ns: i64) -> Vec<Vec<(f64, u64, u64)>> {
    let mut acked_by_topic: BTreeMap<&str, u64> = BTreeMap::new();
    let mut received = vec![0u64; sc.consumers.len()];
    let mut out = vec![Vec::new(); sc.consumers.len()];
    for (idx, m) in &iv.by_index {
        for (g, s) in &m.producers {
            if let Some(grp) = sc.producers.get(*g as usize) {
                *acked_by_topic.entry(grp.topic.as_str()).or_default() += s.total().acked;
            }
        }
        for (g, s) in &m.consumers {
            if let Some(r) = received.get_mut(*g as usize) {
                *r += s.total().received;
            }
        }
        let t_s = (m.end_ns - start_ns) as f64 / 1e9;
        for (g, c) in sc.consumers.iter().enumerate() {
            let acked = acked_by_topic.get(c.topic.as_str()).copied().unwrap_or(0);
            out[g].push((t_s, *idx, acked.saturating_sub(received[g])));
        }
    }
    out
}

/// Which side of a group a count is of.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Role {
    Producer,
    Consumer,
}

/// Acks (producer group) or deliveries (consumer group) of group `g` that
/// happened in `[from, to)`, from the interval counts; None without intervals.
pub(super) fn window_count(iv: &Intervals, role: Role, g: u32, (from, to): (i64, i64)) -> Option<f64> {
    if iv.by_index.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for m in iv.by_index.values() {
        let stats = if role == Role::Producer { m.producers.get(&g) } else { m.consumers.get(&g) };
        let Some(s) = stats else { continue };
        let (a, b) = (m.start_ns.max(from), m.end_ns.min(to));
        if b <= a {
            continue;
        }
        let t = s.total();
        let n = if role == Role::Producer { t.acked } else { t.received };
        sum += n as f64 * (b - a) as f64 / (m.end_ns - m.start_ns).max(1) as f64;
    }
    Some(sum)
}

/// Peak, growth and drain of one backlog series (see [`BacklogReport`]).
pub(super) fn backlog_summary(series: &[(f64, u64, u64)]) -> BacklogReport {
    let mut peak = (0usize, 0.0f64, 0u64);
    for (i, &(t, _, b)) in series.iter().enumerate() {
        if b > peak.2 {
            peak = (i, t, b);
        }
    }
    let (ip, t_max, max) = peak;
    let low = max / 20;
    let (t0, b0) = series[..ip].iter().rev().find(|x| x.2 <= low).map(|x| (x.0, x.2)).unwrap_or((0.0, 0));
    let rate = |db: u64, dt: f64| if dt > 0.0 { db as f64 / dt } else { 0.0 };
    let growth_msgs_per_s = rate(max - b0.min(max), t_max - t0);
    let after = series.get(ip + 1..).unwrap_or(&[]);
    let (drain_msgs_per_s, drained_after_s) = match after.iter().find(|x| x.2 <= low) {
        Some(&(t1, _, b1)) => (rate(max - b1.min(max), t1 - t_max), Some(t1 - t_max)),
        None if max == 0 => (0.0, Some(0.0)),
        None => match after.last() {
            Some(&(t1, _, b1)) => (rate(max.saturating_sub(b1), t1 - t_max), None),
            None => (0.0, None),
        },
    };
    BacklogReport { max, max_at_s: t_max, growth_msgs_per_s, drain_msgs_per_s, drained_after_s }
}

/// The report's time series: one row per interval and group.
pub(super) fn interval_rows(
    sc: &Scenario,
    iv: &Intervals,
    start_ns: i64,
    backlogs: &[Vec<(f64, u64, u64)>],
    lost: &[BTreeMap<u64, u64>],
) -> Vec<IntervalRow> {
    let mut rows = Vec::new();
    for (idx, m) in &iv.by_index {
        debug_assert!(m.pending.is_empty(), "interval {idx} read before Intervals::settle_all");
        let backlog = |g: u32| {
            backlogs
                .get(g as usize)
                .and_then(|v| v.binary_search_by_key(idx, |x| x.1).ok().map(|i| v[i].2))
                .unwrap_or(0)
        };
        let first = rows.len();
        push_rows(sc, *idx, m, start_ns, backlog, &mut rows);
        add_lost(sc, *idx, m, start_ns, lost, first, &mut rows);
    }
    rows
}

/// Each consumer group's loss of interval `idx` into its row (`rows[first..]`
/// are the interval's); a group that reported nothing in the interval gets
/// a row of its own for it, so the rows' `lost` adds up to the
/// subscriptions' loss.
fn add_lost(
    sc: &Scenario,
    idx: u64,
    m: &IntervalMerge,
    start_ns: i64,
    lost: &[BTreeMap<u64, u64>],
    first: usize,
    rows: &mut Vec<IntervalRow>,
) {
    for (g, grp) in sc.consumers.iter().enumerate() {
        let Some(&n) = lost.get(g).and_then(|l| l.get(&idx)) else { continue };
        let at = rows[first..].iter().position(|r| r.role == "consumer" && r.group == grp.name);
        match at {
            Some(i) => rows[first + i].lost = n,
            None => rows.push(IntervalRow {
                index: idx,
                t_s: (m.end_ns - start_ns) as f64 / 1e9,
                phase: phase_name(sc, m.start_ns - start_ns).into(),
                group: grp.name.clone(),
                role: "consumer".into(),
                agents_reporting: m.agents,
                lost: n,
                ..IntervalRow::default()
            }),
        }
    }
}

/// The rows of one merged interval (settled), as the live dashboard shows
/// them (the same rows report.json gets; consumer rows without a backlog).
pub fn rows_of(sc: &Scenario, idx: u64, m: &IntervalMerge, start_ns: i64) -> Vec<IntervalRow> {
    let mut rows = Vec::new();
    push_rows(sc, idx, m, start_ns, |_| 0, &mut rows);
    rows
}

/// The rows of merged intervals as they are settled, one interval at a
/// time in index order, each consumer row with its backlog so far: what
/// the run journal writes (the same rows report.json gets, as known when
/// the interval's line was shown).
#[derive(Default)]
pub struct LiveRows {
    acked_by_topic: BTreeMap<String, u64>,
    received: Vec<u64>,
}

impl LiveRows {
    /// Interval `idx` (settled) as rows; counts it into the backlogs.
    pub fn rows(&mut self, sc: &Scenario, idx: u64, m: &IntervalMerge, start_ns: i64) -> Vec<IntervalRow> {
        self.received.resize(sc.consumers.len(), 0);
        for (g, s) in &m.producers {
            if let Some(grp) = sc.producers.get(*g as usize) {
                *self.acked_by_topic.entry(grp.topic.clone()).or_default() += s.total().acked;
            }
        }
        for (g, s) in &m.consumers {
            if let Some(r) = self.received.get_mut(*g as usize) {
                *r += s.total().received;
            }
        }
        let backlog = |g: u32| {
            let Some(c) = sc.consumers.get(g as usize) else { return 0 };
            let acked = self.acked_by_topic.get(&c.topic).copied().unwrap_or(0);
            acked.saturating_sub(self.received.get(g as usize).copied().unwrap_or(0))
        };
        let mut rows = Vec::new();
        push_rows(sc, idx, m, start_ns, backlog, &mut rows);
        rows
    }
}

/// One merged interval's rows (a producer row per producer group, a
/// consumer row per consumer group, with `backlog(group)`).
fn push_rows(
    sc: &Scenario,
    idx: u64,
    m: &IntervalMerge,
    start_ns: i64,
    backlog: impl Fn(u32) -> u64,
    rows: &mut Vec<IntervalRow>,
) {
    let secs = ((m.end_ns - m.start_ns) as f64 / 1e9).max(1e-9);
    let phase = phase_name(sc, m.start_ns - start_ns);
    let t_s = (m.end_ns - start_ns) as f64 / 1e9;
    for (g, s) in &m.producers {
        let Some(grp) = sc.producers.get(*g as usize) else {
            continue;
        };
        let t = s.total();
        rows.push(IntervalRow {
            index: idx,
            t_s,
            phase: phase.into(),
            group: grp.name.clone(),
            role: "producer".into(),
            sent: t.sent,
            acked: t.acked,
            send_errors: t.send_errors,
            received: 0,
            backlog: 0,
            rate_msgs_per_s: t.acked as f64 / secs,
            max_lag_ms: t.max_lag_ns as f64 / 1e6,
            agents_reporting: m.agents,
            in_flight_wait_percent: Some(wait_percent(t.window_wait_ns, f64::from(grp.count.max(1)), secs)),
            errors: t.errors,
            ..latency_columns(&t.response, &sc.report.percentiles)
        });
    }
    for (g, s) in &m.consumers {
        let Some(grp) = sc.consumers.get(*g as usize) else {
            continue;
        };
        let t = s.total();
        rows.push(IntervalRow {
            index: idx,
            t_s,
            phase: phase.into(),
            group: grp.name.clone(),
            role: "consumer".into(),
            sent: 0,
            acked: 0,
            send_errors: 0,
            received: t.received,
            backlog: backlog(*g),
            rate_msgs_per_s: t.received as f64 / secs,
            max_lag_ms: 0.0,
            agents_reporting: m.agents,
            in_flight_wait_percent: None,
            ack_p99_us: (!t.ack.is_empty()).then(|| us(t.ack.quantile_ns(0.99))),
            receive_errors: t.receive_errors,
            duplicates: t.duplicates,
            redelivered: t.redelivered,
            errors: t.errors,
            ..latency_columns(&t.service, &sc.report.percentiles)
        });
    }
}

/// A row with only its latency columns, from `h`: the named percentiles
/// and the reported list (producers' publish response time, consumers'
/// end-to-end service time).
fn latency_columns(h: &Hist, percentiles: &[Percentile]) -> IntervalRow {
    IntervalRow {
        p50_us: us(h.quantile_ns(0.5)),
        p95_us: Some(us(h.quantile_ns(0.95))),
        p99_us: us(h.quantile_ns(0.99)),
        p999_us: us(h.quantile_ns(0.999)),
        percentiles_us: by_label(h, percentiles),
        ..IntervalRow::default()
    }
}
