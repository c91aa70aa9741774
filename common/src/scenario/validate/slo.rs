//! `slo` (and `ceiling.slo`): the latency, loss, duplicate, rate, send
//! error and consumer spread limits a run is judged by. Loss and send
//! errors are limited to 0 unless said otherwise. Besides the named keys, a
//! latency limit on any percentile is written `pDIGITS_e2e` /
//! `pDIGITS_publish` (see `crate::percentile` for the digits). Imports the
//! context, the raw and the validated model, and the percentile.

use super::cx::Cx;
use crate::percentile::Percentile;
use crate::scenario::model::{LatencyLimit, Slo};
use crate::scenario::raw::RawSlo;

/// The SLO at `prefix`; with none written, only loss and send errors are limited (to 0).
pub(super) fn validate(prefix: &str, raw: Option<&RawSlo>, cx: &mut Cx<'_>) -> Slo {
    let Some(s) = raw else {
        return Slo { max_loss: Some(0), max_send_errors: Some(0), ..Slo::default() };
    };
    let mut number = |key: &str, v: Option<f64>, ok: fn(f64) -> bool, hint: &str| {
        v.filter(|v| {
            let good = v.is_finite() && ok(*v);
            if !good {
                cx.hint(&format!("{prefix}.{key}"), format!("{v} is out of range"), hint);
            }
            good
        })
    };
    let min_rate_ratio = number("min_rate_ratio", s.min_rate_ratio, |r| r > 0.0 && r <= 1.5, "a ratio such as 0.98");
    let max_consumer_imbalance =
        number("max_consumer_imbalance", s.max_consumer_imbalance, |p| p >= 0.0, "a percentage such as 20");
    let max_client_cpu =
        number("max_client_cpu", s.max_client_cpu, |v| v > 0.0 && v <= 1.0, "a share of the agent's CPUs, e.g. 0.9");
    Slo {
        p50_e2e: cx.opt_duration(&format!("{prefix}.p50_e2e"), s.p50_e2e.as_ref()),
        p90_e2e: cx.opt_duration(&format!("{prefix}.p90_e2e"), s.p90_e2e.as_ref()),
        p99_e2e: cx.opt_duration(&format!("{prefix}.p99_e2e"), s.p99_e2e.as_ref()),
        p999_e2e: cx.opt_duration(&format!("{prefix}.p999_e2e"), s.p999_e2e.as_ref()),
        max_e2e: cx.opt_duration(&format!("{prefix}.max_e2e"), s.max_e2e.as_ref()),
        p50_publish: cx.opt_duration(&format!("{prefix}.p50_publish"), s.p50_publish.as_ref()),
        p99_publish: cx.opt_duration(&format!("{prefix}.p99_publish"), s.p99_publish.as_ref()),
        p999_publish: cx.opt_duration(&format!("{prefix}.p999_publish"), s.p999_publish.as_ref()),
        // Loss is what this tool exists to catch: zero unless said otherwise.
        max_loss: Some(s.max_loss.unwrap_or(0)),
        max_duplicates: s.max_duplicates,
        min_rate_ratio,
        // So is a publish that failed or timed out.
        max_send_errors: Some(s.max_send_errors.unwrap_or(0)),
        other: other_limits(prefix, s, cx),
        max_consumer_imbalance,
        max_key_overlaps: s.max_key_overlaps,
        p50_ack: cx.opt_duration(&format!("{prefix}.p50_ack"), s.p50_ack.as_ref()),
        p99_ack: cx.opt_duration(&format!("{prefix}.p99_ack"), s.p99_ack.as_ref()),
        fail_client_bound: s.allow_client_bound == Some(false),
        max_client_cpu,
        max_client_lag: cx.opt_duration(&format!("{prefix}.max_client_lag"), s.max_client_lag.as_ref()),
    }
}

/// The keys serde did not know: latency limits in the general form
/// (`p95_e2e`), or mistakes, reported at their key.
fn other_limits(prefix: &str, s: &RawSlo, cx: &mut Cx<'_>) -> Vec<LatencyLimit> {
    let mut out = Vec::new();
    for (key, v) in &s.other {
        let path = format!("{prefix}.{key}");
        let parsed = key
            .strip_prefix('p')
            .and_then(|rest| rest.rsplit_once('_'))
            .and_then(|(digits, of)| matches!(of, "e2e" | "publish").then_some((digits, of == "publish")));
        let Some((digits, publish)) = parsed else {
            cx.hint(
                &path,
                format!("unknown key `{key}`"),
                "a latency limit is `pDIGITS_e2e` or `pDIGITS_publish` (p95_e2e, p9999_publish for 99.99); \
                 other keys: max_e2e, max_loss, max_duplicates, min_rate_ratio, max_send_errors, max_consumer_imbalance, max_key_overlaps, p50_ack, p99_ack, allow_client_bound, max_client_cpu, max_client_lag",
            );
            continue;
        };
        let percentile = match Percentile::from_key_digits(digits) {
            Ok(p) if p.key() == format!("p{digits}") => p,
            Ok(p) => {
                let want = format!("{}_{}", p.key(), if publish { "publish" } else { "e2e" });
                cx.hint(&path, format!("`{key}` reads as {}", p.label()), &format!("write it `{want}`"));
                continue;
            }
            Err(e) => {
                cx.hint(&path, e, "the digits read as DD.ddd: p95 = 95, p999 = 99.9, p9999 = 99.99, p055 = 5.5");
                continue;
            }
        };
        if let Some(limit) = cx.opt_duration(&path, Some(v)) {
            out.push(LatencyLimit { key: key.clone(), percentile, publish, limit });
        }
    }
    out
}
