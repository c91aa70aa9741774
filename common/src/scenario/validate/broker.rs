//! `broker`: the kind, its URLs, timeouts, the memory broker's knobs (and
//! that other brokers get none of them), auth and TLS. Imports the
//! context, the raw and the validated model.

use std::time::Duration;

use super::cx::Cx;
use crate::scenario::model::{Auth, Broker, BrokerKind, Tls};
use crate::scenario::raw::{RawAuth, RawBroker};

pub(super) fn validate(b: &RawBroker, cx: &mut Cx<'_>) -> Option<Broker> {
    let kind = kind(cx, &b.kind)?;
    let url = b.url.as_ref().map(|u| u.trim().to_string());
    check_url(cx, kind, url.as_deref());
    let admin_url = b.admin_url.as_ref().map(|u| u.trim().trim_end_matches('/').to_string());
    check_admin_url(cx, kind, admin_url.as_deref());
    if b.tcp_nodelay.is_some() && kind != BrokerKind::Pulsar {
        cx.err(
            "broker.tcp_nodelay",
            "applies to the pulsar broker only (the other clients set TCP_NODELAY themselves)",
        );
    }
    let connect_timeout = cx.duration("broker.connect_timeout", b.connect_timeout.as_ref(), Duration::from_secs(10));
    if connect_timeout.is_zero() {
        cx.err("broker.connect_timeout", "must be more than 0s");
    }
    let latency = cx.duration("broker.latency", b.latency.as_ref(), Duration::ZERO);
    let ack_latency = cx.duration("broker.ack_latency", b.ack_latency.as_ref(), Duration::ZERO);
    if kind != BrokerKind::Memory {
        memory_only(cx, b);
    }
    let auth = b.auth.as_ref().and_then(|a| auth(cx, a));
    let tls = b.tls.as_ref().map(|t| Tls {
        ca_file: t.ca_file.clone(),
        allow_insecure: t.allow_insecure.unwrap_or(false),
        verify_hostname: t.verify_hostname.unwrap_or(true),
    });
    if kind == BrokerKind::Memory && (b.auth.is_some() || b.tls.is_some()) {
        cx.err(if b.auth.is_some() { "broker.auth" } else { "broker.tls" }, "does not apply to the memory broker");
    }
    if latency > Duration::from_secs(60) {
        cx.err("broker.latency", "is more than 60s");
    }
    if ack_latency > Duration::from_secs(60) {
        cx.err("broker.ack_latency", "is more than 60s");
    }
    if let Some(c) = b.capacity_msgs_per_s {
        if !c.is_finite() || c <= 0.0 {
            cx.hint(
                "broker.capacity_msgs_per_s",
                format!("{c} is not a positive rate"),
                "messages per second, e.g. 50000",
            );
        }
    }
    Some(Broker {
        kind,
        url,
        admin_url,
        tcp_nodelay: b.tcp_nodelay.unwrap_or(true),
        connect_timeout,
        capacity_msgs_per_s: b.capacity_msgs_per_s,
        drop_every: b.drop_every.unwrap_or(0),
        duplicate_every: b.duplicate_every.unwrap_or(0),
        misroute_every: b.misroute_every.unwrap_or(0),
        stall_after: b.stall_after.unwrap_or(0),
        max_backlog: b.max_backlog.unwrap_or(0),
        auth,
        tls,
        latency,
        ack_latency,
    })
}

fn kind(cx: &mut Cx<'_>, kind: &str) -> Option<BrokerKind> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "memory" => Some(BrokerKind::Memory),
        "pulsar" => Some(BrokerKind::Pulsar),
        "danube" => Some(BrokerKind::Danube),
        other => {
            cx.hint("broker.kind", format!("unknown broker kind `{other}`"), "one of memory, pulsar, danube");
            None
        }
    }
}

/// Every broker but memory needs a service URL of its own scheme.
fn check_url(cx: &mut Cx<'_>, kind: BrokerKind, url: Option<&str>) {
    match (kind, url) {
        (BrokerKind::Memory, _) => {}
        (_, None) | (_, Some("")) => {
            let eg = if kind == BrokerKind::Pulsar { "pulsar://127.0.0.1:6650" } else { "http://127.0.0.1:6650" };
            cx.hint(
                "broker.url",
                format!("a {} broker needs a url", kind.as_str()),
                &format!("e.g. `url: {eg}` or `--set broker.url={eg}`"),
            );
        }
        (BrokerKind::Pulsar, Some(u)) => {
            if !(u.starts_with("pulsar://") || u.starts_with("pulsar+ssl://")) {
                cx.hint(
                    "broker.url",
                    format!("`{u}` is not a Pulsar service URL"),
                    "use pulsar://HOST:6650 or pulsar+ssl://HOST:6651",
                );
            }
        }
        (BrokerKind::Danube, Some(u)) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                cx.hint(
                    "broker.url",
                    format!("`{u}` is not a Danube service URL"),
                    "use http://HOST:6650 (or https:// with TLS)",
                );
            }
        }
    }
}

/// `admin_url`: Pulsar only, http(s) with a host.
fn check_admin_url(cx: &mut Cx<'_>, kind: BrokerKind, admin_url: Option<&str>) {
    let Some(u) = admin_url else { return };
    if kind != BrokerKind::Pulsar {
        cx.err("broker.admin_url", "applies to the pulsar broker only");
    } else if !matches!(u.split_once("://"), Some(("http" | "https", host)) if !host.is_empty()) {
        cx.hint(
            "broker.admin_url",
            format!("`{u}` is not a Pulsar admin URL"),
            "use http://HOST:8080 (or https://HOST:8443 with broker.tls.ca_file)",
        );
    }
}

/// The memory broker's knobs, set on another broker.
fn memory_only(cx: &mut Cx<'_>, b: &RawBroker) {
    if b.capacity_msgs_per_s.is_some() {
        cx.err("broker.capacity_msgs_per_s", "applies to the memory broker only");
    }
    if b.latency.is_some() {
        cx.err("broker.latency", "applies to the memory broker only");
    }
    if b.ack_latency.is_some() {
        cx.err("broker.ack_latency", "applies to the memory broker only");
    }
    for (k, v) in [
        ("broker.drop_every", b.drop_every),
        ("broker.duplicate_every", b.duplicate_every),
        ("broker.misroute_every", b.misroute_every),
        ("broker.stall_after", b.stall_after),
        ("broker.max_backlog", b.max_backlog),
    ] {
        if v.is_some() {
            cx.err(k, "applies to the memory broker only");
        }
    }
}

/// Exactly one of `token_file` and `token_env`, not blank.
fn auth(cx: &mut Cx<'_>, a: &RawAuth) -> Option<Auth> {
    match a {
        RawAuth { token_file: Some(f), token_env: None } if !f.trim().is_empty() => {
            Some(Auth::TokenFile(f.trim().to_string()))
        }
        RawAuth { token_file: None, token_env: Some(v) } if !v.trim().is_empty() => {
            Some(Auth::TokenEnv(v.trim().to_string()))
        }
        _ => {
            cx.hint(
                "broker.auth",
                "give exactly one of `token_file` or `token_env`",
                "secrets stay out of the scenario: `auth: {token_file: /var/run/secrets/broker-token}`",
            );
            None
        }
    }
}
