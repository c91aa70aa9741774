//! Faults survived, with real processes: an agent killed or frozen mid-run
//! under `on_agent_loss: continue` and `abort`; silence noted for an agent
//! frozen inside its lease, never for one that answered its keepalives;
//! agents found by DNS; agents in network namespaces (separate hosts)
//! whose link is cut for less and for more than their lease; a slow link to an agent; the Pulsar broker
//! killed -9 and restarted mid-run; the Danube double and Apache Pulsar
//! blocked from an agent's host for a few seconds.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::netns::NsAgent;
use common::*;

/// Two memory topics: each agent process gets one (the memory broker lives
/// in the agent's process), so losing an agent loses one topic whole.
fn scenario(dir: &std::path::Path, policy: &str) -> String {
    scenario_of(dir, policy, "4s")
}

/// The same, measuring for `duration`.
fn scenario_of(dir: &std::path::Path, policy: &str, duration: &str) -> String {
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
phases: {{duration: {duration}, drain_timeout: 5s}}
on_agent_loss: {policy}
"#
        ),
    )
    .expect("write");
    p.to_str().expect("utf8").to_string()
}

/// Waits (at most 30 s) until the coordinator has sent Start.
fn wait_for_start(c: &CoordinatorProc) {
    let t0 = Instant::now();
    while !c.stderr().contains("start:") {
        assert!(t0.elapsed() < Duration::from_secs(30), "no start:\n{}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let c = spawn_scenario(Path::new(&sc), &["--agents", &agent_list([&a, &b])]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_secs(2));
    b.signal(signal);
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

/// A long drain (the consumers start 8 s into a 2 s run) with producers
/// and consumers on two local agents (`placement: split`): once its
/// producers are done the producers' agent has no interval report to send
/// and is heard only through its keepalive answers (every 2.5 s, a quarter
/// of its 10 s lease) until the drain ends. It answered every one: no
/// silence note, during the run or in the report.
#[test]
fn a_producer_only_agent_through_a_long_drain_is_not_called_silent() {
    let scenario = write_scenario(
        "long-drain",
        "name: long-drain\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
         producers: [{name: p, topic: t, count: 4, rate: 500}]\n\
         consumers: [{name: c, topic: t, start_after: 8s}]\n\
         phases: {duration: 2s, drain_timeout: 20s}\nplacement: split\n",
    );
    let r = run_scenario(&scenario, &["--local-agents", "2"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "pass");
    let drain_s = rep["phases"]["drain_s"].as_f64().expect("drain_s");
    assert!(drain_s >= 5.0, "the drain lasted {drain_s} s: the consumers started late");
    let agents = rep["agents"].as_array().expect("agents");
    assert!(
        agents.iter().any(|a| u(&a["producers"]) == 4 && u(&a["consumers"]) == 0),
        "one agent hosts only the producers: {agents:?}"
    );
    assert_eq!(u(&rep["totals"]["received"]), 4000);
    let notes = rep["notes"].to_string();
    assert!(!notes.contains("silent"), "{notes}");
    assert!(!r.stderr.contains("was silent"), "{}", r.stderr);
    remove_scenario_dir(&scenario);
}

/// An agent process frozen (SIGSTOP) for 4 s mid-run, well inside its 10 s
/// lease, then let go (SIGCONT): it sent nothing in that time, neither
/// interval reports nor keepalive answers, and the report says so; the
/// other agent is not named.
#[test]
fn an_agent_frozen_shorter_than_its_lease_is_noted_silent() {
    let dir = temp_dir("frozen-short");
    let sc = scenario_of(&dir, "abort", "8s");
    let a = AgentProc::start_with(&["--lease", "10s"]);
    let b = AgentProc::start_with(&["--lease", "10s"]);
    let c = spawn_scenario(Path::new(&sc), &["--agents", &agent_list([&a, &b])]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_secs(2));
    b.signal("STOP");
    std::thread::sleep(Duration::from_secs(4));
    b.signal("CONT");
    let r = c.wait(Duration::from_secs(60));
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_text());
    let rep = report_of(&r);
    let notes: Vec<&str> = rep["notes"].as_array().expect("notes").iter().filter_map(|n| n.as_str()).collect();
    let prefix = format!("agent {} was silent for ", b.addr);
    let note = notes.iter().find(|n| n.starts_with(&prefix)).unwrap_or_else(|| panic!("{notes:?}"));
    let secs: f64 = note[prefix.len()..].split('s').next().and_then(|x| x.parse().ok()).expect("seconds");
    assert!((3.5..8.0).contains(&secs), "{note}");
    assert!(note.contains("no interval report, no keepalive answer"), "{note}");
    assert!(!notes.iter().any(|n| n.starts_with(&format!("agent {} was silent", a.addr))), "{notes:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agents_are_found_by_dns() {
    let scenario = write_scenario(
        "dns",
        "name: dns\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 100}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 1s}\n",
    );
    let sc = utf8(&scenario);
    let agent = AgentProc::start();
    let port = agent.addr.rsplit_once(':').expect("port").1.to_string();
    // `localhost` resolves through /etc/hosts to 127.0.0.1.
    let target = format!("localhost:{port}");
    let r = run_scenario(&scenario, &["--agents-dns", &target, "--expect-agents", "1", "--quiet"]);
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
    remove_scenario_dir(&scenario);
}

/// Apache Pulsar standalone restarted two seconds into a 20 s run (SIGTERM,
/// as Kubernetes stops a pod, then started again on the same ports and
/// data; ~12 s here). The pulsar crate re-creates the producer and resends
/// what was pending (or the driver makes a new producer); the consumer's
/// stream ends when the crate gives its connection up, and the driver
/// subscribes again. Nothing acknowledged is lost, and what the broker
/// hands out again after the restart (it had no ack for it) is reported as
/// redelivered, not duplicated.
///
/// Not kill -9: after a kill -9 the standalone's bookie did not always
/// register again (its topics then fail with "Not enough non-faulty
/// bookies"; seen 2 times in 4 here), a trait of the standalone's embedded
/// bookie, not of the client.
#[test]
fn pulsar_broker_restarted_mid_run() {
    let mut b = testkit::apache_pulsar_or_skip!(testkit::apache_pulsar::Options::default());
    let sc = write_scenario(
        "broker-kill",
        r#"
name: broker-kill
# Sends wait through the ~12 s outage (the client's operation timeout).
broker: {kind: pulsar, url: "pulsar://placeholder:6650", connect_timeout: 30s}
topics: [{name: lg-fault-kill}]
producers: [{name: p, topic: lg-fault-kill, rate: 200}]
consumers: [{name: c, topic: lg-fault-kill, type: shared}]
phases: {duration: 20s, drain_timeout: 20s}
"#,
    );
    let a = AgentProc::start_with(&[]);
    let c = spawn_scenario(&sc, &["--agents", &a.addr, "--set", &format!("broker.url={}", b.url)]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_secs(2));
    let stopped = Instant::now();
    b.restart().expect("Apache Pulsar stops and starts again on its ports and data");
    eprintln!("broker back after {:?}", stopped.elapsed());
    // The rest of the 20 s, then at most the 20 s drain: never a hang.
    let r = c.wait(Duration::from_secs(120));
    let took = stopped.elapsed();
    eprintln!("coordinator ended {took:?} after the broker was stopped (exit {})", r.code);
    assert!(took < Duration::from_secs(18 + 20 + 20), "not within the drain timeout: {took:?}");
    assert!(
        r.code == 0 || r.code == 1,
        "the run completes: {}\n{}\n{}\n{}",
        r.stdout,
        r.stderr,
        a.log_text(),
        b.log_tail(30)
    );
    let rep = report_of(&r);
    let t = &rep["totals"];
    let s = &rep["subscriptions"][0];
    eprintln!("totals {t}\nsubscription {s}\nnotes {}", rep["notes"]);
    // The numbers add up.
    assert_eq!(u(&t["sent"]), 4000, "the whole schedule was sent: {t}\n{}", a.log_text());
    assert_eq!(
        u(&t["acked"]) + u(&t["send_errors"]),
        u(&t["sent"]),
        "every send acknowledged or counted as an error: {t}"
    );
    assert_eq!(u(&s["expected"]), u(&t["acked"]), "{s}");
    assert_eq!(u(&s["expected"]), u(&s["received_unique"]) + u(&s["lost"]) - u(&s["unacked_received"]), "{s}");
    assert_eq!(u(&s["deliveries"]), u(&s["received_unique"]) + u(&s["duplicated"]) + u(&s["redelivered"]), "{s}");
    // What the broker redelivers after the restart (it had no ack for it)
    // is a redelivery, never a duplicate.
    assert_eq!(u(&s["duplicated"]), 0, "{s}");
    // A real broker loses nothing it acknowledged across a restart.
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.log_tail(30));
    assert_eq!(rep["verdict"], "pass");
    assert_eq!(u(&t["lost"]), 0, "{t}");
    assert_eq!(u(&t["send_errors"]), 0, "{t}");
    // The outage shows: sends waited through it, the consumer's stream
    // ended and it subscribed again.
    let p = rep["groups"].as_array().expect("groups").iter().find(|g| g["role"] == "producer").cloned();
    let max_publish_us = p.expect("producer group")["latency_us"]["max"].as_f64().expect("max");
    assert!(max_publish_us > 1_000_000.0, "publish latency spans the outage: {max_publish_us} us");
    let notes = rep["notes"].to_string();
    assert!(notes.contains("the consumer stream ended"), "{notes}");
    assert!(notes.contains("subscribed again"), "{notes}");
    // The report says when the fault began and ended and how long until
    // the SLOs held again: sends waited (no error), so the producer's rate
    // all but stopped for the intervals of the outage.
    let faults = rep["faults"].as_array().expect("fault windows in the report");
    assert!(!faults.is_empty(), "{notes}");
    let f = &faults[0];
    let (from, to) = (f["from_s"].as_f64().expect("from"), f["to_s"].as_f64().expect("to"));
    assert!(from < to && to <= 21.0, "{f}");
    assert!(f["stalled"] == true || u(&f["send_errors"]) + u(&f["receive_errors"]) > 0, "{f}");
    assert!(f["slo_held_again_s"].as_f64().is_some_and(|t| t >= to), "the run went on after it: {f}");
    assert!(notes.contains("fault from"), "{notes}");
    drop(a);
    drop(b);
    remove_scenario_dir(&sc);
}

// ------------------------------------------------- agents on other "hosts"

/// Two agents, each in its own network namespace (its own host, as far as
/// the network goes): namespaces `first` and `first + 1` of this test
/// process, so each test needs its own `first` (the tests run in parallel,
/// and a namespace that exists already cannot be made). None, after saying
/// why, when namespaces cannot be made here.
fn two_hosts(first: u32, args: &[&str]) -> Option<(NsAgent, NsAgent)> {
    let a = match NsAgent::start(first, args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skipped: cannot create a network namespace ({e})");
            return None;
        }
    };
    let b = NsAgent::start(first + 1, args).expect("a second namespace");
    Some((a, b))
}

/// Starts `scenario` on both agents, cuts `b`'s link `cut_at` after the
/// start for `cut_for`, restores it, and returns the coordinator's result
/// (and says how long the run took, and what the coordinator said).
fn run_with_cut(a: &NsAgent, b: &NsAgent, scenario: &str, cut_at: Duration, cut_for: Duration) -> Ran {
    let t0 = Instant::now();
    let c = spawn_scenario(Path::new(scenario), &["--agents", &agent_list([&a.agent, &b.agent])]);
    wait_for_start(&c);
    std::thread::sleep(cut_at);
    b.ns.cut();
    std::thread::sleep(cut_for);
    b.ns.restore();
    let r = c.wait(Duration::from_secs(90));
    eprintln!("{}", r.stderr);
    eprintln!("run took {:?}", t0.elapsed());
    r
}

/// The link to one agent is cut for 5 s, less than its 10 s lease: its
/// session survives (TCP retransmits; nobody gives up), its load runs on
/// (the memory broker is in its process), and when the link is back its
/// interval reports arrive. Nothing is lost and the run passes; the report
/// says the agent was silent.
#[test]
fn agent_link_cut_shorter_than_the_lease_the_run_completes_and_notes_the_silence() {
    let Some((a, b)) = two_hosts(0, &["--lease", "10s"]) else { return };
    let dir = temp_dir("cut-short");
    let r = run_with_cut(&a, &b, &scenario_of(&dir, "abort", "10s"), Duration::from_secs(2), Duration::from_secs(5));
    assert_eq!(r.code, 0, "{}\n{}\n{}", r.stdout, r.stderr, b.agent.log_text());
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "pass");
    for ag in rep["agents"].as_array().expect("agents") {
        assert_eq!(ag["status"], "ok", "{ag}");
        assert_eq!(u(&ag["acked"]), 2000, "each agent ran its whole schedule: {ag}");
    }
    assert_eq!(u(&rep["totals"]["acked"]), 4000);
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    assert_eq!(u(&rep["totals"]["received"]), 4000);
    assert!(rep.get("coverage").is_none_or(|c| c.is_null()), "no agent lost: {}", rep["coverage"]);
    // The silence is in the report, with its length (the 5 s cut, plus up
    // to a few seconds of TCP retransmission backoff).
    let notes: Vec<&str> = rep["notes"].as_array().expect("notes").iter().filter_map(|n| n.as_str()).collect();
    let prefix = format!("agent {} was silent for ", b.agent.addr);
    let note = notes.iter().find(|n| n.starts_with(&prefix)).unwrap_or_else(|| panic!("{notes:?}"));
    let secs: f64 = note[prefix.len()..].split('s').next().and_then(|x| x.parse().ok()).expect("seconds");
    assert!((4.5..10.0).contains(&secs), "{note}");
    assert!(note.contains("its lease is 10s"), "{note}");
    assert!(!notes.iter().any(|n| n.starts_with(&format!("agent {} was silent", a.agent.addr))), "{notes:?}");
    assert!(r.stderr.contains(&prefix), "said while running too: {}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

/// The link is cut for 5 s, longer than the 2 s lease, under
/// `on_agent_loss: continue`: the agent stops its load when its lease runs
/// out, the coordinator calls it lost a second later and finishes with the
/// other; once the link is back the agent is free, and the next run on both
/// passes.
#[test]
fn agent_link_cut_longer_than_the_lease_is_lost_and_free_again_after() {
    let Some((a, b)) = two_hosts(2, &["--lease", "2s"]) else { return };
    let dir = temp_dir("cut-long");
    let r = run_with_cut(&a, &b, &scenario_of(&dir, "continue", "8s"), Duration::from_secs(2), Duration::from_secs(5));
    assert_eq!(r.code, 0, "judged on what remains: {}\n{}", r.stdout, r.stderr);
    let cut = &b.agent.addr;
    assert!(r.stderr.contains(&format!("agent {cut} lost (no word from the agent for 3s)")), "{}", r.stderr);
    let rep = report_of(&r);
    let agents = rep["agents"].as_array().expect("agents");
    let lost = agents.iter().find(|x| x["address"] == cut.as_str()).expect("the cut agent");
    assert_eq!(lost["status"], "lost", "{lost}");
    let ok = agents.iter().find(|x| x["address"] != cut.as_str()).expect("the other");
    assert_eq!(ok["status"], "ok");
    assert_eq!(u(&ok["acked"]), 1600, "{ok}");
    assert_eq!(u(&rep["coverage"]["agents_lost"]), 1);
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    let log = b.agent.log_text();
    assert!(log.contains("no word from the coordinator within the lease"), "the agent stopped by itself: {log}");

    // The link is back: the agent takes the next run.
    let short = dir.join("short.yaml");
    std::fs::write(
        &short,
        "name: after\nbroker: {kind: memory}\ntopics: [{name: t1}, {name: t2}]\nproducers: [{name: p1, topic: t1, rate: 100}, {name: p2, topic: t2, rate: 100}]\nconsumers: [{name: c1, topic: t1}, {name: c2, topic: t2}]\nphases: {duration: 1s}\n",
    )
    .expect("write");
    let r = run_scenario(&short, &["--agents", &agent_list([&a.agent, &b.agent]), "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = report_of(&r);
    assert!(rep["agents"].as_array().expect("agents").iter().all(|x| x["status"] == "ok"), "{}", rep["agents"]);
    assert_eq!(u(&rep["totals"]["acked"]), 200);
    let _ = std::fs::remove_dir_all(dir);
}

// ----------------------------------------------------------------- delay

/// 50 ms added each way between the coordinator and its agent (a delaying
/// proxy: no netem here). Clock sync sees a 100 ms round trip; with the
/// delay symmetric the offset stays near 0, well inside the RTT/2 bound it
/// reports, and end-to-end latency (producers and consumers in the one
/// agent, memory broker) does not see the delay at all.
#[test]
fn a_slow_link_to_the_agent_costs_clock_error_not_latency() {
    let agent = AgentProc::start_with(&[]);
    let proxy = testkit::delay::DelayProxy::start(agent.addr.parse().expect("addr"), Duration::from_millis(50))
        .expect("delay proxy");
    let sc = write_scenario(
        "delay",
        "name: delay\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 200}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 3s}\n",
    );
    let t0 = Instant::now();
    let r = run_scenario(&sc, &["--agents", &proxy.addr.to_string(), "--quiet"]);
    eprintln!("run took {:?}", t0.elapsed());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = report_of(&r);
    let ag = &rep["agents"][0];
    let offset_us = ag["clock_offset_us"].as_f64().expect("offset");
    let error_us = ag["clock_error_us"].as_f64().expect("error");
    eprintln!("clock offset {offset_us} us ± {error_us} us");
    assert!((50_000.0..80_000.0).contains(&error_us), "RTT/2 of a 100 ms round trip: {error_us} us");
    assert!(offset_us.abs() < 10_000.0, "same host, symmetric delay: offset {offset_us} us");
    assert!(offset_us.abs() < error_us / 5.0, "well inside the bound: {offset_us} vs ± {error_us}");
    assert_eq!(u(&rep["totals"]["acked"]), 600);
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    let c = rep["groups"].as_array().expect("groups").iter().find(|g| g["role"] == "consumer").cloned();
    let e2e = &c.expect("consumer group")["latency_us"];
    assert!(e2e["p99"].as_f64().expect("p99") < 20_000.0, "e2e unaffected by the delay: {e2e}");
    remove_scenario_dir(&sc);
}

/// The broker (the Danube test double, on a remote address of the agent's
/// namespace) is blocked from the agent's host for 4 s, 3 s into the run,
/// while the coordinator's link to the agent stays up: sends wait and time
/// out, the consumer's stream stalls. The report has one fault window
/// around the block, the SLOs hold again after it, and every lost message
/// is counted in the interval it was sent in.
#[test]
fn a_broker_blocked_from_the_agent_host_is_a_fault_window() {
    let a = match NsAgent::start(4, &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skipped: cannot create a network namespace ({e})");
            return;
        }
    };
    let remote = a.ns.remote(5);
    let d = testkit::danube_double::DanubeDouble::start_on(Default::default(), remote.into()).expect("double");
    let sc = write_scenario(
        "blocked",
        r#"
name: blocked
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-blocked}]
producers: [{name: p, topic: lg-blocked, rate: 100, send_timeout: 1s}]
consumers: [{name: c, topic: lg-blocked, type: exclusive}]
phases: {duration: 16s, drain_timeout: 8s}
"#,
    );
    let c = spawn_scenario(&sc, &["--agents", &a.agent.addr, "--set", &format!("broker.url={}", d.url)]);
    wait_for_start(&c);
    std::thread::sleep(Duration::from_secs(3));
    a.ns.block(remote);
    std::thread::sleep(Duration::from_secs(4));
    a.ns.unblock(remote);
    let r = c.wait(Duration::from_secs(90));
    assert!(r.code == 0 || r.code == 1, "{}\n{}\n{}", r.stdout, r.stderr, a.agent.log_text());
    let rep = report_of(&r);
    eprintln!("faults: {}\nnotes: {}", rep["faults"], rep["notes"]);
    let faults = rep["faults"].as_array().expect("fault windows");
    let w = faults.first().expect("the block is a fault window");
    let (from, to) = (w["from_s"].as_f64().expect("from"), w["to_s"].as_f64().expect("to"));
    // Interval resolution (1 s), and TCP retransmits back off: the window
    // starts within the block and ends a few seconds after it at most.
    assert!((2.0..=7.0).contains(&from), "{w}");
    assert!((6.0..=14.0).contains(&to), "{w}");
    assert!(w["slo_held_again_s"].is_f64(), "the load came back after the block: {w}");
    check_loss_by_send_time(&rep);
    remove_scenario_dir(&sc);
}

/// Apache Pulsar blocked from the agent's host for 4 s, 3 s into the run.
/// The agent lives in a network namespace; the broker (on the root side's
/// 127.0.0.1) is reached through a relay on the namespace's remote address,
/// and a relay on the namespace's own 127.0.0.1:PORT, so the address
/// Pulsar's lookups answer with works inside it too. Blocking the remote
/// address cuts the agent off its broker and nothing else. Sends wait
/// through it; a real broker loses nothing it acknowledged, so the window
/// has no loss, and the SLOs hold again after it.
#[test]
fn pulsar_blocked_from_the_agent_host_is_a_fault_window() {
    let pulsar = testkit::apache_pulsar_or_skip!();
    let ns = match common::netns::NetNs::create(6) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipped: cannot create a network namespace ({e})");
            return;
        }
    };
    let port: u16 = pulsar.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port of the broker URL");
    let remote = ns.remote(7);
    let outer = testkit::relay::Relay::start((remote, 0).into(), ([127, 0, 0, 1], port).into()).expect("relay");
    let inner = common::netns::NsRelay::start(&ns, port, outer.addr);
    let agent = AgentProc::start_in(ns.command(&agent_bin()), &format!("{}:0", ns.ns_ip), &[]);
    let sc = write_scenario(
        "pulsar-blocked",
        r#"
name: pulsar-blocked
broker: {kind: pulsar, url: "pulsar://placeholder:6650", connect_timeout: 30s}
topics: [{name: lg-fault-blocked}]
producers: [{name: p, topic: lg-fault-blocked, rate: 100}]
consumers: [{name: c, topic: lg-fault-blocked, type: shared}]
phases: {duration: 16s, drain_timeout: 20s}
"#,
    );
    let url = format!("pulsar://127.0.0.1:{port}");
    let c = spawn_scenario(&sc, &["--agents", &agent.addr, "--set", &format!("broker.url={url}")]);
    let t0 = Instant::now();
    while !c.stderr().contains("start:") {
        assert!(t0.elapsed() < Duration::from_secs(60), "no start:\n{}\n{}", c.stderr(), agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    ns.block(remote);
    std::thread::sleep(Duration::from_secs(4));
    ns.unblock(remote);
    let r = c.wait(Duration::from_secs(120));
    assert!(r.code == 0 || r.code == 1, "{}\n{}\n{}", r.stdout, r.stderr, agent.log_text());
    let rep = report_of(&r);
    eprintln!("faults: {}\ntotals: {}\nnotes: {}", rep["faults"], rep["totals"], rep["notes"]);
    let faults = rep["faults"].as_array().expect("fault windows");
    let w = faults.first().expect("the block is a fault window");
    let from = w["from_s"].as_f64().expect("from");
    assert!((2.0..=7.0).contains(&from), "{w}");
    assert!(w["slo_held_again_s"].is_f64(), "the load came back after the block: {w}");
    let t = &rep["totals"];
    assert_eq!(u(&t["lost"]), 0, "Apache Pulsar loses nothing it acknowledged: {t}");
    assert_eq!(u(&w["lost"]), 0, "{w}");
    assert_eq!(u(&t["duplicated"]), 0, "{t}");
    drop(agent);
    drop(inner);
    drop(outer);
    remove_scenario_dir(&sc);
}
