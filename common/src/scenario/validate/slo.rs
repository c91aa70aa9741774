//! `slo` (and `ceiling.slo`): the latency, loss, duplicate, rate and send
//! error limits a run is judged by. Loss and send errors are limited to 0
//! unless said otherwise. Imports the context, the raw and the validated
//! model.

use super::cx::Cx;
use crate::scenario::model::Slo;
use crate::scenario::raw::RawSlo;

/// The SLO at `prefix`; with none written, only loss and send errors are limited (to 0).
pub(super) fn validate(prefix: &str, raw: Option<&RawSlo>, cx: &mut Cx<'_>) -> Slo {
    let Some(s) = raw else {
        return Slo { max_loss: Some(0), max_send_errors: Some(0), ..Slo::default() };
    };
    let min_rate_ratio = s.min_rate_ratio.filter(|r| {
        let ok = r.is_finite() && *r > 0.0 && *r <= 1.5;
        if !ok {
            cx.hint(&format!("{prefix}.min_rate_ratio"), format!("{r} is out of range"), "a ratio such as 0.98");
        }
        ok
    });
    let max_client_cpu = s.max_client_cpu.filter(|v| {
        let ok = v.is_finite() && *v > 0.0 && *v <= 1.0;
        if !ok {
            cx.hint(
                &format!("{prefix}.max_client_cpu"),
                format!("{v} is out of range"),
                "a share of the agent's CPUs, e.g. 0.9",
            );
        }
        ok
    });
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
        p50_ack: cx.opt_duration(&format!("{prefix}.p50_ack"), s.p50_ack.as_ref()),
        p99_ack: cx.opt_duration(&format!("{prefix}.p99_ack"), s.p99_ack.as_ref()),
        fail_client_bound: s.allow_client_bound == Some(false),
        max_client_cpu,
        max_client_lag: cx.opt_duration(&format!("{prefix}.max_client_lag"), s.max_client_lag.as_ref()),
    }
}
