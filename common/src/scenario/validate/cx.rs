//! The validation context: where every problem found goes, with its key
//! located in the file (or marked as coming from `--set`), and the
//! duration fields every section reads. Imports the line index, the error
//! types and the units; nothing of the sections.

use std::time::Duration;

use crate::scenario::error::{Issue, ScenarioError};
use crate::scenario::locate::LineIndex;
use crate::scenario::raw::Dur;
use crate::units::parse_duration;

/// Collects the issues of one scenario; [`Cx::finish`] sorts them by place.
pub(in crate::scenario) struct Cx<'a> {
    source: &'a str,
    index: &'a LineIndex,
    /// Canonical paths written by `--set`: issues under them name the flag, not a line.
    set_paths: &'a [String],
    issues: Vec<Issue>,
}

impl<'a> Cx<'a> {
    pub(in crate::scenario) fn new(source: &'a str, index: &'a LineIndex, set_paths: &'a [String]) -> Cx<'a> {
        Cx { source, index, set_paths, issues: Vec::new() }
    }
}

impl Cx<'_> {
    /// Records a problem at `key` (a dotted path such as `producers[1].rate`).
    pub(in crate::scenario) fn push(&mut self, key: &str, message: impl Into<String>, hint: Option<String>) {
        let from_set = self
            .set_paths
            .iter()
            .any(|p| key == p || key.starts_with(&format!("{p}.")) || key.starts_with(&format!("{p}[")));
        let (line, column) = if from_set {
            (None, None)
        } else {
            self.index.find(key).map(|(l, c)| (Some(l), Some(c))).unwrap_or((None, None))
        };
        self.issues.push(Issue { key: key.to_string(), line, column, from_set, message: message.into(), hint });
    }

    pub(in crate::scenario) fn err(&mut self, key: &str, message: impl Into<String>) {
        self.push(key, message, None);
    }

    pub(in crate::scenario) fn hint(&mut self, key: &str, message: impl Into<String>, hint: &str) {
        self.push(key, message, Some(hint.to_string()));
    }

    /// true when nothing was wrong.
    pub(in crate::scenario) fn is_clean(&self) -> bool {
        self.issues.is_empty()
    }

    /// Every issue, in file order (those without a line last).
    pub(in crate::scenario) fn finish(mut self) -> ScenarioError {
        self.issues.sort_by_key(|i| (i.line.unwrap_or(usize::MAX), i.column.unwrap_or(0)));
        ScenarioError { source: self.source.to_string(), issues: self.issues }
    }

    /// The duration at `key`, or `default` when absent or bad (bad is reported).
    pub(in crate::scenario) fn duration(&mut self, key: &str, v: Option<&Dur>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(&s.0) {
                Ok(d) => d,
                Err(e) => {
                    self.err(key, e.to_string());
                    default
                }
            },
        }
    }

    /// The duration at `key` when given and good (bad is reported).
    pub(in crate::scenario) fn opt_duration(&mut self, key: &str, v: Option<&Dur>) -> Option<Duration> {
        v.and_then(|s| match parse_duration(&s.0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(key, e.to_string());
                None
            }
        })
    }
}
