//! An agent told to go mid-run (SIGTERM: a pod evicted, a rolling update),
//! with real processes and a broker that keeps messages across agents (the
//! Danube test double): it stops its producers, sends its final report and
//! leaves; the coordinator records it `left`, judges what its producers
//! had acknowledged exactly, and applies `on_agent_loss`. A second SIGTERM
//! makes an agent exit at once; an idle agent just exits.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use testkit::danube_double::{DanubeDouble, Knobs};

/// Two producers (one per producer-side agent) and one subscription on the
/// third agent (`split`): the agent that leaves hosts only a producer.
fn scenario(dir: &Path, url: &str, policy: &str) -> String {
    write_file(
        dir,
        "leave.yaml",
        &format!(
            r#"
name: leave
broker: {{kind: danube, url: "{url}"}}
topics: [{{name: lg-leave}}]
producers: [{{name: p, topic: lg-leave, count: 2, rate: 100}}]
consumers: [{{name: c, topic: lg-leave, type: shared}}]
placement: split
phases: {{warmup: 1s, duration: 5s, drain_timeout: 10s}}
on_agent_loss: {policy}
slo: {{max_loss: 0}}
"#
        ),
    )
}

/// Waits (at most 30 s) until the coordinator has sent Start.
fn wait_for_start(c: &CoordinatorProc) {
    let t0 = Instant::now();
    while !c.stderr().contains("start:") {
        assert!(t0.elapsed() < Duration::from_secs(30), "no start:\n{}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most `limit`) for `child` to exit: its exit code and how long it took.
fn exit_within(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return (st.code(), t0.elapsed());
        }
        assert!(t0.elapsed() < limit, "the agent was still running {limit:?} after it was told to go");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the scenario on three agents and SIGTERMs the first (a producer
/// only) 2.5 s in (1.5 s into the measurement): the coordinator's result,
/// the report (Null when none), that agent's address, its exit code and
/// how long it took to exit.
fn run_and_term_one(policy: &str) -> (Ran, serde_json::Value, String, Option<i32>, Duration) {
    let d = DanubeDouble::start(Knobs::default()).expect("danube test double");
    let dir = temp_dir(&format!("leave-{policy}"));
    let sc = scenario(&dir, &d.url, policy);
    let mut agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start_with(&["--leave-drain", "1s"])).collect();
    let c = spawn_scenario(Path::new(&sc), &["--agents", &agent_list(&agents)]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_millis(2_500));
    agents[0].signal("TERM");
    let (code, took) = exit_within(&mut agents[0].child, Duration::from_secs(10));
    let r = c.wait(Duration::from_secs(40));
    let rep = if (0..=3).contains(&r.code) { report_of(&r) } else { serde_json::Value::Null };
    let _ = std::fs::remove_dir_all(dir);
    (r, rep, agents[0].addr.clone(), code, took)
}

fn agent_row<'a>(rep: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
    rep["agents"].as_array().expect("agents").iter().find(|a| a["address"] == address).expect("the agent's row")
}

#[test]
fn an_agent_sigtermed_mid_run_with_continue_is_left_and_its_acknowledged_messages_are_judged_exactly() {
    let _serial = serial();
    let (r, rep, addr, code, took) = run_and_term_one("continue");
    eprintln!("the SIGTERMed agent exited {code:?} after {took:?}");
    assert_eq!(code, Some(0), "it left cleanly:\n{}", r.stderr);
    assert!(took < Duration::from_secs(5), "a producer-only agent does not wait for a drain: {took:?}");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("agent {addr} left at")), "{}", r.stderr);
    assert!(r.stderr.contains("continuing with 2 agent(s)"), "{}", r.stderr);
    assert_eq!(rep["verdict"], "pass", "{}", rep["notes"]);
    let left = agent_row(&rep, &addr);
    assert_eq!(left["status"], "left", "{left}");
    let left_acked = u(&left["acked"]);
    // 1 s warmup + 1.5 s at 100 msg/s: about 250; it stopped long before its 600.
    assert!(left_acked > 150 && left_acked < 450, "its counts come from its final report: {left}");
    let others: Vec<_> =
        rep["agents"].as_array().expect("agents").iter().filter(|a| a["address"] != addr.as_str()).collect();
    assert!(others.iter().all(|a| a["status"] == "ok"), "{others:?}");
    // Its acknowledged messages are in the accounting, all delivered: lost 0 exactly.
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    let total_acked = u(&rep["totals"]["acked"]);
    assert!(total_acked > left_acked + 500, "the other producer ran its whole schedule: {}", rep["totals"]);
    let s = sub(&rep, "c");
    assert_eq!(u(&s["expected"]), total_acked, "the left agent's acked set counts: {s}");
    assert_eq!(u(&s["received_unique"]), total_acked, "{s}");
    check_consistent(&rep);
    let cov = &rep["coverage"];
    assert_eq!((u(&cov["agents_left"]), u(&cov["agents_lost"])), (1, 0), "{cov}");
    assert_eq!((u(&cov["producers_reported"]), u(&cov["subscriptions_judged"])), (2, 1), "{cov}");
    let notes = rep["notes"].to_string();
    assert!(notes.contains(&format!("agent {addr} left at")) && notes.contains("judged exactly"), "{notes}");
    assert!(r.stdout.contains("left"), "the summary shows the status: {}", r.stdout);
}

