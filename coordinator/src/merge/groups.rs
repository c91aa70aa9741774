//! Whole-run group stats: the final reports' histograms and counters
//! summed per producer and consumer group, and each group's report (rate
//! inside the measurement window, latency, lag, waits, clock error of its
//! end-to-end samples) with its histograms. May import `input`, `series`
//! and `stats` (siblings).

use std::collections::BTreeMap;

use common::proto;
use common::report::{GroupReport, HistogramRecord};
use common::scenario::{AckMode, ConsumerGroup, ProducerGroup, Scenario};
use common::stats::GroupPhases;

use super::input::{AgentOutcome, Ctx, Lost};
use super::series::Role;
use super::stats::{hist_record, latency, wait_percent};

/// Whole-run stats per group index, producers and consumers.
pub(super) type ByGroup = BTreeMap<u32, GroupPhases>;

/// Sums the agents' final reports per group; a histogram that does not
/// decode and every note an agent sent become notes.
pub(super) fn whole_run(agents: &[AgentOutcome], notes: &mut Vec<String>) -> (ByGroup, ByGroup) {
    let mut pgroups = ByGroup::new();
    let mut cgroups = ByGroup::new();
    for a in agents {
        let Some(f) = &a.final_report else { continue };
        for g in &f.groups {
            match GroupPhases::from_proto(g) {
                Ok(s) => {
                    let map = if g.role == proto::Role::Producer as i32 { &mut pgroups } else { &mut cgroups };
                    map.entry(g.group).or_default().merge(&s);
                }
                Err(e) => notes.push(format!("agent {}: a histogram did not decode: {e}", a.address)),
            }
        }
        for n in &f.notes {
            notes.push(format!("agent {}: {n}", a.address));
        }
    }
    (pgroups, cgroups)
}

/// Every group's report (producers first) and histograms, for the measurement phase.
pub(super) fn reports(
    cx: &Ctx,
    pgroups: &ByGroup,
    cgroups: &ByGroup,
    lost: &Lost,
) -> (Vec<GroupReport>, Vec<HistogramRecord>) {
    let mut groups = Vec::new();
    let mut histograms = Vec::new();
    for (i, g) in cx.sc.producers.iter().enumerate() {
        let s = pgroups.get(&(i as u32)).cloned().unwrap_or_default();
        groups.push(producer_group(cx, i, g, &s, lost));
        histograms.push(hist_record(&g.name, "producer", "publish_response", &s.measure.response));
        histograms.push(hist_record(&g.name, "producer", "publish_service", &s.measure.service));
    }
    for (i, g) in cx.sc.consumers.iter().enumerate() {
        let s = cgroups.get(&(i as u32)).cloned().unwrap_or_default();
        groups.push(consumer_group(cx, i, g, &s));
        histograms.push(hist_record(&g.name, "consumer", "e2e", &s.measure.service));
        histograms.push(hist_record(&g.name, "consumer", "e2e_response", &s.measure.response));
        if ack_unmeasured(cx.ack_not_timed, cx.sc, g, &s).is_none() {
            histograms.push(hist_record(&g.name, "consumer", "ack", &s.measure.ack));
        }
    }
    (groups, histograms)
}

/// Producer group `i`'s report from its whole-run stats `s`.
fn producer_group(cx: &Ctx, i: usize, g: &ProducerGroup, s: &GroupPhases, lost: &Lost) -> GroupReport {
    let m = &s.measure;
    let dur_s = cx.dur_s;
    // Over the producers that reported (all of them, unless agents were lost).
    let reported: usize = cx.reported().map(|a| a.shard_producers.iter().filter(|p| p.group == i).count()).sum();
    let target = target_rate(cx, i, g, lost);
    let acked = achieved(cx, i, target, s);
    GroupReport {
        name: g.name.clone(),
        role: "producer".into(),
        topic: g.topic.clone(),
        subscription: None,
        subscription_type: None,
        instances: g.count,
        messages: m.acked,
        bytes: m.bytes,
        rate_msgs_per_s: acked / dur_s,
        rate_bytes_per_s: acked / dur_s * m.bytes as f64 / m.acked.max(1) as f64,
        target_rate_msgs_per_s: target,
        closed_loop: g.closed_loop(),
        send_errors: s.total().send_errors,
        warmup_messages: s.warmup.acked,
        latency_us: latency(&m.response, &cx.sc.report.percentiles),
        alt_latency_us: latency(&m.service, &cx.sc.report.percentiles),
        latency: named(&cx.sc.report.percentiles, [("publish_response", &m.response), ("publish_service", &m.service)]),
        ack_latency_not_measured: None,
        late_sends: m.late_sends + s.warmup.late_sends,
        max_lag_ms: m.max_lag_ns.max(s.warmup.max_lag_ns) as f64 / 1e6,
        unsent: m.unsent + s.warmup.unsent,
        in_flight_wait_percent: (reported > 0).then(|| wait_percent(m.window_wait_ns, reported as f64, dur_s)),
        duplicates: 0,
        reordered: 0,
        redelivered: 0,
        e2e_clock_error_us: None,
        errors_by_kind: s.total().errors,
    }
}

