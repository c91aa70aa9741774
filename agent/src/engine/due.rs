//! When a producer's next send is due ([`Upcoming`]): open loop, at the
//! next time of the group's schedule (re-based by run control's pace
//! changes, [`PaceChange`]); closed loop (`rate: max`), now, until the end
//! of the sends. Also the producer's instants ([`Span`]).
//!
//! Imports no other engine file.

use common::scenario::Phases;
use common::schedule::{Schedule, Warp};
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

/// A run-control change for one producer group (see the proto's
/// `Control`): from `at_ns` (coordinator time) the group's schedule runs at
/// `factor` times the scenario's rate, or is `paused`; `end_sends` ends its
/// sends there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PaceChange {
    pub at_ns: i64,
    pub factor: f64,
    pub paused: bool,
    pub end_sends: bool,
}

/// When the next send is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// At this intended time (coordinator ns).
    At(i64),
    /// Paused by run control: nothing is due until it resumes.
    Paused,
    /// Nothing more to send.
    Done,
}

/// What is left to send. Open loop: intended times from the group's curve
/// (O(1) amortized per message), through run control's [`Warp`] (the
/// identity unless the rate was changed or the producers paused). Closed
/// loop: no schedule; each send's intended time is when it goes out.
pub(super) struct Upcoming {
    schedule: Option<Schedule>,
    /// The next scheduled send, as an offset from the start on the
    /// schedule's own clock (before the warp).
    next_v: Option<i64>,
    /// The end of the sends, as an offset from the start.
    end_off: i64,
    warp: Warp,
}

/// Closed loop: how many sends in a row before the producer lets the
/// runtime's other tasks in (and sees a stop).
const CLOSED_LOOP_BATCH: u64 = 256;

impl Upcoming {
    pub fn new(mut schedule: Option<Schedule>, span: &Span) -> Upcoming {
        let end_off = span.end - span.start;
        let next_v = schedule.as_mut().and_then(Schedule::next_ns);
        Upcoming { schedule, next_v, end_off, warp: Warp::default() }
    }

    /// When the next send is due.
    #[inline]
    pub fn intended(&self, now: i64, span: &Span) -> Due {
        match (self.schedule.is_some(), self.next_v) {
            (true, Some(v)) => match self.warp.real(v) {
                Some(off) if off < self.end_off => Due::At(span.start + off),
                Some(_) => Due::Done,
                None if now >= span.start + self.end_off => Due::Done,
                None => Due::Paused,
            },
            (true, None) => Due::Done,
            // A closed loop starts at the start instant too (Start arrives
            // ahead of it).
            (false, _) if now >= span.start + self.end_off => Due::Done,
            (false, _) if self.warp.paused_at(now - span.start) => Due::Paused,
            (false, _) => Due::At(now.max(span.start)),
        }
    }

    /// Run control: applies `c` (at `now` if its instant has passed); an
    /// end of the sends moves `span.end`.
    pub fn rebase(&mut self, c: &PaceChange, now: i64, span: &mut Span) {
        let at = c.at_ns.max(now);
        if c.end_sends {
            span.end = span.end.min(at);
            self.end_off = self.end_off.min(at - span.start);
        } else {
            self.warp.change(at - span.start, c.factor, c.paused);
        }
    }

    /// Send `sent` (the count so far) went out: moves to the next. True
    /// when a closed loop should yield to the runtime now: against a broker
    /// that acknowledges at once it would otherwise never let other tasks in.
    #[inline]
    pub fn advance(&mut self, sent: u64) -> bool {
        match self.schedule.as_mut() {
            Some(s) => {
                self.next_v = s.next_ns();
                false
            }
            None => sent.is_multiple_of(CLOSED_LOOP_BATCH),
        }
    }

    /// What the schedule still holds before the end (never skipped
    /// silently); a paused span owes nothing.
    pub fn left(&mut self) -> u64 {
        let before_end = |w: &Warp, v: i64, end: i64| w.real(v).is_some_and(|t| t < end);
        let mut left = u64::from(self.next_v.is_some_and(|v| before_end(&self.warp, v, self.end_off)));
        if let Some(s) = self.schedule.as_mut() {
            while s.next_ns().is_some_and(|v| before_end(&self.warp, v, self.end_off)) {
                left += 1;
            }
        }
        left
    }
}
