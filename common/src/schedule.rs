//! Open-loop send schedules: the intended send time of every message of one
//! producer, derived from its group's rate curve (`rate`/`total_rate`,
//! `load: {ramp|steps|spike}`) and its arrival process (`uniform` or
//! `poisson`).
//!
//! A group's curve `r(t)` (messages/s for the whole group) has the integral
//! `N(t)`; a producer with share `f` of the group sends message `k` at the
//! time `t` where `f·N(t) = c_k`, with `c_k = k` (uniform) or `c_k` the
//! running sum of unit-mean exponential gaps (poisson: same mean rate, the
//! gaps of a non-homogeneous Poisson process). The curve is piecewise
//! linear, so inverting `N` within a segment is one square root, and the
//! schedule walks segments forward: O(1) amortized per message.

use crate::scenario::{Arrivals, LoadShape, ProducerGroup};

/// One piece of a rate curve: rate goes linearly from `r0` to `r1`
/// (messages per nanosecond) over `dur` nanoseconds (`INFINITY`: forever at `r0`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    dur: f64,
    r0: f64,
    r1: f64,
}

impl Seg {
    fn count(&self) -> f64 {
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
    fn time_of(&self, c: f64) -> f64 {
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
    pub fn of(group: &ProducerGroup) -> Option<Curve> {
        let ns = |d: std::time::Duration| d.as_nanos() as f64;
        let r = |milli: u64| milli as f64 * PER_NS;
        match &group.load {
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

    fn seg(&self, i: usize) -> Option<Seg> {
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

/// A small seeded generator (SplitMix64): poisson gaps, reproducible per producer.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponential with mean 1.
    fn exp1(&mut self) -> f64 {
        -(1.0 - self.next_f64()).ln()
    }
}

/// One producer's intended send times, as nanosecond offsets from the start.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Constant uniform rate: exact integer arithmetic, message n at
    /// `floor(n · 10¹² / rate_milli)` ns, kept as a running quotient and
    /// remainder (no division per message).
    Exact(ExactSchedule),
    /// Any other open-loop shape.
    Curve(CurveSchedule),
}

#[derive(Debug, Clone)]
pub struct ExactSchedule {
    rate_milli: u64,
    /// 10¹² / rate_milli: whole nanoseconds per message, and the rest.
    step_ns: u64,
    step_rem: u64,
    /// The next message's time, and `n · step_rem mod rate_milli`.
    t_ns: u64,
    rem: u64,
}

impl ExactSchedule {
    fn new(rate_milli: u64) -> ExactSchedule {
        // Rates beyond 2^62 milli-msg/s keep `rem + step_rem` in range.
        let rate_milli = rate_milli.clamp(1, 1 << 62);
        ExactSchedule {
            rate_milli,
            step_ns: 1_000_000_000_000 / rate_milli,
            step_rem: 1_000_000_000_000 % rate_milli,
            t_ns: 0,
            rem: 0,
        }
    }

    fn next_ns(&mut self) -> Option<i64> {
        let t = i64::try_from(self.t_ns).ok()?;
        self.rem += self.step_rem;
        self.t_ns = self.t_ns.checked_add(self.step_ns)?;
        if self.rem >= self.rate_milli {
            self.rem -= self.rate_milli;
            self.t_ns = self.t_ns.checked_add(1)?;
        }
        Some(t)
    }
}

#[derive(Debug, Clone)]
pub struct CurveSchedule {
    curve: Curve,
    /// Group messages per message of this producer (1 / share).
    scale: f64,
    rng: Option<SplitMix>,
    /// The producer's next cumulative count target.
    next_c: f64,
    seg_idx: usize,
    seg: Option<Seg>,
    seg_t0: f64,
    seg_n0: f64,
}

impl Schedule {
    /// The schedule of a producer with `rate_milli` of the group's
    /// `total_rate_milli` (its share of the group's curve); `None` for a
    /// closed-loop (`rate: max`) group.
    pub fn for_producer(group: &ProducerGroup, rate_milli: u64, seed: u64) -> Option<Schedule> {
        let curve = Curve::of(group)?;
        if group.load == LoadShape::Constant && group.arrivals == Arrivals::Uniform {
            return Some(Schedule::Exact(ExactSchedule::new(rate_milli)));
        }
        let share = if group.total_rate_milli == 0 { 0.0 } else { rate_milli as f64 / group.total_rate_milli as f64 };
        Some(Schedule::with_curve(curve, share, group.arrivals, seed))
    }

    /// A producer taking `share` (0..=1) of `curve`.
    pub fn with_curve(curve: Curve, share: f64, arrivals: Arrivals, seed: u64) -> Schedule {
        let mut rng = match arrivals {
            Arrivals::Uniform => None,
            Arrivals::Poisson => Some(SplitMix(seed ^ 0xD1B5_4A32_D192_ED03)),
        };
        let next_c = rng.as_mut().map(SplitMix::exp1).unwrap_or(0.0);
        let seg = curve.seg(0);
        Schedule::Curve(CurveSchedule {
            curve,
            scale: if share > 0.0 { 1.0 / share } else { f64::INFINITY },
            rng,
            next_c,
            seg_idx: 0,
            seg,
            seg_t0: 0.0,
            seg_n0: 0.0,
        })
    }

    /// The next intended send time (ns from the start), or `None` when the
    /// curve sends nothing more.
    pub fn next_ns(&mut self) -> Option<i64> {
        match self {
            Schedule::Exact(e) => e.next_ns(),
            Schedule::Curve(c) => c.next_ns(),
        }
    }
}

impl CurveSchedule {
    fn next_ns(&mut self) -> Option<i64> {
        if !self.scale.is_finite() {
            return None;
        }
        let target = self.next_c * self.scale;
        loop {
            let seg = self.seg?;
            let end = self.seg_n0 + seg.count();
            if target < end {
                break;
            }
            if seg.dur.is_infinite() {
                self.seg = None;
                return None;
            }
            self.seg_t0 += seg.dur;
            self.seg_n0 = end;
            self.seg_idx += 1;
            self.seg = self.curve.seg(self.seg_idx);
        }
        let seg = self.seg?;
        let t = self.seg_t0 + seg.time_of(target - self.seg_n0);
        self.next_c += match &mut self.rng {
            None => 1.0,
            Some(r) => r.exp1(),
        };
        if t.is_finite() && t < 9.0e18 {
            Some(t as i64)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Step;
    use std::time::Duration;

    fn group(load: LoadShape, total_rate_milli: u64, arrivals: Arrivals) -> ProducerGroup {
        ProducerGroup {
            name: "g".into(),
            topic: "t".into(),
            count: 1,
            total_rate_milli,
            message_size: crate::scenario::SizeDist::Fixed(10),
            keys: crate::scenario::KeyPattern::None,
            max_in_flight: 10,
            send_timeout: Duration::from_secs(1),
            payload: crate::scenario::PayloadKind::Random,
            batching: None,
            compression: crate::scenario::Compression::None,
            clients: 1,
            load,
            arrivals,
        }
    }

    /// Counts per 1 s bucket of every time before `secs`.
    fn buckets(s: &mut Schedule, secs: usize) -> Vec<u64> {
        let mut b = vec![0u64; secs];
        let mut last = -1i64;
        while let Some(t) = s.next_ns() {
            assert!(t >= last, "times never go back: {t} after {last}");
            last = t;
            let i = (t / 1_000_000_000) as usize;
            if i >= secs {
                break;
            }
            b[i] += 1;
        }
        b
    }

    #[test]
    fn ramp_follows_the_integral_within_one_message() {
        let load = LoadShape::Ramp { from_milli: 1_000_000, to_milli: 100_000_000, over: Duration::from_secs(60) };
        let g = group(load, 100_000_000, Arrivals::Uniform);
        let curve = Curve::of(&g).unwrap();
        let mut s = Schedule::for_producer(&g, g.total_rate_milli, 1).unwrap();
        let b = buckets(&mut s, 70);
        for (i, n) in b.iter().enumerate() {
            let t = |k: usize| Duration::from_secs(k as u64).as_nanos() as f64;
            let want = curve.count_before(t(i + 1)) - curve.count_before(t(i));
            assert!((*n as f64 - want).abs() <= 1.0, "second {i}: {n} sent, integral {want}");
        }
        // 1k→100k over 60 s: 1000·60 + 99000·30 = 3 030 000, then 100k/s.
        assert!((b[..60].iter().sum::<u64>() as i64 - 3_030_000).abs() <= 1);
        assert_eq!(b[65], 100_000);
    }

    #[test]
    fn shares_of_a_group_add_up_to_the_curve() {
        let load = LoadShape::Ramp { from_milli: 1_000_000, to_milli: 50_000_000, over: Duration::from_secs(10) };
        let mut g = group(load, 50_000_000, Arrivals::Uniform);
        g.count = 3;
        let curve = Curve::of(&g).unwrap();
        let mut total = [0u64; 12];
        for rate in crate::plan::split_exact(g.total_rate_milli, 3) {
            let mut s = Schedule::for_producer(&g, rate, 1).unwrap();
            for (t, n) in total.iter_mut().zip(buckets(&mut s, 12)) {
                *t += n;
            }
        }
        for (i, n) in total.iter().enumerate() {
            let t = |k: usize| k as f64 * 1e9;
            let want = curve.count_before(t(i + 1)) - curve.count_before(t(i));
            assert!((*n as f64 - want).abs() <= 3.0, "second {i}: {n} vs {want}");
        }
    }

    #[test]
    fn steps_and_spikes_follow_their_shape() {
        let steps = LoadShape::Steps(vec![
            Step { rate_milli: 1_000_000, dur: Duration::from_secs(2) },
            Step { rate_milli: 5_000_000, dur: Duration::from_secs(3) },
            Step { rate_milli: 2_000_000, dur: Duration::from_secs(1) },
        ]);
        let g = group(steps, 5_000_000, Arrivals::Uniform);
        let b = buckets(&mut Schedule::for_producer(&g, g.total_rate_milli, 1).unwrap(), 8);
        assert_eq!(b, vec![1000, 1000, 5000, 5000, 5000, 2000, 2000, 2000]);

        let spike = LoadShape::Spike {
            base_milli: 1_000_000,
            peak_milli: 5_000_000,
            every: Duration::from_secs(4),
            dur: Duration::from_secs(1),
        };
        let g = group(spike, 5_000_000, Arrivals::Uniform);
        let b = buckets(&mut Schedule::for_producer(&g, g.total_rate_milli, 1).unwrap(), 8);
        assert_eq!(b, vec![1000, 1000, 1000, 5000, 1000, 1000, 1000, 5000]);
        let c = Curve::of(&g).unwrap();
        assert!((c.mean_rate(Duration::ZERO, Duration::from_secs(8)) - 2000.0).abs() < 1e-6);
    }

    proptest::proptest! {
        /// The running quotient and remainder give exactly `floor(n · 10¹² / rate)`.
        #[test]
        fn exact_schedule_equals_the_division(rate in 1u64..10_000_000_000_000, skip in 0u64..1_000_000) {
            let mut e = ExactSchedule::new(rate);
            // Far into the run too: jump ahead as if `skip` messages went.
            let mut at = ExactSchedule::new(rate);
            for n in 0..64u64 {
                let want = i64::try_from(u128::from(n) * 1_000_000_000_000 / u128::from(rate)).ok();
                proptest::prop_assert_eq!(e.next_ns(), want);
            }
            at.t_ns = (u128::from(skip) * 1_000_000_000_000 / u128::from(rate)) as u64;
            at.rem = ((u128::from(skip) * u128::from(at.step_rem)) % u128::from(rate)) as u64;
            for n in skip..skip + 64 {
                let want = i64::try_from(u128::from(n) * 1_000_000_000_000 / u128::from(rate)).ok();
                proptest::prop_assert_eq!(at.next_ns(), want);
            }
        }
    }

    #[test]
    fn constant_uniform_is_exact_and_poisson_keeps_the_mean() {
        let g = group(LoadShape::Constant, 3_000, Arrivals::Uniform);
        let mut s = Schedule::for_producer(&g, 3_000, 1).unwrap();
        let t: Vec<i64> = (0..4).map(|_| s.next_ns().unwrap()).collect();
        assert_eq!(t, vec![0, 333_333_333, 666_666_666, 1_000_000_000]);

        let g = group(LoadShape::Constant, 10_000_000, Arrivals::Poisson);
        let b = buckets(&mut Schedule::for_producer(&g, g.total_rate_milli, 7).unwrap(), 20);
        let n: u64 = b.iter().sum();
        // Mean 200 000, standard deviation ~450.
        assert!((n as f64 - 200_000.0).abs() < 2_500.0, "{n}");
        // Gaps vary (not uniform), and the same seed gives the same times.
        let mut a = Schedule::for_producer(&g, g.total_rate_milli, 7).unwrap();
        let mut b2 = Schedule::for_producer(&g, g.total_rate_milli, 7).unwrap();
        let ta: Vec<i64> = (0..100).map(|_| a.next_ns().unwrap()).collect();
        let tb: Vec<i64> = (0..100).map(|_| b2.next_ns().unwrap()).collect();
        assert_eq!(ta, tb);
        let gaps: Vec<i64> = ta.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().max() > Some(&(3 * 100_000)) && gaps.iter().min() < Some(&(100_000 / 3)));
    }

    #[test]
    fn closed_loop_has_no_schedule() {
        let g = group(LoadShape::Max, 0, Arrivals::Uniform);
        assert!(Schedule::for_producer(&g, 0, 1).is_none());
    }
}
