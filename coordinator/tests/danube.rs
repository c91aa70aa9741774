//! The Danube driver end to end: real `agent` processes and the real
//! `coordinator` against the Danube-protocol test double (tools/testkit),
//! which also says what it saw, so the report's numbers are checked
//! against the broker side: every subscription type, partitions, keys,
//! client producers, schemas, reliable dispatch on and off under a dropped
//! stream, refused sends, a failover consumer stopped mid-run, a broker
//! that goes away, and the errors for bad input.

mod common;

use std::time::{Duration, Instant};

use common::*;
use testkit::danube_double::{DanubeDouble, Knobs};

fn double(knobs: Knobs) -> DanubeDouble {
    DanubeDouble::start(knobs).expect("danube test double")
}

#[test]
fn every_subscription_type_across_three_agents_accounts_exactly() {
    let d = double(Knobs::default());
    let agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start()).collect();
    // `split`: consumers on other agents than the producers, so agents
    // with only consumers create the topic before they subscribe.
    let (r, rep) = run_on(
        &d.url,
        &agents,
        r#"
name: danube-b
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-b}]
producers: [{name: p, topic: lg-b, count: 3, rate: 100, clients: 2, message_size: 256, keys: {random: 100}}]
consumers:
  - {name: shared, topic: lg-b, type: shared, count: 3}
  - {name: excl, topic: lg-b, type: exclusive}
  - {name: fail, topic: lg-b, type: failover, count: 2}
  - {name: keys, topic: lg-b, type: key_shared, count: 2}
placement: split
phases: {warmup: 1s, duration: 2s, drain_timeout: 15s}
"#,
        "danube-b",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // 900 scheduled; a loaded machine may leave a few unsent at the end,
    // never unaccounted for.
    let acked = u(&rep["totals"]["acked"]);
    assert!(acked > 600, "{}", rep["totals"]);
    assert_eq!(u(&rep["totals"]["send_errors"]), 0);
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    assert_eq!(d.published("/default/lg-b"), acked, "the broker took what the report says was acknowledged");
    for name in ["shared", "excl", "fail", "keys"] {
        let s = sub(&rep, name);
        assert_eq!(u(&s["received_unique"]), acked, "{s}");
        let b = d.subscription("/default/lg-b", name);
        assert_eq!(b.acked, u(&s["deliveries"]), "{name}: received = acknowledged at the broker");
        let active: Vec<_> = b.delivered.iter().filter(|(_, n)| **n > 0).collect();
        match name {
            "excl" | "fail" => {
                assert_eq!(active.len(), 1, "{name}: one active consumer: {:?}", b.delivered)
            }
            _ => assert!(active.len() >= 2, "{name}: load spread: {:?}", b.delivered),
        }
    }
    assert_eq!(d.subscription("/default/lg-b", "fail").consumers.len(), 2, "a standby was subscribed");
    // danube-client's ack is an RPC the broker answers: timed, once per delivery.
    for name in ["shared", "excl", "fail", "keys"] {
        let g = group(&rep, name);
        let ack = &g["latency"]["ack"];
        assert_eq!(ack["count"], g["messages"], "{g}");
        let (p50, max) = (ack["p50"].as_f64().expect("p50"), ack["max"].as_f64().expect("max"));
        assert!(p50 > 0.0 && max < 5e6, "a loopback RPC, well under the run: {g}");
    }
    check_consistent(&rep);
    who_received_what_matches_the_broker(&d, &rep);
}

/// Each consumer's deliveries in the report are what the double delivered
/// to it (its consumer name ends in `-GROUP-INDEX`), they add up to the
/// subscription's, and each subscription type kept its promise.
fn who_received_what_matches_the_broker(d: &DanubeDouble, rep: &serde_json::Value) {
    for name in ["shared", "excl", "fail", "keys"] {
        let s = sub(rep, name);
        let b = d.subscription("/default/lg-b", name);
        let by = s["by_consumer"].as_array().unwrap_or_else(|| panic!("by_consumer: {s}"));
        assert_eq!(by.len() as u64, u(&s["consumers"]), "{s}");
        assert_eq!(by.iter().map(|c| u(&c["deliveries"])).sum::<u64>(), u(&s["deliveries"]), "{s}");
        for c in by {
            let ours = c["name"].as_str().expect("name");
            let (_, index) = ours.rsplit_once('#').expect("GROUP#INDEX");
            let theirs: u64 =
                b.delivered.iter().filter(|(n, _)| n.ends_with(&format!("-{name}-{index}"))).map(|(_, n)| *n).sum();
            assert_eq!(u(&c["deliveries"]), theirs, "{ours}: the broker delivered it as many: {:?}", b.delivered);
            let share = c["share_percent"].as_f64().expect("share");
            let expected = 100.0 * theirs as f64 / u(&s["deliveries"]) as f64;
            assert!((share - expected).abs() < 0.01, "{c}");
        }
        match name {
            "excl" | "fail" => {
                assert_eq!(u(&s["switches"]["count"]), 0, "one consumer throughout: {s}");
                assert_eq!(s["switches"]["concurrent_s"].as_f64(), Some(0.0), "{s}");
            }
            "keys" => assert_eq!(u(&s["key_overlaps"]["count"]), 0, "each key on one consumer: {s}"),
            _ => assert!(s["consumer_imbalance_percent"].as_f64().is_some(), "{s}"),
        }
    }
}

