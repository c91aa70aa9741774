//! `coordinator ctl ADDR rate N | pause | resume | stop [--group G]`: the dashboard's
//! run control from a shell or a script, through the same /control the
//! page uses (so the same checks and answers).

use super::Control;

/// Why a control request did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("no dashboard answered at {addr}: {why}")]
    Unreachable { addr: String, why: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("{addr} wants a token (--token-file or LOADGEN_TOKEN)")]
    Unauthorized { addr: String },
}

fn body(c: &Control, group: Option<&str>) -> String {
    let mut v = match c {
        Control::Rate(n) => serde_json::json!({"action": "rate", "rate": n}),
        Control::Pause => serde_json::json!({"action": "pause"}),
        Control::Resume => serde_json::json!({"action": "resume"}),
        Control::Stop => serde_json::json!({"action": "stop"}),
    };
    if let Some(g) = group {
        v["group"] = serde_json::Value::String(g.to_string());
    }
    v.to_string()
}

/// Sends one request to the dashboard at `addr` (`HOST:PORT` or a URL) and
/// returns what the run did.
pub async fn send(addr: &str, token: Option<&str>, c: &Control) -> Result<String, CtlError> {
    send_for(addr, token, c, None).await
}

/// [`send`] for one producer group (by name), or every group with None.
pub async fn send_for(addr: &str, token: Option<&str>, c: &Control, group: Option<&str>) -> Result<String, CtlError> {
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    let mut req = reqwest::Client::new()
        .post(format!("{base}/control"))
        .header("content-type", "application/json")
        .timeout(std::time::Duration::from_secs(15))
        .body(body(c, group));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let unreachable = |e: reqwest::Error| CtlError::Unreachable { addr: addr.to_string(), why: e.to_string() };
    let r = req.send().await.map_err(unreachable)?;
    let status = r.status();
    let text = r.text().await.map_err(unreachable)?.trim().to_string();
    match status.as_u16() {
        200 => Ok(text),
        401 => Err(CtlError::Unauthorized { addr: addr.to_string() }),
        _ => Err(CtlError::Refused(text)),
    }
}
