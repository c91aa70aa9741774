//! Sharding: every producer and consumer instance goes to exactly one agent,
//! and the per-producer rates add up exactly (in milli-messages per second)
//! to each group's total.
//!
//! Placement `spread` balances publish rate and consumer count over every
//! eligible agent; `split` puts producers on the first half of the eligible
//! agents and consumers on the second half (as OpenMessaging Benchmark does),
//! so every end-to-end sample crosses hosts. With the in-process memory
//! broker a topic lives in one process, so its producers and consumers stay
//! on agents of that process (agents report a process instance id).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scenario::{BrokerKind, Placement, Scenario};
use crate::schedule::split_exact;

/// What the planner knows of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSlot {
    /// Address or name, for messages.
    pub name: String,
    /// Agents with the same instance share one process (and memory broker).
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerInstance {
    /// Unique in the run; carried in every stamp.
    pub id: u32,
    pub group: usize,
    pub index_in_group: u32,
    pub rate_milli: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerInstance {
    pub id: u32,
    pub group: usize,
    pub index_in_group: u32,
}

/// One agent's part of the run. The scenario travels whole so the agent
/// has every setting; only the listed instances run there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub run_id: String,
    pub agent_index: usize,
    pub agent_count: usize,
    pub scenario: Scenario,
    pub producers: Vec<ProducerInstance>,
    pub consumers: Vec<ConsumerInstance>,
}

impl Shard {
    pub fn rate_milli(&self) -> u64 {
        self.producers.iter().map(|p| p.rate_milli).sum()
    }
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn from_json(b: &[u8]) -> Result<Shard, ShardDecodeError> {
        serde_json::from_slice(b).map_err(ShardDecodeError)
    }
}

/// `Prepare.shard` that is not a shard of this version.
#[derive(Debug, thiserror::Error)]
#[error("shard does not decode: {0}")]
pub struct ShardDecodeError(serde_json::Error);

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub shards: Vec<Shard>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no agents to run on")]
    NoAgents,
    #[error("placement `split` needs at least 2 agents{0}; got {1}")]
    SplitNeedsTwo(&'static str, usize),
    #[error("more than {} producers in one run", u32::MAX)]
    TooManyInstances,
}

#[derive(Default, Clone)]
struct Load {
    rate_milli: u64,
    producers: u64,
    consumers: u64,
}

/// Which agents may run each topic's instances (indexes into the agents).
type Eligible<'a> = BTreeMap<&'a str, Vec<usize>>;

/// Each agent's shard of `scenario`: every instance on exactly one agent,
/// balanced by publish rate and consumer count (see the module comment).
pub fn plan(scenario: &Scenario, run_id: &str, agents: &[AgentSlot]) -> Result<Plan, PlanError> {
    if agents.is_empty() {
        return Err(PlanError::NoAgents);
    }
    let eligible: Eligible<'_> = if scenario.broker.kind == BrokerKind::Memory {
        memory_eligible(scenario, agents)
    } else {
        let all: Vec<usize> = (0..agents.len()).collect();
        scenario.topics.iter().map(|t| (t.name.as_str(), all.clone())).collect()
    };
    let split = scenario.placement == Placement::Split;
    if split {
        for ids in eligible.values() {
            if ids.len() < 2 {
                let why =
                    if scenario.broker.kind == BrokerKind::Memory { " in one process (memory broker)" } else { "" };
                return Err(PlanError::SplitNeedsTwo(why, ids.len()));
            }
        }
    }
    let sides = Sides { eligible, split, agents: agents.len() };
    let mut loads = vec![Load::default(); agents.len()];
    let mut shards: Vec<Shard> = (0..agents.len())
        .map(|i| Shard {
            run_id: run_id.to_string(),
            agent_index: i,
            agent_count: agents.len(),
            scenario: scenario.clone(),
            producers: Vec::new(),
            consumers: Vec::new(),
        })
        .collect();
    place_producers(scenario, &sides, &mut loads, &mut shards)?;
    place_consumers(scenario, &sides, &mut loads, &mut shards)?;
    if scenario.broker.kind == BrokerKind::Memory {
        share_memory_capacity(&mut shards, agents);
    }
    Ok(Plan { shards })
}

