//! `faults`: actions at fixed times (today: stop some consumers of a
//! group), during warmup + duration. Imports the context, the raw and the
//! validated model.

use std::time::Duration;

use super::cx::Cx;
use crate::scenario::model::{ConsumerGroup, Fault, FaultAction};
use crate::scenario::raw::{RawFault, RawStopConsumers};

/// The faults that name a consumer group and a count within it;
/// `send_end` is when the producers stop.
pub(super) fn validate(
    raw: &[RawFault],
    send_end: Duration,
    consumers: &[ConsumerGroup],
    cx: &mut Cx<'_>,
) -> Vec<Fault> {
    let mut faults = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let key = format!("faults[{i}]");
        let at = cx.duration(&format!("{key}.at"), Some(&f.at), Duration::ZERO);
        if at >= send_end {
            cx.hint(&format!("{key}.at"), "is after the producers stop", "faults happen during warmup + duration");
        }
        match &f.stop_consumers {
            None => cx.hint(&key, "no action", "e.g. `stop_consumers: {group: backup, count: 1}`"),
            Some(sc) => {
                if let Some(action) = stop_consumers(cx, &key, sc, consumers) {
                    faults.push(Fault { at, action });
                }
            }
        }
    }
    faults
}

fn stop_consumers(
    cx: &mut Cx<'_>,
    key: &str,
    sc: &RawStopConsumers,
    consumers: &[ConsumerGroup],
) -> Option<FaultAction> {
    let Some(g) = consumers.iter().position(|c| c.name == sc.group) else {
        cx.hint(
            &format!("{key}.stop_consumers.group"),
            format!("no consumer group `{}`", sc.group),
            "name one of `consumers`",
        );
        return None;
    };
    let n = consumers[g].count;
    if sc.count < 1 || sc.count > i64::from(n) {
        cx.hint(
            &format!("{key}.stop_consumers.count"),
            format!("{} is out of range", sc.count),
            &format!("1 to {n} (the group's count)"),
        );
        return None;
    }
    Some(FaultAction::StopConsumers { group: g, count: sc.count as u32 })
}
