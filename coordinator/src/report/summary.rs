//! The end-of-run summary `coordinator run` and `coordinator report` print
//! on stdout: groups, every latency by kind, subscriptions (and who
//! received what), backlogs, totals, the ceiling steps, agents, SLOs and
//! notes, from the [`Report`] alone. May import only `report::format`.

use std::fmt::Write as _;

use common::percentile::Percentile;
use common::report::{Latency, Report, SubscriptionReport, LATENCY_KINDS};

use crate::report::format::{fmt_count, fmt_us};

/// How far apart the agents began sending (2+ agents whose producers sent).
/// The offsets are read on each agent's synced clock, so the true spread
/// may differ by up to the two worst clock error bounds.
fn start_line(r: &Report) -> Option<String> {
    let (first, last, n) = r.start_offsets().filter(|&(_, _, n)| n >= 2)?;
    let err_ms =
        r.agents.iter().filter(|a| a.start_offset_ms.is_some()).map(|a| a.clock_error_us).fold(0.0, f64::max) / 1e3;
    Some(format!(
        "start: {n} agent(s) began sending within {:.1} ms of each other (first {first:+.1} ms, last {last:+.1} ms \
         after the start instant; clock error up to ±{err_ms:.3} ms per agent)",
        last - first
    ))
}

/// The end-of-run summary.
pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    groups(&mut o, r);
    latencies(&mut o, r);
    errors(&mut o, r);
    subscriptions(&mut o, r);
    totals(&mut o, r);
    agents(&mut o, r);
    slos_and_notes(&mut o, r);
    o
}

/// The verdict in capitals; an interrupted run's says by what, when and
/// in which phase: `INTERRUPTED (SIGTERM at 6.1 s, in measure)`.
pub fn verdict(r: &Report) -> String {
    match &r.interrupted {
        Some(i) => format!("{} ({} at {:.1} s, in {})", r.verdict.to_uppercase(), i.signal, i.at_s, i.phase),
        None => r.verdict.to_uppercase(),
    }
}

/// The verdict line's tail when the client bounded the figures:
/// `; figures bounded by the client: agent a1 used 99% of its 2 CPU(s) …`.
pub fn client_bound_tail(r: &Report) -> String {
    r.client_bound.as_ref().map(|c| format!("; figures bounded by the client: {}", c.summary)).unwrap_or_default()
}

/// The verdict line, the groups table (a column per reported percentile)
/// and what its latencies mean.
fn groups(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n== {} ({}) — verdict: {}{}", r.scenario, r.run_id, verdict(r), client_bound_tail(r));
    let percentiles = r.reported_percentiles();
    let head =
        format!("{:<22} {:<9} {:<18} {:>10} {:>10} {:>10}", "GROUP", "ROLE", "TOPIC", "MESSAGES", "RATE/s", "TARGET/s");
    let _ = writeln!(o, "{head}{}", percentile_heads(&percentiles));
    for g in &r.groups {
        let target = if g.closed_loop {
            "max".to_string()
        } else {
            g.target_rate_msgs_per_s.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into())
        };
        let rate = format!("{:.1}", g.rate_msgs_per_s);
        let line =
            format!("{:<22} {:<9} {:<18} {:>10} {:>10} {:>10}", g.name, g.role, g.topic, g.messages, rate, target);
        let _ = writeln!(o, "{line}{}", percentile_cells(&percentiles, &g.latency_us));
    }
    let _ = writeln!(o, "(p50..max: producers publish_response, consumers e2e_service; every kind under LATENCY)");
    for g in r.groups.iter() {
        if let Some(err) = g.e2e_clock_error_us {
            let _ = writeln!(
                o,
                "(end-to-end latency of `{}` crosses agent processes: each sample within ±{} of the clocks' sync)",
                g.name,
                fmt_us(err)
            );
        }
    }
    for g in r.groups.iter().filter(|g| g.closed_loop) {
        let _ = writeln!(
            o,
            "(`{}`: closed loop (`rate: max`): no schedule, so its publish latency is service time and no \
             response-time SLO or rate target is judged)",
            g.name
        );
    }
    // Producers held back for room in flight: their pace was the acks', not the schedule's.
    for g in r.groups.iter().filter(|g| g.in_flight_wait_percent.is_some_and(|w| w >= 1.0)) {
        let _ = writeln!(
            o,
            "(`{}`: due to send but held {:.1} % of the measurement for room in flight (`max_in_flight` \
             sends awaiting acks, or client backpressure))",
            g.name,
            g.in_flight_wait_percent.unwrap_or(0.0)
        );
    }
}

