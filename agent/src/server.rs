//! The agent's gRPC service: one session (one run) at a time. A second
//! coordinator is told "busy", not obeyed. When the session's stream ends,
//! or the coordinator says nothing (keepalive Pings included) for a lease,
//! all load stops and the agent is free for the next run. With a token,
//! every call must carry it (`safety::check_token`); shards are checked
//! against the broker allowlist and the rate cap before any connection.
//! With TLS (`tls::ServerTls`) the port speaks only TLS, and with mutual
//! TLS only to a client whose certificate the client CA signed.
//! Told to go (`AgentOptions::leave`, SIGTERM in the binary), the agent
//! reports not serving, each session stops its producers, drains its
//! consumers for `leave_drain`, sends its final report and `Leaving`, and
//! the server stops once no session is left.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use common::clock::{self, TimeBase};
use common::plan::Shard;
use common::proto::agent_server::{Agent, AgentServer};
use common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use common::scenario::BrokerKind;
use common::wire::{Token, HTTP2_KEEPALIVE_INTERVAL, HTTP2_KEEPALIVE_TIMEOUT, MAX_MESSAGE_BYTES};
use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;
use tracing::{debug, info, warn};

use crate::driver::danube::DanubeDriver;
use crate::driver::memory::{MemoryBroker, MemoryConfig, MemoryDriver};
use crate::driver::pulsar::PulsarDriver;
use crate::driver::DriverError;
use crate::engine::{self, Outbox, PreparedRun};
use crate::metrics::AgentMetrics;
use crate::safety::{self, ShardRefused};
use crate::tls::ServerTls;

/// How long an agent keeps running without a word from its coordinator.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Shortest lease: below it, a scheduling hiccup would end a healthy run.
pub const MIN_LEASE: Duration = Duration::from_millis(500);
/// How long a leaving agent's consumers keep receiving (`agent --leave-drain`).
pub const DEFAULT_LEAVE_DRAIN: Duration = Duration::from_secs(5);
/// How long a leaving agent takes at most before it exits at once
/// (`agent --leave-grace`): under Kubernetes' default 30 s grace period.
pub const DEFAULT_LEAVE_GRACE: Duration = Duration::from_secs(25);

#[derive(Clone)]
pub struct AgentOptions {
    pub agent_id: String,
    /// Shared by agents of one process; see `HelloAck.instance_id`.
    pub instance_id: String,
    pub memory: MemoryBroker,
    /// Required on every call (`authorization: Bearer <token>`); None: no check.
    pub token: Option<Token>,
    /// `host:port` of the brokers this agent may send to (normalised with
    /// `safety::normalize_allow_entry`); empty: any broker.
    pub allow_brokers: Vec<String>,
    /// Largest total producer rate (msg/s) of a shard this agent accepts.
    pub max_rate: Option<f64>,
    /// All load stops this long after the last message from the coordinator.
    pub lease: Duration,
    /// Counters and gauges for `/metrics` (`agent --metrics`), fed once per interval.
    pub metrics: AgentMetrics,
    /// Serve TLS (and with `mutual`, require a client certificate); None: plaintext.
    pub tls: Option<ServerTls>,
    /// Cancelled when the agent is told to go (SIGTERM): it leaves every
    /// session cleanly, takes no new one, and the server stops.
    pub leave: CancellationToken,
    /// How long a leaving session's consumers keep receiving.
    pub leave_drain: Duration,
}

impl AgentOptions {
    pub fn new(agent_id: impl Into<String>) -> AgentOptions {
        AgentOptions {
            agent_id: agent_id.into(),
            instance_id: process_instance_id(),
            memory: MemoryBroker::new(),
            token: None,
            allow_brokers: Vec::new(),
            max_rate: None,
            lease: DEFAULT_LEASE,
            metrics: AgentMetrics::new(),
            tls: None,
            leave: CancellationToken::new(),
            leave_drain: DEFAULT_LEAVE_DRAIN,
        }
    }
}

/// A random id for this process, the same for every agent in it.
pub fn process_instance_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::random::<u64>())).clone()
}

pub struct AgentService {
    opts: AgentOptions,
    busy: Arc<Semaphore>,
}

impl AgentService {
    pub fn new(opts: AgentOptions) -> AgentService {
        AgentService { opts, busy: Arc::new(Semaphore::new(1)) }
    }

