//! `consumers`: each group's name, topic, subscription and its type,
//! count, acknowledgements, what Danube cannot do, and the windows in
//! which it takes nothing (`start_after`, `pause`); and that key_shared
//! subscriptions get keys. Imports the context, the values, the topics'
//! reference check, the raw and the validated model.

use std::time::Duration;

use super::cx::Cx;
use super::topics::check_ref;
use super::values::{check_count, in_range};
use crate::scenario::model::{AckMode, BrokerKind, ConsumerGroup, KeyPattern, Pause, ProducerGroup, SubType, Topic};
use crate::scenario::raw::RawConsumerGroup;

pub(super) fn validate(
    raw: &[RawConsumerGroup],
    topics: &[Topic],
    kind: Option<BrokerKind>,
    cx: &mut Cx<'_>,
) -> Vec<ConsumerGroup> {
    let mut groups: Vec<ConsumerGroup> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let g = group(cx, &format!("consumers[{i}]"), c, topics, kind, &groups);
        groups.push(g);
    }
    groups
}

/// One group; `earlier` are the groups before it (names and subscriptions are unique).
fn group(
    cx: &mut Cx<'_>,
    key: &str,
    c: &RawConsumerGroup,
    topics: &[Topic],
    kind: Option<BrokerKind>,
    earlier: &[ConsumerGroup],
) -> ConsumerGroup {
    let name = c.name.trim().to_string();
    if name.is_empty() {
        cx.err(&format!("{key}.name"), "must not be empty");
    }
    if earlier.iter().any(|o| o.name == name) {
        cx.err(&format!("{key}.name"), format!("consumer group `{name}` is listed twice"));
    }
    let topic = c.topic.trim().to_string();
    check_ref(cx, topics, &format!("{key}.topic"), &topic);
    let subscription = subscription(cx, key, c, &name, &topic, earlier);
    let sub_type = sub_type(cx, key, c.sub_type.as_deref());
    let count = check_count(cx, &format!("{key}.count"), c.count);
    if sub_type == SubType::Exclusive && count > 1 {
        cx.hint(
            &format!("{key}.count"),
            format!("an exclusive subscription admits one consumer, not {count}"),
            "use `type: failover` for standbys or `shared` to split the load",
        );
    }
    let receiver_queue = c.receiver_queue.map_or(1000, |n| {
        in_range(cx, &format!("{key}.receiver_queue"), n, 1..=1_000_000, "1 to 1000000").unwrap_or(1000)
    });
    let ack = ack(cx, key, c.ack.as_deref(), sub_type);
    if kind == Some(BrokerKind::Danube) {
        not_on_danube(cx, key, c, ack, sub_type, count);
    }
    let ack_every = c
        .ack_every
        .map_or(1, |n| in_range(cx, &format!("{key}.ack_every"), n, 1..=1_000_000, "1 to 1000000").unwrap_or(1));
    let pauses = pauses(cx, key, c);
    ConsumerGroup { name, topic, subscription, sub_type, count, receiver_queue, ack, ack_every, pauses }
}

/// `subscription` (default: the group name), not shared with another group.
fn subscription(
    cx: &mut Cx<'_>,
    key: &str,
    c: &RawConsumerGroup,
    name: &str,
    topic: &str,
    earlier: &[ConsumerGroup],
) -> String {
    let subscription = c.subscription.as_deref().map(str::trim).unwrap_or(name).to_string();
    if subscription.is_empty() {
        cx.err(&format!("{key}.subscription"), "must not be empty");
    }
    if earlier.iter().any(|o| o.topic == topic && o.subscription == subscription) {
        cx.hint(
            &format!("{key}.subscription"),
            format!("subscription `{subscription}` on `{topic}` is used by two consumer groups"),
            "give each group its own subscription, or raise `count` on one group",
        );
    }
    subscription
}

