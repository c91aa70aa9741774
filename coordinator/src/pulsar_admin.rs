//! Topics the way Pulsar users expect (`broker.admin_url`): before agents
//! prepare, the coordinator creates the scenario's partitioned topics
//! through the Pulsar admin REST API, as OpenMessaging Benchmark does, and
//! checks that topics already there have the partition count the scenario
//! says.
//!
//! All or nothing: every topic is looked at first, and a mismatch stops the
//! run before anything is created; a creation that fails half-way deletes
//! the partitioned topics this call created. Every refusal is one line
//! naming the cause (unreachable, credentials, mismatch), exit 3.
//!
//! The REST calls (Pulsar admin v2):
//! - `GET  /admin/v2/{domain}/{tenant}/{ns}/{topic}/partitions` → `{"partitions": N}`
//!   (0 for a non-partitioned topic; 404 "Topic … not found", or 0 on older
//!   brokers, for no topic at all);
//! - `GET  /admin/v2/{domain}/{tenant}/{ns}` → the namespace's topics
//!   (non-partitioned ones by their own name);
//! - `PUT  /admin/v2/{domain}/{tenant}/{ns}/{topic}/partitions` with body `N`;
//! - `DELETE …/partitions` to undo.

use std::time::Duration;

use common::scenario::{pulsar_topic_name, Broker, Topic};
use reqwest::{Client, StatusCode};
use serde::Deserialize;

/// Why the topics could not be made ready (the run exits 3).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the Pulsar admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Pulsar admin API at {url} refused our credentials (HTTP {status}){hint}")]
    Refused { url: String, status: u16, hint: &'static str },
    #[error("topic {topic}: the scenario says {want} partitions but the broker has {have}; use another topic name or change `partitions`")]
    Mismatch { topic: String, want: u32, have: String },
    #[error("the Pulsar admin API at {url} answered {status} to {what}: {body}")]
    Unexpected { url: String, what: String, status: u16, body: String },
    #[error("{0}")]
    Setup(String),
}

