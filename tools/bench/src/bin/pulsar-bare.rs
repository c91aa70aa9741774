//! The bare `pulsar`-crate loop the agent is measured against (benchmark P1):
//! N producers on one client, each keeping at most W sends in flight
//! (W = 1: strict send-and-await), fixed-size payloads, for a fixed time.
//! No stamps, no histograms, no accounting: just what the client can push.
//!
//!   pulsar-bare --url pulsar://127.0.0.1:6650 --topic t --producers 4 \
//!               --in-flight 1 --size 1024 --seconds 20 [--batch 100 --batch-delay-ms 5]
//!               [--property-bytes 26] [--nodelay 1]
//!
//! `--property-bytes N` attaches one message property with an N-byte value
//! (the agent's stamp property value is typically 26 bytes, under `lg-stamp`), to
//! tell the crate's cost of carrying it from the agent's own.
//!
//! Prints one JSON line: acknowledged messages, errors, seconds, rate.
use std::time::{Duration, Instant};

use bench::{fail, run_loops, Flags};
use futures::stream::{FuturesUnordered, StreamExt};
use pulsar::{Producer, ProducerOptions, Pulsar, TokioExecutor};

struct Args {
    url: String,
    topic: String,
    producers: usize,
    in_flight: usize,
    size: usize,
    seconds: f64,
    batch: Option<u32>,
    batch_delay_ms: u64,
    property_bytes: usize,
    /// TCP_NODELAY on the crate's connections, as the agent sets it by
    /// default (the crate itself leaves Nagle's algorithm on).
    nodelay: bool,
}

const BIN: &str = "pulsar-bare";

fn args() -> Result<Args, String> {
    let f = Flags::from_env();
    Ok(Args {
        url: f.required("--url")?,
        topic: f.required("--topic")?,
        producers: f.num("--producers", 1.0)? as usize,
        in_flight: f.num("--in-flight", 1.0)?.max(1.0) as usize,
        size: f.num("--size", 1024.0)? as usize,
        seconds: f.num("--seconds", 20.0)?,
        batch: f.get("--batch").map(|s| s.parse().map_err(|_| "--batch: not a number".to_string())).transpose()?,
        batch_delay_ms: f.num("--batch-delay-ms", 5.0)? as u64,
        property_bytes: f.num("--property-bytes", 0.0)? as usize,
        nodelay: f.get("--nodelay").is_some_and(|v| v != "0" && v != "false"),
    })
}

async fn producer_loop(
    mut p: Producer<TokioExecutor>,
    in_flight: usize,
    size: usize,
    property_bytes: usize,
    until: Instant,
) -> (u64, u64) {
    let payload = vec![0xabu8; size];
    let property = "0".repeat(property_bytes);
    let (mut acked, mut errors) = (0u64, 0u64);
    let mut pending = FuturesUnordered::new();
    while Instant::now() < until {
        while pending.len() < in_flight && Instant::now() < until {
            let sent = if property_bytes == 0 {
                p.send_non_blocking(payload.clone()).await
            } else {
                // As the agent builds it: a fresh map and strings per message.
                let mut properties = std::collections::HashMap::with_capacity(1);
                properties.insert("lg-stamp".to_string(), property.clone());
                let m = pulsar::producer::Message { payload: payload.clone(), properties, ..Default::default() };
                p.send_non_blocking(m).await
            };
            match sent {
                Ok(f) => pending.push(f),
                Err(_) => errors += 1,
            }
        }
        match pending.next().await {
            Some(Ok(_)) => acked += 1,
            Some(Err(_)) => errors += 1,
            None => {}
        }
    }
    while let Some(r) = pending.next().await {
        if r.is_ok() {
            acked += 1;
        } else {
            errors += 1;
        }
    }
    (acked, errors)
}

#[tokio::main]
async fn main() {
    let a = args().unwrap_or_else(|e| fail(BIN, 2, e));
    let client = match Pulsar::builder(a.url.clone(), TokioExecutor).build().await {
        Ok(c) => c,
        Err(e) => fail(BIN, 3, format!("cannot connect to {}: {e}", a.url)),
    };
    let mut producers = Vec::new();
    for _ in 0..a.producers {
        let mut opts = ProducerOptions { block_queue_if_full: true, ..Default::default() };
        if let Some(b) = a.batch {
            opts.batch_size = Some(b);
            opts.batch_timeout = Some(Duration::from_millis(a.batch_delay_ms));
        }
        match client.producer().with_topic(a.topic.clone()).with_options(opts).build().await {
            Ok(p) => producers.push(p),
            Err(e) => fail(BIN, 3, format!("cannot create a producer: {e}")),
        }
    }
    if a.nodelay {
        // Every connection is made by now (one client, its producers).
        if let Err(e) = agent::driver::nodelay::sweep() {
            fail(BIN, 3, format!("--nodelay: cannot set TCP_NODELAY: {e}"));
        }
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    let loops = producers.into_iter().map(|p| producer_loop(p, a.in_flight, a.size, a.property_bytes, until));
    run_loops(loops, start).await;
}
