//! The dashboard's HTTP server (axum, already in the tree through tonic):
//!
//! - `GET /`: the page (uPlot, our chart code and live.js inline; no
//!   request leaves for anywhere else);
//! - `GET /state`: the run model so far (JSON);
//! - `GET /events`: server-sent events, `update` per merged interval and
//!   `end` when the run is over;
//! - `POST /control`: `{"action": "rate", "rate": N}`, `pause`, `resume`,
//!   `stop`; 200 with what was done, 400 for a malformed or out-of-range
//!   request, 409 when the run refused it (nothing changed either way).
//!
//! With a token, every route wants it (`?token=` or `Authorization:
//! Bearer`); off loopback a token is required ([`check_bind`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use common::wire::Token;
use futures::Stream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{assets, Control, Dashboard, Push};

/// Who may use the dashboard and how far a page may push the rate.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token: Option<Token>,
    /// Highest total rate a page may set (msg/s), e.g. the scenario's
    /// agents' `--max-rate` sum; None: no limit here (agents still cap).
    pub max_rate: Option<f64>,
}

/// A dashboard off loopback is a remote control of the load: refuse to
/// serve it there without a token.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(format!("--ui {addr}: a dashboard off loopback needs --token-file (it can change and stop the run)"))
    }
}

#[derive(Clone)]
struct State {
    dashboard: Arc<Dashboard>,
    access: Arc<Access>,
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    dashboard: Arc<Dashboard>,
    access: Access,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = State { dashboard, access: Arc::new(access) };
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/state", get(model))
        .route("/events", get(events))
        .route("/control", post(control))
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Whether the request carries the token (when one is set).
fn allowed(s: &State, uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(want) = &s.access.token else { return true };
    // Constant time: the token guards a remote control.
    want.matches(query_token(uri).or_else(|| bearer(headers)).unwrap_or("").as_bytes())
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "a token is needed: open the page as /?token=TOKEN\n").into_response()
}

async fn page(axum::extract::State(s): axum::extract::State<State>, uri: Uri, headers: HeaderMap) -> Response {
    if !allowed(&s, &uri, &headers) {
        return unauthorized();
    }
    if !assets::charts_available() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this coordinator was built without the chart library (run scripts/build-web.sh, then build again)\n",
        )
            .into_response();
    }
    Html(page_html()).into_response()
}

async fn model(axum::extract::State(s): axum::extract::State<State>, uri: Uri, headers: HeaderMap) -> Response {
    if !allowed(&s, &uri, &headers) {
        return unauthorized();
    }
    ([(header::CONTENT_TYPE, "application/json")], s.dashboard.snapshot().to_string()).into_response()
}

async fn events(axum::extract::State(s): axum::extract::State<State>, uri: Uri, headers: HeaderMap) -> Response {
    if !allowed(&s, &uri, &headers) {
        return unauthorized();
    }
    Sse::new(push_stream(s.dashboard.clone())).keep_alive(KeepAlive::default()).into_response()
}

/// Pushes from now on; a run already over sends its `end` at once. A page
/// too slow to keep up skips what it missed and reloads /state.
fn push_stream(d: Arc<Dashboard>) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = d.subscribe();
    let ended = d.ended();
    futures::stream::unfold((rx, ended, false), |(mut rx, ended, done)| async move {
        if done {
            return None;
        }
        if let Some(end) = ended {
            return Some((Ok(Event::default().event("end").data(end.as_ref())), (rx, None, true)));
        }
        let event = match rx.recv().await {
            Ok(Push::Update(u)) => Event::default().event("update").data(u.as_ref()),
            Ok(Push::End(e)) => return Some((Ok(Event::default().event("end").data(e.as_ref())), (rx, None, true))),
            Ok(Push::Reset) => Event::default().event("reload").data("{}"),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, None, false)))
    })
}

/// A request body, checked before anything reaches the run loop.
fn parse_control(body: &[u8], max_rate: Option<f64>) -> Result<(Control, Option<String>), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let group = match v.get("group") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(g)) => Some(g.clone()),
        Some(other) => return Err(format!("`group` is a producer group's name, not {other}")),
    };
    action(&v, max_rate).map(|c| (c, group))
}

