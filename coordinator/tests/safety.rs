//! Agent safety with real processes: the shared token, the broker
//! allowlist, the rate cap, and the lease that stops all load when the
//! coordinator dies or freezes.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "s3cret-token-for-tests-0123456789";

#[test]
fn the_token_is_required_on_every_call() {
    let dir = temp_dir("token");
    let token = write_file(&dir, "token", &format!("{TOKEN}\n"));
    let wrong = write_file(&dir, "wrong", "not-the-token-0123456789\n");
    let scenario = write_file(&dir, "s.yaml", SHORT);
    let res = dir.to_str().expect("utf8");
    let agent = AgentProc::start_with(&["--token-file", &token]);

    // No token, then a wrong one: refused before any message, exit 3, the agent named.
    for extra in [vec![], vec!["--token-file", wrong.as_str()]] {
        let mut args = vec!["run", &scenario, "--agents", &agent.addr, "--results", res, "--quiet"];
        args.extend(extra.iter().copied());
        let r = coordinator(&args);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains(&format!("agent {}: authentication failed", agent.addr)), "{}", r.stderr);
        assert!(r.stdout.trim().is_empty(), "no run, no results: {}", r.stdout);
    }
    let log = agent.log_text();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("refused a call: authentication failed")).collect();
    assert_eq!(refusals.len(), 2, "{log}");
    assert!(refusals[0].contains("\"no token\"") && refusals[1].contains("\"wrong token\""), "{log}");
    assert!(refusals.iter().all(|l| l.contains("peer") && l.contains("127.0.0.1:")), "refusals name the peer: {log}");

    // The right token: the run goes through.
    let r =
        coordinator(&["run", &scenario, "--agents", &agent.addr, "--results", res, "--quiet", "--token-file", &token]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report_of(&r)["verdict"], "pass");

    // A token too short to protect anything is refused at start (exit 2).
    let short = write_file(&dir, "short", "abc\n");
    let out = std::process::Command::new(agent_bin())
        .args(["--listen", "127.0.0.1:0", "--token-file", &short])
        .output()
        .expect("agent");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

