//! Drain accounting while a run runs: per consumer group, the distinct
//! messages its subscription has received (the agents' cumulative progress,
//! summed) against what the producers of its topic had acknowledged; the
//! producer tasks still running per agent; and when each group's progress
//! last moved (a subscription that stopped early is stalled).
//!
//! Kept up to date per report in O(groups), not O(groups × agents): a
//! thousand agents stay cheap. May import `merge` (the agents' outcomes).

use std::collections::HashMap;

use common::proto::{self, IntervalReport};
use common::scenario::Scenario;

use crate::merge::AgentOutcome;

pub(super) struct Progress<'a> {
    sc: &'a Scenario,
    /// Consumer groups by (topic, subscription).
    groups_of_sub: HashMap<(&'a str, &'a str), Vec<usize>>,
    /// Latest cumulative progress per agent and consumer group.
    per_agent: Vec<Vec<u64>>,
    /// Its sum over agents, per consumer group.
    sum: Vec<u64>,
    acked_by_topic: HashMap<String, u64>,
    /// Latest count of producer tasks still running, per agent.
    producers_active: Vec<u32>,
    /// When (agent clock, ns) each group's sum last changed, and that sum.
    last_change: Vec<i64>,
    last_sum: Vec<u64>,
}

impl<'a> Progress<'a> {
    /// Nothing received yet, at `start_ns`; `producers` per agent, all running.
    pub fn new(sc: &'a Scenario, producers: Vec<u32>, start_ns: i64) -> Progress<'a> {
        let groups_of_sub: HashMap<(&str, &str), Vec<usize>> =
            sc.consumers.iter().enumerate().fold(HashMap::new(), |mut m, (g, c)| {
                m.entry((c.topic.as_str(), c.subscription.as_str())).or_default().push(g);
                m
            });
        let groups = sc.consumers.len();
        Progress {
            sc,
            groups_of_sub,
            per_agent: vec![vec![0; groups]; producers.len()],
            sum: vec![0u64; groups],
            acked_by_topic: HashMap::new(),
            producers_active: producers,
            last_change: vec![start_ns; groups],
            last_sum: vec![0u64; groups],
        }
    }

    /// Takes agent `i`'s interval report.
    pub fn take(&mut self, i: usize, r: &IntervalReport) {
        self.producers_active[i] = r.producers_active;
        for g in &r.groups {
            if g.role == proto::Role::Producer as i32 {
                if let Some(grp) = self.sc.producers.get(g.group as usize) {
                    let acked = g.warmup.as_ref().map(|p| p.acked).unwrap_or(0)
                        + g.measure.as_ref().map(|p| p.acked).unwrap_or(0);
                    *self.acked_by_topic.entry(grp.topic.clone()).or_default() += acked;
                }
            }
        }
        for p in &r.progress {
            for &g in self.groups_of_sub.get(&(p.topic.as_str(), p.subscription.as_str())).into_iter().flatten() {
                self.sum[g] = self.sum[g] - self.per_agent[i][g] + p.unique_received;
                self.per_agent[i][g] = p.unique_received;
            }
        }
        for (g, &sum) in self.sum.iter().enumerate() {
            if sum != self.last_sum[g] {
                self.last_sum[g] = sum;
                self.last_change[g] = r.end_ns;
            }
        }
    }

    /// The drain is complete when every producer is done and every
    /// subscription has every acknowledged message (subscriptions with a
    /// consumer on a lost agent cannot tell, and are not waited for; nor
    /// are those whose every consumer left).
    pub fn complete(&self, alive: &[bool], outcomes: &[AgentOutcome]) -> bool {
        let lost_groups: Vec<usize> = if alive.iter().all(|a| *a) {
            Vec::new()
        } else {
            (0..alive.len())
                .filter(|i| !alive[*i])
                .flat_map(|i| outcomes[i].shard_consumers.iter().map(|c| c.group))
                .filter(|g| !carried_on(*g, alive, outcomes))
                .collect()
        };
        self.producers_active.iter().zip(alive).all(|(p, a)| *p == 0 || !*a)
            && self
                .sc
                .consumers
                .iter()
                .enumerate()
                .filter(|(g, _)| !lost_groups.contains(g))
                .all(|(g, c)| self.sum[g] >= self.acked_by_topic.get(&c.topic).copied().unwrap_or(0))
    }

    /// Consumer group `g`'s distinct messages received so far, and what
    /// the producers of its topic had acknowledged (the live dashboard).
    pub fn received_and_acked(&self, g: usize) -> (u64, u64) {
        let topic = self.sc.consumers.get(g).map(|c| c.topic.as_str()).unwrap_or("");
        (self.sum.get(g).copied().unwrap_or(0), self.acked_by_topic.get(topic).copied().unwrap_or(0))
    }

    /// After a drain that timed out: the (topic, subscription) of every
    /// group whose progress stopped two report intervals before `send_end`.
    pub fn stalled(&self, drain_timed_out: bool, send_end: i64) -> Vec<(String, String)> {
        let quiet_ns = 2 * self.sc.report_interval.as_nanos() as i64;
        self.sc
            .consumers
            .iter()
            .enumerate()
            .filter(|(g, _)| drain_timed_out && self.last_change[*g] < send_end - quiet_ns)
            .map(|(_, c)| (c.topic.clone(), c.subscription.clone()))
            .collect()
    }
}

/// Consumer group `g` lost no reported receipt: none of its consumers was
/// on an agent lost before its final report, and one is still running (its
/// consumers on agents that left reported what they received, and the
/// broker hands the rest to the others).
fn carried_on(g: usize, alive: &[bool], outcomes: &[AgentOutcome]) -> bool {
    let hosts = |i: &usize| outcomes[*i].shard_consumers.iter().any(|c| c.group == g);
    let reported = |i: usize| alive[i] || (outcomes[i].left_at_ns.is_some() && outcomes[i].final_report.is_some());
    (0..alive.len()).filter(hosts).all(reported) && (0..alive.len()).filter(hosts).any(|i| alive[i])
}