/// The acknowledged sends of producer group `i` that make its achieved
/// rate: the acks inside the measurement window (the broker's pace: what
/// the drain brings later is not counted), but never more than the window's
/// schedule intended (`target` × the window): a producer catching up on a
/// backlog due in the warmup shows lag (`max_lag_ms`, `late_sends`), not
/// more than its target. Far behind (overload) it is the acks: what the
/// broker sustained. A closed loop has no target.
fn achieved(cx: &Ctx, i: usize, target: Option<f64>, s: &GroupPhases) -> f64 {
    let in_window = cx.in_window(Role::Producer, i, s.measure.acked);
    match target {
        Some(t) => in_window.min(t * cx.dur_s),
        None => in_window,
    }
}

/// The schedule's mean over the measurement (a load shape's integral), for
/// the producers whose agents reported, under run control's changes (the
/// target in force at each moment).
fn target_rate(cx: &Ctx, i: usize, g: &ProducerGroup, lost: &Lost) -> Option<f64> {
    let phases = &cx.sc.phases;
    let share = super::input::pace_share(cx.paces, i, cx.window);
    g.target_rate(phases.warmup, phases.send_end()).map(|t| t * share).map(|t| {
        if lost.agents.is_empty() || g.total_rate_milli == 0 {
            t
        } else {
            let left = cx
                .reported()
                .flat_map(|a| a.shard_producers.iter().filter(|p| p.group == i))
                .map(|p| p.rate_milli)
                .sum::<u64>() as f64;
            t * left / g.total_rate_milli as f64
        }
    })
}

/// Consumer group `i`'s report from its whole-run stats `s`.
fn consumer_group(cx: &Ctx, i: usize, g: &ConsumerGroup, s: &GroupPhases) -> GroupReport {
    let m = &s.measure;
    let t = s.total();
    let dur_s = cx.dur_s;
    let ack_unmeasured = ack_unmeasured(cx.ack_not_timed, cx.sc, g, s);
    GroupReport {
        name: g.name.clone(),
        role: "consumer".into(),
        topic: g.topic.clone(),
        subscription: Some(g.subscription.clone()),
        subscription_type: Some(g.sub_type.as_str().into()),
        instances: g.count,
        messages: m.received,
        bytes: m.bytes,
        rate_msgs_per_s: cx.in_window(Role::Consumer, i, m.received) / dur_s,
        rate_bytes_per_s: cx.in_window(Role::Consumer, i, m.received) / dur_s * m.bytes as f64
            / m.received.max(1) as f64,
        target_rate_msgs_per_s: None,
        closed_loop: false,
        send_errors: 0,
        warmup_messages: s.warmup.received,
        latency_us: latency(&m.service, &cx.sc.report.percentiles),
        alt_latency_us: latency(&m.response, &cx.sc.report.percentiles),
        latency: match ack_unmeasured {
            None => named(
                &cx.sc.report.percentiles,
                [("e2e_service", &m.service), ("e2e_response", &m.response), ("ack", &m.ack)],
            ),
            Some(_) => named(&cx.sc.report.percentiles, [("e2e_service", &m.service), ("e2e_response", &m.response)]),
        },
        ack_latency_not_measured: ack_unmeasured,
        late_sends: 0,
        max_lag_ms: 0.0,
        unsent: 0,
        in_flight_wait_percent: None,
        duplicates: t.duplicates,
        reordered: t.reordered,
        redelivered: t.redelivered,
        e2e_clock_error_us: e2e_clock_error_ns(cx.sc, cx.agents, i).map(|ns| ns as f64 / 1000.0),
        errors_by_kind: t.errors.clone(),
    }
}

