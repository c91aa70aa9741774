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
//!
//! Here: the per-producer schedule. `shape.rs`: the load shape and arrival
//! types the scenario holds; `curve.rs`: the rate curve; `warp.rs`: run
//! control's pace changes (rate, pause) re-basing a schedule. This module tree
//! imports nothing from the rest of the crate (the scenario imports it).

mod curve;
mod shape;
mod warp;

pub use curve::Curve;
use curve::Seg;
pub use shape::{split_exact, Arrivals, GroupPace, LoadShape, Step};
pub use warp::Warp;

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
    pub fn for_producer<'a>(group: impl Into<GroupPace<'a>>, rate_milli: u64, seed: u64) -> Option<Schedule> {
        let group = group.into();
        let curve = Curve::of(group)?;
        if *group.load == LoadShape::Constant && group.arrivals == Arrivals::Uniform {
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
    use std::time::Duration;

    /// The parts of a producer group a schedule reads.
    struct Group {
        load: LoadShape,
        total_rate_milli: u64,
        arrivals: Arrivals,
    }

    impl<'a> From<&'a Group> for GroupPace<'a> {
        fn from(g: &'a Group) -> GroupPace<'a> {
            GroupPace { load: &g.load, total_rate_milli: g.total_rate_milli, arrivals: g.arrivals }
        }
    }

    fn group(load: LoadShape, total_rate_milli: u64, arrivals: Arrivals) -> Group {
        Group { load, total_rate_milli, arrivals }
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
        let g = group(load, 50_000_000, Arrivals::Uniform);
        let curve = Curve::of(&g).unwrap();
        let mut total = [0u64; 12];
        for rate in split_exact(g.total_rate_milli, 3) {
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
