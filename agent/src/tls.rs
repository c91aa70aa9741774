//! Optional TLS on the agent's gRPC port (`agent --tls-cert --tls-key`)
//! and mutual TLS (`--tls-client-ca`: only a coordinator whose certificate
//! that CA signed gets past the handshake). rustls with ring.
//!
//! The handshake is done here rather than by tonic's `tls_config`, which
//! drops a failed handshake with a debug line: an agent logs every refused
//! connection (a plaintext client, no or an untrusted client certificate)
//! with the peer address, as it does a refused token. The PEM loading and
//! the client side (`coordinator run --tls-ca ...`) are `common::wire::tls`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::wire::tls::{provider, rustls, PemFile, TlsError};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's TLS settings, checked: serve TLS with a certificate, and
/// with `mutual` require a client certificate from the client CA.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// Clients must present a certificate signed by `--tls-client-ca`.
    pub mutual: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls {{ mutual: {} }}", self.mutual)
    }
}

impl ServerTls {
    /// `--tls-cert`, `--tls-key` and optionally `--tls-client-ca`; every
    /// file is read and checked now (a startup error names the file).
    pub fn from_files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTls, TlsError> {
        let cert = PemFile::read("--tls-cert", cert)?;
        let key = PemFile::read("--tls-key", key)?;
        let ca = client_ca.map(|p| PemFile::read("--tls-client-ca", p)).transpose()?;
        ServerTls::from_pem(&cert, &key, ca.as_ref())
    }

    pub fn from_pem(cert: &PemFile, key: &PemFile, client_ca: Option<&PemFile>) -> Result<ServerTls, TlsError> {
        let (chain, k) = (cert.certs()?, key.key()?);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::identity(cert, key, e))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider())
                        .build()
                        .map_err(|e| TlsError::BadCa { flag: ca.flag, path: ca.name(), reason: e.to_string() })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config: ServerConfig =
            builder.with_single_cert(chain, k).map_err(|e| TlsError::identity(cert, key, e))?;
        // gRPC is HTTP/2; tonic's client insists on h2 by ALPN.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(config)), mutual: client_ca.is_some() })
    }
}

/// Why a handshake failed, in words for the log.
pub fn refusal_reason(e: &io::Error) -> &'static str {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidMessage(_)) => "not a TLS client (plaintext?)",
        Some(rustls::Error::NoCertificatesPresented) => "no client certificate",
        Some(rustls::Error::InvalidCertificate(_)) => "client certificate not trusted",
        Some(rustls::Error::AlertReceived(_)) => "the client gave up on the handshake (does it trust this agent?)",
        Some(rustls::Error::PeerIncompatible(_)) => "no TLS version or cipher in common",
        Some(_) => "TLS handshake failed",
        None => "connection closed during the TLS handshake",
    }
}

/// The connections `listener` accepts, each after a TLS handshake, for
/// tonic's `serve_with_incoming`. Handshakes run side by side (a slow
/// client holds up nobody) and at most [`HANDSHAKE_TIMEOUT`]; a failed one
/// is logged with the peer address and the connection dropped. Ends when
/// `shutdown` is cancelled or the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    tls: ServerTls,
    shutdown: CancellationToken,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: pause, go on.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let (acceptor, tx) = (tls.acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                        warn!(%peer, reason = refusal_reason(&e), error = %e, "refused a connection: TLS handshake failed");
                    }
                    // A TCP check or a port scan: no TLS spoken at all.
                    Ok(Err(e)) => info!(%peer, reason = refusal_reason(&e), error = %e, "connection closed before TLS"),
                    Err(_) => {
                        warn!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "refused a connection: no TLS handshake in time")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
