//! `producers`: each group's name, topic, count, rate (`rates.rs`), what
//! its messages carry (`messages.rs`), its sending limits and the options
//! only some brokers have. Imports the context, the values, the topics'
//! reference check, the rates, the messages, the raw and the validated
//! model.

use std::time::Duration;

use super::cx::Cx;
use super::messages;
use super::rates;
use super::topics::check_ref;
use super::values::{check_count, in_range};
use crate::scenario::model::{Arrivals, BrokerKind, Compression, KeyPattern, LoadShape, ProducerGroup, Topic};
use crate::scenario::raw::RawProducerGroup;

pub(super) fn validate(
    raw: &[RawProducerGroup],
    topics: &[Topic],
    kind: Option<BrokerKind>,
    cx: &mut Cx<'_>,
) -> Vec<ProducerGroup> {
    let mut groups: Vec<ProducerGroup> = Vec::new();
    if raw.is_empty() {
        cx.hint("producers", "no producer groups", "a run needs at least one producer group");
    }
    for (i, p) in raw.iter().enumerate() {
        let g = group(cx, &format!("producers[{i}]"), p, topics, kind, &groups);
        groups.push(g);
    }
    groups
}

/// One group; `earlier` are the groups before it (names are unique).
fn group(
    cx: &mut Cx<'_>,
    key: &str,
    p: &RawProducerGroup,
    topics: &[Topic],
    kind: Option<BrokerKind>,
    earlier: &[ProducerGroup],
) -> ProducerGroup {
    let name = p.name.trim().to_string();
    if name.is_empty() {
        cx.err(&format!("{key}.name"), "must not be empty");
    }
    if earlier.iter().any(|o| o.name == name) {
        cx.err(&format!("{key}.name"), format!("producer group `{name}` is listed twice"));
    }
    check_ref(cx, topics, &format!("{key}.topic"), &p.topic);
    let count = check_count(cx, &format!("{key}.count"), p.count);
    let (total_rate_milli, load) = rates::validate(cx, key, p, count);
    let arrivals = arrivals(cx, key, p, &load);
    let schema = topics.iter().find(|t| t.name == p.topic.trim()).map(|t| t.schema.clone()).unwrap_or_default();
    let message_size = messages::size(cx, key, p, &schema);
    let keys = match &p.keys {
        None => KeyPattern::None,
        Some(v) => messages::keys(cx, &format!("{key}.keys"), v).unwrap_or(KeyPattern::None),
    };
    let max_in_flight = p
        .max_in_flight
        .map_or(1000, |n| in_range(cx, &format!("{key}.max_in_flight"), n, 1..=1_000_000, "1 to 1000000").unwrap_or(1));
    let send_timeout = cx.duration(&format!("{key}.send_timeout"), p.send_timeout.as_ref(), Duration::from_secs(30));
    if send_timeout.is_zero() {
        cx.err(&format!("{key}.send_timeout"), "must be more than 0s");
    }
    let payload = messages::payload(cx, key, p, &schema);
    let batching = p.batching.as_ref().map(|b| messages::batching(cx, &format!("{key}.batching"), b));
    let compression = messages::compression(cx, &format!("{key}.compression"), p.compression.as_deref());
    if let Some(kind) = kind.filter(|k| *k != BrokerKind::Pulsar) {
        pulsar_only(cx, key, p, compression, kind);
    }
    let clients = clients(cx, key, p, kind);
    ProducerGroup {
        name,
        topic: p.topic.trim().to_string(),
        count,
        total_rate_milli,
        message_size,
        keys,
        max_in_flight,
        send_timeout,
        payload,
        batching,
        compression,
        load,
        arrivals,
        clients,
    }
}

/// `arrivals`: `uniform` (default) or `poisson`; nothing to space out for `rate: max`.
fn arrivals(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, load: &LoadShape) -> Arrivals {
    let arrivals = match p.arrivals.as_deref().map(str::trim) {
        None | Some("uniform") => Arrivals::Uniform,
        Some("poisson") => Arrivals::Poisson,
        Some(other) => {
            cx.hint(&format!("{key}.arrivals"), format!("unknown arrivals `{other}`"), "`uniform` or `poisson`");
            Arrivals::Uniform
        }
    };
    if *load == LoadShape::Max && p.arrivals.is_some() {
        cx.hint(
            &format!("{key}.arrivals"),
            "`rate: max` has no schedule to space out",
            "remove `arrivals`, or give a rate",
        );
    }
    arrivals
}

/// Batching and compression on a broker other than Pulsar.
fn pulsar_only(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, compression: Compression, kind: BrokerKind) {
    if p.batching.is_some() {
        cx.err(&format!("{key}.batching"), format!("applies to the pulsar broker, not {}", kind.as_str()));
    }
    if compression != Compression::None {
        cx.err(&format!("{key}.compression"), format!("applies to the pulsar broker, not {}", kind.as_str()));
    }
}

/// `clients`: Danube only, 1 to 64 (default 1).
fn clients(cx: &mut Cx<'_>, key: &str, p: &RawProducerGroup, kind: Option<BrokerKind>) -> u32 {
    let clients = p.clients.map_or(1, |n| in_range(cx, &format!("{key}.clients"), n, 1..=64, "1 to 64").unwrap_or(1));
    if p.clients.is_some() && kind.is_some_and(|k| k != BrokerKind::Danube) {
        cx.err(&format!("{key}.clients"), "applies to the danube broker only");
    }
    clients
}
