//! Prometheus `/metrics` on the coordinator and on the agents, scraped over
//! real HTTP (a raw TCP GET) during and after a run, and checked against
//! report.json.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::common::metrics::{parse, scrape, sum};
use common::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

fn within_1pct(what: &str, got: f64, want: u64) {
    let want = want as f64;
    assert!(want > 0.0, "{what}: nothing to compare");
    assert!((got - want).abs() <= want * 0.01, "{what}: /metrics says {got}, report.json says {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_and_agent_metrics_match_the_report() {
    let stop = CancellationToken::new();
    // Two in-process agents on one memory broker, each serving /metrics.
    let memory = agent::driver::memory::MemoryBroker::new();
    let mut agent_addrs = Vec::new();
    let mut agent_metrics = Vec::new();
    for i in 0..2 {
        let (l, addr) = listener().await;
        let (ml, maddr) = listener().await;
        let mut opts = agent::AgentOptions::new(format!("m-{i}"));
        opts.memory = memory.clone();
        tokio::spawn(::common::metrics::serve(ml, opts.metrics.renderer(opts.agent_id.clone()), stop.clone()));
        tokio::spawn(agent::serve(l, opts, stop.clone()));
        agent_addrs.push(addr.to_string());
        agent_metrics.push(maddr);
    }
    // The coordinator's metrics, as `run --metrics` serves them.
    let metrics = coordinator::metrics::RunMetrics::new();
    let (cl, caddr) = listener().await;
    tokio::spawn(::common::metrics::serve(cl, metrics.renderer(), stop.clone()));

    // Scrape while the run runs.
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let agents_scraped = agent_metrics.clone();
    let scraper = tokio::spawn(async move {
        let mut live_sent = 0.0f64;
        let mut phases = Vec::new();
        // Every metric name either side exported at some point of the run
        // (latency and rate gauges exist only while it runs).
        let mut names = BTreeSet::new();
        // The ack latency family, seen on an agent and on the coordinator.
        let mut ack_family = (false, false);
        while !d2.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for a in &agents_scraped {
                if let Ok(text) = scrape(*a).await {
                    ack_family.0 |= text.contains("loadgen_ack_latency_seconds{quantile=\"0.99\"");
                    names.extend(metric_names(&text));
                }
            }
            let Ok(text) = scrape(caddr).await else { continue };
            ack_family.1 |= text.contains("loadgen_ack_latency_seconds{quantile=\"0.99\"");
            names.extend(metric_names(&text));
            let s = parse(&text).expect("parses");
            if sum(&s, "loadgen_run_phase", &[("phase", "done")]) == 0.0 {
                live_sent = live_sent.max(sum(&s, "loadgen_messages_sent_total", &[]));
                for p in ["warmup", "measure"] {
                    if sum(&s, "loadgen_run_phase", &[("phase", p)]) == 1.0 && !phases.contains(&p) {
                        phases.push(p);
                    }
                }
            }
        }
        (live_sent, phases, names, ack_family)
    });

    let results = temp_dir("metrics");
    let opts = coordinator::run::RunOptions {
        scenario: repo_root().join("configs/quickstart.yaml"),
        sets: vec!["phases.warmup=1s".into(), "phases.duration=3s".into(), "slo.p99_e2e=5s".into()],
        agents: agent_addrs,
        results: Some(results.clone()),
        quiet: true,
        metrics: Some(metrics.clone()),
        ..Default::default()
    };
    let out = coordinator::run::run(opts).await.expect("run");
    done.store(true, Ordering::SeqCst);
    let (live_sent, phases, mut names, ack_family) = scraper.await.expect("scraper");
    // The memory broker's acks are timed (at once, without `ack_latency`).
    assert_eq!(ack_family, (true, true), "(agent, coordinator) served consumer ack latency quantiles");
    assert!(live_sent > 0.0, "a scrape during the run saw messages");
    assert!(phases.contains(&"measure"), "a scrape during the run saw the measure phase: {phases:?}");

    // After the run: the coordinator serves the final values.
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.dir.join("report.json")).expect("report.json"))
            .expect("json");
    let verdict = rep["verdict"].as_str().expect("verdict");
    assert_ne!(verdict, "incomplete", "{rep}");
    let t = &rep["totals"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("totals.{k}"));
    let text = scrape(caddr).await.expect("scrape the coordinator");
    let s = parse(&text).expect("parses");
    within_1pct("coordinator sent", sum(&s, "loadgen_messages_sent_total", &[]), n("sent"));
    within_1pct("coordinator acked", sum(&s, "loadgen_messages_acked_total", &[]), n("acked"));
    within_1pct("coordinator received", sum(&s, "loadgen_messages_received_total", &[]), n("received"));
    assert_eq!(sum(&s, "loadgen_run_phase", &[("phase", "done")]), 1.0, "{text}");
    assert_eq!(sum(&s, "loadgen_run_verdict", &[("verdict", verdict)]), 1.0, "{text}");
    assert_eq!(sum(&s, "loadgen_agents", &[]), 2.0, "{text}");
    assert_eq!(sum(&s, "loadgen_target_publish_rate_msgs_per_second", &[]), 3000.0, "{text}");
    // One series per group, labelled as Prometheus expects.
    assert!(
        text.contains("loadgen_messages_sent_total{group=\"order-producers\",topic=\"orders\",role=\"producer\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "loadgen_messages_received_total{group=\"order-audit\",topic=\"orders\",role=\"consumer\",subscription=\"order-audit\"}"
        ),
        "{text}"
    );

    // Each agent counted its share; together they make the report's totals.
    let mut agents_sent = 0.0;
    for a in &agent_metrics {
        let text = scrape(*a).await.expect("scrape an agent");
        let s = parse(&text).expect("parses");
        assert_eq!(sum(&s, "loadgen_runs_total", &[]), 1.0, "{text}");
        agents_sent += sum(&s, "loadgen_messages_sent_total", &[]);
    }
    within_1pct("agents' sent", agents_sent, n("sent"));
    names.extend(metric_names(&text));

    // The Grafana dashboard in deploy/ queries only metrics we export.
    let dashboard = repo_root().join("deploy/grafana/loadgen-dashboard.json");
    let queried = dashboard_metrics(&dashboard);
    assert!(queried.len() >= 15, "the dashboard queries {queried:?}");
    let unknown: Vec<&String> = queried.iter().filter(|m| !names.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "{} queries metrics nobody exports: {unknown:?} (exported: {names:?})",
        dashboard.display()
    );
    stop.cancel();
    let _ = std::fs::remove_dir_all(results);
}

