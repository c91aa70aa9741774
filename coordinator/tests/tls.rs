//! Mutual TLS between the coordinator and agents, with real processes and
//! certificates made here (testkit::pki, rcgen): a CA, an agent
//! certificate for 127.0.0.1/localhost, a client certificate, and an
//! unrelated second CA with a client certificate of its own.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const TOKEN: &str = "tls-test-token-0123456789abcdef";

/// The certificates, a token and a scenario, in a temp directory.
struct Setup {
    dir: PathBuf,
    pki: testkit::pki::Pki,
    token: String,
    scenario: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup(tag: &str) -> Setup {
    let dir = temp_dir(tag);
    Setup {
        pki: testkit::pki::Pki::generate(&dir).expect("certificates"),
        token: write_file(&dir, "token", TOKEN),
        scenario: write_file(&dir, "s.yaml", SHORT),
        dir,
    }
}

impl Setup {
    /// An agent serving mTLS (client CA = the test CA), with the token on top.
    fn mtls_agent(&self) -> AgentProc {
        AgentProc::start_with(&[
            "--tls-cert",
            &self.pki.agent_cert,
            "--tls-key",
            &self.pki.agent_key,
            "--tls-client-ca",
            &self.pki.ca,
            "--token-file",
            &self.token,
        ])
    }

    /// `coordinator run` of the short scenario on `agent` with `extra` flags.
    fn run(&self, agent: &AgentProc, extra: &[&str]) -> Ran {
        let res = self.dir.to_str().expect("utf8");
        let mut args = vec!["run", &self.scenario, "--agents", &agent.addr, "--results", res, "--quiet"];
        args.extend_from_slice(&["--token-file", &self.token]);
        args.extend_from_slice(extra);
        coordinator(&args)
    }

    fn client(&self) -> [&str; 6] {
        ["--tls-ca", &self.pki.ca, "--tls-cert", &self.pki.client_cert, "--tls-key", &self.pki.client_key]
    }
}

/// Waits (a little) for `needle` in the agent's log: the refusal is
/// logged by the agent's handshake task, maybe after the coordinator exits.
fn log_with(agent: &AgentProc, needle: &str) -> String {
    for _ in 0..40 {
        let log = agent.log_text();
        if log.contains(needle) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("`{needle}` not in the agent's log:\n{}", agent.log_text());
}

#[test]
fn mtls_with_the_right_ca_and_client_certificate_runs() {
    let t = setup("mtls-ok");
    let agent = t.mtls_agent();
    let r = t.run(&agent, &t.client());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "pass");
    assert!(rep["totals"]["received"].as_u64().unwrap_or(0) > 50, "{}", rep["totals"]);
    // The agent addressed by IP, its certificate checked for another of its names.
    let mut by_name = t.client().to_vec();
    by_name.extend_from_slice(&["--tls-domain", "localhost"]);
    let r = t.run(&agent, &by_name);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!agent.log_text().contains("refused"), "{}", agent.log_text());

