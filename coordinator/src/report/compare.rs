//! `coordinator compare BASE_DIR NEW_DIR`: two runs side by side, group by
//! group, and a verdict on whether NEW regressed against BASE.
//!
//! A metric regresses when NEW is worse than BASE by more than the allowed
//! percentage (`--max-regression`, default 10 %):
//! - throughput (msg/s, producers acknowledged, consumers received): lower;
//! - latency at each percentile NEW's report carries (its `percentiles`,
//!   the scenario's `report.percentiles`; a version-1 report's p50, p90,
//!   p99, p99.9), named by key (`p50`, `p999` for 99.9; producers: publish
//!   response time; consumers: end to end): higher, *and* higher by at
//!   least [`LATENCY_FLOOR_US`]
//!   (50 µs) — sub-millisecond latencies jitter by tens of microseconds
//!   from run to run, which would otherwise read as large percentages. A
//!   percentile BASE lacks (p95 of a version-1 report) shows `-` and is not
//!   judged;
//! - lost messages: any increase at all (per consumer group's subscription
//!   and in the run's totals).
//!
//! Duplicates are shown but not judged (at-least-once brokers redeliver
//! legitimately; the scenario's `max_duplicates` SLO judges them per run).
//! Groups are matched by role and name; groups present in only one run are
//! named and skipped.
//!
//! May import only `report::format`; its HTML page is `report::html::compare`.

use std::fmt::Write as _;

use common::percentile::Percentile;
use common::report::{GroupReport, Report, SubscriptionReport};

use crate::report::format::{fmt_pct, fmt_us};

/// Latency changes smaller than this (µs) are never a regression.
pub const LATENCY_FLOOR_US: f64 = 50.0;
/// `--max-regression` when not given, percent.
pub const DEFAULT_MAX_REGRESSION_PCT: f64 = 10.0;

/// Parses `10` or `10%` (or `7.5%`) into percent.
pub fn parse_pct(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t).trim();
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a percentage; use e.g. 10 or 10%"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}` is not a percentage; use a number from 0 up, e.g. 10 or 10%"));
    }
    Ok(v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// msg/s; lower is worse.
    Throughput,
    /// µs; higher is worse, beyond the noise floor.
    Latency,
    /// A count where any increase is a regression.
    Loss,
    /// A count shown for information.
    Info,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// "throughput", a percentile's key ("p50", "p999"), "lost", "duplicated".
    pub metric: String,
    pub kind: Kind,
    /// None when the run has no samples for it.
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub regressed: bool,
    /// Why a worse figure is not a regression (e.g. under the noise floor).
    pub remark: Option<String>,
}

impl MetricRow {
    /// Change from base to new, percent; None when it has no meaning.
    pub fn change_pct(&self) -> Option<f64> {
        let (b, n) = (self.base?, self.new?);
        if b == 0.0 {
            return if n == 0.0 { Some(0.0) } else { None };
        }
        Some((n - b) / b * 100.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupComparison {
    pub role: String,
    pub name: String,
    pub topic: String,
    pub subscription: Option<String>,
    pub rows: Vec<MetricRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base_run: String,
    pub new_run: String,
    pub base_scenario: String,
    pub new_scenario: String,
    pub max_regression_pct: f64,
    /// The latency percentiles compared: NEW's.
    pub percentiles: Vec<Percentile>,
    pub groups: Vec<GroupComparison>,
    /// "producer NAME" for groups only in one run.
    pub only_base: Vec<String>,
    pub only_new: Vec<String>,
    pub totals: Vec<MetricRow>,
    pub notes: Vec<String>,
}

/// One regressed metric, for the verdict line.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub metric: String,
    pub kind: Kind,
    /// "producer NAME", "consumer NAME" or "totals".
    pub scope: String,
    pub base: f64,
    pub new: f64,
    pub change_pct: Option<f64>,
}

fn judge(kind: Kind, base: Option<f64>, new: Option<f64>, pct: f64) -> (bool, Option<String>) {
    let (Some(b), Some(n)) = (base, new) else {
        return (false, None);
    };
    match kind {
        Kind::Throughput => (b > 0.0 && n < b * (1.0 - pct / 100.0), None),
        Kind::Latency => {
            let beyond_pct = n > b * (1.0 + pct / 100.0);
            if beyond_pct && n - b < LATENCY_FLOOR_US {
                (false, Some(format!("under the {LATENCY_FLOOR_US:.0}us noise floor, ignored")))
            } else {
                (beyond_pct, None)
            }
        }
        Kind::Loss => (n > b, None),
        Kind::Info => (false, None),
    }
}

fn row(metric: &str, kind: Kind, base: Option<f64>, new: Option<f64>, pct: f64) -> MetricRow {
    let (regressed, remark) = judge(kind, base, new, pct);
    MetricRow { metric: metric.into(), kind, base, new, regressed, remark }
}

fn sub_of<'a>(r: &'a Report, g: &GroupReport) -> Option<&'a SubscriptionReport> {
    let name = g.subscription.as_deref()?;
    r.subscriptions.iter().find(|s| s.topic == g.topic && s.subscription == name)
}

