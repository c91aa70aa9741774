//! `danube-bare`, the loop the agent's Danube figures are measured
//! against, on the Danube-protocol test double: what it says it sent is
//! what the broker got, in both of its send modes, and its `--series`
//! samples (the same-time comparison of `CONCURRENT=1 bench/danube.sh`)
//! count up to that total.

use std::process::Command;

use testkit::danube_double::{DanubeDouble, Knobs};

/// Runs danube-bare for `seconds` on `topic` with `extra` flags: its JSON line.
fn bare(url: &str, topic: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_danube-bare"))
        .args(["--url", url, "--topic", topic, "--producers", "2", "--size", "100", "--seconds", "1"])
        .args(extra)
        .output()
        .expect("run danube-bare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn what_the_bare_loop_counts_is_what_the_broker_got() {
    let d = DanubeDouble::start(Knobs::default()).expect("danube test double");
    let dir = std::env::temp_dir().join(format!("lg-danube-bare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let series = dir.join("series");
    for (topic, extra) in
        [("/default/plain", vec!["--series", series.to_str().expect("utf-8 path")]), ("/default/hop", vec!["--hop"])]
    {
        let r = bare(&d.url, topic, &extra);
        let acked = r["acked"].as_u64().expect("acked");
        assert!(acked > 100, "{topic}: {r}");
        assert_eq!(r["errors"].as_u64(), Some(0), "{topic}: {r}");
        assert_eq!(d.published(topic), acked, "{topic}: the broker got what the loop counted");
    }
    // `ms count` every 100 ms: times and counts never go back, and the last
    // sample is at most the total (the loops end after it).
    let text = std::fs::read_to_string(&series).expect("series file");
    let samples: Vec<(u128, u64)> = text
        .lines()
        .map(|l| {
            let (t, n) = l.split_once(' ').unwrap_or_else(|| panic!("a sample line: {l:?}"));
            (t.parse().expect("ms"), n.parse().expect("count"))
        })
        .collect();
    assert!(samples.len() >= 8, "about ten samples in a second: {text}");
    assert!(samples.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "{text}");
    let total = d.published("/default/plain");
    let last = samples.last().expect("a sample").1;
    assert!(last <= total && last * 10 >= total * 7, "last sample {last} of {total}");
    let _ = std::fs::remove_dir_all(&dir);
}