#[test]
fn an_agent_sigtermed_mid_run_with_abort_ends_the_run_and_the_report_is_written() {
    let _serial = serial();
    let t0 = Instant::now();
    let (r, rep, addr, code, _) = run_and_term_one("abort");
    assert_eq!(code, Some(0), "it left cleanly:\n{}", r.stderr);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(rep["verdict"], "incomplete");
    assert_eq!(agent_row(&rep, &addr)["status"], "left");
    let notes = rep["notes"].to_string();
    assert!(notes.contains(&format!("agent {addr} left at")) && notes.contains("on_agent_loss: abort"), "{notes}");
    assert!(notes.contains("SIGTERM"), "{notes}");
    // The run stopped when the agent left, not at the end of its 6 s.
    let ok = rep["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["status"] == "ok" && u(&a["producers"]) > 0)
        .cloned();
    assert!(u(&ok.expect("the other producer agent")["acked"]) < 500, "{}", rep["agents"]);
    assert!(t0.elapsed() < Duration::from_secs(30), "took {:?}", t0.elapsed());
}

/// A leaving agent whose consumers drain for 20 s: the second SIGTERM
/// ends it at once.
#[test]
fn a_second_sigterm_makes_a_leaving_agent_exit_at_once() {
    let _serial = serial();
    let dir = temp_dir("leave-twice");
    let sc = write_file(&dir, "s.yaml", &SHORT.replace("duration: 1s", "duration: 30s"));
    let mut a = AgentProc::start_with(&["--leave-drain", "20s", "--leave-grace", "25s"]);
    let c = spawn_scenario(Path::new(&sc), &["--agents", &a.addr]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_millis(500));
    a.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.child.try_wait().expect("try_wait").is_none(), "still draining its consumer");
    a.signal("TERM");
    let (code, took) = exit_within(&mut a.child, Duration::from_secs(3));
    eprintln!("second SIGTERM: exited {code:?} after {took:?}");
    assert_eq!(code, Some(3), "{}", a.log_text());
    assert!(a.log_text().contains("a second SIGTERM: exiting now"), "{}", a.log_text());
    let r = c.wait(Duration::from_secs(30));
    assert_eq!(r.code, 3, "the only agent lost before its final report: {}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_idle_agent_sigtermed_exits_at_once() {
    let mut a = AgentProc::start_with(&[]);
    a.signal("TERM");
    let (code, took) = exit_within(&mut a.child, Duration::from_secs(5));
    eprintln!("idle agent: exited {code:?} after {took:?}");
    assert_eq!(code, Some(0), "{}", a.log_text());
}