    // TLS without client certificates (server authentication only; the token
    // authenticates the coordinator): --tls-ca alone.
    let p = &t.pki;
    let server_only =
        AgentProc::start_with(&["--tls-cert", &p.agent_cert, "--tls-key", &p.agent_key, "--token-file", &t.token]);
    let r = t.run(&server_only, &["--tls-ca", &p.ca]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// One line naming the agent, no results, exit 3.
fn assert_refused(r: &Ran, agent: &AgentProc, says: &str) {
    assert_eq!(r.code, 3, "{}", r.stderr);
    let line = format!("error: agent {}: ", agent.addr);
    assert!(
        r.stderr.starts_with(&line) && r.stderr.trim().lines().count() == 1,
        "one line naming the agent: {}",
        r.stderr
    );
    assert!(r.stderr.contains(says), "`{says}` in: {}", r.stderr);
    assert!(r.stdout.trim().is_empty(), "no run, no results: {}", r.stdout);
}

#[test]
fn no_client_certificate_is_refused_and_the_agent_stays_ready() {
    let t = setup("mtls-nocert");
    let agent = t.mtls_agent();
    let r = t.run(&agent, &["--tls-ca", &t.pki.ca]);
    assert_refused(
        &r,
        &agent,
        "the agent requires a client certificate (it runs with --tls-client-ca): pass --tls-cert and --tls-key",
    );
    let log = log_with(&agent, "no client certificate");
    let refusal = log.lines().find(|l| l.contains("no client certificate")).expect("line");
    assert!(refusal.contains("refused a connection: TLS handshake failed"), "{log}");
    assert!(refusal.contains("peer") && refusal.contains("127.0.0.1:"), "names the peer: {log}");

    // A plaintext coordinator: refused too, and logged as such.
    let r = t.run(&agent, &[]);
    assert_refused(&r, &agent, "if it was started with --tls-cert, pass --tls-ca");
    log_with(&agent, "not a TLS client (plaintext?)");

    // The agent takes the next (proper) run.
    let r = t.run(&agent, &t.client());
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let t = setup("mtls-otherclient");
    let agent = t.mtls_agent();
    let p = &t.pki;
    let r = t.run(&agent, &["--tls-ca", &p.ca, "--tls-cert", &p.other_client_cert, "--tls-key", &p.other_client_key]);
    assert_refused(&r, &agent, "the agent refused this coordinator's client certificate (alert UnknownCA)");
    log_with(&agent, "client certificate not trusted");
}

#[test]
fn a_coordinator_trusting_another_ca_refuses_the_agent() {
    let t = setup("mtls-otherca");
    let agent = t.mtls_agent();
    let p = &t.pki;
    let r = t.run(&agent, &["--tls-ca", &p.other_ca, "--tls-cert", &p.client_cert, "--tls-key", &p.client_key]);
    assert_refused(&r, &agent, "TLS handshake failed: invalid peer certificate: UnknownIssuer (the agent's certificate is not signed by the --tls-ca CA");
    log_with(&agent, "the client gave up on the handshake");
    // A name the certificate does not carry: refused the same way.
    let mut wrong_name = t.client().to_vec();
    wrong_name.extend_from_slice(&["--tls-domain", "agent.example"]);
    let r = t.run(&agent, &wrong_name);
    assert_refused(&r, &agent, "certificate not valid for name \"agent.example\"");
    assert!(r.stderr.contains("--tls-domain sets the name"), "{}", r.stderr);
}

fn agent_start(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(agent_bin())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("agent");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Files that cannot be used stop the agent and the coordinator at start
/// (exit 2), naming the flag and the file.
#[test]
fn unusable_certificate_files_are_startup_errors() {
    let t = setup("tls-files");
    let p = &t.pki;
    let junk = write_file(&t.dir, "junk.pem", "not a certificate\n");
    let missing = t.dir.join("missing.crt").display().to_string();

    let (code, err) = agent_start(&["--tls-cert", &missing, "--tls-key", &p.agent_key], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--tls-cert {missing}: cannot read it")), "{err}");
    let (code, err) = agent_start(&["--tls-cert", &p.agent_cert, "--tls-key", &p.client_key], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("do not make a certificate and its key"), "{err}");
    let (code, err) =
        agent_start(&["--tls-cert", &p.agent_cert, "--tls-key", &p.agent_key, "--tls-client-ca", &junk], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--tls-client-ca {junk}: no PEM certificate in it")), "{err}");
    let (code, err) = agent_start(&["--tls-cert", &p.agent_cert], &[]);
    assert_eq!(code, 2, "--tls-cert needs --tls-key: {err}");
    // The same through the environment.
    let (code, err) = agent_start(&[], &[("LOADGEN_TLS_CERT", &junk), ("LOADGEN_TLS_KEY", &p.agent_key)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--tls-cert {junk}: no PEM certificate")), "{err}");

    let run = |extra: &[&str]| {
        let mut args = vec!["run", &t.scenario, "--agents", "127.0.0.1:1", "--quiet"];
        args.extend_from_slice(extra);
        coordinator(&args)
    };
    let r = run(&["--tls-ca", &junk]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("--tls-ca {junk}: no PEM certificate in it")), "{}", r.stderr);
    let r = run(&["--tls-ca", &p.ca, "--tls-cert", &p.client_cert, "--tls-key", &p.agent_key]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("--tls-cert {} and --tls-key {}", p.client_cert, p.agent_key)), "{}", r.stderr);
    let r = run(&["--tls-ca", &p.ca, "--tls-cert", &p.client_cert]);
    assert_eq!(r.code, 2, "--tls-cert needs --tls-key: {}", r.stderr);
    let r = run(&["--tls-cert", &p.client_cert, "--tls-key", &p.client_key]);
    assert_eq!(r.code, 2, "a client certificate needs --tls-ca: {}", r.stderr);
}