#[test]
fn partitions_keys_client_producers_and_schemas() {
    let d = double(Knobs::default());
    let agents: Vec<AgentProc> = (0..2).map(|_| AgentProc::start()).collect();
    let (r, rep) = run_on(
        &d.url,
        &agents,
        r#"
name: danube-d
broker: {kind: danube, url: "http://placeholder:6650"}
topics:
  - {name: lg-d, partitions: 4, schema: json}
  - {name: lg-s, schema: string}
  - {name: /default/lg-n, schema: int64}
producers:
  - {name: p, topic: lg-d, count: 2, rate: 200, clients: 3, keys: {round_robin: 64}}
  - {name: ps, topic: lg-s, rate: 50, message_size: 100}
  - {name: pn, topic: /default/lg-n, rate: 50}
consumers:
  - {name: shared, topic: lg-d, type: shared, count: 2}
  - {name: s, topic: lg-s, type: exclusive}
  - {name: n, topic: /default/lg-n, type: exclusive}
phases: {duration: 2s, drain_timeout: 15s}
"#,
        "danube-d",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(u(&rep["totals"]["send_errors"]), 0, "every payload fit its schema");
    assert_eq!(u(&rep["totals"]["lost"]), 0);
    let s = sub(&rep, "shared");
    let acked = u(&s["expected"]);
    assert!(acked > 600, "800 scheduled: {s}");
    assert_eq!(d.published("/default/lg-d"), acked);
    let parts = s["partition_deliveries"].as_object().expect("partition map");
    assert_eq!(parts.len(), 4, "every partition delivered: {parts:?}");
    for (p, n) in parts {
        assert!(u(n) > 100, "partition {p} got {n}");
    }
    for name in ["s", "n"] {
        let s = sub(&rep, name);
        assert!(u(&s["received_unique"]) > 50, "{s}");
        assert_eq!(u(&s["received_unique"]), u(&s["expected"]), "{s}");
    }
    let snap = d.snapshot();
    assert_eq!(snap.schemas.get("lg.default.lg-d").map(String::as_str), Some("json_schema"));
    assert_eq!(snap.schemas.get("lg.default.lg-s").map(String::as_str), Some("string"));
    assert_eq!(snap.schemas.get("lg.default.lg-n").map(String::as_str), Some("number"));
    let keyed: u64 = (0..4).map(|i| snap.topics[&format!("/default/lg-d-part-{i}")].keyed).sum();
    assert_eq!(keyed, acked, "every message carried its key");
    check_consistent(&rep);
}

#[test]
fn a_dropped_stream_reconnects_and_only_non_reliable_dispatch_loses() {
    let d = double(Knobs { drop_stream_after: 50, ..Knobs::default() });
    let agents = vec![AgentProc::start()];
    let (r, rep) = run_on(
        &d.url,
        &agents,
        r#"
name: danube-drop
broker: {kind: danube, url: "http://placeholder:6650"}
topics:
  - {name: lg-rel, reliable_dispatch: true}
  - {name: lg-nonrel}
producers:
  - {name: prel, topic: lg-rel, rate: 100}
  - {name: pnon, topic: lg-nonrel, rate: 100}
consumers:
  - {name: rel, topic: lg-rel, type: exclusive}
  - {name: nonrel, topic: lg-nonrel, type: exclusive}
phases: {duration: 2s, drain_timeout: 5s}
"#,
        "danube-drop",
    );
    // One message lost: the SLO (max_loss 0) fails, the run completes.
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rel = sub(&rep, "rel");
    assert!(u(&rel["expected"]) > 100, "{rel}");
    assert_eq!(u(&rel["received_unique"]), u(&rel["expected"]), "reliable dispatch put the message back: {rel}");
    assert_eq!(u(&rel["lost"]), 0);
    let non = sub(&rep, "nonrel");
    assert_eq!(u(&non["lost"]), 1, "the message in flight when the stream dropped: {non}");
    assert_eq!(d.subscription("/default/lg-nonrel", "nonrel").lost_in_flight, 1);
    for (t, s) in [("/default/lg-rel", "rel"), ("/default/lg-nonrel", "nonrel")] {
        let b = d.subscription(t, s);
        assert!(b.streams_opened >= 2, "{s}: the client reopened its stream ({} opened)", b.streams_opened);
    }
    assert!(r.stdout.contains("lost") || r.stderr.contains("lost"), "{}", r.stdout);
    check_consistent(&rep);
}

#[test]
fn refused_sends_are_errors_not_loss() {
    let d = double(Knobs { fail_send_every: 10, ..Knobs::default() });
    let agents = vec![AgentProc::start()];
    let (r, rep) = run_on(
        &d.url,
        &agents,
        r#"
name: danube-errors
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-err}]
producers: [{name: p, topic: lg-err, rate: 100}]
consumers: [{name: c, topic: lg-err, type: shared, count: 2}]
phases: {duration: 2s, drain_timeout: 10s}
slo: {max_send_errors: 1000}   # refused sends fail a run by default; here they are the point
"#,
        "danube-errors",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let t = &rep["totals"];
    let (sent, errors, acked) = (u(&t["sent"]), u(&t["send_errors"]), u(&t["acked"]));
    assert!(sent > 100, "200 scheduled: {t}");
    assert_eq!(errors, sent / 10, "every 10th send refused: {t}");
    assert_eq!(d.snapshot().refused_sends, errors);
    assert_eq!(acked + errors, sent, "{t}");
    assert_eq!(u(&t["lost"]), 0);
    assert_eq!(u(&sub(&rep, "c")["received_unique"]), acked);
    // Errors by kind: each refusal named by its reason, adding up to the count.
    let p = rep["groups"].as_array().expect("groups").iter().find(|g| g["role"] == "producer").expect("producer");
    let kinds = p["errors_by_kind"].as_object().expect("errors by kind");
    assert_eq!(kinds.values().map(u).sum::<u64>(), errors, "{kinds:?}");
    assert!(kinds.keys().all(|k| k.starts_with("send: ")), "{kinds:?}");
    assert!(r.stdout.contains("ERRORS (whole run, by kind)"), "{}", r.stdout);
}

