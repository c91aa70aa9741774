//! A plain TCP relay: every client gets a connection of its own to the
//! upstream, bytes copied both ways as they come. On any address (a test
//! network namespace's remote address, not only loopback). Its own thread
//! and runtime, so sync tests can use it; dropping it closes the listener
//! and every connection.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::proxy::{accept_and_relay, ProxyThread};

pub struct Relay {
    /// Where clients connect instead of the upstream address.
    pub addr: SocketAddr,
    _thread: ProxyThread,
}

impl Relay {
    /// Listens on `listen` (port 0: a free one) and forwards to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<Relay> {
        let thread = ProxyThread::start("relay", move || async move {
            let listener = TcpListener::bind(listen).await?;
            let addr = listener.local_addr()?;
            Ok((
                addr,
                accept_and_relay(listener, upstream, |mut client, mut server| async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }),
            ))
        })?;
        Ok(Relay { addr: thread.addr, _thread: thread })
    }
}
