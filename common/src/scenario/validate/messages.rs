//! What a producer group's messages carry and how they are sent: size
//! (fixed or a distribution), keys, payload bytes (the topic's schema may
//! decide them), batching and compression. Imports the context, the
//! values, the limits, the units, the raw and the validated model.

use std::time::Duration;

use serde_yaml::Value;

use super::cx::Cx;
use super::values::{in_range, kind_of};
use crate::scenario::limits::MAX_MESSAGE_BYTES;
use crate::scenario::model::{Batching, Compression, KeyPattern, PayloadKind, SizeDist, TopicSchema};
use crate::scenario::raw::{RawBatching, RawProducerGroup};
use crate::units::parse_bytes;

/// `message_size` (default 1 KiB); a topic with schema int64 makes it 8 bytes.
pub(super) fn size(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, schema: &TopicSchema) -> SizeDist {
    let size = match &p.message_size {
        None => SizeDist::Fixed(1024),
        Some(v) => size_dist(cx, &format!("{key}.message_size"), v).unwrap_or(SizeDist::Fixed(0)),
    };
    if *schema != TopicSchema::Int64 {
        return size;
    }
    if p.message_size.is_some() && size != SizeDist::Fixed(8) {
        cx.hint(
            &format!("{key}.message_size"),
            format!("topic `{}` has schema int64: every payload is 8 bytes", p.topic.trim()),
            "remove `message_size` (or give 8)",
        );
    }
    SizeDist::Fixed(8)
}

/// `payload`: random (default), text (the default on a string or json
/// topic, where random is refused) or `file:PATH`.
pub(super) fn payload(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, schema: &TopicSchema) -> PayloadKind {
    let text_schema = matches!(schema, TopicSchema::String | TopicSchema::Json(_));
    if text_schema && p.payload.as_deref().map(str::trim) == Some("random") {
        cx.hint(
            &format!("{key}.payload"),
            format!("topic `{}` has a string or json schema: payloads must be text", p.topic.trim()),
            "use `payload: text` (the default for such topics) or `file:PATH`",
        );
    }
    match p.payload.as_deref() {
        None if text_schema => PayloadKind::Text,
        None | Some("random") => PayloadKind::Random,
        Some("text") => PayloadKind::Text,
        Some(f) if f.starts_with("file:") && f.len() > 5 => {
            if p.message_size.is_some() {
                cx.hint(
                    &format!("{key}.message_size"),
                    "a payload file sets the message size",
                    "drop `message_size`, or use `payload: random|text`",
                );
            }
            PayloadKind::File(f[5..].trim().to_string())
        }
        Some(other) => {
            cx.hint(&format!("{key}.payload"), format!("unknown payload `{other}`"), "`random`, `text` or `file:PATH` (read on each agent's host; every message carries the whole file, as OpenMessaging Benchmark's payloadFile)");
            PayloadKind::Random
        }
    }
}

/// `batching` (at `bk`): message and byte limits and the longest wait.
pub(super) fn batching(cx: &mut Cx<'_>, bk: &str, b: &RawBatching) -> Batching {
    let max_messages = b
        .max_messages
        .map_or(1000, |n| in_range(cx, &format!("{bk}.max_messages"), n, 1..=1_000_000, "1 to 1000000").unwrap_or(1));
    let max_delay = cx.duration(&format!("{bk}.max_delay"), b.max_delay.as_ref(), Duration::from_millis(10));
    if max_delay.is_zero() {
        cx.hint(
            &format!("{bk}.max_delay"),
            "a max delay of 0 means batches never wait to fill",
            "use e.g. 10ms, or remove `batching` to send unbatched",
        );
    }
    let max_bytes = b.max_bytes.as_ref().and_then(|v| scalar_bytes(cx, &format!("{bk}.max_bytes"), v));
    Batching { max_messages, max_delay, max_bytes }
}

/// `compression` (at `key`): none (default), lz4, zlib, zstd or snappy.
pub(super) fn compression(cx: &mut Cx<'_>, key: &str, c: Option<&str>) -> Compression {
    let Some(c) = c.map(|c| c.trim().to_ascii_lowercase()) else {
        return Compression::None;
    };
    match c.as_str() {
        "none" => Compression::None,
        "lz4" => Compression::Lz4,
        "zlib" => Compression::Zlib,
        "zstd" => Compression::Zstd,
        "snappy" => Compression::Snappy,
        other => {
            cx.hint(key, format!("unknown compression `{other}`"), "none, lz4, zlib, zstd or snappy");
            Compression::None
        }
    }
}