    pub fn into_server(self) -> AgentServer<AgentService> {
        AgentServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// Serves the agent on `listener` until `shutdown` is cancelled, with the
/// standard gRPC health service beside it (`grpc.health.v1.Health`, for
/// Kubernetes `grpc:` probes; it needs no token).
pub async fn serve(
    listener: TcpListener,
    opts: AgentOptions,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    serve_with_health(listener, None, opts, shutdown).await
}

/// As [`serve`], and with `health`, the health service alone on a second
/// listener: plaintext, no token, no client certificate. Kubernetes `grpc:`
/// probes speak neither TLS nor mTLS, so an agent serving TLS on its main
/// port points its probes there (`agent --health-listen`). Both ports
/// report the same status.
pub async fn serve_with_health(
    listener: TcpListener,
    health: Option<TcpListener>,
    opts: AgentOptions,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter.set_serving::<AgentServer<AgentService>>().await;
    // Ends with the main server, whichever way that ends.
    let stop = shutdown.child_token();
    let health_task = health.map(|l| {
        let service = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let stop = stop.clone();
        tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(l), stop.cancelled_owned())
                .await;
            if let Err(e) = r {
                warn!(error = %e, "the health server failed");
            }
        })
    });
    let tls = opts.tls.clone();
    let auth = safety::check_token(opts.agent_id.clone(), opts.token.clone());
    let service = AgentService::new(opts);
    tokio::spawn(stop_when_left(service.opts.leave.clone(), service.busy.clone(), reporter, stop.clone()));
    let agent = InterceptedService::new(service.into_server(), auth);
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .add_service(health_service)
        .add_service(agent);
    let served = match tls {
        None => {
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.clone().cancelled_owned()).await
        }
        Some(tls) => {
            let incoming = crate::tls::incoming(listener, tls, stop.clone());
            router.serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()).await
        }
    };
    stop.cancel();
    if let Some(h) = health_task {
        let _ = h.await;
    }
    served
}

/// Once `leave` is cancelled: health says not serving (readiness fails,
/// no new coordinator picks this agent), and when no session is left
/// (`busy` is free; the permit is kept, so none starts) the server stops.
async fn stop_when_left(
    leave: CancellationToken,
    busy: Arc<Semaphore>,
    reporter: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = leave.cancelled() => {}
        _ = stop.cancelled() => return,
    }
    reporter.set_not_serving::<AgentServer<AgentService>>().await;
    reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    let _permit = tokio::select! {
        p = busy.acquire_owned() => p,
        _ = stop.cancelled() => return,
    };
    info!("left: no session open; stopping the server");
    stop.cancel();
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<AgentMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<CoordinatorMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "?".into());
        if self.opts.leave.is_cancelled() {
            warn!(%peer, "refused a session: leaving");
            return Err(Status::unavailable(format!("agent {} is leaving (told to go)", self.opts.agent_id)));
        }
        let permit = self.busy.clone().try_acquire_owned().map_err(|_| {
            warn!(%peer, "refused a session: a run is in progress");
            Status::resource_exhausted(format!("agent {} is busy with another coordinator's run", self.opts.agent_id))
        })?;
        info!(%peer, "session opened");
        let (tx, rx) = mpsc::channel(1024);
        let opts = self.opts.clone();
        let inbound = request.into_inner();
        let peer2 = peer.clone();
        tokio::spawn(async move {
            run_session(opts, inbound, tx, &peer2).await;
            drop(permit);
            info!(%peer, "session closed");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn err_msg(phase: &str, message: String, fatal: bool) -> AgentMessage {
    AgentMessage { msg: Some(AMsg::Error(proto::AgentError { phase: phase.into(), message, fatal })) }
}

/// Sends to the coordinator; false when it is gone or has not read for
/// `within` (a frozen coordinator must not hold the session loop, and with
/// it the lease, forever).
async fn send(tx: &Outbox, m: AgentMessage, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, tx.send(Ok(m))).await, Ok(Ok(())))
}

/// How long the end of a session waits for its run's tasks to stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

