//! One agent session as the coordinator sees it: connect, Hello, clock sync,
//! then a sender for commands and a stream of the agent's messages.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::clock::{self, ClockTracker, SyncSample};
use common::errors::{chain_from, source_chain};
use common::proto::agent_client::AgentClient;
use common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use common::wire::tls::{client_config, rustls, PemFile, TlsError};
use common::wire::{Token, AUTH_HEADER, HTTP2_KEEPALIVE_INTERVAL, HTTP2_KEEPALIVE_TIMEOUT, MAX_MESSAGE_BYTES};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const SYNC_PINGS: u64 = 8;
/// Lease assumed for an agent that does not say (an older agent).
const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Keepalive pings are numbered from here, apart from the clock-sync pings.
const KEEPALIVE_SEQ0: u64 = 1 << 40;
/// Longest wait to hand the agent a command: a session whose queue stays
/// full that long has an agent that stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session could not be opened; the message is one line naming the agent.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The agent is running a run (another coordinator's, or the previous
    /// step's for a moment longer): it refused the session as busy.
    #[error("{0}")]
    Busy(String),
    /// Anything else: unreachable, refused, TLS, authentication, clock sync.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for OpenError {
    fn from(message: String) -> OpenError {
        OpenError::Failed(message)
    }
}

/// TLS to remote agents (`coordinator run --tls-ca`, with `--tls-cert
/// --tls-key` for agents that require a client certificate); files read
/// and checked once, at startup.
#[derive(Clone, Debug)]
pub struct ClientTls {
    ca: PemFile,
    identity: Option<(PemFile, PemFile)>,
    /// The same settings for rustls directly (see [`tls_verdict`]).
    config: Arc<rustls::ClientConfig>,
    /// `--tls-domain`: the name agent certificates must carry; None: the
    /// host part of each agent's address.
    pub domain: Option<String>,
}

impl ClientTls {
    pub fn from_files(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        domain: Option<String>,
    ) -> Result<ClientTls, TlsError> {
        let ca = PemFile::read("--tls-ca", ca)?;
        let identity = match identity {
            Some((c, k)) => Some((PemFile::read("--tls-cert", c)?, PemFile::read("--tls-key", k)?)),
            None => None,
        };
        let config = client_config(&ca, identity.as_ref().map(|(c, k)| (c, k)))?;
        Ok(ClientTls { ca, identity, config: Arc::new(config), domain })
    }

    /// The name an agent at `address` must prove: `--tls-domain`, else the
    /// address's host (an IP address is checked against the certificate's
    /// IP SANs).
    pub fn server_name(&self, address: &str) -> String {
        self.domain.clone().unwrap_or_else(|| host_of(address).to_string())
    }

    fn tonic_config(&self, address: &str) -> tonic::transport::ClientTlsConfig {
        let mut c = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca.bytes))
            .domain_name(self.server_name(address));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(tonic::transport::Identity::from_pem(&cert.bytes, &key.bytes));
        }
        c
    }
}

/// `h:p`, `[v6]:p` or `scheme://h:p/...`: the host, without brackets.
pub fn host_of(address: &str) -> &str {
    let rest = address.split_once("://").map(|(_, r)| r).unwrap_or(address);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
}

pub struct AgentSession {
    pub address: String,
    pub hello: proto::HelloAck,
    pub clock_offset_ns: i64,
    pub clock_error_ns: i64,
    pub rtt_ns: i64,
    /// The agent stops all load after this long without a word from us.
    pub lease: Duration,
    tx: mpsc::Sender<CoordinatorMessage>,
    rx: Option<Streaming<AgentMessage>>,
    /// Stops the keepalive pings (on drop).
    keepalive: CancellationToken,
    /// The offset followed during the run (see [`ClockFollower`]).
    clock: Arc<std::sync::Mutex<ClockTracker>>,
}

/// Follows an agent's clock during a run from the keepalive Pongs (each is
/// a clock-sync sample) and sends the agent a correction when its offset
/// provably moved (drift): see [`ClockTracker`].
#[derive(Clone)]
pub struct ClockFollower {
    tracker: Arc<std::sync::Mutex<ClockTracker>>,
    /// Weak: the session's command stream must close when the session is
    /// dropped (that is how an agent learns the run is over), even while
    /// the reader that holds this follower still runs.
    tx: mpsc::WeakSender<CoordinatorMessage>,
}

impl ClockFollower {
    /// Call with every Pong as soon as it arrives (its arrival time is the
    /// sample's end).
    pub fn pong(&self, p: &proto::Pong) {
        if p.seq < KEEPALIVE_SEQ0 {
            return;
        }
        let sample = SyncSample { t0: p.coordinator_ns, agent: p.agent_ns, t3: clock::now_ns() };
        let update = self.tracker.lock().unwrap_or_else(|e| e.into_inner()).observe(sample);
        if let (Some((offset, error)), Some(tx)) = (update, self.tx.upgrade()) {
            // A full queue: the next estimate will tell again.
            let _ = tx.try_send(cmd(CMsg::Clock(proto::ClockUpdate { clock_offset_ns: offset, error_ns: error })));
        }
    }

