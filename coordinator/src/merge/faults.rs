//! Fault windows: the spans of a run in which agents met send or receive
//! errors, or a constant-rate producer group all but stopped (under
//! [`STALL_SHARE`] of its target: sends waiting on a broker that is
//! restarting or unreachable, its port blocked, a link cut) — found from
//! the interval rows (an agent counts each error in the interval it
//! happened in, so a window has the report interval's resolution), with
//! what happened from each window's start until the SLOs held again:
//! errors, duplicates, redeliveries, the acknowledged messages sent in it
//! that never arrived (`lost`, from the producers' send marks), and how
//! long that took.
//!
//! "The SLOs held" is judged per interval, from what an interval row
//! carries: no errors; every producer group's p50/p99/p99.9 publish
//! latency and every consumer group's end-to-end latency within the
//! scenario's limits (those it sets; limits in the general form, such as
//! `p95_e2e`, from the row's `percentiles_us`); and, with `slo.min_rate_ratio`, each
//! constant-rate producer group at that share of its target.
//!
//! May import `series::phase_name`.

use std::collections::BTreeMap;

use common::report::{FaultWindow, IntervalRow};
use common::scenario::Scenario;

use super::series::phase_name;
use crate::report::format::fmt_secs;

/// A constant-rate producer group acknowledging less than this share of
/// its target in an interval (outside the drain) has stalled: an outage,
/// not an overload (an overloaded broker still takes most of the load).
pub const STALL_SHARE: f64 = 0.1;

/// A group is judged stalled only where its target is at least this many
/// messages per interval (a slow group can have an interval without one).
const STALL_MIN_EXPECTED: f64 = 10.0;

/// One interval, every group: what the windows are made of.
#[derive(Default)]
struct Slot {
    /// End of the interval, seconds from the start instant.
    t_s: f64,
    send_errors: u64,
    receive_errors: u64,
    duplicates: u64,
    redelivered: u64,
    /// Acknowledged messages sent in the interval that a subscription
    /// never received.
    lost: u64,
    /// Every row met its SLOs.
    healthy: bool,
    /// A producer group stalled (see [`STALL_SHARE`]).
    stalled: bool,
    /// In the drain: the sends are over, so the SLOs cannot be seen to
    /// hold again here.
    drain: bool,
    /// The groups with errors, or stalled ("role name").
    erring: Vec<String>,
    /// The producer groups with a row.
    producers: Vec<String>,
}

impl Slot {
    fn faulty(&self) -> bool {
        self.send_errors + self.receive_errors > 0 || self.stalled
    }
}

/// The fault windows of a run, in time order.
pub(super) fn windows(sc: &Scenario, rows: &[IntervalRow]) -> Vec<FaultWindow> {
    let slots = slots(sc, rows);
    let len = sc.report_interval.as_secs_f64();
    let mut out: Vec<FaultWindow> = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        if !slots[i].faulty() {
            i += 1;
            continue;
        }
        // The window: this slot and the ones after it with errors, bridging
        // one quiet interval (a reconnect that took a moment to fail again).
        let first = i;
        let mut last = i;
        let mut j = i + 1;
        while j < slots.len() && j <= last + 2 {
            if slots[j].faulty() {
                last = j;
            }
            j += 1;
        }
        out.push(window(&slots, first, last, len));
        i = last + 1;
    }
    out
}

