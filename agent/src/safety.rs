//! What keeps a remotely driven traffic source in check (DESIGN.md
//! "Safety"): a shared token on every call (the token itself is
//! `common::wire::Token`; the check is here), an allowlist of brokers, a cap
//! on the rate of one shard. The lease (stop all load when the coordinator
//! goes quiet) lives in the session loop, `server.rs`.

use common::plan::Shard;
use common::scenario::BrokerKind;
use common::wire::AUTH_HEADER;
/// The token is part of the wire contract (`common::wire`); the agent's
/// options and flags name it from here.
pub use common::wire::{Token, TokenError};
use tonic::{Request, Status};
use tracing::warn;

/// A tonic interceptor that refuses every call without the right
/// `authorization: Bearer <token>`; refusals are logged with the peer.
pub fn check_token(
    agent_id: String,
    token: Option<Token>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(token) = &token else {
            return Ok(req);
        };
        let presented = req
            .metadata()
            .get(AUTH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes);
        match presented {
            Some(p) if token.matches(p) => Ok(req),
            other => {
                let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "?".into());
                let why = if other.is_some() { "wrong token" } else { "no token" };
                warn!(%peer, reason = why, "refused a call: authentication failed");
                Err(Status::unauthenticated(format!(
                    "agent {agent_id} refused the coordinator: {why} (pass the agent's shared token with --token-file)"
                )))
            }
        }
    }
}

/// `host:port` of every address in a broker URL: `pulsar://h:6650`,
/// `pulsar+ssl://h1:6651,h2:6651`, `http://[::1]:6650/path`. A missing port
/// is the scheme's default.
pub fn broker_endpoints(url: &str) -> Result<Vec<String>, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("`{url}` has no scheme (e.g. pulsar://)"))?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "pulsar" => 6650,
        "pulsar+ssl" => 6651,
        "http" => 80,
        "https" => 443,
        other => return Err(format!("`{url}`: unknown scheme `{other}`")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let mut out = Vec::new();
    for part in authority.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        let (host, port) = if let Some(v6) = part.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("`{url}`: unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| format!("`{url}`: bad port `{p}`"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("`{url}`: cannot read `{part}`")),
            };
            (format!("[{}]", h.to_ascii_lowercase()), port)
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => {
                    (h.to_ascii_lowercase(), p.parse::<u16>().map_err(|_| format!("`{url}`: bad port `{p}`"))?)
                }
                None => (part.to_ascii_lowercase(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        out.push(format!("{host}:{port}"));
    }
    Ok(out)
}

/// Normalises an `--allow-broker` entry (host case, IPv6 brackets kept).
pub fn normalize_allow_entry(entry: &str) -> Result<String, String> {
    let e = entry.trim();
    let (host, port) = e.rsplit_once(':').ok_or_else(|| format!("`{e}` is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("`{e}`: bad port `{port}`"))?;
    if host.is_empty() || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']'))) {
        return Err(format!("`{e}` is not HOST:PORT (IPv6: [::1]:6650)"));
    }
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// Why an agent refuses a shard (before any connection to the broker).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardRefused {
    /// The scenario's broker URL cannot be read.
    #[error("{0}")]
    BrokerUrl(String),
    #[error("broker {refused} is not on this agent's allowlist (--allow-broker {allowed}); nothing was sent")]
    NotAllowed { refused: String, allowed: String },
    #[error(
        "this shard's producers total {rate} msg/s, more than this agent's --max-rate {max} msg/s; \
         use more agents or a lower rate"
    )]
    OverRate { rate: f64, max: f64 },
}