async fn run_session(opts: AgentOptions, inbound: Streaming<CoordinatorMessage>, tx: Outbox, peer: &str) {
    let lease = opts.lease;
    let mut s = Session { opts, tx, peer, lease, said_hello: false, run: None, finishing: None, time: None };
    let mut inbound = inbound;
    let leave = s.opts.leave.clone();
    loop {
        let next = tokio::select! {
            biased;
            _ = leave.cancelled() => None,
            m = s.next(&mut inbound) => Some(m),
        };
        let Some(next) = next else {
            s.leave().await;
            break;
        };
        let Some(msg) = next else { break };
        let go_on = match msg {
            CMsg::Hello(h) => s.hello(&h).await,
            CMsg::Ping(p) => {
                let pong = proto::Pong { seq: p.seq, coordinator_ns: p.coordinator_ns, agent_ns: clock::now_ns() };
                s.say(AMsg::Pong(pong)).await
            }
            CMsg::Prepare(p) => s.prepare(&p).await,
            CMsg::Start(st) => s.start(st.start_at_ns).await,
            // Kept through the drain after Stop, when consumers still stamp.
            CMsg::Clock(c) => {
                if let Some(t) = &s.time {
                    t.set_offset_ns(c.clock_offset_ns);
                    debug!(offset_ns = c.clock_offset_ns, error_ns = c.error_ns, "clock offset corrected");
                }
                true
            }
            // An interrupted run: the load stops, consumers drain until Stop.
            CMsg::StopProducers(sp) => {
                if let Some(r) = &s.run {
                    info!(reason = %sp.reason, "stopping the producers");
                    r.stop_producers();
                }
                true
            }
            CMsg::Control(c) => {
                let refused = match s.run.as_mut() {
                    Some(r) => r.control(&c).err().unwrap_or_default(),
                    None => "no run is going on here".into(),
                };
                if !refused.is_empty() {
                    warn!(id = c.id, %refused, "run control refused");
                }
                s.say(AMsg::ControlAck(proto::ControlAck { id: c.id, refused })).await
            }
            CMsg::Stop(st) => {
                if let Some(r) = s.run.take() {
                    info!(reason = %st.reason, abort = st.abort, "stopping");
                    s.finishing = Some(tokio::spawn(r.finish(st.abort)));
                }
                true
            }
        };
        if !go_on {
            break;
        }
    }
    s.end().await;
}

/// One coordinator's session with this agent: what it has said and the
/// run it prepared. Each handler answers one command and says whether the
/// session goes on.
struct Session<'a> {
    opts: AgentOptions,
    tx: Outbox,
    peer: &'a str,
    /// The coordinator may ask for a shorter lease in Hello, never a longer one.
    lease: Duration,
    said_hello: bool,
    run: Option<PreparedRun>,
    finishing: Option<tokio::task::JoinHandle<()>>,
    /// The prepared run's time base, for clock corrections.
    time: Option<TimeBase>,
}

impl Session<'_> {
    /// The next command; None when the stream ends, fails or the lease runs out.
    async fn next(&mut self, inbound: &mut Streaming<CoordinatorMessage>) -> Option<CMsg> {
        loop {
            let peer = self.peer;
            let msg = match tokio::time::timeout(self.lease, inbound.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    warn!(%peer, error = %e, "coordinator stream failed; stopping load");
                    return None;
                }
                Ok(None) => return None,
                Err(_) => {
                    warn!(%peer, lease = ?self.lease, "no word from the coordinator within the lease; stopping all load");
                    return None;
                }
            };
            match msg.msg {
                Some(m) => return Some(m),
                None => {
                    let _ = self.error("session", "empty or unknown command (newer coordinator?)".into(), false).await;
                }
            }
        }
    }

    async fn say(&mut self, m: AMsg) -> bool {
        send(&self.tx, AgentMessage { msg: Some(m) }, self.lease).await
    }

    /// Tells the coordinator what went wrong; false when it is gone.
    async fn error(&mut self, phase: &str, message: String, fatal: bool) -> bool {
        send(&self.tx, err_msg(phase, message, fatal), self.lease).await
    }

    async fn hello(&mut self, h: &proto::Hello) -> bool {
        if h.protocol_version != common::PROTOCOL_VERSION {
            let why = format!(
                "protocol version {} is not supported (this agent speaks {})",
                h.protocol_version,
                common::PROTOCOL_VERSION
            );
            let _ = self.error("hello", why, true).await;
            return false;
        }
        if h.lease_ms > 0 {
            self.lease = self.lease.min(Duration::from_millis(h.lease_ms).max(MIN_LEASE));
        }
        self.said_hello = true;
        let ack = proto::HelloAck {
            protocol_version: common::PROTOCOL_VERSION,
            agent_id: self.opts.agent_id.clone(),
            hostname: hostname(),
            version: common::VERSION.into(),
            instance_id: self.opts.instance_id.clone(),
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            drivers: vec![
                BrokerKind::Memory.as_str().into(),
                BrokerKind::Pulsar.as_str().into(),
                BrokerKind::Danube.as_str().into(),
            ],
            lease_ms: self.lease.as_millis() as u64,
        };
        self.say(AMsg::HelloAck(ack)).await
    }

    async fn prepare(&mut self, p: &proto::Prepare) -> bool {
        if !self.said_hello {
            let _ = self.error("prepare", "Prepare before Hello".into(), true).await;
            return false;
        }
        if self.run.is_some() || self.finishing.is_some() {
            let _ = self.error("prepare", "a run is already prepared in this session".into(), true).await;
            return false;
        }
        match prepare(&self.opts, p, self.tx.clone()).await {
            Ok(r) => {
                self.time = Some(r.time());
                let (producers, consumers) = r.counts();
                self.run = Some(r);
                self.say(AMsg::Ready(proto::Ready { producers, consumers })).await
            }
            Err(e) => {
                let peer = self.peer;
                warn!(%peer, error = %e, "prepare refused or failed");
                let _ = self.error("prepare", e.to_string(), true).await;
                true
            }
        }
    }

    async fn start(&mut self, start_at_ns: i64) -> bool {
        match &self.run {
            Some(r) => r.start(start_at_ns),
            None => {
                let _ = self.error("start", "Start before a successful Prepare".into(), true).await;
            }
        }
        true
    }

    /// The agent was told to go: the run prepared here stops its producers,
    /// drains its consumers (`leave_drain`) and sends its final report (or
    /// the final report a Stop began goes out), then `Leaving` tells the
    /// coordinator the session ends.
    async fn leave(&mut self) {
        let peer = self.peer;
        let drain = self.opts.leave_drain;
        let at_ns = self.time.as_ref().map(TimeBase::now_ns).unwrap_or(0);
        info!(%peer, drain = ?drain, "told to go: producers stop, consumers drain, then the final report");
        if let Some(r) = self.run.take() {
            r.leave(drain).await;
        } else if let Some(mut f) = self.finishing.take() {
            if tokio::time::timeout(drain + STOP_GRACE, &mut f).await.is_err() {
                warn!(%peer, "the final report could not be delivered before leaving");
                f.abort();
            }
        }
        let reason = "the agent was told to go (SIGTERM)".to_string();
        if !self.say(AMsg::Leaving(proto::Leaving { reason, at_ns })).await {
            warn!(%peer, "the coordinator did not take the leaving message");
        }
    }

    /// Session over: stop all load (and wait for it to stop), let a pending
    /// final report go out if it can within the grace.
    async fn end(mut self) {
        if let Some(r) = self.run.take() {
            r.abort_and_wait(STOP_GRACE).await;
        }
        if let Some(mut f) = self.finishing.take() {
            if tokio::time::timeout(STOP_GRACE, &mut f).await.is_err() {
                let peer = self.peer;
                warn!(%peer, "the final report could not be delivered; stopping the run");
                f.abort();
            }
        }
    }
}

