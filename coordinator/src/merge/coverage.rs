//! What a run with lost agents, or agents that left mid-run (told to go),
//! could still judge: the report's `coverage` and the notes that say what
//! was left out of the accounting and why.
//! May import `input` (a sibling).

use common::report::Coverage;
use common::scenario::Scenario;

use super::input::{AgentOutcome, Lost};

/// `None` when no agent was lost or left; else the coverage, its notes
/// pushed to `notes`. `excluded_received`: messages received from producers
/// on lost agents; `start_ns`: the run's start instant.
pub(super) fn coverage(
    sc: &Scenario,
    agents: &[AgentOutcome],
    lost: &Lost,
    (excluded_received, start_ns): (u64, i64),
    notes: &mut Vec<String>,
) -> Option<Coverage> {
    if lost.agents.is_empty() && lost.left.is_empty() {
        return None;
    }
    left_notes(sc, lost, start_ns, notes);
    for a in &lost.agents {
        notes.push(format!(
            "agent {} was lost ({}): its counts are those of its {} interval report(s) until then",
            a.address,
            a.error.as_deref().unwrap_or("no final report"),
            a.interval_totals.intervals
        ));
    }
    if !lost.producers.is_empty() {
        notes.push(format!(
            "{} producer(s) on lost agents never reported what was acknowledged: their messages \
             ({excluded_received} received) are left out of the loss accounting, and producer targets \
             count only the producers that reported",
            lost.producers.len()
        ));
    }
    for g in lost.not_judged.iter().filter(|g| !lost.deserted.contains(g)) {
        if let Some(c) = sc.consumers.get(*g) {
            notes.push(format!(
                "subscription {}/{} is not judged for loss: consumers on a lost agent took messages that were never reported",
                c.topic, c.subscription
            ));
        }
    }
    let not_judged: Vec<String> = lost
        .not_judged
        .iter()
        .filter_map(|g| sc.consumers.get(*g))
        .map(|c| format!("{}/{}", c.topic, c.subscription))
        .collect();
    let cov = Coverage {
        agents: agents.len() as u32,
        agents_lost: lost.agents.len() as u32,
        producers: agents.iter().map(|a| a.shard_producers.len() as u32).sum(),
        producers_reported: agents
            .iter()
            .filter(|a| a.final_report.is_some())
            .map(|a| a.shard_producers.len() as u32)
            .sum(),
        subscriptions: sc.consumers.len() as u32,
        subscriptions_judged: (sc.consumers.len() - not_judged.len()) as u32,
        not_judged,
        agents_left: lost.left.len() as u32,
    };
    notes.push(format!(
        "coverage: {} of {} agent(s) lost{}; {} of {} producer(s) reported; {} of {} subscription(s) judged",
        cov.agents_lost,
        cov.agents,
        if cov.agents_left > 0 { format!(", {} left mid-run", cov.agents_left) } else { String::new() },
        cov.producers_reported,
        cov.producers,
        cov.subscriptions_judged,
        cov.subscriptions
    ));
    Some(cov)
}

/// What agents that left mid-run (told to go) leave out: their final
/// report came in, so what their producers had acknowledged is judged
/// exactly; after they left, their producers sent nothing and their
/// consumers took nothing (a subscription all of whose consumers left is
/// not judged).
fn left_notes(sc: &Scenario, lost: &Lost, start_ns: i64, notes: &mut Vec<String>) {
    for a in &lost.left {
        let at_s = a.left_at_ns.map(|t| (t - start_ns) as f64 / 1e9).unwrap_or(0.0);
        notes.push(format!(
            "agent {} left at {at_s:.1}s into the run (told to go: SIGTERM): its final report came in, so what its \
             {} producer(s) had acknowledged is judged exactly (delivered or lost); the run lacks what its producers \
             would have sent and its {} consumer(s) would have received after {at_s:.1}s",
            a.address,
            a.shard_producers.len(),
            a.shard_consumers.len()
        ));
    }
    for c in lost.deserted.iter().filter_map(|g| sc.consumers.get(*g)) {
        notes.push(format!(
            "subscription {}/{} is not judged for loss: every consumer of it left mid-run, and what was \
             acknowledged after that was never received",
            c.topic, c.subscription
        ));
    }
}