/// A column head per reported percentile, then `max`.
fn percentile_heads(ps: &[Percentile]) -> String {
    let mut out: String = ps.iter().map(|p| format!(" {:>9}", p.label())).collect();
    let _ = write!(out, " {:>9}", "max");
    out
}

/// A cell per reported percentile of `l` ("-" where it has no figure), then its max.
fn percentile_cells(ps: &[Percentile], l: &Latency) -> String {
    let mut out: String =
        ps.iter().map(|p| format!(" {:>9}", l.at(*p).map(fmt_us).unwrap_or_else(|| "-".into()))).collect();
    let _ = write!(out, " {:>9}", fmt_us(l.max));
    out
}

/// Every group's latencies, one line per kind (`groups[].latency`), what
/// each kind measures, and why a consumer group's ack latency is missing.
fn latencies(o: &mut String, r: &Report) {
    if r.groups.iter().all(|g| g.latency.is_empty()) {
        return; // an older report
    }
    let percentiles = r.reported_percentiles();
    let _ = writeln!(o, "\nLATENCY (measurement){:<9} {:<18}{}", "", "KIND", percentile_heads(&percentiles));
    for g in &r.groups {
        let name = format!("{} ({})", g.name, g.role);
        for (_, kind, _) in LATENCY_KINDS.iter().filter(|(role, _, _)| *role == g.role) {
            if let Some(l) = g.latency.get(*kind) {
                let _ = writeln!(o, "{name:<30} {kind:<18}{}", percentile_cells(&percentiles, l));
            } else if let (&"ack", Some(why)) = (kind, &g.ack_latency_not_measured) {
                let _ = writeln!(o, "{name:<30} {kind:<18} {why}");
            }
        }
    }
    let roles: Vec<&str> = r.groups.iter().map(|g| g.role.as_str()).collect();
    for (_, kind, what) in LATENCY_KINDS.iter().filter(|(role, _, _)| roles.contains(role)) {
        let _ = writeln!(o, "({kind}: {what})");
    }
}

/// The delivery table per subscription and the backlogs worth a line.
fn subscriptions(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "\n{:<24} {:<11} {:>10} {:>10} {:>8} {:>10} {:>9} {:>9}",
        "SUBSCRIPTION", "TYPE", "EXPECTED", "RECEIVED", "LOST", "DUPLICATE", "REDELIVER", "REORDER"
    );
    for s in &r.subscriptions {
        let _ = writeln!(
            o,
            "{:<24} {:<11} {:>10} {:>10} {:>8} {:>10} {:>9} {:>9}{}",
            format!("{}/{}", s.topic, s.subscription),
            s.sub_type,
            s.expected,
            s.received_unique,
            s.lost,
            s.duplicated,
            s.redelivered,
            s.reordered,
            if s.stalled { "  STALLED" } else { "" }
        );
    }
    delivered_twice(o, r);
    for s in &r.subscriptions {
        who_received(o, s);
    }
    // A backlog worth a line: a late start, a pause, consumers behind.
    for s in r.subscriptions.iter().filter(|s| s.backlog.max >= 100 && s.backlog.max * 20 >= s.expected) {
        let b = &s.backlog;
        let _ = writeln!(
            o,
            "backlog {}/{}: peak {} at {:.1} s (grew {} msg/s), {}",
            s.topic,
            s.subscription,
            b.max,
            b.max_at_s,
            fmt_count(b.growth_msgs_per_s),
            match b.drained_after_s {
                Some(d) => format!("drained at {} msg/s in {d:.1} s", fmt_count(b.drain_msgs_per_s)),
                None => format!("not drained by the last interval ({} msg/s)", fmt_count(b.drain_msgs_per_s)),
            }
        );
    }
}

