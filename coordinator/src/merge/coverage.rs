//! What a run with lost agents could still judge: the report's `coverage`
//! and the notes that say what was left out of the accounting and why.
//! May import `input` (a sibling).

use common::report::Coverage;
use common::scenario::Scenario;

use super::input::{AgentOutcome, Lost};

/// `None` when no agent was lost; else the coverage, its notes pushed to
/// `notes`. `excluded_received`: messages received from producers on lost agents.
pub(super) fn coverage(
    sc: &Scenario,
    agents: &[AgentOutcome],
    lost: &Lost,
    excluded_received: u64,
    notes: &mut Vec<String>,
) -> Option<Coverage> {
    if lost.agents.is_empty() {
        return None;
    }
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
    let not_judged: Vec<String> = lost
        .not_judged
        .iter()
        .filter_map(|g| sc.consumers.get(*g))
        .map(|c| format!("{}/{}", c.topic, c.subscription))
        .collect();
    for n in &not_judged {
        notes.push(format!(
            "subscription {n} is not judged for loss: consumers on a lost agent took messages that were never reported"
        ));
    }
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
    };
    notes.push(format!(
        "coverage: {} of {} agent(s) lost; {} of {} producer(s) reported; {} of {} subscription(s) judged",
        cov.agents_lost, cov.agents, cov.producers_reported, cov.producers, cov.subscriptions_judged, cov.subscriptions
    ));
    Some(cov)
}