/// The window of `slots[first..=last]`, its recovery, and what happened
/// until then.
fn window(slots: &[Slot], first: usize, last: usize, len: f64) -> FaultWindow {
    let recovered = (last + 1..slots.len()).find(|&k| slots[k].healthy && !slots[k].drain);
    let until = recovered.unwrap_or(slots.len() - 1);
    let mut groups: Vec<String> = Vec::new();
    let mut w =
        FaultWindow { from_s: (slots[first].t_s - len).max(0.0), to_s: slots[last].t_s, ..FaultWindow::default() };
    for s in &slots[first..=last] {
        w.send_errors += s.send_errors;
        w.receive_errors += s.receive_errors;
        w.stalled |= s.stalled;
        for g in &s.erring {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
    }
    for s in &slots[first..=until] {
        w.duplicates += s.duplicates;
        w.redelivered += s.redelivered;
        w.lost += s.lost;
    }
    w.groups = groups;
    w.slo_held_again_s = recovered.map(|k| (slots[k].t_s - len).max(w.to_s));
    w.recovery_s = w.slo_held_again_s.map(|t| t - w.to_s);
    w
}

/// The rows grouped by interval, in time order. An interval in which no
/// group reported anything has no rows: it is filled in, and a
/// constant-rate producer group without a row outside the drain
/// acknowledged nothing (stalled).
fn slots(sc: &Scenario, rows: &[IntervalRow]) -> Vec<Slot> {
    let len = sc.report_interval.as_secs_f64();
    let mut by_index: BTreeMap<u64, Slot> = BTreeMap::new();
    for r in rows {
        let s = by_index.entry(r.index).or_insert_with(|| Slot { healthy: true, ..Slot::default() });
        s.t_s = s.t_s.max(r.t_s);
        s.send_errors += r.send_errors;
        s.receive_errors += r.receive_errors;
        s.duplicates += r.duplicates;
        s.redelivered += r.redelivered;
        s.lost += r.lost;
        let stalled = stalled(sc, r);
        if r.send_errors + r.receive_errors > 0 || stalled {
            s.erring.push(format!("{} {}", r.role, r.group));
        }
        if r.role == "producer" {
            s.producers.push(r.group.clone());
        }
        s.stalled |= stalled;
        s.healthy &= row_holds(sc, r);
    }
    let (Some((&first, f)), Some(&last)) = (by_index.iter().next(), by_index.keys().next_back()) else {
        return Vec::new();
    };
    let first_t = f.t_s;
    for i in first..=last {
        let s = by_index.entry(i).or_insert_with(|| Slot {
            t_s: first_t + (i - first) as f64 * len,
            healthy: true,
            ..Slot::default()
        });
        if phase_name(sc, ((s.t_s - len) * 1e9) as i64) == "drain" {
            s.drain = true;
            continue;
        }
        for p in sc.producers.iter().filter(|p| judged(p.total_rate(), len, &p.load)) {
            if !s.producers.contains(&p.name) {
                s.stalled = true;
                s.healthy = false;
                s.erring.push(format!("producer {}", p.name));
            }
        }
    }
    by_index.into_values().collect()
}

/// Whether a producer group's stall is judged: constant rate, enough
/// messages per interval.
fn judged(rate: f64, len: f64, load: &common::scenario::LoadShape) -> bool {
    *load == common::scenario::LoadShape::Constant && rate * len >= STALL_MIN_EXPECTED
}

/// A constant-rate producer row far below its target outside the drain.
fn stalled(sc: &Scenario, r: &IntervalRow) -> bool {
    let len = sc.report_interval.as_secs_f64();
    r.role == "producer"
        && r.phase != "drain"
        && constant_target(sc, &r.group)
            .is_some_and(|target| target * len >= STALL_MIN_EXPECTED && r.rate_msgs_per_s < STALL_SHARE * target)
}

/// The target of a constant-rate producer group.
fn constant_target(sc: &Scenario, group: &str) -> Option<f64> {
    sc.producers
        .iter()
        .find(|p| p.name == group && p.load == common::scenario::LoadShape::Constant)
        .map(|p| p.total_rate())
}

/// Whether one row meets the scenario's SLOs, as far as a row can tell.
fn row_holds(sc: &Scenario, r: &IntervalRow) -> bool {
    if r.send_errors + r.receive_errors > 0 || stalled(sc, r) {
        return false;
    }
    let slo = &sc.slo;
    let limits = if r.role == "producer" {
        [(slo.p50_publish, r.p50_us), (slo.p99_publish, r.p99_us), (slo.p999_publish, r.p999_us)]
    } else {
        [(slo.p50_e2e, r.p50_us), (slo.p99_e2e, r.p99_us), (slo.p999_e2e, r.p999_us)]
    };
    let publish = r.role == "producer";
    // The general form (`p95_e2e`): the row carries every percentile an SLO names.
    let others = slo.other.iter().filter(|l| l.publish == publish).map(|l| (Some(l.limit), r.at(l.percentile)));
    let latency_ok = limits
        .iter()
        .map(|(limit, us)| (*limit, Some(*us)))
        .chain(others)
        .all(|(limit, us)| limit.is_none_or(|l| us.is_none_or(|us| us <= l.as_secs_f64() * 1e6)));
    let rate_ok = match (r.role.as_str(), slo.min_rate_ratio) {
        ("producer", Some(ratio)) if r.phase != "drain" => {
            constant_target(sc, &r.group).is_none_or(|target| r.rate_msgs_per_s >= ratio * target)
        }
        _ => true,
    };
    latency_ok && rate_ok
}

/// The window as a note of the report.
pub(super) fn note(w: &FaultWindow) -> String {
    let recovery = match (w.slo_held_again_s, w.recovery_s) {
        (Some(at), Some(after)) => format!("the SLOs held again {} after it (from {})", fmt_secs(after), fmt_secs(at)),
        _ => "the SLOs did not hold again before the run ended".to_string(),
    };
    let mut what = Vec::new();
    if w.send_errors > 0 {
        what.push(format!("{} send errors", w.send_errors));
    }
    if w.receive_errors > 0 {
        what.push(format!("{} receive errors", w.receive_errors));
    }
    if w.stalled {
        what.push(format!("sends all but stopped (under {:.0} % of the target)", STALL_SHARE * 100.0));
    }
    format!(
        "fault from {} to {} ({}): {}; {recovery}; from its start until then {} acknowledged messages sent were lost, {} duplicate and {} redelivered deliveries",
        fmt_secs(w.from_s),
        fmt_secs(w.to_s),
        w.groups.join(", "),
        what.join(", "),
        w.lost,
        w.duplicates,
        w.redelivered
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(yaml_slo: &str) -> Scenario {
        let yaml = format!(
            "name: f\nbroker: {{kind: memory}}\nreport_interval: 1s\ntopics: [{{name: t}}]\nproducers: [{{name: p, topic: t, rate: 100}}]\nconsumers: [{{name: c, topic: t}}]\nphases: {{duration: 20s}}\nslo: {yaml_slo}\n"
        );
        common::scenario::load_str(&yaml, "f.yaml", &[]).expect("scenario")
    }

    /// Producer and consumer rows of interval `i` (ends at `i` s).
    fn rows(
        i: u64,
        send_errors: u64,
        receive_errors: u64,
        p99_us: f64,
        rate: f64,
        redelivered: u64,
    ) -> Vec<IntervalRow> {
        let base =
            IntervalRow { index: i, t_s: i as f64, p50_us: 500.0, p99_us, p999_us: p99_us, ..IntervalRow::default() };
        vec![
            IntervalRow {
                group: "p".into(),
                role: "producer".into(),
                send_errors,
                rate_msgs_per_s: rate,
                ..base.clone()
            },
            IntervalRow { group: "c".into(), role: "consumer".into(), receive_errors, redelivered, ..base },
        ]
    }

    #[test]
    fn a_run_without_errors_has_no_window() {
        let all: Vec<IntervalRow> = (1..10).flat_map(|i| rows(i, 0, 0, 900.0, 100.0, 0)).collect();
        assert!(windows(&sc("{p99_e2e: 10ms}"), &all).is_empty());
    }

    #[test]
    fn errors_make_one_window_and_recovery_waits_for_the_slos() {
        let s = sc("{p99_e2e: 10ms, min_rate_ratio: 0.9}");
        let mut all = Vec::new();
        for i in 1..=20u64 {
            let (se, re) = match i {
                5..=7 => (40, 0),
                // One quiet interval, then the consumer's reconnect fails once.
                9 => (0, 3),
                _ => (0, 0),
            };
            // After the fault: latency high until 12, rate low at 12.
            let p99 = if (10..=11).contains(&i) { 50_000.0 } else { 900.0 };
            let rate = if i == 12 { 10.0 } else { 100.0 };
            let redelivered = if i == 10 { 25 } else { 0 };
            let mut r = rows(i, se, re, p99, rate, redelivered);
            // Sent and never received: before the window (not its loss),
            // in it and in its recovery (its loss), after the recovery (not).
            r[1].lost = match i {
                3 => 1,
                5 => 7,
                11 => 2,
                15 => 100,
                _ => 0,
            };
            all.extend(r);
        }
        let w = windows(&s, &all);
        assert_eq!(w.len(), 1, "{w:?}");
        let w = &w[0];
        assert_eq!((w.from_s, w.to_s), (4.0, 9.0));
        assert_eq!((w.send_errors, w.receive_errors), (120, 3));
        assert_eq!(w.groups, ["producer p", "consumer c"]);
        // 10, 11: latency; 12: rate; 13 holds: from 12 s, 3 s after 9 s.
        assert_eq!((w.slo_held_again_s, w.recovery_s), (Some(12.0), Some(3.0)));
        assert_eq!((w.redelivered, w.duplicates), (25, 0));
        assert_eq!(w.lost, 9, "sent from the window's start until the SLOs held again");
        let n = note(w);
        assert!(n.contains("120 send errors") && n.contains("held again 3.0s after it"), "{n}");
        assert!(n.contains("9 acknowledged messages sent were lost"), "{n}");
    }

    #[test]
    fn recovery_waits_for_an_slo_in_the_general_form() {
        // p95_e2e: the consumer rows' p95 (percentiles_us) stays high until 8.
        let s = sc("{p95_e2e: 10ms}");
        let mut all = Vec::new();
        for i in 1..=12u64 {
            let mut r = rows(i, if i == 4 { 5 } else { 0 }, 0, 900.0, 100.0, 0);
            let p95 = if (5..=7).contains(&i) { 50_000.0 } else { 800.0 };
            r[1].percentiles_us = [("p95".to_string(), p95)].into();
            all.extend(r);
        }
        let w = windows(&s, &all);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].from_s, w[0].to_s), (3.0, 4.0));
        // 5, 6, 7: p95 over the limit; 8 holds: from 7 s.
        assert_eq!((w[0].slo_held_again_s, w[0].recovery_s), (Some(7.0), Some(3.0)));
    }

    #[test]
    fn sends_that_stop_without_an_error_are_a_fault_too() {
        let s = sc("{}");
        let mut all = Vec::new();
        for i in 1..=10u64 {
            // A broker restart: sends wait (no error) for 3 intervals.
            let rate = if (4..=6).contains(&i) { 0.0 } else { 100.0 };
            all.extend(rows(i, 0, 0, 900.0, rate, 0));
        }
        let w = windows(&s, &all);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].from_s, w[0].to_s, w[0].send_errors), (3.0, 6.0, 0));
        assert_eq!(w[0].groups, ["producer p"]);
        assert_eq!(w[0].slo_held_again_s, Some(6.0));
    }

    #[test]
    fn intervals_without_any_row_are_a_stall() {
        let s = sc("{}");
        let mut all = Vec::new();
        for i in (1..=10u64).filter(|i| !(4..=6).contains(i)) {
            all.extend(rows(i, 0, 0, 900.0, 100.0, 0));
        }
        // 4..6: nothing reported at all (sends waiting on a broker that is away).
        let w = windows(&s, &all);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].from_s, w[0].to_s, w[0].stalled), (3.0, 6.0, true));
        assert_eq!(w[0].groups, ["producer p"]);
    }

    #[test]
    fn separate_faults_are_separate_windows_and_no_recovery_is_said() {
        let s = sc("{}");
        let mut all = Vec::new();
        for i in 1..=12u64 {
            all.extend(rows(i, u64::from(i == 3 || i == 12), 0, 900.0, 100.0, 0));
        }
        let w = windows(&s, &all);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!((w[0].from_s, w[0].to_s, w[0].slo_held_again_s), (2.0, 3.0, Some(3.0)));
        assert_eq!(w[1].slo_held_again_s, None);
        assert!(note(&w[1]).contains("did not hold again"));
    }
}
