//! Helpers for the end-to-end tests: real `agent` processes on
//! 127.0.0.1:0 and the real `coordinator` binary. Agents log at `warn`;
//! `LG_TEST_AGENT_LOG` sets their RUST_LOG instead (e.g.
//! `LG_TEST_AGENT_LOG=warn,pulsar=debug` to see a driver's client).
#![allow(dead_code)]

pub mod cdp;
pub mod netns;

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
    /// Its stderr (logs at `warn`), when started with [`AgentProc::start_with`].
    pub log: Option<PathBuf>,
}

impl AgentProc {
    pub fn start() -> AgentProc {
        let mut child = Command::new(agent_bin())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", std::env::var("LG_TEST_AGENT_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent");
        let addr = read_address(&mut child);
        AgentProc { child, addr, log: None }
    }

    /// `agent --listen 127.0.0.1:0 ARGS...`, its log kept in a file.
    pub fn start_with(args: &[&str]) -> AgentProc {
        AgentProc::start_in(Command::new(agent_bin()), "127.0.0.1:0", args)
    }

    /// The agent as `cmd` runs it (e.g. `ip netns exec NS agent`), with
    /// `--listen listen ARGS...`, its log kept in a file.
    pub fn start_in(mut cmd: Command, listen: &str, args: &[&str]) -> AgentProc {
        let log = std::env::temp_dir().join(format!("lg-agent-log-{}-{}.txt", std::process::id(), rand_suffix()));
        let mut child = cmd
            .args(["--listen", listen])
            .args(args)
            .env("RUST_LOG", std::env::var("LG_TEST_AGENT_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("LOADGEN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn agent");
        let addr = read_address(&mut child);
        AgentProc { child, addr, log: Some(log) }
    }

    /// Sends the agent a signal (`KILL`, `STOP`, `CONT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }

    /// What the agent logged so far.
    pub fn log_text(&self) -> String {
        self.log.as_ref().map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    }
}

fn read_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("agent prints its address");
    line.trim().strip_prefix("agent listening on ").unwrap_or_else(|| panic!("address line, got {line:?}")).to_string()
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(l) = &self.log {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// A `coordinator` process running in the background (stdout and stderr
/// to files), killed on drop.
pub struct CoordinatorProc {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl CoordinatorProc {
    pub fn spawn(args: &[&str]) -> CoordinatorProc {
        let base = std::env::temp_dir().join(format!("lg-coord-{}-{}", std::process::id(), rand_suffix()));
        let (out, err) = (base.with_extension("out"), base.with_extension("err"));
        let child = Command::new(coordinator_bin())
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", std::env::var("LG_TEST_AGENT_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("LOADGEN_TOKEN")
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn coordinator");
        CoordinatorProc { child, out, err }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits (at most `limit`) for the process to end; its exit code and output.
    pub fn wait(mut self, limit: std::time::Duration) -> Ran {
        let t0 = std::time::Instant::now();
        let code = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st.code().unwrap_or(-1);
            }
            assert!(t0.elapsed() < limit, "coordinator still running after {limit:?}:\n{}", self.stderr());
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Ran {
            code,
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().expect("kill");
    assert!(st.success(), "kill -{sig} failed");
}

impl Drop for CoordinatorProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

/// A lock for the tests of one file (each tests/*.rs is its own binary):
/// those that hold it run one at a time. A test that failed holding it does
/// not fail the next.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a session with the agent as a coordinator would (Hello, clock
/// sync) and closes it: Ok when the agent takes a new run, the refusal
/// otherwise (e.g. "busy").
pub fn probe_session(addr: &str, token: Option<&str>) -> Result<(), String> {
    let token = token.map(|t| ::common::wire::Token::parse(t, "test").expect("token"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        coordinator::session::AgentSession::open(addr, "probe", "probe", token.as_ref(), None)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
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
        .env_remove("LOADGEN_TOKEN")
        .output()
        .expect("run coordinator");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `coordinator run SCENARIO --results DIR ARGS...`: the results in the
/// scenario's directory; `args` say where it runs (`--agents`, none for the
/// coordinator's in-process agents) and what else (`--set`, `--quiet`).
pub fn run_scenario(scenario: &Path, args: &[&str]) -> Ran {
    coordinator(&run_args(scenario, args))
}

/// [`run_scenario`] in the background.
pub fn spawn_scenario(scenario: &Path, args: &[&str]) -> CoordinatorProc {
    CoordinatorProc::spawn(&run_args(scenario, args))
}

fn run_args<'a>(scenario: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let dir = scenario.parent().expect("the scenario's directory");
    let mut all = vec!["run", utf8(scenario), "--results", utf8(dir)];
    all.extend(args);
    all
}

/// Writes `yaml` as `s.yaml` in a fresh temp dir (named after `tag`) and runs
/// it on `agents` against the broker at `url`: the run and, when it got
/// as far as a report (exit 0 or 1), the report (else `Null`).
pub fn run_on(url: &str, agents: &[AgentProc], yaml: &str, tag: &str) -> (Ran, serde_json::Value) {
    let scenario = write_scenario(tag, yaml);
    let r = run_scenario(&scenario, &["--agents", &agent_list(agents), "--set", &format!("broker.url={url}")]);
    let rep = if r.code == 0 || r.code == 1 { report_of(&r) } else { serde_json::Value::Null };
    (r, rep)
}

/// The agents' addresses joined with commas, as `--agents` takes them.
pub fn agent_list<'a>(agents: impl IntoIterator<Item = &'a AgentProc>) -> String {
    agents.into_iter().map(|a| a.addr.as_str()).collect::<Vec<_>>().join(",")
}

/// `text` as `s.yaml` in a fresh temp dir (named after `tag`); the tests put
/// the run's results in that directory (the path's parent).
pub fn write_scenario(tag: &str, text: &str) -> PathBuf {
    let path = temp_dir(tag).join("s.yaml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Removes the temp dir that [`write_scenario`] made, results and all.
pub fn remove_scenario_dir(scenario: &Path) {
    let _ = std::fs::remove_dir_all(scenario.parent().expect("the scenario's directory"));
}

/// `coordinator run configs/quickstart.yaml` cut to a 1 s warmup and 3 s
/// measured, the results under `results`, then `extra` arguments. Its e2e p99
/// SLO is 5 s: the path is under test, not the machine's latency under load.
pub fn run_short_quickstart(results: &Path, extra: &[&str]) -> Ran {
    let mut args = vec!["run", "configs/quickstart.yaml", "--results", utf8(results)];
    args.extend(["--set", "phases.warmup=1s", "--set", "phases.duration=3s", "--set", "slo.p99_e2e=5s"]);
    args.extend(extra);
    coordinator(&args)
}

/// A path as the `&str` the coordinator's arguments are made of.
pub fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
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

/// A count in a report: `v` as a u64, or a panic naming it.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The run's loss, checked against where the report puts it: the
/// interval rows' `lost` (by send time) add up to it, and the fault
/// windows hold at most all of it. Returns (lost, lost in windows).
pub fn check_loss_by_send_time(rep: &serde_json::Value) -> (u64, u64) {
    let lost = u(&rep["totals"]["lost"]);
    let by_interval: u64 = rep["intervals"].as_array().expect("rows").iter().map(|r| u(&r["lost"])).sum();
    assert_eq!(by_interval, lost, "intervals[].lost adds up to the loss");
    let in_windows: u64 = rep["faults"].as_array().map_or(0, |f| f.iter().map(|w| u(&w["lost"])).sum());
    assert!(in_windows <= lost, "{in_windows} in fault windows > {lost} lost");
    (lost, in_windows)
}

/// Every subscription's numbers add up: deliveries = distinct + duplicates
/// + redeliveries.
pub fn check_consistent(rep: &serde_json::Value) {
    for s in rep["subscriptions"].as_array().expect("subs") {
        assert_eq!(u(&s["deliveries"]), u(&s["received_unique"]) + u(&s["duplicated"]) + u(&s["redelivered"]), "{s}");
        assert_eq!(u(&s["expected"]), u(&s["received_unique"]) + u(&s["lost"]) - u(&s["unacked_received"]), "{s}");
    }
}

/// Group `name` of a report (by its name; panics naming it when absent).
pub fn group<'a>(rep: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rep["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}: {}", rep["groups"]))
}

/// Subscription `name` of a report (panics naming it when absent).
pub fn sub<'a>(rep: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rep["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .find(|s| s["subscription"] == name)
        .unwrap_or_else(|| panic!("no subscription {name}: {}", rep["subscriptions"]))
}

/// Writes `text` to `dir/name`; returns the path as the coordinator's
/// arguments take it.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    utf8(&p).to_string()
}

/// A one-second run on the memory broker: producers `p` at 100 msg/s on
/// topic `t`, consumers `c`.
pub const SHORT: &str = "name: short\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers: [{name: p, topic: t, rate: 100}]\nconsumers: [{name: c, topic: t}]\nphases: {duration: 1s}\n";

/// Reads the report.json of the run whose directory is the last stdout line.
pub fn report_of(r: &Ran) -> serde_json::Value {
    let dir = r.stdout.lines().last().expect("results dir on the last line");
    let text = std::fs::read_to_string(Path::new(dir).join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("json")
}

/// Debian's Chromium, for the tests that render pages.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's flags for a headless run with nothing in the background.
pub const HEADLESS: [&str; 6] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
];

/// Headless Chromium with its own profile directory and nothing running in
/// the background; the caller adds what to do (`--dump-dom URL`, …).
pub fn headless_chromium(profile: &Path) -> Command {
    let mut c = Command::new(CHROMIUM);
    c.args(HEADLESS).arg(format!("--user-data-dir={}", profile.display())).stdin(Stdio::null()).stderr(Stdio::null());
    c
}
