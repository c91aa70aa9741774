//! Helpers for the end-to-end tests: real `agent` processes on
//! 127.0.0.1:0 and the real `coordinator` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn coordinator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coordinator"))
}

/// The `agent` binary next to the coordinator's (`cargo test --workspace`
/// builds every binary of the workspace before running tests).
pub fn agent_bin() -> PathBuf {
    let p = coordinator_bin().with_file_name(format!("agent{}", std::env::consts::EXE_SUFFIX));
    assert!(p.exists(), "{} is missing: run `cargo build --workspace --bins` (scripts/test.sh does)", p.display());
    p
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// An agent process, killed on drop.
pub struct AgentProc {
    pub child: Child,
    pub addr: String,
}

impl AgentProc {
    pub fn start() -> AgentProc {
        let mut child = Command::new(agent_bin())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("agent prints its address");
        let addr = line.trim().strip_prefix("agent listening on ").expect("address line").to_string();
        AgentProc { child, addr }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn coordinator(args: &[&str]) -> Ran {
    let out: Output = Command::new(coordinator_bin())
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run coordinator");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lg-{tag}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0) % 1_000_000_007
}

/// Reads the report.json of the run whose directory is the last stdout line.
pub fn report_of(r: &Ran) -> serde_json::Value {
    let dir = r.stdout.lines().last().expect("results dir on the last line");
    let text = std::fs::read_to_string(Path::new(dir).join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("json")
}
