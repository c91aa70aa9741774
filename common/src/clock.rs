//! One monotonic clock per process, expressed as nanoseconds since the Unix
//! epoch. It reads the wall clock once and advances with `Instant` after
//! that, so a wall-clock step during a run cannot move a timestamp.
//! The coordinator's clock is the run's time base; an agent converts with
//! the offset the coordinator measured (`coordinator_ns = agent_ns - offset`).

use std::sync::OnceLock;
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

/// Nanoseconds since the Unix epoch on this process's monotonic clock.
pub fn now_ns() -> i64 {
    let a = anchor();
    a.unix_ns.saturating_add(i64::try_from(a.instant.elapsed().as_nanos()).unwrap_or(i64::MAX))
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

/// A view of the process clock in another time base.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeBase {
    /// `local_ns - offset_ns` is the time in this base.
    pub offset_ns: i64,
}

impl TimeBase {
    pub fn now_ns(&self) -> i64 {
        now_ns() - self.offset_ns
    }
    /// The local `Instant` at which this base reads `ns`.
    pub fn instant_at(&self, ns: i64) -> Instant {
        instant_at(ns + self.offset_ns)
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
