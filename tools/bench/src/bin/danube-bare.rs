//! The bare `danube-client` loop the agent is measured against: N producers
//! (each a danube-client `Producer`, which has one send in flight: strict
//! send-and-await) on one client, fixed-size payloads, for a fixed time.
//! No stamps, no histograms, no accounting: just what the client can push.
//!
//!   danube-bare --url http://127.0.0.1:6650 --topic /default/t --producers 4 \
//!               --size 1024 --seconds 20 [--reliable]
//!
//! Prints one JSON line: acknowledged messages, errors, seconds, rate.
use std::time::{Duration, Instant};

use danube_client::{DanubeClient, Producer};

struct Args {
    url: String,
    topic: String,
    producers: usize,
    size: usize,
    seconds: f64,
    reliable: bool,
}

fn args() -> Result<Args, String> {
    let v: Vec<String> = std::env::args().collect();
    let get = |f: &str| v.iter().position(|a| a == f).and_then(|i| v.get(i + 1)).cloned();
    let num = |f: &str, d: f64| -> Result<f64, String> {
        get(f).map(|s| s.parse::<f64>().map_err(|_| format!("{f}: not a number"))).unwrap_or(Ok(d))
    };
    Ok(Args {
        url: get("--url").ok_or("--url is required")?,
        topic: get("--topic").ok_or("--topic is required")?,
        producers: num("--producers", 1.0)?.max(1.0) as usize,
        size: num("--size", 1024.0)? as usize,
        seconds: num("--seconds", 20.0)?,
        reliable: v.iter().any(|a| a == "--reliable"),
    })
}

async fn producer_loop(p: Producer, size: usize, until: Instant) -> (u64, u64) {
    let payload = vec![0xabu8; size];
    let (mut acked, mut errors) = (0u64, 0u64);
    while Instant::now() < until {
        match p.send(payload.clone(), None).await {
            Ok(_) => acked += 1,
            Err(_) => errors += 1,
        }
    }
    (acked, errors)
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("danube-bare: {e}");
            std::process::exit(2);
        }
    };
    let client = match DanubeClient::builder().service_url(a.url.clone()).build().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("danube-bare: cannot connect to {}: {e}", a.url);
            std::process::exit(3);
        }
    };
    let mut producers = Vec::new();
    for i in 0..a.producers {
        let mut b =
            client.new_producer().with_topic(a.topic.clone()).with_name(format!("bare-{}-{i}", std::process::id()));
        if a.reliable {
            b = b.with_reliable_dispatch();
        }
        let mut p = match b.build() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("danube-bare: {e}");
                std::process::exit(3);
            }
        };
        if let Err(e) = p.create().await {
            eprintln!("danube-bare: cannot create a producer on {}: {e}", a.topic);
            std::process::exit(3);
        }
        producers.push(p);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    let tasks: Vec<_> = producers.into_iter().map(|p| tokio::spawn(producer_loop(p, a.size, until))).collect();
    let (mut acked, mut errors) = (0u64, 0u64);
    for t in tasks {
        if let Ok((x, e)) = t.await {
            acked += x;
            errors += e;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"acked\": {acked}, \"errors\": {errors}, \"seconds\": {secs:.3}, \"rate_msgs_per_s\": {:.1}}}",
        acked as f64 / secs
    );
}
