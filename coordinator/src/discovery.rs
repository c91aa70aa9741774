//! `--agents-dns NAME:PORT`: the agents are every address a DNS name
//! resolves to — all A and AAAA records of a Kubernetes headless Service,
//! one per agent pod. Pods start at different times, so the lookup repeats
//! until `--expect-agents` addresses answer or the timeout passes.
//!
//! Also the `coordinator run` flags for remote agents ([`RemoteArgs`]) and
//! what they resolve to ([`Remote`]: the token and TLS to speak to them).
//! Imports nothing of the run; `run` calls [`discover`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::{debug, info};

/// `coordinator run` flags that say how to find remote agents and prove
/// to them who is asking.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Agents are every A/AAAA record of NAME (a Kubernetes headless
    /// Service), each on PORT, e.g. loadgen-agents.loadgen.svc.cluster.local:7070.
    #[arg(long, value_name = "NAME:PORT", conflicts_with = "agents", value_parser = parse_target_arg)]
    pub agents_dns: Option<String>,
    /// With --agents-dns: wait until at least N agents resolve (pods start
    /// at different times). Without it the first non-empty answer is used.
    #[arg(long, value_name = "N", requires = "agents_dns", value_parser = clap::value_parser!(u32).range(1..))]
    pub expect_agents: Option<u32>,
    /// With --agents-dns: give up (exit 3) when fewer agents resolve within this time.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = common::units::parse_duration)]
    pub discovery_timeout: Duration,
    /// File holding the agents' shared token (`agent --token-file`), sent
    /// with every call. Or set LOADGEN_TOKEN to the token itself.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Speak TLS (https) to the agents and trust only agent certificates
    /// signed by this CA (PEM); for agents started with --tls-cert. Local
    /// in-process agents (no --agents) stay plaintext on loopback.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// This coordinator's client certificate (PEM), for agents that require
    /// one (agent --tls-client-ca). Needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The name every agent's certificate must carry (a DNS or IP SAN).
    /// Default: the host of each agent address; with --agents-dns, its NAME.
    /// For agents addressed by IP whose certificates name a host.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_domain: Option<String>,
}

fn parse_target_arg(s: &str) -> Result<String, String> {
    parse_target(s).map(|()| s.to_string())
}

/// How to find and reach remote agents: what [`RemoteArgs`] resolve to.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// The agents' shared token (`--token-file`), sent on every call.
    pub token: Option<common::wire::Token>,
    /// TLS to remote agents (`--tls-ca`, `--tls-cert`/`--tls-key`,
    /// `--tls-domain`); local in-process agents stay plaintext.
    pub tls: Option<crate::session::ClientTls>,
    /// `--agents-dns NAME:PORT`: every address the name resolves to is an agent.
    pub agents_dns: Option<String>,
    /// With `agents_dns`: wait until this many addresses resolve.
    pub expect_agents: Option<usize>,
    /// With `agents_dns`: give up after this long (default 60 s).
    pub discovery_timeout: Option<Duration>,
}

impl RemoteArgs {
    /// What these flags say; a token or TLS file that cannot be read or
    /// used is bad input.
    pub fn resolve(self) -> Result<Remote, crate::error::CliError> {
        use common::wire::Token;
        let token = match (&self.token_file, std::env::var("LOADGEN_TOKEN")) {
            (Some(f), _) => Some(Token::from_file(f).map_err(|e| crate::error::CliError::BadInput(e.to_string()))?),
            (None, Ok(t)) => {
                Some(Token::parse(&t, "LOADGEN_TOKEN").map_err(|e| crate::error::CliError::BadInput(e.to_string()))?)
            }
            (None, Err(_)) => None,
        };
        let tls = match &self.tls_ca {
            Some(ca) => {
                let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
                Some(
                    crate::session::ClientTls::from_files(ca, identity, self.tls_domain.clone())
                        .map_err(|e| crate::error::CliError::BadInput(e.to_string()))?,
                )
            }
            None => None,
        };
        Ok(Remote {
            token,
            tls,
            agents_dns: self.agents_dns,
            expect_agents: self.expect_agents.map(|n| n as usize),
            discovery_timeout: Some(self.discovery_timeout),
        })
    }
}

/// Why no agents were found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `--agents-dns` is not `NAME:PORT`.
    #[error("{0}")]
    BadTarget(String),
    /// Fewer than the expected addresses resolved before the timeout.
    #[error(
        "agents at {target}: found {} after {attempts} lookup(s) in {}, expected {want}{}",
        found_text(.found),
        duration_text(.timeout),
        last_lookup(.last_error)
    )]
    TooFew {
        target: String,
        /// What the last successful lookup returned.
        found: Vec<SocketAddr>,
        attempts: u32,
        timeout: Duration,
        want: usize,
        /// Why the last lookup failed, if it did.
        last_error: Option<String>,
    },
}