/// A flag line for every subscription that got a message more than once:
/// duplicates (delivered again with no consumer subscribing again: not
/// at-least-once at work), with whether `slo.max_duplicates` judged them,
/// and apart from them what the broker redelivered after a consumer
/// subscribed again (at-least-once doing its job).
fn delivered_twice(o: &mut String, r: &Report) {
    let judged = r.slo.iter().find(|c| c.name == "max_duplicates");
    for s in r.subscriptions.iter().filter(|s| s.duplicated > 0 || s.redelivered > 0) {
        let name = format!("{}/{}", s.topic, s.subscription);
        if s.duplicated > 0 {
            let verdict = match judged {
                Some(c) if c.pass => format!("within slo.max_duplicates {}", c.limit),
                Some(c) => format!("FAILS slo.max_duplicates {}", c.limit),
                None => "not judged: set slo.max_duplicates (0 where the broker promises once-only delivery)".into(),
            };
            let _ = writeln!(
                o,
                "DUPLICATES {name}: {} deliveries of messages it already had, with no consumer subscribing again \
                 ({} unique of {} expected); {verdict}",
                s.duplicated, s.received_unique, s.expected
            );
        }
        if s.redelivered > 0 {
            let _ = writeln!(
                o,
                "REDELIVERED {name}: {} deliveries the broker redelivered after a consumer subscribed again \
                 (at-least-once: counted apart from duplicates, not judged by slo.max_duplicates)",
                s.redelivered
            );
        }
    }
}

/// Consumers listed per subscription line (the rest are counted).
const LISTED: usize = 8;

/// Who received what in subscription `s`: each consumer's deliveries and
/// share, the spread; per partition the deliveries; the switches of an
/// exclusive or failover subscription; keys on two consumers at once.
fn who_received(o: &mut String, s: &SubscriptionReport) {
    let name = format!("{}/{}", s.topic, s.subscription);
    if !s.by_consumer.is_empty() {
        let spread = s.consumer_imbalance_percent.map_or(String::new(), |p| format!(", imbalance {p:.1} %"));
        let mut list: Vec<String> = s
            .by_consumer
            .iter()
            .take(LISTED)
            .map(|c| format!("{} {} ({:.1} %)", c.name, c.deliveries, c.share_percent))
            .collect();
        if s.by_consumer.len() > LISTED {
            list.push(format!("and {} more", s.by_consumer.len() - LISTED));
        }
        let n = s.by_consumer.len();
        let _ = writeln!(o, "  {name}: {n} consumer{}{spread}: {}", if n == 1 { "" } else { "s" }, list.join(", "));
    }
    if !s.partition_deliveries.is_empty() {
        let parts: Vec<String> = s.partition_deliveries.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        let _ = writeln!(o, "  {name}: deliveries per partition {}", parts.join(", "));
    }
    if let Some(sw) = &s.switches {
        let _ = writeln!(o, "  {name}: {}", switch_line(sw));
    }
    if let Some(k) = &s.key_overlaps {
        let sample = k.sample.first().map_or(String::new(), |e| format!(", e.g. {e}"));
        let cut = if k.untracked_receipts > 0 { " (check cut short by its caps)" } else { "" };
        let _ = writeln!(o, "  {name}: {} of {} keys on two consumers at once{sample}{cut}", k.count, k.keys_checked);
    }
}

/// The switches of an exclusive or failover subscription, in a line.
fn switch_line(sw: &common::report::Switches) -> String {
    let list: Vec<String> = sw
        .list
        .iter()
        .take(LISTED)
        .map(|w| {
            let part = w.partition.map_or(String::new(), |p| format!(" (partition {p})"));
            format!("{:.1} s {} -> {}{part}", w.at_s, w.from, w.to)
        })
        .collect();
    let more = if sw.count as usize > list.len() {
        format!(" and {} more", sw.count as usize - list.len())
    } else {
        String::new()
    };
    let concurrent = if sw.concurrent_s > 0.0 {
        format!("; TWO ACTIVE AT ONCE for {:.1} s", sw.concurrent_s)
    } else {
        String::new()
    };
    let listed = if list.is_empty() { String::new() } else { format!(": {}", list.join(", ")) };
    format!("{} switch(es) of the receiving consumer{listed}{more}{concurrent}", sw.count)
}

