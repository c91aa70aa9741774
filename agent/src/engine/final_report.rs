//! The agent's final report of a run: the whole run's group stats, what
//! each producer sent and had acknowledged, and what each subscription
//! (this agent's consumers of one group, merged) received of each producer,
//! with each consumer's own counts and activity (who received what, when).
//!
//! Imports `tally.rs`, and `producer.rs` and `consumer.rs` for their finals.

use std::collections::HashMap;
use std::time::Instant;

use common::plan::Shard;
use common::proto;
use common::rangeset::RangeSet;
use common::scenario::Scenario;

use super::consumer::ConsumerFinal;
use super::producer::ProducerFinal;
use super::tally::GroupTally;
use crate::procstat;

/// The process's CPU time and wall clock when the run was prepared.
#[derive(Debug, Clone, Copy)]
pub(super) struct Since {
    pub cpu_ns: u64,
    pub wall: Instant,
}

/// Everything the final report is built from.
pub(super) struct Finals<'a> {
    pub shard: &'a Shard,
    pub total: GroupTally,
    pub producers: Vec<ProducerFinal>,
    pub consumers: Vec<ConsumerFinal>,
    pub since: Since,
}

/// The final report; problems worth a line in the report join `notes`.
pub(super) fn build(f: Finals<'_>, notes: &mut Vec<String>) -> proto::FinalReport {
    let sc = &f.shard.scenario;
    let first_send_ns = f.producers.iter().filter_map(|p| p.first_send_ns).min().unwrap_or(0);
    let producers = producer_acks(sc, f.producers, notes);
    let mut subs: HashMap<usize, SubAcc> = HashMap::new();
    for c in f.consumers {
        consumer_notes(sc, &c, notes);
        subs.entry(c.inst.group).or_default().add(sc, c);
    }
    let mut sg: Vec<_> = subs.into_iter().collect();
    sg.sort_by_key(|(g, _)| *g);
    let subscriptions = sg.into_iter().map(|(g, acc)| acc.into_proto(sc, g)).collect();
    proto::FinalReport {
        groups: f.total.into_proto(),
        producers,
        subscriptions,
        cpu_ns: procstat::cpu_ns().saturating_sub(f.since.cpu_ns),
        wall_ns: f.since.wall.elapsed().as_nanos() as u64,
        notes: notes.clone(),
        max_rss_bytes: procstat::max_rss_bytes(),
        first_send_ns,
    }
}

/// What each producer sent and had acknowledged; its error becomes a note.
fn producer_acks(sc: &Scenario, finals: Vec<ProducerFinal>, notes: &mut Vec<String>) -> Vec<proto::ProducerAcks> {
    let mut producers = Vec::new();
    for f in finals {
        if let Some(e) = &f.error {
            notes.push(format!("producer {}: {e}", f.inst.id));
        }
        producers.push(proto::ProducerAcks {
            producer_id: u64::from(f.inst.id),
            topic: sc.producers[f.inst.group].topic.clone(),
            group: f.inst.group as u32,
            sent: f.sent,
            acked: Some(f.acked.to_proto()),
            marks: f.marks.iter().map(|&(interval, sent)| proto::SendMark { interval, sent }).collect(),
        });
    }
    producers
}

/// A consumer's error, receive errors and fault stop, as notes.
fn consumer_notes(sc: &Scenario, f: &ConsumerFinal, notes: &mut Vec<String>) {
    let name = &sc.consumers[f.inst.group].name;
    if let Some(e) = &f.error {
        notes.push(format!("consumer {} ({name}): {e}", f.inst.id));
    }
    if let Some(n) = f.errors.note() {
        notes.push(format!("consumer {} ({name}): {n}", f.inst.id));
    }
    if f.faulted {
        notes.push(format!("consumer {} of `{name}` was stopped by a fault action", f.inst.index_in_group));
    }
}

/// This agent's consumers of one subscription (consumer group), merged.
#[derive(Default)]
struct SubAcc {
    seen: Vec<Option<RangeSet>>,
    duplicates: u64,
    redelivered: u64,
    /// Messages more than one of the consumers received.
    overlaps: u64,
    redelivery_causes: u64,
    reordered: u64,
    deliveries: u64,
    undecodable: u64,
    partitions: HashMap<u32, u64>,
    consumers: Vec<proto::ConsumerReceipts>,
}

/// One consumer's own counts and activity.
fn consumer_receipts(sc: &Scenario, f: &mut ConsumerFinal) -> proto::ConsumerReceipts {
    let mut out = proto::ConsumerReceipts {
        group: sc.consumers[f.inst.group].name.clone(),
        index: f.inst.index_in_group,
        deliveries: f.deliveries,
        unique: f.seen.iter().flatten().map(|s| s.set.len()).sum(),
        ..Default::default()
    };
    std::mem::take(&mut f.activity).fill(&mut out);
    out
}

impl SubAcc {
    fn add(&mut self, sc: &Scenario, mut f: ConsumerFinal) {
        for (p, n) in f.activity.partition_deliveries() {
            *self.partitions.entry(p).or_default() += n;
        }
        self.consumers.push(consumer_receipts(sc, &mut f));
        self.duplicates += f.duplicates;
        self.redelivered += f.redelivered;
        self.redelivery_causes += f.redelivery_causes;
        self.reordered += f.reordered;
        self.deliveries += f.deliveries;
        self.undecodable += f.undecodable;
        for (pid, s) in f.seen.into_iter().enumerate() {
            let Some(s) = s else { continue };
            if self.seen.len() <= pid {
                self.seen.resize(pid + 1, None);
            }
            match &mut self.seen[pid] {
                Some(existing) => self.overlaps += existing.union_with(&s.set),
                slot @ None => *slot = Some(s.set),
            }
        }
    }

    fn into_proto(self, sc: &Scenario, group: usize) -> proto::SubscriptionReceipts {
        let group = &sc.consumers[group];
        proto::SubscriptionReceipts {
            topic: group.topic.clone(),
            subscription: group.subscription.clone(),
            producers: self
                .seen
                .into_iter()
                .enumerate()
                .filter_map(|(pid, s)| {
                    s.map(|s| proto::ProducerReceipts { producer_id: pid as u64, received: Some(s.to_proto()) })
                })
                .collect(),
            duplicates: self.duplicates,
            redelivered: self.redelivered,
            overlaps: self.overlaps,
            redelivery_causes: self.redelivery_causes,
            reordered: self.reordered,
            deliveries: self.deliveries,
            undecodable: self.undecodable,
            partition_deliveries: self.partitions.into_iter().collect(),
            consumers: self.consumers,
        }
    }
}
