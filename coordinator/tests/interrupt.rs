//! Interrupted runs lose nothing: the real `coordinator` binary on its
//! in-process agents (memory broker) gets SIGTERM or SIGINT at several
//! points (connecting, prepare, warmup, measure, a ceiling step) and each
//! time writes a readable report (verdict `interrupted`, exit 4) within a
//! bound, whatever the scenario's drain timeout; a second signal ends the
//! drain at once; a coordinator killed with SIGKILL leaves journal.jsonl,
//! which `coordinator report DIR` rebuilds (verdict `incomplete`, exit 3).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Consumers that take nothing for 100 s under a drain timeout of 120 s:
/// only the interrupted drain's bound can end the run early.
/// (On one agent: an agent whose only task is a consumer that has not
/// begun sends no interval reports, and the merged lines would wait for it.)
const STUCK: &str = "name: stuck\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
    producers: [{name: p, topic: t, rate: 200}]\n\
    consumers: [{name: c, topic: t, start_after: 100s}]\n\
    phases: {warmup: WARMUP, duration: 60s, drain_timeout: 120s}\n";

fn stuck(warmup: &str) -> String {
    STUCK.replace("WARMUP", warmup)
}

/// Polls `what` every 50 ms until it is true; panics after `limit` with `why`.
fn wait_for(limit: Duration, why: &str, mut what: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !what() {
        assert!(t0.elapsed() < limit, "not within {limit:?}: {why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the coordinator's stderr has a line containing `text`.
fn wait_stderr(c: &CoordinatorProc, text: &str) {
    wait_for(Duration::from_secs(30), text, || c.stderr().lines().any(|l| l.contains(text)));
}

/// Waits until the coordinator has shown an interval of `phase` (its
/// one line per interval: `[  1.0s] #0    warmup   pub ...`).
fn wait_interval(c: &CoordinatorProc, phase: &str) {
    let phase = format!(" {phase} ");
    wait_for(Duration::from_secs(30), &phase, || {
        c.stderr().lines().any(|l| l.starts_with('[') && l.contains("s] #") && l.contains(&phase))
    });
}

/// The report.json of the run whose directory is the last stdout line.
fn report(r: &Ran) -> serde_json::Value {
    assert!(!r.stdout.trim().is_empty(), "no results directory on stdout; stderr:\n{}", r.stderr);
    report_of(r)
}

/// The run directories (holding journal.jsonl) under `root`.
fn journals(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.join("journal.jsonl").exists()).collect())
        .unwrap_or_default()
}

/// Interval lines in a run directory's journal.
fn journal_intervals(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap_or_default();
    text.lines().filter(|l| l.starts_with("{\"interval\"")).count()
}

#[test]
fn sigterm_in_measure_drains_for_the_bound_then_reports_interrupted() {
    let _s = serial();
    let scenario = write_scenario("int-measure", &stuck("1s"));
    let c = spawn_scenario(&scenario, &["--local-agents", "1", "--interrupt-drain", "2s"]);
    wait_interval(&c, "measure");
    let signalled = Instant::now();
    c.signal("TERM");
    let r = c.wait(Duration::from_secs(20));
    let took = signalled.elapsed();
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    // Drain 2 s + final reports + report writing, not the scenario's 120 s.
    assert!(took < Duration::from_secs(15), "ended {took:?} after SIGTERM");
    let rep = report(&r);
    assert_eq!(rep["verdict"], "interrupted");
    assert_eq!(rep["interrupted"]["signal"], "SIGTERM");
    assert_eq!(rep["interrupted"]["phase"], "measure");
    let drain = rep["phases"]["drain_s"].as_f64().expect("drain_s");
    assert!((1.5..6.0).contains(&drain), "the bounded drain really ran: {drain} s");
    assert!(!rep["intervals"].as_array().expect("intervals").is_empty());
    assert!(u(&rep["totals"]["acked"]) > 0, "what was measured is kept: {}", rep["totals"]);
    assert!(rep["notes"][0].as_str().expect("note").contains("interrupted by SIGTERM"), "{}", rep["notes"]);
    assert!(r.stdout.contains("verdict: INTERRUPTED (SIGTERM at "), "{}", r.stdout);
    // The journal of the run ends with its verdict.
    let dir = PathBuf::from(r.stdout.lines().last().expect("dir"));
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).expect("journal.jsonl");
    assert_eq!(journal.lines().last(), Some("{\"end\":\"interrupted\"}"), "{journal}");
    remove_scenario_dir(&scenario);
}

#[test]
fn sigint_in_warmup_and_a_second_signal_ends_the_drain_at_once() {
    let _s = serial();
    let scenario = write_scenario("int-second", &stuck("30s"));
    let c = spawn_scenario(&scenario, &["--local-agents", "1", "--interrupt-drain", "60s"]);
    wait_interval(&c, "warmup");
    c.signal("INT");
    wait_stderr(&c, "consumers drain for up to 1m");
    let second = Instant::now();
    c.signal("INT");
    let r = c.wait(Duration::from_secs(20));
    let took = second.elapsed();
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(took < Duration::from_secs(10), "ended {took:?} after the second SIGINT, not after the 60 s drain");
    let rep = report(&r);
    assert_eq!(rep["verdict"], "interrupted");
    assert_eq!(rep["interrupted"]["signal"], "SIGINT");
    assert_eq!(rep["interrupted"]["phase"], "warmup");
    assert!(rep["notes"][0].as_str().expect("note").contains("cut short by a second signal"), "{}", rep["notes"]);
    remove_scenario_dir(&scenario);
}

