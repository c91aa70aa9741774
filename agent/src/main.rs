//! The agent binary: parses flags, reads the token and TLS files, binds the
//! listeners and serves until told to go. Everything else is the library's
//! (`agent::serve_with_health`); failures become an exit code here: 2 for
//! what the operator can fix (flags, files, addresses), 3 for the rest.
//!
//! Told to go (SIGTERM or SIGINT: a pod evicted, a rolling update): the
//! agent leaves its session cleanly (`AgentOptions::leave`: producers stop,
//! consumers drain for `--leave-drain`, the final report and `Leaving` go
//! out) and exits 0. A second signal, or `--leave-grace` running out, makes
//! it exit at once with code 3.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent::safety::{Token, TokenError};
use agent::tls::ServerTls;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The broker clients allocate several times per message (maps, strings,
/// futures, frames); mimalloc spends less CPU on that than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load-generating agent: runs its shard of a scenario when a coordinator asks.
#[derive(Parser, Debug)]
#[command(
    name = "agent",
    version,
    about,
    after_help = "Logs go to stderr; RUST_LOG sets the level and filters (default info), e.g. RUST_LOG=debug."
)]
struct Cli {
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 0.0.0.0:9464:
    /// counters per group since the agent started, and the last interval's
    /// rates and latency quantiles.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Address to listen on, e.g. 0.0.0.0:7070 (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Name reported to the coordinator (default: the listen address).
    #[arg(long)]
    id: Option<String>,
    /// File holding the shared token (at least 16 characters) every call
    /// must carry (`coordinator run --token-file`). Or set LOADGEN_TOKEN to
    /// the token itself. Without either, any coordinator that can reach the
    /// port may drive this agent.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A broker this agent may send to, HOST:PORT as in the scenario's
    /// broker.url (repeatable). A shard for any other broker is refused
    /// before a single connection. Without this flag every broker is
    /// allowed; the in-process memory broker always is.
    #[arg(long = "allow-broker", value_name = "HOST:PORT", value_parser = agent::safety::normalize_allow_entry)]
    allow_brokers: Vec<String>,
    /// Refuse a shard whose producers total more than N msg/s.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    max_rate: Option<f64>,
    /// Stop all load when the coordinator has said nothing (keepalive pings
    /// included) for this long, e.g. 10s; the agent is then free for the next run.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_lease)]
    lease: Duration,
    /// Serve TLS on --listen with this certificate (PEM, leaf first, then
    /// any intermediates); needs --tls-key. Coordinators then connect with
    /// `coordinator run --tls-ca`. Plaintext clients are refused.
    #[arg(long, value_name = "FILE", env = "LOADGEN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", env = "LOADGEN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: accept only coordinators with a client certificate
    /// signed by this CA (PEM; `coordinator run --tls-cert --tls-key`).
    /// The token, if set, is checked on top. Needs --tls-cert.
    #[arg(long, value_name = "FILE", env = "LOADGEN_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Also serve the gRPC health service alone on ADDR, e.g. 0.0.0.0:7071:
    /// plaintext, no token, no client certificate. For Kubernetes `grpc:`
    /// probes, which cannot speak TLS to --listen when --tls-cert is set.
    #[arg(long, value_name = "ADDR")]
    health_listen: Option<SocketAddr>,
    /// Told to go (SIGTERM, SIGINT), the agent stops its producers and lets
    /// its consumers receive for this long before it sends its final report
    /// and leaves the run.
    #[arg(long, value_name = "DURATION", env = "LOADGEN_LEAVE_DRAIN", default_value = "5s", value_parser = parse_duration)]
    leave_drain: Duration,
    /// Told to go, the agent exits at once (code 3) if it has not left
    /// within this long, or at a second signal. Keep it under the pod's
    /// terminationGracePeriodSeconds (Kubernetes' default: 30 s).
    #[arg(long, value_name = "DURATION", env = "LOADGEN_LEAVE_GRACE", default_value = "25s", value_parser = parse_duration)]
    leave_grace: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    common::units::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("`{s}` is not a positive rate (messages per second)")),
    }
}

fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = common::units::parse_duration(s).map_err(|e| e.to_string())?;
    if d < agent::server::MIN_LEASE {
        return Err(format!("a lease shorter than {:?} would end healthy runs", agent::server::MIN_LEASE));
    }
    Ok(d)
}

fn load_token(cli: &Cli) -> Result<Option<Token>, TokenError> {
    if let Some(f) = &cli.token_file {
        return Token::from_file(f).map(Some);
    }
    match std::env::var("LOADGEN_TOKEN") {
        Ok(t) => Token::parse(&t, "LOADGEN_TOKEN").map(Some),
        Err(_) => Ok(None),
    }
}

