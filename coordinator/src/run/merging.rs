//! Interval reports merged as they arrive: each goes into the merged
//! interval of its index (and its agent's running totals), and the
//! interval's line is shown once every live agent has sent it. What that
//! cost the coordinator (wall and CPU time per interval index) goes into
//! the report's `coordinator` figures. Each interval shown is also written
//! to the run journal, when there is one.
//!
//! May import `events` (what arrives), `agents`, `merge`, `journal` and
//! `report::console`.

use std::collections::BTreeMap;

use common::proto::IntervalReport;
use common::report::{CoordinatorCost, Report};
use common::scenario::Scenario;

use super::agents::Agents;
use super::events::{thread_cpu_ns, ReadAhead};
use crate::journal::Journal;
use crate::merge::{Intervals, LiveRows};
use crate::report::console::Console;

pub(super) struct Merging {
    pub intervals: Intervals,
    /// The last interval index shown (-1: none yet).
    printed_upto: i64,
    /// Wall and CPU time spent taking each interval's reports, by index.
    cost_ns: BTreeMap<u64, (u64, u64)>,
    /// The run journal (journal.jsonl), from the start; None once it failed.
    pub journal: Option<Journal>,
    rows: LiveRows,
}

/// Where a merged interval is shown: the run's scenario and console, and
/// its start instant (the live view's clock).
pub(super) struct Show<'a> {
    pub sc: &'a Scenario,
    pub out: &'a Console,
    pub start_ns: i64,
}

impl Merging {
    pub fn new() -> Merging {
        Merging {
            intervals: Intervals::default(),
            printed_upto: -1,
            cost_ns: BTreeMap::new(),
            journal: None,
            rows: LiveRows::default(),
        }
    }

    /// Takes agent `i`'s interval report: its live view and running totals,
    /// the merged interval, and one line once every live agent has sent it.
    /// Returns the index of the interval shown, if one was.
    pub fn take(
        &mut self,
        i: usize,
        r: &IntervalReport,
        read: ReadAhead,
        agents: &mut Agents,
        show: &Show,
    ) -> Option<u64> {
        let t0 = std::time::Instant::now();
        let c0 = thread_cpu_ns();
        show.out.agent_interval(i, r);
        agents.outcomes[i].interval_totals.add(r);
        let merged = self.intervals.add(r, read.groups);
        let alive_n = agents.alive_count() as u32;
        let mut shown = None;
        if merged.agents >= alive_n && r.index as i64 > self.printed_upto {
            merged.settle();
            show.out.interval(show.sc, r.index, merged, show.start_ns, alive_n);
            self.printed_upto = r.index as i64;
            if let Some(j) = self.journal.as_mut() {
                let rows = self.rows.rows(show.sc, r.index, merged, show.start_ns);
                if let Err(e) = j.interval(&rows) {
                    tracing::warn!(error = %e, "the run journal stops here");
                    self.journal = None;
                }
            }
            shown = Some(r.index);
        }
        let (wall, cpu) = self.cost_ns.entry(r.index).or_default();
        *wall += t0.elapsed().as_nanos() as u64;
        *cpu += thread_cpu_ns().saturating_sub(c0) + read.cpu_ns;
        shown
    }

    /// A note into the run journal, as it happens.
    pub fn journal_note(&mut self, note: &str) {
        if let Some(j) = self.journal.as_mut() {
            if let Err(e) = j.note(note) {
                tracing::warn!(error = %e, "the run journal stops here");
                self.journal = None;
            }
        }
    }

    /// The coordinator's own figures for the report of `agents` agents:
    /// setup time, merge cost per interval (median and worst), and how long
    /// building `report` took since `built_from`.
    pub fn cost(self, agents: usize, setup_s: f64, built_from: std::time::Instant, report: &Report) -> CoordinatorCost {
        let (mut wall, mut cpu): (Vec<u64>, Vec<u64>) = self.cost_ns.into_values().unzip();
        wall.sort_unstable();
        cpu.sort_unstable();
        let ms = |v: &[u64], at: usize| v.get(at).copied().unwrap_or(0) as f64 / 1e6;
        CoordinatorCost {
            agents: agents as u32,
            setup_s,
            interval_merge_ms_p50: ms(&wall, wall.len() / 2),
            interval_merge_ms_max: ms(&wall, wall.len().saturating_sub(1)),
            interval_merge_cpu_ms_p50: ms(&cpu, cpu.len() / 2),
            interval_merge_cpu_ms_max: ms(&cpu, cpu.len().saturating_sub(1)),
            report_build_ms: built_from.elapsed().as_secs_f64() * 1e3,
            start_spread_ms: report.start_offsets().map(|(first, last, _)| last - first),
        }
    }
}
