//! The Pulsar driver against Apache Pulsar itself (standalone, installed
//! from Maven Central by scripts/pulsar-standalone.sh), with real agent
//! processes. On the real broker nothing is lost and nothing is delivered
//! twice: every test here says so.
//!
//! The plain tests share one broker (each its own topics); those that need
//! their own (token, TLS, restart) start one. When Apache Pulsar cannot be
//! installed here, each test prints "skipped: …" with the reason.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use testkit::apache_pulsar::{ApachePulsar, Options};
use testkit::apache_pulsar_or_skip;

/// Every subscription received every acknowledged message exactly once.
fn exactly_once(rep: &Value) {
    let acked = u(&rep["totals"]["acked"]);
    assert!(acked > 0, "{}", rep["totals"]);
    assert_eq!(u(&rep["totals"]["lost"]), 0, "{}", rep["totals"]);
    assert_eq!(u(&rep["totals"]["send_errors"]), 0, "{}", rep["totals"]);
    for s in rep["subscriptions"].as_array().expect("subs") {
        assert_eq!(u(&s["lost"]), 0, "{s}");
        assert_eq!(u(&s["duplicated"]), 0, "{s}");
        assert_eq!(u(&s["received_unique"]), u(&s["expected"]), "{s}");
    }
    check_consistent(rep);
}

fn three_agents() -> Vec<AgentProc> {
    (0..3).map(|_| AgentProc::start()).collect()
}

/// Runs `yaml` on `agents` against `b` with `--set broker.admin_url=…` too.
fn run_with_admin(b: &ApachePulsar, agents: &[AgentProc], yaml: &str, tag: &str) -> (Ran, Value) {
    let scenario = write_scenario(tag, yaml);
    let r = run_scenario(
        &scenario,
        &[
            "--agents",
            &agent_list(agents),
            "--set",
            &format!("broker.url={}", b.url),
            "--set",
            &format!("broker.admin_url={}", b.admin_url),
        ],
    );
    let rep = if r.code == 0 || r.code == 1 { report_of(&r) } else { Value::Null };
    remove_scenario_dir(&scenario);
    (r, rep)
}

#[test]
fn all_subscription_types_across_three_agents() {
    let b = apache_pulsar_or_skip!();
    let agents = three_agents();
    let (r, rep) = run_on(
        &b.url,
        &agents,
        r#"
name: pulsar-b
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-b}]
producers: [{name: p, topic: lg-test-b, count: 3, rate: 100, message_size: 256, keys: {round_robin: 50}}]
consumers:
  - {name: shared, topic: lg-test-b, type: shared, count: 3}
  - {name: excl, topic: lg-test-b, type: exclusive}
  - {name: fail, topic: lg-test-b, type: failover, count: 2}
  - {name: ks, topic: lg-test-b, type: key_shared, count: 3}
phases: {warmup: 1s, duration: 4s, drain_timeout: 15s}
"#,
        "pulsar-b",
    );
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    assert_eq!(u(&rep["totals"]["acked"]), 1500);
    exactly_once(&rep);
    assert_eq!(rep["subscriptions"].as_array().expect("subs").len(), 4);
    for a in rep["agents"].as_array().expect("agents") {
        assert_eq!(a["status"], "ok");
    }
    // The pulsar crate only queues an ack: no ack latency, and the report says why.
    for name in ["shared", "excl", "fail", "ks"] {
        let g = group(&rep, name);
        assert!(g["latency"].get("ack").is_none() && g["latency"]["e2e_service"]["count"].as_u64() > Some(0), "{g}");
        let why = g["ack_latency_not_measured"].as_str().unwrap_or_default();
        assert!(why.starts_with("not measured on pulsar: ") && why.contains("broker's receipt"), "{g}");
    }
    assert!(!rep["histograms"].as_array().expect("histograms").iter().any(|h| h["kind"] == "ack"));
    who_received_what(&rep);
}

