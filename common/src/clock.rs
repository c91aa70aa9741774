//! One monotonic clock per process, expressed as nanoseconds since the Unix
//! epoch. It reads the wall clock once and advances with `Instant` after
//! that, so a wall-clock step during a run cannot move a timestamp.
//! The coordinator's clock is the run's time base; an agent converts with
//! the offset the coordinator measured (`coordinator_ns = agent_ns - offset`).
//!
//! [`TimeBase`] reads the same clock through tokio's `Instant`: outside
//! tests that is the process's `Instant`, so a run's stamps are the
//! process clock's; in a test on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`) it follows
//! `tokio::time::advance`, so timing logic is tested without sleeping.
//!
//! Imports nothing from the crate.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Anchor {
    instant: Instant,
    unix_ns: i64,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    })
}

fn as_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// This process's clock reading at `t`. An `Instant` before the anchor (a
/// paused tokio clock starts where its runtime was built, maybe before the
/// anchor was first read) reads before the anchor's time.
#[inline]
fn ns_at(t: Instant) -> i64 {
    let a = anchor();
    match t.checked_duration_since(a.instant) {
        Some(after) => a.unix_ns.saturating_add(as_ns(after)),
        None => a.unix_ns.saturating_sub(as_ns(a.instant.duration_since(t))),
    }
}

/// Nanoseconds since the Unix epoch on this process's monotonic clock.
pub fn now_ns() -> i64 {
    ns_at(Instant::now())
}

/// The `Instant` at which this process's clock reads `ns`.
pub fn instant_at(ns: i64) -> Instant {
    let a = anchor();
    let delta = ns.saturating_sub(a.unix_ns);
    if delta >= 0 {
        a.instant + Duration::from_nanos(delta.unsigned_abs())
    } else {
        a.instant.checked_sub(Duration::from_nanos(delta.unsigned_abs())).unwrap_or(a.instant)
    }
}

/// A view of the process clock in another time base, read through tokio's
/// clock (see the module doc). Clones share the offset, so a correction
/// (clock re-sync during a run) reaches every task that holds one.
#[derive(Debug, Clone, Default)]
pub struct TimeBase {
    /// `local_ns - offset_ns` is the time in this base.
    offset_ns: Arc<AtomicI64>,
}

impl TimeBase {
    pub fn new(offset_ns: i64) -> TimeBase {
        TimeBase { offset_ns: Arc::new(AtomicI64::new(offset_ns)) }
    }
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns.load(Ordering::Relaxed)
    }
    /// A new estimate of the offset; every clone follows.
    pub fn set_offset_ns(&self, offset_ns: i64) {
        self.offset_ns.store(offset_ns, Ordering::Relaxed);
    }
    /// Now in this base: the process clock (tokio's, when paused) minus the offset.
    #[inline]
    pub fn now_ns(&self) -> i64 {
        ns_at(tokio::time::Instant::now().into_std()) - self.offset_ns()
    }
    /// The tokio `Instant` at which this base reads `ns` (for `sleep_until`).
    pub fn instant_at(&self, ns: i64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(instant_at(ns + self.offset_ns()))
    }
}

/// One clock-sync sample: `t0` and `t3` on the coordinator, `agent` on the agent.
#[derive(Debug, Clone, Copy)]
pub struct SyncSample {
    pub t0: i64,
    pub agent: i64,
    pub t3: i64,
}

impl SyncSample {
    pub fn rtt_ns(&self) -> i64 {
        self.t3 - self.t0
    }
    /// Agent clock minus coordinator clock, assuming a symmetric path.
    pub fn offset_ns(&self) -> i64 {
        self.agent - (self.t0 + (self.t3 - self.t0) / 2)
    }
}

/// The offset estimate from the lowest-RTT sample, and its error bound (RTT/2).
pub fn best_offset(samples: &[SyncSample]) -> Option<(i64, i64)> {
    samples.iter().filter(|s| s.rtt_ns() >= 0).min_by_key(|s| s.rtt_ns()).map(|s| (s.offset_ns(), s.rtt_ns() / 2))
}

/// Follows an agent's clock offset during a run, from the keepalive
/// Ping/Pong exchanges (clocks drift apart by up to tens of microseconds a
/// second without NTP: a hour-long run would otherwise carry a growing
/// error in every cross-host latency). Every [`ClockTracker::WINDOW`]
/// samples it takes the lowest-RTT one; when that estimate's interval
/// (offset ± RTT/2) excludes the offset in use, the offset in use is
/// provably off by more than the new bound, and the new estimate replaces
/// it. Jitter within the bound never moves it.
#[derive(Debug, Clone)]
pub struct ClockTracker {
    first_ns: i64,
    offset_ns: i64,
    error_ns: i64,
    worst_error_ns: i64,
    window: Vec<SyncSample>,
    updates: u32,
}

impl ClockTracker {
    /// Samples per estimate.
    pub const WINDOW: usize = 4;

    /// Starts from the offset and error bound of the initial sync.
    pub fn new(offset_ns: i64, error_ns: i64) -> ClockTracker {
        ClockTracker {
            first_ns: offset_ns,
            offset_ns,
            error_ns,
            worst_error_ns: error_ns,
            window: Vec::with_capacity(Self::WINDOW),
            updates: 0,
        }
    }

