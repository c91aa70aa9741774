//! `--set key=value`: dotted paths into the scenario, applied to the YAML
//! tree before it is deserialized, so an override is checked exactly like
//! the file. Paths: `broker.url`, `phases.duration`, `producers[0].rate`,
//! `producers.0.rate`, or a list entry by name: `producers.orders.rate`.

use serde_yaml::{Mapping, Value};

/// A `--set` that cannot be read or applied; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("--set `{0}`: expected KEY=VALUE, e.g. --set broker.url=pulsar://127.0.0.1:6650")]
    NoEquals(String),
    #[error("--set `{0}`: empty key")]
    EmptyKey(String),
    #[error("--set `{0}`: empty path segment")]
    EmptySegment(String),
    #[error("--set `{0}`: missing `]`")]
    MissingBracket(String),
    #[error("--set `{key}`: `{index}` is not a list index")]
    NotIndex { key: String, index: String },
    #[error("--set `{key}`: unexpected `{rest}`")]
    Unexpected { key: String, rest: String },
    #[error("--set {key}: index {index} is out of range ({len} entries)")]
    IndexOutOfRange { key: String, index: usize, len: usize },
    #[error("--set {key}: no entry named `{name}` in `{path}`")]
    NoEntry { key: String, name: String, path: String },
    #[error("--set {key}: `{path}` is not a mapping or list")]
    NotContainer { key: String, path: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Canonical path (`producers[0].rate`), for error messages.
    pub path: Vec<Segment>,
    pub raw: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl Override {
    /// Parses `KEY=VALUE`; VALUE is read as YAML (`100`, `20ms`, `[1, 2]`).
    pub fn parse(s: &str) -> Result<Override, OverrideError> {
        let (k, v) = s.split_once('=').ok_or_else(|| OverrideError::NoEquals(s.to_string()))?;
        let key = k.trim();
        if key.is_empty() {
            return Err(OverrideError::EmptyKey(s.to_string()));
        }
        let mut path = Vec::new();
        for part in key.split('.') {
            let (name, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                match name.parse::<usize>() {
                    Ok(i) => path.push(Segment::Index(i)),
                    Err(_) => path.push(Segment::Key(name.to_string())),
                }
            } else if rest.is_empty() {
                return Err(OverrideError::EmptySegment(key.to_string()));
            }
            let mut rest = rest;
            while let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| OverrideError::MissingBracket(key.to_string()))?;
                let idx = r[..end]
                    .parse::<usize>()
                    .map_err(|_| OverrideError::NotIndex { key: key.to_string(), index: r[..end].to_string() })?;
                path.push(Segment::Index(idx));
                rest = &r[end + 1..];
            }
            if !rest.is_empty() {
                return Err(OverrideError::Unexpected { key: key.to_string(), rest: rest.to_string() });
            }
        }
        let value = if v.trim().is_empty() {
            Value::String(String::new())
        } else {
            serde_yaml::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()))
        };
        Ok(Override { path, raw: key.to_string(), value })
    }

    /// Applies the override to `root`, returning the canonical path written.
    pub fn apply(&self, root: &mut Value) -> Result<String, OverrideError> {
        let mut node = root;
        let mut canon = String::new();
        for (i, seg) in self.path.iter().enumerate() {
            let last = i + 1 == self.path.len();
            match (seg, node) {
                (Segment::Index(idx), Value::Sequence(seq)) => {
                    let len = seq.len();
                    node = seq.get_mut(*idx).ok_or_else(|| OverrideError::IndexOutOfRange {
                        key: self.raw.clone(),
                        index: *idx,
                        len,
                    })?;
                    canon.push_str(&format!("[{idx}]"));
                }
                (Segment::Key(name), Value::Sequence(seq)) => {
                    // A list entry by its `name`.
                    let pos = seq
                        .iter()
                        .position(|e| e.get("name").and_then(Value::as_str) == Some(name.as_str()))
                        .ok_or_else(|| OverrideError::NoEntry {
                            key: self.raw.clone(),
                            name: name.clone(),
                            path: canon.clone(),
                        })?;
                    canon.push_str(&format!("[{pos}]"));
                    node = &mut seq[pos];
                }
                (seg, n @ Value::Null) if !last || matches!(seg, Segment::Key(_)) => {
                    *n = Value::Mapping(Mapping::new());
                    let Value::Mapping(map) = n else { unreachable!("just set") };
                    let key = seg_key(seg);
                    push_key(&mut canon, &key);
                    node = map.entry(Value::String(key)).or_insert(Value::Null);
                }
                (seg, Value::Mapping(map)) => {
                    let key = seg_key(seg);
                    push_key(&mut canon, &key);
                    node = map.entry(Value::String(key)).or_insert(Value::Null);
                }
                (_, _) => {
                    return Err(OverrideError::NotContainer { key: self.raw.clone(), path: canon });
                }
            }
        }
        *node = self.value.clone();
        Ok(canon)
    }
}

fn seg_key(seg: &Segment) -> String {
    match seg {
        Segment::Key(k) => k.clone(),
        Segment::Index(i) => i.to_string(),
    }
}

fn push_key(canon: &mut String, key: &str) {
    if !canon.is_empty() {
        canon.push('.');
    }
    canon.push_str(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_yaml::from_str("broker: {kind: memory}\nproducers:\n  - {name: a, rate: 1}\n  - {name: b, rate: 2}\n")
            .expect("yaml")
    }

    #[test]
    fn sets_paths() {
        let mut v = doc();
        let c = Override::parse("broker.url=pulsar://x:1").unwrap().apply(&mut v).unwrap();
        assert_eq!(c, "broker.url");
        assert_eq!(v["broker"]["url"], Value::String("pulsar://x:1".into()));
        Override::parse("producers[1].rate=7").unwrap().apply(&mut v).unwrap();
        assert_eq!(v["producers"][1]["rate"], Value::Number(7.into()));
        let c = Override::parse("producers.a.rate=9").unwrap().apply(&mut v).unwrap();
        assert_eq!(c, "producers[0].rate");
        assert_eq!(v["producers"][0]["rate"], Value::Number(9.into()));
        Override::parse("broker.latency=20ms").unwrap().apply(&mut v).unwrap();
        assert_eq!(v["broker"]["latency"], Value::String("20ms".into()));
    }

    #[test]
    fn rejects_bad_paths() {
        let mut v = doc();
        assert!(Override::parse("noequals").is_err());
        assert!(Override::parse("=3").is_err());
        assert!(Override::parse("producers[x].rate=1").is_err());
        assert!(Override::parse("producers[9].rate=1").unwrap().apply(&mut v).is_err());
        assert!(Override::parse("producers.zz.rate=1").unwrap().apply(&mut v).is_err());
        assert!(Override::parse("broker.kind.x=1").unwrap().apply(&mut v).is_err());
    }
}
