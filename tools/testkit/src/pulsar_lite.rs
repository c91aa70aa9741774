//! A pulsar-lite broker for one test: free loopback port, temp db, metrics
//! off, log level error, optional `default_partitions`; a relay in front
//! (its own thread and runtime, so sync tests can use it too). Dropping it
//! stops both and removes the temp directory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::ProxyThread;

pub struct PulsarLite {
    child: Child,
    bin: PathBuf,
    dir: PathBuf,
    relay: Option<ProxyThread>,
    /// The broker itself (raw frames; for clients that accept them).
    pub broker_addr: SocketAddr,
    /// The relay: what the `pulsar` crate and our agents connect to.
    pub url: String,
    pub partitions: u32,
}

/// The pulsar-lite binary: `$PULSAR_LITE_BIN`, or the one scripts/test.sh
/// installs into `<repo>/.venv`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PULSAR_LITE_BIN") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = root.join(".venv/lib");
    for e in std::fs::read_dir(lib).ok()?.flatten() {
        let p = e.path().join("site-packages/pulsar_lite/bin/pulsar-lite");
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// The Python interpreter of `<repo>/.venv` (has pulsar-client for cross-checks).
pub fn venv_python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    p.exists().then_some(p)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PulsarLite {
    /// Starts a broker (`partitions` > 0: every new topic gets that many).
    pub fn start(partitions: u32) -> std::io::Result<PulsarLite> {
        let bin = binary().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "pulsar-lite not installed: run scripts/test.sh (it installs pulsar-lite==0.2.0 into .venv) or set PULSAR_LITE_BIN")
        })?;
        let dir = std::env::temp_dir().join(format!("pulsar-lite-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir)?;
        let mut cfg = String::new();
        if partitions > 0 {
            cfg.push_str(&format!("default_partitions = {partitions}\n"));
        }
        cfg.push_str("[metrics]\nenabled = false\n");
        std::fs::write(dir.join("pulsar-lite.toml"), cfg)?;
        let port = free_port()?;
        let broker_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn_broker(&bin, &dir, broker_addr)?;
        let mut me = PulsarLite { child, bin, dir, relay: None, broker_addr, url: String::new(), partitions };
        me.wait_listening()?;
        let relay = ProxyThread::start("relay", move || {
            crate::relay::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), broker_addr)
        })?;
        me.url = format!("pulsar://{}", relay.addr);
        me.relay = Some(relay);
        Ok(me)
    }

    /// kill -9 of the broker process (the relay stays up, so clients see
    /// their connections drop and new ones refused upstream).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same address with the same config
    /// and db, and waits until it listens.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.child = spawn_broker(&self.bin, &self.dir, self.broker_addr)?;
        self.wait_listening()
    }

    fn wait_listening(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect_timeout(&self.broker_addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline || self.child.try_wait()?.is_some() {
                return Err(std::io::Error::other("pulsar-lite did not start listening"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

fn spawn_broker(bin: &Path, dir: &Path, addr: SocketAddr) -> std::io::Result<Child> {
    Command::new(bin)
        .arg("--config")
        .arg(dir.join("pulsar-lite.toml"))
        .args(["--addr", &addr.to_string(), "--log-level", "error", "--db-path"])
        .arg(dir.join("db"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl Drop for PulsarLite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.relay.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