fn group_rows(base: &Report, b: &GroupReport, new: &Report, n: &GroupReport, pct: f64) -> Vec<MetricRow> {
    let mut rows = vec![row("throughput", Kind::Throughput, Some(b.rate_msgs_per_s), Some(n.rate_msgs_per_s), pct)];
    let lat = |g: &GroupReport, p: Percentile| (g.latency_us.count > 0).then(|| g.latency_us.at(p)).flatten();
    for p in new.reported_percentiles() {
        rows.push(row(&p.key(), Kind::Latency, lat(b, p), lat(n, p), pct));
    }
    if b.role == "consumer" {
        let (bs, ns) = (sub_of(base, b), sub_of(new, n));
        rows.push(row("lost", Kind::Loss, bs.map(|s| s.lost as f64), ns.map(|s| s.lost as f64), pct));
        rows.push(row("duplicated", Kind::Info, bs.map(|s| s.duplicated as f64), ns.map(|s| s.duplicated as f64), pct));
    }
    rows
}

/// Compares NEW against BASE.
pub fn compare(base: &Report, new: &Report, max_regression_pct: f64) -> Comparison {
    let pct = max_regression_pct;
    let mut notes = run_notes(base, new);
    let key = |g: &GroupReport| format!("{} {}", g.role, g.name);
    let mut groups = Vec::new();
    let mut only_base = Vec::new();
    for b in &base.groups {
        let Some(n) = new.groups.iter().find(|n| n.role == b.role && n.name == b.name) else {
            only_base.push(key(b));
            continue;
        };
        notes.extend(group_notes(&key(b), b, n));
        groups.push(GroupComparison {
            role: b.role.clone(),
            name: b.name.clone(),
            topic: b.topic.clone(),
            subscription: b.subscription.clone(),
            rows: group_rows(base, b, new, n, pct),
        });
    }
    let only_new: Vec<String> = new
        .groups
        .iter()
        .filter(|n| !base.groups.iter().any(|b| b.role == n.role && b.name == n.name))
        .map(key)
        .collect();
    let totals = vec![
        row("lost", Kind::Loss, Some(base.totals.lost as f64), Some(new.totals.lost as f64), pct),
        row("duplicated", Kind::Info, Some(base.totals.duplicated as f64), Some(new.totals.duplicated as f64), pct),
    ];
    Comparison {
        base_run: base.run_id.clone(),
        new_run: new.run_id.clone(),
        base_scenario: base.scenario.clone(),
        new_scenario: new.scenario.clone(),
        max_regression_pct: pct,
        percentiles: new.reported_percentiles(),
        groups,
        only_base,
        only_new,
        totals,
        notes,
    }
}

/// What makes the two runs less comparable as a whole.
fn run_notes(base: &Report, new: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    if base.scenario != new.scenario {
        notes.push(format!(
            "the runs are of different scenarios (base `{}`, new `{}`): comparing the groups they share",
            base.scenario, new.scenario
        ));
    }
    for (which, r) in [("base", base), ("new", new)] {
        if r.verdict == "incomplete" {
            notes.push(format!("the {which} run did not complete ({}): its figures are partial", r.run_id));
        }
    }
    if (base.phases.duration_s - new.phases.duration_s).abs() > 1e-9 {
        notes.push(format!(
            "measurement phases differ: base {:.1}s, new {:.1}s",
            base.phases.duration_s, new.phases.duration_s
        ));
    }
    notes
}