/// Whole-run totals and the ceiling search's steps.
fn totals(o: &mut String, r: &Report) {
    let t = &r.totals;
    let _ = writeln!(
        o,
        "\ntotals: sent {} acked {} send_errors {} received {} lost {} duplicated {} redelivered {} reordered {}",
        t.sent, t.acked, t.send_errors, t.received, t.lost, t.duplicated, t.redelivered, t.reordered
    );
    if let Some(c) = &r.ceiling {
        if c.bound_by == "search_max" {
            // Nothing failed: the search ran out of room, the broker did not.
            let _ = writeln!(
                o,
                "ceiling: at least {} msg/s: every step up to ceiling.max passed; raise ceiling.max ({} step(s))",
                fmt_count(c.rate_msgs_per_s),
                c.steps.len()
            );
        } else {
            let _ = writeln!(
                o,
                "ceiling: {} msg/s, bound by the {} ({} step(s)){}",
                fmt_count(c.rate_msgs_per_s),
                c.bound_by,
                c.steps.len(),
                if c.bound_by == "client" { "; the generator was the limit: add agents" } else { "" }
            );
        }
        for (i, st) in c.steps.iter().enumerate() {
            let _ = writeln!(
                o,
                "  step {:>2}: target {:>9}/s achieved {:>9}/s e2e p99 {:>9} {}",
                i + 1,
                fmt_count(st.target),
                fmt_count(st.achieved),
                fmt_us(st.latency_us.p99),
                st.verdict
            );
        }
    }
}

/// The agents table, clock corrections and how far apart the agents began.
fn agents(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "\n{:<20} {:<16} {:<9} {:>8} {:>8} {:>10} {:>10} {:>12} {:>6}",
        "AGENT", "ADDRESS", "STATUS", "PRODS", "CONS", "PUB/s", "RECV/s", "CLOCK ±ms", "CPU%"
    );
    for a in &r.agents {
        let _ = writeln!(
            o,
            "{:<20} {:<16} {:<9} {:>8} {:>8} {:>10.1} {:>10.1} {:>12} {:>6.1}",
            a.id,
            a.address,
            a.status,
            a.producers,
            a.consumers,
            a.publish_rate_msgs_per_s,
            a.receive_rate_msgs_per_s,
            format!("{:+.3}±{:.3}", a.clock_offset_us / 1e3, a.clock_error_us / 1e3),
            a.cpu_percent
        );
    }
    for a in r.agents.iter().filter(|a| a.clock_updates > 0) {
        let _ = writeln!(
            o,
            "  clock of {}: moved {:+.3} ms during the run ({} correction(s) sent; its stamps followed)",
            a.id,
            a.clock_drift_us / 1e3,
            a.clock_updates
        );
    }
    if let Some(line) = start_line(r) {
        let _ = writeln!(o, "{line}");
    }
}

/// How many error kinds a group's line names (the most frequent first).
const TOP_ERROR_KINDS: usize = 3;

/// Per group with errors: the most frequent kinds (send, receive and ack
/// errors apart), the rest summed.
fn errors(o: &mut String, r: &Report) {
    let with: Vec<_> = r.groups.iter().filter(|g| !g.errors_by_kind.is_empty()).collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "
ERRORS (whole run, by kind)"
    );
    for g in with {
        let mut kinds: Vec<(&String, &u64)> = g.errors_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> =
            kinds.iter().take(TOP_ERROR_KINDS).map(|(k, n)| format!("{} × {k}", fmt_count(**n as f64))).collect();
        let rest: u64 = kinds.iter().skip(TOP_ERROR_KINDS).map(|(_, n)| **n).sum();
        if rest > 0 {
            parts.push(format!("{rest} of {} other kind(s)", kinds.len() - TOP_ERROR_KINDS));
        }
        let _ = writeln!(o, "  {} {}: {}", g.role, g.name, parts.join(", "));
    }
}