/// Why a Prepare failed; the message goes back to the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("shard format `{0}` is not supported")]
    Format(String),
    /// The shard does not decode (the message says where).
    #[error("{0}")]
    Shard(String),
    #[error(transparent)]
    Refused(#[from] ShardRefused),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

async fn prepare(opts: &AgentOptions, p: &proto::Prepare, tx: Outbox) -> Result<PreparedRun, PrepareError> {
    if p.shard_format != common::SHARD_FORMAT_JSON_V1 {
        return Err(PrepareError::Format(p.shard_format.clone()));
    }
    let shard = Shard::from_json(&p.shard).map_err(|e| PrepareError::Shard(e.to_string()))?;
    // Before any connection to the broker.
    safety::check_shard(&shard, &opts.allow_brokers, opts.max_rate)?;
    let time = TimeBase::new(p.clock_offset_ns);
    let sc = &shard.scenario;
    match sc.broker.kind {
        BrokerKind::Memory => {
            let cfg = MemoryConfig {
                capacity_msgs_per_s: sc.broker.capacity_msgs_per_s,
                latency: sc.broker.latency,
                ack_latency: sc.broker.ack_latency,
                drop_every: sc.broker.drop_every,
                duplicate_every: sc.broker.duplicate_every,
                misroute_every: sc.broker.misroute_every,
                stall_after: sc.broker.stall_after,
                max_backlog: sc.broker.max_backlog,
            };
            let driver = Arc::new(MemoryDriver::new(opts.memory.clone(), &shard.run_id, cfg));
            let d2 = driver.clone();
            engine::prepare(
                driver,
                shard,
                time,
                tx,
                Box::new(move || d2.cleanup()),
                opts.metrics.clone(),
                opts.max_rate,
            )
            .await
            .map_err(PrepareError::from)
        }
        BrokerKind::Pulsar => {
            let driver = PulsarDriver::connect(&sc.broker, &shard.run_id).await?;
            Ok(engine::prepare(Arc::new(driver), shard, time, tx, Box::new(|| {}), opts.metrics.clone(), opts.max_rate)
                .await?)
        }
        BrokerKind::Danube => {
            let driver = DanubeDriver::connect(&sc.broker, &shard.run_id).await?;
            Ok(engine::prepare(Arc::new(driver), shard, time, tx, Box::new(|| {}), opts.metrics.clone(), opts.max_rate)
                .await?)
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