#[test]
fn failover_survives_a_stopped_consumer() {
    let d = double(Knobs::default());
    // One agent: its consumers subscribe in order, so consumer 0 (the one
    // the fault stops) is the active one.
    let agents = vec![AgentProc::start()];
    let (r, rep) = run_on(
        &d.url,
        &agents,
        r#"
name: danube-e
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-e, reliable_dispatch: true}]
producers: [{name: p, topic: lg-e, rate: 100}]
consumers: [{name: fail, topic: lg-e, type: failover, count: 2}]
phases: {duration: 3s, drain_timeout: 10s}
faults: [{at: 1s, stop_consumers: {group: fail, count: 1}}]
"#,
        "danube-e",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = sub(&rep, "fail");
    assert!(u(&s["expected"]) > 150, "300 scheduled: {s}");
    assert_eq!(u(&s["received_unique"]), u(&s["expected"]), "{s}");
    assert_eq!(u(&s["lost"]), 0);
    let b = d.subscription("/default/lg-e", "fail");
    let first = b.consumers.first().expect("consumers");
    let second = b.consumers.get(1).expect("a standby");
    assert!(b.delivered.get(first).is_some_and(|n| *n > 0), "{:?}", b.delivered);
    assert!(b.delivered.get(second).is_some_and(|n| *n > 0), "the standby took over: {:?}", b.delivered);
    // The report times the hand-over: #0 to #1 about 1 s in, never both at once.
    let sw = &s["switches"];
    assert_eq!(u(&sw["count"]), 1, "{s}");
    let at = sw["list"][0]["at_s"].as_f64().expect("at_s");
    assert!((1.0..2.0).contains(&at), "{sw}");
    assert!(sw["list"][0]["from"].as_str().is_some_and(|n| n.ends_with("/fail#0")), "{sw}");
    assert_eq!(sw["concurrent_s"].as_f64(), Some(0.0), "{sw}");
    let notes = rep["notes"].to_string();
    assert!(notes.contains("stopped by a fault action"), "{notes}");
}

