//! One agent session as the coordinator sees it: connect, Hello, clock sync,
//! then a sender for commands and a stream of the agent's messages.

use std::time::Duration;

use agent::safety::Token;
use common::clock::{self, SyncSample};
use common::proto::agent_client::AgentClient;
use common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

/// Most messages the coordinator accepts from an agent (final reports carry range sets).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const SYNC_PINGS: u64 = 8;
/// Lease assumed for an agent that does not say (an older agent).
const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Keepalive pings are numbered from here, apart from the clock-sync pings.
const KEEPALIVE_SEQ0: u64 = 1 << 40;
/// Longest wait to hand the agent a command: a session whose queue stays
/// full that long has an agent that stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// agent. `token` goes in the `authorization` metadata of the call.
    pub async fn open(
        address: &str,
        run_id: &str,
        coordinator_id: &str,
        token: Option<&Token>,
    ) -> Result<AgentSession, String> {
        let url = if address.starts_with("http://") || address.starts_with("https://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| format!("agent {address}: not a valid address ({e})"))?
            .connect_timeout(HELLO_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(agent::server::HTTP2_KEEPALIVE_INTERVAL)
            .keep_alive_timeout(agent::server::HTTP2_KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel =
            endpoint.connect().await.map_err(|e| format!("agent {address}: cannot connect: {}", source_chain(&e)))?;
        let mut client = AgentClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, out_rx) = mpsc::channel(64);
        tx.send(cmd(CMsg::Hello(proto::Hello {
            protocol_version: common::PROTOCOL_VERSION,
            coordinator_id: coordinator_id.into(),
            run_id: run_id.into(),
            token: String::new(),
            lease_ms: 0,
        })))
        .await
        .map_err(|_| format!("agent {address}: session closed"))?;
        let mut request = tonic::Request::new(ReceiverStream::new(out_rx));
        if let Some(t) = token {
            let value = t.bearer().parse().map_err(|_| format!("agent {address}: the token cannot be sent"))?;
            request.metadata_mut().insert(agent::safety::AUTH_HEADER, value);
        }
        let resp = tokio::time::timeout(HELLO_TIMEOUT, client.session(request))
            .await
            .map_err(|_| format!("agent {address}: no answer within {HELLO_TIMEOUT:?}"))?
            .map_err(|s| match s.code() {
                tonic::Code::Unauthenticated => {
                    format!("agent {address}: authentication failed: {}", s.message())
                }
                _ => format!("agent {address}: refused the session: {}", s.message()),
            })?;
        let mut rx = resp.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, rx.message()).await {
            Ok(Ok(Some(AgentMessage { msg: Some(AMsg::HelloAck(h)) }))) => h,
            Ok(Ok(Some(AgentMessage { msg: Some(AMsg::Error(e)) }))) => {
                return Err(format!("agent {address}: {}", e.message))
            }
            Ok(Ok(_)) => return Err(format!("agent {address}: unexpected answer to Hello")),
            Ok(Err(s)) if s.code() == tonic::Code::Unauthenticated => {
                return Err(format!("agent {address}: authentication failed: {}", s.message()))
            }
            Ok(Err(s)) => return Err(format!("agent {address}: {}", s.message())),
            Err(_) => return Err(format!("agent {address}: no Hello answer within {HELLO_TIMEOUT:?}")),
        };
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

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
