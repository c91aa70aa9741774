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

/// A memory-broker run of 2000 msg/s, 500 ms intervals, long enough to be
/// steered (the tests stop it early), with its dashboard on a free
/// loopback port: the process and the dashboard's address.
fn live_run(tag: &str, extra: &[&str]) -> (common::CoordinatorProc, std::path::PathBuf, String) {
    let scenario = common::write_scenario(
        tag,
        "name: live\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
         producers: [{name: orders, topic: t, count: 2, rate: 2000}]\n\
         consumers: [{name: audit, topic: t}]\n\
         phases: {warmup: 1s, duration: 60s, cooldown: 0s, drain_timeout: 10s}\nreport_interval: 500ms\n",
    );
    let mut args = vec!["--local-agents", "2", "--ui", "127.0.0.1:0"];
    args.extend(extra);
    let run = common::spawn_scenario(&scenario, &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let err = run.stderr();
        if let Some(a) = err.lines().find_map(|l| l.strip_prefix("dashboard: http://")) {
            break a.trim_end_matches('/').to_string();
        }
        assert!(Instant::now() < deadline, "no dashboard address within 60 s:\n{err}");
        std::thread::sleep(Duration::from_millis(50));
    };
    (run, scenario, addr)
}

/// The model the dashboard serves now.
fn state(addr: &str) -> Value {
    let r = Command::new("curl").args(["-sf", &format!("http://{addr}/state")]).output().expect("curl");
    serde_json::from_slice(&r.stdout).unwrap_or(Value::Null)
}