/// Metric names in an exposition (sample lines, not comments).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `loadgen_*` name in the dashboard's queries (panel targets and
/// template variables).
fn dashboard_metrics(path: &std::path::Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("dashboard");
    let d: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs: Vec<String> = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("a target's expr").to_string());
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        exprs.extend(v["definition"].as_str().map(str::to_string));
    }
    let mut names = BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("loadgen_") {
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// `agent --metrics ADDR` prints where it serves, and serves.
#[tokio::test]
async fn agent_binary_serves_metrics() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(agent_bin())
        .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--id", "metrics-test"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf8");
    assert!(first.starts_with("agent listening on "), "{first}");
    let second = lines.next().expect("a second line").expect("utf8");
    let addr: SocketAddr = second
        .strip_prefix("agent metrics on http://")
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("metrics line: {second}"))
        .parse()
        .expect("address");
    let text = scrape(addr).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = text.expect("scrape");
    assert!(text.contains("loadgen_agent_info{agent=\"metrics-test\""), "{text}");
    // OpenMetrics: a counter's TYPE line names it without `_total`; its
    // samples keep the `_total` name.
    assert!(text.contains("# TYPE loadgen_runs counter\nloadgen_runs_total "), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// `coordinator run --metrics ADDR` says where it serves and runs as usual.
#[test]
fn coordinator_binary_takes_metrics_flag() {
    let res = temp_dir("metrics-cli");
    let r = coordinator(&[
        "run",
        "configs/quickstart.yaml",
        "--metrics",
        "127.0.0.1:0",
        "--no-color",
        "--results",
        res.to_str().expect("utf8"),
        "--set",
        "phases.warmup=0s",
        "--set",
        "phases.duration=1s",
        "--set",
        "slo.p99_e2e=5s",
    ]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("metrics: http://127.0.0.1:"), "{}", r.stderr);
    // Not a terminal: the plain one-line-per-interval output.
    assert!(r.stderr.contains("] #0"), "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "no escapes when stderr is not a terminal: {}", r.stderr);
    let bad = coordinator(&["run", "configs/quickstart.yaml", "--metrics", "not-an-address"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let _ = std::fs::remove_dir_all(res);
}
