//! Run control's pace changes on a schedule ([`Warp`]): the schedule's own
//! clock ("virtual" offsets from the start, what [`super::Schedule`] gives)
//! mapped to the run's clock ("real" offsets). Without a change the two are
//! one (the identity: exactly the schedule's times). A change at real
//! offset `T` re-bases the schedule there: from `T` the virtual clock runs
//! `factor` times as fast (a rate `factor` times the scenario's), or stands
//! still while paused; the times before `T` stay as they were. So a rate
//! change neither bursts to catch up nor leaves a gap, and the span a
//! producer was paused is not owed when it resumes.
//!
//! Imports nothing from the rest of the crate.

/// One stretch of the mapping: from real offset `real0`, where the virtual
/// clock read `virt0`, it runs at `factor` (or stands still: `paused`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    real0: i64,
    virt0: f64,
    factor: f64,
    paused: bool,
}

/// The virtual-to-real mapping of one producer's schedule; see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct Warp {
    /// In order of `real0`; the first is the identity from the start.
    segs: Vec<Seg>,
}

impl Default for Warp {
    fn default() -> Warp {
        Warp { segs: vec![Seg { real0: 0, virt0: 0.0, factor: 1.0, paused: false }] }
    }
}

impl Warp {
    /// True while no change was made: real offsets are the schedule's.
    pub fn is_identity(&self) -> bool {
        self.segs.len() == 1
    }

    fn last(&self) -> Seg {
        // Never empty: `default` has one segment and nothing removes the first.
        self.segs.last().copied().unwrap_or(Seg { real0: 0, virt0: 0.0, factor: 1.0, paused: false })
    }

    /// From real offset `at`, the schedule runs at `factor` times its rate,
    /// or is `paused`. Changes come in order; one at the same instant as the
    /// last replaces it; one before the last takes effect at the last's
    /// instant. A factor that is not a positive number pauses.
    pub fn change(&mut self, at: i64, factor: f64, paused: bool) {
        if self.segs.len() > 1 && self.last().real0 == at {
            self.segs.pop();
        }
        let last = self.last();
        let at = at.max(last.real0);
        let virt0 = if last.paused { last.virt0 } else { last.virt0 + (at - last.real0) as f64 * last.factor };
        let paused = paused || !(factor.is_finite() && factor > 0.0);
        self.segs.push(Seg { real0: at, virt0, factor, paused });
    }

    /// The real offset of the schedule's virtual offset `v`; None when the
    /// schedule is paused there with no resume known yet.
    #[inline]
    pub fn real(&self, v: i64) -> Option<i64> {
        if self.is_identity() {
            return Some(v);
        }
        let vf = v as f64;
        let seg = self.segs.iter().rev().find(|s| s.virt0 <= vf)?;
        if seg.paused {
            return None;
        }
        let t = seg.real0 as f64 + (vf - seg.virt0) / seg.factor;
        (t.is_finite() && t < 9.0e18).then(|| t.round() as i64)
    }

    /// Whether the schedule stands still at real offset `t`.
    pub fn paused_at(&self, t: i64) -> bool {
        self.segs.iter().rev().find(|s| s.real0 <= t).is_some_and(|s| s.paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Arrivals, GroupPace, LoadShape, Schedule};

    const S: i64 = 1_000_000_000;

    /// Real times before `until` of a uniform constant schedule at `rate` msg/s under `w`.
    fn times(rate: u64, w: &Warp, until: i64) -> Vec<i64> {
        let load = LoadShape::Constant;
        let g = GroupPace { load: &load, total_rate_milli: rate * 1000, arrivals: Arrivals::Uniform };
        let mut s = Schedule::for_producer(g, rate * 1000, 1).expect("open loop");
        let mut out = Vec::new();
        while let Some(v) = s.next_ns() {
            match w.real(v) {
                Some(t) if t < until => out.push(t),
                _ => break,
            }
        }
        out
    }

    fn count(ts: &[i64], from: i64, to: i64) -> usize {
        ts.iter().filter(|&&t| t >= from && t < to).count()
    }

    #[test]
    fn without_a_change_the_times_are_the_schedules() {
        let w = Warp::default();
        assert!(w.is_identity());
        assert_eq!(times(1000, &w, S)[..3], [0, 1_000_000, 2_000_000]);
    }

    #[test]
    fn a_rate_change_rebases_at_its_instant_without_burst_or_gap() {
        let mut w = Warp::default();
        w.change(2 * S, 3.0, false);
        let ts = times(1000, &w, 4 * S);
        assert_eq!(count(&ts, 0, 2 * S), 2000, "before: the scenario's rate");
        assert_eq!(count(&ts, 2 * S, 4 * S), 6000, "after: exactly three times");
        // Evenly spaced across the change: the last gap before is 1 ms, the first after 1/3 ms.
        let at = ts.iter().position(|&t| t >= 2 * S).expect("after");
        assert_eq!(ts[at], 2 * S);
        assert_eq!(ts[at - 1], 2 * S - 1_000_000);
        assert!((ts[at + 1] - ts[at] - 333_333).abs() <= 1);
        assert!(ts.windows(2).all(|p| p[1] > p[0]), "times never go back");
    }

    #[test]
    fn a_pause_owes_nothing_and_resume_goes_on_from_the_resume() {
        let mut w = Warp::default();
        w.change(S, 1.0, true);
        assert_eq!(w.real(S + 5), None, "paused with no resume known");
        assert!(w.paused_at(S + 1) && !w.paused_at(S - 1));
        w.change(3 * S, 1.0, false);
        let ts = times(1000, &w, 5 * S);
        assert_eq!(count(&ts, 0, S), 1000);
        assert_eq!(count(&ts, S, 3 * S), 0, "nothing while paused");
        assert_eq!(count(&ts, 3 * S, 5 * S), 2000, "the scenario's rate from the resume, nothing owed");
        assert_eq!(ts[1000], 3 * S, "the first send after the pause at the resume instant");
    }

    #[test]
    fn a_change_at_the_same_instant_replaces_the_last() {
        let mut w = Warp::default();
        w.change(S, 4.0, false);
        w.change(S, 1.0, false);
        assert_eq!(count(&times(1000, &w, 2 * S), S, 2 * S), 1000, "taken back");
        // A change before the last takes effect at the last's instant.
        let mut w = Warp::default();
        w.change(2 * S, 2.0, false);
        w.change(S, 0.5, false);
        let ts = times(1000, &w, 4 * S);
        assert_eq!(count(&ts, 0, 2 * S), 2000);
        assert_eq!(count(&ts, 2 * S, 4 * S), 1000);
    }
}
