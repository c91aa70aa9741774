//! Load shapes, the memory broker's added latency (publish and ack), the
//! ceiling search and the client-bound judgement every run gets, end to
//! end through the real coordinator binary and in-process agents.

mod common;

use common::*;
use serde_json::Value;

fn scenario(tag: &str, producers: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "name: {tag}\nbroker:\n  kind: memory\ntopics:\n  - name: t\n    partitions: 2\nproducers:\n{producers}\n\
         consumers:\n  - name: c\n    topic: t\n    count: 2\nphases:\n  warmup: 0s\n  duration: 3s\n  \
         drain_timeout: 10s\nreport_interval: 1s\n{extra}"
    );
    write_scenario(tag, &text)
}

/// `args` followed by a `--set` for each of `sets`.
fn with_sets<'a>(args: &[&'a str], sets: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    for s in sets {
        all.extend(["--set", s]);
    }
    all
}

fn run(path: &std::path::Path, sets: &[&str]) -> (Ran, Value) {
    let res = path.parent().expect("dir").join("results");
    let r = coordinator(&with_sets(&["run", utf8(path), "--results", utf8(&res), "--quiet"], sets));
    assert!(r.code == 0 || r.code == 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    (r, rep)
}

/// `coordinator ARGS... --set SETS...`: a ceiling search that must pass
/// (exit 0); the run and its report.
fn search(args: &[&str], sets: &[&str]) -> (Ran, Value) {
    let r = coordinator(&with_sets(args, sets));
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    (r, rep)
}

/// The search found `capacity` msg/s (within 10 %), bound by the broker.
fn assert_found_the_broker_capacity(r: &Ran, rep: &Value, capacity: f64) {
    let c = &rep["ceiling"];
    let rate = c["rate_msgs_per_s"].as_f64().expect("rate");
    assert!((rate - capacity).abs() / capacity <= 0.10, "ceiling {rate}\n{}", r.stdout);
    assert_eq!(c["bound_by"], "broker", "{}", r.stdout);
}

// Every test here judges timing on a 2-core machine (and one runs a
// closed loop that takes all the CPU it gets): each takes `serial()`, one
// at a time, so they do not judge each other's CPU use.

/// The searches' latency SLO here: loose, so a noisy machine does not move
/// the result (past the capacity the rate ratio fails regardless).
const LOOSE_P99: &str = "slo.p99_e2e=250ms";
/// And the schedule lag that makes a step client-bound: a hiccup of this
/// shared 2-core machine is not what these tests are about (the guard has
/// its own test below).
const LOOSE_LAG: &str = "ceiling.max_client_lag=1s";

#[test]
fn a_ramp_sends_its_integral_and_max_is_a_closed_loop() {
    let _serial = serial();
    // 100 -> 1000 msg/s over 3 s: 1650 messages.
    let p = scenario(
        "ramp",
        concat!(
            "  - name: r\n    topic: t\n    count: 3\n    load: {ramp: {from: 100, to: 1000, over: 3s}}\n",
            "  - name: m\n    topic: t\n    count: 1\n    rate: max\n    max_in_flight: 4\n",
        ),
        "slo:\n  min_rate_ratio: 0.98\n  p99_publish: 1ms\n",
    );
    let (r, rep) = run(&p, &["broker.latency=1ms"]);
    let ramp = group(&rep, "r");
    let acked = ramp["messages"].as_u64().expect("messages");
    assert!((1640..=1660).contains(&acked), "ramp acked {acked}\n{}", r.stderr);
    assert!((ramp["target_rate_msgs_per_s"].as_f64().expect("target") - 550.0).abs() < 1e-6);
    let max = group(&rep, "m");
    assert_eq!(max["closed_loop"], true);
    assert!(max["messages"].as_u64().expect("messages") > 100);
    // Neither the rate target nor response time is judged for the closed loop.
    let checks: Vec<String> =
        rep["slo"].as_array().expect("slo").iter().map(|c| c["name"].as_str().unwrap_or("").to_string()).collect();
    assert!(checks.iter().all(|c| !c.ends_with(" m")), "{checks:?}");
    assert!(checks.iter().any(|c| c == "min_rate_ratio r"), "{checks:?}");
    let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
}

#[test]
fn memory_broker_latency_shows_in_the_median() {
    let _serial = serial();
    let p = scenario("latency", "  - name: p\n    topic: t\n    count: 2\n    total_rate: 400\n", "");
    let p50 = |latency: &str| {
        let (_, rep) = run(&p, &[&format!("broker.latency={latency}")]);
        group(&rep, "c")["latency_us"]["p50"].as_f64().expect("p50")
    };
    let base = p50("0ms");
    let slow = p50("20ms");
    let added_ms = (slow - base) / 1e3;
    eprintln!("e2e p50: {base:.0} us without, {slow:.0} us with latency 20ms: +{added_ms:.2} ms");
    // The tokio timer rounds sleeps up to the next millisecond.
    assert!((19.0..=22.5).contains(&added_ms), "added {added_ms} ms");
    let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
}

/// The memory broker's ack latency knob shows in the consumers' ack
/// latency, and only there.
#[test]
fn memory_broker_ack_latency_shows_in_the_consumers_ack_latency() {
    let _serial = serial();
    let p = scenario("ack-latency", "  - name: p\n    topic: t\n    count: 2\n    total_rate: 200\n", "");
    let (r, rep) = run(&p, &["broker.ack_latency=2ms"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let c = group(&rep, "c");
    let ack = &c["latency"]["ack"];
    assert_eq!(ack["count"], c["messages"], "{c}");
    let p50_ms = ack["p50"].as_f64().expect("p50") / 1e3;
    // The tokio timer rounds sleeps up to the next millisecond.
    assert!((1.9..=3.5).contains(&p50_ms), "ack p50 {p50_ms} ms");
    assert!(group(&rep, "p")["latency"].get("ack").is_none(), "producers have no ack latency of their own");
    // The summary (`report` prints it again from report.json) names it.
    let summary = coordinator(&["report", r.stdout.trim().lines().last().expect("results dir")]).stdout;
    assert!(summary.contains("(ack: consumer ack: from the call to acknowledge"), "{summary}");
    let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
}

/// Every run says whether the client (the generator) bounded its figures,
/// by the ceiling search's criteria: a comfortable run does not; an agent
/// over `slo.max_client_cpu` does, named, and `slo.allow_client_bound:
/// false` fails the run on it (exit 1).
#[test]
fn a_run_bounded_by_the_client_says_so_and_the_slo_can_fail_it() {
    let _serial = serial();
    let p = scenario("client-bound", "  - name: p\n    topic: t\n    count: 2\n    total_rate: 200\n", "");
    let (r, rep) = run(&p, &["slo.max_client_lag=1s", "slo.allow_client_bound=false"]);
    assert_eq!(r.code, 0, "comfortable: nothing bounded by the client\n{}\n{}", r.stdout, r.stderr);
    assert!(rep.get("client_bound").is_none(), "{}", rep["client_bound"]);
    let check =
        rep["slo"].as_array().expect("slo").iter().find(|c| c["name"] == "client_bound").expect("judged").clone();
    assert_eq!((check["pass"].as_bool(), check["actual"].as_str()), (Some(true), Some("none")));
    // A CPU limit no agent can stay under.
    let (r, rep) = run(&p, &["slo.max_client_lag=1s", "slo.allow_client_bound=false", "slo.max_client_cpu=0.000001"]);
    assert_eq!(r.code, 1, "the SLO fails the run\n{}\n{}", r.stdout, r.stderr);
    let cb = &rep["client_bound"];
    let reasons = cb["reasons"].as_array().expect("reasons");
    let agents: Vec<&str> = rep["agents"].as_array().expect("agents").iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(reasons.len(), agents.len(), "one per agent: {cb}");
    for (reason, id) in reasons.iter().zip(&agents) {
        assert_eq!(reason["criterion"], "cpu", "{cb}");
        assert_eq!(reason["agents"], serde_json::json!([id]), "{cb}");
        assert!(reason["value"].as_f64().expect("value") > reason["limit"].as_f64().expect("limit"), "{cb}");
        assert_eq!(reason["unit"], "%");
        // Over the limit through the measurement, interval by interval.
        assert!(reason["over_limit_percent"].as_f64().is_some_and(|p| p >= 50.0), "{cb}");
        assert!(reason["detail"].as_str().is_some_and(|d| d.contains("intervals")), "{cb}");
    }
    let said = cb["summary"].as_str().expect("summary");
    assert!(said.starts_with(&format!("agent {} used ", agents[0])), "{said}");
    let dir = r.stdout.trim().lines().last().expect("results dir");
    let summary = coordinator(&["report", dir]).stdout;
    assert!(summary.contains(&format!("— verdict: FAIL; figures bounded by the client: {said}")), "{summary}");
    assert!(summary.contains("FAIL client_bound"), "{summary}");
    let html = std::fs::read_to_string(std::path::Path::new(dir).join("report.html")).expect("report.html");
    assert!(html.contains("class=\"client-bound\""), "the HTML says it at the top");
    // Reported, not judged, without the SLO.
    let (r, rep) = run(&p, &["slo.max_client_lag=1s", "slo.max_client_cpu=0.000001"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(rep["client_bound"]["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
}

/// One producer asked for far more than one core sends on the memory
/// broker, which acknowledges at once: it falls behind its schedule with
/// room in flight, so the generator, not the broker, set the figures.
#[test]
fn a_producer_far_beyond_one_core_is_bound_by_the_client() {
    let _serial = serial();
    let p = scenario(
        "overload",
        "  - name: p\n    topic: t\n    count: 1\n    rate: 5000000\n    max_in_flight: 100000\n",
        "",
    );
    let (r, rep) = run(&p, &["phases.duration=2s", "slo.max_loss=1000000000"]);
    let cb = &rep["client_bound"];
    let reasons = cb["reasons"].as_array().unwrap_or_else(|| panic!("client-bound\n{}", r.stdout));
    eprintln!("{}", cb["summary"]);
    // The producers fell behind with room in flight ("lag"), or an agent
    // saturated its CPUs ("cpu", and with it a full window: "in_flight_wait").
    let lag = reasons.iter().find(|x| x["criterion"] == "lag");
    let cpu = reasons.iter().any(|x| x["criterion"] == "cpu");
    assert!(lag.is_some() || cpu, "{cb}");
    if let Some(lag) = lag {
        assert_eq!(lag["group"], "p", "{cb}");
        assert!(lag["value"].as_f64().expect("lag") > 100.0, "{cb}");
        assert!(!lag["agents"].as_array().expect("agents").is_empty(), "{cb}");
    }
    let summary = coordinator(&["report", r.stdout.trim().lines().last().expect("results dir")]).stdout;
    assert!(summary.contains("figures bounded by the client: "), "{summary}");
    let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
}

#[test]
fn ceiling_search_finds_the_memory_broker_capacity() {
    let _serial = serial();
    let sets = [
        "broker.capacity_msgs_per_s=5000",
        "ceiling.step_duration=2s",
        "ceiling.precision=0.1",
        "phases.warmup=1s",
        LOOSE_P99,
        LOOSE_LAG,
    ];
    let res = temp_dir("ceiling");
    let (r, rep) = search(&["run", "configs/ceiling-memory.yaml", "--results", utf8(&res)], &sets);
    assert_found_the_broker_capacity(&r, &rep, 5000.0);
    let steps = rep["ceiling"]["steps"].as_array().expect("steps");
    assert!(steps.len() >= 4 && steps.iter().any(|s| s["verdict"] == "fail"), "{steps:?}");
    assert_eq!(rep["verdict"], "pass");
    assert!(r.stdout.contains("ceiling: ") && r.stdout.contains("bound by the broker"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(res);
}

/// A broker far above `ceiling.max`: every step up to max passes and the
/// search stops there. That is a lower bound, not the broker's ceiling:
/// `bound_by: search_max`, and the console and the HTML say "at least".
#[test]
fn ceiling_search_that_reaches_its_max_is_a_lower_bound() {
    let _serial = serial();
    let sets = [
        "broker.capacity_msgs_per_s=1000000",
        "ceiling.start=300",
        "ceiling.max=600",
        "ceiling.step_duration=1s",
        "phases.warmup=0s",
        LOOSE_P99,
        LOOSE_LAG,
    ];
    let res = temp_dir("ceiling-max");
    let (r, rep) = search(&["run", "configs/ceiling-memory.yaml", "--results", utf8(&res)], &sets);
    let c = &rep["ceiling"];
    assert_eq!(c["bound_by"], "search_max", "{}", r.stdout);
    let steps = c["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "300 then 600 msg/s: {steps:?}");
    assert!(steps.iter().all(|s| s["verdict"] == "pass"), "{steps:?}");
    assert_eq!(rep["verdict"], "pass");
    let said = "every step up to ceiling.max passed; raise ceiling.max";
    assert!(r.stdout.contains("ceiling: at least ") && r.stdout.contains(said), "{}", r.stdout);
    assert!(!r.stdout.contains("bound by the broker"), "{}", r.stdout);
    let dir = r.stdout.lines().last().expect("results dir");
    let html = std::fs::read_to_string(std::path::Path::new(dir).join("report.html")).expect("report.html");
    assert!(html.contains(said) && !html.contains("bound by the <b>broker</b>"), "the HTML says it too");
    let _ = std::fs::remove_dir_all(res);
}

/// Three agent processes, each with its own in-process memory broker and
/// one of the three topics: the capacity is shared out by offered rate, so
/// the search finds the broker's capacity, not three times it.
#[test]
fn ceiling_search_on_three_agent_processes_finds_the_whole_capacity() {
    let _serial = serial();
    let agents: Vec<AgentProc> = (0..3).map(|_| AgentProc::start()).collect();
    let list = agent_list(&agents);
    let res = temp_dir("ceiling-3");
    let sets = [
        "broker.capacity_msgs_per_s=6000",
        "ceiling.step_duration=2s",
        "ceiling.precision=0.1",
        "phases.warmup=1s",
        LOOSE_P99,
        LOOSE_LAG,
    ];
    let (r, rep) = search(&["run", "configs/ceiling-memory.yaml", "--agents", &list, "--results", utf8(&res)], &sets);
    assert_found_the_broker_capacity(&r, &rep, 6000.0);
    // Every process did its third of the work, on a third of the capacity.
    let per_agent = rep["agents"].as_array().expect("agents");
    assert_eq!(per_agent.len(), 3);
    let total: f64 = per_agent.iter().map(|a| a["target_rate_msgs_per_s"].as_f64().expect("rate")).sum();
    for a in per_agent {
        let share = a["target_rate_msgs_per_s"].as_f64().expect("rate") / total;
        assert!((share - 1.0 / 3.0).abs() < 0.01, "{a}");
        assert!(a["acked"].as_u64().expect("acked") > 0, "{a}");
    }
    let _ = std::fs::remove_dir_all(res);
}

/// `--ceiling` turns a plain scenario (no `mode`, no `ceiling:` block) into
/// a search; `--set ceiling.*` tunes it.
#[test]
fn the_ceiling_flag_searches_any_scenario() {
    let _serial = serial();
    let path = write_scenario(
        "ceiling-flag",
        "name: plain\nbroker: {kind: memory, capacity_msgs_per_s: 4000, latency: 1ms}\n\
         topics: [{name: t, partitions: 2}]\n\
         producers: [{name: p, topic: t, count: 2, total_rate: 500, max_in_flight: 1000}]\n\
         consumers: [{name: c, topic: t, count: 2}]\n\
         phases: {warmup: 1s, duration: 30s, drain_timeout: 10s}\nreport_interval: 1s\nslo: {p99_e2e: 250ms}\n",
    );
    let dir = path.parent().expect("dir").to_path_buf();
    let res = dir.join("results");
    let sets = ["ceiling.start=500", "ceiling.step_duration=2s", "ceiling.precision=0.1", LOOSE_LAG];
    let (r, rep) = search(&["run", utf8(&path), "--ceiling", "--results", utf8(&res)], &sets);
    assert_found_the_broker_capacity(&r, &rep, 4000.0);
    let c = &rep["ceiling"];
    assert!(c["steps"].as_array().expect("steps").len() >= 4, "{c}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_overloaded_generator_is_client_bound_never_the_ceiling() {
    let _serial = serial();
    // A CPU threshold no agent can stay under: every step is client-bound.
    let res = temp_dir("ceiling-client");
    let r = coordinator(&[
        "run",
        "configs/ceiling-memory.yaml",
        "--results",
        res.to_str().expect("utf8"),
        "--set",
        "ceiling.step_duration=1s",
        "--set",
        "ceiling.max_client_cpu=0.000001",
        "--set",
        "phases.warmup=0s",
    ]);
    assert_eq!(r.code, 1, "even the start rate fails\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let c = &rep["ceiling"];
    assert_eq!(c["bound_by"], "client");
    assert_eq!(c["steps"][0]["verdict"], "client-bound");
    assert_eq!(c["rate_msgs_per_s"].as_f64(), Some(0.0));
    assert!(r.stdout.contains("add agents"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(res);
}

/// Consumers that start late, or pause: the backlog builds at the publish
/// rate while they take nothing, then drains; nothing is lost.
#[test]
fn a_late_start_and_a_pause_show_as_backlog_growth_and_drain() {
    let _serial = serial();
    let path = write_scenario(
        "backlog",
        "name: backlog\nbroker: {kind: memory}\ntopics: [{name: t, partitions: 2}]\n\
         producers: [{name: p, topic: t, count: 2, total_rate: 1000}]\n\
         consumers:\n\
         - {name: live, topic: t, count: 2}\n\
         - {name: late, topic: t, count: 2, start_after: 2s}\n\
         - {name: paused, topic: t, count: 2, pause: {at: 3s, for: 2s}}\n\
         phases: {warmup: 0s, duration: 7s, drain_timeout: 10s}\nreport_interval: 1s\n",
    );
    let dir = path.parent().expect("dir").to_path_buf();
    let (r, rep) = run(&path, &[]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let sub = |name: &str| {
        rep["subscriptions"].as_array().expect("subs").iter().find(|s| s["subscription"] == name).expect("sub").clone()
    };
    for s in ["live", "late", "paused"] {
        assert_eq!(sub(s)["lost"], 0, "{}", sub(s));
    }
    let b = |name: &str| sub(name)["backlog"].clone();
    let f = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    // Nothing taken for 2 s at 1000 msg/s: a peak near 2000 at 2 s.
    let late = b("late");
    assert!((1700.0..=2300.0).contains(&f(&late["max"])), "{late}");
    assert!((f(&late["max_at_s"]) - 2.0).abs() <= 0.5, "{late}");
    assert!((800.0..=1200.0).contains(&f(&late["growth_msgs_per_s"])), "{late}");
    assert!(f(&late["drained_after_s"]) <= 2.0, "{late}");
    // Paused from 3 s to 5 s: the same from 3 s on, peak at 5 s.
    let paused = b("paused");
    assert!((1700.0..=2300.0).contains(&f(&paused["max"])), "{paused}");
    assert!((f(&paused["max_at_s"]) - 5.0).abs() <= 0.5, "{paused}");
    assert!((800.0..=1200.0).contains(&f(&paused["growth_msgs_per_s"])), "{paused}");
    // The one that kept up had none worth the name.
    assert!(f(&b("live")["max"]) < 200.0, "{}", b("live"));
    // Per interval: the late subscription's backlog rises, then falls.
    let series: Vec<u64> = rep["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter(|i| i["group"] == "late")
        .map(|i| i["backlog"].as_u64().expect("backlog"))
        .collect();
    assert!(
        series.len() >= 6 && series[0] > 700 && series[1] > series[0] && *series.last().expect("last") < 200,
        "{series:?}"
    );
    // The summary says so (`report` prints it again from report.json).
    let summary = coordinator(&["report", r.stdout.trim().lines().last().expect("results dir")]);
    assert!(summary.stdout.contains("backlog t/late: peak"), "{}", summary.stdout);
    assert!(!summary.stdout.contains("backlog t/live"), "{}", summary.stdout);
    let _ = std::fs::remove_dir_all(dir);
}