#[test]
fn a_broker_that_goes_away_ends_the_run_within_its_bounds() {
    let mut d = double(Knobs::default());
    let agents = [AgentProc::start()];
    let scenario = write_scenario(
        "danube-gone",
        r#"
name: danube-gone
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-gone}]
producers: [{name: p, topic: lg-gone, rate: 50, send_timeout: 2s}]
consumers: [{name: c, topic: lg-gone, type: exclusive}]
# Long enough after the broker leaves (~1 s in) for the client to give up
# resubscribing even when the machine is busy (4 s was not, once, with the
# whole suite running).
phases: {duration: 8s, drain_timeout: 3s}
"#,
    );
    let t0 = Instant::now();
    let c = spawn_scenario(&scenario, &["--agents", &agents[0].addr, "--set", &format!("broker.url={}", d.url)]);
    // Let the run get going, then take the broker away.
    while d.published("/default/lg-gone") < 50 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no traffic: {}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop_broker();
    let r = c.wait(Duration::from_secs(60));
    assert!(r.code == 0 || r.code == 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let t = &rep["totals"];
    assert!(u(&t["send_errors"]) > 0, "sends after the broker left failed: {t}");
    assert!(u(&t["acked"]) < u(&t["sent"]), "{t}");
    let notes = rep["notes"].to_string();
    assert!(notes.contains("message streams ended"), "the report says the consumer lost its broker: {notes}");
    // The fault is a window of the report: from the agents' errors, to the
    // end of the sends, and the SLOs never held again (the broker stayed away).
    let faults = rep["faults"].as_array().expect("fault windows");
    let last = faults.last().expect("a window");
    assert!(u(&last["send_errors"]) > 0, "{last}");
    assert!(last["slo_held_again_s"].is_null(), "the broker never came back: {last}");
    assert!(notes.contains("the SLOs did not hold again"), "{notes}");
}

#[test]
fn a_broker_restarted_mid_run_is_a_fault_window_with_its_loss() {
    let mut d = double(Knobs::default());
    let agents = [AgentProc::start()];
    let scenario = write_scenario(
        "danube-restart",
        r#"
name: danube-restart
broker: {kind: danube, url: "http://placeholder:6650"}
topics: [{name: lg-restart}]
producers: [{name: p, topic: lg-restart, rate: 100, send_timeout: 2s}]
consumers: [{name: c, topic: lg-restart, type: exclusive}]
phases: {duration: 14s, drain_timeout: 5s}
"#,
    );
    let t0 = Instant::now();
    let c = spawn_scenario(&scenario, &["--agents", &agents[0].addr, "--set", &format!("broker.url={}", d.url)]);
    while d.published("/default/lg-restart") < 200 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no traffic: {}", c.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let down_at = t0.elapsed();
    d.restart_broker(Duration::from_millis(1500)).expect("the double comes back");
    let r = c.wait(Duration::from_secs(90));
    assert!(r.code == 0 || r.code == 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let faults = rep["faults"].as_array().expect("fault windows");
    assert!(!faults.is_empty(), "the restart is a fault window: {}", rep["notes"]);
    let w = &faults[0];
    assert!(u(&w["send_errors"]) + u(&w["receive_errors"]) > 0 || w["stalled"] == true, "{w}");
    // The load came back: the SLOs held again before the run's end.
    assert!(w["slo_held_again_s"].is_f64(), "sends resumed after the restart: {w}\n{}", rep["notes"]);
    let from_s = w["from_s"].as_f64().expect("from_s");
    assert!(from_s <= down_at.as_secs_f64() + 2.0, "{w} (down at {down_at:?})");
    // Every lost message is counted in the interval it was sent in, and the
    // window holds what was sent during it.
    let (lost, in_windows) = check_loss_by_send_time(&rep);
    eprintln!("restart: lost {lost} ({in_windows} in fault windows), window {w}");
    let notes = rep["notes"].to_string();
    assert!(notes.contains("acknowledged messages sent were lost"), "{notes}");
}

#[test]
fn an_unreachable_broker_is_a_clear_error_at_prepare() {
    let agents = vec![AgentProc::start()];
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    let (r, _) = run_on(
        &url,
        &agents,
        "name: x\nbroker: {kind: danube, url: \"http://p:1\", connect_timeout: 2s}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 10}]\nphases: {duration: 1s}\n",
        "danube-unreachable",
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("cannot connect to the broker at {url}")), "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn bad_danube_input_is_refused_by_validate_with_file_and_line() {
    let scenario = write_scenario(
        "danube-bad",
        "name: x\nbroker: {kind: danube, url: \"http://127.0.0.1:6650\"}\ntopics:\n  - name: orders.v1\nproducers: [{name: p, topic: orders.v1, rate: 10}]\nconsumers: [{name: f, topic: orders.v1, type: failover}]\nphases: {duration: 1s}\n",
    );
    let r = coordinator(&["validate", scenario.to_str().expect("utf8")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("s.yaml:4:") && r.stderr.contains("not a valid Danube topic"), "{}", r.stderr);
    assert!(r.stderr.contains("failover subscription with one consumer"), "{}", r.stderr);
}