/// The memory broker: a topic lives in one process, so each topic goes to
/// the agents of one process, heaviest topics first onto the least loaded
/// process.
fn memory_eligible<'a>(scenario: &'a Scenario, agents: &[AgentSlot]) -> Eligible<'a> {
    let mut procs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in agents.iter().enumerate() {
        procs.entry(a.instance.as_str()).or_default().push(i);
    }
    let procs: Vec<Vec<usize>> = procs.into_values().collect();
    let mut weight: Vec<(u64, &str)> = scenario
        .topics
        .iter()
        .map(|t| {
            let rate: u64 = scenario.producers.iter().filter(|p| p.topic == t.name).map(|p| p.total_rate_milli).sum();
            let subs = scenario.consumers.iter().filter(|c| c.topic == t.name).count() as u64;
            (rate.saturating_mul(1 + subs), t.name.as_str())
        })
        .collect();
    weight.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut proc_load = vec![0u64; procs.len()];
    let mut proc_topics = vec![0usize; procs.len()];
    let mut eligible = Eligible::new();
    for (w, name) in weight {
        let best = (0..procs.len()).min_by_key(|&i| (proc_load[i], proc_topics[i], i)).unwrap_or(0);
        proc_load[best] = proc_load[best].saturating_add(w);
        proc_topics[best] += 1;
        eligible.insert(name, procs[best].clone());
    }
    eligible
}

/// The agents a group's instances may go to: those eligible for its topic
/// (under `split`, the first half for producers and the rest for
/// consumers), or every agent when that leaves none.
struct Sides<'a> {
    eligible: Eligible<'a>,
    split: bool,
    agents: usize,
}

impl Sides<'_> {
    fn of(&self, topic: &str, producers: bool) -> Vec<usize> {
        let ids = self.eligible.get(topic).map(Vec::as_slice).unwrap_or(&[]);
        let half = ids.len().div_ceil(2);
        let ids = match (self.split, producers) {
            (false, _) => ids.to_vec(),
            (true, true) => ids[..half].to_vec(),
            (true, false) => ids[half..].to_vec(),
        };
        if ids.is_empty() {
            (0..self.agents).collect()
        } else {
            ids
        }
    }
}

/// Each producer to the eligible agent with the least rate so far; ids in group order.
fn place_producers(
    scenario: &Scenario,
    sides: &Sides<'_>,
    loads: &mut [Load],
    shards: &mut [Shard],
) -> Result<(), PlanError> {
    let mut next_id: u64 = 0;
    for (g, group) in scenario.producers.iter().enumerate() {
        let ids = sides.of(&group.topic, true);
        for (k, rate) in split_exact(group.total_rate_milli, group.count).enumerate() {
            let a = *ids.iter().min_by_key(|&&i| (loads[i].rate_milli, loads[i].producers, i)).unwrap_or(&0);
            loads[a].rate_milli += rate;
            loads[a].producers += 1;
            let id = u32::try_from(next_id).map_err(|_| PlanError::TooManyInstances)?;
            next_id += 1;
            shards[a].producers.push(ProducerInstance { id, group: g, index_in_group: k as u32, rate_milli: rate });
        }
    }
    Ok(())
}

/// Each consumer to the eligible agent with the fewest consumers so far.
fn place_consumers(
    scenario: &Scenario,
    sides: &Sides<'_>,
    loads: &mut [Load],
    shards: &mut [Shard],
) -> Result<(), PlanError> {
    let mut next_cid: u64 = 0;
    for (g, group) in scenario.consumers.iter().enumerate() {
        let ids = sides.of(&group.topic, false);
        for k in 0..group.count {
            let a = *ids.iter().min_by_key(|&&i| (loads[i].consumers, i)).unwrap_or(&0);
            loads[a].consumers += 1;
            let id = u32::try_from(next_cid).map_err(|_| PlanError::TooManyInstances)?;
            next_cid += 1;
            shards[a].consumers.push(ConsumerInstance { id, group: g, index_in_group: k });
        }
    }
    Ok(())
}

