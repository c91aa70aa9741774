//! `topics`: names (by the broker's rules), partitions, Danube's schema
//! and dispatch options; and the check that a group names a listed topic.
//! Imports the context, the values, the names, the raw and the validated
//! model.

use super::cx::Cx;
use super::values::in_range;
use crate::scenario::model::{BrokerKind, Topic, TopicSchema, DEFAULT_JSON_SCHEMA};
use crate::scenario::names::{danube_topic_ok, pulsar_topic_ok};
use crate::scenario::raw::RawTopic;

pub(super) fn validate(raw: &[RawTopic], kind: Option<BrokerKind>, cx: &mut Cx<'_>) -> Vec<Topic> {
    let mut topics: Vec<Topic> = Vec::new();
    if raw.is_empty() {
        cx.hint("topics", "no topics", "list at least one topic: `topics: [{name: orders}]`");
    }
    for (i, t) in raw.iter().enumerate() {
        let key = format!("topics[{i}]");
        let name = t.name.trim();
        check_name(cx, &key, name, kind);
        if topics.iter().any(|o| o.name == name) {
            cx.err(&format!("{key}.name"), format!("topic `{name}` is listed twice"));
        }
        let schema = schema(cx, &key, t, kind);
        let partitions = t.partitions.map_or(0, |p| {
            in_range(cx, &format!("{key}.partitions"), p, 0..=10_000, "0 (non-partitioned) to 10000").unwrap_or(0)
        });
        topics.push(Topic {
            name: name.to_string(),
            partitions,
            schema,
            reliable_dispatch: t.reliable_dispatch.unwrap_or(false),
        });
    }
    topics
}

/// Not empty, not too long, no white space; and the broker's own rules.
fn check_name(cx: &mut Cx<'_>, key: &str, name: &str, kind: Option<BrokerKind>) {
    if name.is_empty() {
        cx.err(&format!("{key}.name"), "must not be empty");
    } else if name.len() > 255 {
        cx.err(&format!("{key}.name"), "is longer than 255 characters");
    } else if name.chars().any(char::is_whitespace) {
        cx.err(&format!("{key}.name"), format!("`{name}` contains white space"));
    }
    if kind == Some(BrokerKind::Pulsar) {
        if let Err(why) = pulsar_topic_ok(name) {
            cx.hint(
                &format!("{key}.name"),
                format!("`{name}` is not a valid Pulsar topic: {why}"),
                "e.g. `orders` or `persistent://public/default/orders`",
            );
        }
    }
    if kind == Some(BrokerKind::Danube) {
        if let Err(why) = danube_topic_ok(name) {
            cx.hint(
                &format!("{key}.name"),
                format!("`{name}` is not a valid Danube topic: {why}"),
                "e.g. `orders` (in namespace default) or `/default/orders`",
            );
        }
    }
}

/// A topic's Danube options: `schema`, `json_schema`, `reliable_dispatch`
/// (errors for other brokers).
fn schema(cx: &mut Cx<'_>, key: &str, t: &RawTopic, kind: Option<BrokerKind>) -> TopicSchema {
    if kind.is_some_and(|k| k != BrokerKind::Danube) {
        for (k, set) in [
            ("schema", t.schema.is_some()),
            ("json_schema", t.json_schema.is_some()),
            ("reliable_dispatch", t.reliable_dispatch.is_some()),
        ] {
            if set {
                cx.err(&format!("{key}.{k}"), "applies to the danube broker only");
            }
        }
        return TopicSchema::None;
    }
    let schema = match t.schema.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => TopicSchema::None,
        Some(v) => match v.as_str() {
            "bytes" => TopicSchema::Bytes,
            "string" => TopicSchema::String,
            "int64" | "number" => TopicSchema::Int64,
            "json" | "json_schema" => {
                TopicSchema::Json(t.json_schema.clone().unwrap_or_else(|| DEFAULT_JSON_SCHEMA.to_string()))
            }
            other => {
                cx.hint(&format!("{key}.schema"), format!("unknown schema `{other}`"), "bytes, string, int64 or json");
                TopicSchema::None
            }
        },
    };
    match (&schema, &t.json_schema) {
        (TopicSchema::Json(text), Some(_)) => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                cx.hint(
                    &format!("{key}.json_schema"),
                    format!("is not JSON: {e}"),
                    "a JSON Schema document, e.g. `{\"type\": \"object\"}`",
                );
            }
        }
        (_, Some(_)) => {
            cx.hint(&format!("{key}.json_schema"), "applies with `schema: json` only", "add `schema: json`");
        }
        _ => {}
    }
    schema
}

/// `topic` (at `key`) must be one of `topics`.
pub(super) fn check_ref(cx: &mut Cx<'_>, topics: &[Topic], key: &str, topic: &str) {
    if !topics.iter().any(|t| t.name == topic.trim()) {
        let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        cx.hint(key, format!("topic `{topic}` is not in `topics`"), &format!("known topics: {}", known.join(", ")));
    }
}
