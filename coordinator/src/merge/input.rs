//! What [`super::build`] takes: what the coordinator knows of each agent
//! at the end ([`AgentOutcome`]), the run's figures ([`ReportInput`]), and
//! what the build's steps share ([`Ctx`], [`Lost`]). May import
//! `intervals` and `series` (siblings).

use std::collections::{BTreeSet, HashSet};

use common::plan::{ConsumerInstance, ProducerInstance};
use common::proto::{self, FinalReport};
use common::scenario::Scenario;

use super::intervals::{IntervalTotals, Intervals};
use super::series::{window_count, Role};

/// What the coordinator knows of one agent at the end.
pub struct AgentOutcome {
    pub address: String,
    pub hello: proto::HelloAck,
    pub clock_offset_ns: i64,
    pub clock_error_ns: i64,
    /// How far the offset moved during the run (re-sync from keepalives),
    /// and the corrections sent.
    pub clock_drift_ns: i64,
    pub clock_updates: u32,
    pub producers: u32,
    pub consumers: u32,
    pub target_rate_milli: u64,
    /// "ok", "lost", "error" or "left" (told to go: SIGTERM).
    pub status: String,
    pub error: Option<String>,
    pub final_report: Option<FinalReport>,
    /// When a leaving agent was told to go (coordinator clock, ns).
    pub left_at_ns: Option<i64>,
    /// The agent's shard: which producers and consumers ran there.
    pub shard_producers: Vec<ProducerInstance>,
    pub shard_consumers: Vec<ConsumerInstance>,
    /// Its counts summed from its interval reports (for an agent lost
    /// before its final report: its counts until the loss).
    pub interval_totals: IntervalTotals,
}

/// The run as the coordinator saw it, for [`super::build`].
pub struct ReportInput<'a> {
    pub run_id: &'a str,
    pub scenario: &'a Scenario,
    pub scenario_file: &'a str,
    pub started_at: String,
    pub agents: &'a [AgentOutcome],
    pub intervals: &'a Intervals,
    pub start_ns: i64,
    pub drain_s: f64,
    pub drain_timed_out: bool,
    pub stalled: Vec<(String, String)>,
    pub incomplete: Option<String>,
    pub notes: Vec<String>,
    /// Run control's changes, for report.json's `events`.
    pub events: &'a [common::report::RunEvent],
    /// The same as pace changes per producer group, in order: a group's
    /// target rate is the one in force at each moment.
    pub paces: &'a [PaceMark],
}

/// From `at_ns` (coordinator clock), producer group `group` runs at
/// `factor` times its scenario rate, or is `paused`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceMark {
    pub at_ns: i64,
    pub group: usize,
    pub factor: f64,
    pub paused: bool,
}

/// The mean over `[from, to)` (ns) of group `g`'s rate factor under
/// `marks` (1 before the first, 0 while paused): what the scenario's
/// target is multiplied by.
pub fn pace_share(marks: &[PaceMark], g: usize, (from, to): (i64, i64)) -> f64 {
    if to <= from {
        return 1.0;
    }
    let (mut at, mut factor, mut sum) = (from, 1.0, 0.0);
    for m in marks.iter().filter(|m| m.group == g) {
        let t = m.at_ns.clamp(from, to);
        sum += (t - at) as f64 * factor;
        at = t;
        factor = if m.paused { 0.0 } else { m.factor };
    }
    sum += (to - at) as f64 * factor;
    sum / (to - from) as f64
}

/// What the steps of the build share.
pub(super) struct Ctx<'a> {
    pub sc: &'a Scenario,
    pub agents: &'a [AgentOutcome],
    /// The measurement's length in seconds (never zero).
    pub dur_s: f64,
    intervals: &'a Intervals,
    /// The measurement window (coordinator clock, ns).
    pub window: (i64, i64),
    pub paces: &'a [PaceMark],
    /// Why the broker's driver does not time consumer acks (None: it does).
    pub ack_not_timed: Option<&'static str>,
}

