//! What the TCP proxies here ([`relay`](crate::relay) and
//! [`delay`](crate::delay)) are built on: the
//! accept loop that pairs every client with a connection of its own to the upstream, and a thread with its own
//! runtime to run a proxy on, so sync tests can use it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Accepts clients on `listener` until accepting fails. For each, on a task
/// of its own: connects to `upstream` (and drops the client if that fails),
/// turns Nagle off on both connections, and runs `relay(client, upstream)`.
pub(crate) fn accept_and_relay<F, Fut>(listener: TcpListener, upstream: SocketAddr, relay: F) -> JoinHandle<()>
where
    F: Fn(TcpStream, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let relay = Arc::new(relay);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let relay = relay.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay(client, server).await;
            });
        }
    })
}

/// A proxy running on a thread of its own, on a one-worker runtime.
/// Dropping it stops the accept loop and the runtime, which ends every
/// connection's tasks.
pub(crate) struct ProxyThread {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProxyThread {
    /// Runs `start` on the new thread's runtime: it binds, spawns the accept
    /// loop and answers where it listens (and the loop's handle), or why it
    /// cannot. `what` names the proxy in the error when the thread dies first.
    pub(crate) fn start<F, Fut>(what: &str, start: F) -> std::io::Result<ProxyThread>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<(SocketAddr, JoinHandle<()>)>>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                match start().await {
                    Ok((addr, accept)) => {
                        let _ = addr_tx.send(Ok(addr));
                        let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                        accept.abort();
                    }
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                    }
                }
            });
            // Dropping the runtime cancels every connection's tasks.
        });
        let addr = addr_rx.recv().map_err(|_| std::io::Error::other(format!("{what} thread died")))??;
        Ok(ProxyThread { addr, stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for ProxyThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
