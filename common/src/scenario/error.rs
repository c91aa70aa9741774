//! How a scenario is refused: every problem found, each at its key, line
//! and column, as one [`ScenarioError`]. Imports nothing of the crate.

use std::fmt;

/// One problem with a scenario, at a place in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Dotted key path (`producers[1].rate`); empty for the whole file.
    pub key: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// true when the key was set with `--set` rather than in the file.
    pub from_set: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found in one scenario; `Display` prints one line each as
/// `file:line:col: key: message` with an indented hint.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub source: String,
    pub issues: Vec<Issue>,
}

impl std::error::Error for ScenarioError {}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, is) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source)?;
            if is.from_set {
                write!(f, ": --set {}", is.key)?;
            } else {
                if let Some(l) = is.line {
                    write!(f, ":{l}")?;
                    if let Some(c) = is.column {
                        write!(f, ":{c}")?;
                    }
                }
                if !is.key.is_empty() {
                    write!(f, ": {}", is.key)?;
                }
            }
            write!(f, ": {}", is.message)?;
            if let Some(h) = &is.hint {
                write!(f, "\n  hint: {h}")?;
            }
        }
        Ok(())
    }
}

impl ScenarioError {
    /// One problem with the whole file (no key, no line).
    pub(super) fn whole(source: &str, message: impl Into<String>, hint: Option<&str>) -> ScenarioError {
        let issue = Issue {
            key: String::new(),
            line: None,
            column: None,
            from_set: false,
            message: message.into(),
            hint: hint.map(str::to_string),
        };
        ScenarioError::one(source, issue)
    }

    /// A scenario refused for one problem.
    pub(super) fn one(source: &str, issue: Issue) -> ScenarioError {
        ScenarioError { source: source.to_string(), issues: vec![issue] }
    }
}
