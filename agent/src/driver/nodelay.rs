//! TCP_NODELAY on the `pulsar` crate's broker connections.
//!
//! The crate (6.9.1, the newest) never sets TCP_NODELAY, so Nagle's
//! algorithm holds each small send until the broker's delayed ACK of the
//! previous one: measured on Apache Pulsar standalone at 5,000 msg/s, the
//! e2e p50 was 11.1 ms against pulsar-perf's 8.5–9.5 ms (Apache's Java
//! client sets `TCP_NODELAY` by default). The crate gives no hook on its
//! sockets, so the driver sets the option from outside: it takes a
//! duplicate of each of this process's connected TCP sockets through
//! `pidfd_getfd` (the duplicate shares the socket, so the option holds for
//! the crate's descriptor too) and switches Nagle off where it is on. A
//! sweep runs after the client, each producer and each consumer is made,
//! and every second while the driver lives, for connections the crate makes
//! again after losing the broker. The agent's other connections (its gRPC
//! server's, danube-client's) get the option too, which suits them: each
//! write there is a whole message someone waits for. Listeners and non-TCP
//! descriptors are left alone.
//!
//! Linux only (5.6+); where the kernel or a seccomp profile refuses
//! `pidfd_getfd`, the first sweep logs one warning and latency then
//! includes Nagle's delays, as before.

use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

/// How often connections made since the last sweep get TCP_NODELAY.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Sets TCP_NODELAY on every connected TCP socket of this process that does
/// not have it; returns how many it changed.
#[cfg(target_os = "linux")]
pub fn sweep() -> std::io::Result<usize> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

    let me = pidfd_open(getpid(), PidfdFlags::empty())?;
    let mut changed = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(entry) = entry else { continue };
        // Only sockets (the link reads "socket:[inode]"); a descriptor closed
        // since the listing is skipped.
        let is_socket = std::fs::read_link(entry.path())
            .map(|l| l.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
            .unwrap_or(false);
        let Some(raw) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if !is_socket {
            continue;
        }
        let fd = match pidfd_getfd(&me, raw, PidfdGetfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::BADF) => continue,
            Err(e) => return Err(e.into()),
        };
        let tcp = matches!(sockopt::socket_domain(&fd), Ok(AddressFamily::INET | AddressFamily::INET6))
            && matches!(sockopt::socket_type(&fd), Ok(SocketType::STREAM));
        let connected = matches!(rustix::net::getpeername(&fd), Ok(Some(_)));
        let nagle_on = tcp && connected && !sockopt::tcp_nodelay(&fd).unwrap_or(true);
        if nagle_on && sockopt::set_tcp_nodelay(&fd, true).is_ok() {
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(not(target_os = "linux"))]
pub fn sweep() -> std::io::Result<usize> {
    Ok(0)
}

/// One sweep now; a refusal is logged once per process.
pub fn sweep_logged() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    match sweep() {
        Ok(0) => {}
        Ok(n) => tracing::debug!(sockets = n, "TCP_NODELAY set on broker connections"),
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    error = %e,
                    "cannot set TCP_NODELAY on the pulsar crate's connections (pidfd_getfd refused): \
                     latency includes Nagle's delays"
                );
            }
        }
    }
}

/// Sweeps every [`SWEEP_EVERY`] until dropped.
pub fn keep_sweeping() -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Blocking syscalls, a few per descriptor: off the runtime's workers.
            let _ = tokio::task::spawn_blocking(sweep_logged).await;
        }
    }))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sets_nodelay_on_connected_tcp_sockets_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.set_nodelay(false).expect("nodelay off");
        server.set_nodelay(false).expect("nodelay off");
        assert!(!client.nodelay().expect("read"));

        let changed = sweep().expect("pidfd_getfd works on this kernel");
        assert!(changed >= 2, "both ends of the connection: {changed}");
        assert!(client.nodelay().expect("read"), "the original descriptor sees the option");
        assert!(server.nodelay().expect("read"));
    }
}
