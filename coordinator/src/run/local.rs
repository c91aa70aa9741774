//! In-process agents on loopback, sharing one memory broker: what
//! `coordinator run` drives without `--agents`. Imports nothing of the run.

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::CliError;

/// Local in-process agents on loopback, sharing one memory broker.
pub struct LocalAgents {
    pub addresses: Vec<String>,
    shutdown: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalAgents {
    pub async fn start(n: usize) -> Result<LocalAgents, CliError> {
        let memory = agent::driver::memory::MemoryBroker::new();
        let shutdown = CancellationToken::new();
        let mut addresses = Vec::new();
        let mut handles = Vec::new();
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| CliError::CannotComplete(format!("cannot start local agent {i}: {e}")))?;
            let addr = listener.local_addr().map_err(|e| CliError::CannotComplete(e.to_string()))?;
            addresses.push(addr.to_string());
            let mut opts = agent::AgentOptions::new(format!("local-{i}"));
            opts.memory = memory.clone();
            let sd = shutdown.clone();
            handles.push(tokio::spawn(async move {
                if let Err(e) = agent::serve(listener, opts, sd).await {
                    warn!(error = %e, "local agent failed");
                }
            }));
        }
        Ok(LocalAgents { addresses, shutdown, handles })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}
