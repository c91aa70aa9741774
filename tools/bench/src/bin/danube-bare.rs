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
//! `--hop` sends the way the agent's Danube driver did up to BENCHMARKS.md's
//! "Danube, ninth run" (it now queues 16 per client producer and takes room
//! 8 at a time): the loop hands each message to a worker task that owns the
//! client producer, through a queue of one, and takes its outcome back by a
//! oneshot, with up to 1,000 sends handed over and not yet acknowledged;
//! what that hand-off costs, apart from the rest of the agent.
//!
//! `--series FILE` writes, every 100 ms, the wall-clock time (Unix ms) and
//! the messages acknowledged so far, one `ms count` line each: to compare
//! this loop with an agent run at the same time on the same broker over the
//! same wall-clock window (`CONCURRENT=1 bench/danube.sh`).
//!
//! Prints one JSON line: acknowledged messages, errors, seconds, rate.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    series: Option<String>,
    hop: bool,
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
        series: f.get("--series"),
        hop: f.has("--hop"),
    })
}

async fn producer_loop(
    p: Producer,
    size: usize,
    attribute_bytes: usize,
    until: Instant,
    total: Arc<AtomicU64>,
) -> (u64, u64) {
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
            Ok(_) => {
                acked += 1;
                total.fetch_add(1, Ordering::Relaxed);
            }
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
    let total = Arc::new(AtomicU64::new(0));
    let sampler = a.series.clone().map(|path| tokio::spawn(sample(path, total.clone())));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    if a.hop {
        let loops = producers.into_iter().map(|p| hop_loop(p, a.size, until, total.clone()));
        run_loops(loops, start).await;
    } else {
        let loops = producers.into_iter().map(|p| producer_loop(p, a.size, a.attribute_bytes, until, total.clone()));
        run_loops(loops, start).await;
    }
    if let Some(s) = sampler {
        s.abort();
    }
}

type Reply = tokio::sync::oneshot::Sender<bool>;

/// `--hop`: the loop hands sends to a worker task (see the module's text).
async fn hop_loop(p: Producer, size: usize, until: Instant, total: Arc<AtomicU64>) -> (u64, u64) {
    use futures::StreamExt;
    let (jobs, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, Reply)>(1);
    let worker = tokio::spawn(async move {
        while let Some((data, reply)) = rx.recv().await {
            let _ = reply.send(p.send(data, None).await.is_ok());
        }
    });
    let payload = vec![0xabu8; size];
    let mut window = futures::stream::FuturesUnordered::new();
    let (mut acked, mut errors) = (0u64, 0u64);
    let mut count = |ok: Result<bool, _>| match ok {
        Ok(true) => {
            acked += 1;
            total.fetch_add(1, Ordering::Relaxed);
        }
        _ => errors += 1,
    };
    while Instant::now() < until {
        while let Some(Some(ok)) = futures::FutureExt::now_or_never(window.next()) {
            count(ok);
        }
        if window.len() >= 1000 {
            if let Some(ok) = window.next().await {
                count(ok);
            }
            continue;
        }
        let (reply, ack) = tokio::sync::oneshot::channel();
        if jobs.send((payload.clone(), reply)).await.is_err() {
            break;
        }
        window.push(ack);
    }
    drop(jobs);
    while let Some(ok) = window.next().await {
        count(ok);
    }
    let _ = worker.await;
    (acked, errors)
}

/// Appends `unix_ms acknowledged_so_far` to `path` every 100 ms.
async fn sample(path: String, total: Arc<AtomicU64>) {
    use std::io::Write;
    let mut f = std::fs::File::create(&path).unwrap_or_else(|e| fail(BIN, 2, format!("{path}: {e}")));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let _ = writeln!(f, "{ms} {}", total.load(Ordering::Relaxed));
    }
}
