//! Pulsar frame-normalising relay (see the crate docs for why).
//!
//! Frames: `[total u32][cmd_size u32][BaseCommand]` and, for commands with
//! a payload, `[magic 0x0e01][crc32c u32][meta_size u32][meta][payload]`
//! after the command, where magic and checksum are optional in the protocol.
//! Broker-to-client frames with a payload but no magic get both, the
//! checksum computed over `meta_size..end` as the protocol defines it.
//! Lookup answers are rewritten to point at the relay. Client-to-broker
//! bytes pass through unchanged.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, BytesMut};
use prost013::Message as _;
use pulsar::proto::{base_command::Type, BaseCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::proxy::accept_and_relay;

const MAGIC: u16 = 0x0e01;
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Starts a relay on `listen` (port 0 for a free one) to `upstream`.
pub async fn spawn(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let own_url = format!("pulsar://{local}");
    let handle = accept_and_relay(listener, upstream, move |client, broker| {
        let own_url = own_url.clone();
        async move {
            let (mut cr, mut cw) = client.into_split();
            let (br, bw) = broker.into_split();
            let up = tokio::spawn(async move {
                let mut bw = bw;
                let _ = tokio::io::copy(&mut cr, &mut bw).await;
                let _ = bw.shutdown().await;
            });
            let _ = normalise(br, &mut cw, &own_url).await;
            let _ = cw.shutdown().await;
            up.abort();
        }
    });
    Ok((local, handle))
}

async fn normalise<R, W>(mut from: R, to: &mut W, own_url: &str) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        // Rewrite every whole frame in the buffer, then flush once.
        while buf.len() >= 4 {
            let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if total > MAX_FRAME {
                return Err(std::io::Error::other("frame too large"));
            }
            if buf.len() < 4 + total {
                break;
            }
            let frame = buf.split_to(4 + total).freeze();
            rewrite(&frame[4..], &mut out, own_url);
        }
        if !out.is_empty() {
            to.write_all(&out).await?;
            out.clear();
        }
        if from.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Appends the normalised form of one frame body (`cmd_size` onwards).
fn rewrite(body: &[u8], out: &mut BytesMut, own_url: &str) {
    let mut b = body;
    if b.len() < 4 {
        put_frame(out, body);
        return;
    }
    let cmd_size = b.get_u32() as usize;
    if cmd_size > b.len() {
        put_frame(out, body);
        return;
    }
    let cmd_bytes = &b[..cmd_size];
    let rest = &b[cmd_size..];
    // Lookups (no payload): point the client back at the relay. Frames with
    // a payload are never lookups, so they skip the decode.
    if rest.is_empty() {
        if let Ok(mut c) = BaseCommand::decode(cmd_bytes) {
            if c.r#type == Type::LookupResponse as i32 {
                if let Some(l) = c.lookup_topic_response.as_mut() {
                    if l.broker_service_url.is_some() {
                        l.broker_service_url = Some(own_url.to_string());
                        let enc = c.encode_to_vec();
                        let mut nb = BytesMut::with_capacity(4 + enc.len());
                        nb.put_u32(enc.len() as u32);
                        nb.put_slice(&enc);
                        put_frame(out, &nb);
                        return;
                    }
                }
            }
        }
        put_frame(out, body);
        return;
    }
    if rest.len() >= 4 && !(rest.len() >= 2 && u16::from_be_bytes([rest[0], rest[1]]) == MAGIC) {
        let crc = crc32c::crc32c(rest);
        let mut nb = BytesMut::with_capacity(4 + cmd_size + 6 + rest.len());
        nb.put_u32(cmd_size as u32);
        nb.put_slice(cmd_bytes);
        nb.put_u16(MAGIC);
        nb.put_u32(crc);
        nb.put_slice(rest);
        put_frame(out, &nb);
        return;
    }
    put_frame(out, body);
}

fn put_frame(out: &mut BytesMut, body: &[u8]) {
    out.put_u32(body.len() as u32);
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cmd: &BaseCommand, payload: &[u8]) -> Vec<u8> {
        let enc = cmd.encode_to_vec();
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + enc.len() + payload.len()) as u32).to_be_bytes());
        v.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        v.extend_from_slice(&enc);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn adds_magic_and_crc_to_bare_payloads() {
        let cmd = BaseCommand { r#type: Type::Message as i32, ..Default::default() };
        let mut meta_and_payload = Vec::new();
        meta_and_payload.extend_from_slice(&3u32.to_be_bytes());
        meta_and_payload.extend_from_slice(b"abcHELLO");
        let f = frame(&cmd, &meta_and_payload);
        let mut out = BytesMut::new();
        rewrite(&f[4..], &mut out, "pulsar://x:1");
        assert_eq!(out.len(), f.len() + 6);
        let total = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        assert_eq!(total + 4, out.len());
        let cmd_len = cmd.encode_to_vec().len();
        let at = 8 + cmd_len;
        assert_eq!(&out[at..at + 2], &MAGIC.to_be_bytes());
        let crc = u32::from_be_bytes([out[at + 2], out[at + 3], out[at + 4], out[at + 5]]);
        assert_eq!(crc, crc32c::crc32c(&meta_and_payload));
        // Already normalised: unchanged.
        let mut again = BytesMut::new();
        rewrite(&out[4..], &mut again, "pulsar://x:1");
        assert_eq!(&again[..], &out[..]);
        // No payload: unchanged.
        let ping = frame(&BaseCommand { r#type: Type::Ping as i32, ..Default::default() }, &[]);
        let mut o = BytesMut::new();
        rewrite(&ping[4..], &mut o, "pulsar://x:1");
        assert_eq!(&o[..], &ping[..]);
    }

    #[test]
    fn rewrites_lookup_answers() {
        let cmd = BaseCommand {
            r#type: Type::LookupResponse as i32,
            lookup_topic_response: Some(pulsar::proto::CommandLookupTopicResponse {
                broker_service_url: Some("pulsar://127.0.0.1:6650".into()),
                request_id: 7,
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = frame(&cmd, &[]);
        let mut out = BytesMut::new();
        rewrite(&f[4..], &mut out, "pulsar://127.0.0.1:9999");
        let back = BaseCommand::decode(&out[8..]).expect("decode");
        assert_eq!(
            back.lookup_topic_response.and_then(|l| l.broker_service_url).as_deref(),
            Some("pulsar://127.0.0.1:9999")
        );
    }
}