/// Per consumer: the counts add up to the subscription's deliveries and
/// the shares to 100 %; shared spreads over all three consumers; exclusive
/// and failover had one active consumer throughout; key_shared kept each of
/// the 50 keys on one consumer at a time.
fn who_received_what(rep: &Value) {
    for name in ["shared", "excl", "fail", "ks"] {
        let s = sub(rep, name);
        let by = s["by_consumer"].as_array().unwrap_or_else(|| panic!("by_consumer: {s}"));
        assert_eq!(by.len() as u64, u(&s["consumers"]), "{s}");
        assert_eq!(by.iter().map(|c| u(&c["deliveries"])).sum::<u64>(), u(&s["deliveries"]), "{s}");
        let shares: Vec<f64> = by.iter().map(|c| c["share_percent"].as_f64().expect("share")).collect();
        assert!((shares.iter().sum::<f64>() - 100.0).abs() < 0.01, "{s}");
        let receiving = by.iter().filter(|c| u(&c["deliveries"]) > 0).count();
        match name {
            "shared" => {
                assert!(shares.iter().all(|p| *p > 10.0), "spread over all three: {s}");
                assert!(s["consumer_imbalance_percent"].as_f64().is_some(), "{s}");
            }
            "excl" | "fail" => {
                assert_eq!(receiving, 1, "one active consumer: {s}");
                assert_eq!(u(&s["switches"]["count"]), 0, "{s}");
                assert_eq!(s["switches"]["concurrent_s"].as_f64(), Some(0.0), "{s}");
            }
            _ => {
                assert_eq!(u(&s["key_overlaps"]["count"]), 0, "each key on one consumer at a time: {s}");
                assert_eq!(u(&s["key_overlaps"]["keys_checked"]), 50, "the keys came through: {s}");
            }
        }
    }
}

/// `broker.admin_url`: the coordinator creates the partitioned topic, every
/// partition carries messages, nothing is lost or duplicated; a second run
/// finds the topic there with the same count and goes on.
#[test]
fn partitioned_topic_created_through_the_admin_api() {
    let b = apache_pulsar_or_skip!();
    let agents = three_agents();
    let yaml = r#"
name: pulsar-d
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-d, partitions: 4}]
producers: [{name: p, topic: lg-test-d, count: 2, rate: 200, keys: {round_robin: 64}}]
consumers: [{name: shared, topic: lg-test-d, type: shared, count: 4}]
phases: {duration: 3s, drain_timeout: 15s}
"#;
    for round in 0..2 {
        let (r, rep) = run_with_admin(b, &agents, yaml, "pulsar-d");
        assert_eq!(r.code, 0, "round {round}: {}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
        exactly_once(&rep);
        let s = &rep["subscriptions"][0];
        let parts = s["partition_deliveries"].as_object().expect("partition map");
        assert_eq!(parts.len(), 4, "every partition delivered: {parts:?}");
        for (p, n) in parts {
            assert!(u(n) > 100, "partition {p} got {n}");
        }
    }
}