/// The checks an agent makes on a shard before it opens a single connection
/// to the broker: the broker is on the allowlist (empty list: any broker;
/// the in-process memory broker always), and the shard's total producer rate
/// is within the cap.
pub fn check_shard(shard: &Shard, allow: &[String], max_rate: Option<f64>) -> Result<(), ShardRefused> {
    let sc = &shard.scenario;
    if sc.broker.kind != BrokerKind::Memory && !allow.is_empty() {
        let url = sc.broker.url.as_deref().unwrap_or("");
        let endpoints = broker_endpoints(url).map_err(ShardRefused::BrokerUrl)?;
        let refused: Vec<&String> = endpoints.iter().filter(|e| !allow.contains(e)).collect();
        if !refused.is_empty() {
            return Err(ShardRefused::NotAllowed {
                refused: refused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                allowed: allow.join(", --allow-broker "),
            });
        }
    }
    if let Some(max) = max_rate {
        let rate = shard.rate_milli() as f64 / 1000.0;
        if rate > max {
            return Err(ShardRefused::OverRate { rate, max });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interceptor_requires_the_bearer_token() {
        let mut check = check_token("a1".into(), Some(Token::parse("0123456789abcdef", "f").unwrap()));
        assert!(check(Request::new(())).is_err());
        let mut r = Request::new(());
        r.metadata_mut().insert(AUTH_HEADER, "Bearer 0123456789abcdef".parse().unwrap());
        assert!(check(r).is_ok());
        let mut r = Request::new(());
        r.metadata_mut().insert(AUTH_HEADER, "Bearer nope-nope-nope-nope".parse().unwrap());
        let e = check(r).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("agent a1"), "{}", e.message());
        let mut open = check_token("a2".into(), None);
        assert!(open(Request::new(())).is_ok());
    }

    #[test]
    fn broker_urls_become_host_port_lists() {
        assert_eq!(broker_endpoints("pulsar://Broker.example:6650").unwrap(), ["broker.example:6650"]);
        assert_eq!(broker_endpoints("pulsar://b").unwrap(), ["b:6650"]);
        assert_eq!(broker_endpoints("pulsar+ssl://a:1,b").unwrap(), ["a:1", "b:6651"]);
        assert_eq!(broker_endpoints("http://[::1]:7000/x").unwrap(), ["[::1]:7000"]);
        assert_eq!(broker_endpoints("pulsar://user@h:1").unwrap(), ["h:1"]);
        assert!(broker_endpoints("h:6650").is_err());
        assert!(broker_endpoints("pulsar://h:port").is_err());
        assert!(broker_endpoints("pulsar://").is_err());
        assert_eq!(normalize_allow_entry("H:1").unwrap(), "h:1");
        assert_eq!(normalize_allow_entry("[::1]:2").unwrap(), "[::1]:2");
        assert!(normalize_allow_entry("h").is_err());
        assert!(normalize_allow_entry("::1:2").is_err());
    }

    fn shard(yaml: &str) -> Shard {
        let sc = common::scenario::load_str(yaml, "t.yaml", &[]).unwrap();
        let slots = [common::plan::AgentSlot { name: "a".into(), instance: "i".into() }];
        common::plan::plan(&sc, "r", &slots).unwrap().shards.remove(0)
    }

    #[test]
    fn shards_are_checked_against_the_allowlist_and_the_rate_cap() {
        let p = shard("name: p\nbroker: {kind: pulsar, url: \"pulsar://b1:6650\"}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, count: 2, rate: 100}]\nphases: {duration: 1s}\n");
        assert!(check_shard(&p, &[], None).is_ok(), "no list: any broker");
        assert!(check_shard(&p, &["b1:6650".into()], None).is_ok());
        let e = check_shard(&p, &["b2:6650".into()], None).unwrap_err().to_string();
        assert!(e.contains("b1:6650 is not on this agent's allowlist"), "{e}");
        assert!(check_shard(&p, &[], Some(200.0)).is_ok());
        let e = check_shard(&p, &[], Some(150.0)).unwrap_err().to_string();
        assert!(e.contains("200 msg/s") && e.contains("--max-rate 150"), "{e}");
        let m = shard("name: m\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\nphases: {duration: 1s}\n");
        assert!(check_shard(&m, &["b2:6650".into()], None).is_ok(), "the memory broker needs no entry");
    }
}
