//! Headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on its fd 3, answers on its fd 4,
//! each a JSON object ending in a NUL byte). A shell puts the child's
//! stdin and stdout on those descriptors, so no crate beyond serde_json is
//! needed. The browser is killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub struct Browser {
    child: Child,
    tx: ChildStdin,
    rx: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
}

impl Browser {
    /// Chromium at `chromium` with its profile in `profile`, one page open
    /// at `url`. Debian's /usr/bin/chromium is a script that does not exec
    /// the browser: its binary is started directly, so that drop kills it.
    pub fn open(chromium: &str, profile: &Path, url: &str) -> Browser {
        let real = "/usr/lib/chromium/chromium";
        let chromium = if Path::new(real).exists() { real } else { chromium };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium)
            .args(super::HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let tx = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (send, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).map(|n| n > 0).unwrap_or(false) {
                buf.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if send.send(v).is_err() {
                        break;
                    }
                }
                buf.clear();
            }
        });
        let mut b = Browser { child, tx, rx, next_id: 1, session: String::new() };
        let target = b.call("Target.createTarget", json!({"url": url}), false);
        let target_id = target["targetId"].as_str().expect("a target").to_string();
        let attached = b.call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}), false);
        b.session = attached["sessionId"].as_str().expect("a session").to_string();
        b
    }

    /// One command (on the page's session, or the browser's); its result.
    pub fn call(&mut self, method: &str, params: Value, on_page: bool) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if on_page {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("encode");
        bytes.push(0);
        self.tx.write_all(&bytes).expect("write to chromium");
        self.tx.flush().expect("flush");
        loop {
            let v = self.rx.recv_timeout(Duration::from_secs(30)).expect("chromium answers within 30 s");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (promises awaited); its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            true,
        );
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
