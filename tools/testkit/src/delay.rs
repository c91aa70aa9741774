//! A TCP proxy that adds a fixed one-way delay (netem is not at hand): every
//! chunk read from one side is written to the other `delay` after it was
//! read, in order, in both directions. Its own thread and runtime, so sync
//! tests can use it; dropping it closes the listener and every connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub struct DelayProxy {
    /// Where clients connect instead of the upstream address.
    pub addr: SocketAddr,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `upstream`, each way
    /// `delay` late.
    pub fn start(upstream: SocketAddr, delay: Duration) -> std::io::Result<DelayProxy> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr());
                let accept = tokio::spawn(async move {
                    while let Ok((client, _)) = listener.accept().await {
                        tokio::spawn(pipe(client, upstream, delay));
                    }
                });
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                accept.abort();
            });
            // Dropping the runtime cancels every connection's tasks.
        });
        let addr = addr_rx.recv().map_err(|_| std::io::Error::other("delay proxy thread died"))??;
        Ok(DelayProxy { addr, stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn pipe(client: TcpStream, upstream: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(one_way(cr, sw, delay), one_way(sr, cw, delay));
}

/// Copies `from` to `to`, each chunk `delay` after it was read; the end of
/// the stream (FIN) is passed on `delay` late too.
async fn one_way(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        // Dropping `tx` ends the writer after the last chunk.
    };
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(delay).await;
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: a round trip takes twice the delay,
    /// and bytes come back whole and in order.
    #[test]
    fn delays_each_way_and_keeps_order() {
        let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let upstream = echo.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = echo.accept() {
                let mut r = s.try_clone().expect("clone");
                let _ = std::io::copy(&mut r, &mut s);
            }
        });
        let proxy = DelayProxy::start(upstream, Duration::from_millis(50)).expect("proxy");
        let mut c = std::net::TcpStream::connect(proxy.addr).expect("connect");
        c.set_nodelay(true).expect("nodelay");
        use std::io::{Read, Write};
        let t0 = std::time::Instant::now();
        c.write_all(b"ping").expect("write");
        let mut back = [0u8; 4];
        c.read_exact(&mut back).expect("read");
        let rtt = t0.elapsed();
        assert_eq!(&back, b"ping");
        assert!(rtt >= Duration::from_millis(100) && rtt < Duration::from_millis(1000), "{rtt:?}");
        // Many small writes: all of them, in order.
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(1000) {
            c.write_all(chunk).expect("write");
        }
        let mut got = vec![0u8; data.len()];
        c.read_exact(&mut got).expect("read");
        assert_eq!(got, data);
    }
}