    /// The tracker as it stands.
    pub fn snapshot(&self) -> ClockTracker {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        self.keepalive.cancel();
    }
}

fn cmd(m: CMsg) -> CoordinatorMessage {
    CoordinatorMessage { msg: Some(m) }
}

impl AgentSession {
    /// Connects, says Hello and syncs clocks. Errors are one line naming the
    /// agent. `token` goes in the `authorization` metadata of the call;
    /// with `tls` the connection is https.
    pub async fn open(
        address: &str,
        run_id: &str,
        coordinator_id: &str,
        token: Option<&Token>,
        tls: Option<&ClientTls>,
    ) -> Result<AgentSession, OpenError> {
        let channel = connect(address, tls).await?;
        let hello = proto::Hello {
            protocol_version: common::PROTOCOL_VERSION,
            coordinator_id: coordinator_id.into(),
            run_id: run_id.into(),
            token: String::new(),
            lease_ms: 0,
        };
        let (tx, mut rx) = call_session(address, channel, tls, token, hello).await?;
        let hello = hello_ack(address, &mut rx).await?;
        let lease = if hello.lease_ms > 0 { Duration::from_millis(hello.lease_ms) } else { DEFAULT_LEASE };
        let mut s = AgentSession {
            address: address.to_string(),
            hello,
            clock_offset_ns: 0,
            clock_error_ns: 0,
            rtt_ns: 0,
            lease,
            tx,
            rx: Some(rx),
            keepalive: CancellationToken::new(),
            clock: Arc::new(std::sync::Mutex::new(ClockTracker::new(0, 0))),
        };
        s.sync_clock().await?;
        // From here until the session is dropped, the agent's lease is renewed.
        s.start_keepalive();
        Ok(s)
    }

    /// Several pings; the lowest-RTT sample gives the offset (error bound RTT/2).
    pub async fn sync_clock(&mut self) -> Result<(), String> {
        let rx = self.rx.as_mut().ok_or("session stream already taken")?;
        let mut samples = Vec::new();
        for seq in 0..SYNC_PINGS {
            let t0 = clock::now_ns();
            self.tx
                .send(cmd(CMsg::Ping(proto::Ping { seq, coordinator_ns: t0 })))
                .await
                .map_err(|_| format!("agent {}: session closed during clock sync", self.address))?;
            loop {
                match tokio::time::timeout(HELLO_TIMEOUT, rx.message()).await {
                    Ok(Ok(Some(AgentMessage { msg: Some(AMsg::Pong(p)) }))) if p.seq == seq => {
                        samples.push(SyncSample { t0, agent: p.agent_ns, t3: clock::now_ns() });
                        break;
                    }
                    Ok(Ok(Some(_))) => continue,
                    Ok(Ok(None)) | Ok(Err(_)) => {
                        return Err(format!("agent {}: session closed during clock sync", self.address))
                    }
                    Err(_) => return Err(format!("agent {}: no answer to a clock-sync ping", self.address)),
                }
            }
        }
        let (offset, err) =
            clock::best_offset(&samples).ok_or_else(|| format!("agent {}: clock sync failed", self.address))?;
        self.clock_offset_ns = offset;
        self.clock_error_ns = err;
        self.clock = Arc::new(std::sync::Mutex::new(ClockTracker::new(offset, err)));
        self.rtt_ns = err * 2;
        Ok(())
    }

    pub async fn send(&self, m: CMsg) -> Result<(), String> {
        match tokio::time::timeout(SEND_TIMEOUT, self.tx.send(cmd(m))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(format!("agent {}: session closed", self.address)),
            Err(_) => Err(format!("agent {}: not reading commands for {SEND_TIMEOUT:?}", self.address)),
        }
    }

    /// Sends if the queue has room, never waits (a notice to an agent that
    /// may be gone).
    pub fn send_now(&self, m: CMsg) {
        let _ = self.tx.try_send(cmd(m));
    }

    /// Hands the agent's message stream to the caller (once).
    pub fn take_stream(&mut self) -> Option<Streaming<AgentMessage>> {
        self.rx.take()
    }

    /// Follows this agent's clock from its Pongs (see [`ClockFollower`]).
    pub fn clock_follower(&self) -> ClockFollower {
        ClockFollower { tracker: self.clock.clone(), tx: self.tx.downgrade() }
    }

    pub fn sender(&self) -> mpsc::Sender<CoordinatorMessage> {
        self.tx.clone()
    }

