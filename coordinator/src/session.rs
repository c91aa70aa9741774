//! One agent session as the coordinator sees it: connect, Hello, clock sync,
//! then a sender for commands and a stream of the agent's messages.

use std::time::Duration;

use common::clock::{self, SyncSample};
use common::proto::agent_client::AgentClient;
use common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// Most messages the coordinator accepts from an agent (final reports carry range sets).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const SYNC_PINGS: u64 = 8;

pub struct AgentSession {
    pub address: String,
    pub hello: proto::HelloAck,
    pub clock_offset_ns: i64,
    pub clock_error_ns: i64,
    pub rtt_ns: i64,
    tx: mpsc::Sender<CoordinatorMessage>,
    rx: Option<Streaming<AgentMessage>>,
}

fn cmd(m: CMsg) -> CoordinatorMessage {
    CoordinatorMessage { msg: Some(m) }
}

impl AgentSession {
    /// Connects, says Hello and syncs clocks. Errors are one line naming the agent.
    pub async fn open(address: &str, run_id: &str, coordinator_id: &str) -> Result<AgentSession, String> {
        let url = if address.starts_with("http://") || address.starts_with("https://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| format!("agent {address}: not a valid address ({e})"))?
            .connect_timeout(HELLO_TIMEOUT)
            .tcp_nodelay(true);
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
        let resp = tokio::time::timeout(HELLO_TIMEOUT, client.session(ReceiverStream::new(out_rx)))
            .await
            .map_err(|_| format!("agent {address}: no answer within {HELLO_TIMEOUT:?}"))?
            .map_err(|s| format!("agent {address}: refused the session: {}", s.message()))?;
        let mut rx = resp.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, rx.message()).await {
            Ok(Ok(Some(AgentMessage { msg: Some(AMsg::HelloAck(h)) }))) => h,
            Ok(Ok(Some(AgentMessage { msg: Some(AMsg::Error(e)) }))) => {
                return Err(format!("agent {address}: {}", e.message))
            }
            Ok(Ok(_)) => return Err(format!("agent {address}: unexpected answer to Hello")),
            Ok(Err(s)) => return Err(format!("agent {address}: {}", s.message())),
            Err(_) => return Err(format!("agent {address}: no Hello answer within {HELLO_TIMEOUT:?}")),
        };
        let mut s = AgentSession {
            address: address.to_string(),
            hello,
            clock_offset_ns: 0,
            clock_error_ns: 0,
            rtt_ns: 0,
            tx,
            rx: Some(rx),
        };
        s.sync_clock().await?;
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
        self.tx.send(cmd(m)).await.map_err(|_| format!("agent {}: session closed", self.address))
    }

    /// Hands the agent's message stream to the caller (once).
    pub fn take_stream(&mut self) -> Option<Streaming<AgentMessage>> {
        self.rx.take()
    }

    pub fn sender(&self) -> mpsc::Sender<CoordinatorMessage> {
        self.tx.clone()
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