impl<'a> Ctx<'a> {
    pub fn new(input: &ReportInput<'a>) -> Ctx<'a> {
        let sc = input.scenario;
        let phases = &sc.phases;
        Ctx {
            sc,
            agents: input.agents,
            dur_s: phases.duration.as_secs_f64().max(1e-9),
            intervals: input.intervals,
            window: (
                input.start_ns + phases.warmup.as_nanos() as i64,
                input.start_ns + phases.send_end().as_nanos() as i64,
            ),
            paces: input.paces,
            ack_not_timed: agent::driver::ack_not_timed(sc.broker.kind),
        }
    }

    /// Acks (producer group) or deliveries (consumer group) of group `g`
    /// inside the measurement window; `measured` (the measure phase's own
    /// count) without intervals.
    ///
    /// Throughput is what happened inside the measurement window: acks and
    /// deliveries counted by when they happened, from the interval counts
    /// (an interval across an edge counts pro rata). The measure phase's own
    /// counters also hold what arrived after it (during the drain): under
    /// overload that is the queue emptying, and dividing it by the window
    /// would report more than the broker did (or more than the target).
    pub fn in_window(&self, role: Role, g: usize, measured: u64) -> f64 {
        window_count(self.intervals, role, g as u32, self.window).unwrap_or(measured as f64)
    }

    /// The agents that sent their final report.
    pub fn reported(&self) -> impl Iterator<Item = &'a AgentOutcome> {
        self.agents.iter().filter(|a| a.final_report.is_some())
    }
}

/// Agents lost before their final report: their producers' acknowledged
/// sets and their consumers' received sets never arrived. And agents that
/// left mid-run (told to go) after their final report: judged on it.
pub(super) struct Lost<'a> {
    pub agents: Vec<&'a AgentOutcome>,
    /// Producer ids on lost agents.
    pub producers: HashSet<u64>,
    /// Consumer groups with a consumer on a lost agent, or whose every
    /// consumer left: not judged for loss.
    pub not_judged: BTreeSet<usize>,
    /// Agents that left after their final report.
    pub left: Vec<&'a AgentOutcome>,
    /// Consumer groups whose every consumer left (what was acknowledged
    /// after they left could not be received).
    pub deserted: BTreeSet<usize>,
}

impl<'a> Lost<'a> {
    pub fn of(agents: &'a [AgentOutcome]) -> Lost<'a> {
        let lost: Vec<&AgentOutcome> = agents.iter().filter(|a| a.final_report.is_none()).collect();
        let producers = lost.iter().flat_map(|a| a.shard_producers.iter().map(|p| u64::from(p.id))).collect();
        let mut not_judged: BTreeSet<usize> =
            lost.iter().flat_map(|a| a.shard_consumers.iter().map(|c| c.group)).collect();
        let left: Vec<&AgentOutcome> =
            agents.iter().filter(|a| a.final_report.is_some() && a.left_at_ns.is_some()).collect();
        let stayed: BTreeSet<usize> = agents
            .iter()
            .filter(|a| a.final_report.is_some() && a.left_at_ns.is_none())
            .flat_map(|a| a.shard_consumers.iter().map(|c| c.group))
            .collect();
        let deserted: BTreeSet<usize> = left
            .iter()
            .flat_map(|a| a.shard_consumers.iter().map(|c| c.group))
            .filter(|g| !stayed.contains(g) && !not_judged.contains(g))
            .collect();
        not_judged.extend(deserted.iter().copied());
        Lost { agents: lost, producers, not_judged, left, deserted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_the_pace_in_force_at_each_moment() {
        const S: i64 = 1_000_000_000;
        let mark = |at_ns: i64, factor: f64, paused: bool| PaceMark { at_ns, group: 0, factor, paused };
        assert_eq!(pace_share(&[], 0, (0, 6 * S)), 1.0, "no change: the scenario's target");
        // ×1 for 2 s, ×2 for 2 s, paused for 2 s.
        let marks = [mark(2 * S, 2.0, false), mark(4 * S, 2.0, true)];
        assert!((pace_share(&marks, 0, (0, 6 * S)) - 1.0).abs() < 1e-12);
        assert!((pace_share(&marks, 0, (3 * S, 5 * S)) - 1.0).abs() < 1e-12, "half ×2, half paused");
        assert_eq!(pace_share(&marks, 1, (0, 6 * S)), 1.0, "another group's changes do not count");
        // Changes before the window set the pace it starts with.
        assert_eq!(pace_share(&[mark(-S, 0.5, false)], 0, (0, S)), 0.5);
    }
}