/// What makes one group's figures less comparable (`key`: "role name").
fn group_notes(key: &str, b: &GroupReport, n: &GroupReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(bt), Some(nt)) = (b.target_rate_msgs_per_s, n.target_rate_msgs_per_s) {
        if (bt - nt).abs() > 1e-9 * bt.abs().max(1.0) {
            notes.push(format!(
                "{key}: target rate differs (base {bt:.1}/s, new {nt:.1}/s), so its throughput change reflects the scenario"
            ));
        }
    }
    if b.topic != n.topic {
        notes.push(format!("{key}: topic differs (base `{}`, new `{}`)", b.topic, n.topic));
    }
    notes
}

/// One metric's row: base, new, change, and why it is flagged.
fn metric_line(o: &mut String, r: &MetricRow) -> std::fmt::Result {
    let label = match r.metric.as_str() {
        "throughput" => "throughput msg/s",
        m => m,
    };
    let flag = if r.regressed {
        format!("  REGRESSED ({})", r.metric)
    } else if let Some(why) = &r.remark {
        format!("  ({why})")
    } else {
        String::new()
    };
    writeln!(
        o,
        "  {:<18} {:>12} {:>12} {:>10}{flag}",
        label,
        fmt_value(r.kind, r.base),
        fmt_value(r.kind, r.new),
        fmt_change(r)
    )
}

pub(crate) fn fmt_value(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => "-".into(),
        (Kind::Throughput, Some(v)) => format!("{v:.1}"),
        (Kind::Latency, Some(v)) => fmt_us(v),
        (Kind::Loss | Kind::Info, Some(v)) => format!("{v:.0}"),
    }
}

pub(crate) fn fmt_change(r: &MetricRow) -> String {
    match (r.kind, r.base, r.new) {
        (Kind::Loss | Kind::Info, Some(b), Some(n)) => {
            let d = n - b;
            if d == 0.0 {
                "=".into()
            } else {
                format!("{d:+.0}")
            }
        }
        _ => match r.change_pct() {
            Some(p) => format!("{p:+.1}%"),
            None => "-".into(),
        },
    }
}

impl Comparison {
    pub fn regressions(&self) -> Vec<Regression> {
        let mut out = Vec::new();
        let mut push = |scope: String, r: &MetricRow| {
            if let (true, Some(base), Some(new)) = (r.regressed, r.base, r.new) {
                let metric = r.metric.clone();
                out.push(Regression { metric, kind: r.kind, scope, base, new, change_pct: r.change_pct() });
            }
        };
        for g in &self.groups {
            for r in &g.rows {
                push(format!("{} {}", g.role, g.name), r);
            }
        }
        for r in &self.totals {
            push("totals".into(), r);
        }
        out
    }

    pub fn regressed(&self) -> bool {
        !self.regressions().is_empty()
    }

    /// The compared percentiles' keys: `p50/p99/p999`.
    pub fn percentile_keys(&self) -> String {
        self.percentiles.iter().map(|p| p.key()).collect::<Vec<_>>().join("/")
    }