/// `type`: exclusive, shared (default), failover or key_shared.
fn sub_type(cx: &mut Cx<'_>, key: &str, t: Option<&str>) -> SubType {
    let Some(s) = t.map(|s| s.trim().to_ascii_lowercase()) else {
        return SubType::Shared;
    };
    match s.replace('-', "_").as_str() {
        "exclusive" => SubType::Exclusive,
        "shared" => SubType::Shared,
        "failover" => SubType::Failover,
        "key_shared" | "keyshared" => SubType::KeyShared,
        other => {
            cx.hint(
                &format!("{key}.type"),
                format!("unknown subscription type `{other}`"),
                "one of exclusive, shared, failover, key_shared",
            );
            SubType::Shared
        }
    }
}

/// `ack`: individual (default) or cumulative, which shared subscriptions refuse.
fn ack(cx: &mut Cx<'_>, key: &str, ack: Option<&str>, sub_type: SubType) -> AckMode {
    let ack = match ack.map(str::trim) {
        None | Some("individual") => AckMode::Individual,
        Some("cumulative") => AckMode::Cumulative,
        Some(other) => {
            cx.hint(&format!("{key}.ack"), format!("unknown ack mode `{other}`"), "`individual` or `cumulative`");
            AckMode::Individual
        }
    };
    if ack == AckMode::Cumulative && matches!(sub_type, SubType::Shared | SubType::KeyShared) {
        cx.hint(
            &format!("{key}.ack"),
            format!("cumulative acks are not allowed on a {} subscription", sub_type.as_str()),
            "use `ack: individual`, or an exclusive/failover subscription",
        );
    }
    ack
}

/// What the Danube client cannot do (or where it would surprise).
fn not_on_danube(cx: &mut Cx<'_>, key: &str, c: &RawConsumerGroup, ack: AckMode, sub_type: SubType, count: u32) {
    if ack == AckMode::Cumulative {
        cx.hint(
            &format!("{key}.ack"),
            "the Danube client acknowledges each message; it has no cumulative acks",
            "use `ack: individual` (the default)",
        );
    }
    if c.receiver_queue.is_some() {
        cx.hint(
            &format!("{key}.receiver_queue"),
            "applies to the pulsar broker; the Danube client buffers 100 messages per partition",
            "remove `receiver_queue`",
        );
    }
    if sub_type == SubType::Failover && count == 1 {
        cx.hint(
            &format!("{key}.count"),
            "a failover subscription with one consumer has no standby to fail over to",
            "use `count: 2` or more, or `type: exclusive`",
        );
    }
}

/// A key_shared subscription needs keys from every producer on its topic.
pub(super) fn check_key_shared(consumers: &[ConsumerGroup], producers: &[ProducerGroup], cx: &mut Cx<'_>) {
    for (i, c) in consumers.iter().enumerate() {
        if c.sub_type != SubType::KeyShared {
            continue;
        }
        for p in producers.iter().filter(|p| p.topic == c.topic) {
            if p.keys == KeyPattern::None {
                cx.hint(
                    &format!("consumers[{i}].type"),
                    format!("key_shared subscription on `{}`, but producer group `{}` sends no keys", c.topic, p.name),
                    "give the producer group `keys: {round_robin: 100}` (or random/zipf)",
                );
            }
        }
    }
}

/// `start_after` and `pause` of a consumer group as windows in which it
/// takes nothing.
fn pauses(cx: &mut Cx<'_>, key: &str, c: &RawConsumerGroup) -> Vec<Pause> {
    let mut pauses = Vec::new();
    if let Some(d) = c.start_after.as_ref() {
        let until = cx.duration(&format!("{key}.start_after"), Some(d), Duration::ZERO);
        if !until.is_zero() {
            pauses.push(Pause { from: Duration::ZERO, until });
        }
    }
    if let Some(p) = c.pause.as_ref() {
        let at = cx.duration(&format!("{key}.pause.at"), Some(&p.at), Duration::ZERO);
        let length = cx.duration(&format!("{key}.pause.for"), Some(&p.length), Duration::ZERO);
        if length.is_zero() {
            cx.hint(&format!("{key}.pause.for"), "is 0s", "e.g. `pause: {at: 30s, for: 15s}`");
        } else if pauses.first().is_some_and(|s| at < s.until) {
            cx.hint(
                &format!("{key}.pause.at"),
                "falls before `start_after` ends",
                "pause after the consumers started, or drop one of the two",
            );
        } else {
            pauses.push(Pause { from: at, until: at + length });
        }
    }
    pauses
}