/// The `action` of a request body (and its `rate`).
fn action(v: &serde_json::Value, max_rate: Option<f64>) -> Result<Control, String> {
    match v.get("action").and_then(|a| a.as_str()) {
        Some("rate") => {
            let rate = v
                .get("rate")
                .and_then(|r| r.as_f64())
                .ok_or("`rate` needs a number: {\"action\": \"rate\", \"rate\": 5000}")?;
            if !rate.is_finite() || rate <= 0.0 {
                return Err(format!("rate {rate}: a total rate must be a positive number of msg/s"));
            }
            if let Some(max) = max_rate.filter(|m| rate > *m) {
                return Err(format!("rate {rate}: above the limit of {max} msg/s (--max-rate)"));
            }
            Ok(Control::Rate(rate))
        }
        Some("pause") => Ok(Control::Pause),
        Some("resume") => Ok(Control::Resume),
        Some("stop") => Ok(Control::Stop),
        Some(other) => Err(format!("unknown action `{other}` (rate, pause, resume, stop)")),
        None => Err("no `action` (rate, pause, resume, stop)".into()),
    }
}

async fn control(
    axum::extract::State(s): axum::extract::State<State>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !allowed(&s, &uri, &headers) {
        return unauthorized();
    }
    let (c, group) = match parse_control(&body, s.access.max_rate) {
        Ok(c) => c,
        Err(why) => return (StatusCode::BAD_REQUEST, why + "\n").into_response(),
    };
    match s.dashboard.control_for(c, group).await {
        Ok(done) => (StatusCode::OK, done + "\n").into_response(),
        Err(why) => (StatusCode::CONFLICT, why + "\n").into_response(),
    }
}

/// The dashboard page: layout and styles here, behaviour in live.js.
fn page_html() -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loadgen: live run</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{uplot_css}
body{{font:14px system-ui,sans-serif;margin:1rem 2rem;color:#222}}
header{{display:flex;gap:2rem;align-items:baseline;flex-wrap:wrap}}
header b{{font-size:1.1rem}} .muted{{color:#777}}
#controls{{margin:1rem 0;padding:.6rem;border:1px solid #ddd;border-radius:6px;display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}}
#control-status.ok{{color:#060}} #control-status.refused{{color:#a00}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}} th{{background:#f4f4f4}}
.chart{{margin:1rem 0}}
</style></head><body>
<header><b>loadgen</b><span>run <code id="run-id"></code></span><span>scenario <b id="scenario"></b></span>
<span>phase <b id="phase"></b></span><span>elapsed <b id="elapsed"></b></span><span>verdict <b id="verdict"></b></span>
<span class="muted" id="connection">connecting…</span></header>
<section id="controls"><span>total rate now <b id="target">–</b></span>
<select id="group" title="every producer group, or one"><option value="">all groups</option></select>
<input id="rate" type="number" min="1" step="any" placeholder="msg/s"><button id="set-rate">set rate</button>
<button id="pause">pause producers</button><button id="resume">resume</button><button id="stop">stop the run</button>
<span id="control-status"></span></section>
<div id="charts"></div>
<h3>Agents</h3><table id="agents"></table>
<h3>Subscriptions</h3><table id="subscriptions"></table>
<h3>Notes</h3><ul id="notes"></ul>
{scripts}</body></html>
"#,
        uplot_css = assets::UPLOT_CSS,
        scripts = assets::inline_scripts(assets::LIVE_JS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_the_run_sees_them() {
        assert_eq!(parse_control(br#"{"action":"rate","rate":5000}"#, None), Ok((Control::Rate(5000.0), None)));
        assert_eq!(parse_control(br#"{"action":"stop"}"#, None), Ok((Control::Stop, None)));
        assert_eq!(
            parse_control(br#"{"action":"pause","group":"orders"}"#, None),
            Ok((Control::Pause, Some("orders".into())))
        );
        assert!(parse_control(br#"{"action":"pause","group":7}"#, None).is_err());
        for (body, why) in [
            (&br#"{"action":"rate","rate":-5}"#[..], "positive"),
            (br#"{"action":"rate","rate":0}"#, "positive"),
            (br#"{"action":"rate"}"#, "needs a number"),
            (br#"{"action":"rate","rate":9000}"#, "above the limit of 8000"),
            (br#"{"action":"faster"}"#, "unknown action"),
            (br#"not json"#, "not JSON"),
        ] {
            let e = parse_control(body, Some(8000.0)).expect_err("refused");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn off_loopback_needs_a_token() {
        assert!(check_bind("127.0.0.1:8080".parse().expect("addr"), None).is_ok());
        assert!(check_bind("[::1]:8080".parse().expect("addr"), None).is_ok());
        assert!(check_bind("0.0.0.0:8080".parse().expect("addr"), None).is_err());
        let token = Token::parse("secret-token-0123456", "test").expect("token");
        assert!(check_bind("0.0.0.0:8080".parse().expect("addr"), Some(&token)).is_ok());
    }
}