fn found_text(found: &[SocketAddr]) -> String {
    if found.is_empty() {
        "no address".to_string()
    } else {
        format!("{} address(es): {}", found.len(), found.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))
    }
}

fn duration_text(d: &Duration) -> String {
    common::units::format_duration(*d)
}

fn last_lookup(e: &Option<String>) -> String {
    e.as_ref().map(|e| format!(" (last lookup: {e})")).unwrap_or_default()
}

/// Default for `--discovery-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between lookups.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Resolves `name_port` with the system resolver (`getaddrinfo`: A and AAAA).
pub async fn system_lookup(name_port: String) -> std::io::Result<Vec<SocketAddr>> {
    tokio::net::lookup_host(name_port).await.map(|it| it.collect())
}

/// Checks `NAME:PORT` (the port is required: agents listen on a known port).
pub fn parse_target(s: &str) -> Result<(), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("--agents-dns `{s}`: expected NAME:PORT"))?;
    if host.is_empty() || port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
        return Err(format!(
            "--agents-dns `{s}`: expected NAME:PORT, e.g. loadgen-agents.loadgen.svc.cluster.local:7070"
        ));
    }
    Ok(())
}

/// Looks `target` up until at least `expect` addresses (any, when None)
/// come back or `timeout` passes; returns them sorted, as `HOST:PORT`
/// strings (`[v6]:port` for IPv6). Each lookup is itself bounded by the
/// time left, so a hung resolver cannot hold the run.
pub async fn discover<F, Fut>(
    target: &str,
    expect: Option<usize>,
    timeout: Duration,
    mut lookup: F,
) -> Result<Vec<String>, DiscoveryError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    parse_target(target).map_err(DiscoveryError::BadTarget)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let want = expect.unwrap_or(1).max(1);
    let mut last: Vec<SocketAddr> = Vec::new();
    let mut last_error: Option<String>;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match tokio::time::timeout_at(deadline, lookup(target.to_string())).await {
            Ok(Ok(mut addrs)) => {
                addrs.sort();
                addrs.dedup();
                debug!(target, found = addrs.len(), want, "agents lookup");
                last = addrs;
                last_error = None;
                if last.len() >= want {
                    if let Some(n) = expect {
                        if last.len() > n {
                            info!(target, found = last.len(), expected = n, "more agents than expected; using all");
                        }
                    }
                    return Ok(last.iter().map(|a| a.to_string()).collect());
                }
            }
            Ok(Err(e)) => last_error = Some(e.to_string()),
            Err(_) => last_error = Some("the lookup did not answer in time".into()),
        }
        let now = tokio::time::Instant::now();
        if now + RETRY_EVERY > deadline {
            break;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    Err(DiscoveryError::TooFew { target: target.to_string(), found: last, attempts, timeout, want, last_error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn addrs(n: usize) -> Vec<SocketAddr> {
        (0..n).map(|i| SocketAddr::from(([10, 0, 0, 10 - i as u8], 7070))).collect()
    }

    /// A resolver whose answer grows by one address per call (pods starting).
    fn growing() -> (impl FnMut(String) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        (
            move |_| {
                let n = c.fetch_add(1, Ordering::SeqCst);
                std::future::ready(if n == 0 { Err(std::io::Error::other("no such host")) } else { Ok(addrs(n)) })
            },
            calls,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_expected_count() {
        let (lookup, calls) = growing();
        let t0 = tokio::time::Instant::now();
        let got = discover("agents:7070", Some(3), Duration::from_secs(60), lookup).await.unwrap();
        assert_eq!(got, ["10.0.0.8:7070", "10.0.0.9:7070", "10.0.0.10:7070"], "sorted");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_expected_count_the_first_answer_wins() {
        let (lookup, _) = growing();
        let got = discover("agents:7070", None, Duration::from_secs(60), lookup).await.unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_timeout_and_says_what_it_found() {
        let (lookup, _) = growing();
        let t0 = tokio::time::Instant::now();
        let e = discover("agents:7070", Some(50), Duration::from_secs(5), lookup).await.unwrap_err().to_string();
        assert!(t0.elapsed() <= Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(e.contains("agents at agents:7070: found 5 address(es)"), "{e}");
        assert!(e.contains("after 6 lookup(s) in 5s"), "{e}");
        assert!(e.contains("expected 50"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_resolver_cannot_hold_the_run() {
        let e = discover("agents:7070", Some(1), Duration::from_secs(3), |_| std::future::pending())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not answer in time"), "{e}");
    }

    #[test]
    fn target_needs_a_port() {
        assert!(parse_target("agents.svc:7070").is_ok());
        assert!(parse_target("agents.svc").is_err());
        assert!(parse_target(":7070").is_err());
        assert!(parse_target("a:0").is_err());
    }
}