    /// The table and the verdict, as printed by `coordinator compare`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = self.render_into(&mut o);
        o
    }

    fn render_into(&self, o: &mut String) -> std::fmt::Result {
        writeln!(o, "base: {} (scenario `{}`)", self.base_run, self.base_scenario)?;
        writeln!(o, "new:  {} (scenario `{}`)", self.new_run, self.new_scenario)?;
        writeln!(
            o,
            "regression: worse by more than {}% (lower throughput; higher {} latency, ignoring changes under {LATENCY_FLOOR_US:.0}us); any increase in lost messages",
            fmt_pct(self.max_regression_pct),
            self.percentile_keys()
        )?;
        for n in &self.notes {
            writeln!(o, "note: {n}")?;
        }
        if !self.only_base.is_empty() {
            writeln!(o, "note: groups only in base (not compared): {}", self.only_base.join(", "))?;
        }
        if !self.only_new.is_empty() {
            writeln!(o, "note: groups only in new (not compared): {}", self.only_new.join(", "))?;
        }
        self.render_table(o)?;
        self.render_result(o)
    }

    /// Every common group's metrics, then the totals.
    fn render_table(&self, o: &mut String) -> std::fmt::Result {
        writeln!(o, "\n{:<20} {:>12} {:>12} {:>10}", "GROUP / METRIC", "BASE", "NEW", "CHANGE")?;
        for g in &self.groups {
            let sub = g.subscription.as_ref().map(|s| format!(", subscription {s}")).unwrap_or_default();
            let what = if g.role == "producer" { "latency: publish_response" } else { "latency: e2e_service" };
            writeln!(o, "{} {} (topic {}{sub}; {what})", g.role, g.name, g.topic)?;
            for r in &g.rows {
                metric_line(o, r)?;
            }
        }
        writeln!(o, "totals (whole run)")?;
        for r in &self.totals {
            metric_line(o, r)?;
        }
        Ok(())
    }

    /// The verdict: no regression, or each regressed metric with its change.
    fn render_result(&self, o: &mut String) -> std::fmt::Result {
        let regs = self.regressions();
        if regs.is_empty() {
            writeln!(
                o,
                "\nresult: no regression beyond {}% in {} common group(s)",
                fmt_pct(self.max_regression_pct),
                self.groups.len()
            )?;
        } else {
            let mut metrics: Vec<&str> = regs.iter().map(|r| r.metric.as_str()).collect();
            metrics.dedup();
            metrics.sort_unstable();
            metrics.dedup();
            writeln!(o, "\nresult: REGRESSION in {} metric(s) [{}]:", regs.len(), metrics.join(", "))?;
            for r in &regs {
                let (b, n) = match r.kind {
                    Kind::Latency => (fmt_us(r.base), fmt_us(r.new)),
                    Kind::Throughput => (format!("{:.1}/s", r.base), format!("{:.1}/s", r.new)),
                    Kind::Loss | Kind::Info => (format!("{:.0}", r.base), format!("{:.0}", r.new)),
                };
                let ch = r.change_pct.map(|p| format!(" ({p:+.1}%)")).unwrap_or_default();
                writeln!(o, "  {} of {}: {b} -> {n}{ch}", r.metric, r.scope)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{group, sample_report, subscription};

    #[test]
    fn parses_percentages() {
        assert_eq!(parse_pct("10"), Ok(10.0));
        assert_eq!(parse_pct("10%"), Ok(10.0));
        assert_eq!(parse_pct(" 7.5% "), Ok(7.5));
        assert_eq!(parse_pct("0"), Ok(0.0));
        for bad in ["", "%", "ten", "-5", "NaN", "inf", "10%%"] {
            assert!(parse_pct(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identical_runs_do_not_regress() {
        let r = sample_report();
        let c = compare(&r, &r, 10.0);
        assert!(!c.regressed(), "{}", c.render());
        assert_eq!(c.groups.len(), 2);
        assert!(c.only_base.is_empty() && c.only_new.is_empty());
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let out = c.render();
        assert!(out.contains("result: no regression beyond 10%"), "{out}");
        assert!(out.contains("producer p1") && out.contains("consumer c1"));
    }

    #[test]
    fn higher_latency_regresses_and_names_the_metric() {
        let base = sample_report();
        let mut new = base.clone();
        new.groups[0].latency_us.p50 *= 1.5; // 2 ms -> 3 ms
        let c = compare(&base, &new, 10.0);
        let regs = c.regressions();
        assert_eq!(regs.len(), 1, "{regs:?}");
        assert_eq!(regs[0].metric, "p50");
        assert_eq!(regs[0].scope, "producer p1");
        assert!((regs[0].change_pct.expect("pct") - 50.0).abs() < 1e-9);
        let out = c.render();
        assert!(out.contains("REGRESSED (p50)"), "{out}");
        assert!(out.contains("result: REGRESSION in 1 metric(s) [p50]"), "{out}");
        // The same change within a larger allowance is fine.
        assert!(!compare(&base, &new, 60.0).regressed());
        // Lower latency is never a regression.
        assert!(!compare(&new, &base, 0.0).regressed());
    }

    #[test]
    fn tiny_latency_changes_are_noise() {
        let mut base = sample_report();
        base.groups[0].latency_us.p50 = 20.0;
        let mut new = base.clone();
        new.groups[0].latency_us.p50 = 60.0; // +200 %, but only +40 us
        let c = compare(&base, &new, 10.0);
        assert!(!c.regressed(), "{}", c.render());
        assert!(c.render().contains("noise floor"));
        new.groups[0].latency_us.p50 = 80.0; // +60 us: beyond the floor
        assert!(compare(&base, &new, 10.0).regressed());
    }

    #[test]
    fn lower_throughput_regresses_beyond_the_allowance() {
        let base = sample_report();
        let mut new = base.clone();
        new.groups[1].rate_msgs_per_s = 950.0; // -5 %
        assert!(!compare(&base, &new, 10.0).regressed());
        new.groups[1].rate_msgs_per_s = 850.0; // -15 %
        let regs = compare(&base, &new, 10.0).regressions();
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].metric, "throughput");
        assert_eq!(regs[0].scope, "consumer c1");
        // Higher throughput is fine.
        new.groups[1].rate_msgs_per_s = 2000.0;
        assert!(!compare(&base, &new, 0.0).regressed());
    }

    #[test]
    fn any_more_loss_regresses() {
        let base = sample_report();
        let mut new = base.clone();
        new.subscriptions[0] = subscription("c1", 1, false);
        new.totals.lost = 1;
        let c = compare(&base, &new, 1000.0);
        let metrics: Vec<(String, String)> =
            c.regressions().iter().map(|r| (r.metric.clone(), r.scope.clone())).collect();
        assert_eq!(metrics, [("lost".to_string(), "consumer c1".to_string()), ("lost".into(), "totals".into())]);
        // Less loss than base is an improvement.
        assert!(!compare(&new, &base, 0.0).regressed());
        // More duplicates are shown, not judged.
        let mut dup = base.clone();
        dup.totals.duplicated = 5;
        assert!(!compare(&base, &dup, 0.0).regressed());
    }

    #[test]
    fn different_groups_are_named_and_common_ones_compared() {
        let base = sample_report();
        let mut new = base.clone();
        new.scenario = "other".into();
        new.groups[0] = group("p2", "producer", 1000.0, 2000.0);
        new.groups[1].latency_us.p99 *= 10.0;
        let c = compare(&base, &new, 10.0);
        assert_eq!(c.only_base, ["producer p1"]);
        assert_eq!(c.only_new, ["producer p2"]);
        assert_eq!(c.groups.len(), 1);
        let out = c.render();
        assert!(out.contains("different scenarios"), "{out}");
        assert!(out.contains("groups only in base (not compared): producer p1"));
        assert!(out.contains("groups only in new (not compared): producer p2"));
        let regs = c.regressions();
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].metric, "p99");
    }

    #[test]
    fn the_new_reports_percentiles_are_compared_by_key() {
        let mut base = sample_report();
        let mut new = base.clone();
        new.percentiles = vec![Percentile::P50, Percentile::new(99.99).expect("valid")];
        base.groups[1].latency_us.percentiles.insert("p99.99".into(), 30_000.0);
        new.groups[1].latency_us.percentiles.insert("p99.99".into(), 90_000.0);
        let c = compare(&base, &new, 10.0);
        let metrics: Vec<&str> = c.groups[1].rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(metrics, ["throughput", "p50", "p9999", "lost", "duplicated"]);
        let regs = c.regressions();
        assert_eq!((regs.len(), regs[0].metric.as_str(), regs[0].scope.as_str()), (1, "p9999", "consumer c1"));
        let out = c.render();
        assert!(out.contains("higher p50/p9999 latency"), "{out}");
        assert!(out.contains("p9999 of consumer c1: 30.00ms -> 90.00ms (+200.0%)"), "{out}");
    }

    #[test]
    fn a_percentile_the_base_lacks_is_shown_not_judged() {
        // A version-1 base: no list, no p95 (nor a map).
        let mut base = sample_report();
        base.percentiles.clear();
        for g in &mut base.groups {
            g.latency_us.p95 = None;
            g.latency_us.percentiles.clear();
        }
        let mut new = sample_report();
        new.groups[0].latency_us.p95 = Some(1e9);
        let c = compare(&base, &new, 10.0);
        let p95 = c.groups[0].rows.iter().find(|r| r.metric == "p95").expect("a p95 row");
        assert_eq!((p95.base, p95.regressed), (None, false));
        assert!(!c.regressed(), "{}", c.render());
        // The other way round: the old report's percentiles, which have no p95.
        let back = compare(&new, &base, 10.0);
        let metrics: Vec<&str> = back.groups[0].rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(metrics, ["throughput", "p50", "p90", "p99", "p999"]);
    }

    #[test]
    fn groups_without_samples_are_not_judged() {
        let base = sample_report();
        let mut new = base.clone();
        new.groups[0].latency_us = Default::default();
        let c = compare(&base, &new, 10.0);
        assert!(!c.regressed());
        assert!(c.render().contains("  p50"));
    }
}