/// Why consumer group `g` has no ack latency, when it has none: the
/// broker's client does not time acks (`not_timed`), or the group
/// acknowledged deliveries and not one ack timing came back with them
/// (agents older than this coordinator send none; so do acks that all
/// failed). A figure of 0 acks would read as measured.
fn ack_unmeasured(not_timed: Option<&str>, sc: &Scenario, g: &ConsumerGroup, s: &GroupPhases) -> Option<String> {
    if let Some(why) = not_timed {
        return Some(format!("not measured on {}: {why}", sc.broker.kind.as_str()));
    }
    let received = s.warmup.received + s.measure.received;
    let acks_due = match g.ack {
        AckMode::Individual => received > 0,
        AckMode::Cumulative => received >= u64::from(g.ack_every.max(1)),
    };
    (acks_due && s.warmup.ack.is_empty() && s.measure.ack.is_empty()).then(|| {
        format!(
            "not reported: no ack timing came with this group's {received} deliveries \
             (agents older than this coordinator send none; so do acks that all failed)"
        )
    })
}

/// `groups[].latency`: each kind's latency, by name.
fn named<const N: usize>(
    percentiles: &[common::percentile::Percentile],
    kinds: [(&str, &common::hist::Hist); N],
) -> BTreeMap<String, common::report::Latency> {
    kinds.into_iter().map(|(k, h)| (k.to_string(), latency(h, percentiles))).collect()
}

/// How far off one end-to-end sample of consumer group `g` can be from
/// the clocks: the worst sum of two clock error bounds over the pairs of a
/// producer agent of its topic and a consumer agent of the group that are
/// different processes (one process has one clock). None: no such pair.
fn e2e_clock_error_ns(sc: &Scenario, agents: &[AgentOutcome], g: usize) -> Option<i64> {
    let topic = &sc.consumers.get(g)?.topic;
    // The worst error per process on each side, then the worst pair of
    // different processes among each side's two worst (linear in agents).
    let producing =
        worst_two(agents.iter().filter(|a| {
            a.shard_producers.iter().any(|p| sc.producers.get(p.group).is_some_and(|pg| pg.topic == *topic))
        }));
    let consuming = worst_two(agents.iter().filter(|a| a.shard_consumers.iter().any(|c| c.group == g)));
    producing.iter().flat_map(|p| consuming.iter().filter(move |c| c.1 != p.1).map(move |c| p.0 + c.0)).max()
}

/// The two processes with the worst clock error among `side` (each
/// process's worst agent), worst first.
fn worst_two<'a>(side: impl Iterator<Item = &'a AgentOutcome>) -> Vec<(i64, &'a str)> {
    let mut per: BTreeMap<&'a str, i64> = BTreeMap::new();
    for a in side {
        let e = per.entry(a.hello.instance_id.as_str()).or_insert(i64::MIN);
        *e = (*e).max(a.clock_error_ns);
    }
    let mut v: Vec<(i64, &'a str)> = per.into_iter().map(|(k, e)| (e, k)).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.truncate(2);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(ack: &str) -> Scenario {
        let yaml = format!(
            "name: t\nbroker: {{kind: memory}}\ntopics: [{{name: t}}]\n\
             producers: [{{name: p, topic: t, rate: 10}}]\n\
             consumers: [{{name: c, topic: t, subscription: s, {ack}}}]\n\
             phases: {{warmup: 0s, duration: 1s}}\n"
        );
        common::scenario::load_str(&yaml, "test", &[]).expect("scenario")
    }

    #[test]
    fn acks_that_came_back_untimed_are_not_reported_as_a_figure() {
        let sc = scenario("ack: individual");
        let g = &sc.consumers[0];
        let mut s = GroupPhases::default();
        assert_eq!(ack_unmeasured(None, &sc, g, &s), None, "nothing received, nothing to time");
        s.measure.received = 40;
        let why = ack_unmeasured(None, &sc, g, &s).expect("40 deliveries, no ack timing");
        assert!(why.contains("40 deliveries") && why.contains("older"), "{why}");
        s.measure.ack.record_ns(2_000_000);
        assert_eq!(ack_unmeasured(None, &sc, g, &s), None, "timed acks are a figure");
        let why = ack_unmeasured(Some("acks are only queued"), &sc, g, &s).expect("the client's reason");
        assert_eq!(why, "not measured on memory: acks are only queued");
    }

    #[test]
    fn cumulative_acks_are_due_only_after_ack_every_deliveries() {
        let sc = scenario("type: exclusive, ack: cumulative, ack_every: 50");
        let g = &sc.consumers[0];
        let mut s = GroupPhases::default();
        s.warmup.received = 49;
        assert_eq!(ack_unmeasured(None, &sc, g, &s), None, "no cumulative ack was due yet");
        s.measure.received = 1;
        assert!(ack_unmeasured(None, &sc, g, &s).is_some(), "the 50th delivery called for one");
    }
}
