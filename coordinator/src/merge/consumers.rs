//! Who received what, per subscription, from the agents' per-consumer
//! receipts: each consumer's deliveries and share, how unevenly they
//! spread (`consumer_imbalance_percent`), when the receiving consumer of an
//! exclusive or failover subscription changed (`switches`), and whether a
//! key of a key_shared subscription was on two consumers at once
//! (`key_overlaps`); a note for each broken promise of a subscription type.
//!
//! Activity arrives as spans (runs of receipts with no gap longer than 1 s,
//! coordinator time). What no agent reported stays absent ("unknown"),
//! never 0. May import `input` (sibling).

use std::collections::{BTreeMap, HashMap};

use common::proto::{ConsumerReceipts, KeySpans};
use common::report::{
    ConsumerShare, KeyOverlaps, SubscriptionReport, Switch, Switches, ACTIVITY_MAX_KEYS, ACTIVITY_MAX_KEY_SPANS,
    ACTIVITY_MAX_SPANS,
};
use common::units::thousands;

use super::input::AgentOutcome;

/// Overlaps of two consumers' spans up to this long are a hand-over, not
/// two active consumers (250 ms).
const GRACE_NS: i64 = 250_000_000;
/// Switches listed per subscription (all are counted).
const LISTED_SWITCHES: usize = 50;
/// Overlapping keys named per subscription (all are counted).
const SAMPLED_KEYS: usize = 10;

/// One consumer instance as an agent reported it.
struct Consumer<'a> {
    name: String,
    agent: String,
    r: &'a ConsumerReceipts,
}

/// Fills the per-consumer fields of every subscription; `start_ns`: the
/// start instant (times are seconds from it).
pub(super) fn fill(subs: &mut [SubscriptionReport], agents: &[AgentOutcome], start_ns: i64, notes: &mut Vec<String>) {
    for s in subs.iter_mut() {
        let cs = gather(agents, &s.topic, &s.subscription);
        if cs.is_empty() {
            continue;
        }
        s.by_consumer = shares(&cs);
        if matches!(s.sub_type.as_str(), "exclusive" | "failover") {
            // One consumer receives by design: no spread to judge.
            s.switches = Some(switches(&cs, start_ns));
        } else {
            s.consumer_imbalance_percent = imbalance(&s.by_consumer);
            if s.sub_type == "key_shared" {
                s.key_overlaps = key_overlaps(&cs, start_ns);
            }
        }
        notes.extend(expectation_notes(s));
    }
}

/// Every consumer of (topic, subscription) on the agents that sent a final
/// report, by name.
fn gather<'a>(agents: &'a [AgentOutcome], topic: &str, subscription: &str) -> Vec<Consumer<'a>> {
    let mut out = Vec::new();
    for a in agents {
        let Some(f) = &a.final_report else { continue };
        let agent = if a.hello.agent_id.is_empty() { a.address.clone() } else { a.hello.agent_id.clone() };
        for s in f.subscriptions.iter().filter(|s| s.topic == topic && s.subscription == subscription) {
            for r in &s.consumers {
                out.push(Consumer { name: format!("{agent}/{}#{}", r.group, r.index), agent: agent.clone(), r });
            }
        }
    }
    out.sort_by(|a, b| (&a.r.group, a.r.index, &a.agent).cmp(&(&b.r.group, b.r.index, &b.agent)));
    out
}

