//! `phases`: warmup, the measured duration, cooldown and the drain timeout;
//! and that consumers' pauses end while the run still waits for them.
//! Imports the context, the units, the raw and the validated model.

use std::time::Duration;

use super::cx::Cx;
use crate::scenario::model::{ConsumerGroup, Phases};
use crate::scenario::raw::RawPhases;
use crate::units::format_duration;

pub(super) fn validate(ph: &RawPhases, cx: &mut Cx<'_>) -> Phases {
    let warmup = cx.duration("phases.warmup", ph.warmup.as_ref(), Duration::ZERO);
    let duration = cx.duration("phases.duration", Some(&ph.duration), Duration::from_secs(1));
    let cooldown = cx.duration("phases.cooldown", ph.cooldown.as_ref(), Duration::ZERO);
    let drain_timeout = cx.duration("phases.drain_timeout", ph.drain_timeout.as_ref(), Duration::from_secs(30));
    let week = Duration::from_secs(7 * 24 * 3600);
    if duration.is_zero() {
        cx.err("phases.duration", "must be more than 0s");
    }
    for (k, d) in [
        ("phases.warmup", warmup),
        ("phases.duration", duration),
        ("phases.cooldown", cooldown),
        ("phases.drain_timeout", drain_timeout),
    ] {
        if d > week {
            cx.err(k, "is longer than 7 days");
        }
    }
    Phases { warmup, duration, cooldown, drain_timeout }
}

/// A pause must end while the run still waits for consumers.
pub(super) fn check_pauses_end(phases: &Phases, consumers: &[ConsumerGroup], cx: &mut Cx<'_>) {
    let last = phases.warmup + phases.duration + phases.cooldown + phases.drain_timeout;
    for (i, c) in consumers.iter().enumerate() {
        for p in &c.pauses {
            if p.until >= last {
                cx.hint(
                    &format!("consumers[{i}]"),
                    format!(
                        "takes nothing until {} from the start, but the run waits for consumers only until {}",
                        format_duration(p.until),
                        format_duration(last)
                    ),
                    "start the consumers earlier, or raise phases.drain_timeout",
                );
            }
        }
    }
}
