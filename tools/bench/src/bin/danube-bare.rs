//! The bare `danube-client` loop the agent is measured against: N producers
//! (each a danube-client `Producer`, which has one send in flight: strict
//! send-and-await) on one client, fixed-size payloads, for a fixed time.
//! No stamps, no histograms, no accounting: just what the client can push.
//!
//!   danube-bare --url http://127.0.0.1:6650 --topic /default/t --producers 4 \
//!               --size 1024 --seconds 20 [--reliable] [--attribute-bytes 26]
//!
//! `--attribute-bytes N` attaches one attribute with an N-byte value (the
//! agent's stamp, under `lg-stamp`, is typically 26 bytes), to tell what
//! carrying it costs the client and the broker from the agent's own cost.
//!
//! Prints one JSON line: acknowledged messages, errors, seconds, rate.
use std::time::{Duration, Instant};

use bench::{fail, run_loops, Flags};
use danube_client::{DanubeClient, Producer};

struct Args {
    url: String,
    topic: String,
    producers: usize,
    size: usize,
    seconds: f64,
    reliable: bool,
    attribute_bytes: usize,
}

const BIN: &str = "danube-bare";

fn args() -> Result<Args, String> {
    let f = Flags::from_env();
    Ok(Args {
        url: f.required("--url")?,
        topic: f.required("--topic")?,
        producers: f.num("--producers", 1.0)?.max(1.0) as usize,
        size: f.num("--size", 1024.0)? as usize,
        seconds: f.num("--seconds", 20.0)?,
        reliable: f.has("--reliable"),
        attribute_bytes: f.num("--attribute-bytes", 0.0)? as usize,
    })
}

async fn producer_loop(p: Producer, size: usize, attribute_bytes: usize, until: Instant) -> (u64, u64) {
    let payload = vec![0xabu8; size];
    let attribute = "0".repeat(attribute_bytes);
    let (mut acked, mut errors) = (0u64, 0u64);
    while Instant::now() < until {
        // As the agent builds it: a fresh map and strings per message.
        let attributes = (attribute_bytes > 0).then(|| {
            let mut m = std::collections::HashMap::with_capacity(1);
            m.insert("lg-stamp".to_string(), attribute.clone());
            m
        });
        match p.send(payload.clone(), attributes).await {
            Ok(_) => acked += 1,
            Err(_) => errors += 1,
        }
    }
    (acked, errors)
}

#[tokio::main]
async fn main() {
    let a = args().unwrap_or_else(|e| fail(BIN, 2, e));
    let client = match DanubeClient::builder().service_url(a.url.clone()).build().await {
        Ok(c) => c,
        Err(e) => fail(BIN, 3, format!("cannot connect to {}: {e}", a.url)),
    };
    let mut producers = Vec::new();
    for i in 0..a.producers {
        let mut b =
            client.new_producer().with_topic(a.topic.clone()).with_name(format!("bare-{}-{i}", std::process::id()));
        if a.reliable {
            b = b.with_reliable_dispatch();
        }
        let mut p = b.build().unwrap_or_else(|e| fail(BIN, 3, e));
        if let Err(e) = p.create().await {
            fail(BIN, 3, format!("cannot create a producer on {}: {e}", a.topic));
        }
        producers.push(p);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    run_loops(producers.into_iter().map(|p| producer_loop(p, a.size, a.attribute_bytes, until)), start).await;
}
