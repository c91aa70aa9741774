//! Faults survived, with real processes: an agent killed mid-run under
//! `on_agent_loss: continue` and `abort`; agents found by DNS.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Two memory topics: each agent process gets one (the memory broker lives
/// in the agent's process), so losing an agent loses one topic whole.
fn scenario(dir: &std::path::Path, policy: &str) -> String {
    let p = dir.join("loss.yaml");
    std::fs::write(
        &p,
        format!(
            r#"
name: loss
broker: {{kind: memory}}
topics: [{{name: t1}}, {{name: t2}}]
producers:
  - {{name: p1, topic: t1, rate: 200}}
  - {{name: p2, topic: t2, rate: 200}}
consumers:
  - {{name: c1, topic: t1}}
  - {{name: c2, topic: t2}}
phases: {{duration: 4s, drain_timeout: 5s}}
on_agent_loss: {policy}
"#
        ),
    )
    .expect("write");
    p.to_str().expect("utf8").to_string()
}

/// Starts the run on two agent processes and kill -9s the second one 2 s
/// into it; returns the coordinator's result and the killed agent's address.
fn run_and_kill_one(policy: &str) -> (Ran, String, std::path::PathBuf) {
    run_and_fault_one(policy, "KILL")
}

/// The same with any signal: `STOP` freezes the agent (its connection
/// stays open; only its silence tells).
fn run_and_fault_one(policy: &str, signal: &str) -> (Ran, String, std::path::PathBuf) {
    let dir = temp_dir(&format!("loss-{policy}-{signal}"));
    let sc = scenario(&dir, policy);
    let a = AgentProc::start_with(&["--lease", "2s"]);
    let mut b = AgentProc::start_with(&["--lease", "2s"]);
    let list = format!("{},{}", a.addr, b.addr);
    let c = CoordinatorProc::spawn(&["run", &sc, "--agents", &list, "--results", dir.to_str().expect("utf8")]);
    let t0 = Instant::now();
    while !c.stderr().contains("start:") {
        assert!(t0.elapsed() < Duration::from_secs(10), "no start:\n{}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let st = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(b.child.id().to_string())
        .status()
        .expect("kill");
    assert!(st.success());
    let killed = b.addr.clone();
    let t1 = Instant::now();
    let r = c.wait(Duration::from_secs(30));
    eprintln!("coordinator ended {:?} after SIG{signal} of an agent (exit {})", t1.elapsed(), r.code);
    b.child.kill().expect("kill -9 the agent");
    drop(a);
    (r, killed, dir)
}

#[test]
fn agent_killed_mid_run_with_continue_the_run_completes_and_marks_it_lost() {
    let (r, killed, dir) = run_and_kill_one("continue");
    assert_eq!(r.code, 0, "judged on what remains, which held its SLOs:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("agent {killed} lost")), "{}", r.stderr);
    assert!(r.stderr.contains("continuing with 1 agent(s)"), "{}", r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "pass");
    let agents = rep["agents"].as_array().expect("agents");
    let lost = agents.iter().find(|a| a["address"] == killed.as_str()).expect("the killed agent is in the report");
    assert_eq!(lost["status"], "lost", "{lost}");
    assert!(u(&lost["acked"]) >= 100, "its counts until the loss come from its intervals: {lost}");
    let ok = agents.iter().find(|a| a["address"] != killed.as_str()).expect("the other agent");
    assert_eq!(ok["status"], "ok");
    assert_eq!(u(&ok["acked"]), 800, "the survivor ran its whole schedule: {ok}");
    let cov = &rep["coverage"];
    assert_eq!(u(&cov["agents_lost"]), 1, "{cov}");
    assert_eq!(u(&cov["subscriptions_judged"]), 1, "{cov}");
    assert_eq!(cov["not_judged"].as_array().expect("list").len(), 1, "{cov}");
    // Loss accounting covers only what could be reported, and says so.
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    assert_eq!(u(&rep["totals"]["acked"]), 800);
    let notes: Vec<&str> = rep["notes"].as_array().expect("notes").iter().filter_map(|n| n.as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("is not judged for loss")), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("coverage: 1 of 2 agent(s) lost")), "{notes:?}");
    assert!(r.stdout.contains("coverage:"), "the summary prints the coverage: {}", r.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agent_killed_mid_run_with_abort_every_agent_stops_and_the_report_is_written() {
    let (r, killed, dir) = run_and_kill_one("abort");
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "incomplete");
    let lost = rep["agents"].as_array().expect("agents").iter().find(|a| a["address"] == killed.as_str()).cloned();
    assert_eq!(lost.expect("in the report")["status"], "lost");
    let notes = rep["notes"].to_string();
    assert!(notes.contains(&format!("lost agent {killed}")) && notes.contains("on_agent_loss: abort"), "{notes}");
    // The run stopped at the loss: the survivor did not run its 4 s schedule.
    let ok = rep["agents"].as_array().expect("agents").iter().find(|a| a["address"] != killed.as_str()).cloned();
    assert!(u(&ok.expect("survivor")["acked"]) < 800);
    let _ = std::fs::remove_dir_all(dir);
}

/// A frozen agent (SIGSTOP): no connection closes, only its silence tells.
/// The coordinator calls it lost after its lease + 1 s and goes on.
#[test]
fn agent_frozen_mid_run_with_continue_is_lost_after_its_lease() {
    let (r, frozen, dir) = run_and_fault_one("continue", "STOP");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("agent {frozen} lost (no word from the agent for 3s)")), "{}", r.stderr);
    let rep = report_of(&r);
    let lost = rep["agents"].as_array().expect("agents").iter().find(|a| a["address"] == frozen.as_str()).cloned();
    assert_eq!(lost.expect("in the report")["status"], "lost");
    assert_eq!(u(&rep["coverage"]["agents_lost"]), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agents_are_found_by_dns() {
    let dir = temp_dir("dns");
    let sc = dir.join("s.yaml");
    std::fs::write(
        &sc,
        "name: dns\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 100}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 1s}\n",
    )
    .expect("write");
    let sc = sc.to_str().expect("utf8");
    let agent = AgentProc::start();
    let port = agent.addr.rsplit_once(':').expect("port").1.to_string();
    // `localhost` resolves through /etc/hosts to 127.0.0.1.
    let target = format!("localhost:{port}");
    let r = coordinator(&[
        "run",
        sc,
        "--agents-dns",
        &target,
        "--expect-agents",
        "1",
        "--quiet",
        "--results",
        dir.to_str().expect("utf8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report_of(&r)["agents"][0]["address"], agent.addr.as_str());

    // Fewer agents than expected: exit 3 at the discovery timeout, not a hang.
    let t0 = Instant::now();
    let r = coordinator(&[
        "run",
        sc,
        "--agents-dns",
        &target,
        "--expect-agents",
        "3",
        "--discovery-timeout",
        "2s",
        "--quiet",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("agents at {target}: found 1 address(es)")), "{}", r.stderr);
    assert!(r.stderr.contains("expected 3"), "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());

    // A name that does not resolve.
    let r = coordinator(&["run", sc, "--agents-dns", "no-such-agents.invalid:7070", "--discovery-timeout", "1s"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("agents at no-such-agents.invalid:7070: found no address"), "{}", r.stderr);

    // --agents and --agents-dns together: bad input.
    let r = coordinator(&["run", sc, "--agents", "127.0.0.1:1", "--agents-dns", &target]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}
