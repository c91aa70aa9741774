//! End to end: the real coordinator binary driving in-process agents and
//! real agent processes on loopback, on the memory broker.

mod common;

use common::*;

#[test]
fn quickstart_runs_clean_on_two_local_agents() {
    let res = temp_dir("quick");
    let r = run_short_quickstart(&res, &[]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "pass");
    assert_eq!(rep["agents"].as_array().expect("agents").len(), 2);
    let t = &rep["totals"];
    assert!(u(&t["acked"]) > 0);
    assert_eq!(u(&t["sent"]), u(&t["acked"]), "memory broker acknowledges everything");
    assert_eq!(u(&t["lost"]), 0);
    assert_eq!(u(&t["duplicated"]), 0);
    for s in rep["subscriptions"].as_array().expect("subs") {
        assert_eq!(u(&s["received_unique"]), u(&s["expected"]), "every subscription got every acked message: {s}");
        assert!(u(&s["expected"]) > 0);
    }
    // 4 producers at 500/s + 1000/s total over 4 s (warmup + duration).
    assert_eq!(u(&t["acked"]), 3000 * 4);
    // Two agents in one process share one clock: no sample crosses clocks.
    for g in rep["groups"].as_array().expect("groups") {
        assert!(g.get("e2e_clock_error_us").is_none(), "{g}");
    }
    let dir = r.stdout.lines().last().expect("dir");
    let csv = std::fs::read_to_string(std::path::Path::new(dir).join("timeseries.csv")).expect("csv");
    assert!(csv.lines().count() > 5, "{csv}");
    // The histograms in report.json re-merge.
    for h in rep["histograms"].as_array().expect("histograms") {
        let data = h["data"].as_str().expect("data");
        let _ = ::common::hist::Hist::decode_base64(data).expect("histogram decodes");
    }
    let _ = std::fs::remove_dir_all(res);
}

/// Three agent processes, one topic each (the memory broker keeps a topic in
/// one process): per-agent counts sum to the totals; rates within 1 %.
#[test]
fn three_agent_processes_sum_to_the_scenario() {
    let agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start()).collect();
    let scenario = write_scenario(
        "three",
        r#"
name: three
broker: {kind: memory}
topics: [{name: t1}, {name: t2, partitions: 2}, {name: t3}]
producers:
  - {name: p1, topic: t1, count: 2, rate: 300}
  - {name: p2, topic: t2, count: 3, total_rate: 1000}
  - {name: p3, topic: t3, count: 1, rate: 500, message_size: 100}
consumers:
  - {name: c1, topic: t1, type: shared, count: 2}
  - {name: c2, topic: t2, type: failover, count: 2}
  - {name: c3, topic: t3, type: exclusive}
phases: {warmup: 1s, duration: 4s, drain_timeout: 10s}
"#,
    );
    let r = run_scenario(&scenario, &["--agents", &agent_list(&agents)]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let agents_rep = rep["agents"].as_array().expect("agents");
    assert_eq!(agents_rep.len(), 3);
    let sum = |k: &str| agents_rep.iter().map(|a| u(&a[k])).sum::<u64>();
    assert_eq!(sum("sent"), u(&rep["totals"]["sent"]));
    assert_eq!(sum("acked"), u(&rep["totals"]["acked"]));
    assert_eq!(sum("received"), u(&rep["totals"]["received"]));
    for a in agents_rep {
        assert!(u(&a["acked"]) > 0, "every agent worked: {a}");
        assert_eq!(a["status"], "ok");
    }
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    for g in rep["groups"].as_array().expect("groups").iter().filter(|g| g["role"] == "producer") {
        let rate = g["rate_msgs_per_s"].as_f64().expect("rate");
        let target = g["target_rate_msgs_per_s"].as_f64().expect("target");
        assert!((rate / target - 1.0).abs() <= 0.01, "group {} rate {rate} vs {target}", g["name"]);
    }
    remove_scenario_dir(&scenario);
}

