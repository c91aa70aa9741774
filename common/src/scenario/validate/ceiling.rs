//! `mode` and `ceiling`: the search for the highest rate within the SLOs,
//! its steps and what makes a step client-bound; and the defaults
//! `coordinator run --ceiling` uses without `mode: ceiling`. Imports the
//! context, the SLO section, the raw and the validated model.

use std::time::Duration;

use super::cx::Cx;
use super::slo;
use crate::scenario::model::{CeilingSpec, ProducerGroup, Slo};
use crate::scenario::raw::{RawCeiling, RawScenario};

/// The search settings under `mode: ceiling`; None for a plain run.
pub(super) fn validate(
    raw: &RawScenario,
    base: &Slo,
    producers: &[ProducerGroup],
    cx: &mut Cx<'_>,
) -> Option<CeilingSpec> {
    let on = match raw.mode.as_deref().map(str::trim) {
        None | Some("run") => false,
        Some("ceiling") => true,
        Some(other) => {
            cx.hint("mode", format!("unknown mode `{other}`"), "`run` (default) or `ceiling`");
            false
        }
    };
    if !on {
        if raw.ceiling.is_some() {
            cx.hint("ceiling", "is set but `mode` is not `ceiling`", "add `mode: ceiling`, or remove `ceiling:`");
        }
        return None;
    }
    if producers.iter().any(ProducerGroup::closed_loop) {
        cx.hint("mode", "a ceiling search scales rates; `rate: max` has none", "give every producer group a rate");
    }
    Some(spec(raw.ceiling.as_ref().unwrap_or(&RawCeiling::default()), base, cx))
}

/// The settings of `--ceiling` on a scenario without `mode: ceiling`.
pub fn default_ceiling(slo: &Slo) -> CeilingSpec {
    CeilingSpec {
        start: 1000.0,
        max: 1_000_000.0,
        step_duration: Duration::from_secs(10),
        precision: 0.05,
        slo: step_slo(slo.clone()),
        max_client_cpu: slo.client_cpu_limit(),
        max_client_lag: slo.client_lag_limit(),
    }
}

/// Each step is judged by `slo` with `min_rate_ratio` (0.98) and `max_loss` (0) filled in.
fn step_slo(mut slo: Slo) -> Slo {
    slo.min_rate_ratio = slo.min_rate_ratio.or(Some(0.98));
    slo.max_loss = slo.max_loss.or(Some(0));
    slo
}

/// `ceiling:` over the defaults; `base` is the scenario's `slo`.
fn spec(c: &RawCeiling, base: &Slo, cx: &mut Cx<'_>) -> CeilingSpec {
    let d = default_ceiling(base);
    let positive = |cx: &mut Cx<'_>, k: &str, v: Option<f64>, default: f64| match v {
        None => default,
        Some(r) if r.is_finite() && r > 0.0 => r,
        Some(r) => {
            cx.hint(k, format!("{r} is not a positive rate"), "messages per second, e.g. 1000");
            default
        }
    };
    let start = positive(cx, "ceiling.start", c.start, d.start);
    let max = positive(cx, "ceiling.max", c.max, d.max);
    if max < start {
        cx.hint("ceiling.max", format!("{max} is below `start` ({start})"), "max is the highest total rate tried");
    }
    let step_duration = cx.duration("ceiling.step_duration", c.step_duration.as_ref(), d.step_duration);
    if step_duration < Duration::from_secs(1) {
        cx.hint("ceiling.step_duration", "is shorter than 1s", "each step needs a few report intervals; e.g. 10s");
    }
    let precision = match c.precision {
        None => d.precision,
        Some(p) if p.is_finite() && p > 0.0 && p < 1.0 => p,
        Some(p) => {
            cx.hint("ceiling.precision", format!("{p} is out of range"), "a fraction such as 0.05");
            d.precision
        }
    };
    let step = match &c.slo {
        Some(raw) => step_slo(slo::validate("ceiling.slo", Some(raw), cx)),
        None => d.slo,
    };
    let max_client_cpu = match c.max_client_cpu {
        None => d.max_client_cpu,
        Some(v) if v.is_finite() && v > 0.0 && v <= 1.0 => v,
        Some(v) => {
            cx.hint("ceiling.max_client_cpu", format!("{v} is out of range"), "a share of the agent's CPUs, e.g. 0.9");
            d.max_client_cpu
        }
    };
    let max_client_lag = cx.duration("ceiling.max_client_lag", c.max_client_lag.as_ref(), d.max_client_lag);
    CeilingSpec { start, max, step_duration, precision, slo: step, max_client_cpu, max_client_lag }
}
