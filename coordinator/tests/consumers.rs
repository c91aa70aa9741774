//! Who received what, on the memory broker: each consumer's deliveries and
//! share, the spread over a subscription's consumers and its SLO, failover
//! switches with their times, and keys on one consumer at a time — in
//! report.json, the console summary and report.html.

mod common;

use common::*;

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The rows of `by_consumer`, checked to add up to the subscription's
/// deliveries and unique messages.
fn consumers_adding_up(s: &serde_json::Value) -> &Vec<serde_json::Value> {
    let by = s["by_consumer"].as_array().unwrap_or_else(|| panic!("by_consumer: {s}"));
    assert_eq!(by.len() as u64, u(&s["consumers"]), "one row per consumer: {s}");
    assert_eq!(by.iter().map(|c| u(&c["deliveries"])).sum::<u64>(), u(&s["deliveries"]), "{s}");
    let shares: f64 = by.iter().map(|c| f(&c["share_percent"])).sum();
    assert!((shares - 100.0).abs() < 0.01, "shares add up to 100 %: {s}");
    by
}

/// Shared over 3 consumers on two agents: a third each (round-robin),
/// imbalance near 0; exclusive: one consumer has it all, no switch;
/// key_shared over 3: no key on two consumers at once. Both new SLOs hold.
#[test]
fn shares_spread_and_keys_per_subscription_type() {
    let scenario = write_scenario(
        "shares",
        r#"
name: shares
broker: {kind: memory}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 600, keys: {round_robin: 1000}}]
consumers:
  - {name: sh, topic: t, type: shared, count: 3}
  - {name: ex, topic: t, type: exclusive}
  - {name: ks, topic: t, type: key_shared, count: 3}
phases: {warmup: 1s, duration: 3s}
slo: {max_consumer_imbalance: 40, max_key_overlaps: 0}
"#,
    );
    let r = run_scenario(&scenario, &["--local-agents", "2"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);

    let sh = sub(&rep, "sh");
    let by = consumers_adding_up(sh);
    for c in by {
        let share = f(&c["share_percent"]);
        assert!((share - 100.0 / 3.0).abs() < 1.0, "a third each: {sh}");
        assert_eq!(u(&c["unique"]), u(&c["deliveries"]), "no repeats: {c}");
        assert!(c["name"].as_str().expect("name").contains("/sh#"), "{c}");
    }
    let agents: std::collections::BTreeSet<&str> = by.iter().map(|c| c["agent"].as_str().expect("agent")).collect();
    assert_eq!(agents.len(), 2, "consumers spread over both agents: {sh}");
    assert!(f(&sh["consumer_imbalance_percent"]) < 1.0, "{sh}");
    assert!(sh.get("switches").is_none() && sh.get("key_overlaps").is_none(), "{sh}");

    let ex = sub(&rep, "ex");
    let by = consumers_adding_up(ex);
    assert_eq!(f(&by[0]["share_percent"]), 100.0, "{ex}");
    assert_eq!(u(&ex["switches"]["count"]), 0, "{ex}");
    assert_eq!(f(&ex["switches"]["concurrent_s"]), 0.0, "{ex}");
    assert!(ex.get("consumer_imbalance_percent").is_none(), "one consumer: no spread: {ex}");

    let ks = sub(&rep, "ks");
    consumers_adding_up(ks);
    let k = &ks["key_overlaps"];
    assert_eq!(u(&k["count"]), 0, "{ks}");
    assert_eq!(u(&k["keys_checked"]), 1000, "every key seen: {ks}");
    assert_eq!(u(&k["untracked_receipts"]), 0, "{ks}");

    let slo = rep["slo"].as_array().expect("slo");
    for name in ["max_consumer_imbalance sh", "max_consumer_imbalance ks", "max_key_overlaps ks"] {
        let c = slo.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} judged: {slo:?}"));
        assert_eq!(c["pass"], true, "{c}");
    }
    assert!(!slo.iter().any(|c| c["name"] == "max_consumer_imbalance ex"), "not judged for exclusive: {slo:?}");

    // The console summary and the page list the consumers and their shares.
    assert!(r.stderr.contains("sh: 3 consumers") || r.stdout.contains("sh: 3 consumers"), "{}\n{}", r.stdout, r.stderr);
    let dir = r.stdout.lines().last().expect("dir");
    let html = std::fs::read_to_string(std::path::Path::new(dir).join("report.html")).expect("html");
    let first = by[0]["name"].as_str().expect("name");
    assert!(html.contains("Who received what") && html.contains(first), "the page names each consumer");
    remove_scenario_dir(&scenario);
}

