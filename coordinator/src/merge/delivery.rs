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

/// What every producer had acknowledged and every subscription received.
pub(super) struct Delivery {
    /// Per producer id: its topic, its acknowledged set, its sends.
    acked: HashMap<u64, (String, RangeSet, u64)>,
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
}

impl Delivery {
    /// The sets of every agent that sent its final report.
    pub fn collect(agents: &[AgentOutcome]) -> Delivery {
        let mut acked: HashMap<u64, (String, RangeSet, u64)> = HashMap::new();
        let mut subs: BTreeMap<(String, String), Sub> = BTreeMap::new();
        for a in agents {
            let Some(f) = &a.final_report else { continue };
            for p in &f.producers {
                let set = p.acked.as_ref().map(RangeSet::from_proto).unwrap_or_default();
                let e = acked.entry(p.producer_id).or_insert_with(|| (p.topic.clone(), RangeSet::new(), 0));
                e.1.union_with(&set);
                e.2 += p.sent;
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
        for (_, set, sent) in self.acked.values() {
            totals.acked += set.len();
            totals.sent += sent;
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
    /// messages received from producers on lost agents.
    pub fn subscriptions(
        &self,
        cx: &Ctx,
        lost: &Lost,
        stalled: &[(String, String)],
        backlogs: &[Vec<(f64, u64, u64)>],
        totals: &mut Totals,
    ) -> (Vec<SubscriptionReport>, u64) {
        let empty = Sub::default();
        let mut excluded_received = 0u64;
        let mut out = Vec::new();
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
            out.push(report(c, s, t, stalled, &backlogs[ci]));
        }
        (out, excluded_received)
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
        };
        let no_set = RangeSet::new();
        for (pid, (ptopic, set, _)) in &self.acked {
            if *ptopic != topic {
                continue;
            }
            t.expected += set.len();
            let got = s.received.get(pid).unwrap_or(&no_set);
            t.lost += set.difference_len(got);
            if t.missing_sample.len() < 10 {
                for (a, b) in set.missing_ranges(got, 10 - t.missing_sample.len()) {
                    t.missing_sample.push(format!("{pid}:{a}-{}", b - 1));
                }
            }
        }
        for (pid, got) in &s.received {
            if lost.producers.contains(pid) {
                // Its acknowledged set never arrived: neither loss nor "unacked".
                t.excluded += got.len();
                continue;
            }
            t.received_unique += got.len();
            let set = self.acked.get(pid).map(|x| &x.1).unwrap_or(&no_set);
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
