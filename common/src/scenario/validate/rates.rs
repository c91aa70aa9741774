//! A producer group's rate: `rate` (per producer, or `max`), `total_rate`,
//! or a `load` shape (ramp, steps, spike), as a group total in
//! milli-messages per second with its shape. Imports the context, the
//! limits, the raw and the validated model.

use std::time::Duration;

use serde_yaml::Value;

use super::cx::Cx;
use crate::scenario::limits::MAX_RATE_PER_PRODUCER;
use crate::scenario::model::{LoadShape, Step};
use crate::scenario::raw::{RawLoad, RawProducerGroup, RawRamp, RawSpike, RawStep};

/// The group rate and load shape of producer group `p` (`key` names it).
pub(super) fn validate(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, count: u32) -> (u64, LoadShape) {
    let n = f64::from(count.max(1));
    let rate = match &p.rate {
        None => None,
        Some(Value::String(s)) if s.trim() == "max" => Some(None),
        Some(Value::Number(num)) => match num.as_f64() {
            Some(r) => Some(Some(r)),
            None => {
                cx.err(&format!("{key}.rate"), "is not a number");
                return (0, LoadShape::Constant);
            }
        },
        Some(other) => {
            cx.hint(
                &format!("{key}.rate"),
                format!("`{}` is not a rate", serde_yaml::to_string(other).unwrap_or_default().trim()),
                "messages per second per producer (e.g. `100`), or `max` for a closed loop",
            );
            return (0, LoadShape::Constant);
        }
    };
    if !one_rate_given(cx, key, p) {
        return (0, LoadShape::Constant);
    }
    match (rate, p.total_rate, &p.load) {
        (Some(None), _, _) => (0, LoadShape::Max),
        (Some(Some(r)), _, _) => {
            let milli = check_rate(cx, &format!("{key}.rate"), r, 1.0).map(|per| per.saturating_mul(u64::from(count)));
            (milli.unwrap_or(0), LoadShape::Constant)
        }
        (None, Some(r), _) => (check_rate(cx, &format!("{key}.total_rate"), r, n).unwrap_or(0), LoadShape::Constant),
        (None, None, Some(l)) => load(cx, &format!("{key}.load"), l, n),
        (None, None, None) => (0, LoadShape::Constant),
    }
}

/// Exactly one of `rate`, `total_rate` and `load` (reported otherwise).
fn one_rate_given(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup) -> bool {
    let given = [p.rate.is_some(), p.total_rate.is_some(), p.load.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        let k = if p.load.is_some() { "load" } else { "total_rate" };
        cx.hint(
            &format!("{key}.{k}"),
            "give one of `rate`, `total_rate` and `load`",
            "`rate` is per producer, `total_rate` for the whole group, `load` a shape of group rates",
        );
        return false;
    }
    if given == 0 {
        cx.hint(key, "no rate", "add `rate: 100` (messages/s per producer), `total_rate: 1000` or `load: {ramp: ...}`");
        return false;
    }
    true
}

/// Validates a rate; `per_instance_div` converts a total to a per-producer rate
/// for the bounds check. Returns milli-messages per second.
fn check_rate(cx: &mut Cx<'_>, key: &str, rate: f64, per_instance_div: f64) -> Option<u64> {
    if !rate.is_finite() || rate <= 0.0 {
        cx.hint(key, format!("{rate} is not a positive rate"), "messages per second, e.g. 100");
        return None;
    }
    let per = rate / per_instance_div;
    if per > MAX_RATE_PER_PRODUCER {
        cx.hint(
            key,
            format!("{per:.0} msg/s per producer is more than one producer can send"),
            &format!("at most {MAX_RATE_PER_PRODUCER:.0} msg/s per producer; raise `count`"),
        );
        return None;
    }
    let milli = (rate * 1000.0).round();
    if per * 1000.0 < 1.0 {
        cx.hint(
            key,
            format!("{per} msg/s per producer is below the resolution of 0.001 msg/s"),
            "raise the rate or lower `count`",
        );
        return None;
    }
    Some(milli as u64)
}