    /// Adds a sample; returns the new (offset, error bound) when the offset
    /// in use should change.
    pub fn observe(&mut self, s: SyncSample) -> Option<(i64, i64)> {
        if s.rtt_ns() < 0 {
            return None;
        }
        self.window.push(s);
        if self.window.len() < Self::WINDOW {
            return None;
        }
        let (offset, error) = best_offset(&self.window)?;
        self.window.clear();
        if (offset - self.offset_ns).abs() <= error {
            return None;
        }
        self.offset_ns = offset;
        self.error_ns = error;
        self.worst_error_ns = self.worst_error_ns.max(error);
        self.updates += 1;
        Some((offset, error))
    }

    /// The offset in use.
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns
    }
    /// The error bound of the offset in use.
    pub fn error_ns(&self) -> i64 {
        self.error_ns
    }
    /// The widest error bound of any offset used since the initial sync:
    /// what bounds a latency measured at any time in the run.
    pub fn worst_error_ns(&self) -> i64 {
        self.worst_error_ns
    }
    /// How far the offset moved since the initial sync.
    pub fn drift_ns(&self) -> i64 {
        self.offset_ns - self.first_ns
    }
    /// Corrections made.
    pub fn updates(&self) -> u32 {
        self.updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_close_to_wall() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i64;
        assert!((wall - b).abs() < 1_000_000_000);
    }

    fn sample(t0: i64, rtt: i64, offset: i64) -> SyncSample {
        SyncSample { t0, agent: t0 + rtt / 2 + offset, t3: t0 + rtt }
    }

    #[test]
    fn tracker_follows_drift_and_ignores_jitter() {
        let mut t = ClockTracker::new(1_000_000, 50_000);
        // Jitter inside the bound (RTT 100..400 us around the same offset): no change.
        for i in 0..40 {
            let rtt = 100_000 + (i % 4) * 100_000;
            let jitter = (i % 3 - 1) * 20_000;
            assert_eq!(t.observe(sample(i * 1_000_000_000, rtt, 1_000_000 + jitter)), None);
        }
        assert_eq!(t.updates(), 0);
        // The agent's clock runs 100 us/s fast: every estimate follows it
        // once it leaves the bound of the best sample (RTT 100 us: 50 us).
        let mut last = None;
        for i in 0..100 {
            let drift = i * 100_000;
            if let Some(u) = t.observe(sample(i * 1_000_000_000, 100_000 + (i % 4) * 50_000, 1_000_000 + drift)) {
                last = Some((i, u));
            }
        }
        let (i, (offset, err)) = last.expect("updated");
        assert_eq!(err, 50_000);
        assert!((offset - (1_000_000 + i * 100_000)).abs() <= 300_000, "{offset} at {i}");
        assert!(t.updates() >= 20, "{}", t.updates());
        assert!((t.drift_ns() - 9_900_000).abs() <= 400_000, "{}", t.drift_ns());
        assert_eq!((t.error_ns(), t.worst_error_ns()), (50_000, 50_000));
        // A sample with a negative RTT (a clock step on our side) is ignored.
        assert_eq!(t.observe(SyncSample { t0: 10, agent: 0, t3: 5 }), None);
        // A step while the path is slow: the new offset carries a wider
        // bound, and the worst bound in use stays after the path recovers.
        let base = 100 * 1_000_000_000;
        let stepped = t.offset_ns() + 50_000_000;
        for i in 0..4 {
            t.observe(sample(base + i * 1_000_000_000, 4_000_000, stepped));
        }
        assert_eq!((t.offset_ns(), t.error_ns()), (stepped, 2_000_000));
        for i in 4..8 {
            t.observe(sample(base + i * 1_000_000_000, 100_000, stepped + 5_000_000));
        }
        assert_eq!((t.error_ns(), t.worst_error_ns()), (50_000, 2_000_000));
    }

    #[test]
    fn time_base_clones_share_the_offset() {
        let a = TimeBase::new(1_000);
        let b = a.clone();
        a.set_offset_ns(5_000);
        assert_eq!(b.offset_ns(), 5_000);
        // Bracketed by two process-clock reads, so a preempted test thread
        // cannot fail it (a 1 ms bound between two reads failed in CI).
        let (before, y, after) = (now_ns(), b.now_ns(), now_ns());
        assert!((before - 5_000..=after - 5_000).contains(&y), "{before} {y} {after}");
    }

    #[test]
    fn best_offset_uses_lowest_rtt() {
        let samples = [
            SyncSample { t0: 0, agent: 1_000_500, t3: 1_000 }, // rtt 1000, offset 1_000_000
            SyncSample { t0: 10_000, agent: 1_050_000, t3: 90_000 }, // rtt 80_000, offset 1_000_000
            SyncSample { t0: 100_000, agent: 2_000_000, t3: 300_000 },
        ];
        let (off, err) = best_offset(&samples).expect("samples");
        assert_eq!(off, 1_000_000);
        assert_eq!(err, 500);
        assert!(best_offset(&[]).is_none());
    }

    #[test]
    fn instant_roundtrip() {
        let ns = now_ns() + 5_000_000;
        let i = instant_at(ns);
        let back = i.duration_since(anchor().instant).as_nanos() as i64 + anchor().unix_ns;
        assert_eq!(back, ns);
    }
}
