//! A producer group's rate over time as the scenario states it: the load
//! shape (constant, ramp, steps, spike, or closed loop), the arrival
//! process, and the exact split of a group rate over its producers. The
//! validated scenario holds these types (`common::scenario` re-exports
//! them); the curve and the schedule beside this file turn them into send
//! times. Imports nothing from the rest of the crate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A producer group's load over time; rates are group totals in
/// milli-messages per second, split over the producers like `total_rate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadShape {
    /// `rate`/`total_rate`: constant.
    #[default]
    Constant,
    /// Linear from `from` to `to` over `over`, then `to`.
    Ramp { from_milli: u64, to_milli: u64, over: Duration },
    /// Each step's rate for its duration; the last rate holds after the last step.
    Steps(Vec<Step>),
    /// Periods of `every`: `base`, then `peak` for the last `dur` of each period.
    Spike { base_milli: u64, peak_milli: u64, every: Duration, dur: Duration },
    /// `rate: max`: closed loop, `max_in_flight` outstanding per producer.
    Max,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub rate_milli: u64,
    pub dur: Duration,
}

/// `arrivals`: evenly spaced sends, or exponential gaps (same mean rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    #[default]
    Uniform,
    Poisson,
}

/// What a schedule needs to know of a producer group. The scenario's
/// `ProducerGroup` converts into it (`From<&ProducerGroup>`), so
/// `Schedule::for_producer(&group, ..)` reads as before while this module
/// knows nothing of the scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupPace<'a> {
    /// How the group's rate moves over time.
    pub load: &'a LoadShape,
    /// The group's rate in milli-messages per second: the constant rate, or
    /// the peak of its load shape.
    pub total_rate_milli: u64,
    /// Spacing of the sends.
    pub arrivals: Arrivals,
}

/// Splits `total` into `n` integer parts that differ by at most one and sum to `total`.
pub fn split_exact(total: u64, n: u32) -> impl Iterator<Item = u64> {
    let n64 = u64::from(n.max(1));
    let (base, rem) = (total / n64, total % n64);
    (0..u64::from(n)).map(move |i| base + u64::from(i < rem))
}
