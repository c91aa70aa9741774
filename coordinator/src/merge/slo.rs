//! The SLO checks of a report: each latency limit per group (producers:
//! publish latency; consumers: end to end; the named keys, then the general
//! form `p95_e2e`), loss, duplicates, send errors, stalled subscriptions,
//! the rate ratio, and per subscription the spread over its consumers and
//! keys on two consumers at once. May import `report::format`.

use common::report::{GroupReport, Latency, SloCheck, SubscriptionReport, Totals};
use common::scenario::Scenario;

use crate::report::format::fmt_us_slo;

/// Checks every SLO of the scenario: latencies first, then counts.
pub fn judge(sc: &Scenario, groups: &[GroupReport], totals: &Totals, subs: &[SubscriptionReport]) -> Vec<SloCheck> {
    let mut out = Vec::new();
    latency_checks(sc, groups, &mut out);
    count_checks(sc, groups, totals, subs, &mut out);
    consumer_checks(sc, subs, &mut out);
    out
}

/// Per subscription: the spread over its consumers (shared and key_shared
/// with two or more consumers) and keys on two consumers at once
/// (key_shared). What the report does not know fails, as "unknown".
fn consumer_checks(sc: &Scenario, subs: &[SubscriptionReport], out: &mut Vec<SloCheck>) {
    let spread = |s: &&SubscriptionReport| matches!(s.sub_type.as_str(), "shared" | "key_shared") && s.consumers >= 2;
    if let Some(max) = sc.slo.max_consumer_imbalance {
        for s in subs.iter().filter(spread) {
            let actual = s.consumer_imbalance_percent;
            out.push(SloCheck {
                name: format!("max_consumer_imbalance {}", s.subscription),
                limit: format!("{max:.1}%"),
                actual: actual.map_or("unknown".into(), |a| format!("{a:.1}%")),
                pass: actual.is_some_and(|a| a <= max),
            });
        }
    }
    if let Some(max) = sc.slo.max_key_overlaps {
        for s in subs.iter().filter(|s| s.sub_type == "key_shared") {
            let actual = s.key_overlaps.as_ref().map(|k| k.count);
            out.push(SloCheck {
                name: format!("max_key_overlaps {}", s.subscription),
                limit: max.to_string(),
                actual: actual.map_or("unknown (no keys received)".into(), |a| a.to_string()),
                pass: actual.is_some_and(|a| a <= max),
            });
        }
    }
}

/// Each latency limit, per group of its role.
fn latency_checks(sc: &Scenario, groups: &[GroupReport], out: &mut Vec<SloCheck>) {
    let slo = &sc.slo;
    type Check = (&'static str, Option<std::time::Duration>, fn(&Latency) -> f64, &'static str);
    let lat_checks: [Check; 8] = [
        ("p50_e2e", slo.p50_e2e, |l| l.p50, "consumer"),
        ("p90_e2e", slo.p90_e2e, |l| l.p90, "consumer"),
        ("p99_e2e", slo.p99_e2e, |l| l.p99, "consumer"),
        ("p999_e2e", slo.p999_e2e, |l| l.p999, "consumer"),
        ("max_e2e", slo.max_e2e, |l| l.max, "consumer"),
        ("p50_publish", slo.p50_publish, |l| l.p50, "producer"),
        ("p99_publish", slo.p99_publish, |l| l.p99, "producer"),
        ("p999_publish", slo.p999_publish, |l| l.p999, "producer"),
    ];
    for (name, limit, pick, role) in lat_checks {
        let Some(limit) = limit else { continue };
        limit_checks(name, limit, role, groups, |l| Some(pick(l)), out);
    }
    // The general form (`p95_e2e`): the report carries every percentile an SLO names.
    for l in &slo.other {
        let role = if l.publish { "producer" } else { "consumer" };
        limit_checks(&l.key, l.limit, role, groups, |lat| lat.at(l.percentile), out);
    }
}

