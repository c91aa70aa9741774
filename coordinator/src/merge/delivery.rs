//! Delivery accounting per subscription: the acknowledged set of every
//! producer and the received sets of every subscription (range sets
//! unioned across consumers and agents), compared — expected, received,
//! lost, duplicated, redelivered, received but never acknowledged — and the
//! run's totals from them. May import `groups`, `input` and `series`
//! (siblings).

use std::collections::{BTreeMap, HashMap};

use common::rangeset::RangeSet;
use common::report::{SubscriptionReport, Totals};
use common::scenario::ConsumerGroup;

use super::groups::ByGroup;
use super::input::{AgentOutcome, Ctx, Lost};
use super::series::backlog_summary;

/// One subscription's deliveries, summed over its consumers and agents.
#[derive(Default)]
struct Sub {
    /// Received sets per producer id.
    received: HashMap<u64, RangeSet>,
    duplicates: u64,
    redelivered: u64,
    /// Messages more than one consumer received.
    overlaps: u64,
    redelivery_causes: u64,
    reordered: u64,
    deliveries: u64,
    undecodable: u64,
    partitions: BTreeMap<u32, u64>,
}

/// One producer's sends as its agents reported them.
#[derive(Default)]
struct Sends {
    topic: String,
    acked: RangeSet,
    sent: u64,
    /// (interval index, sends gone out by its end), in order.
    marks: Vec<(u64, u64)>,
}

impl Sends {
    /// `[a, b)` counted into `out` by the interval each seq went out in:
    /// the first mark past it (the last mark's interval past them all;
    /// nothing without marks).
    fn count_by_interval(&self, (a, b): (u64, u64), out: &mut BTreeMap<u64, u64>) {
        let mut cur = a;
        while cur < b {
            let i = self.marks.partition_point(|m| m.1 <= cur);
            let (k, end) = match (self.marks.get(i), self.marks.last()) {
                (Some(&(k, sent)), _) => (k, sent.min(b)),
                (None, Some(&(k, _))) => (k, b),
                (None, None) => return,
            };
            *out.entry(k).or_default() += end - cur;
            cur = end;
        }
    }
}

/// What every producer had acknowledged and every subscription received.
pub(super) struct Delivery {
    /// Per producer id.
    acked: HashMap<u64, Sends>,
    /// Per (topic, subscription).
    subs: BTreeMap<(String, String), Sub>,
}

/// One subscription compared with the acknowledged sets of its topic.
struct Tally {
    expected: u64,
    lost: u64,
    unacked_received: u64,
    received_unique: u64,
    missing_sample: Vec<String>,
    /// Received from producers on lost agents (left out of the accounting).
    excluded: u64,
    /// `lost` by the interval the producer sent the message in.
    lost_by_interval: BTreeMap<u64, u64>,
}

impl Delivery {
    /// The sets of every agent that sent its final report.
    pub fn collect(agents: &[AgentOutcome]) -> Delivery {
        let mut acked: HashMap<u64, Sends> = HashMap::new();
        let mut subs: BTreeMap<(String, String), Sub> = BTreeMap::new();
        for a in agents {
            let Some(f) = &a.final_report else { continue };
            for p in &f.producers {
                let set = p.acked.as_ref().map(RangeSet::from_proto).unwrap_or_default();
                let e =
                    acked.entry(p.producer_id).or_insert_with(|| Sends { topic: p.topic.clone(), ..Sends::default() });
                e.acked.union_with(&set);
                e.sent += p.sent;
                e.marks.extend(p.marks.iter().map(|m| (m.interval, m.sent)));
                e.marks.sort_unstable();
            }
            for s in &f.subscriptions {
                let acc = subs.entry((s.topic.clone(), s.subscription.clone())).or_default();
                acc.duplicates += s.duplicates;
                acc.redelivered += s.redelivered;
                acc.overlaps += s.overlaps;
                acc.redelivery_causes += s.redelivery_causes;
                acc.reordered += s.reordered;
                acc.deliveries += s.deliveries;
                acc.undecodable += s.undecodable;
                for (p, n) in &s.partition_deliveries {
                    *acc.partitions.entry(*p).or_default() += n;
                }
                for pr in &s.producers {
                    let set = pr.received.as_ref().map(RangeSet::from_proto).unwrap_or_default();
                    let e = acc.received.entry(pr.producer_id).or_default();
                    acc.overlaps += e.union_with(&set);
                }
            }
        }
        // A message two consumers both got: after a consumer subscribed again
        // or left (the broker flags what it hands to the others), the broker
        // redelivering what it had no ack for; without either, a duplicate.
        for s in subs.values_mut() {
            let overlaps = std::mem::take(&mut s.overlaps);
            if s.redelivery_causes > 0 {
                s.redelivered += overlaps;
            } else {
                s.duplicates += overlaps;
            }
        }
        Delivery { acked, subs }
    }

    /// The totals the producers make: acknowledged, sent, send errors.
    pub fn producer_totals(&self, pgroups: &ByGroup) -> Totals {
        let mut totals = Totals::default();
        for p in self.acked.values() {
            totals.acked += p.acked.len();
            totals.sent += p.sent;
        }
        for g in pgroups.values() {
            totals.send_errors += g.total().send_errors;
        }
        totals
    }