/// The broker is not on the allowlist: the agent refuses the shard in
/// Prepare and never opens a connection to it (a listener on the broker's
/// address counts connections: none). The memory broker needs no entry.
#[test]
fn a_broker_off_the_allowlist_is_refused_before_any_connection() {
    let dir = temp_dir("allow");
    let broker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    broker.set_nonblocking(true).expect("nonblocking");
    let port = broker.local_addr().expect("addr").port();
    let scenario = write_file(
        &dir,
        "p.yaml",
        &format!("name: p\nbroker: {{kind: pulsar, url: \"pulsar://127.0.0.1:{port}\", connect_timeout: 2s}}\ntopics: [{{name: t}}]\nproducers: [{{name: p, topic: t, rate: 10}}]\nphases: {{duration: 1s}}\n"),
    );
    let agent = AgentProc::start_with(&["--allow-broker", "pulsar.example:6650", "--allow-broker", "127.0.0.1:1"]);
    let r = coordinator(&["run", &scenario, "--agents", &agent.addr, "--quiet"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("broker 127.0.0.1:{port} is not on this agent's allowlist")),
        "the allowlist refusal, not a connect error: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("cannot connect"), "{}", r.stderr);
    assert!(r.stderr.contains(&agent.addr), "names the agent: {}", r.stderr);
    match broker.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the agent connected to a broker off its allowlist: {other:?}"),
    }
    // Memory: exempt.
    let mem = write_file(&dir, "m.yaml", SHORT);
    let r = coordinator(&["run", &mem, "--agents", &agent.addr, "--quiet", "--results", dir.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_shard_above_the_rate_cap_is_refused() {
    let dir = temp_dir("maxrate");
    let scenario = write_file(
        &dir,
        "s.yaml",
        "name: fast\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, count: 3, rate: 500}]\nphases: {duration: 1s}\n",
    );
    let agent = AgentProc::start_with(&["--max-rate", "1000"]);
    let t0 = Instant::now();
    let r = coordinator(&["run", &scenario, "--agents", &agent.addr, "--quiet"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("producers total 1500 msg/s, more than this agent's --max-rate 1000 msg/s"),
        "{}",
        r.stderr
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Within the cap it runs, and the agent is free again.
    let r = coordinator(&[
        "run",
        &scenario,
        "--agents",
        &agent.addr,
        "--quiet",
        "--set",
        "producers[0].rate=300",
        "--results",
        dir.to_str().expect("utf8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

const LONG: &str = "name: long\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 200}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 60s}\n";

/// Starts a long run from a coordinator process on `agent`; returns once
/// the agent is busy with it.
fn start_long_run(agent: &AgentProc, scenario: &str, res: &str) -> CoordinatorProc {
    let c = CoordinatorProc::spawn(&["run", scenario, "--agents", &agent.addr, "--results", res]);
    let t0 = Instant::now();
    loop {
        if c.stderr().contains("start:") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the run did not start:\n{}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    let busy = probe_session(&agent.addr, None).expect_err("the agent is busy with the run");
    assert!(busy.contains("busy"), "{busy}");
    c
}

/// Polls until the agent takes a new session; how long that took.
fn time_until_free(agent: &AgentProc, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        match probe_session(&agent.addr, None) {
            Ok(()) => return t0.elapsed(),
            Err(e) => {
                assert!(e.contains("busy"), "{e}");
                assert!(t0.elapsed() < limit, "the agent was still busy after {limit:?}:\n{}", agent.log_text());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kill -9 of the coordinator mid-run: the agent stops its load and takes
/// the next run within the lease + 1 s (its TCP connection closes at once,
/// so in practice at once).
#[test]
fn coordinator_killed_mid_run_frees_the_agent_within_the_lease() {
    let dir = temp_dir("killcoord");
    let scenario = write_file(&dir, "long.yaml", LONG);
    let agent = AgentProc::start_with(&["--lease", "2s"]);
    let c = start_long_run(&agent, &scenario, dir.to_str().expect("utf8"));
    c.signal("KILL");
    let took = time_until_free(&agent, Duration::from_secs(3));
    eprintln!("agent free {took:?} after kill -9 of the coordinator (lease 2s)");
    assert!(took <= Duration::from_secs(3));
    drop(c);
    let _ = std::fs::remove_dir_all(dir);
}

/// A frozen coordinator (SIGSTOP: its connection stays open, nothing is
/// sent, TCP notices nothing): the agent's lease runs out, it stops all
/// load and takes the next run within the lease + 1 s.
#[test]
fn coordinator_frozen_mid_run_frees_the_agent_when_the_lease_ends() {
    let dir = temp_dir("freezecoord");
    let scenario = write_file(&dir, "long.yaml", LONG);
    let agent = AgentProc::start_with(&["--lease", "2s"]);
    let c = start_long_run(&agent, &scenario, dir.to_str().expect("utf8"));
    c.signal("STOP");
    let took = time_until_free(&agent, Duration::from_secs(3));
    eprintln!("agent free {took:?} after SIGSTOP of the coordinator (lease 2s)");
    assert!(took >= Duration::from_millis(1200), "freed by the lease, not by a closed connection: {took:?}");
    assert!(took <= Duration::from_secs(3), "{took:?}");
    assert!(agent.log_text().contains("no word from the coordinator within the lease"), "{}", agent.log_text());
    c.signal("KILL");
    drop(c);
    let _ = std::fs::remove_dir_all(dir);
}

/// `--max-rate` is also enforced while running: a closed-loop producer
/// (`rate: max`), which has no planned rate to refuse, is held to the cap.
#[test]
fn the_rate_cap_holds_a_closed_loop_producer() {
    let agent = AgentProc::start_with(&["--max-rate", "500"]);
    let scenario = write_scenario(
        "cap",
        "name: cap\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, count: 2, rate: max, max_in_flight: 50}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 3s}\n",
    );
    let r = run_scenario(&scenario, &["--agents", &agent.addr, "--quiet"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let rep = report_of(&r);
    let rate = rep["groups"][0]["rate_msgs_per_s"].as_f64().expect("rate");
    // 500 msg/s for 3 s plus at most one 25-message burst.
    assert!(rate > 400.0 && rate <= 510.0, "closed-loop rate {rate} msg/s under a 500 msg/s cap");
    assert_eq!(rep["totals"]["lost"], 0);
    remove_scenario_dir(&scenario);
}