/// The memory broker's `capacity_msgs_per_s` is the broker's whole capacity,
/// but each agent process holds its own instance with its own topics: each
/// process gets the capacity times its share of the offered rate (of the
/// producer count when no group has a rate), so the processes together
/// serve what one broker would. Agents of one process get the same value.
fn share_memory_capacity(shards: &mut [Shard], agents: &[AgentSlot]) {
    let Some(cap) = shards.first().and_then(|s| s.scenario.broker.capacity_msgs_per_s) else { return };
    let mut per_proc: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in shards.iter() {
        let e = per_proc.entry(agents[s.agent_index].instance.as_str()).or_default();
        e.0 += s.rate_milli();
        e.1 += s.producers.len() as u64;
    }
    if per_proc.len() < 2 {
        return;
    }
    let total_rate: u64 = per_proc.values().map(|v| v.0).sum();
    let total_count: u64 = per_proc.values().map(|v| v.1).sum();
    let share: BTreeMap<String, f64> = per_proc
        .into_iter()
        .map(|(k, (rate, count))| {
            let f = if total_rate > 0 {
                rate as f64 / total_rate as f64
            } else if total_count > 0 {
                count as f64 / total_count as f64
            } else {
                0.0
            };
            (k.to_string(), f)
        })
        .collect();
    for s in shards.iter_mut() {
        let f = share.get(agents[s.agent_index].instance.as_str()).copied().unwrap_or(0.0);
        // A process with no producers publishes nothing: any capacity will do.
        s.scenario.broker.capacity_msgs_per_s = Some(if f > 0.0 { cap * f } else { cap });
    }
}