/// A byte size: a whole number or a string with a unit, within the message size limit.
fn scalar_bytes(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            None => {
                cx.hint(key, format!("{n} is not a whole, non-negative number of bytes"), "e.g. 1024 or \"1KiB\"");
                return None;
            }
        },
        Value::String(s) => match parse_bytes(s) {
            Ok(n) => n,
            Err(e) => {
                cx.err(key, e.to_string());
                return None;
            }
        },
        other => {
            cx.hint(key, format!("expected a size, found {}", kind_of(other)), "e.g. 1024 or \"1KiB\"");
            return None;
        }
    };
    if n > MAX_MESSAGE_BYTES {
        cx.hint(
            key,
            format!("{n} bytes is more than the {MAX_MESSAGE_BYTES}-byte limit"),
            "brokers cap messages at a few MiB",
        );
        return None;
    }
    Some(n)
}

/// A fixed size or `{uniform: {min, max}}` / `{normal: {mean, stddev}}`.
fn size_dist(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<SizeDist> {
    let Value::Mapping(m) = v else {
        return scalar_bytes(cx, key, v).map(SizeDist::Fixed);
    };
    let hint = "`1024`, `\"1KiB\"`, `{uniform: {min: 100, max: 2000}}` or `{normal: {mean: 1024, stddev: 200}}`";
    if m.len() != 1 {
        cx.hint(key, "expected one distribution", hint);
        return None;
    }
    let (k, inner) = m.iter().next()?;
    let field = |name: &str| inner.get(name).cloned();
    match k.as_str() {
        Some("uniform") => {
            let (Some(min), Some(max)) = (field("min"), field("max")) else {
                cx.hint(&format!("{key}.uniform"), "needs `min` and `max`", hint);
                return None;
            };
            if inner.as_mapping().map(|m| m.len()) != Some(2) {
                cx.hint(&format!("{key}.uniform"), "unexpected keys", "only `min` and `max`");
            }
            let min = scalar_bytes(cx, &format!("{key}.uniform.min"), &min)?;
            let max = scalar_bytes(cx, &format!("{key}.uniform.max"), &max)?;
            if min > max {
                cx.err(&format!("{key}.uniform.min"), format!("min {min} is above max {max}"));
                return None;
            }
            Some(SizeDist::Uniform { min, max })
        }
        Some("normal") => {
            let (Some(mean), Some(sd)) = (field("mean"), field("stddev")) else {
                cx.hint(&format!("{key}.normal"), "needs `mean` and `stddev`", hint);
                return None;
            };
            if inner.as_mapping().map(|m| m.len()) != Some(2) {
                cx.hint(&format!("{key}.normal"), "unexpected keys", "only `mean` and `stddev`");
            }
            let mean = scalar_bytes(cx, &format!("{key}.normal.mean"), &mean)?;
            let stddev = scalar_bytes(cx, &format!("{key}.normal.stddev"), &sd)?;
            if mean.saturating_add(stddev.saturating_mul(4)) > MAX_MESSAGE_BYTES {
                cx.err(key, "mean + 4 stddev is above the message size limit");
                return None;
            }
            Some(SizeDist::Normal { mean, stddev })
        }
        _ => {
            cx.hint(
                key,
                format!("unknown size distribution `{}`", serde_yaml::to_string(k).unwrap_or_default().trim()),
                hint,
            );
            None
        }
    }
}

/// `keys`: `none`, `{round_robin: N}`, `{random: N}` or `{zipf: {keys: N, exponent: E}}`.
pub(super) fn keys(cx: &mut Cx<'_>, key: &str, v: &Value) -> Option<KeyPattern> {
    let hint = "`none`, `{round_robin: 100}`, `{random: 100}` or `{zipf: {keys: 100, exponent: 1.1}}`";
    let count = |cx: &mut Cx<'_>, k: &str, v: Option<&Value>| -> Option<u64> {
        match v.and_then(Value::as_u64) {
            Some(n) if (1..=100_000_000).contains(&n) => Some(n),
            _ => {
                cx.hint(k, "expected a number of keys from 1 to 100000000", hint);
                None
            }
        }
    };
    match v {
        Value::String(s) if s == "none" => Some(KeyPattern::None),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next()?;
            match k.as_str() {
                Some("round_robin") => {
                    count(cx, &format!("{key}.round_robin"), Some(inner)).map(|keys| KeyPattern::RoundRobin { keys })
                }
                Some("random") => {
                    count(cx, &format!("{key}.random"), Some(inner)).map(|keys| KeyPattern::Random { keys })
                }
                Some("zipf") => {
                    let keys = count(cx, &format!("{key}.zipf.keys"), inner.get("keys"))?;
                    let exponent = inner.get("exponent").and_then(Value::as_f64).unwrap_or(1.0);
                    if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) {
                        cx.hint(
                            &format!("{key}.zipf.exponent"),
                            format!("{exponent} is out of range"),
                            "above 0 and at most 10; 1.0-1.2 is typical",
                        );
                        return None;
                    }
                    Some(KeyPattern::Zipf { keys, exponent })
                }
                _ => {
                    cx.hint(key, "unknown key pattern", hint);
                    None
                }
            }
        }
        _ => {
            cx.hint(key, "unknown key pattern", hint);
            None
        }
    }
}
