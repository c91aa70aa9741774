//! The browser side of a run: the live dashboard (`run --ui ADDR`) and the
//! assets report.html shares with it.
//!
//! The run loop feeds a [`Dashboard`] the same merged interval rows it
//! writes to the console and report.json (one source of truth); the
//! dashboard keeps the run model so far for pages that open late, pushes
//! each update to open pages (server-sent events), and passes run-control
//! requests from the page (or `coordinator ctl`) back to the run loop,
//! which answers each one.
//!
//! May import: common (report model), and nothing of the run loop: the run
//! loop depends on this module, not the other way round.

pub mod assets;
pub mod ctl;
pub mod server;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

/// What a page may ask of a running run.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// A new total producer rate (msg/s); groups keep their proportions.
    Rate(f64),
    Pause,
    Resume,
    /// End the run early, with a normal report.
    Stop,
}

/// A control request and where its answer goes: Ok(what was done) or
/// Err(why it was refused; nothing was changed).
#[derive(Debug)]
pub struct ControlRequest {
    pub control: Control,
    /// The producer group it is for (its name); None: every group (a rate
    /// is then the total, split in the scenario's proportions).
    pub group: Option<String>,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub enum Push {
    /// New interval rows and the fields that changed (JSON).
    Update(Arc<str>),
    /// The run is over (JSON: verdict, results directory).
    End(Arc<str>),
    /// The model was replaced (the next step of a ceiling search): pages
    /// read /state again.
    Reset,
}

/// Fields of an update appended to the model; the others replace it.
const APPENDED: [&str; 3] = ["intervals", "notes", "events"];

/// The live state of one run, shared by the run loop and the server.
#[derive(Debug)]
pub struct Dashboard {
    model: Mutex<Value>,
    ended: Mutex<Option<Arc<str>>>,
    pushes: broadcast::Sender<Push>,
    controls: mpsc::Sender<ControlRequest>,
}

impl Dashboard {
    /// A dashboard starting from `model` (run id, scenario, groups,
    /// planned phases, agents); the receiver gets the pages' control
    /// requests.
    pub fn new(model: Value) -> (Arc<Dashboard>, mpsc::Receiver<ControlRequest>) {
        let (controls, rx) = mpsc::channel(16);
        let (pushes, _) = broadcast::channel(256);
        let d = Dashboard { model: Mutex::new(model), ended: Mutex::new(None), pushes, controls };
        (Arc::new(d), rx)
    }

    /// Folds an update into the model and pushes it to every open page.
    pub fn update(&self, update: Value) {
        if let (Ok(mut model), Value::Object(fields)) = (self.model.lock(), &update) {
            merge(&mut model, fields);
        }
        let _ = self.pushes.send(Push::Update(update.to_string().into()));
    }

    /// Replaces the model (a new run step starts) and tells open pages.
    pub fn reset(&self, model: Value) {
        if let Ok(mut m) = self.model.lock() {
            *m = model;
        }
        if let Ok(mut e) = self.ended.lock() {
            *e = None;
        }
        let _ = self.pushes.send(Push::Reset);
    }

    /// The run is over: pages are told, and late pages see the final model.
    pub fn end(&self, outcome: Value) {
        let text: Arc<str> = outcome.to_string().into();
        if let Ok(mut e) = self.ended.lock() {
            *e = Some(text.clone());
        }
        if let (Ok(mut model), Value::Object(fields)) = (self.model.lock(), &outcome) {
            merge(&mut model, fields);
        }
        let _ = self.pushes.send(Push::End(text));
    }

    /// The model so far (what /state returns).
    pub fn snapshot(&self) -> Value {
        self.model.lock().map(|m| m.clone()).unwrap_or(Value::Null)
    }

    pub fn ended(&self) -> Option<Arc<str>> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.pushes.subscribe()
    }

    /// Passes a request to the run loop and waits for its answer.
    pub async fn control(&self, control: Control) -> Result<String, String> {
        self.control_for(control, None).await
    }

    /// [`Dashboard::control`] for one producer group (by name), or every
    /// group with None.
    pub async fn control_for(&self, control: Control, group: Option<String>) -> Result<String, String> {
        if self.ended().is_some() {
            return Err("the run is over".into());
        }
        let (reply, answer) = oneshot::channel();
        self.controls
            .send(ControlRequest { control, group, reply })
            .await
            .map_err(|_| "the run is not taking requests (it has ended)".to_string())?;
        match tokio::time::timeout(std::time::Duration::from_secs(10), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the run ended before answering".into()),
            Err(_) => Err("the run did not answer within 10 s".into()),
        }
    }
}

/// `run --ui ADDR`: a dashboard served at `addr` until `shutdown`, and
/// the receiver of its control requests (for the run loop). Refused off
/// loopback without a token.
pub async fn start(
    addr: std::net::SocketAddr,
    access: server::Access,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(Arc<Dashboard>, mpsc::Receiver<ControlRequest>, std::net::SocketAddr), String> {
    server::check_bind(addr, access.token.as_ref())?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("--ui {addr}: cannot listen: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("--ui {addr}: {e}"))?;
    let (dashboard, requests) = Dashboard::new(serde_json::json!({"phase": "connecting", "intervals": []}));
    let d = dashboard.clone();
    tokio::spawn(async move {
        if let Err(e) = server::serve(listener, d, access, shutdown).await {
            tracing::warn!(error = %e, "dashboard server failed");
        }
    });
    Ok((dashboard, requests, bound))
}

fn merge(model: &mut Value, fields: &Map<String, Value>) {
    let Value::Object(m) = model else { return };
    for (k, v) in fields {
        match (APPENDED.contains(&k.as_str()), m.get_mut(k), v) {
            (true, Some(Value::Array(have)), Value::Array(more)) => have.extend(more.iter().cloned()),
            _ => {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn updates_append_rows_and_replace_the_rest() {
        let (d, _rx) = Dashboard::new(json!({"run_id": "r", "intervals": [{"t_s": 1.0}], "phase": "warmup"}));
        let mut pushes = d.subscribe();
        d.update(json!({"intervals": [{"t_s": 2.0}], "phase": "measure", "notes": ["n1"]}));
        let m = d.snapshot();
        assert_eq!(m["intervals"].as_array().map(Vec::len), Some(2));
        assert_eq!(m["phase"], "measure");
        assert_eq!(m["notes"], json!(["n1"]));
        assert!(matches!(pushes.try_recv(), Ok(Push::Update(_))));
        d.end(json!({"verdict": "pass"}));
        assert_eq!(d.snapshot()["verdict"], "pass");
        assert!(d.ended().is_some());
    }

    #[tokio::test]
    async fn a_request_gets_the_run_loops_answer_or_a_refusal_when_nobody_listens() {
        let (d, mut rx) = Dashboard::new(json!({}));
        let run_loop = tokio::spawn(async move {
            let r = rx.recv().await.expect("a request");
            assert_eq!(r.control, Control::Rate(500.0));
            let _ = r.reply.send(Ok("total rate 500 msg/s".into()));
            drop(rx);
        });
        assert_eq!(d.control(Control::Rate(500.0)).await, Ok("total rate 500 msg/s".into()));
        run_loop.await.expect("run loop");
        let refused = d.control(Control::Pause).await.expect_err("nobody takes requests");
        assert!(refused.contains("ended"), "{refused}");
    }
}
