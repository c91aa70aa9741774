//! The CLI's contract: validate, init, exit codes, and bad input that must
//! end with exit 2 and one message naming file and line, never a panic.

mod common;

use common::*;

#[test]
fn every_config_validates_and_prints_a_plan() {
    let dir = repo_root().join("configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("configs/") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        let r = coordinator(&["validate", p.to_str().expect("utf8"), "--agents", "3"]);
        assert_eq!(r.code, 0, "{}: {}", p.display(), r.stderr);
        assert!(r.stdout.contains("AGENT") && r.stdout.contains("total publish rate"), "{}", r.stdout);
    }
    assert!(n >= 6, "expected the example configs");
}

#[test]
fn init_writes_templates_that_validate() {
    let dir = temp_dir("init");
    for t in ["quickstart", "baseline", "subscriptions", "multi-topic", "partitions", "failover"] {
        let out = dir.join(format!("{t}.yaml"));
        let r = coordinator(&["init", "--template", t, "--output", out.to_str().expect("utf8")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = coordinator(&["validate", out.to_str().expect("utf8")]);
        assert_eq!(v.code, 0, "{}", v.stderr);
    }
    let again = coordinator(&["init", "--output", dir.join("quickstart.yaml").to_str().expect("utf8")]);
    assert_eq!(again.code, 2, "refuses to overwrite");
    let bad = coordinator(&["init", "--template", "nope", "--output", "-"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("quickstart"), "{}", bad.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

fn expect_bad(name: &str, content: &[u8], must_contain: &[&str]) {
    let dir = temp_dir("bad");
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    for cmd in ["validate", "run"] {
        let r = coordinator(&[cmd, p.to_str().expect("utf8"), "--quiet"][..if cmd == "run" { 3 } else { 2 }]);
        assert_eq!(r.code, 2, "{cmd} {name}: stdout {} stderr {}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(r.stderr.contains(p.to_str().expect("utf8")), "names the file: {}", r.stderr);
        for m in must_contain {
            assert!(r.stderr.contains(m), "{name}: expected `{m}` in: {}", r.stderr);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

const BASE: &str = "name: x\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers:\n  - name: p\n    topic: t\n    rate: 10\nconsumers:\n  - {name: c, topic: t}\nphases: {duration: 5s}\n";

#[test]
fn bad_scenarios_exit_2_with_file_line_and_key() {
    expect_bad(
        "unknown.yaml",
        BASE.replace("    rate: 10", "    rate: 10\n    colour: red").as_bytes(),
        &[":8:5: producers[0].colour", "unknown field"],
    );
    expect_bad(
        "units.yaml",
        BASE.replace("duration: 5s", "duration: 5 fortnights").as_bytes(),
        &[":10:", "phases.duration"],
    );
    expect_bad("nounit.yaml", BASE.replace("duration: 5s", "duration: 5").as_bytes(), &["phases.duration", "no unit"]);
    expect_bad(
        "negative.yaml",
        BASE.replace("rate: 10", "rate: -10").as_bytes(),
        &[":7:5: producers[0].rate", "not a positive rate"],
    );
    expect_bad("zero.yaml", BASE.replace("rate: 10", "rate: 0").as_bytes(), &["producers[0].rate"]);
    expect_bad(
        "topic.yaml",
        BASE.replace("{name: c, topic: t}", "{name: c, topic: elsewhere}").as_bytes(),
        &[":9:", "consumers[0].topic", "elsewhere"],
    );
    expect_bad(
        "many.yaml",
        BASE.replace("    rate: 10", "    rate: 10\n    count: 5000000").as_bytes(),
        &["producers[0].count", "more than this tool runs"],
    );
    expect_bad("list.yaml", b"- a\n- b\n", &["not a mapping"]);
    expect_bad("empty.yaml", b"", &["empty"]);
    expect_bad("binary.yaml", &[0x7f, b'E', b'L', b'F', 0, 0, 1, 2, 3, 0xff], &["binary"]);
    expect_bad("syntax.yaml", b"name: [oops\n", &["not valid YAML"]);
    expect_bad("type.yaml", BASE.replace("rate: 10", "rate: fast").as_bytes(), &["producers[0].rate"]);
}

#[test]
fn huge_file_is_refused_without_reading_it() {
    let dir = temp_dir("huge");
    let p = dir.join("huge.yaml");
    let f = std::fs::File::create(&p).expect("create");
    f.set_len(100 * 1024 * 1024).expect("sparse");
    let r = coordinator(&["validate", p.to_str().expect("utf8")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a scenario is at most"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_flags_and_sets_are_exit_2() {
    let r = coordinator(&["run", "configs/quickstart.yaml", "--set", "phases.duration=-3s"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--set phases.duration"), "{}", r.stderr);
    let r = coordinator(&["run", "configs/quickstart.yaml", "--set", "nonsense"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = coordinator(&["run", "configs/quickstart.yaml", "--bogus-flag"]);
    assert_eq!(r.code, 2);
    let r = coordinator(&["run", "does/not/exist.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does/not/exist.yaml"), "{}", r.stderr);
    let r = coordinator(&["validate", "configs/quickstart.yaml", "--set", "placement=split", "--agents", "1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("split"), "{}", r.stderr);
}

/// `--quick`, `--duration` and `--rate` are the `--set`s they stand for:
/// `validate` prints them, and the plan equals the one of those `--set`s.
#[test]
fn shorthands_are_the_sets_they_stand_for() {
    let r = coordinator(&["validate", "configs/quickstart.yaml", "--quick", "--duration", "7s", "--rate", "900"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stdout.lines().find(|l| l.starts_with("shorthands stand for: ")).expect("the sets are shown");
    assert!(line.contains("--set phases.warmup=1s") && line.contains("--set phases.duration=7s"), "{line}");
    assert!(line.contains("total_rate="), "{line}");
    assert!(r.stdout.contains("measure 7s"), "{}", r.stdout);
    let mut explicit = vec!["validate", "configs/quickstart.yaml"];
    explicit.extend(line.trim_start_matches("shorthands stand for: ").split(' '));
    let e = coordinator(&explicit);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let plan = |out: &str| out.lines().filter(|l| !l.starts_with("shorthands")).collect::<Vec<_>>().join("\n");
    assert_eq!(plan(&r.stdout), plan(&e.stdout), "the same scenario");
    // The groups keep their proportions and add up to the rate.
    let total = r.stdout.lines().find(|l| l.contains("total publish rate")).expect("total line");
    assert!(total.contains("900"), "{total}");

    for bad in [["--rate", "-5"], ["--rate", "lots"], ["--duration", "soon"]] {
        let b = coordinator(&["validate", "configs/quickstart.yaml", bad[0], bad[1]]);
        assert_eq!(b.code, 2, "{bad:?}: {}", b.stderr);
    }
}

#[test]
fn init_all_writes_every_template_once() {
    let dir = temp_dir("init-all");
    let r = coordinator(&["init", "--all", "--output", dir.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written: Vec<_> = std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok).map(|e| e.path()).collect();
    assert_eq!(written.len(), coordinator::TEMPLATES.len(), "{written:?}");
    for p in &written {
        let v = coordinator(&["validate", p.to_str().expect("utf8")]);
        assert_eq!(v.code, 0, "{}: {}", p.display(), v.stderr);
    }
    let again = coordinator(&["init", "--all", "--output", dir.to_str().expect("utf8")]);
    assert_eq!(again.code, 2, "refuses to overwrite: {}", again.stderr);
    let forced = coordinator(&["init", "--all", "--force", "--output", dir.to_str().expect("utf8")]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

/// `--quick` runs the scenario in seconds; `-v --log-format json` logs
/// JSON lines at info.
#[test]
fn a_quick_run_with_json_logs() {
    let dir = temp_dir("quick");
    // Without RUST_LOG (which wins over -v), as a user runs it.
    let out = std::process::Command::new(coordinator_bin())
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .args([
            "-v",
            "--log-format",
            "json",
            "run",
            "configs/quickstart.yaml",
            "--quick",
            "--local-agents",
            "1",
            "--quiet",
            "--results",
            dir.to_str().expect("utf8"),
        ])
        .output()
        .expect("run coordinator");
    let r = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = std::path::Path::new(r.stdout.lines().last().expect("results dir")).join("report.json");
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).expect("report")).expect("json");
    assert_eq!(rep["phases"]["duration_s"], 5.0);
    assert_eq!(rep["phases"]["warmup_s"], 1.0);
    let logs: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(logs.iter().any(|l| l["level"] == "INFO"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}
