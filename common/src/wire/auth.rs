//! The shared secret on every call: the agent requires it
//! (`agent --token-file`), the coordinator sends it (`coordinator run
//! --token-file`) as `authorization: Bearer <token>`. Imports nothing of
//! the crate.

use std::sync::Arc;

use subtle::ConstantTimeEq;

/// Shortest token an agent accepts: a guessable secret protects nothing.
pub const MIN_TOKEN_LEN: usize = 16;

/// The metadata key the coordinator puts the token in.
pub const AUTH_HEADER: &str = "authorization";

/// The shared secret an agent requires on every call.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the token from {source_name} is empty")]
    Empty { source_name: String },
    #[error(
        "the token from {source_name} is {len} characters; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)"
    )]
    TooShort { source_name: String, len: usize },
    #[error("the token from {source_name} contains characters that cannot travel in a gRPC header")]
    NotAscii { source_name: String },
}

impl Token {
    /// A token as written in a file or variable: surrounding white space
    /// (the trailing newline of `echo > file`) is not part of it.
    pub fn parse(text: &str, source_name: &str) -> Result<Token, TokenError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(TokenError::Empty { source_name: source_name.into() });
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAscii { source_name: source_name.into() });
        }
        if t.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort { source_name: source_name.into(), len: t.len() });
        }
        Ok(Token(t.as_bytes().into()))
    }

    pub fn from_file(path: &std::path::Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Token::parse(&text, &path.display().to_string())
    }

    /// `Bearer <token>`, the value of the `authorization` header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", String::from_utf8_lossy(&self.0))
    }

    /// Compares in constant time (for a given length): the time taken does
    /// not tell an attacker how many leading bytes were right.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_ref().ct_eq(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_trimmed_checked_and_compared() {
        let t = Token::parse("  0123456789abcdef\n", "f").unwrap();
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeX"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b""));
        assert_eq!(t.bearer(), "Bearer 0123456789abcdef");
        assert!(matches!(Token::parse("short", "f"), Err(TokenError::TooShort { len: 5, .. })));
        assert!(matches!(Token::parse(" \n", "f"), Err(TokenError::Empty { .. })));
        assert!(matches!(Token::parse("0123456789 abcdef", "f"), Err(TokenError::NotAscii { .. })));
        assert_eq!(format!("{t:?}"), "Token(..)", "never printed");
    }
}