/// An "agent" that takes TCP connections and never answers: the
/// coordinator stays in its connect phase.
fn silent_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

#[test]
fn a_signal_while_connecting_is_one_line_and_exit_4() {
    let _s = serial();
    let (listener, addr) = silent_listener();
    let scenario = write_scenario("int-connect", SHORT);
    let c = spawn_scenario(&scenario, &["--agents", &addr]);
    // The coordinator's connection arrives: it is connecting now.
    let (conn, _) = listener.accept().expect("the coordinator connects");
    c.signal("TERM");
    let r = c.wait(Duration::from_secs(10));
    drop(conn);
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("interrupted by SIGTERM while connecting to the agents"), "{}", r.stderr);
    assert!(r.stdout.trim().is_empty(), "no results directory: {}", r.stdout);
    remove_scenario_dir(&scenario);
}

#[test]
fn a_signal_while_the_agents_prepare_writes_a_report_of_what_was_set_up() {
    let _s = serial();
    // A "Pulsar broker" that never answers: the agents' prepare waits on it.
    let (listener, broker) = silent_listener();
    let yaml = format!(
        "name: prep\nbroker: {{kind: pulsar, url: \"pulsar://{broker}\", connect_timeout: 30s}}\ntopics: [{{name: t}}]\n\
         producers: [{{name: p, topic: t, rate: 10}}]\nconsumers: [{{name: c, topic: t}}]\nphases: {{duration: 5s}}\n"
    );
    let scenario = write_scenario("int-prepare", &yaml);
    let c = spawn_scenario(&scenario, &[]);
    wait_stderr(&c, "scenario `prep` on");
    let _conn = listener.accept().expect("an agent connects to the broker");
    c.signal("TERM");
    let r = c.wait(Duration::from_secs(15));
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report(&r);
    assert_eq!(rep["verdict"], "interrupted");
    assert_eq!(rep["interrupted"]["phase"], "prepare");
    assert_eq!(rep["agents"].as_array().expect("agents").len(), 2, "the agents that were set up");
    assert!(rep["notes"][0].as_str().expect("note").contains("no load ran"), "{}", rep["notes"]);
    remove_scenario_dir(&scenario);
}

#[test]
fn sigterm_during_a_ceiling_step_ends_the_search_with_the_steps_so_far() {
    let _s = serial();
    let yaml = "name: ceil\nmode: ceiling\nceiling: {start: 200, max: 100000, step_duration: 2s}\n\
        broker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, total_rate: 200}]\n\
        consumers: [{name: c, topic: t}]\nphases: {warmup: 0s, duration: 2s}\n";
    let scenario = write_scenario("int-ceiling", yaml);
    let root = scenario.parent().expect("dir").to_path_buf();
    let c = spawn_scenario(&scenario, &[]);
    wait_stderr(&c, "step  1:");
    // The second step has started: its journal is there.
    wait_for(Duration::from_secs(20), "the second step's journal", || !journals(&root).is_empty());
    c.signal("TERM");
    let r = c.wait(Duration::from_secs(15));
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report(&r);
    assert_eq!(rep["verdict"], "interrupted");
    assert_eq!(rep["interrupted"]["signal"], "SIGTERM");
    let steps = rep["ceiling"]["steps"].as_array().expect("ceiling steps");
    assert!(!steps.is_empty(), "the judged steps are kept: {}", rep["ceiling"]);
    assert!(rep["notes"][0].as_str().expect("note").contains("ceiling search interrupted"), "{}", rep["notes"]);
    remove_scenario_dir(&scenario);
}

#[test]
fn a_killed_coordinator_leaves_a_journal_that_report_rebuilds() {
    let _s = serial();
    let scenario = write_scenario("int-kill", &stuck("1s"));
    let root = scenario.parent().expect("dir").to_path_buf();
    let c = spawn_scenario(&scenario, &["--local-agents", "1"]);
    wait_for(Duration::from_secs(30), "3 intervals in the journal", || {
        journals(&root).first().is_some_and(|d| journal_intervals(d) >= 3)
    });
    c.signal("KILL");
    let killed = c.wait(Duration::from_secs(10));
    assert_ne!(killed.code, 0);
    let dir = journals(&root).pop().expect("the run directory");
    assert!(!dir.join("report.json").exists());
    let written = journal_intervals(&dir);

    let r = coordinator(&["report", utf8(&dir)]);
    assert_eq!(r.code, 3, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("verdict: INCOMPLETE"), "{}", r.stdout);
    assert!(r.stdout.lines().last().is_some_and(|l| l.ends_with("report.html")), "{}", r.stdout);
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("json");
    assert_eq!(rep["verdict"], "incomplete");
    let rows = rep["intervals"].as_array().expect("intervals");
    assert!(rows.len() >= written, "{} rows from {written} intervals", rows.len());
    assert!(u(&rep["totals"]["sent"]) > 0, "{}", rep["totals"]);
    assert!(rep["notes"].to_string().contains("rebuilt from journal.jsonl"), "{}", rep["notes"]);
    assert!(dir.join("timeseries.csv").exists() && dir.join("report.html").exists());
    // Read again, the rebuilt report.json keeps its verdict's exit code.
    assert_eq!(coordinator(&["report", utf8(&dir)]).code, 3);
    remove_scenario_dir(&scenario);
}
