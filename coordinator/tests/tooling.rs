//! The tooling around scenarios: `schema` (every example conforms),
//! `init` templates (every one validates), `completions`, and `--help`.

mod common;

use common::*;
use serde_json::Value;

fn schema() -> Value {
    let r = coordinator(&["schema"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).expect("schema is JSON")
}

fn yaml_to_json(text: &str) -> Value {
    let y: serde_yaml::Value = serde_yaml::from_str(text).expect("yaml");
    serde_json::to_value(y).expect("json")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[test]
fn every_config_conforms_to_the_schema() {
    let schema = schema();
    assert_eq!(schema["title"], "loadgen scenario");
    assert_eq!(schema["additionalProperties"], false, "unknown keys are refused");
    // Doc comments of the raw model became descriptions.
    let name = &schema["properties"]["name"]["description"];
    assert!(name.as_str().is_some_and(|d| d.contains("run id")), "{name}");
    let v = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut n = 0;
    for e in std::fs::read_dir(repo_root().join("configs")).expect("configs/") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        let doc = yaml_to_json(&std::fs::read_to_string(&p).expect("read"));
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{}: {errs:#?}", p.display());
    }
    assert!(n >= 8, "expected the example configs, found {n}");
}

#[test]
fn the_schema_refuses_what_validation_refuses() {
    let v = jsonschema::validator_for(&schema()).expect("schema");
    let base = "name: x\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers:\n  - name: p\n    topic: t\n    rate: 10\n    message_size: {uniform: {min: 100, max: 2KiB}}\n    keys: {zipf: {keys: 10, exponent: 1.1}}\nconsumers:\n  - {name: c, topic: t, type: key_shared}\nphases: {duration: 5s}\n";
    assert!(errors(&v, &yaml_to_json(base)).is_empty(), "{:?}", errors(&v, &yaml_to_json(base)));
    // Latency limits on any percentile, and the reported list.
    let pct = format!("{base}slo: {{p95_e2e: 10ms, p9999_publish: 1s}}\nreport: {{percentiles: [50, 99.99]}}\n");
    assert!(errors(&v, &yaml_to_json(&pct)).is_empty(), "{:?}", errors(&v, &yaml_to_json(&pct)));
    let thirteen: Vec<String> = (1..=13).map(|i| i.to_string()).collect();
    for (what, bad) in [
        ("slo key", format!("{base}slo: {{p95_e2: 10ms}}\n")),
        ("slo limit without unit", format!("{base}slo: {{p95_e2e: 10}}\n")),
        ("too many percentiles", format!("{base}report: {{percentiles: [{}]}}\n", thirteen.join(", "))),
    ] {
        assert!(!errors(&v, &yaml_to_json(&bad)).is_empty(), "{what}: the schema accepted\n{bad}");
    }
    for (what, bad) in [
        ("unknown key", base.replace("    rate: 10", "    rate: 10\n    colour: red")),
        ("duration without unit", base.replace("duration: 5s", "duration: 5")),
        ("broker kind", base.replace("kind: memory", "kind: kafka")),
        ("subscription type", base.replace("key_shared", "round_robin")),
        ("size unit", base.replace("2KiB", "2 furlongs")),
        ("key pattern", base.replace("zipf: {keys: 10, exponent: 1.1}", "hashed: 10")),
        ("missing phases", base.replace("phases: {duration: 5s}\n", "")),
        ("rate type", base.replace("rate: 10", "rate: fast")),
    ] {
        assert!(!errors(&v, &yaml_to_json(&bad)).is_empty(), "{what}: the schema accepted\n{bad}");
    }
}

#[test]
fn every_init_template_validates() {
    let dir = temp_dir("templates");
    let names: Vec<&str> = coordinator::TEMPLATES.iter().map(|(n, _)| *n).collect();
    for t in ["pulsar", "danube", "ceiling"] {
        assert!(names.contains(&t), "template {t} in {names:?}");
    }
    for t in names {
        let out = dir.join(format!("{t}.yaml"));
        let r = coordinator(&["init", "--template", t, "--output", out.to_str().expect("utf8")]);
        assert_eq!(r.code, 0, "{t}: {}", r.stderr);
        let v = coordinator(&["validate", out.to_str().expect("utf8")]);
        assert_eq!(v.code, 0, "{t}: {}", v.stderr);
    }
    let danube = coordinator(&["init", "--template", "danube", "--output", "-"]);
    assert!(
        danube.stdout.contains("kind: danube") && danube.stdout.contains("reliable_dispatch"),
        "the Danube template shows its options: {}",
        danube.stdout
    );
    let ceiling = coordinator(&["init", "--template", "ceiling", "--output", "-"]);
    assert!(ceiling.stdout.contains("mode: ceiling"), "mentioned as upcoming: {}", ceiling.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in
        [("bash", "_coordinator()"), ("zsh", "#compdef coordinator"), ("fish", "complete -c coordinator")]
    {
        let r = coordinator(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}: no `{marker}` in\n{}", r.stdout);
        assert!(r.stdout.contains("validate") && r.stdout.contains("local-agents"), "{shell}");
    }
    assert_eq!(coordinator(&["completions", "tcsh"]).code, 2);
}

#[test]
fn help_mentions_rust_log_and_the_new_flags() {
    let r = coordinator(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("RUST_LOG"), "{}", r.stdout);
    let run = coordinator(&["run", "--help"]);
    for flag in ["--metrics", "--no-color", "--quiet"] {
        assert!(run.stdout.contains(flag), "run --help lacks {flag}: {}", run.stdout);
    }
    let agent = std::process::Command::new(agent_bin()).arg("--help").output().expect("agent --help");
    let text = String::from_utf8_lossy(&agent.stdout);
    assert!(text.contains("RUST_LOG") && text.contains("--metrics"), "{text}");
}
