//! Coordinator scale benchmark: N simulated agents, one real coordinator.
//!
//! One process serves the agent protocol (`loadgen.v1.Agent/Session`) on
//! loopback and answers every session as a separate agent (its own agent
//! and instance id). It speaks the real protocol: Hello/HelloAck, clock-sync
//! Pings, Prepare (the real shard JSON) / Ready, Start, one IntervalReport
//! per interval with histograms made from real samples (V2+deflate, decoded
//! by the coordinator every time), progress for the drain, Stop and a
//! FinalReport whose range sets have gaps (send errors every 10 007th
//! message), so the coordinator's end-of-run accounting has real work.
//!
//! It writes a scenario (pulsar kind, never dialled: the simulated agents
//! only pretend to drive it), starts the `coordinator` binary with the same
//! address N times in `--agents`, samples the coordinator's CPU time and
//! RSS from /proc while it runs, and prints one JSON line with what it
//! measured and what the coordinator's report.json says about its own cost
//! (`coordinator.setup_s`, `interval_merge_ms_*`, `report_build_ms`).
//!
//!   coord-sim --agents 1000 --seconds 10 --coordinator target/release/coordinator

use std::collections::HashMap;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::clock;
use common::hist::Hist;
use common::plan::Shard;
use common::proto::agent_message::Msg as AMsg;
use common::proto::agent_server::{Agent, AgentServer};
use common::proto::coordinator_message::Msg as CMsg;
use common::proto::{self, AgentMessage, CoordinatorMessage};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// Every GAP_EVERY-th message of a producer fails (a gap in its acked set).
const GAP_EVERY: u64 = 10_007;

#[derive(Default)]
struct Shared {
    next_agent: AtomicU64,
    /// Every producer instance of the run: id -> (topic, rate in milli-msg/s).
    producers: Mutex<HashMap<u32, (String, u64)>>,
    /// Acknowledged so far per topic (what the simulated brokers delivered).
    acked_by_topic: Mutex<HashMap<String, u64>>,
}