/// The topic exists with another partition count; a bad admin URL; no
/// admin URL and a topic that is not partitioned: each one line, exit 3,
/// nothing created by halves.
#[test]
fn admin_api_refusals_are_one_line() {
    let b = apache_pulsar_or_skip!();
    let agents = vec![AgentProc::start()];
    let two = "name: x\nbroker: {kind: pulsar, url: \"pulsar://p:1\"}\ntopics: [{name: lg-test-mm, partitions: 2}]\nproducers: [{name: p, topic: lg-test-mm, rate: 10}]\nphases: {duration: 1s}\n";
    let (r, _) = run_with_admin(b, &agents, two, "pulsar-mm");
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, b.log_tail(30));
    // Same topic, 3 partitions, plus a new one listed first: refused before
    // anything is created.
    let three = "name: x\nbroker: {kind: pulsar, url: \"pulsar://p:1\"}\ntopics: [{name: lg-test-new, partitions: 2}, {name: lg-test-mm, partitions: 3}]\nproducers: [{name: p, topic: lg-test-mm, rate: 10}]\nphases: {duration: 1s}\n";
    let (r, _) = run_with_admin(b, &agents, three, "pulsar-mm");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("topic lg-test-mm: the scenario says 3 partitions but the broker has 2"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    let probe = http_get(&format!("{}/admin/v2/persistent/public/default/lg-test-new/partitions", b.admin_url));
    assert!(probe.contains("\"partitions\":0") || probe.contains("not found"), "lg-test-new must not exist: {probe}");

    // An admin URL where nothing listens: within connect_timeout.
    let scenario = write_scenario("pulsar-badadmin", two);
    let t0 = Instant::now();
    let r = run_scenario(
        &scenario,
        &[
            "--agents",
            &agent_list(&agents),
            "--set",
            &format!("broker.url={}", b.url),
            "--set",
            "broker.admin_url=http://127.0.0.1:1",
            "--set",
            "broker.connect_timeout=2s",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach the Pulsar admin API at http://127.0.0.1:1"), "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    remove_scenario_dir(&scenario);

    // Without admin_url, a partitioned topic that is not there: the agents'
    // check explains.
    let (r, _) = run_on(
        &b.url,
        &agents,
        "name: x\nbroker: {kind: pulsar, url: \"pulsar://p:1\"}\ntopics: [{name: lg-test-np, partitions: 3}]\nproducers: [{name: p, topic: lg-test-np, rate: 10}]\nphases: {duration: 1s}\n",
        "pulsar-np",
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("non-partitioned"), "{}", r.stderr);
}

/// A GET with curl (the test's own look at the admin API).
fn http_get(url: &str) -> String {
    let out = std::process::Command::new("curl").args(["-s", "-m", "5", url]).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Batched producers with every compression codec, cumulative acks on one
/// subscription, individual on another: exactly once everywhere.
#[test]
fn batching_every_codec_and_cumulative_acks() {
    let b = apache_pulsar_or_skip!();
    let agents = three_agents();
    let mut yaml =
        String::from("name: pulsar-codecs\nbroker: {kind: pulsar, url: \"pulsar://placeholder:6650\"}\ntopics:\n");
    let codecs = ["none", "lz4", "zlib", "zstd", "snappy"];
    for c in codecs {
        yaml.push_str(&format!("  - {{name: lg-test-codec-{c}}}\n"));
    }
    yaml.push_str("producers:\n");
    for c in codecs {
        yaml.push_str(&format!(
            "  - {{name: p-{c}, topic: lg-test-codec-{c}, rate: 300, message_size: 512, compression: {c}, batching: {{max_messages: 50, max_delay: 5ms}}}}\n"
        ));
    }
    yaml.push_str("consumers:\n");
    for c in codecs {
        yaml.push_str(&format!("  - {{name: ind-{c}, topic: lg-test-codec-{c}, type: shared, count: 2}}\n"));
        yaml.push_str(&format!(
            "  - {{name: cum-{c}, topic: lg-test-codec-{c}, type: exclusive, ack: cumulative, ack_every: 100}}\n"
        ));
    }
    yaml.push_str("phases: {duration: 3s, drain_timeout: 15s}\n");
    let (r, rep) = run_on(&b.url, &agents, &yaml, "pulsar-codecs");
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    assert_eq!(u(&rep["totals"]["acked"]), 5 * 900);
    exactly_once(&rep);
    assert_eq!(rep["subscriptions"].as_array().expect("subs").len(), 10);
}

/// Send errors on the real broker are counted by kind: a 1 ms send
/// timeout (Apache Pulsar's acks take longer, with the journal's fsync)
/// makes every late acknowledgement a `send: timeout`, and the kinds add
/// up to the group's send errors.
#[test]
fn send_errors_are_counted_by_kind() {
    let b = apache_pulsar_or_skip!();
    let agents = three_agents();
    let (r, rep) = run_on(
        &b.url,
        &agents[..1],
        r#"
name: pulsar-error-kinds
broker: {kind: pulsar, url: "pulsar://placeholder:6650"}
topics: [{name: lg-test-error-kinds}]
producers: [{name: p, topic: lg-test-error-kinds, rate: 300, send_timeout: 1ms}]
consumers: [{name: c, topic: lg-test-error-kinds, type: shared}]
phases: {duration: 2s, drain_timeout: 10s}
slo: {max_send_errors: 1000000, max_loss: 1000000}
"#,
        "pulsar-error-kinds",
    );
    assert!(r.code == 0 || r.code == 1, "{}\n{}", r.stdout, r.stderr);
    let p = rep["groups"].as_array().expect("groups").iter().find(|g| g["role"] == "producer").cloned();
    let p = p.expect("producer group");
    let errors = u(&p["send_errors"]);
    assert!(errors > 0, "1 ms is shorter than any acknowledgement: {p}");
    let kinds = p["errors_by_kind"].as_object().expect("errors by kind");
    assert_eq!(kinds.get("send: timeout").map(u), Some(errors), "{kinds:?}");
    assert!(r.stdout.contains("send: timeout"), "the summary names the kind: {}", r.stdout);
}

/// An independent client (the official Python one, `pulsar-client` from
/// PyPI) reading the same topic on its own subscription sees exactly what
/// our producers had acknowledged.
#[test]
fn python_client_agrees_with_our_counts() {
    let b = apache_pulsar_or_skip!();
    let python = repo_root().join(".venv/bin/python");
    assert!(python.exists(), ".venv/bin/python missing: run scripts/test.sh (it installs pulsar-client)");
    let script = repo_root().join("scripts/pulsar_count.py");
    let mut child = std::process::Command::new(python)
        .arg(&script)
        .args([&b.url, "lg-test-x", "xcheck", "4"])
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
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("python output");
    let _ = child.wait();
    let json = rest.lines().rev().find(|l| l.starts_with('{')).expect("python json line");
    let theirs: Value = serde_json::from_str(json).expect("python json");
    let ours = &rep["subscriptions"][0];
    assert_eq!(u(&theirs["unique"]), u(&rep["totals"]["acked"]), "python {theirs} vs report totals {}", rep["totals"]);
    assert_eq!(u(&theirs["unique"]), u(&ours["received_unique"]));
    assert_eq!(u(&theirs["deliveries"]), u(&theirs["unique"]), "python saw duplicates: {theirs}");
    assert_eq!(u(&theirs["producers"]), 4);
}

/// Token authentication: a run with the minted token passes (admin API
/// included); a wrong token ends at once with one line naming the cause.
#[test]
fn token_auth() {
    let b = apache_pulsar_or_skip!(Options { token: true, ..Default::default() });
    let token_file = b.token_file.clone().expect("token file");
    let agents = vec![AgentProc::start(), AgentProc::start()];
    let yaml = format!(
        r#"
name: pulsar-token
broker: {{kind: pulsar, url: "pulsar://placeholder:6650", auth: {{token_file: "{}"}}}}
topics: [{{name: lg-test-tok, partitions: 2}}]
producers: [{{name: p, topic: lg-test-tok, rate: 200}}]
consumers: [{{name: c, topic: lg-test-tok, type: shared, count: 2}}]
phases: {{duration: 2s, drain_timeout: 15s}}
"#,
        token_file.display()
    );
    let (r, rep) = run_with_admin(&b, &agents, &yaml, "pulsar-token");
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    exactly_once(&rep);

    let dir = temp_dir("pulsar-badtoken");
    let bad = dir.join("token");
    std::fs::write(&bad, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2FkZ2VuIn0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .expect("write");
    let wrong = yaml.replace(&token_file.display().to_string(), &bad.display().to_string());
    // The admin API first.
    let (r, _) = run_with_admin(&b, &agents, &wrong, "pulsar-token");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("refused our credentials (HTTP 401)"), "{}", r.stderr);
    // The broker itself (no admin URL).
    let t0 = Instant::now();
    let (r, _) = run_on(&b.url, &agents, &wrong.replace("partitions: 2", "partitions: 0"), "pulsar-token");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("AuthenticationError"), "names the cause: {}", r.stderr);
    assert!(r.stderr.contains("the token in broker.auth was refused"), "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let _ = std::fs::remove_dir_all(dir);
}

/// TLS: pulsar+ssl:// with the CA passes; TLS spoken to the plaintext port
/// fails within connect_timeout, one line.
#[test]
fn tls() {
    let dir = temp_dir("pulsar-tls");
    let pki = testkit::pki::Pki::generate(&dir).expect("pki");
    let b = apache_pulsar_or_skip!(Options {
        tls: Some((pki.agent_cert.clone(), pki.agent_key.clone(), pki.ca.clone())),
        ..Default::default()
    });
    let tls_url = b.tls_url.clone().expect("tls url");
    let agents = vec![AgentProc::start(), AgentProc::start()];
    let yaml = format!(
        r#"
name: pulsar-tls
broker: {{kind: pulsar, url: "pulsar+ssl://placeholder:6651", tls: {{ca_file: "{}"}}}}
topics: [{{name: lg-test-tls}}]
producers: [{{name: p, topic: lg-test-tls, rate: 200}}]
consumers: [{{name: c, topic: lg-test-tls, type: shared, count: 2}}]
phases: {{duration: 2s, drain_timeout: 15s}}
"#,
        pki.ca
    );
    let (r, rep) = run_on(&tls_url, &agents, &yaml, "pulsar-tls");
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    exactly_once(&rep);

    let plain = b.url.replace("pulsar://", "pulsar+ssl://");
    let t0 = Instant::now();
    let scenario = write_scenario("pulsar-tls-plain", &yaml);
    let r = run_scenario(
        &scenario,
        &[
            "--agents",
            &agent_list(&agents),
            "--set",
            &format!("broker.url={plain}"),
            "--set",
            "broker.connect_timeout=3s",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(r.stderr.contains("TLS handshake"), "names the cause: {}", r.stderr);
    assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "one line: {}", r.stderr);
    remove_scenario_dir(&scenario);
    let _ = std::fs::remove_dir_all(dir);
}