    /// Every consumer group's subscription report, in scenario order, added
    /// into `totals` (loss only for the groups judged). `stalled`: the
    /// (topic, subscription) whose progress stopped before a drain timed
    /// out; `backlogs`: each group's backlog series. Also returns the
    /// messages received from producers on lost agents, and each group's
    /// loss by the interval the messages were sent in (empty when its loss
    /// was not judged).
    pub fn subscriptions(
        &self,
        cx: &Ctx,
        lost: &Lost,
        stalled: &[(String, String)],
        backlogs: &[Vec<(f64, u64, u64)>],
        totals: &mut Totals,
    ) -> (Vec<SubscriptionReport>, u64, Vec<BTreeMap<u64, u64>>) {
        let empty = Sub::default();
        let mut excluded_received = 0u64;
        let mut out = Vec::new();
        let mut lost_by_interval = Vec::new();
        for (ci, c) in cx.sc.consumers.iter().enumerate() {
            let key = (c.topic.clone(), c.subscription.clone());
            let s = self.subs.get(&key).unwrap_or(&empty);
            let t = self.tally(s, &c.topic, lost);
            excluded_received += t.excluded;
            let judged = !lost.not_judged.contains(&ci);
            let stalled = judged
                && stalled.iter().any(|(topic, sname)| *topic == c.topic && *sname == c.subscription)
                && t.lost > 0;
            totals.received += s.deliveries;
            if judged {
                totals.lost += t.lost;
                totals.duplicated += s.duplicates;
                totals.redelivered += s.redelivered;
                totals.reordered += s.reordered;
                totals.unacked_received += t.unacked_received;
            }
            lost_by_interval.push(if judged { t.lost_by_interval.clone() } else { BTreeMap::new() });
            out.push(report(c, s, t, stalled, &backlogs[ci]));
        }
        (out, excluded_received, lost_by_interval)
    }

    /// Subscription `s` against the acknowledged sets of `topic`: up to ten
    /// missing ranges named; what came from producers on lost agents set apart.
    fn tally(&self, s: &Sub, topic: &str, lost: &Lost) -> Tally {
        let mut t = Tally {
            expected: 0,
            lost: 0,
            unacked_received: 0,
            received_unique: 0,
            missing_sample: Vec::new(),
            excluded: 0,
            lost_by_interval: BTreeMap::new(),
        };
        let no_set = RangeSet::new();
        for (pid, p) in &self.acked {
            if p.topic != topic {
                continue;
            }
            let set = &p.acked;
            t.expected += set.len();
            let got = s.received.get(pid).unwrap_or(&no_set);
            let lost = set.difference_len(got);
            t.lost += lost;
            if lost == 0 {
                continue;
            }
            let missing = set.missing_ranges(got, usize::MAX);
            for (a, b) in missing.iter().take(10usize.saturating_sub(t.missing_sample.len())) {
                t.missing_sample.push(format!("{pid}:{a}-{}", b - 1));
            }
            for r in missing {
                p.count_by_interval(r, &mut t.lost_by_interval);
            }
        }
        for (pid, got) in &s.received {
            if lost.producers.contains(pid) {
                // Its acknowledged set never arrived: neither loss nor "unacked".
                t.excluded += got.len();
                continue;
            }
            t.received_unique += got.len();
            let set = self.acked.get(pid).map(|x| &x.acked).unwrap_or(&no_set);
            t.unacked_received += got.difference_len(set);
        }
        t.missing_sample.sort();
        t
    }
}

/// The report of consumer group `c`'s subscription.
fn report(c: &ConsumerGroup, s: &Sub, t: Tally, stalled: bool, backlog: &[(f64, u64, u64)]) -> SubscriptionReport {
    SubscriptionReport {
        topic: c.topic.clone(),
        subscription: c.subscription.clone(),
        sub_type: c.sub_type.as_str().into(),
        consumers: c.count,
        expected: t.expected,
        received_unique: t.received_unique,
        deliveries: s.deliveries,
        lost: t.lost,
        duplicated: s.duplicates,
        redelivered: s.redelivered,
        reordered: s.reordered,
        unacked_received: t.unacked_received,
        undecodable: s.undecodable,
        partition_deliveries: s.partitions.clone(),
        missing_sample: t.missing_sample,
        stalled,
        backlog: backlog_summary(backlog),
        // Filled by `consumers` from the agents' per-consumer receipts.
        by_consumer: Vec::new(),
        consumer_imbalance_percent: None,
        switches: None,
        key_overlaps: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_range_is_counted_in_the_intervals_it_was_sent_in() {
        // By the end of interval 0: seqs 0..10 sent; 1: 0..25; 3 (2 was
        // skipped: nothing sent in it): 0..40.
        let p = Sends { marks: vec![(0, 10), (1, 25), (3, 40)], ..Sends::default() };
        let mut out = BTreeMap::new();
        p.count_by_interval((5, 30), &mut out);
        assert_eq!(out, BTreeMap::from([(0, 5), (1, 15), (3, 5)]));
        // Past the last mark: the last mark's interval; without marks: nothing.
        p.count_by_interval((40, 42), &mut out);
        assert_eq!(out[&3], 7);
        let mut none = BTreeMap::new();
        Sends::default().count_by_interval((0, 5), &mut none);
        assert!(none.is_empty());
    }
}