/// Why the agent stopped: the exit code and what to print.
struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    /// Something the operator can fix: a flag, a file, an address.
    fn usage(message: impl std::fmt::Display) -> Exit {
        Exit { code: 2, message: message.to_string() }
    }

    fn failed(message: impl std::fmt::Display) -> Exit {
        Exit { code: 3, message: message.to_string() }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = security(&cli).and_then(|(token, tls)| {
        let rt = common::runtime::build().map_err(|e| Exit::failed(format!("cannot start the runtime: {e}")))?;
        rt.block_on(serve(cli, token, tls))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// The token and the TLS identity, read before anything is bound.
fn security(cli: &Cli) -> Result<(Option<Token>, Option<ServerTls>), Exit> {
    let token = load_token(cli).map_err(Exit::usage)?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => {
            Some(ServerTls::from_files(cert, key, cli.tls_client_ca.as_deref()).map_err(Exit::usage)?)
        }
        _ => None,
    };
    Ok((token, tls))
}

/// Binds the listeners and serves until the agent has left (told to go).
async fn serve(cli: Cli, token: Option<Token>, tls: Option<ServerTls>) -> Result<(), Exit> {
    let signals = Signals::listen()?;
    let listener = TcpListener::bind(cli.listen)
        .await
        .map_err(|e| Exit::usage(format!("cannot listen on {}: {e}", cli.listen)))?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    // Scripts and tests read this line to learn the port.
    println!("agent listening on {addr}");
    let mutual = tls.as_ref().is_some_and(|t| t.mutual);
    if token.is_none() && !mutual && !cli.listen.ip().is_loopback() {
        tracing::warn!(listen = %cli.listen, "no token: any coordinator that reaches this port can drive this agent");
    }
    if let Some(t) = &tls {
        tracing::info!(
            mutual = t.mutual,
            "serving TLS{}",
            if t.mutual { ", client certificates required" } else { "" }
        );
    }
    let health = match cli.health_listen {
        Some(haddr) => Some(bind_health(haddr).await?),
        None => None,
    };
    let mut opts = agent::AgentOptions::new(cli.id.unwrap_or_else(|| addr.clone()));
    opts.token = token;
    opts.allow_brokers = cli.allow_brokers;
    opts.max_rate = cli.max_rate;
    opts.lease = cli.lease;
    opts.tls = tls;
    opts.leave_drain = cli.leave_drain;
    if cli.leave_drain >= cli.leave_grace {
        tracing::warn!(
            drain = ?cli.leave_drain,
            grace = ?cli.leave_grace,
            "--leave-drain is not shorter than --leave-grace: a leaving agent will be cut off before its final report"
        );
    }
    tokio::spawn(signals.follow(opts.leave.clone(), cli.leave_grace));
    let shutdown = CancellationToken::new();
    if let Some(maddr) = cli.metrics {
        serve_metrics(maddr, &opts, shutdown.clone()).await?;
    }
    agent::serve_with_health(listener, health, opts, shutdown)
        .await
        .map_err(|e| Exit::failed(format!("server failed: {e}")))
}

/// SIGTERM and SIGINT, listened for from before the agent says where it
/// listens (a signal right after that line must not kill it outright).
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn listen() -> Result<Signals, Exit> {
        let listen = |kind| signal(kind).map_err(|e| Exit::failed(format!("cannot listen for signals: {e}")));
        Ok(Signals { term: listen(SignalKind::terminate())?, int: listen(SignalKind::interrupt())? })
    }

    /// The next SIGTERM or SIGINT, by name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// The first signal tells the agent to go (`leave`); the second, or
    /// `grace` after the first, exits at once.
    async fn follow(mut self, leave: CancellationToken, grace: Duration) {
        let first = self.next().await;
        tracing::info!(
            signal = first,
            "told to go: leaving the run (producers stop, consumers drain, final report); a second signal exits at once"
        );
        leave.cancel();
        let why = tokio::select! {
            s = self.next() => format!("a second {s}"),
            _ = tokio::time::sleep(grace) => format!("not left within the leave grace ({grace:?})"),
        };
        eprintln!("agent: {why}: exiting now");
        std::process::exit(3);
    }
}

/// The health service's own listener (`--health-listen`).
async fn bind_health(haddr: SocketAddr) -> Result<TcpListener, Exit> {
    let l = TcpListener::bind(haddr).await.map_err(|e| Exit::usage(format!("cannot serve health on {haddr}: {e}")))?;
    let bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!("agent health (gRPC, plaintext) on {bound}");
    Ok(l)
}

/// Prometheus `/metrics` on `maddr` (`--metrics`), until `shutdown`.
async fn serve_metrics(maddr: SocketAddr, opts: &agent::AgentOptions, shutdown: CancellationToken) -> Result<(), Exit> {
    let ml =
        TcpListener::bind(maddr).await.map_err(|e| Exit::usage(format!("cannot serve metrics on {maddr}: {e}")))?;
    println!("agent metrics on http://{}/metrics", ml.local_addr().map(|a| a.to_string()).unwrap_or_default());
    let render = opts.metrics.renderer(opts.agent_id.clone());
    tokio::spawn(async move {
        if let Err(e) = common::metrics::serve(ml, render, shutdown).await {
            tracing::warn!(error = %e, "metrics server failed");
        }
    });
    Ok(())
}
