//! The broker token, read where `broker.auth` says on the host that
//! connects (each agent; the coordinator for the Pulsar admin API), never
//! from the scenario text. Imports the model's `Auth`.

use super::model::Auth;

/// Why the broker token could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerTokenError {
    #[error("cannot read the broker token file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("environment variable {var} (broker token) is not set on this agent")]
    EnvUnset { var: String },
    #[error("the broker token is empty")]
    Empty,
}

impl Auth {
    /// The token, without surrounding white space.
    pub fn read_token(&self) -> Result<String, BrokerTokenError> {
        let token = match self {
            Auth::TokenFile(path) => std::fs::read_to_string(path)
                .map_err(|e| BrokerTokenError::Read { path: path.clone(), reason: e.to_string() })?,
            Auth::TokenEnv(var) => std::env::var(var).map_err(|_| BrokerTokenError::EnvUnset { var: var.clone() })?,
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(BrokerTokenError::Empty);
        }
        Ok(token)
    }
}