/// What was done, for the log and the console.
#[derive(Debug, Default, PartialEq)]
pub struct Prepared {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// `persistent://tenant/ns/topic` → the REST path `persistent/tenant/ns/topic`.
fn rest_path(topic: &str) -> String {
    pulsar_topic_name(topic).replacen("://", "/", 1)
}

/// The namespace path of a topic's REST path (`persistent/tenant/ns`).
fn namespace_path(rest: &str) -> &str {
    rest.rsplit_once('/').map(|(ns, _)| ns).unwrap_or(rest)
}

#[derive(Deserialize)]
struct PartitionedMetadata {
    partitions: u32,
}

struct Api {
    http: Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(broker: &Broker, base: &str) -> Result<Api, AdminError> {
        let mut b = Client::builder().connect_timeout(broker.connect_timeout).timeout(broker.connect_timeout);
        if let Some(tls) = &broker.tls {
            if let Some(ca) = &tls.ca_file {
                let pem = std::fs::read(ca)
                    .map_err(|e| AdminError::Setup(format!("cannot read broker.tls.ca_file {ca}: {e}")))?;
                let cert = reqwest::Certificate::from_pem(&pem)
                    .map_err(|e| AdminError::Setup(format!("broker.tls.ca_file {ca} is not a PEM certificate: {e}")))?;
                b = b.add_root_certificate(cert);
            }
            if tls.allow_insecure {
                b = b.danger_accept_invalid_certs(true);
            }
        }
        let http = b.build().map_err(|e| AdminError::Setup(format!("cannot set up the admin client: {e}")))?;
        let token = match &broker.auth {
            Some(a) => Some(a.read_token().map_err(|e| AdminError::Setup(format!("admin API token: {e}")))?),
            None => None,
        };
        Ok(Api { http, base: base.trim_end_matches('/').to_string(), token })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, String), AdminError> {
        let url = format!("{}/admin/v2/{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
        }
        let resp = req.send().await.map_err(|e| AdminError::Unreachable {
            url: self.base.clone(),
            reason: common::errors::source_chain(&e),
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let hint = if self.token.is_none() { "; set broker.auth (token_file or token_env)" } else { "" };
            return Err(AdminError::Refused { url: self.base.clone(), status: status.as_u16(), hint });
        }
        Ok((status, text))
    }

    fn unexpected(&self, what: &str, status: StatusCode, body: &str) -> AdminError {
        AdminError::Unexpected {
            url: self.base.clone(),
            what: what.to_string(),
            status: status.as_u16(),
            body: body.chars().take(200).collect::<String>().trim().to_string(),
        }
    }

    /// A successful answer's JSON, or the answer named as unexpected.
    fn json<T: serde::de::DeserializeOwned>(&self, what: &str, st: StatusCode, body: &str) -> Result<T, AdminError> {
        match st.is_success() {
            true => serde_json::from_str(body).map_err(|_| self.unexpected(what, st, body)),
            false => Err(self.unexpected(what, st, body)),
        }
    }

    async fn partitions(&self, rest: &str) -> Result<u32, AdminError> {
        let path = format!("{rest}/partitions");
        let (st, body) = self.call(reqwest::Method::GET, &path, None).await?;
        // Pulsar 4 answers 404 for a topic that does not exist (older: 0).
        if st == StatusCode::NOT_FOUND && body.contains("not found") && body.contains("Topic") {
            return Ok(0);
        }
        self.json::<PartitionedMetadata>(&format!("GET {path}"), st, &body).map(|m| m.partitions)
    }

    /// The namespace's topics (full names; partitions as `…-partition-N`).
    async fn topics_in(&self, ns: &str) -> Result<Vec<String>, AdminError> {
        let (st, body) = self.call(reqwest::Method::GET, ns, None).await?;
        if st == StatusCode::NOT_FOUND {
            return Err(AdminError::Setup(format!(
                "namespace {} does not exist on the broker (create it with pulsar-admin namespaces create)",
                ns.split_once('/').map(|(_, n)| n).unwrap_or(ns)
            )));
        }
        self.json(&format!("GET {ns}"), st, &body)
    }
}

/// Makes the scenario's topics ready on the broker at `admin_url`.
pub async fn prepare_topics(broker: &Broker, admin_url: &str, topics: &[Topic]) -> Result<Prepared, AdminError> {
    let api = Api::new(broker, admin_url)?;
    // Look at everything first, then create: nothing is created when one
    // topic is already wrong.
    let (to_create, mut done) = survey(&api, topics).await?;
    create_all(&api, &to_create, &mut done).await?;
    Ok(done)
}

/// The topics to create (with their REST paths), and those that exist
/// with the right partition count; a mismatch is an error.
async fn survey<'t>(api: &Api, topics: &'t [Topic]) -> Result<(Vec<(&'t Topic, String)>, Prepared), AdminError> {
    let mut to_create = Vec::new();
    let mut done = Prepared::default();
    let mut listed: std::collections::HashMap<String, Vec<String>> = Default::default();
    for t in topics {
        let rest = rest_path(&t.name);
        let have = api.partitions(&rest).await?;
        if have > 0 {
            if have != t.partitions {
                return Err(AdminError::Mismatch { topic: t.name.clone(), want: t.partitions, have: have.to_string() });
            }
            done.existing.push(t.name.clone());
            continue;
        }
        // 0: a non-partitioned topic, or none yet.
        let ns = namespace_path(&rest).to_string();
        if !listed.contains_key(&ns) {
            let names = api.topics_in(&ns).await?;
            listed.insert(ns.clone(), names);
        }
        let exists = listed[&ns].iter().any(|n| *n == pulsar_topic_name(&t.name));
        match (exists, t.partitions) {
            (true, 0) => done.existing.push(t.name.clone()),
            (true, want) => {
                return Err(AdminError::Mismatch {
                    topic: t.name.clone(),
                    want,
                    have: "a non-partitioned topic".into(),
                })
            }
            // Pulsar creates non-partitioned topics on first use.
            (false, 0) => {}
            (false, _) => to_create.push((t, rest)),
        }
    }
    Ok((to_create, done))
}

/// Creates the partitioned topics, undoing this run's own creations if
/// one fails (nothing created by halves).
async fn create_all(api: &Api, to_create: &[(&Topic, String)], done: &mut Prepared) -> Result<(), AdminError> {
    for (t, rest) in to_create {
        let path = format!("{rest}/partitions");
        let r = api.call(reqwest::Method::PUT, &path, Some(t.partitions.to_string())).await;
        let failure = match r {
            Ok((st, _)) if st.is_success() => None,
            // Created meanwhile by someone else: fine if the count agrees.
            Ok((StatusCode::CONFLICT, _)) => match api.partitions(rest).await {
                Ok(n) if n == t.partitions => {
                    done.existing.push(t.name.clone());
                    continue;
                }
                Ok(n) => Some(AdminError::Mismatch { topic: t.name.clone(), want: t.partitions, have: n.to_string() }),
                Err(e) => Some(e),
            },
            Ok((st, body)) => Some(api.unexpected(&format!("PUT {path}"), st, &body)),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            for name in &done.created {
                let p = format!("{}/partitions", rest_path(name));
                if let Err(undo) = api.call(reqwest::Method::DELETE, &p, None).await {
                    tracing::warn!(topic = %name, error = %undo, "could not delete a partitioned topic this run created");
                }
            }
            return Err(e);
        }
        done.created.push(t.name.clone());
    }
    Ok(())
}

/// The admin calls' whole budget: each call is bounded by connect_timeout;
/// a scenario has few topics.
pub fn budget(broker: &Broker, topics: usize) -> Duration {
    broker.connect_timeout * (2 * topics as u32 + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_paths() {
        assert_eq!(rest_path("orders"), "persistent/public/default/orders");
        assert_eq!(rest_path("t/n/x"), "persistent/t/n/x");
        assert_eq!(rest_path("non-persistent://t/n/x"), "non-persistent/t/n/x");
        assert_eq!(namespace_path("persistent/t/n/x"), "persistent/t/n");
    }
}
