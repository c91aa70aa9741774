//! Optional TLS on the agent's gRPC port (`agent --tls-cert --tls-key`)
//! and mutual TLS (`--tls-client-ca`: only a coordinator whose certificate
//! that CA signed gets past the handshake). rustls with ring.
//!
//! The handshake is done here rather than by tonic's `tls_config`, which
//! drops a failed handshake with a debug line: an agent logs every refused
//! connection (a plaintext client, no or an untrusted client certificate)
//! with the peer address, as it does a refused token. The PEM loading is
//! shared with the coordinator's side (`coordinator run --tls-ca ...`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use tokio_rustls::rustls;

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate, key or CA file that cannot be used; the message names
/// the flag and the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    #[error("{flag} {path}: cannot read it: {reason}")]
    Read { flag: &'static str, path: String, reason: String },
    #[error("{flag} {path}: not valid PEM: {reason}")]
    BadPem { flag: &'static str, path: String, reason: String },
    #[error("{flag} {path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { flag: &'static str, path: String },
    #[error("{flag} {path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { flag: &'static str, path: String },
    #[error("{flag} {path}: not a usable CA certificate: {reason}")]
    BadCa { flag: &'static str, path: String, reason: String },
    #[error("{cert_flag} {cert} and {key_flag} {key} do not make a certificate and its key: {reason}")]
    Identity { cert_flag: &'static str, cert: String, key_flag: &'static str, key: String, reason: String },
}

/// A PEM file named by a flag, read once.
#[derive(Clone)]
pub struct PemFile {
    pub flag: &'static str,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: a key file is a secret.
        write!(f, "PemFile({} {})", self.flag, self.path.display())
    }
}

impl PemFile {
    pub fn read(flag: &'static str, path: &Path) -> Result<PemFile, TlsError> {
        let bytes = std::fs::read(path).map_err(|e| TlsError::Read {
            flag,
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(PemFile { flag, path: path.to_path_buf(), bytes })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Every certificate in the file, in order (a chain: leaf first).
    pub fn certs(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs = CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadPem { flag: self.flag, path: self.name(), reason: e.to_string() })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate { flag: self.flag, path: self.name() });
        }
        Ok(certs)
    }

    /// The first private key in the file.
    pub fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { flag: self.flag, path: self.name() },
            e => TlsError::BadPem { flag: self.flag, path: self.name(), reason: e.to_string() },
        })
    }

    /// The file's certificates as trust anchors (each must parse as a CA).
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in self.certs()? {
            roots.add(c).map_err(|e| TlsError::BadCa { flag: self.flag, path: self.name(), reason: e.to_string() })?;
        }
        Ok(roots)
    }
}

/// The one crypto provider: ring (aws-lc-rs would need a C toolchain).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn identity_error(cert: &PemFile, key: &PemFile, e: impl std::fmt::Display) -> TlsError {
    TlsError::Identity {
        cert_flag: cert.flag,
        cert: cert.name(),
        key_flag: key.flag,
        key: key.name(),
        reason: e.to_string(),
    }
}

/// A client's TLS settings (the coordinator's `--tls-ca`, and
/// `--tls-cert`/`--tls-key`): trust only `ca`; present `identity` when
/// given. Every file is checked (the key must be the certificate's).
pub fn client_config(ca: &PemFile, identity: Option<(&PemFile, &PemFile)>) -> Result<rustls::ClientConfig, TlsError> {
    let roots = ca.roots()?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadCa { flag: ca.flag, path: ca.name(), reason: e.to_string() })?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => {
            builder.with_client_auth_cert(cert.certs()?, key.key()?).map_err(|e| identity_error(cert, key, e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

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
            .map_err(|e| identity_error(cert, key, e))?;
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
        let mut config: ServerConfig = builder.with_single_cert(chain, k).map_err(|e| identity_error(cert, key, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(flag: &'static str, text: &str) -> PemFile {
        PemFile { flag, path: PathBuf::from(format!("/x/{flag}.pem")), bytes: text.as_bytes().to_vec() }
    }

    #[test]
    fn files_that_are_not_pem_are_named_in_the_error() {
        let e = PemFile::read("--tls-cert", Path::new("/nonexistent/agent.crt")).unwrap_err();
        assert!(e.to_string().starts_with("--tls-cert /nonexistent/agent.crt: cannot read it: "), "{e}");
        let junk = pem("--tls-cert", "hello\n");
        assert_eq!(
            junk.certs().unwrap_err(),
            TlsError::NoCertificate { flag: "--tls-cert", path: "/x/--tls-cert.pem".into() }
        );
        assert!(matches!(junk.key().unwrap_err(), TlsError::NoKey { .. }));
        let cut = pem("--tls-client-ca", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        let e = cut.certs().unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e}");
        assert!(e.to_string().contains("--tls-client-ca /x/--tls-client-ca.pem"), "{e}");
        let not_der = pem("--tls-client-ca", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
        assert!(matches!(not_der.roots().unwrap_err(), TlsError::BadCa { .. }));
    }
}
