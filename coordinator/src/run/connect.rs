//! The sessions of a run: connect, Hello and clock sync to every agent,
//! many at once but not a thousand TCP and HTTP/2 handshakes in the same
//! instant (in address order). An agent busy with a run asked again for a
//! while when the caller allows it (a ceiling search's next step).
//!
//! May import `discovery` (the credentials) and `session`.

use std::time::Duration;

use futures::StreamExt;

use crate::discovery::Remote;
use crate::error::CliError;
use crate::session::{AgentSession, OpenError};

/// Sessions opened at the same time.
const OPEN_CONCURRENCY: usize = 64;

/// Pause between two asks of a busy agent.
const BUSY_PAUSE: Duration = Duration::from_millis(50);

/// Who asks: the run and coordinator an agent is told in Hello, and the
/// token and TLS to reach it with.
pub(super) struct Caller<'a> {
    pub run_id: &'a str,
    pub coordinator_id: &'a str,
    pub remote: &'a Remote,
}

/// Opens a session with every agent at `addresses`, in their order; every
/// failure named, one per line.
pub(super) async fn open_all(
    addresses: &[String],
    caller: &Caller<'_>,
    busy_retry: Duration,
) -> Result<Vec<AgentSession>, CliError> {
    let opened: Vec<Result<AgentSession, OpenError>> =
        futures::stream::iter(addresses.iter().map(|a| open(a, caller, busy_retry)))
            .buffered(OPEN_CONCURRENCY)
            .collect()
            .await;
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    for r in opened {
        match r {
            Ok(s) => sessions.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::CannotComplete(errors.join("\n")));
    }
    Ok(sessions)
}

/// Opens a session; an agent that answers "busy" is asked again for up to
/// `busy_retry` (zero for a run's first contact: another coordinator's agent
/// is refused at once).
async fn open(address: &str, caller: &Caller<'_>, busy_retry: Duration) -> Result<AgentSession, OpenError> {
    let deadline = tokio::time::Instant::now() + busy_retry;
    let (token, tls) = (caller.remote.token.as_ref(), caller.remote.tls.as_ref());
    loop {
        match AgentSession::open(address, caller.run_id, caller.coordinator_id, token, tls).await {
            // The agent frees itself a few milliseconds after the previous run.
            Err(OpenError::Busy(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(BUSY_PAUSE).await;
            }
            r => return r,
        }
    }
}