/// A rate of a load shape: 0 allowed where `zero_ok` (a pause).
fn shape_rate(cx: &mut Cx<'_>, key: &str, r: f64, n: f64, zero_ok: bool) -> u64 {
    if zero_ok && r == 0.0 {
        return 0;
    }
    check_rate(cx, key, r, n).unwrap_or(0)
}

/// `load`: exactly one shape; returns its peak group rate and the shape.
fn load(cx: &mut Cx<'_>, key: &str, l: &RawLoad, n: f64) -> (u64, LoadShape) {
    let given = [l.ramp.is_some(), l.steps.is_some(), l.spike.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        cx.hint(
            key,
            if given == 0 { "no load shape" } else { "more than one load shape" },
            "exactly one of `ramp: {from, to, over}`, `steps: [{rate, for}, ...]`, `spike: {base, peak, every, for}`",
        );
        return (0, LoadShape::Constant);
    }
    match (&l.ramp, &l.steps, &l.spike) {
        (Some(r), _, _) => ramp(cx, &format!("{key}.ramp"), r, n),
        (_, Some(steps), _) => steps_of(cx, &format!("{key}.steps"), steps, n),
        (_, _, Some(sp)) => spike(cx, &format!("{key}.spike"), sp, n),
        (None, None, None) => (0, LoadShape::Constant),
    }
}

fn ramp(cx: &mut Cx<'_>, k: &str, r: &RawRamp, n: f64) -> (u64, LoadShape) {
    let from = shape_rate(cx, &format!("{k}.from"), r.from, n, true);
    let to = shape_rate(cx, &format!("{k}.to"), r.to, n, true);
    let over = cx.duration(&format!("{k}.over"), Some(&r.over), Duration::from_secs(1));
    if over.is_zero() {
        cx.err(&format!("{k}.over"), "must be more than 0s");
    }
    if from == 0 && to == 0 {
        cx.hint(k, "both rates are 0", "e.g. `{from: 1000, to: 100000, over: 60s}`");
    }
    (from.max(to), LoadShape::Ramp { from_milli: from, to_milli: to, over })
}

fn steps_of(cx: &mut Cx<'_>, k: &str, steps: &[RawStep], n: f64) -> (u64, LoadShape) {
    if steps.is_empty() {
        cx.hint(k, "no steps", "e.g. `[{rate: 1000, for: 10s}, {rate: 5000, for: 10s}]`");
    }
    let mut out = Vec::new();
    for (i, st) in steps.iter().enumerate() {
        let rate_milli = shape_rate(cx, &format!("{k}[{i}].rate"), st.rate, n, true);
        let dur = cx.duration(&format!("{k}[{i}].for"), Some(&st.dur), Duration::from_secs(1));
        if dur.is_zero() {
            cx.err(&format!("{k}[{i}].for"), "must be more than 0s");
        }
        out.push(Step { rate_milli, dur });
    }
    let peak = out.iter().map(|s| s.rate_milli).max().unwrap_or(0);
    if !steps.is_empty() && peak == 0 {
        cx.hint(k, "every step's rate is 0", "give at least one step a rate");
    }
    (peak, LoadShape::Steps(out))
}

fn spike(cx: &mut Cx<'_>, k: &str, sp: &RawSpike, n: f64) -> (u64, LoadShape) {
    let base = shape_rate(cx, &format!("{k}.base"), sp.base, n, true);
    let peak = shape_rate(cx, &format!("{k}.peak"), sp.peak, n, false);
    let every = cx.duration(&format!("{k}.every"), Some(&sp.every), Duration::from_secs(1));
    let dur = cx.duration(&format!("{k}.for"), Some(&sp.dur), Duration::from_secs(1));
    if dur.is_zero() || dur >= every {
        cx.hint(&format!("{k}.for"), "must be more than 0s and less than `every`", "e.g. `every: 20s, for: 2s`");
    }
    (base.max(peak), LoadShape::Spike { base_milli: base, peak_milli: peak, every, dur })
}