/// Six agent processes, one memory topic each (so each has a producer):
/// every agent's load begins within 100 ms of the start instant and of
/// each other, as measured by each agent (its producers' first actual send,
/// on its synced clock) and reported per agent and as one spread.
#[test]
fn six_agent_processes_begin_sending_within_100ms_of_each_other() {
    const N: usize = 6;
    let agents: Vec<AgentProc> = (0..N).map(|_| AgentProc::start()).collect();
    let topics = (1..=N).map(|i| format!("{{name: t{i}}}")).collect::<Vec<_>>().join(", ");
    let producers: String = (1..=N).map(|i| format!("  - {{name: p{i}, topic: t{i}, rate: 50}}\n")).collect();
    let consumers: String = (1..=N).map(|i| format!("  - {{name: c{i}, topic: t{i}}}\n")).collect();
    let scenario = write_scenario(
        "skew",
        &format!(
            "name: skew\nbroker: {{kind: memory}}\ntopics: [{topics}]\nproducers:\n{producers}consumers:\n{consumers}\
             phases: {{duration: 2s, drain_timeout: 5s}}\n"
        ),
    );
    let r = run_scenario(&scenario, &["--agents", &agent_list(&agents)]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    // The merged report is complete: every agent ok, nothing lost.
    assert_eq!(rep["verdict"], "pass");
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    assert_eq!(u(&rep["totals"]["acked"]), 100 * N as u64, "50/s for 2 s per producer");
    let agents_rep = rep["agents"].as_array().expect("agents");
    assert_eq!(agents_rep.len(), N);
    let mut offsets = Vec::new();
    for a in agents_rep {
        assert_eq!(a["status"], "ok", "{a}");
        assert_eq!(u(&a["producers"]), 1, "one topic, so one producer, per process: {a}");
        // Measured by the agent: its producer's first actual send minus the
        // start instant, both in the coordinator's time base. A producer
        // sends only once its synced clock reads the intended time (the
        // start instant, for the first send of a uniform schedule), so the
        // figure cannot be negative; a clock-sync error would instead shift
        // when, on the coordinator's clock, that happened, by up to
        // `clock_error_us` (RTT/2: tens of microseconds on loopback).
        let off = a["start_offset_ms"].as_f64().unwrap_or_else(|| panic!("start_offset_ms: {a}"));
        assert!((0.0..100.0).contains(&off), "agent {} began {off} ms after the start instant", a["address"]);
        assert!(a["clock_error_us"].as_f64().expect("error") < 10_000.0, "{a}");
        offsets.push(off);
    }
    let spread = rep["coordinator"]["start_spread_ms"].as_f64().expect("start_spread_ms");
    let (lo, hi) = offsets.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &o| (lo.min(o), hi.max(o)));
    assert!((spread - (hi - lo)).abs() < 1e-9, "spread {spread} vs offsets {offsets:?}");
    assert!(spread < 100.0, "agents began sending {spread} ms apart: {offsets:?}");
    assert!(
        r.stdout.contains(&format!("start: {N} agent(s) began sending within {spread:.1} ms of each other")),
        "{}",
        r.stdout
    );
    eprintln!("start offsets (ms): {offsets:?}; spread {spread:.3} ms");
    remove_scenario_dir(&scenario);
}