/// Polls the dashboard's model until `ok` holds of it (at most `within`).
fn wait_for_state(addr: &str, within: Duration, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = state(addr);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} not seen within {within:?}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Rates of group `orders` in the intervals that begin at least one whole
/// interval after `from_s` (the interval the change fell in is skipped).
fn producer_rates_after(model: &Value, from_s: f64, to_s: f64) -> Vec<f64> {
    model["intervals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["group"] == "orders" && r["role"] == "producer")
        .filter(|r| r["t_s"].as_f64().is_some_and(|t| t - 0.5 >= from_s + 0.5 && t <= to_s))
        .filter_map(|r| r["rate_msgs_per_s"].as_f64())
        .collect()
}

/// The achieved rates of the intervals after a change against the rate set:
/// their mean within 1 % (an ack near a boundary counts in the next
/// interval, so one interval alone may be a little off), each within 3 %.
fn close_to(rates: &[f64], want: f64) {
    assert!(!rates.is_empty(), "no interval after the change");
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    assert!((mean / want - 1.0).abs() <= 0.01, "achieved {mean} msg/s on average against {want}: {rates:?}");
    assert!(rates.iter().all(|r| (r / want - 1.0).abs() <= 0.03), "an interval far from {want}: {rates:?}");
}

fn ctl(addr: &str, args: &[&str]) -> common::Ran {
    let mut all = vec!["ctl", addr];
    all.extend(args);
    common::coordinator(&all)
}

/// Real headless Chromium on a live run's dashboard: the page shows the
/// running groups and agents; a rate set from the page shows in the next
/// intervals' achieved rate within 1 %; stop from the page ends the run
/// with a normal report that carries both changes.
#[test]
fn chromium_watches_and_steers_a_live_run() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: chromium not installed ({CHROMIUM})");
        return;
    }
    assert!(coordinator::ui::assets::charts_available(), "built without web/node_modules (scripts/build-web.sh)");
    let (run, scenario, addr) = live_run("ui-live-chromium", &["--max-rate", "50000"]);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut page = common::cdp::Browser::open(CHROMIUM, &profile, &format!("http://{addr}/"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let v = page.eval(
            "JSON.stringify({rows: Number(document.body.dataset.intervals || 0), charts: Number(document.body.dataset.charts || 0), \
             agents: document.querySelectorAll('#agents tbody tr').length, text: document.body.innerText})",
        );
        let v: Value = serde_json::from_str(v.as_str().unwrap_or("{}")).unwrap_or(Value::Null);
        if v["rows"].as_u64().unwrap_or(0) >= 8 {
            break v;
        }
        assert!(Instant::now() < deadline, "the page drew no intervals within 60 s: {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(shown["agents"], 2, "both agents listed: {shown}");
    assert_eq!(shown["charts"], 3, "throughput, publish and end-to-end latency: {shown}");
    let text = shown["text"].as_str().unwrap_or_default();
    assert!(text.contains("orders (producer)") && text.contains("audit (consumer)"), "the running groups: {text}");

    // A new total rate from the page.
    page.eval("document.getElementById('rate').value = '3000'; document.getElementById('set-rate').click(); 1");
    let status = wait_page_status(&mut page);
    assert!(status.starts_with("done: total rate 3000 msg/s"), "{status}");
    let changed = wait_for_state(&addr, Duration::from_secs(20), "the rate event and 3 s after it", |m| {
        let Some(t) = m["events"].get(0).and_then(|e| e["t_s"].as_f64()) else { return false };
        producer_rates_after(m, t, f64::MAX).len() >= 5
    });
    let t = changed["events"][0]["t_s"].as_f64().expect("t_s");
    assert_eq!(changed["total_rate"], 3000.0);
    close_to(&producer_rates_after(&changed, t, f64::MAX), 3000.0);

    // Stop from the page: the run ends with its report.
    page.eval("document.getElementById('stop').click(); 1");
    let status = wait_page_status(&mut page);
    assert!(status.starts_with("done: stopped early"), "{status}");
    let ran = run.wait(Duration::from_secs(60));
    assert_eq!(ran.code, 0, "a normal report: {}", ran.stderr);
    let report = common::report_of(&ran);
    let kinds: Vec<&str> =
        report["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["rate", "stop"]);
    let measured = report["phases"]["duration_s"].as_f64().expect("duration");
    assert!(measured < 60.0, "the measurement ends at the stop: {measured}");
    let g = common::group(&report, "orders");
    let (achieved, target) =
        (g["rate_msgs_per_s"].as_f64().expect("rate"), g["target_rate_msgs_per_s"].as_f64().expect("target"));
    // The scenario's 4000 msg/s (2 × 2000) until the change, 3000 after it.
    assert!(target > 3000.0 && target < 4000.0, "the target in force at each moment: {target}");
    assert!((achieved / target - 1.0).abs() < 0.02, "achieved {achieved} against {target}");
    drop(page);
    let _ = std::fs::remove_dir_all(&profile);
    common::remove_scenario_dir(&scenario);
}

/// The page's answer to its last control request (waits up to 20 s).
fn wait_page_status(page: &mut common::cdp::Browser) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = page.eval("document.getElementById('control-status').textContent");
        let s = s.as_str().unwrap_or_default().to_string();
        if !s.is_empty() {
            page.eval("document.getElementById('control-status').textContent = ''; 1");
            return s;
        }
        assert!(Instant::now() < deadline, "no answer on the page within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `coordinator ctl` on a live run: refusals (negative, above --max-rate,
/// a pause twice, a resume that is not one) change nothing; pause, resume,
/// rate and stop are applied, shown in the intervals and recorded.
#[test]
fn ctl_pauses_resumes_sets_the_rate_and_stops_a_live_run() {
    let (run, scenario, addr) = live_run("ui-live-ctl", &["--max-rate", "5000"]);
    wait_for_state(&addr, Duration::from_secs(60), "two intervals", |m| {
        m["intervals"].as_array().is_some_and(|v| v.len() >= 4)
    });
    for (args, why) in [
        (&["rate", "-5"][..], "positive"),
        (&["rate", "9000"], "above the limit of 5000"),
        (&["resume"], "not paused"),
        (&["--group", "nope", "pause"], "no producer group `nope` (the groups: orders)"),
        (&["--group", "orders", "stop"], "takes no group"),
    ] {
        let r = ctl(&addr, args);
        assert_eq!(r.code, 2, "{args:?} refused: {}", r.stdout);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    let r = ctl(&addr, &["pause"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("producers paused"), "{}", r.stdout);
    let r = ctl(&addr, &["pause"]);
    assert!(r.code == 2 && r.stderr.contains("paused already"), "{}", r.stderr);
    let paused = wait_for_state(&addr, Duration::from_secs(20), "two intervals after the pause", |m| {
        let Some(t) = m["events"].get(0).and_then(|e| e["t_s"].as_f64()) else { return false };
        producer_rates_after(m, t, f64::MAX).len() >= 2
    });
    let t = paused["events"][0]["t_s"].as_f64().expect("t_s");
    assert!(producer_rates_after(&paused, t, f64::MAX).iter().all(|r| *r == 0.0), "nothing sent while paused");
    assert_eq!(ctl(&addr, &["resume"]).code, 0);
    let r = ctl(&addr, &["rate", "1000"]);
    assert!(r.code == 0 && r.stdout.contains("total rate 1000 msg/s"), "{} {}", r.stdout, r.stderr);
    let rated = wait_for_state(&addr, Duration::from_secs(20), "3 intervals at 1000 msg/s", |m| {
        let Some(t) = m["events"].get(2).and_then(|e| e["t_s"].as_f64()) else { return false };
        producer_rates_after(m, t, f64::MAX).len() >= 3
    });
    let t = rated["events"][2]["t_s"].as_f64().expect("t_s");
    close_to(&producer_rates_after(&rated, t, f64::MAX), 1000.0);
    // One group by name (the scenario has one: the same figures, its event named).
    let r = ctl(&addr, &["--group", "orders", "rate", "800"]);
    assert!(r.code == 0 && r.stdout.contains("group orders rate 800 msg/s"), "{} {}", r.stdout, r.stderr);
    let r = ctl(&addr, &["stop"]);
    assert!(r.code == 0 && r.stdout.contains("stopped early"), "{} {}", r.stdout, r.stderr);
    let ran = run.wait(Duration::from_secs(60));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let report = common::report_of(&ran);
    let kinds: Vec<&str> =
        report["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["pause", "resume", "rate", "rate", "stop"]);
    assert_eq!(report["events"][3]["group"], "orders", "the group's change names it");
    // The run is over: nobody answers at that address any more.
    let gone = ctl(&addr, &["pause"]);
    assert_eq!(gone.code, 2, "{}", gone.stderr);
    common::remove_scenario_dir(&scenario);
}
