//! When a producer's next send is due ([`Upcoming`]): open loop, at the
//! next time of the group's schedule; closed loop (`rate: max`), now, until
//! the end of the sends. Also the producer's instants ([`Span`]).
//!
//! Imports no other engine file.

use common::scenario::Phases;
use common::schedule::Schedule;
use common::stats::{GroupPhases, PhaseStats};

/// A producer's instants (coordinator ns), known at the start.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    pub start: i64,
    /// The end of the warmup: earlier counts go to the warmup phase.
    pub warmup_end: i64,
    /// The end of the sends (warmup + measurement).
    pub end: i64,
}

impl Span {
    pub fn new(start: i64, phases: &Phases) -> Span {
        Span {
            start,
            warmup_end: start + phases.warmup.as_nanos() as i64,
            end: start + phases.send_end().as_nanos() as i64,
        }
    }

    /// The phase what happens at `t` counts in.
    #[inline]
    pub fn phase<'a>(&self, stats: &'a mut GroupPhases, t: i64) -> &'a mut PhaseStats {
        if t < self.warmup_end {
            &mut stats.warmup
        } else {
            &mut stats.measure
        }
    }
}

/// What is left to send. Open loop: intended times from the group's curve
/// (O(1) amortized per message). Closed loop: no schedule; each send's
/// intended time is when it goes out.
pub(super) struct Upcoming {
    schedule: Option<Schedule>,
    /// The next scheduled send, as an offset from the start.
    next_off: Option<i64>,
    /// The end of the sends, as an offset from the start.
    end_off: i64,
}

/// Closed loop: how many sends in a row before the producer lets the
/// runtime's other tasks in (and sees a stop).
const CLOSED_LOOP_BATCH: u64 = 256;

impl Upcoming {
    pub fn new(mut schedule: Option<Schedule>, span: &Span) -> Upcoming {
        let end_off = span.end - span.start;
        let next_off = schedule.as_mut().and_then(Schedule::next_ns).filter(|&t| t < end_off);
        Upcoming { schedule, next_off, end_off }
    }

    /// The intended time of the next send, or None when there is none.
    #[inline]
    pub fn intended(&self, now: i64, span: &Span) -> Option<i64> {
        match self.next_off {
            Some(off) => Some(span.start + off),
            // A closed loop starts at the start instant too (Start arrives
            // ahead of it).
            None if self.schedule.is_none() && now < span.end => Some(now.max(span.start)),
            None => None,
        }
    }

    /// Send `sent` (the count so far) went out: moves to the next. True
    /// when a closed loop should yield to the runtime now: against a broker
    /// that acknowledges at once it would otherwise never let other tasks in.
    #[inline]
    pub fn advance(&mut self, sent: u64) -> bool {
        match self.schedule.as_mut() {
            Some(s) => {
                self.next_off = s.next_ns().filter(|&t| t < self.end_off);
                false
            }
            None => sent.is_multiple_of(CLOSED_LOOP_BATCH),
        }
    }

    /// What the schedule still holds before the end (never skipped silently).
    pub fn left(&mut self) -> u64 {
        let mut left = u64::from(self.next_off.is_some());
        if let Some(s) = self.schedule.as_mut() {
            while s.next_ns().is_some_and(|t| t < self.end_off) {
                left += 1;
            }
        }
        left
    }
}