/// The SLO checks and the notes.
fn slos_and_notes(o: &mut String, r: &Report) {
    if !r.slo.is_empty() {
        let _ = writeln!(o, "\nSLO");
        for c in &r.slo {
            let _ = writeln!(
                o,
                "  {} {:<36} limit {:>10}  actual {:>10}",
                if c.pass { "ok  " } else { "FAIL" },
                c.name,
                c.limit,
                c.actual
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::{ConsumerShare, KeyOverlaps, Switch, Switches};

    #[test]
    fn who_received_what_lists_consumers_partitions_switches_and_keys() {
        let mut r = crate::testutil::sample_report();
        let share = |name: &str, deliveries, share_percent| ConsumerShare {
            name: name.into(),
            agent: "a0".into(),
            deliveries,
            unique: deliveries,
            share_percent,
        };
        let s = &mut r.subscriptions[0];
        s.by_consumer = vec![share("a0/c#0", 300, 75.0), share("a0/c#1", 100, 25.0)];
        s.consumer_imbalance_percent = Some(100.0);
        s.partition_deliveries = [(0, 250), (1, 150)].into_iter().collect();
        s.switches = Some(Switches {
            count: 1,
            list: vec![Switch { at_s: 2.04, from: "a0/c#0".into(), to: "a0/c#1".into(), partition: Some(1) }],
            concurrent_s: 1.5,
            cut_short: false,
        });
        s.key_overlaps = Some(KeyOverlaps { count: 0, keys_checked: 64, sample: vec![], untracked_receipts: 3 });
        let text = summary(&r);
        let name = format!("{}/{}", r.subscriptions[0].topic, r.subscriptions[0].subscription);
        for line in [
            format!("{name}: 2 consumers, imbalance 100.0 %: a0/c#0 300 (75.0 %), a0/c#1 100 (25.0 %)"),
            format!("{name}: deliveries per partition 0: 250, 1: 150"),
            format!(
                "{name}: 1 switch(es) of the receiving consumer: 2.0 s a0/c#0 -> a0/c#1 (partition 1); TWO ACTIVE AT ONCE for 1.5 s"
            ),
            format!("{name}: 0 of 64 keys on two consumers at once (check cut short by its caps)"),
        ] {
            assert!(text.contains(&line), "{line}\nin\n{text}");
        }
    }

    #[test]
    fn errors_are_shown_by_kind_most_frequent_first() {
        let mut r = crate::testutil::sample_report();
        assert!(!summary(&r).contains("ERRORS"), "no errors, no section");
        let kinds = [
            ("send: timeout", 3),
            ("send: disconnected", 40),
            ("ack: disconnected", 2),
            ("send: x", 1),
            ("send: y", 1),
        ];
        r.groups[0].errors_by_kind = kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let text = summary(&r);
        let line = text.lines().find(|l| l.contains(&r.groups[0].name) && l.contains("×")).expect("an errors line");
        assert!(
            line.contains("40 × send: disconnected, 3 × send: timeout, 2 × ack: disconnected, 2 of 2 other kind(s)"),
            "{line}"
        );
    }

    #[test]
    fn an_interrupted_run_says_by_what_when_and_in_which_phase() {
        let mut r = crate::testutil::sample_report();
        assert!(summary(&r).contains("verdict: FAIL\n"));
        r.verdict = "interrupted".into();
        r.interrupted =
            Some(common::report::Interruption { signal: "SIGTERM".into(), at_s: 6.12, phase: "measure".into() });
        assert!(summary(&r).contains("verdict: INTERRUPTED (SIGTERM at 6.1 s, in measure)\n"), "{}", summary(&r));
    }

    #[test]
    fn summary_says_how_far_apart_the_agents_began_sending() {
        let mut r = crate::testutil::sample_report();
        r.agents[0].start_offset_ms = Some(0.4);
        r.agents[1].start_offset_ms = Some(3.6);
        r.agents[1].clock_error_us = 80.0;
        let text = summary(&r);
        assert!(
            text.contains(
                "start: 2 agent(s) began sending within 3.2 ms of each other (first +0.4 ms, last +3.6 ms \
                 after the start instant; clock error up to ±0.080 ms per agent)"
            ),
            "{text}"
        );
        // One agent with producers: nothing to compare.
        r.agents[1].start_offset_ms = None;
        assert!(!summary(&r).contains("began sending"));
    }

    #[test]
    fn summary_flags_every_subscription_delivered_twice() {
        let mut r = crate::testutil::sample_report();
        assert!(!summary(&r).contains("DUPLICATES") && !summary(&r).contains("REDELIVERED"));
        let s = &mut r.subscriptions[0];
        s.duplicated = 705_964;
        s.redelivered = 12;
        let name = format!("{}/{}", s.topic, s.subscription);
        let text = summary(&r);
        assert!(text.contains(&format!("DUPLICATES {name}: 705964 deliveries")), "{text}");
        assert!(text.contains("not judged: set slo.max_duplicates"), "{text}");
        assert!(text.contains(&format!("REDELIVERED {name}: 12 deliveries the broker redelivered")), "{text}");
        r.slo.push(common::report::SloCheck {
            name: "max_duplicates".into(),
            limit: "0".into(),
            actual: "705964".into(),
            pass: false,
        });
        assert!(summary(&r).contains("FAILS slo.max_duplicates 0"), "{}", summary(&r));
    }

    #[test]
    fn summary_says_when_producers_were_held_for_room_in_flight() {
        let mut r = crate::testutil::sample_report();
        assert!(!summary(&r).contains("room in flight"), "0 % says nothing");
        let g = r.groups.iter_mut().find(|g| g.role == "producer").expect("a producer group");
        g.in_flight_wait_percent = Some(63.25);
        let name = g.name.clone();
        let text = summary(&r);
        assert!(
            text.contains(&format!("(`{name}`: due to send but held 63.2 % of the measurement for room in flight")),
            "{text}"
        );
    }

    #[test]
    fn summary_names_every_latency_by_kind_and_says_why_ack_is_missing() {
        let mut r = crate::testutil::sample_report();
        let text = summary(&r);
        let c = r.groups.iter().find(|g| g.role == "consumer").expect("a consumer group").clone();
        let ack = &c.latency["ack"];
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{} (consumer)", c.name)) && l.contains(" ack "))
            .unwrap_or_else(|| panic!("an ack line: {text}"));
        assert!(line.contains(&fmt_us(ack.p99)), "{line}");
        for kind in ["publish_response", "publish_service", "e2e_service", "e2e_response"] {
            assert!(text.lines().any(|l| l.contains(&format!(" {kind} "))), "{kind}: {text}");
            assert!(text.contains(&format!("({kind}: ")), "{kind} is explained: {text}");
        }
        // A driver that does not time acks: the reason, not a figure.
        let why = "not measured on pulsar: the pulsar client queues an ack without waiting for the broker's receipt";
        for g in r.groups.iter_mut().filter(|g| g.role == "consumer") {
            g.latency.remove("ack");
            g.ack_latency_not_measured = Some(why.into());
        }
        let text = summary(&r);
        assert!(text.contains(&format!("{:<30} {:<18} {why}", format!("{} (consumer)", c.name), "ack")), "{text}");
    }

    #[test]
    fn the_verdict_line_says_when_the_client_bounded_the_figures() {
        let mut r = crate::testutil::sample_report();
        assert!(!summary(&r).contains("bounded by the client"));
        r.client_bound = Some(common::report::ClientBound {
            summary: "agent a1 used 99% of its 2 CPU(s) (limit 90%)".into(),
            reasons: Vec::new(),
        });
        let text = summary(&r);
        assert!(
            text.contains(
                "— verdict: FAIL; figures bounded by the client: agent a1 used 99% of its 2 CPU(s) (limit 90%)\n"
            ),
            "{text}"
        );
    }
}
