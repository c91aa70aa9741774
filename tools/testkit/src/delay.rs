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

use crate::proxy::{accept_and_relay, ProxyThread};

pub struct DelayProxy {
    /// Where clients connect instead of the upstream address.
    pub addr: SocketAddr,
    _thread: ProxyThread,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `upstream`, each way
    /// `delay` late.
    pub fn start(upstream: SocketAddr, delay: Duration) -> std::io::Result<DelayProxy> {
        let thread = ProxyThread::start("delay proxy", move || async move {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = listener.local_addr()?;
            Ok((addr, accept_and_relay(listener, upstream, move |client, server| pipe(client, server, delay))))
        })?;
        Ok(DelayProxy { addr: thread.addr, _thread: thread })
    }
}

async fn pipe(client: TcpStream, server: TcpStream, delay: Duration) {
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
