//! How the run is carried out: `report_interval`, `placement` and
//! `on_agent_loss`. Imports the context, the units and the validated model.

use std::time::Duration;

use super::cx::Cx;
use crate::scenario::model::{OnAgentLoss, Placement};
use crate::scenario::raw::Dur;
use crate::units::format_duration;

/// `report_interval`: 100ms to 1h (default 1s).
pub(super) fn report_interval(cx: &mut Cx<'_>, raw: Option<&Dur>) -> Duration {
    let report_interval = cx.duration("report_interval", raw, Duration::from_secs(1));
    if report_interval < Duration::from_millis(100) || report_interval > Duration::from_secs(3600) {
        cx.hint(
            "report_interval",
            format!("{} is out of range", format_duration(report_interval)),
            "100ms to 1h; 1s is typical",
        );
    }
    report_interval
}

/// `placement`: spread (default) or split.
pub(super) fn placement(cx: &mut Cx<'_>, raw: Option<&str>) -> Placement {
    match raw.map(str::trim) {
        None | Some("spread") => Placement::Spread,
        Some("split") => Placement::Split,
        Some(other) => {
            cx.hint("placement", format!("unknown placement `{other}`"), "`spread` or `split`");
            Placement::Spread
        }
    }
}

/// `on_agent_loss`: abort (default) or continue.
pub(super) fn on_agent_loss(cx: &mut Cx<'_>, raw: Option<&str>) -> OnAgentLoss {
    match raw.map(str::trim) {
        None | Some("abort") => OnAgentLoss::Abort,
        Some("continue") => OnAgentLoss::Continue,
        Some(other) => {
            cx.hint("on_agent_loss", format!("unknown policy `{other}`"), "`abort` (default) or `continue`");
            OnAgentLoss::Abort
        }
    }
}