impl Plan {
    /// The plan as a table: one row per agent and group.
    pub fn table(&self, agents: &[AgentSlot]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:<24} {:<20} {:>9} {:>14}",
            "AGENT", "ROLE", "GROUP", "TOPIC", "INSTANCES", "RATE msg/s"
        );
        for s in &self.shards {
            let sc = &s.scenario;
            let name = agents.get(s.agent_index).map(|a| a.name.as_str()).unwrap_or("?");
            let mut rows = 0;
            let mut by_group: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
            for p in &s.producers {
                let e = by_group.entry(p.group).or_default();
                e.0 += 1;
                e.1 += p.rate_milli;
            }
            for (g, (n, r)) in by_group {
                let grp = &sc.producers[g];
                let _ = writeln!(
                    out,
                    "{:<24} {:<10} {:<24} {:<20} {:>9} {:>14}",
                    name,
                    "producer",
                    grp.name,
                    grp.topic,
                    n,
                    fmt_rate(r)
                );
                rows += 1;
            }
            let mut by_group: BTreeMap<usize, u64> = BTreeMap::new();
            for c in &s.consumers {
                *by_group.entry(c.group).or_default() += 1;
            }
            for (g, n) in by_group {
                let grp = &sc.consumers[g];
                let label = format!("{} ({})", grp.name, grp.sub_type.as_str());
                let _ = writeln!(
                    out,
                    "{:<24} {:<10} {:<24} {:<20} {:>9} {:>14}",
                    name, "consumer", label, grp.topic, n, "-"
                );
                rows += 1;
            }
            if rows == 0 {
                let _ = writeln!(out, "{:<24} {:<10}", name, "(idle)");
            }
        }
        let total: u64 = self.shards.iter().map(Shard::rate_milli).sum();
        let _ = writeln!(out, "total publish rate: {} msg/s", fmt_rate(total));
        if let Some(line) = self.memory_capacity_line(agents) {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

impl Plan {
    /// How the memory broker's capacity was shared out over agent
    /// processes, when it was (see `share_memory_capacity`).
    pub fn memory_capacity_line(&self, agents: &[AgentSlot]) -> Option<String> {
        let caps: BTreeMap<&str, f64> = self
            .shards
            .iter()
            .filter_map(|s| {
                let cap = s.scenario.broker.capacity_msgs_per_s?;
                let agent = agents.get(s.agent_index)?;
                (!s.producers.is_empty()).then_some((agent.instance.as_str(), cap))
            })
            .collect();
        let procs: std::collections::BTreeSet<&str> = agents.iter().map(|a| a.instance.as_str()).collect();
        if procs.len() < 2 || caps.is_empty() {
            return None;
        }
        let list: Vec<String> = caps.values().map(|c| format!("{c:.0}")).collect();
        Some(format!("memory broker capacity per agent process: {} msg/s", list.join(" + ")))
    }
}

fn fmt_rate(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        format!("{:.3}", milli as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;
    use proptest::prelude::*;

    fn scenario(kind: &str, placement: &str, groups: &[(u32, u32)], consumers: &[u32]) -> Scenario {
        let mut y = format!(
            "name: t\nbroker: {{kind: {kind}, url: \"{}\"}}\nplacement: {placement}\nphases: {{duration: 10s}}\ntopics:\n  - name: a\n  - name: b\n    partitions: 3\nproducers:\n",
            if kind == "pulsar" { "pulsar://127.0.0.1:6650" } else { "" }
        );
        for (i, (count, rate)) in groups.iter().enumerate() {
            let topic = if i % 2 == 0 { "a" } else { "b" };
            y.push_str(&format!("  - {{name: p{i}, topic: {topic}, count: {count}, total_rate: {rate}.5}}\n"));
        }
        y.push_str("consumers:\n");
        for (i, count) in consumers.iter().enumerate() {
            let topic = if i % 2 == 0 { "a" } else { "b" };
            y.push_str(&format!("  - {{name: c{i}, topic: {topic}, count: {count}, type: shared}}\n"));
        }
        load_str(&y, "t.yaml", &[]).expect("valid")
    }

    fn slots(n: usize, procs: usize) -> Vec<AgentSlot> {
        (0..n).map(|i| AgentSlot { name: format!("a{i}"), instance: format!("p{}", i % procs.max(1)) }).collect()
    }

    fn check(sc: &Scenario, p: &Plan) {
        for (g, group) in sc.producers.iter().enumerate() {
            let mut seen: Vec<u32> = p
                .shards
                .iter()
                .flat_map(|s| s.producers.iter())
                .filter(|x| x.group == g)
                .map(|x| x.index_in_group)
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..group.count).collect::<Vec<_>>(), "each producer instance exactly once");
            let sum: u64 =
                p.shards.iter().flat_map(|s| s.producers.iter()).filter(|x| x.group == g).map(|x| x.rate_milli).sum();
            assert_eq!(sum, group.total_rate_milli, "rates sum exactly");
        }
        for (g, group) in sc.consumers.iter().enumerate() {
            let mut seen: Vec<u32> = p
                .shards
                .iter()
                .flat_map(|s| s.consumers.iter())
                .filter(|x| x.group == g)
                .map(|x| x.index_in_group)
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..group.count).collect::<Vec<_>>(), "each consumer instance exactly once");
        }
        let mut ids: Vec<u32> = p.shards.iter().flat_map(|s| s.producers.iter().map(|x| x.id)).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u32, sc.producers.iter().map(|g| g.count).sum::<u32>(), "producer ids unique");
    }

    proptest! {
        #[test]
        fn every_instance_once_and_rates_exact(
            groups in proptest::collection::vec((1u32..40, 1u32..100_000), 1..5),
            consumers in proptest::collection::vec(1u32..20, 0..4),
            agents in 1usize..9,
            procs in 1usize..4,
            memory in any::<bool>(),
        ) {
            let sc = scenario(if memory { "memory" } else { "pulsar" }, "spread", &groups, &consumers);
            let p = plan(&sc, "r", &slots(agents, procs)).expect("plan");
            check(&sc, &p);
            if memory {
                // A memory topic's instances all sit in one process.
                for t in &sc.topics {
                    let mut insts: Vec<String> = Vec::new();
                    for s in &p.shards {
                        let uses = s.producers.iter().any(|x| sc.producers[x.group].topic == t.name)
                            || s.consumers.iter().any(|x| sc.consumers[x.group].topic == t.name);
                        if uses { insts.push(format!("p{}", s.agent_index % procs)); }
                    }
                    insts.dedup();
                    insts.sort(); insts.dedup();
                    prop_assert!(insts.len() <= 1);
                }
            }
        }

        #[test]
        fn split_separates_roles(groups in proptest::collection::vec((1u32..20, 1u32..10_000), 1..4), consumers in proptest::collection::vec(1u32..10, 1..4), agents in 2usize..8) {
            let sc = scenario("pulsar", "split", &groups, &consumers);
            let p = plan(&sc, "r", &slots(agents, agents)).expect("plan");
            check(&sc, &p);
            for s in &p.shards {
                prop_assert!(s.producers.is_empty() || s.consumers.is_empty());
            }
        }
    }

    #[test]
    fn split_exact_sums() {
        let parts: Vec<u64> = split_exact(1000, 3).collect();
        assert_eq!(parts, vec![334, 333, 333]);
        assert_eq!(split_exact(7, 7).sum::<u64>(), 7);
    }

    #[test]
    fn spread_balances_rate() {
        let sc = scenario("pulsar", "spread", &[(6, 600)], &[3]);
        let p = plan(&sc, "r", &slots(3, 3)).expect("plan");
        for s in &p.shards {
            assert_eq!(s.producers.len(), 2);
            assert_eq!(s.consumers.len(), 1);
        }
    }

    #[test]
    fn memory_capacity_is_shared_out_by_offered_rate_over_processes() {
        let y = "name: t\nbroker: {kind: memory, capacity_msgs_per_s: 60000}\nphases: {duration: 10s}\n\
                 topics: [{name: a}, {name: b}, {name: c}]\nproducers:\n\
                 - {name: pa, topic: a, total_rate: 3000}\n- {name: pb, topic: b, total_rate: 2000}\n\
                 - {name: pc, topic: c, total_rate: 1000}\nconsumers: [{name: ca, topic: a}]\n";
        let sc = load_str(y, "t.yaml", &[]).expect("scenario");
        // Three processes, two agents each: one topic per process.
        let agents = slots(6, 3);
        let p = plan(&sc, "r", &agents).expect("plan");
        let mut per_proc: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for s in &p.shards {
            let e = per_proc.entry(agents[s.agent_index].instance.clone()).or_default();
            let cap = s.scenario.broker.capacity_msgs_per_s.expect("capacity");
            assert!(e.0 == 0.0 || e.0 == cap, "agents of one process share one broker");
            e.0 = cap;
            e.1 += s.rate_milli();
        }
        let mut caps: Vec<(u64, f64)> = per_proc.values().map(|(c, r)| (*r, *c)).collect();
        caps.sort_by_key(|c| c.0);
        assert_eq!(caps, vec![(1_000_000, 10000.0), (2_000_000, 20000.0), (3_000_000, 30000.0)]);
        assert!(p.table(&agents).contains("memory broker capacity per agent process"));
        // One process: the capacity as written.
        let p = plan(&sc, "r", &slots(2, 1)).expect("plan");
        assert!(p.shards.iter().all(|s| s.scenario.broker.capacity_msgs_per_s == Some(60000.0)));
    }

    #[test]
    fn split_needs_two_agents() {
        let sc = scenario("pulsar", "split", &[(1, 10)], &[1]);
        assert!(matches!(plan(&sc, "r", &slots(1, 1)), Err(PlanError::SplitNeedsTwo(..))));
        assert_eq!(plan(&sc, "r", &[]), Err(PlanError::NoAgents));
    }
}

#[cfg(test)]
mod decode_fuzz {
    use super::Shard;
    use crate::proto::{AgentMessage, CoordinatorMessage};
    use proptest::prelude::*;
    use prost::Message;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// What an agent decodes from the wire (commands, shards) and the
        /// coordinator from agents: arbitrary bytes give an error, never a panic.
        #[test]
        fn wire_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = CoordinatorMessage::decode(bytes.as_slice());
            let _ = AgentMessage::decode(bytes.as_slice());
            let _ = Shard::from_json(&bytes);
            if let Ok(m) = AgentMessage::decode(bytes.as_slice()) {
                if let Some(crate::proto::agent_message::Msg::Final(f)) = m.msg {
                    for s in &f.subscriptions {
                        for p in &s.producers {
                            if let Some(r) = &p.received {
                                let _ = crate::rangeset::RangeSet::from_proto(r);
                            }
                        }
                    }
                    for g in &f.groups {
                        let _ = crate::stats::GroupPhases::from_proto(g);
                    }
                }
            }
        }
    }
}
