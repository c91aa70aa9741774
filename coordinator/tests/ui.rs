//! The live dashboard's server (`coordinator::ui`), fed by a stand-in run
//! loop: the model, server-sent updates, control requests answered or
//! refused, the token; and the page drawn by headless Chromium from a live
//! server (skipped where Chromium is not installed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{headless_chromium, CHROMIUM};
use coordinator::ui::server::{serve, Access};
use coordinator::ui::{Control, Dashboard};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn rows(t: f64) -> Value {
    json!([
        {"index": 0, "t_s": t, "phase": "measure", "group": "orders", "role": "producer", "sent": 1000, "acked": 1000,
         "send_errors": 0, "received": 0, "rate_msgs_per_s": 1000.0, "p50_us": 900.0, "p99_us": 2500.0, "p999_us": 4000.0,
         "max_lag_ms": 0.1, "agents_reporting": 2},
        {"index": 0, "t_s": t, "phase": "measure", "group": "audit", "role": "consumer", "sent": 0, "acked": 0,
         "send_errors": 0, "received": 1000, "rate_msgs_per_s": 1000.0, "p50_us": 1400.0, "p99_us": 3500.0, "p999_us": 6000.0,
         "max_lag_ms": 0.0, "agents_reporting": 2}
    ])
}

fn model() -> Value {
    json!({
        "run_id": "ui-test", "scenario": "quickstart", "phase": "warmup", "total_rate": 1000.0,
        "groups": [{"name": "orders", "role": "producer"}, {"name": "audit", "role": "consumer"}],
        "phases": [{"name": "warmup", "from_s": 0.0, "to_s": 1.0}],
        "intervals": rows(1.0),
        "agents": [{"id": "a0", "address": "local", "status": "ok", "clock_offset_us": 0.0, "clock_error_us": 10.0}],
        "subscriptions": [], "notes": [], "events": []
    })
}

