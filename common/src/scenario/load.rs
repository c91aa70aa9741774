//! Reading a scenario: the file (size, binary, UTF-8 checks), the YAML
//! (nesting guard, syntax errors with their place), `--set` overrides on
//! the YAML tree, the raw serde model, then `validate`. Every refusal is a
//! [`ScenarioError`].
//!
//! Imports the raw model, the overrides, the line index and `validate`;
//! none of them imports this file.

use std::path::Path;

use serde_yaml::Value;

use super::error::{Issue, ScenarioError};
use super::limits::MAX_FILE_BYTES;
use super::locate::LineIndex;
use super::model::Scenario;
use super::overrides::Override;
use super::raw::RawScenario;
use super::validate::{kind_of, validate, Cx};

/// Reads and validates a scenario file, applying `overrides` first.
pub fn load_file(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let source = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| ScenarioError::whole(&source, format!("cannot read: {e}"), Some("check the path")))?;
    if meta.is_dir() {
        return Err(ScenarioError::whole(&source, "is a directory, not a scenario file", None));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(
            &source,
            format!("file is {} bytes; a scenario is at most {} bytes", meta.len(), MAX_FILE_BYTES),
            Some("is this the right file?"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| ScenarioError::whole(&source, format!("cannot read: {e}"), None))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(&source, "file grew past the size limit while reading", None));
    }
    let text = decode_text(&source, &bytes)?;
    load_str(&text, &source, overrides)
}

fn decode_text(source: &str, bytes: &[u8]) -> Result<String, ScenarioError> {
    if bytes.contains(&0) {
        return Err(ScenarioError::whole(
            source,
            "is a binary file, not YAML text",
            Some("a scenario is a YAML text file; see `coordinator init`"),
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        ScenarioError::whole(
            source,
            format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            Some("save the file as UTF-8"),
        )
    })
}

/// Validates scenario text; `source` names it in errors.
pub fn load_str(text: &str, source: &str, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    check_text(text, source)?;
    let index = LineIndex::build(text);
    let mut value = parse_yaml(text, source)?;
    let set_paths = apply_overrides(&mut value, overrides, source)?;
    let mut cx = Cx::new(source, &index, &set_paths);
    let Some(raw) = deserialize(value, &mut cx) else {
        return Err(cx.finish());
    };
    match validate(&raw, &mut cx) {
        Some(s) if cx.is_clean() => Ok(s),
        _ => Err(cx.finish()),
    }
}

/// Before any parser: not too large, not empty, not nested too deep.
fn check_text(text: &str, source: &str) -> Result<(), ScenarioError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::whole(source, "scenario text is too large", None));
    }
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(ScenarioError::whole(
            source,
            "is empty",
            Some("write a scenario or start from `coordinator init`"),
        ));
    }
    check_nesting(text).map_err(|(line, message)| {
        ScenarioError::one(
            source,
            Issue { key: String::new(), line: Some(line), column: None, from_set: false, message, hint: None },
        )
    })
}

/// The YAML tree, whose top level must be a mapping.
fn parse_yaml(text: &str, source: &str) -> Result<Value, ScenarioError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (Some(l.line()), Some(l.column()))).unwrap_or((None, None));
        let message = format!("not valid YAML: {}", strip_location(&e.to_string()));
        ScenarioError::one(source, Issue { key: String::new(), line, column, from_set: false, message, hint: None })
    })?;
    if !value.is_mapping() {
        return Err(ScenarioError::whole(
            source,
            format!("the top level is {}, not a mapping of keys", kind_of(&value)),
            Some("a scenario starts with keys such as `name:`, `broker:`, `topics:`"),
        ));
    }
    Ok(value)
}

/// Applies every `--set`; returns the canonical paths written.
fn apply_overrides(value: &mut Value, overrides: &[Override], source: &str) -> Result<Vec<String>, ScenarioError> {
    let mut set_paths = Vec::new();
    for o in overrides {
        match o.apply(value) {
            Ok(canon) => set_paths.push(canon),
            Err(e) => {
                let message = e.to_string();
                let issue = Issue { key: o.raw.clone(), line: None, column: None, from_set: true, message, hint: None };
                return Err(ScenarioError::one(source, issue));
            }
        }
    }
    Ok(set_paths)
}

/// The raw model; a type error or unknown key is reported at its path.
fn deserialize(value: Value, cx: &mut Cx<'_>) -> Option<RawScenario> {
    match serde_path_to_error::deserialize(value) {
        Ok(r) => Some(r),
        Err(e) => {
            let mut path = e.path().to_string();
            if path == "." {
                path.clear();
            }
            let inner = e.into_inner().to_string();
            let hint = serde_hint(&inner);
            cx.push(&path, inner, hint);
            None
        }
    }
}

/// Refuses nesting deeper than any scenario needs before a parser sees it
/// (parsers recurse; a hostile file must not overflow the stack).
fn check_nesting(text: &str) -> Result<(), (usize, String)> {
    const MAX_FLOW: usize = 64;
    const MAX_INDENT: usize = 128;
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent > MAX_INDENT && quote.is_none() && flow == 0 {
            return Err((n + 1, format!("indented {indent} columns; nesting this deep is not a scenario")));
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '#') => break,
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                (None, '[') | (None, '{') => {
                    flow += 1;
                    if flow > MAX_FLOW {
                        return Err((
                            n + 1,
                            format!("brackets nested more than {MAX_FLOW} deep; this is not a scenario"),
                        ));
                    }
                }
                (None, ']') | (None, '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn serde_hint(msg: &str) -> Option<String> {
    if msg.starts_with("unknown field") {
        Some("check the spelling; `coordinator init` writes a commented template with every key".into())
    } else if msg.starts_with("missing field") {
        Some("this key is required".into())
    } else if msg.contains("invalid type") && msg.contains("expected a string") {
        Some("durations and names are strings, e.g. `30s`".into())
    } else {
        None
    }
}
