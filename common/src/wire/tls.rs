//! TLS between coordinator and agents, the parts both ends use: PEM files
//! named by the flag that gave them, the one crypto provider (ring), and
//! the client settings the coordinator dials agents with (`--tls-ca`, and
//! `--tls-cert`/`--tls-key` for mutual TLS). The agent's server side
//! (`agent --tls-cert`) builds on these in the agent crate. Imports
//! nothing of the crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

pub use tokio_rustls::rustls;

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

impl TlsError {
    /// `cert` and `key` do not go together (or rustls refused them).
    pub fn identity(cert: &PemFile, key: &PemFile, e: impl std::fmt::Display) -> TlsError {
        TlsError::Identity {
            cert_flag: cert.flag,
            cert: cert.name(),
            key_flag: key.flag,
            key: key.name(),
            reason: e.to_string(),
        }
    }
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

    /// The path, for messages.
    pub fn name(&self) -> String {
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
            builder.with_client_auth_cert(cert.certs()?, key.key()?).map_err(|e| TlsError::identity(cert, key, e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
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