fn shares(cs: &[Consumer<'_>]) -> Vec<ConsumerShare> {
    let total: u64 = cs.iter().map(|c| c.r.deliveries).sum();
    cs.iter()
        .map(|c| ConsumerShare {
            name: c.name.clone(),
            agent: c.agent.clone(),
            deliveries: c.r.deliveries,
            unique: c.r.unique,
            share_percent: if total == 0 { 0.0 } else { 100.0 * c.r.deliveries as f64 / total as f64 },
        })
        .collect()
}

/// (max − min) / mean of the consumers' deliveries, in percent; None with
/// fewer than two consumers or nothing delivered.
pub(super) fn imbalance(by: &[ConsumerShare]) -> Option<f64> {
    if by.len() < 2 {
        return None;
    }
    let max = by.iter().map(|c| c.deliveries).max()? as f64;
    let min = by.iter().map(|c| c.deliveries).min()? as f64;
    let mean = by.iter().map(|c| c.deliveries as f64).sum::<f64>() / by.len() as f64;
    (mean > 0.0).then(|| 100.0 * (max - min) / mean)
}

/// A span of receipts: (consumer, first_ns, last_ns).
type Span = (usize, i64, i64);

/// The receiving consumer's changes per partition, and the time two
/// consumers received from one partition at once.
fn switches(cs: &[Consumer<'_>], start_ns: i64) -> Switches {
    let mut parts: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    for (i, c) in cs.iter().enumerate() {
        for p in &c.r.partitions {
            parts.entry(p.partition).or_default().extend(p.spans.iter().map(|s| (i, s.first_ns, s.last_ns)));
        }
    }
    let mut out = Switches { cut_short: cs.iter().any(|c| c.r.spans_capped), ..Switches::default() };
    let mut all = Vec::new();
    for (p, mut spans) in parts {
        spans.sort_by_key(|s| (s.1, s.2));
        out.concurrent_s += concurrent_ns(&spans) as f64 / 1e9;
        let mut current: Option<usize> = None;
        for &(c, first, _) in &spans {
            match current {
                Some(prev) if prev != c => all.push(Switch {
                    at_s: (first - start_ns) as f64 / 1e9,
                    from: cs[prev].name.clone(),
                    to: cs[c].name.clone(),
                    partition: u32::try_from(p).ok(),
                }),
                _ => {}
            }
            current = Some(c);
        }
    }
    all.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out.count = all.len() as u64;
    all.truncate(LISTED_SWITCHES);
    out.list = all;
    out
}

/// Time (ns) during which two or more consumers' spans overlap, counting
/// only overlaps longer than [`GRACE_NS`]. `spans` sorted by start; one
/// consumer's spans never overlap each other.
fn concurrent_ns(spans: &[Span]) -> i64 {
    let mut edges: Vec<(i64, i32)> = spans.iter().flat_map(|s| [(s.1, 1), (s.2, -1)]).collect();
    // At one instant, ends before starts: touching spans do not overlap.
    edges.sort();
    let (mut active, mut since, mut total) = (0, 0i64, 0i64);
    for (t, d) in edges {
        if active >= 2 && active + d < 2 && t - since > GRACE_NS {
            total += t - since;
        }
        if active < 2 && active + d >= 2 {
            since = t;
        }
        active += d;
    }
    total
}

/// Keys received by two consumers at overlapping times; None when no
/// consumer tracked a key (not key_shared, or the producers sent none).
fn key_overlaps(cs: &[Consumer<'_>], start_ns: i64) -> Option<KeyOverlaps> {
    let mut keys: HashMap<u64, Vec<Span>> = HashMap::new();
    let mut untracked = 0;
    for (i, c) in cs.iter().enumerate().filter(|(_, c)| c.r.keys_tracked) {
        untracked += c.r.keys_untracked;
        for KeySpans { key, bounds } in &c.r.keys {
            keys.entry(*key).or_default().extend(bounds.chunks_exact(2).map(|b| (i, b[0], b[1])));
        }
    }
    if keys.is_empty() {
        return None;
    }
    let mut out =
        KeyOverlaps { keys_checked: keys.len() as u64, untracked_receipts: untracked, ..KeyOverlaps::default() };
    let mut sorted: Vec<_> = keys.into_iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    for (key, mut spans) in sorted {
        spans.sort_by_key(|s| (s.1, s.2));
        let Some((a, b, at)) = first_overlap(&spans) else { continue };
        out.count += 1;
        if out.sample.len() < SAMPLED_KEYS {
            let at_s = (at - start_ns) as f64 / 1e9;
            out.sample.push(format!("key {key}: {} and {} at {at_s:.1} s", cs[a].name, cs[b].name));
        }
    }
    Some(out)
}

/// The first two consumers whose spans of one key overlap, and when.
/// `spans` sorted by start.
fn first_overlap(spans: &[Span]) -> Option<(usize, usize, i64)> {
    // Per consumer, the latest end of its spans so far.
    let mut ends: Vec<(usize, i64)> = Vec::new();
    for &(c, first, last) in spans {
        if let Some(&(other, _)) = ends.iter().find(|(o, end)| *o != c && first <= *end) {
            return Some((other, c, first));
        }
        match ends.iter_mut().find(|(o, _)| *o == c) {
            Some(e) => e.1 = e.1.max(last),
            None => ends.push((c, last)),
        }
    }
    None
}

/// Notes for what breaks the promise of the subscription's type.
fn expectation_notes(s: &SubscriptionReport) -> Vec<String> {
    let mut notes = Vec::new();
    let name = format!("subscription `{}` ({}) on `{}`", s.subscription, s.sub_type, s.topic);
    if let Some(sw) = s.switches.as_ref().filter(|sw| sw.concurrent_s > 0.0) {
        let receiving = s.by_consumer.iter().filter(|c| c.deliveries > 0).count();
        notes.push(format!(
            "{name}: {receiving} consumers received, two or more from one partition at once for {:.1} s (it promises one active consumer at a time)",
            sw.concurrent_s
        ));
    }
    if let Some(k) = s.key_overlaps.as_ref().filter(|k| k.count > 0) {
        notes.push(format!(
            "{name}: {} of {} keys were on two consumers at once (it promises each key to one consumer at a time), e.g. {}",
            k.count,
            k.keys_checked,
            k.sample.first().map_or("", String::as_str)
        ));
    }
    if s.key_overlaps.as_ref().is_some_and(|k| k.untracked_receipts > 0) {
        notes.push(format!(
            "{name}: the key check was cut short by its caps ({} keys, {ACTIVITY_MAX_KEY_SPANS} spans per key per consumer)",
            thousands(ACTIVITY_MAX_KEYS)
        ));
    }
    if s.switches.as_ref().is_some_and(|sw| sw.cut_short) {
        notes.push(format!(
            "{name}: a consumer's activity reached its cap ({} spans per partition): later switches are not seen",
            thousands(ACTIVITY_MAX_SPANS)
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::proto::{ActivitySpan, PartitionSpans};

    const S: i64 = 1_000_000_000;

    fn receipts(index: u32, deliveries: u64, spans: &[(i64, i64)], keys: &[(u64, &[i64])]) -> ConsumerReceipts {
        ConsumerReceipts {
            group: "g".into(),
            index,
            deliveries,
            unique: deliveries,
            partitions: vec![PartitionSpans {
                partition: -1,
                spans: spans.iter().map(|&(a, b)| ActivitySpan { first_ns: a, last_ns: b, deliveries: 1 }).collect(),
            }],
            keys: keys.iter().map(|(k, b)| KeySpans { key: *k, bounds: b.to_vec() }).collect(),
            keys_tracked: !keys.is_empty(),
            ..Default::default()
        }
    }

    fn consumers(rs: &[ConsumerReceipts]) -> Vec<Consumer<'_>> {
        rs.iter().map(|r| Consumer { name: format!("a/g#{}", r.index), agent: "a".into(), r }).collect()
    }

    #[test]
    fn a_cap_reached_is_a_note_that_names_the_agents_caps() {
        let mut s = crate::testutil::subscription("s", 0, false);
        s.sub_type = "key_shared".into();
        s.key_overlaps = Some(KeyOverlaps { untracked_receipts: 3, ..Default::default() });
        s.switches = Some(Switches { cut_short: true, ..Default::default() });
        let notes = expectation_notes(&s);
        let keys = format!("({} keys, {ACTIVITY_MAX_KEY_SPANS} spans per key", thousands(ACTIVITY_MAX_KEYS));
        let spans = format!("({} spans per partition)", thousands(ACTIVITY_MAX_SPANS));
        assert!(notes.iter().any(|n| n.contains("key check was cut short") && n.contains(&keys)), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("reached its cap") && n.contains(&spans)), "{notes:?}");
        assert!(notes.iter().all(|n| n.starts_with("subscription `s` (key_shared) on `t`")), "{notes:?}");
    }

    #[test]
    fn shares_and_imbalance_of_the_deliveries() {
        let rs = [receipts(0, 100, &[], &[]), receipts(1, 200, &[], &[]), receipts(2, 300, &[], &[])];
        let by = shares(&consumers(&rs));
        let pct: Vec<f64> = by.iter().map(|c| (c.share_percent * 10.0).round() / 10.0).collect();
        assert_eq!(pct, vec![16.7, 33.3, 50.0]);
        // (300 - 100) / 200 = 100 %.
        assert_eq!(imbalance(&by), Some(100.0));
        assert_eq!(imbalance(&by[..1]), None, "one consumer: no spread to judge");
        let none = [receipts(0, 0, &[], &[]), receipts(1, 0, &[], &[])];
        assert_eq!(imbalance(&shares(&consumers(&none))), None, "nothing delivered: unknown, not 0");
    }

    #[test]
    fn a_switch_is_timed_and_a_handover_is_not_two_active_consumers() {
        // #0 receives 0-10 s, #1 from 10.1 s (a hand-over), then #0 again 20-30 s
        // while #1 still receives: 10 s of two active consumers.
        let rs = [
            receipts(0, 10, &[(0, 10 * S), (20 * S, 30 * S)], &[]),
            receipts(1, 10, &[(10 * S + S / 10, 30 * S)], &[]),
        ];
        let sw = switches(&consumers(&rs), 0);
        assert_eq!(sw.count, 2);
        assert_eq!(sw.list[0].at_s, 10.1);
        assert_eq!((sw.list[0].from.as_str(), sw.list[0].to.as_str()), ("a/g#0", "a/g#1"));
        assert_eq!(sw.list[1].at_s, 20.0);
        assert_eq!(sw.list[0].partition, None);
        assert_eq!(sw.concurrent_s, 10.0);
        // Overlaps within the grace are a hand-over.
        let rs = [receipts(0, 10, &[(0, 10 * S)], &[]), receipts(1, 10, &[(10 * S - S / 10, 20 * S)], &[])];
        let sw = switches(&consumers(&rs), 0);
        assert_eq!((sw.count, sw.concurrent_s), (1, 0.0));
    }

    #[test]
    fn a_key_on_two_consumers_at_once_is_an_overlap_a_move_is_not() {
        // Key 1 moves from #0 to #1 at 5 s (no overlap); key 2 is on both 3-4 s.
        let k0: &[(u64, &[i64])] = &[(1, &[0, 4 * S]), (2, &[0, 4 * S])];
        let k1: &[(u64, &[i64])] = &[(1, &[5 * S, 9 * S]), (2, &[3 * S, 9 * S])];
        let rs = [receipts(0, 10, &[], k0), receipts(1, 10, &[], k1)];
        let k = key_overlaps(&consumers(&rs), 0).expect("keys tracked");
        assert_eq!((k.count, k.keys_checked), (1, 2));
        assert_eq!(k.sample, vec!["key 2: a/g#0 and a/g#1 at 3.0 s".to_string()]);
        let rs = [receipts(0, 10, &[], &[]), receipts(1, 10, &[], &[])];
        assert_eq!(key_overlaps(&consumers(&rs), 0), None, "no key seen: unknown");
    }
}
