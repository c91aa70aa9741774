//! deploy/k8s: every manifest is valid against the Kubernetes API schemas
//! (offline, kubernetes-validate from PyPI, installed into .venv by
//! scripts/test.sh), a broken one is caught, and the manifests agree with
//! the binaries (flags the CLIs accept, a scenario that validates, as many
//! expected agents as replicas).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use common::*;
use serde::Deserialize as _;
use serde_yaml::Value;

fn manifests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo_root().join("deploy/k8s")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("deploy/k8s") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 4, "{out:?}");
    out
}

fn validator() -> PathBuf {
    let p = repo_root().join(".venv/bin/kubernetes-validate");
    assert!(p.exists(), "{} missing: run scripts/test.sh (scripts/install-k8s-validate.sh installs it)", p.display());
    p
}

/// Runs kubernetes-validate --strict for Kubernetes `version`; Ok or its output.
fn validate(files: &[PathBuf], version: &str) -> Result<(), String> {
    let out = Command::new(validator())
        .args(["--strict", "--quiet", "-k", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && !text.contains("ERROR") {
        Ok(())
    } else {
        Err(text)
    }
}

#[test]
fn manifests_are_valid_kubernetes_objects() {
    let files = manifests();
    for v in ["1.27.0", "1.37.0"] {
        validate(&files, v).unwrap_or_else(|e| panic!("Kubernetes {v}:\n{e}"));
    }
}

/// The validator is not a rubber stamp: a wrong type and an unknown field
/// in the agents' StatefulSet are each reported.
#[test]
fn a_broken_manifest_is_refused() {
    let text = std::fs::read_to_string(repo_root().join("deploy/k8s/agents.yaml")).expect("agents.yaml");
    let dir = temp_dir("k8s-broken");
    for (from, to) in [
        ("containerPort: 7070", "containerPort: seventy"),
        ("publishNotReadyAddresses: true", "publishNotReadyAddress: true"),
        ("podManagementPolicy: Parallel", "podManagementPolicy: [Parallel]"),
    ] {
        assert!(text.contains(from), "fixture lacks {from}");
        let p = dir.join("broken.yaml");
        std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
        let e = validate(&[p], "1.37.0").expect_err(&format!("`{to}` must not validate"));
        assert!(e.contains("did not validate"), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("manifest");
    serde_yaml::Deserializer::from_str(&text).map(|d| Value::deserialize(d).expect("yaml")).collect()
}

fn find<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().expect("list").iter().map(|s| s.as_str().expect("string").to_string()).collect()
}

/// Starts the real agent with a manifest's `args` (loopback ports, a temp
/// token, test certificates for the TLS flags); its first stdout line.
fn start_agent(args: &[String], dir: &Path, pki: Option<&testkit::pki::Pki>) -> String {
    let mut args = args.to_vec();
    let token = dir.join("token");
    std::fs::write(&token, "k8s-args-test-token-0123456789").expect("token");
    let mut values = vec![
        ("--listen", "127.0.0.1:0".to_string()),
        ("--health-listen", "127.0.0.1:0".to_string()),
        ("--token-file", token.display().to_string()),
    ];
    if let Some(p) = pki {
        values.extend([
            ("--tls-cert", p.agent_cert.clone()),
            ("--tls-key", p.agent_key.clone()),
            ("--tls-client-ca", p.ca.clone()),
        ]);
    }
    for (flag, value) in values {
        let i = args.iter().position(|x| x == flag).expect(flag);
        args[i + 1] = value;
    }
    let i = args.iter().position(|x| x == "$(POD_NAME)").expect("--id $(POD_NAME)");
    args[i] = "loadgen-agent-0".into();
    let mut agent = Command::new(agent_bin())
        .args(&args)
        .env_remove("LOADGEN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("agent");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(agent.stdout.take().expect("stdout")), &mut line)
        .expect("read");
    let _ = agent.kill();
    let out = agent.wait_with_output().expect("wait");
    assert!(!line.is_empty(), "the agent did not start: {}", String::from_utf8_lossy(&out.stderr));
    line
}

/// The manifests with the `#mtls ` marks removed (docs/operations.md "mTLS"), written
/// into `dir`.
fn with_mtls(dir: &Path) -> Vec<PathBuf> {
    ["agents.yaml", "coordinator.yaml"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(repo_root().join("deploy/k8s").join(name)).expect("manifest");
            assert!(text.contains("#mtls "), "{name} has no #mtls lines");
            let p = dir.join(name);
            std::fs::write(&p, text.replace("#mtls ", "")).expect("write");
            p
        })
        .collect()
}

/// The optional mTLS lines, switched on, give valid manifests whose flags
/// the binaries take and whose TLS files are on the Secret's mount.
#[test]
fn the_mtls_variant_of_the_manifests_is_valid_and_starts() {
    let dir = temp_dir("k8s-mtls");
    let files = with_mtls(&dir);
    for v in ["1.27.0", "1.37.0"] {
        validate(&files, v).unwrap_or_else(|e| panic!("Kubernetes {v}, mTLS on:\n{e}"));
    }
    let all: Vec<Value> = files.iter().flat_map(|p| docs(p)).collect();
    let pods = [
        (&find(&all, "StatefulSet", "loadgen-agent")["spec"]["template"]["spec"], "loadgen-agent-tls"),
        (&find(&all, "Job", "loadgen-run")["spec"]["template"]["spec"], "loadgen-coordinator-tls"),
    ];
    for (pod, secret) in pods {
        let c = &pod["containers"][0];
        let args = strings(&c["args"]);
        let mount = c["volumeMounts"]
            .as_sequence()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == "tls")
            .expect("the tls mount");
        let volume =
            pod["volumes"].as_sequence().expect("volumes").iter().find(|v| v["name"] == "tls").expect("the tls volume");
        assert_eq!(volume["secret"]["secretName"], secret);
        let root = mount["mountPath"].as_str().expect("path");
        let tls_args: Vec<&String> =
            args.iter().zip(args.iter().skip(1)).filter(|(f, _)| f.starts_with("--tls-")).map(|(_, v)| v).collect();
        assert_eq!(tls_args.len(), 3, "{args:?}");
        assert!(tls_args.iter().all(|v| v.starts_with(&format!("{root}/"))), "{args:?} outside {root}");
    }
    let job = find(&all, "Job", "loadgen-run");
    let cargs = strings(&job["spec"]["template"]["spec"]["containers"][0]["args"]);
    let cli = coordinator::Cli::try_parse_from(std::iter::once("coordinator".to_string()).chain(cargs.iter().cloned()));
    assert!(cli.is_ok(), "the Job's args: {:?}", cli.err());
    let pki = testkit::pki::Pki::generate(&dir).expect("certificates");
    let sts = find(&all, "StatefulSet", "loadgen-agent");
    let line = start_agent(&strings(&sts["spec"]["template"]["spec"]["containers"][0]["args"]), &dir, Some(&pki));
    assert!(line.starts_with("agent listening on 127.0.0.1:"), "{line:?}");
    let _ = std::fs::remove_dir_all(dir);
}

fn arg_after(args: &[String], flag: &str) -> String {
    let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} not in {args:?}"));
    args[i + 1].clone()
}

#[test]
fn manifests_agree_with_the_binaries() {
    let all: Vec<Value> = manifests().iter().flat_map(|p| docs(p)).collect();
    let sts = find(&all, "StatefulSet", "loadgen-agent");
    let svc = find(&all, "Service", "loadgen-agents");
    let job = find(&all, "Job", "loadgen-run");
    let cm = find(&all, "ConfigMap", "loadgen-scenario");
    let replicas = sts["spec"]["replicas"].as_u64().expect("replicas");

    // The Service is headless, publishes not-ready pods, selects the agents.
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(sts["spec"]["serviceName"], "loadgen-agents");
    assert_eq!(svc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"]);

    // The coordinator's flags parse, find that Service, and wait for every replica.
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let cargs = strings(&c["args"]);
    let cli = coordinator::Cli::try_parse_from(std::iter::once("coordinator".to_string()).chain(cargs.iter().cloned()));
    assert!(cli.is_ok(), "the Job's args: {:?}", cli.err());
    let port = svc["spec"]["ports"][0]["port"].as_u64().expect("port");
    assert_eq!(arg_after(&cargs, "--agents-dns"), format!("loadgen-agents.loadgen.svc.cluster.local:{port}"));
    assert_eq!(arg_after(&cargs, "--expect-agents"), replicas.to_string());

    // Deleted mid-run, the coordinator writes its report before SIGKILL: the
    // grace period holds the interrupted drain, the final reports' wait
    // (3 s) and the report's writing with room to spare.
    let grace = job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().expect("the Job's grace");
    let drain = ::common::units::parse_duration(&arg_after(&cargs, "--interrupt-drain")).expect("--interrupt-drain");
    assert!(grace >= drain.as_secs() + 3 + 10, "grace {grace}s for --interrupt-drain {drain:?}");
    let agent_grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().expect("agents' grace");
    assert!(agent_grace >= 30, "an agent drains and sends its final report within {agent_grace}s");

    // The scenario validates and plans onto that many agent processes.
    let yaml = cm["data"]["scenario.yaml"].as_str().expect("scenario.yaml");
    let sc = ::common::scenario::load_str(yaml, "configmap/loadgen-scenario", &[]).expect("the ConfigMap's scenario");
    let slots: Vec<::common::plan::AgentSlot> =
        (0..replicas).map(|i| ::common::plan::AgentSlot { name: format!("a{i}"), instance: format!("p{i}") }).collect();
    let plan = ::common::plan::plan(&sc, "k8s", &slots).expect("plan");
    assert!(plan.shards.iter().all(|s| !s.producers.is_empty()), "every agent gets work");

    // The agent's flags: the real binary starts with them (loopback, a temp token).
    let a = &sts["spec"]["template"]["spec"]["containers"][0];
    let aargs = strings(&a["args"]);
    assert_eq!(arg_after(&aargs, "--listen"), format!("0.0.0.0:{port}"));
    // The probes ask the plaintext health port (they work with mTLS on too).
    let health = a["readinessProbe"]["grpc"]["port"].as_u64().expect("probe port");
    assert_eq!(a["livenessProbe"]["grpc"]["port"].as_u64(), Some(health));
    assert_eq!(arg_after(&aargs, "--health-listen"), format!("0.0.0.0:{health}"));
    assert!(a["ports"].as_sequence().expect("ports").iter().any(|p| p["containerPort"].as_u64() == Some(health)));
    let dir = temp_dir("k8s-args");
    let line = start_agent(&aargs, &dir, None);
    assert!(line.starts_with("agent listening on 127.0.0.1:"), "{line:?}");

    // Agents on distinct nodes; requests and limits everywhere.
    let anti = &sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    for ctr in [a, c] {
        for k in ["requests", "limits"] {
            assert!(ctr["resources"][k]["cpu"].is_string() && ctr["resources"][k]["memory"].is_string(), "{ctr:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