    /// How often the keepalive pings: four per lease, so one late or lost
    /// ping never costs the run.
    pub fn keepalive_every(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(50))
    }

    /// Renews the agent's lease with a Ping every [`Self::keepalive_every`]
    /// until the session is dropped or closes. The agent answers with
    /// Pongs, which the run's message loop ignores (but counts as a sign of
    /// life).
    fn start_keepalive(&self) {
        let stop = self.keepalive.clone();
        let tx = self.tx.clone();
        let every = self.keepalive_every();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = KEEPALIVE_SEQ0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        let ping = cmd(CMsg::Ping(proto::Ping { seq, coordinator_ns: clock::now_ns() }));
                        // A full queue means the session is stuck; the lease will tell.
                        match tx.try_send(ping) {
                            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                            Err(mpsc::error::TrySendError::Closed(_)) => break,
                        }
                        seq += 1;
                    }
                }
            }
        });
    }
}

/// The one line for a connection that could not be made; TLS failures
/// say which side distrusts which certificate.
/// The agent's URL: a bare HOST:PORT gets http:// or, with TLS, https://;
/// a scheme that contradicts the TLS flags is refused.
fn agent_url(address: &str, tls: Option<&ClientTls>) -> Result<String, OpenError> {
    match (address.split_once("://"), tls) {
        (Some(("http", _)), Some(_)) => {
            Err(format!("agent {address}: http:// with --tls-ca; write https:// or the bare HOST:PORT").into())
        }
        (Some(("https", _)), None) => {
            Err(format!("agent {address}: https:// needs --tls-ca (the CA that signed the agents' certificates)")
                .into())
        }
        (Some(_), _) => Ok(address.to_string()),
        (None, Some(_)) => Ok(format!("https://{address}")),
        (None, None) => Ok(format!("http://{address}")),
    }
}

/// The gRPC channel to the agent, with the wire's keepalive settings.
async fn connect(address: &str, tls: Option<&ClientTls>) -> Result<tonic::transport::Channel, OpenError> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(agent_url(address, tls)?)
        .map_err(|e| format!("agent {address}: not a valid address ({e})"))?
        .connect_timeout(HELLO_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(HTTP2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    if let Some(t) = tls {
        endpoint = endpoint
            .tls_config(t.tonic_config(address))
            .map_err(|e| format!("agent {address}: TLS settings refused: {}", source_chain(&e)))?;
    }
    Ok(endpoint.connect().await.map_err(|e| connect_error(address, tls, &e))?)
}

/// Opens the Session call with `hello` as its first message: our sending
/// end and the agent's stream. A refusal is one line; a busy agent is
/// [`OpenError::Busy`].
async fn call_session(
    address: &str,
    channel: tonic::transport::Channel,
    tls: Option<&ClientTls>,
    token: Option<&Token>,
    hello: proto::Hello,
) -> Result<(mpsc::Sender<CoordinatorMessage>, Streaming<AgentMessage>), OpenError> {
    let mut client = AgentClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, out_rx) = mpsc::channel(64);
    tx.send(cmd(CMsg::Hello(hello))).await.map_err(|_| format!("agent {address}: session closed"))?;
    let mut request = tonic::Request::new(ReceiverStream::new(out_rx));
    if let Some(t) = token {
        let value = t.bearer().parse().map_err(|_| format!("agent {address}: the token cannot be sent"))?;
        request.metadata_mut().insert(AUTH_HEADER, value);
    }
    match tokio::time::timeout(HELLO_TIMEOUT, client.session(request)).await {
        Err(_) => Err(format!("agent {address}: no answer within {HELLO_TIMEOUT:?}").into()),
        Ok(Ok(r)) => Ok((tx, r.into_inner())),
        Ok(Err(s)) if s.code() == tonic::Code::Unauthenticated => {
            Err(format!("agent {address}: authentication failed: {}", s.message()).into())
        }
        // No answer from the agent's gRPC at all: the connection died under it.
        Ok(Err(s)) if std::error::Error::source(&s).is_some() => Err(connection_lost(address, tls, &s).await.into()),
        Ok(Err(s)) if s.code() == tonic::Code::ResourceExhausted => {
            Err(OpenError::Busy(format!("agent {address}: refused the session: {}", s.message())))
        }
        Ok(Err(s)) => Err(format!("agent {address}: refused the session: {}", s.message()).into()),
    }
}

