//! A producer group's rate curve: its load shape as piecewise-linear
//! segments in messages per nanosecond, with the integral (messages sent
//! by a time) and its inverse within a segment. Imports only the load
//! shape (`shape.rs`); the schedule (`mod.rs`) walks these segments.

use super::shape::{GroupPace, LoadShape};

/// One piece of a rate curve: rate goes linearly from `r0` to `r1`
/// (messages per nanosecond) over `dur` nanoseconds (`INFINITY`: forever at `r0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Seg {
    pub(super) dur: f64,
    r0: f64,
    r1: f64,
}

impl Seg {
    /// Messages in the whole segment (`INFINITY` for an endless one with a rate).
    pub(super) fn count(&self) -> f64 {
        if self.dur.is_infinite() {
            if self.r0 > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        } else {
            (self.r0 + self.r1) * 0.5 * self.dur
        }
    }
    /// Messages in the first `tau` ns of the segment.
    fn count_at(&self, tau: f64) -> f64 {
        if self.dur.is_infinite() {
            return self.r0 * tau;
        }
        let tau = tau.min(self.dur);
        self.r0 * tau + (self.r1 - self.r0) * tau * tau / (2.0 * self.dur)
    }
    /// The time within the segment at which `c` messages (≤ `count()`) have been sent.
    pub(super) fn time_of(&self, c: f64) -> f64 {
        if c <= 0.0 {
            return 0.0;
        }
        if self.dur.is_infinite() || self.r1 == self.r0 {
            return c / self.r0;
        }
        // r0·τ + a·τ² = c, a = (r1 - r0) / 2d; the stable root 2c / (r0 + √(r0² + 4ac)).
        let a = (self.r1 - self.r0) / (2.0 * self.dur);
        let disc = (self.r0 * self.r0 + 4.0 * a * c).max(0.0);
        let tau = 2.0 * c / (self.r0 + disc.sqrt());
        tau.min(self.dur)
    }
}

/// A group's rate curve, in messages per nanosecond.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    segs: Vec<Seg>,
    /// Repeat `segs` forever (spike); otherwise the last segment is infinite.
    periodic: bool,
}

const PER_NS: f64 = 1e-12; // milli-messages per second → messages per nanosecond

impl Curve {
    /// The curve of a group (group totals); `None` for `rate: max` (closed loop).
    pub fn of<'a>(group: impl Into<GroupPace<'a>>) -> Option<Curve> {
        let group = group.into();
        let ns = |d: std::time::Duration| d.as_nanos() as f64;
        let r = |milli: u64| milli as f64 * PER_NS;
        match group.load {
            LoadShape::Max => None,
            LoadShape::Constant => Some(Curve {
                segs: vec![Seg { dur: f64::INFINITY, r0: r(group.total_rate_milli), r1: r(group.total_rate_milli) }],
                periodic: false,
            }),
            LoadShape::Ramp { from_milli, to_milli, over } => Some(Curve {
                segs: vec![
                    Seg { dur: ns(*over), r0: r(*from_milli), r1: r(*to_milli) },
                    Seg { dur: f64::INFINITY, r0: r(*to_milli), r1: r(*to_milli) },
                ],
                periodic: false,
            }),
            LoadShape::Steps(steps) => {
                let mut segs: Vec<Seg> =
                    steps.iter().map(|s| Seg { dur: ns(s.dur), r0: r(s.rate_milli), r1: r(s.rate_milli) }).collect();
                let last = steps.last().map(|s| r(s.rate_milli)).unwrap_or(0.0);
                segs.push(Seg { dur: f64::INFINITY, r0: last, r1: last });
                Some(Curve { segs, periodic: false })
            }
            LoadShape::Spike { base_milli, peak_milli, every, dur } => {
                let base = Seg { dur: ns(every.saturating_sub(*dur)), r0: r(*base_milli), r1: r(*base_milli) };
                let peak = Seg { dur: ns(*dur), r0: r(*peak_milli), r1: r(*peak_milli) };
                Some(Curve { segs: vec![base, peak], periodic: true })
            }
        }
    }

    /// Segment `i` (a periodic curve repeats its segments forever).
    pub(super) fn seg(&self, i: usize) -> Option<Seg> {
        if self.periodic {
            if self.segs.is_empty() {
                None
            } else {
                Some(self.segs[i % self.segs.len()])
            }
        } else {
            self.segs.get(i).copied()
        }
    }

    /// Messages the whole group sends in `[0, t_ns)` (the integral of the rate).
    pub fn count_before(&self, t_ns: f64) -> f64 {
        let mut t0 = 0.0;
        let mut n = 0.0;
        let mut i = 0;
        // Whole periods of a periodic curve at once.
        if self.periodic {
            let period: f64 = self.segs.iter().map(|s| s.dur).sum();
            let per_period: f64 = self.segs.iter().map(Seg::count).sum();
            if period > 0.0 {
                let k = (t_ns / period).floor().max(0.0);
                t0 = k * period;
                n = k * per_period;
            }
        }
        while let Some(s) = self.seg(i) {
            if t_ns <= t0 + s.dur {
                return n + s.count_at(t_ns - t0);
            }
            n += s.count();
            t0 += s.dur;
            i += 1;
            if self.periodic && i >= 2 * self.segs.len() {
                break;
            }
        }
        n
    }

    /// Mean group rate (msg/s) over `[from, to)`.
    pub fn mean_rate(&self, from: std::time::Duration, to: std::time::Duration) -> f64 {
        let (a, b) = (from.as_nanos() as f64, to.as_nanos() as f64);
        if b <= a {
            return 0.0;
        }
        (self.count_before(b) - self.count_before(a)) / (b - a) * 1e9
    }
}
