//! The SLO checks of a report: each latency limit per group (producers:
//! publish latency; consumers: end to end and ack; the named keys, then
//! the general form `p95_e2e`), loss, duplicates, send errors, stalled
//! subscriptions, the rate ratio, per subscription the spread over its
//! consumers and keys on two consumers at once, and figures bounded by the
//! client. May import `report::format`.

use common::report::{ClientBound, GroupReport, Latency, SloCheck, SubscriptionReport, Totals};
use common::scenario::Scenario;

use crate::report::format::fmt_us_slo;

/// Checks every SLO of the scenario: latencies first, then counts.
pub fn judge(sc: &Scenario, groups: &[GroupReport], totals: &Totals, subs: &[SubscriptionReport]) -> Vec<SloCheck> {
    let mut out = Vec::new();
    latency_checks(sc, groups, &mut out);
    ack_checks(sc, groups, &mut out);
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

/// Each ack latency limit, per consumer group (`latency.ack`); where the
/// driver does not time acks the check fails as not measured.
fn ack_checks(sc: &Scenario, groups: &[GroupReport], out: &mut Vec<SloCheck>) {
    type Check = (&'static str, Option<std::time::Duration>, fn(&Latency) -> f64);
    let checks: [Check; 2] = [("p50_ack", sc.slo.p50_ack, |l| l.p50), ("p99_ack", sc.slo.p99_ack, |l| l.p99)];
    for (name, limit, pick) in checks {
        let Some(limit) = limit else { continue };
        let limit_us = limit.as_secs_f64() * 1e6;
        for g in groups.iter().filter(|g| g.role == "consumer") {
            let ack = g.latency.get("ack").filter(|l| l.count > 0);
            let actual = match (ack, &g.ack_latency_not_measured) {
                (Some(l), _) => fmt_us_slo(pick(l)),
                (None, Some(why)) => why.clone(),
                (None, None) => "no samples".into(),
            };
            out.push(SloCheck {
                name: format!("{name} {}", g.name),
                limit: fmt_us_slo(limit_us),
                actual,
                pass: ack.is_some_and(|l| pick(l) <= limit_us),
            });
        }
    }
}

/// `slo.allow_client_bound: false`: the check that fails a run whose
/// figures were bounded by the client (none when allowed).
pub(super) fn client_bound_check(sc: &Scenario, bound: Option<&ClientBound>) -> Option<SloCheck> {
    sc.slo.fail_client_bound.then(|| SloCheck {
        name: "client_bound".into(),
        limit: "none".into(),
        actual: bound.map_or_else(|| "none".into(), |b| b.summary.clone()),
        pass: bound.is_none(),
    })
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

    fn scenario(slo: &str) -> Scenario {
        common::scenario::load_str(
            &format!(
                "name: s\nbroker: {{kind: memory}}\ntopics: [{{name: t}}]\n\
                 producers: [{{name: p, topic: t, rate: 10}}]\nconsumers: [{{name: c, topic: t}}]\n\
                 phases: {{duration: 1s}}\nslo: {{{slo}}}\n"
            ),
            "s.yaml",
            &[],
        )
        .expect("scenario")
    }

    #[test]
    fn ack_limits_judge_each_consumer_group_and_an_unmeasured_ack_fails_as_such() {
        let r = crate::testutil::sample_report();
        let ack = |g: &GroupReport| g.latency["ack"].p99;
        let consumers: Vec<&GroupReport> = r.groups.iter().filter(|g| g.role == "consumer").collect();
        let worst = consumers.iter().map(|g| ack(g)).fold(0.0, f64::max);
        let limit = format!("p99_ack: {}us", worst.ceil() as u64);
        let checks = judge(&scenario(&limit), &r.groups, &r.totals, &[]);
        let acks: Vec<&SloCheck> = checks.iter().filter(|c| c.name.starts_with("p99_ack ")).collect();
        assert_eq!(acks.len(), consumers.len());
        assert!(acks.iter().all(|c| c.pass), "{acks:?}");
        let tight = judge(&scenario("p99_ack: 1us"), &r.groups, &r.totals, &[]);
        assert!(tight.iter().filter(|c| c.name.starts_with("p99_ack ")).all(|c| !c.pass));
        // Not measured (pulsar): fails, and says why instead of a figure.
        let mut r = r;
        for g in r.groups.iter_mut().filter(|g| g.role == "consumer") {
            g.latency.remove("ack");
            g.ack_latency_not_measured = Some("not measured on pulsar: queued only".into());
        }
        let checks = judge(&scenario(&limit), &r.groups, &r.totals, &[]);
        let c = checks.iter().find(|c| c.name.starts_with("p99_ack ")).expect("a check");
        assert_eq!((c.pass, c.actual.as_str()), (false, "not measured on pulsar: queued only"));
    }

    #[test]
    fn client_bound_is_judged_only_when_the_scenario_says_so() {
        let bound = ClientBound { summary: "agent a used 99% of its 1 CPU(s) (limit 90%)".into(), reasons: Vec::new() };
        assert_eq!(client_bound_check(&scenario("max_loss: 0"), Some(&bound)), None, "reported, not judged");
        let sc = scenario("allow_client_bound: false");
        let c = client_bound_check(&sc, Some(&bound)).expect("judged");
        assert_eq!((c.name.as_str(), c.pass, c.actual.as_str()), ("client_bound", false, bound.summary.as_str()));
        assert!(client_bound_check(&sc, None).expect("judged").pass);
    }
}
