//! Which interval a task's counts belong to ([`IntervalClock`]), and a
//! task's side of interval reporting ([`Reporter`]): the aggregator's ticks
//! and the channel the task's reports go to.
//!
//! Imports `task.rs` only.

use std::time::Duration;

use common::stats::GroupPhases;
use tokio::sync::{mpsc, watch};

use super::task::{Role, TaskReport};

/// Which interval a task's counts belong to, by when they happen. The
/// aggregator's tick for a boundary can reach a busy task late, and what
/// the task takes in between (a burst of backlog after a pause, on a loaded
/// machine) would count in the interval before. So a task checks its own
/// clock readings against the next boundary and reports the interval that
/// ended itself; the tick (which also reaches idle tasks) then finds
/// nothing left to report.
#[derive(Debug, Clone)]
pub(super) struct IntervalClock {
    start: i64,
    step: i64,
    /// The interval counts go to now.
    open: u64,
    /// Its end (i64::MAX before the start: only ticks count then).
    next_boundary: i64,
}

impl IntervalClock {
    pub fn new(step: Duration) -> IntervalClock {
        IntervalClock { start: 0, step: (step.as_nanos() as i64).max(1), open: 0, next_boundary: i64::MAX }
    }

    pub fn started(&mut self, start: i64) {
        self.start = start;
        self.open = 0;
        self.next_boundary = start.saturating_add(self.step);
    }

    /// The interval to report when `now` is past the open one's end.
    #[inline]
    pub fn crossed(&mut self, now: i64) -> Option<u64> {
        if now < self.next_boundary {
            return None;
        }
        let ended = self.open;
        self.open = ((now - self.start) / self.step) as u64;
        self.next_boundary = self.start + (self.open as i64 + 1) * self.step;
        Some(ended)
    }

    /// A tick: interval `began` began. The interval to report (the one
    /// before it), unless this task reported it already.
    pub fn tick(&mut self, began: u64) -> Option<u64> {
        if began <= self.open && self.next_boundary != i64::MAX {
            return None;
        }
        self.open = self.open.max(began);
        if self.next_boundary != i64::MAX {
            self.next_boundary = self.start + (self.open as i64 + 1) * self.step;
        }
        Some(began.saturating_sub(1))
    }
}

/// A task's side of interval reporting: its [`IntervalClock`], the
/// aggregator's ticks (the value names the interval that just began) and
/// the channel its [`TaskReport`]s go to.
pub(super) struct Reporter {
    role: Role,
    group: usize,
    clock: IntervalClock,
    ticks: watch::Receiver<u64>,
    reports: mpsc::UnboundedSender<TaskReport>,
}

impl Reporter {
    pub fn new(
        role: Role,
        group: usize,
        step: Duration,
        ticks: watch::Receiver<u64>,
        reports: mpsc::UnboundedSender<TaskReport>,
    ) -> Reporter {
        Reporter { role, group, clock: IntervalClock::new(step), ticks, reports }
    }

    pub fn started(&mut self, start: i64) {
        self.clock.started(start);
    }

    /// The interval to report when `now` is past the open one's end.
    #[inline]
    pub fn crossed(&mut self, now: i64) -> Option<u64> {
        self.clock.crossed(now)
    }

    /// A tick came (or is pending): the interval to report, if this task
    /// has not reported it already.
    pub fn ticked(&mut self) -> Option<u64> {
        let began = *self.ticks.borrow_and_update();
        self.clock.tick(began)
    }

    /// A tick is waiting to be seen.
    #[inline]
    pub fn tick_pending(&self) -> bool {
        self.ticks.has_changed().unwrap_or(false)
    }

    /// Resolves at the next tick (then call [`Reporter::ticked`]), or at
    /// once when the aggregator is gone; cancel-safe.
    pub async fn next_tick(&mut self) {
        let _ = self.ticks.changed().await;
    }

    /// The last tick seen: the interval open at the aggregator.
    pub fn last_tick(&self) -> u64 {
        *self.ticks.borrow()
    }

    pub fn send(&self, interval: u64, stats: GroupPhases, unique_new: u64, done: bool) {
        let _ = self.reports.send(TaskReport { interval, role: self.role, group: self.group, stats, unique_new, done });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_clock_reports_by_time_and_ticks_fill_in() {
        let s = 1_000_000_000i64;
        let mut c = IntervalClock::new(Duration::from_secs(1));
        // Before the start only ticks count.
        assert_eq!(c.crossed(5 * s), None);
        assert_eq!(c.tick(1), Some(0));
        c.started(10 * s);
        assert_eq!(c.crossed(10 * s + 999_999_999), None);
        // A reading past the boundary reports the interval that ended...
        assert_eq!(c.crossed(11 * s), Some(0));
        assert_eq!(c.crossed(11 * s + 5), None);
        // ...and the late tick for that boundary has nothing left.
        assert_eq!(c.tick(1), None);
        // An idle task: the tick reports, then readings go on from there.
        assert_eq!(c.tick(2), Some(1));
        assert_eq!(c.crossed(12 * s + 1), None);
        assert_eq!(c.crossed(13 * s), Some(2));
        // A jump over several boundaries reports the open one once.
        assert_eq!(c.crossed(16 * s + 3), Some(3));
        assert_eq!(c.crossed(16 * s + 4), None);
        assert_eq!(c.tick(5), None);
        assert_eq!(c.tick(6), None);
        assert_eq!(c.tick(7), Some(6));
    }
}