/// A server on a free loopback port with a stand-in run loop that answers
/// rate and stop requests and refuses pause.
async fn start(access: Access) -> (String, Arc<Dashboard>, CancellationToken) {
    let (dashboard, mut requests) = Dashboard::new(model());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, dashboard.clone(), access, stop.clone()));
    let d = dashboard.clone();
    tokio::spawn(async move {
        while let Some(r) = requests.recv().await {
            let answer = match r.control {
                Control::Rate(n) => {
                    d.update(
                        json!({"total_rate": n, "events": [{"t_s": 2.0, "label": format!("total rate {n} msg/s")}]}),
                    );
                    Ok(format!("total rate {n} msg/s"))
                }
                Control::Stop => Ok("stopping".to_string()),
                Control::Pause | Control::Resume => Err("no producers to pause".to_string()),
            };
            let _ = r.reply.send(answer);
        }
    });
    (base, dashboard, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_events_and_control_over_http() {
    let (base, dashboard, stop) = start(Access { token: None, max_rate: Some(50_000.0) }).await;
    let http = reqwest::Client::new();
    let state: Value = http.get(format!("{base}/state")).send().await.expect("state").json().await.expect("json");
    assert_eq!(state["run_id"], "ui-test");
    assert_eq!(state["intervals"].as_array().map(Vec::len), Some(2));

    // An open event stream gets the next merged interval.
    let mut events = http.get(format!("{base}/events")).send().await.expect("events");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    tokio::time::sleep(Duration::from_millis(100)).await;
    dashboard.update(json!({"intervals": rows(2.0), "phase": "measure"}));
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !got.contains("\"phase\":\"measure\"") {
        assert!(Instant::now() < deadline, "no update within 10 s: {got}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk()).await.expect("chunk in time");
        got.push_str(&String::from_utf8_lossy(&chunk.expect("stream").expect("open")));
    }
    assert!(got.contains("event: update"), "{got}");
    let state: Value = http.get(format!("{base}/state")).send().await.expect("state").json().await.expect("json");
    assert_eq!(state["intervals"].as_array().map(Vec::len), Some(4), "late pages see every row");

    let post = |body: &'static str| http.post(format!("{base}/control")).body(body).send();
    let ok = post(r#"{"action":"rate","rate":2500}"#).await.expect("rate");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text").trim(), "total rate 2500 msg/s");
    let too_high = post(r#"{"action":"rate","rate":90000}"#).await.expect("rate");
    assert_eq!(too_high.status(), 400);
    assert!(too_high.text().await.expect("text").contains("above the limit"));
    let refused = post(r#"{"action":"pause"}"#).await.expect("pause");
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.expect("text").contains("no producers"));
    assert_eq!(post(r#"{"action":"jump"}"#).await.expect("bad").status(), 400);

    // The same through `coordinator ctl`'s client.
    let addr = base.trim_start_matches("http://");
    let done = coordinator::ui::ctl::send(addr, None, &Control::Rate(1200.0)).await.expect("ctl rate");
    assert_eq!(done, "total rate 1200 msg/s");
    let refused = coordinator::ui::ctl::send(addr, None, &Control::Pause).await.expect_err("refused");
    assert!(refused.to_string().contains("no producers"), "{refused}");
    let negative = coordinator::ui::ctl::send(addr, None, &Control::Rate(-1.0)).await.expect_err("refused");
    assert!(negative.to_string().contains("positive"), "{negative}");

    dashboard.end(json!({"verdict": "pass"}));
    let ended = http.get(format!("{base}/events")).send().await.expect("events").text().await.expect("body");
    assert!(ended.contains("event: end") && ended.contains("pass"), "{ended}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_route() {
    let (base, _dashboard, stop) = start(Access {
        token: Some(::common::wire::Token::parse("s3cret-token-123456", "test").expect("token")),
        max_rate: None,
    })
    .await;
    let http = reqwest::Client::new();
    for path in ["/", "/state", "/events"] {
        let r = http.get(format!("{base}{path}")).send().await.expect("get");
        assert_eq!(r.status(), 401, "{path} without a token");
    }
    let r = http.post(format!("{base}/control")).body(r#"{"action":"stop"}"#).send().await.expect("post");
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/state?token=wrong-token-0000000")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/state?token=s3cret-token-123456")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/control"))
        .header("authorization", "Bearer s3cret-token-123456")
        .body(r#"{"action":"stop"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let addr = base.trim_start_matches("http://");
    let e = coordinator::ui::ctl::send(addr, None, &Control::Stop).await.expect_err("no token");
    assert!(e.to_string().contains("wants a token"), "{e}");
    let done =
        coordinator::ui::ctl::send(addr, Some("s3cret-token-123456"), &Control::Stop).await.expect("with the token");
    assert_eq!(done, "stopping");
    stop.cancel();
}

/// Headless Chromium opens the live page, which reads /state and draws its
/// charts; the DOM it dumps carries the page's own count of charts and rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_draws_the_live_page() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: chromium not installed ({CHROMIUM})");
        return;
    }
    if !coordinator::ui::assets::charts_available() {
        panic!("built without web/node_modules (scripts/build-web.sh): the dashboard cannot be drawn");
    }
    let (base, dashboard, stop) = start(Access::default()).await;
    // A run that is over: its event stream ends, so the headless browser's
    // virtual time (which waits for open requests) runs out and it dumps.
    dashboard.update(json!({"intervals": rows(2.0), "phase": "done"}));
    dashboard.end(json!({"verdict": "pass"}));
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile dir");
    let url = format!("{base}/");
    let dom = tokio::task::spawn_blocking(move || {
        let child = headless_chromium(&profile)
            .args(["--virtual-time-budget=5000", "--dump-dom", &url])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        });
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    })
    .await
    .expect("join")
    .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let body = dom.split("<body").nth(1).and_then(|b| b.split('>').next()).unwrap_or_default();
    assert!(body.contains("data-charts=\"3\""), "throughput, publish and end-to-end latency drawn: <body{body}>");
    assert!(body.contains("data-intervals=\"4\""), "two intervals of two groups: <body{body}>");
    assert!(dom.contains("ui-test"), "the run id is shown");
    stop.cancel();
}
