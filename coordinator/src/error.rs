//! The error every command ends in, and its exit code: what the binary
//! prints and returns. Its own file so that the stages (`run`, `ceiling`,
//! `discovery`, ...) can return it without importing the CLI (`lib.rs`).
//! Imports nothing of the crate.

/// Exit codes (docs/operations.md "Exit codes and logs"): 0 pass, 1 an SLO
/// failed, 2 bad input, 3 the run could not complete (or is incomplete),
/// 4 the run was interrupted (SIGTERM, SIGINT). The verdicts map onto them
/// in [`exit_code_of`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    CannotComplete(String),
    /// Interrupted before anything could be reported (e.g. while connecting).
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::CannotComplete(_) => 3,
            CliError::Interrupted(_) => 4,
        }
    }
}

/// The exit code of a report's verdict: pass 0, fail 1, interrupted 4,
/// anything else (incomplete) 3.
pub fn exit_code_of(verdict: &str) -> u8 {
    match verdict {
        "pass" => 0,
        "fail" => 1,
        "interrupted" => 4,
        _ => 3,
    }
}