/// The agent's first answer: its HelloAck, or why there is none.
async fn hello_ack(address: &str, rx: &mut Streaming<AgentMessage>) -> Result<proto::HelloAck, OpenError> {
    match tokio::time::timeout(HELLO_TIMEOUT, rx.message()).await {
        Ok(Ok(Some(AgentMessage { msg: Some(AMsg::HelloAck(h)) }))) => Ok(h),
        Ok(Ok(Some(AgentMessage { msg: Some(AMsg::Error(e)) }))) => {
            Err(format!("agent {address}: {}", e.message).into())
        }
        Ok(Ok(_)) => Err(format!("agent {address}: unexpected answer to Hello").into()),
        Ok(Err(s)) if s.code() == tonic::Code::Unauthenticated => {
            Err(format!("agent {address}: authentication failed: {}", s.message()).into())
        }
        Ok(Err(s)) => Err(format!("agent {address}: {}", s.message()).into()),
        Err(_) => Err(format!("agent {address}: no Hello answer within {HELLO_TIMEOUT:?}").into()),
    }
}

fn connect_error(address: &str, tls: Option<&ClientTls>, e: &dyn std::error::Error) -> String {
    let chain = source_chain(e);
    let Some(tls) = tls else {
        return format!("agent {address}: cannot connect: {chain}");
    };
    let Some(i) = chain.find("invalid peer certificate") else {
        return format!("agent {address}: cannot connect: {chain}");
    };
    let cause = &chain[i..];
    let hint = if cause.contains("UnknownIssuer") {
        format!(" (the agent's certificate is not signed by the --tls-ca CA, {})", tls.ca.path.display())
    } else if cause.contains("not valid for name") {
        " (--tls-domain sets the name to check)".to_string()
    } else {
        String::new()
    };
    format!("agent {address}: TLS handshake failed: {cause}{hint}")
}

/// The session call failed below gRPC: the agent closed the connection
/// instead of answering. With TLS that is how an agent refuses a client
/// certificate (TLS 1.3 settles it after the client's side of the
/// handshake is done), so ask the TLS layer what the agent said.
async fn connection_lost(address: &str, tls: Option<&ClientTls>, s: &tonic::Status) -> String {
    let chain = chain_from(s.message().to_string(), std::error::Error::source(s));
    match tls {
        None => format!(
            "agent {address}: the connection failed: {chain} (an agent serving TLS drops plaintext clients: if it \
             was started with --tls-cert, pass --tls-ca)"
        ),
        Some(t) => match tls_verdict(address, t).await {
            Some(why) => format!("agent {address}: TLS: {why}"),
            None => format!("agent {address}: the connection failed: {chain}"),
        },
    }
}

/// How long [`tls_verdict`] waits for each step.
const VERDICT_TIMEOUT: Duration = Duration::from_secs(3);

/// A second connection to the agent with the same TLS settings, told
/// apart from gRPC: handshake, send the HTTP/2 preface, read once. An
/// agent that refuses our certificate answers with a TLS alert; one that
/// takes it, with HTTP/2 SETTINGS (None: TLS is not the problem).
pub async fn tls_verdict(address: &str, tls: &ClientTls) -> Option<String> {
    use rustls::{pki_types::ServerName, AlertDescription, Error as TlsErr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = ServerName::try_from(tls.server_name(address)).ok()?;
    let hostport = address.split_once("://").map(|(_, r)| r).unwrap_or(address);
    let hostport = hostport.split('/').next().unwrap_or(hostport);
    let tcp = tokio::time::timeout(VERDICT_TIMEOUT, tokio::net::TcpStream::connect(hostport)).await.ok()?.ok()?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let mut stream = match tokio::time::timeout(VERDICT_TIMEOUT, connector.connect(name, tcp)).await.ok()? {
        Ok(s) => s,
        Err(e) => return Some(format!("handshake failed: {e}")),
    };
    let mut buf = [0u8; 64];
    let read = async {
        stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        stream.flush().await?;
        stream.read(&mut buf).await
    };
    let e = match tokio::time::timeout(VERDICT_TIMEOUT, read).await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) | Err(_) => return None,
    };
    let alert = e.get_ref().and_then(|i| i.downcast_ref::<TlsErr>()).and_then(|t| match t {
        TlsErr::AlertReceived(a) => Some(*a),
        _ => None,
    });
    Some(match alert {
        Some(AlertDescription::CertificateRequired) => {
            "the agent requires a client certificate (it runs with --tls-client-ca): pass --tls-cert and --tls-key"
                .to_string()
        }
        Some(a) if tls.identity.is_some() => format!(
            "the agent refused this coordinator's client certificate (alert {a:?}): it must be signed by the \
             agent's --tls-client-ca"
        ),
        _ => format!("the agent ended the TLS session: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_agent_address_is_its_default_tls_name() {
        assert_eq!(host_of("10.0.0.7:7070"), "10.0.0.7");
        assert_eq!(host_of("agent-0.example:7070"), "agent-0.example");
        assert_eq!(host_of("[fd00::7]:7070"), "fd00::7");
        assert_eq!(host_of("https://agent.example:7070/"), "agent.example");
        assert_eq!(
            host_of("loadgen-agents.loadgen.svc.cluster.local:7070"),
            "loadgen-agents.loadgen.svc.cluster.local"
        );
    }
}
