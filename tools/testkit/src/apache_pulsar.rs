//! Apache Pulsar standalone for one test, through
//! `scripts/pulsar-standalone.sh` (the same script users run): free
//! 127.0.0.1 ports, its own state directory, stopped and its data removed on
//! drop. Optionally with token authentication or TLS ports.
//!
//! When Apache Pulsar cannot be installed here (the Maven registry refused
//! an artifact), [`ApachePulsar::start`] says so with
//! [`Start::Unavailable`] and the reason, and the tests print "skipped: …"
//! (`scripts/test.sh` repeats the reason at the end): never a silent pass.
//! Any other failure to start is an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Exit code of the script when the artifacts cannot be had (as opposed
/// to 3: they are here but the broker did not start).
const NOT_INSTALLABLE: i32 = 4;

/// What a test asks of the broker.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Token authentication on; a superuser token minted into `token_file`.
    pub token: bool,
    /// TLS ports beside the plain ones: (certificate PEM, key PEM, CA PEM).
    pub tls: Option<(String, String, String)>,
}

pub struct ApachePulsar {
    state: PathBuf,
    /// `pulsar://127.0.0.1:PORT`
    pub url: String,
    /// `http://127.0.0.1:PORT` (admin REST)
    pub admin_url: String,
    /// `pulsar+ssl://127.0.0.1:PORT` when started with TLS.
    pub tls_url: Option<String>,
    /// The minted token's file when started with `token`.
    pub token_file: Option<PathBuf>,
}

/// Why there is no broker.
#[derive(Debug)]
pub enum Start {
    /// Apache Pulsar cannot be installed on this machine: skip, saying why.
    Unavailable(String),
    /// It is installed but did not start: a failure.
    Failed(String),
}

/// Where test brokers keep their state and data: tmpfs when it has room
/// (a broker's data is ~75 MiB, a few run at once), else the temp dir. The
/// bookie turns read-only (every new topic and subscription then waits
/// until the client gives up) when the disk under its data is 99 % used,
/// which a shared machine's disk, full of build output, can be.
fn state_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let free_kib = Command::new("df")
        .args(["-Pk", "/dev/shm"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().nth(1).and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok()));
    let probe = shm.join(format!(".lg-probe-{}", std::process::id()));
    let writable = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    if writable && free_kib.is_some_and(|k| k >= 2 << 20) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pulsar-standalone.sh")
}

impl ApachePulsar {
    pub fn start(opts: &Options) -> Result<ApachePulsar, Start> {
        if let Ok(why) = std::env::var("LG_PULSAR_UNAVAILABLE") {
            return Err(Start::Unavailable(why));
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let state =
            state_root().join(format!("lg-pulsar-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("start");
        if opts.token {
            cmd.arg("--token");
        }
        if let Some((cert, key, ca)) = &opts.tls {
            cmd.args(["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca]);
        }
        let out = cmd
            .env("PULSAR_STANDALONE_STATE", &state)
            .env("PULSAR_STOP_WITH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Start::Failed(format!("cannot run {}: {e}", script().display())))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {}
            Some(NOT_INSTALLABLE) => return Err(Start::Unavailable(last_line(&stderr))),
            _ => {
                let _ = std::fs::remove_dir_all(&state);
                return Err(Start::Failed(stderr));
            }
        }
        let env = std::fs::read_to_string(state.join("env")).map_err(|e| Start::Failed(format!("no env file: {e}")))?;
        let var =
            |k: &str| env.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(str::to_string);
        let me = ApachePulsar {
            url: var("PULSAR_URL").unwrap_or_default(),
            admin_url: var("PULSAR_ADMIN_URL").unwrap_or_default(),
            tls_url: var("PULSAR_TLS_URL"),
            token_file: var("PULSAR_TOKEN_FILE").map(PathBuf::from),
            state,
        };
        if me.url.is_empty() || me.admin_url.is_empty() {
            return Err(Start::Failed(format!("no URLs in {}", me.state.join("env").display())));
        }
        Ok(me)
    }

    fn script(&self, args: &[&str]) -> std::io::Result<()> {
        let st = Command::new("bash")
            .arg(script())
            .args(args)
            .env("PULSAR_STANDALONE_STATE", &self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("pulsar-standalone.sh {args:?}: {st}")))
        }
    }

    /// The last `lines` of the broker's log (warn and up), for a failing
    /// test's message: what the broker said when a client got no answer.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.state.join("pulsar.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("--- last {lines} lines of {} ---\n{tail}", self.state.join("pulsar.log").display())
    }

    /// Starts it again on the same ports with the same data; returns once
    /// the admin API answers.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.script(&["restart"])
    }
}

/// One broker for the plain tests of a test binary (each test its own
/// topics), started on first use; it stops when the test process ends
/// (`PULSAR_STOP_WITH_PID`). `Err`: the reason to skip, or a panic.
pub fn shared() -> Result<&'static ApachePulsar, String> {
    static B: std::sync::OnceLock<Result<ApachePulsar, String>> = std::sync::OnceLock::new();
    match B.get_or_init(|| match ApachePulsar::start(&Options::default()) {
        Ok(b) => Ok(b),
        Err(Start::Unavailable(why)) => Err(why),
        Err(Start::Failed(e)) => panic!("Apache Pulsar did not start: {e}"),
    }) {
        Ok(b) => Ok(b),
        Err(why) => Err(why.clone()),
    }
}

fn last_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

impl Drop for ApachePulsar {
    fn drop(&mut self) {
        let _ = self.script(&["stop"]);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Starts a broker for a test, or prints why the test is skipped and
/// returns from it (Apache Pulsar not installable here).
#[macro_export]
macro_rules! apache_pulsar_or_skip {
    ($opts:expr) => {
        match $crate::apache_pulsar::ApachePulsar::start(&$opts) {
            Ok(b) => b,
            Err($crate::apache_pulsar::Start::Unavailable(why)) => {
                eprintln!("skipped: Apache Pulsar is not available here: {why}");
                return;
            }
            Err($crate::apache_pulsar::Start::Failed(e)) => panic!("Apache Pulsar did not start: {e}"),
        }
    };
    () => {
        match $crate::apache_pulsar::shared() {
            Ok(b) => b,
            Err(why) => {
                eprintln!("skipped: Apache Pulsar is not available here: {why}");
                return;
            }
        }
    };
}
