//! What the agent's integration tests share: an agent served in-process on
//! a free loopback port, stopped by its token.

#![allow(dead_code)] // each test file uses its part

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An agent serving on 127.0.0.1 until `stop` is cancelled.
pub struct TestAgent {
    pub addr: SocketAddr,
    /// The health service's own port, when asked for.
    pub health_addr: Option<SocketAddr>,
    pub stop: CancellationToken,
    pub served: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestAgent {
    /// `http://` and the agent's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// Serves an agent with `opts` on a free port.
pub async fn start_agent(opts: agent::AgentOptions) -> TestAgent {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let s = stop.clone();
    let served = tokio::spawn(async move { agent::serve(listener, opts, s).await });
    TestAgent { addr, health_addr: None, stop, served }
}

/// Serves an agent with `opts` on a free port, and its health service
/// alone on another (`agent --health-listen`).
pub async fn start_agent_with_health(opts: agent::AgentOptions) -> TestAgent {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("addr");
    let health = loopback().await;
    let health_addr = health.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let s = stop.clone();
    let served = tokio::spawn(async move { agent::serve_with_health(listener, Some(health), opts, s).await });
    TestAgent { addr, health_addr: Some(health_addr), stop, served }
}