struct SimAgent {
    shared: Arc<Shared>,
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<AgentMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for SimAgent {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<CoordinatorMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let k = self.shared.next_agent.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(run_session(k, self.shared.clone(), request.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn msg(m: AMsg) -> Result<AgentMessage, Status> {
    Ok(AgentMessage { msg: Some(m) })
}

/// Cumulative messages a producer has sent by `t_ns` after the start.
fn sent_by(rate_milli: u64, t_ns: i64) -> u64 {
    (u128::from(rate_milli) * t_ns.max(0) as u128 / 1_000_000_000_000) as u64
}

/// Of the first `n` messages, those acknowledged (gaps are send errors).
fn acked_of(n: u64) -> u64 {
    n - n / GAP_EVERY
}

/// [0, n) without the multiples of GAP_EVERY (seq 0 excepted).
fn acked_ranges(n: u64) -> proto::RangeSet {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    let mut from = 0;
    let mut gap = GAP_EVERY;
    while gap < n {
        starts.push(from);
        ends.push(gap);
        from = gap + 1;
        gap += GAP_EVERY;
    }
    if from < n {
        starts.push(from);
        ends.push(n);
    }
    proto::RangeSet { starts, ends }
}

/// A histogram of `n` real samples around `base_us` (xorshift, skewed).
fn sample_hist(seed: u64, base_us: u64, n: usize) -> Vec<u8> {
    let mut h = Hist::new();
    let mut x = seed | 1;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x % 10_000) as f64 / 10_000.0;
        // A long right tail: base * (1 + 4u^4).
        let us = base_us as f64 * (1.0 + 4.0 * u.powi(4));
        h.record_ns((us * 1000.0) as i64);
    }
    h.encode()
}

fn stats(sent: u64, acked: u64, errors: u64, received: u64, hist: &[u8]) -> proto::PhaseStats {
    proto::PhaseStats {
        sent,
        acked,
        send_errors: errors,
        received,
        bytes: (acked + received) * 1024,
        response_hist: hist.to_vec(),
        service_hist: hist.to_vec(),
        ..Default::default()
    }
}

/// Per-group counters as wire groups, with this agent's sample histograms.
fn wire_groups(
    groups: HashMap<(u32, i32), proto::PhaseStats>,
    prod_hist: &[u8],
    cons_hist: &[u8],
) -> Vec<proto::GroupStats> {
    groups
        .into_iter()
        .map(|((group, role), s)| {
            let hist = if role == proto::Role::Producer as i32 { prod_hist } else { cons_hist };
            let measure = stats(s.sent, s.acked, s.send_errors, s.received, hist);
            proto::GroupStats { group, role, warmup: None, measure: Some(measure) }
        })
        .collect()
}

async fn run_session(
    k: u64,
    shared: Arc<Shared>,
    mut inbound: Streaming<CoordinatorMessage>,
    tx: mpsc::Sender<Result<AgentMessage, Status>>,
) {
    let mut shard: Option<Arc<Shard>> = None;
    let mut reporter: Option<tokio::task::JoinHandle<(i64, u64)>> = None;
    let mut start_ns = 0i64;
    while let Some(Ok(m)) = inbound.next().await {
        let Some(m) = m.msg else { continue };
        let reply = match m {
            CMsg::Hello(h) => AMsg::HelloAck(proto::HelloAck {
                protocol_version: common::PROTOCOL_VERSION,
                agent_id: format!("sim-{k}"),
                hostname: "coord-sim".into(),
                version: common::VERSION.into(),
                instance_id: format!("sim-instance-{k}"),
                cpus: 2,
                drivers: vec!["pulsar".into()],
                lease_ms: if h.lease_ms == 0 { 10_000 } else { h.lease_ms },
            }),
            CMsg::Ping(p) => {
                AMsg::Pong(proto::Pong { seq: p.seq, coordinator_ns: p.coordinator_ns, agent_ns: clock::now_ns() })
            }
            CMsg::Prepare(p) => match Shard::from_json(&p.shard) {
                Ok(s) => {
                    let mut all = shared.producers.lock().unwrap_or_else(|e| e.into_inner());
                    for pi in &s.producers {
                        let topic = s.scenario.producers[pi.group].topic.clone();
                        all.insert(pi.id, (topic, pi.rate_milli));
                    }
                    drop(all);
                    let ready =
                        proto::Ready { producers: s.producers.len() as u32, consumers: s.consumers.len() as u32 };
                    shard = Some(Arc::new(s));
                    AMsg::Ready(ready)
                }
                Err(e) => {
                    AMsg::Error(proto::AgentError { phase: "prepare".into(), message: e.to_string(), fatal: true })
                }
            },
            // Simulated agents stamp nothing.
            CMsg::Clock(_) => continue,
            // Simulated producers stop with the interval reporter at Stop.
            CMsg::StopProducers(_) => continue,
            CMsg::Control(c) => AMsg::ControlAck(proto::ControlAck {
                id: c.id,
                refused: "a simulated agent takes no run control".into(),
            }),
            CMsg::Start(s) => {
                start_ns = s.start_at_ns;
                if let Some(sh) = shard.clone() {
                    reporter = Some(tokio::spawn(report_intervals(k, sh, shared.clone(), start_ns, tx.clone())));
                }
                continue;
            }
            CMsg::Stop(_) => {
                let Some(sh) = shard.clone() else { break };
                if let Some(r) = reporter.take() {
                    r.abort();
                }
                let f = final_report(k, &sh, &shared, start_ns);
                let _ = tx.send(msg(AMsg::Final(f))).await;
                break;
            }
        };
        if tx.send(msg(reply)).await.is_err() {
            break;
        }
    }
}

/// Consumer group instances whose subscription this agent reports progress
/// and receipts for: the one holding instance 0 of the group.
fn designated(shard: &Shard) -> Vec<usize> {
    shard.consumers.iter().filter(|c| c.index_in_group == 0).map(|c| c.group).collect()
}

async fn report_intervals(
    k: u64,
    shard: Arc<Shard>,
    shared: Arc<Shared>,
    start: i64,
    tx: mpsc::Sender<Result<AgentMessage, Status>>,
) -> (i64, u64) {
    let sc = &shard.scenario;
    let step = sc.report_interval.as_nanos() as i64;
    let send_end = sc.phases.send_end().as_nanos() as i64;
    let prod_hist = sample_hist(k * 2 + 1, 2_000, 2_000);
    let cons_hist = sample_hist(k * 2 + 2, 5_000, 2_000);
    let mine = designated(&shard);
    let mut last_topic_acked: HashMap<usize, u64> = HashMap::new();
    for index in 0u64.. {
        let (t0, t1) = (index as i64 * step, (index as i64 + 1) * step);
        tokio::time::sleep_until(clock::instant_at(start + t1).into()).await;
        let sending = t0 < send_end;
        let mut groups: HashMap<(u32, i32), proto::PhaseStats> = HashMap::new();
        let mut acked_topic: HashMap<String, u64> = HashMap::new();
        for p in &shard.producers {
            let (a, b) = (sent_by(p.rate_milli, t0.min(send_end)), sent_by(p.rate_milli, t1.min(send_end)));
            let (acked, sent) = (acked_of(b) - acked_of(a), b - a);
            let e = groups.entry((p.group as u32, proto::Role::Producer as i32)).or_default();
            e.sent += sent;
            e.acked += acked;
            e.send_errors += sent - acked;
            *acked_topic.entry(sc.producers[p.group].topic.clone()).or_default() += acked;
        }
        {
            let mut g = shared.acked_by_topic.lock().unwrap_or_else(|e| e.into_inner());
            for (t, n) in acked_topic {
                *g.entry(t).or_default() += n;
            }
        }
        let mut progress = Vec::new();
        let totals = shared.acked_by_topic.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for &g in &mine {
            let c = &sc.consumers[g];
            let have = totals.get(&c.topic).copied().unwrap_or(0);
            let last = last_topic_acked.insert(g, have).unwrap_or(0);
            groups.entry((g as u32, proto::Role::Consumer as i32)).or_default().received += have - last;
            progress.push(proto::SubscriptionProgress {
                topic: c.topic.clone(),
                subscription: c.subscription.clone(),
                unique_received: have,
            });
        }
        let groups = wire_groups(groups, &prod_hist, &cons_hist);
        let r = proto::IntervalReport {
            index,
            start_ns: start + t0,
            end_ns: start + t1,
            groups,
            cpu_ns: step as u64 / 10,
            wall_ns: step as u64,
            progress,
            max_lag_ns: 0,
            tasks_reporting: (shard.producers.len() + shard.consumers.len()) as u32,
            tasks_total: (shard.producers.len() + shard.consumers.len()) as u32,
            producers_active: if sending { shard.producers.len() as u32 } else { 0 },
            last: false,
        };
        if tx.send(msg(AMsg::Interval(r))).await.is_err() {
            break;
        }
    }
    (start, k)
}

fn final_report(k: u64, shard: &Shard, shared: &Shared, _start: i64) -> proto::FinalReport {
    let sc = &shard.scenario;
    let send_end = sc.phases.send_end().as_nanos() as i64;
    let prod_hist = sample_hist(k * 2 + 1, 2_000, 2_000);
    let cons_hist = sample_hist(k * 2 + 2, 5_000, 2_000);
    let mut groups: HashMap<(u32, i32), proto::PhaseStats> = HashMap::new();
    let mut producers = Vec::new();
    for p in &shard.producers {
        let n = sent_by(p.rate_milli, send_end);
        let e = groups.entry((p.group as u32, proto::Role::Producer as i32)).or_default();
        e.sent += n;
        e.acked += acked_of(n);
        e.send_errors += n - acked_of(n);
        producers.push(proto::ProducerAcks {
            producer_id: u64::from(p.id),
            topic: sc.producers[p.group].topic.clone(),
            group: p.group as u32,
            sent: n,
            acked: Some(acked_ranges(n)),
            marks: Vec::new(),
        });
    }
    let all = shared.producers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut subscriptions = Vec::new();
    for g in designated(shard) {
        let c = &sc.consumers[g];
        let mut receipts = Vec::new();
        let mut deliveries = 0;
        for (id, (topic, rate)) in &all {
            if *topic == c.topic {
                let n = sent_by(*rate, send_end);
                deliveries += acked_of(n);
                receipts.push(proto::ProducerReceipts { producer_id: u64::from(*id), received: Some(acked_ranges(n)) });
            }
        }
        groups.entry((g as u32, proto::Role::Consumer as i32)).or_default().received += deliveries;
        subscriptions.push(proto::SubscriptionReceipts {
            topic: c.topic.clone(),
            subscription: c.subscription.clone(),
            producers: receipts,
            deliveries,
            ..Default::default()
        });
    }
    let groups = wire_groups(groups, &prod_hist, &cons_hist);
    proto::FinalReport {
        groups,
        producers,
        subscriptions,
        cpu_ns: 0,
        wall_ns: 0,
        notes: Vec::new(),
        max_rss_bytes: 0,
        // Simulated agents send nothing: no start offset to report.
        first_send_ns: 0,
    }
}

struct Args {
    agents: usize,
    seconds: u64,
    coordinator: String,
    topics: usize,
}

fn parse_args() -> Args {
    let mut a = Args { agents: 10, seconds: 10, coordinator: "target/release/coordinator".into(), topics: 10 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--agents" => a.agents = v.parse().unwrap_or(a.agents),
            "--seconds" => a.seconds = v.parse().unwrap_or(a.seconds),
            "--coordinator" => a.coordinator = v,
            "--topics" => a.topics = v.parse().unwrap_or(a.topics),
            _ => {
                eprintln!("usage: coord-sim [--agents N] [--seconds S] [--topics T] [--coordinator PATH]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// (utime + stime in clock ticks, VmRSS kB, VmHWM kB) of a process.
fn proc_sample(pid: u32) -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((ticks, kb("VmRSS:"), kb("VmHWM:")))
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let shared = Arc::new(Shared::default());
    let svc = AgentServer::new(SimAgent { shared: shared.clone() })
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20);
    tokio::spawn(
        tonic::transport::Server::builder().add_service(svc).serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let dir = std::env::temp_dir().join(format!("coord-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("coord-sim.yaml");
    std::fs::write(&scenario, scenario_yaml(&args)).expect("write scenario");
    let agents = vec![addr.to_string(); args.agents].join(",");

    let t0 = Instant::now();
    let child = Command::new(&args.coordinator)
        .arg("run")
        .arg(&scenario)
        .arg("--agents")
        .arg(&agents)
        .arg("--results")
        .arg(&dir)
        .arg("--quiet")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the coordinator");
    let watched = watch(child).await;
    let wall = t0.elapsed().as_secs_f64();
    let report = read_report(&watched);
    let ticks_per_s = 100.0; // CLK_TCK on Linux
    let cpu_s = watched.cpu_ticks as f64 / ticks_per_s;
    let run_s = args.seconds as f64;
    let line = serde_json::json!({
        "agents": args.agents,
        "exit": watched.output.status.code(),
        "verdict": report["verdict"],
        "agents_in_report": report["agents"].as_array().map(Vec::len),
        "lost": report["totals"]["lost"],
        "acked": report["totals"]["acked"],
        "coordinator": report["coordinator"],
        "coordinator_cpu_s": cpu_s,
        "coordinator_wall_s": wall,
        "coordinator_cpu_percent_of_one_core": 100.0 * cpu_s / wall,
        "coordinator_max_rss_mb": watched.max_rss_kb as f64 / 1024.0,
        "measured_s": run_s,
    });
    println!("{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every agent gets a producer and a consumer: `agents` of each, spread
/// over `topics` topics, 100 msg/s per producer.
fn scenario_yaml(args: &Args) -> String {
    let per_topic = args.agents.div_ceil(args.topics).max(1);
    let mut yaml = format!(
        "name: coord-sim\nbroker: {{kind: pulsar, url: \"pulsar://127.0.0.1:1\"}}\nphases: {{duration: {}s, drain_timeout: 10s}}\nreport_interval: 1s\ntopics:\n",
        args.seconds
    );
    for t in 0..args.topics {
        yaml.push_str(&format!("  - {{name: t{t}}}\n"));
    }
    yaml.push_str("producers:\n");
    for t in 0..args.topics {
        yaml.push_str(&format!("  - {{name: p{t}, topic: t{t}, count: {per_topic}, rate: 100}}\n"));
    }
    yaml.push_str("consumers:\n");
    for t in 0..args.topics {
        yaml.push_str(&format!("  - {{name: c{t}, topic: t{t}, type: shared, count: {per_topic}}}\n"));
    }
    // Send errors are simulated on purpose (range-set gaps).
    yaml.push_str("slo: {max_send_errors: 1000000000}\n");
    yaml
}

/// The coordinator process run to its end, with its CPU and peak RSS.
struct Watched {
    output: std::process::Output,
    cpu_ticks: u64,
    max_rss_kb: u64,
}

/// Samples the child's CPU and RSS every 100 ms until it exits.
async fn watch(mut child: std::process::Child) -> Watched {
    let pid = child.id();
    let (mut max_rss_kb, mut cpu_ticks) = (0, 0);
    loop {
        if let Some((ticks, _rss, hwm)) = proc_sample(pid) {
            max_rss_kb = max_rss_kb.max(hwm);
            cpu_ticks = ticks;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Watched { output: child.wait_with_output().expect("output"), cpu_ticks, max_rss_kb }
}

/// The report.json of the results directory the coordinator printed last.
fn read_report(w: &Watched) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&w.output.stdout);
    let stderr = String::from_utf8_lossy(&w.output.stderr);
    let status = w.output.status;
    let Some(results) = stdout.lines().last().map(str::to_string) else {
        eprintln!("coordinator printed no results directory ({status}):\n{stderr}");
        std::process::exit(1);
    };
    serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&results).join("report.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| {
        eprintln!("no report.json in {results}: {e} ({status})\n{stderr}");
        std::process::exit(1)
    })
}
