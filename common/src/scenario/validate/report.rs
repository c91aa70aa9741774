//! `report`: what the reports show. `report.percentiles`: each above 0 and
//! below 100 with at most three decimals, at most
//! [`percentile::MAX_COUNT`], no repeats; sorted, then joined by every
//! percentile an SLO names (so a limit is always reported). Imports the
//! context, the raw and the validated model, and the percentile.

use super::cx::Cx;
use crate::percentile::{self, Percentile};
use crate::scenario::model::{ReportSettings, Slo};
use crate::scenario::raw::RawReport;

/// The report settings; `slos`: the scenario's and the ceiling steps'.
pub(super) fn validate(raw: Option<&RawReport>, slos: &[&Slo], cx: &mut Cx<'_>) -> ReportSettings {
    let mut list = match raw.and_then(|r| r.percentiles.as_deref()) {
        None => percentile::DEFAULT.to_vec(),
        Some(written) => percentiles(written, cx),
    };
    list.extend(slos.iter().flat_map(|s| s.percentiles()));
    list.sort_unstable();
    list.dedup();
    ReportSettings { percentiles: list }
}

/// The list as written, checked; the default when it is empty.
fn percentiles(written: &[f64], cx: &mut Cx<'_>) -> Vec<Percentile> {
    const KEY: &str = "report.percentiles";
    const HINT: &str = "percent, e.g. [50, 95, 99, 99.9, 99.99]";
    if written.is_empty() {
        cx.hint(KEY, "is empty", HINT);
        return percentile::DEFAULT.to_vec();
    }
    if written.len() > percentile::MAX_COUNT {
        let msg = format!("{} percentiles; at most {}", written.len(), percentile::MAX_COUNT);
        cx.hint(KEY, msg, "each one is a column and a line per group; keep the ones you judge by");
    }
    let mut out: Vec<Percentile> = Vec::new();
    for (i, p) in written.iter().enumerate() {
        match Percentile::new(*p) {
            Ok(p) if out.contains(&p) => {
                cx.hint(&format!("{KEY}[{i}]"), format!("{} is listed twice", p.percent()), HINT)
            }
            Ok(p) => out.push(p),
            Err(e) => cx.hint(&format!("{KEY}[{i}]"), e, HINT),
        }
    }
    out
}
