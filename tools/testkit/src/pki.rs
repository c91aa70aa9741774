//! Test certificates made on the spot (rcgen on ring), written as PEM
//! files: a CA, an agent (server) certificate for 127.0.0.1 and
//! localhost, a client certificate from the same CA, and an unrelated
//! second CA with a client certificate of its own.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Paths of the PEM files (UTF-8, ready to pass as flags).
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: String,
    pub agent_cert: String,
    pub agent_key: String,
    pub client_cert: String,
    pub client_key: String,
    pub other_ca: String,
    pub other_client_cert: String,
    pub other_client_key: String,
}

fn new_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(p, KeyPair::generate()?)
}

/// A certificate signed by `ca` for `sans`: (certificate PEM, key PEM).
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), rcgen::Error> {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<String> {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, text)?;
    p.to_str().map(str::to_string).ok_or_else(|| std::io::Error::other("not UTF-8"))
}

impl Pki {
    /// Makes the certificates and writes them into `dir` (which must exist).
    pub fn generate(dir: &Path) -> std::io::Result<Pki> {
        let gen = || -> Result<_, rcgen::Error> {
            let ca = new_ca("loadgen test CA")?;
            let other = new_ca("some other CA")?;
            let agent = leaf(&ca, "loadgen-agent", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth)?;
            let client = leaf(&ca, "loadgen-coordinator", &[], ExtendedKeyUsagePurpose::ClientAuth)?;
            let intruder = leaf(&other, "intruder", &[], ExtendedKeyUsagePurpose::ClientAuth)?;
            Ok((ca.pem(), other.pem(), agent, client, intruder))
        };
        let (ca, other, agent, client, intruder) = gen().map_err(std::io::Error::other)?;
        Ok(Pki {
            ca: write(dir, "ca.crt", &ca)?,
            agent_cert: write(dir, "agent.crt", &agent.0)?,
            agent_key: write(dir, "agent.key", &agent.1)?,
            client_cert: write(dir, "client.crt", &client.0)?,
            client_key: write(dir, "client.key", &client.1)?,
            other_ca: write(dir, "other-ca.crt", &other)?,
            other_client_cert: write(dir, "other-client.crt", &intruder.0)?,
            other_client_key: write(dir, "other-client.key", &intruder.1)?,
        })
    }
}
