//! Why a Pulsar connection failed. The `pulsar` crate answers a refused
//! handshake (a wrong token, TLS spoken to a plaintext port) with "fatal
//! error when connecting to the Pulsar server" and keeps the broker's reason
//! in its own log. After such a failure, and only then, one handshake of our
//! own names the cause: TCP connect, the TLS handshake for `pulsar+ssl://`,
//! then CONNECT (with the token) and the broker's first answer.

use std::sync::Arc;
use std::time::Duration;

use common::scenario::Tls;
use common::wire::tls::{provider, rustls, PemFile};
use prost013::Message as _;
use pulsar::message::proto::{base_command::Type, BaseCommand, CommandConnect, ServerError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// `pulsar://host:port` → (host, port, tls).
fn endpoint(url: &str) -> Option<(String, u16, bool)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("pulsar+ssl://") {
        (true, r)
    } else {
        (false, url.strip_prefix("pulsar://")?)
    };
    let authority = rest.split('/').next()?.split(',').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, if tls { 6651 } else { 6650 }),
    };
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port, tls))
}

/// The cause, in a few words, or None when our handshake goes through (the
/// failure was elsewhere) or cannot be tried.
pub async fn why_refused(url: &str, token: Option<&str>, tls: Option<&Tls>, within: Duration) -> Option<String> {
    tokio::time::timeout(within, probe(url, token, tls)).await.unwrap_or_else(|_| {
        Some(format!("no answer to the protocol handshake within {}", common::units::format_duration(within)))
    })
}

async fn probe(url: &str, token: Option<&str>, tls: Option<&Tls>) -> Option<String> {
    let (host, port, use_tls) = endpoint(url)?;
    let tcp = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot open a connection to {host}:{port}: {e}")),
    };
    let mut stream: Box<dyn Stream> = if use_tls {
        let config = client_config(tls)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
        match tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
            Ok(s) => Box::new(s),
            Err(e) => {
                return Some(format!(
                    "the TLS handshake with {host}:{port} failed ({e}); is that port the broker's TLS port?"
                ))
            }
        }
    } else {
        Box::new(tcp)
    };
    if let Err(e) = stream.write_all(&connect_frame(token)).await {
        return Some(format!("{host}:{port} closed the connection at the handshake: {e}"));
    }
    let mut head = [0u8; 8];
    if let Err(e) = stream.read_exact(&mut head).await {
        let plain_to_tls = !use_tls && e.kind() == std::io::ErrorKind::UnexpectedEof;
        return Some(if plain_to_tls {
            format!("{host}:{port} closed the connection at the handshake; is it a TLS port (pulsar+ssl://)?")
        } else {
            format!("{host}:{port} closed the connection at the handshake: {e}")
        });
    }
    let cmd_len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if cmd_len > 1 << 20 {
        return Some(format!("{host}:{port} does not speak the Pulsar protocol"));
    }
    let mut cmd = vec![0u8; cmd_len];
    stream.read_exact(&mut cmd).await.ok()?;
    let answer = BaseCommand::decode(cmd.as_slice()).ok()?;
    refusal(&answer, token)
}

/// CONNECT (with the token), framed as the broker reads it.
fn connect_frame(token: Option<&str>) -> Vec<u8> {
    let connect = BaseCommand {
        r#type: Type::Connect as i32,
        connect: Some(CommandConnect {
            client_version: "loadgen-probe".into(),
            protocol_version: Some(21),
            auth_method_name: token.map(|_| "token".to_string()),
            auth_data: token.map(|t| t.as_bytes().to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = connect.encode_to_vec();
    let mut frame = Vec::with_capacity(body.len() + 8);
    frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// The broker's reason in its first answer, if it refused.
fn refusal(answer: &BaseCommand, token: Option<&str>) -> Option<String> {
    match &answer.error {
        Some(err) => {
            let kind =
                ServerError::try_from(err.error).map(|k| format!("{k:?}")).unwrap_or_else(|_| err.error.to_string());
            let hint = match (ServerError::try_from(err.error), token) {
                (Ok(ServerError::AuthenticationError), Some(_)) => " (the token in broker.auth was refused)",
                (Ok(ServerError::AuthenticationError), None) => " (the broker wants a token: set broker.auth)",
                _ => "",
            };
            Some(format!("the broker refused the connection: {kind}: {}{hint}", err.message))
        }
        None => None,
    }
}

fn client_config(tls: Option<&Tls>) -> Option<rustls::ClientConfig> {
    // Without a CA file the crate used the system's roots, and with
    // allow_insecure no verification: nothing more precise for us to say.
    let tls = tls.filter(|t| !t.allow_insecure)?;
    let pem = PemFile::read("broker.tls.ca_file", std::path::Path::new(tls.ca_file.as_deref()?)).ok()?;
    let roots = pem.roots().ok()?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .ok()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("pulsar://127.0.0.1:6650"), Some(("127.0.0.1".into(), 6650, false)));
        assert_eq!(endpoint("pulsar+ssl://broker.example/"), Some(("broker.example".into(), 6651, true)));
        assert_eq!(endpoint("pulsar://a:1,b:2"), Some(("a".into(), 1, false)));
        assert_eq!(endpoint("http://x:1"), None);
    }
}
