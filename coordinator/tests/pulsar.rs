//! The Pulsar driver against a real Pulsar-protocol broker: pulsar-lite
//! (installed into .venv by scripts/test.sh), behind our frame-normalising
//! relay, with three real agent processes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use testkit::pulsar_lite::PulsarLite;

fn broker(partitions: u32) -> PulsarLite {
    PulsarLite::start(partitions).expect("pulsar-lite (scripts/test.sh installs it into .venv)")
}

#[test]
fn all_subscription_types_across_three_agents() {
    let b = broker(0);
    let agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start()).collect();
    let (r, rep) = run_on(
        &b.url,
        &agents,
        r#"
name: pulsar-b
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-b}]
producers: [{name: p, topic: lg-test-b, count: 3, rate: 100, message_size: 256}]
consumers:
  - {name: shared, topic: lg-test-b, type: shared, count: 3}
  - {name: excl, topic: lg-test-b, type: exclusive}
  - {name: fail, topic: lg-test-b, type: failover, count: 2}
phases: {warmup: 1s, duration: 4s, drain_timeout: 15s}
"#,
        "pulsar-b",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(u(&rep["totals"]["acked"]), 1500);
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    for s in rep["subscriptions"].as_array().expect("subs") {
        assert_eq!(u(&s["received_unique"]), 1500, "{s}");
    }
    check_consistent(&rep);
    for a in rep["agents"].as_array().expect("agents") {
        assert_eq!(a["status"], "ok");
    }
}

#[test]
fn partitioned_topic_spreads_over_every_partition() {
    let b = broker(4);
    let agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start()).collect();
    let (r, rep) = run_on(
        &b.url,
        &agents,
        r#"
name: pulsar-d
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-d, partitions: 4}]
producers: [{name: p, topic: lg-test-d, count: 2, rate: 200, keys: {round_robin: 64}}]
consumers: [{name: shared, topic: lg-test-d, type: shared, count: 4}]
phases: {duration: 3s, drain_timeout: 15s}
"#,
        "pulsar-d",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = &rep["subscriptions"][0];
    assert_eq!(u(&s["lost"]), 0, "{s}");
    let parts = s["partition_deliveries"].as_object().expect("partition map");
    assert_eq!(parts.len(), 4, "every partition delivered: {parts:?}");
    for (p, n) in parts {
        assert!(u(n) > 100, "partition {p} got {n}");
    }
}

#[test]
fn partition_count_mismatch_is_refused_at_prepare() {
    let b = broker(0);
    let agents = vec![AgentProc::start()];
    let (r, _) = run_on(
        &b.url,
        &agents,
        "name: x\nbroker: {kind: pulsar, url: \"pulsar://p:1\"}\ntopics: [{name: lg-test-np, partitions: 3}]\nproducers: [{name: p, topic: lg-test-np, rate: 10}]\nphases: {duration: 1s}\n",
        "pulsar-np",
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("non-partitioned"), "{}", r.stderr);
}

/// An independent client (the official Python one) reading the same topic
/// on its own subscription sees exactly what our producers had acknowledged.
#[test]
fn python_client_agrees_with_our_counts() {
    let Some(python) = testkit::pulsar_lite::venv_python() else {
        panic!(".venv/bin/python missing: run scripts/test.sh");
    };
    let b = broker(0);
    let script = repo_root().join("scripts/pulsar_count.py");
    let mut child = std::process::Command::new(python)
        .arg(&script)
        .args([&format!("pulsar://{}", b.broker_addr), "lg-test-x", "xcheck", "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while line.trim() != "READY" {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).expect("ready line") > 0, "python exited early");
    }
    let agents: Vec<AgentProc> = (0..2).map(|_| AgentProc::start()).collect();
    let (r, rep) = run_on(
        &b.url,
        &agents,
        r#"
name: pulsar-x
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-x}]
producers: [{name: p, topic: lg-test-x, count: 4, rate: 150}]
consumers: [{name: ours, topic: lg-test-x, type: shared, count: 2}]
phases: {duration: 3s, drain_timeout: 15s}
"#,
        "pulsar-x",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("python output");
    let _ = child.wait();
    let json = rest.lines().rev().find(|l| l.starts_with('{')).expect("python json line");
    let theirs: Value = serde_json::from_str(json).expect("python json");
    let ours = &rep["subscriptions"][0];
    assert_eq!(u(&theirs["unique"]), u(&rep["totals"]["acked"]), "python {theirs} vs report totals {}", rep["totals"]);
    assert_eq!(u(&theirs["unique"]), u(&ours["received_unique"]));
    assert_eq!(u(&theirs["producers"]), 4);
}

/// pulsar-lite has been seen to stall KeyShared dispatch. Whatever it does,
/// the run must end within its drain timeout, and anything missing must be
/// reported as lost (with the drain marked timed out), never a hang.
#[test]
fn key_shared_ends_within_the_drain_timeout() {
    let b = broker(0);
    let agents: Vec<AgentProc> = (0..2).map(|_| AgentProc::start()).collect();
    let t0 = Instant::now();
    let (r, rep) = run_on(
        &b.url,
        &agents,
        r#"
name: pulsar-ks
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-ks}]
producers: [{name: p, topic: lg-test-ks, count: 2, rate: 200, keys: {random: 500}}]
consumers: [{name: ks, topic: lg-test-ks, type: key_shared, count: 3}]
phases: {duration: 3s, drain_timeout: 5s}
"#,
        "pulsar-ks",
    );
    assert!(t0.elapsed() < Duration::from_secs(40), "took {:?}", t0.elapsed());
    assert!(r.code == 0 || r.code == 1, "{}\n{}", r.stdout, r.stderr);
    check_consistent(&rep);
    let s = &rep["subscriptions"][0];
    if u(&s["lost"]) > 0 {
        assert_eq!(r.code, 1);
        assert_eq!(rep["phases"]["drain_timed_out"], true);
    }
    eprintln!("key_shared on pulsar-lite: {s}");
}