/// One latency limit (`name`, e.g. `p99_e2e`) on every group of `role`.
fn limit_checks(
    name: &str,
    limit: std::time::Duration,
    role: &str,
    groups: &[GroupReport],
    pick: impl Fn(&Latency) -> Option<f64>,
    out: &mut Vec<SloCheck>,
) {
    let limit_us = limit.as_secs_f64() * 1e6;
    // A closed loop has no intended times: its publish latency is service time.
    for g in groups.iter().filter(|g| g.role == role && !g.closed_loop) {
        let actual = pick(&g.latency_us).filter(|_| g.latency_us.count > 0);
        out.push(SloCheck {
            name: format!("{name} {}", g.name),
            limit: fmt_us_slo(limit_us),
            actual: actual.map_or_else(|| "no samples".into(), fmt_us_slo),
            pass: actual.is_some_and(|a| a <= limit_us),
        });
    }
}

/// Loss (and stalled subscriptions), duplicates, send errors, rate ratio.
fn count_checks(
    sc: &Scenario,
    groups: &[GroupReport],
    totals: &Totals,
    subs: &[SubscriptionReport],
    out: &mut Vec<SloCheck>,
) {
    let slo = &sc.slo;
    if let Some(max) = slo.max_loss {
        out.push(SloCheck {
            name: "max_loss".into(),
            limit: max.to_string(),
            actual: totals.lost.to_string(),
            pass: totals.lost <= max,
        });
        let stalled: Vec<String> = subs.iter().filter(|s| s.stalled).map(|s| s.subscription.clone()).collect();
        if !stalled.is_empty() {
            out.push(SloCheck {
                name: "no_stalled_subscriptions".into(),
                limit: "0".into(),
                actual: stalled.join(","),
                pass: false,
            });
        }
    }
    if let Some(max) = slo.max_duplicates {
        out.push(SloCheck {
            name: "max_duplicates".into(),
            limit: max.to_string(),
            actual: totals.duplicated.to_string(),
            pass: totals.duplicated <= max,
        });
    }
    if let Some(max) = slo.max_send_errors {
        out.push(SloCheck {
            name: "max_send_errors".into(),
            limit: max.to_string(),
            actual: totals.send_errors.to_string(),
            pass: totals.send_errors <= max,
        });
    }
    if let Some(min) = slo.min_rate_ratio {
        for g in groups.iter().filter(|g| g.role == "producer" && !g.closed_loop) {
            let target = g.target_rate_msgs_per_s.unwrap_or(0.0);
            let ratio = if target > 0.0 { g.rate_msgs_per_s / target } else { 0.0 };
            out.push(SloCheck {
                name: format!("min_rate_ratio {}", g.name),
                limit: format!("{min:.3}"),
                actual: format!("{ratio:.3}"),
                pass: ratio >= min,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::subscription;

    #[test]
    fn the_spread_is_judged_per_subscription_and_unknown_fails() {
        let sc = common::scenario::load_str(
            "name: s\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\n\
             consumers: [{name: a, topic: t, type: shared, count: 2}]\n\
             phases: {duration: 1s}\nslo: {max_consumer_imbalance: 20, max_key_overlaps: 0}\n",
            "s.yaml",
            &[],
        )
        .expect("scenario");
        let mut even = subscription("even", 0, false);
        even.consumer_imbalance_percent = Some(5.0);
        let mut skewed = subscription("skewed", 0, false);
        skewed.consumer_imbalance_percent = Some(50.0);
        // No per-consumer figures (an older agent): unknown, not 0.
        let unknown = subscription("unknown", 0, false);
        let mut keys = subscription("keys", 0, false);
        keys.sub_type = "key_shared".into();
        keys.key_overlaps = Some(common::report::KeyOverlaps { count: 2, keys_checked: 10, ..Default::default() });
        let mut out = Vec::new();
        consumer_checks(&sc, &[even, skewed, unknown, keys], &mut out);
        let got: Vec<(&str, &str, bool)> = out.iter().map(|c| (c.name.as_str(), c.actual.as_str(), c.pass)).collect();
        assert_eq!(
            got,
            vec![
                ("max_consumer_imbalance even", "5.0%", true),
                ("max_consumer_imbalance skewed", "50.0%", false),
                ("max_consumer_imbalance unknown", "unknown", false),
                ("max_consumer_imbalance keys", "unknown", false),
                ("max_key_overlaps keys", "2", false),
            ]
        );
    }
}