/// Failover: the active consumer is stopped by a fault 1.5 s in; the
/// standby takes over. The report times the switch and sees no moment with
/// two active consumers.
#[test]
fn a_failover_switch_is_timed() {
    let scenario = write_scenario(
        "switch",
        r#"
name: switch
broker: {kind: memory}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 500}]
consumers: [{name: fo, topic: t, type: failover, count: 2}]
phases: {duration: 3s}
faults: [{at: 1500ms, stop_consumers: {group: fo, count: 1}}]
"#,
    );
    // One agent: its consumers subscribe in order, so #0 is the active one.
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    let s = sub(&rep, "fo");
    let by = consumers_adding_up(s);
    // #0 had the first 1.5 s (about 750 messages), #1 the rest.
    let d0 = u(&by[0]["deliveries"]);
    assert!((650..=850).contains(&d0), "{s}");
    let sw = &s["switches"];
    assert_eq!(u(&sw["count"]), 1, "{s}");
    let one = &sw["list"][0];
    assert!(one["from"].as_str().expect("from").ends_with("/fo#0"), "{one}");
    assert!(one["to"].as_str().expect("to").ends_with("/fo#1"), "{one}");
    let at = f(&one["at_s"]);
    assert!((1.5..2.0).contains(&at), "switched at the fault, 1.5 s: {one}");
    assert_eq!(f(&sw["concurrent_s"]), 0.0, "one active consumer at a time: {s}");
    let text = r.stdout.clone() + &r.stderr;
    assert!(text.contains("switch"), "the summary lists the switch: {text}");
    remove_scenario_dir(&scenario);
}

/// One of three shared consumers stopped 1 s into a 3 s run: the spread is
/// large and `max_consumer_imbalance: 10` fails the run.
#[test]
fn a_skewed_spread_fails_max_consumer_imbalance() {
    let scenario = write_scenario(
        "skew",
        r#"
name: skew
broker: {kind: memory}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 600}]
consumers: [{name: sh, topic: t, type: shared, count: 3}]
phases: {duration: 3s}
faults: [{at: 1s, stop_consumers: {group: sh, count: 1}}]
slo: {max_consumer_imbalance: 10}
"#,
    );
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "fail");
    let s = sub(&rep, "sh");
    let by = consumers_adding_up(s);
    // #0 got a third of the first second (~200), the others ~800 each:
    // (800 - 200) / 600 = 100 %.
    let imbalance = f(&s["consumer_imbalance_percent"]);
    assert!((80.0..120.0).contains(&imbalance), "{s}");
    assert!(u(&by[0]["deliveries"]) < u(&by[1]["deliveries"]) / 2, "{s}");
    let slo = rep["slo"].as_array().expect("slo");
    let c = slo.iter().find(|c| c["name"] == "max_consumer_imbalance sh").expect("judged");
    assert_eq!(c["pass"], false, "{c}");
    assert_eq!(u(&s["lost"]), 0, "the others took over: {s}");
    remove_scenario_dir(&scenario);
}

/// The memory broker misroutes every 7th message to the next consumer: the
/// failover standby receives while the active one does (two active at once,
/// a note), and keys reach a second consumer while the first still has
/// them: `max_key_overlaps: 0` fails the run and the note names a key.
#[test]
fn misrouted_messages_break_failover_and_key_shared_and_are_caught() {
    let scenario = write_scenario(
        "misroute",
        r#"
name: misroute
broker: {kind: memory, misroute_every: 7}
topics: [{name: t}]
producers: [{name: p, topic: t, rate: 500, keys: {round_robin: 100}}]
consumers:
  - {name: fo, topic: t, type: failover, count: 2}
  - {name: ks, topic: t, type: key_shared, count: 2}
phases: {duration: 3s}
slo: {max_key_overlaps: 0}
"#,
    );
    let r = run_scenario(&scenario, &["--local-agents", "1"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(u(&rep["totals"]["lost"]), 0, "misrouted, not lost");

    let fo = sub(&rep, "fo");
    let by = consumers_adding_up(fo);
    // A seventh of the messages to the standby.
    let standby = f(&by[1]["share_percent"]);
    assert!((standby - 100.0 / 7.0).abs() < 1.0, "{fo}");
    let concurrent = f(&fo["switches"]["concurrent_s"]);
    assert!(concurrent > 2.0, "both received through most of the 3 s: {fo}");

    let ks = sub(&rep, "ks");
    consumers_adding_up(ks);
    let k = &ks["key_overlaps"];
    // 7 and 100 are coprime: every key is misrouted now and then.
    assert_eq!(u(&k["keys_checked"]), 100, "{ks}");
    assert_eq!(u(&k["count"]), 100, "{ks}");
    let slo = rep["slo"].as_array().expect("slo");
    let c = slo.iter().find(|c| c["name"] == "max_key_overlaps ks").expect("judged");
    assert_eq!((c["actual"].as_str(), &c["pass"]), (Some("100"), &serde_json::json!(false)), "{c}");

    let notes = rep["notes"].to_string();
    assert!(notes.contains("subscription `fo` (failover)") && notes.contains("at once"), "{notes}");
    assert!(notes.contains("subscription `ks` (key_shared)") && notes.contains("100 of 100 keys"), "{notes}");
    assert!(r.stdout.contains("TWO ACTIVE AT ONCE"), "{}", r.stdout);
    remove_scenario_dir(&scenario);
}