#[test]
fn busy_agent_refuses_a_second_coordinator() {
    let agent = AgentProc::start();
    let scenario = write_scenario(
        "busy",
        "name: long\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 4s}\n",
    );
    let (s, addr) = (scenario.clone(), agent.addr.clone());
    let first = std::thread::spawn(move || run_scenario(&s, &["--agents", &addr, "--quiet"]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = run_scenario(&scenario, &["--agents", &agent.addr]);
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(second.stderr.contains("busy"), "{}", second.stderr);
    assert!(second.stderr.contains(&agent.addr), "names the agent: {}", second.stderr);
    let first = first.join().expect("first run");
    assert_eq!(first.code, 0, "{}", first.stderr);
    remove_scenario_dir(&scenario);
}

#[test]
fn unreachable_agent_is_exit_3() {
    let r = coordinator(&["run", "configs/quickstart.yaml", "--agents", "127.0.0.1:1", "--quiet"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
}

#[test]
fn danube_broker_not_answering_is_exit_3_with_its_reason() {
    let agent = AgentProc::start();
    let scenario = write_scenario("nodriver", "name: d\nbroker: {kind: danube, url: \"http://127.0.0.1:1\"}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\nphases: {duration: 1s}\n");
    let r = coordinator(&["run", utf8(&scenario), "--agents", &agent.addr, "--quiet"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    // The agent has the driver now; what stops the run is the broker.
    assert!(!r.stderr.contains("cannot drive"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect to the broker at http://127.0.0.1:1"), "{}", r.stderr);
    remove_scenario_dir(&scenario);
}

/// A Pulsar URL nobody answers: the agent's prepare fails, the coordinator
/// says which agent and why, exit 3, within the connect timeout.
#[test]
fn unreachable_pulsar_broker_is_exit_3() {
    let agent = AgentProc::start();
    let scenario = write_scenario("nopulsar", "name: p\nbroker: {kind: pulsar, url: \"pulsar://127.0.0.1:1\", connect_timeout: 2s}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\nphases: {duration: 1s}\n");
    let t0 = std::time::Instant::now();
    let r = coordinator(&["run", utf8(&scenario), "--agents", &agent.addr, "--quiet"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect to the broker at pulsar://127.0.0.1:1"), "{}", r.stderr);
    assert!(r.stderr.contains(&agent.addr), "names the agent: {}", r.stderr);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "took {:?}", t0.elapsed());
    remove_scenario_dir(&scenario);
}

/// A fault action closes one of two failover consumers mid-run; the other
/// takes over and nothing is lost.
#[test]
fn failover_survives_a_stopped_consumer() {
    let scenario = write_scenario(
        "failover",
        r#"
name: f
broker: {kind: memory, latency: 2ms}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 500}]
consumers: [{name: backup, topic: t, type: failover, count: 2}]
phases: {duration: 3s}
faults: [{at: 1500ms, stop_consumers: {group: backup, count: 1}}]
"#,
    );
    let r = run_scenario(&scenario, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let s = &rep["subscriptions"][0];
    assert_eq!(u(&s["expected"]), 1500);
    assert_eq!(u(&s["lost"]), 0, "{s}");
    assert!(rep["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .any(|n| n.as_str().unwrap_or("").contains("stopped by a fault action")));
    remove_scenario_dir(&scenario);
}

/// The memory broker drops every 100th message after acknowledging it and
/// delivers every 50th twice: the report must count exactly that, per
/// subscription, with consumers spread over two agents (cross-agent merge).
#[test]
fn loss_and_duplicates_are_counted_exactly() {
    let scenario = write_scenario(
        "faults",
        r#"
name: faults
broker: {kind: memory, drop_every: 100, duplicate_every: 50}
topics: [{name: t}]
producers:
  - {name: p, topic: t, count: 1, rate: 1000}
consumers:
  - {name: shared, topic: t, type: shared, count: 4}
  - {name: excl, topic: t, type: exclusive}
phases: {duration: 2s, drain_timeout: 3s}
"#,
    );
    let r = run_scenario(&scenario, &["--local-agents", "2"]);
    assert_eq!(r.code, 1, "loss fails the max_loss SLO: {}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "fail");
    assert_eq!(u(&rep["totals"]["acked"]), 2000);
    // Publishes 100, 200, ..., 2000 are dropped; 50, 150, ..., 1950 doubled.
    for s in rep["subscriptions"].as_array().expect("subs") {
        assert_eq!(u(&s["expected"]), 2000, "{s}");
        assert_eq!(u(&s["lost"]), 20, "{s}");
        assert_eq!(u(&s["duplicated"]), 20, "{s}");
        assert_eq!(u(&s["received_unique"]), 1980, "{s}");
        assert!(!s["missing_sample"].as_array().expect("sample").is_empty());
    }
    assert_eq!(u(&rep["totals"]["lost"]), 40);
    assert_eq!(u(&rep["totals"]["duplicated"]), 40);
    // Each loss is counted in the interval its message was sent in: ten
    // per subscription in each of the two 1-s intervals (one at 1000 msg/s
    // drops every 100th; a boundary may move one to a neighbour, and the
    // last, sent a little late, may fall in the interval after the end).
    for name in ["shared", "excl"] {
        let rows: Vec<&serde_json::Value> = rep["intervals"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["group"] == name && u(&r["lost"]) > 0)
            .collect();
        let by_row: Vec<u64> = rows.iter().map(|r| u(&r["lost"])).collect();
        assert_eq!(by_row.iter().sum::<u64>(), 20, "{name}: {by_row:?}");
        let mut sorted = by_row.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let spread = sorted.len() >= 2
            && sorted[..2].iter().all(|&n| (9..=11).contains(&n))
            && sorted[2..].iter().sum::<u64>() <= 1;
        assert!(spread, "{name}: spread by send time: {by_row:?}");
    }
    let slo = rep["slo"].as_array().expect("slo");
    assert!(slo.iter().any(|c| c["name"] == "max_loss" && c["pass"] == false), "{slo:?}");
    assert!(r.stdout.contains("FAIL"), "{}", r.stdout);
    remove_scenario_dir(&scenario);
}

/// Producers held back through the warmup (the consumers start at its end
/// and the broker holds publish acks past 200 undelivered messages, 50
/// sends in flight), then free to catch up early in the measurement: the
/// backlog due in the warmup goes out inside the measurement window, and
/// it is lag, not rate. The achieved rate is the schedule's within 1 %.
#[test]
fn a_producer_catching_up_shows_lag_not_extra_rate() {
    let scenario = write_scenario(
        "catch-up",
        "name: catch-up\nbroker: {kind: memory, max_backlog: 200}\ntopics: [{name: t}]\n\
         producers: [{name: p, topic: t, rate: 2000, max_in_flight: 50}]\n\
         consumers: [{name: c, topic: t, start_after: 1s}]\n\
         phases: {warmup: 1s, duration: 3s, drain_timeout: 10s}\n",
    );
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(u(&rep["totals"]["acked"]), 8000, "the whole schedule went out");
    let p = group(&rep, "p");
    let rate = p["rate_msgs_per_s"].as_f64().expect("rate");
    assert!((rate / 2000.0 - 1.0).abs() <= 0.01, "achieved {rate} msg/s for 2000: {p}");
    let lag_ms = p["max_lag_ms"].as_f64().expect("lag");
    assert!(lag_ms >= 500.0, "held back ~0.9 s in the warmup: the lag shows ({lag_ms} ms): {p}");
    assert!(u(&p["late_sends"]) > 1000, "{p}");
    remove_scenario_dir(&scenario);
}

/// Overload: a broker that takes 2000 msg/s offered 6000 reads back what it
/// sustained, never more than the offer and never nothing (a producer far
/// behind its schedule still has its acks counted).
#[test]
fn an_overloaded_broker_reads_back_what_it_sustained() {
    let scenario = write_scenario(
        "overload",
        "name: overload\nbroker: {kind: memory, capacity_msgs_per_s: 2000}\ntopics: [{name: t}]\n\
         producers: [{name: p, topic: t, total_rate: 6000, max_in_flight: 1000}]\n\
         consumers: [{name: c, topic: t}]\n\
         phases: {warmup: 1s, duration: 3s, drain_timeout: 10s}\nslo: {min_rate_ratio: 0.9}\n",
    );
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 1, "the rate SLO fails: {}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let p = group(&rep, "p");
    let rate = p["rate_msgs_per_s"].as_f64().expect("rate");
    assert!((rate / 2000.0 - 1.0).abs() <= 0.1, "achieved {rate} msg/s on a 2000 msg/s broker: {p}");
    remove_scenario_dir(&scenario);
}

/// A broker that delivers every 50th message twice: the summary flags the
/// subscription's duplicates (and says they were not judged); with
/// `slo.max_duplicates: 0` the run fails on them.
#[test]
fn duplicates_are_flagged_and_fail_max_duplicates_0() {
    let text = "name: dups\nbroker: {kind: memory, duplicate_every: 50}\ntopics: [{name: t}]\n\
                producers: [{name: p, topic: t, rate: 500}]\nconsumers: [{name: c, topic: t, subscription: s}]\n\
                phases: {warmup: 0s, duration: 1s}\n";
    let scenario = write_scenario("dups", text);
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 0, "not judged: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("DUPLICATES t/s: 10 deliveries"), "{}", r.stdout);
    assert!(r.stdout.contains("not judged: set slo.max_duplicates"), "{}", r.stdout);
    let r = run_scenario(&scenario, &["--local-agents", "1", "--set", "slo.max_duplicates=0"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(report_of(&r)["verdict"], "fail");
    assert!(r.stdout.contains("FAILS slo.max_duplicates 0"), "{}", r.stdout);
    remove_scenario_dir(&scenario);
}

/// A subscription whose deliveries stop mid-run is reported as stalled and
/// lost, and the run still ends within its drain timeout (exit 1, not a hang).
/// Deliveries stop at 0.5 s of 5 s: "stalled" means no progress in the last
/// two intervals before sending ended, so the stall sits well clear of that
/// margin even when a loaded machine delivers the last messages late (a
/// stall right at an interval boundary made this test flaky).
#[test]
fn stalled_subscription_ends_within_the_drain_timeout() {
    let scenario = write_scenario(
        "stall",
        r#"
name: stall
broker: {kind: memory, stall_after: 250}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 500}]
consumers: [{name: c, topic: t, type: shared, count: 2}]
phases: {duration: 5s, drain_timeout: 2s}
"#,
    );
    let t0 = std::time::Instant::now();
    let r = run_scenario(&scenario, &[]);
    let took = t0.elapsed();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // 5 s of load + 2 s drain timeout + setup and final reports.
    assert!(took < std::time::Duration::from_secs(16), "took {took:?}");
    let rep = report_of(&r);
    let s = &rep["subscriptions"][0];
    assert_eq!(s["stalled"], true, "{s}");
    assert_eq!(u(&s["lost"]), 2250, "{s}");
    assert_eq!(rep["phases"]["drain_timed_out"], true);
    assert!(r.stdout.contains("STALLED"), "{}", r.stdout);
    assert!(rep["notes"].as_array().expect("notes").iter().any(|n| n.as_str().unwrap_or("").contains("stalled")));
    remove_scenario_dir(&scenario);
}

/// Acks that never come in time are counted as send errors (timeouts), once
/// each, and the run still ends: the memory broker acknowledges after 2 s,
/// the producers give up after 300 ms.
#[test]
fn send_timeouts_are_counted_once_each() {
    let scenario = write_scenario(
        "timeouts",
        r#"
name: timeouts
broker: {kind: memory, latency: 2s}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 200, send_timeout: 300ms, max_in_flight: 10000}]
consumers: [{name: c, topic: t, type: shared}]
phases: {duration: 1s, drain_timeout: 3s}
"#,
    );
    let r = run_scenario(&scenario, &[]);
    assert_eq!(r.code, 1, "send errors fail the run by default: {}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let t = &rep["totals"];
    assert_eq!(u(&t["sent"]), 200, "{t}");
    assert_eq!(u(&t["acked"]), 0, "{t}");
    assert_eq!(u(&t["send_errors"]), 200, "every send timed out exactly once: {t}");
    let slo = rep["slo"].as_array().expect("slo");
    assert!(slo.iter().any(|c| c["name"] == "max_send_errors" && c["pass"] == false), "default 0: {slo:?}");
    remove_scenario_dir(&scenario);
}

/// `groups[].in_flight_wait_percent`: measured, per producer group. Acks
/// 100 ms after each send: at 100 msg/s a producer needs ~10 sends in
/// flight; with room for 2 it waits nearly all the time, with room for
/// 1000 never.
#[test]
fn report_gives_each_producer_groups_wait_for_room_in_flight() {
    let dir = temp_dir("window-wait");
    let scenario = dir.join("window.yaml");
    std::fs::write(
        &scenario,
        r#"
name: window-wait
broker: {kind: memory, latency: 100ms}
topics: [{name: t}]
producers:
  - {name: held, topic: t, count: 2, rate: 100, max_in_flight: 2}
  - {name: free, topic: t, count: 2, rate: 100, max_in_flight: 1000}
consumers: [{name: c, topic: t, type: shared}]
phases: {warmup: 500ms, duration: 2s, drain_timeout: 3s}
"#,
    )
    .expect("write");
    let r = coordinator(&["run", scenario.to_str().expect("utf8"), "--results", dir.to_str().expect("utf8")]);
    assert!(r.code == 0 || r.code == 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let wait = |name: &str| {
        let g = group(&rep, name);
        g.get("in_flight_wait_percent").and_then(serde_json::Value::as_f64)
    };
    let held = wait("held").expect("held: a share");
    let free = wait("free").expect("free: a share");
    eprintln!("in_flight_wait_percent: held {held:.1}, free {free:.1}");
    assert!((85.0..=100.5).contains(&held), "held {held}");
    assert!(free < 5.0, "free {free}");
    assert_eq!(wait("c"), None, "consumer groups have none");
    // Per interval too: every whole measured interval of `held` waits most of the time.
    let rows: Vec<f64> = rep["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter(|r| r["group"] == "held" && r["phase"] == "measure")
        .filter_map(|r| r.get("in_flight_wait_percent").and_then(serde_json::Value::as_f64))
        .collect();
    assert!(!rows.is_empty() && rows.iter().any(|w| *w > 80.0), "held per interval: {rows:?}");
    let _ = std::fs::remove_dir_all(dir);
}
