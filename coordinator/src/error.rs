//! The error every command ends in, and its exit code: what the binary
//! prints and returns. Its own file so that the stages (`run`, `ceiling`,
//! `discovery`, ...) can return it without importing the CLI (`lib.rs`).
//! Imports nothing of the crate.

/// Exit codes (DESIGN.md): 0 pass, 1 an SLO failed, 2 bad input, 3 the run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    CannotComplete(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::CannotComplete(_) => 3,
        }
    }
}
