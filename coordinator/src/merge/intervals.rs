//! Interval reports merged across agents as they arrive, by interval
//! index ([`Intervals`]), and one agent's counters summed over its interval
//! reports ([`IntervalTotals`]: what a lost agent's row says, and its CPU
//! per interval). Imports nothing of the crate.

use std::collections::BTreeMap;

use common::proto::{self, IntervalReport};
use common::stats::{GroupPhases, GroupSums, ReadGroup};

/// One agent's counters summed over the interval reports it sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalTotals {
    pub intervals: u64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub received: u64,
    pub acked_measure: u64,
    pub received_measure: u64,
    pub late_sends: u64,
    pub max_lag_ns: u64,
    pub cpu_ns: u64,
    pub wall_ns: u64,
    /// Each interval's bounds (coordinator clock, ns) and the agent
    /// process's CPU time and wall time in it (ns).
    pub cpu: Vec<(i64, i64, u64, u64)>,
}

impl IntervalTotals {
    pub fn add(&mut self, r: &IntervalReport) {
        self.intervals += 1;
        self.cpu_ns += r.cpu_ns;
        self.wall_ns += r.wall_ns;
        self.cpu.push((r.start_ns, r.end_ns, r.cpu_ns, r.wall_ns));
        self.max_lag_ns = self.max_lag_ns.max(r.max_lag_ns);
        for g in &r.groups {
            let producer = g.role == proto::Role::Producer as i32;
            for (p, measure) in [(&g.warmup, false), (&g.measure, true)] {
                let Some(p) = p else { continue };
                if producer {
                    self.sent += p.sent;
                    self.acked += p.acked;
                    self.send_errors += p.send_errors;
                    self.late_sends += p.late_sends;
                    if measure {
                        self.acked_measure += p.acked;
                    }
                } else {
                    self.received += p.received;
                    if measure {
                        self.received_measure += p.received;
                    }
                }
            }
        }
    }

    /// The intervals whose middle lies inside `window` (coordinator clock,
    /// ns) and that measured any wall time: (cpu_ns, wall_ns) each.
    fn inside(&self, (from, to): (i64, i64)) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.cpu
            .iter()
            .filter(move |(s, e, _, w)| *w > 0 && (from..to).contains(&(s + (e - s) / 2)))
            .map(|c| (c.2, c.3))
    }

    /// The agent process's CPU over the intervals that lie mostly inside
    /// `window`, percent of one core; None without such an interval.
    pub fn cpu_percent_in(&self, window: (i64, i64)) -> Option<f64> {
        let (cpu, wall) = self.inside(window).fold((0u64, 0u64), |(c, w), (cn, wn)| (c + cn, w + wn));
        (wall > 0).then(|| cpu as f64 / wall as f64 * 100.0)
    }

    /// Of the intervals mostly inside `window`, how many the process spent
    /// above `limit` (percent of one core), and how many there were; None
    /// without such an interval.
    pub fn cpu_over_in(&self, window: (i64, i64), limit: f64) -> Option<(usize, usize)> {
        let (over, of) = self
            .inside(window)
            .fold((0, 0), |(o, n), (c, w)| (o + usize::from(c as f64 / w as f64 * 100.0 > limit), n + 1));
        (of > 0).then_some((over, of))
    }
}

/// An interval report's histograms, read and checked (what
/// [`Intervals::add`] takes): the costly part of a merge, done where
/// the report arrives so a thousand agents' reports are read in parallel.
pub fn read_ahead(r: &IntervalReport) -> Vec<ReadGroup> {
    r.groups.iter().map(ReadGroup::read).collect()
}

/// Interval reports merged across agents, by interval index.
#[derive(Default)]
pub struct Intervals {
    pub by_index: BTreeMap<u64, IntervalMerge>,
}

#[derive(Default)]
pub struct IntervalMerge {
    pub agents: u32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub producers: BTreeMap<u32, GroupPhases>,
    pub consumers: BTreeMap<u32, GroupPhases>,
    pub max_lag_ns: u64,
    pub cpu_ns: u64,
    pub wall_ns: u64,
    /// Histograms added but not yet settled into the groups, by (producer, group).
    pub(crate) pending: BTreeMap<(bool, u32), GroupSums>,
}

impl IntervalMerge {
    /// Makes every histogram added so far readable in `producers` and `consumers`.
    pub fn settle(&mut self) {
        for ((producer, group), mut sums) in std::mem::take(&mut self.pending) {
            let map = if producer { &mut self.producers } else { &mut self.consumers };
            sums.settle_into(map.entry(group).or_default());
        }
    }
}

impl Intervals {
    /// Adds one agent's interval; returns the merged interval, its counters
    /// up to date, its histograms summed but not settled (see
    /// [`IntervalMerge::settle`]: once per printed line, not per agent).
    /// `read` is `read_ahead(r)`, done on the session's task.
    pub fn add(&mut self, r: &IntervalReport, read: Vec<ReadGroup>) -> &mut IntervalMerge {
        let m = self.by_index.entry(r.index).or_default();
        m.agents += 1;
        m.start_ns = r.start_ns;
        m.end_ns = r.end_ns;
        m.max_lag_ns = m.max_lag_ns.max(r.max_lag_ns);
        m.cpu_ns += r.cpu_ns;
        m.wall_ns = m.wall_ns.max(r.wall_ns);
        for (g, read) in r.groups.iter().zip(read) {
            let producer = g.role == proto::Role::Producer as i32;
            let map = if producer { &mut m.producers } else { &mut m.consumers };
            // Summed, settled when the interval's line prints (a bad
            // histogram from one agent leaves its phase out).
            let sums = m.pending.entry((producer, g.group)).or_default();
            let _ = map.entry(g.group).or_default().merge_read_deferred(g, read, sums);
        }
        m
    }

    /// Settles every interval (before the report reads them).
    pub fn settle_all(&mut self) {
        self.by_index.values_mut().for_each(IntervalMerge::settle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_over_a_window_takes_the_intervals_mostly_inside_it() {
        const S: i64 = 1_000_000_000;
        let mut t = IntervalTotals::default();
        // 1-s intervals: 10 % of a core, then 190 % twice, then 10 %.
        for (k, cpu_ms) in [100u64, 1900, 1900, 100].into_iter().enumerate() {
            let start = k as i64 * S;
            t.add(&IntervalReport {
                start_ns: start,
                end_ns: start + S,
                cpu_ns: cpu_ms * 1_000_000,
                wall_ns: S as u64,
                ..Default::default()
            });
        }
        assert_eq!(t.cpu_percent_in((S, 3 * S)), Some(190.0), "the measurement's two intervals");
        assert_eq!(t.cpu_percent_in((0, 4 * S)), Some(100.0), "the whole run's four");
        assert_eq!(t.cpu_percent_in((9 * S, 10 * S)), None, "none inside");
        assert_eq!(t.cpu_ns, 4_000_000_000, "the sums stay");
        // Over 180 % of one core (90 % of 2 CPUs): both measured intervals, 2 of the run's 4.
        assert_eq!(t.cpu_over_in((S, 3 * S), 180.0), Some((2, 2)));
        assert_eq!(t.cpu_over_in((0, 4 * S), 180.0), Some((2, 4)));
        assert_eq!(t.cpu_over_in((9 * S, 10 * S), 180.0), None);
    }
}
