//! Checks shared by the sections: instance counts, bounded integers, and
//! how a YAML value's type is named in a message. Imports only the
//! context and the limits.

use std::ops::RangeInclusive;

use serde_yaml::Value;

use super::cx::Cx;
use crate::scenario::limits::MAX_INSTANCES;

/// A group's `count` (1 when absent); 0 after reporting a bad one.
pub(super) fn check_count(cx: &mut Cx<'_>, key: &str, count: Option<i64>) -> u32 {
    match count {
        None => 1,
        Some(n) if (1..=MAX_INSTANCES as i64).contains(&n) => n as u32,
        Some(n) if n <= 0 => {
            cx.hint(key, format!("{n} is not a positive count"), "at least 1");
            0
        }
        Some(n) => {
            cx.hint(key, format!("{n} instances are more than this tool runs"), &format!("at most {MAX_INSTANCES}"));
            0
        }
    }
}

/// `n` when it lies in `range`; otherwise `{n} is out of range` at `key`
/// with `hint`, and None (the caller picks the stand-in value).
pub(super) fn in_range(cx: &mut Cx<'_>, key: &str, n: i64, range: RangeInclusive<i64>, hint: &str) -> Option<u32> {
    if range.contains(&n) {
        Some(n as u32)
    } else {
        cx.hint(key, format!("{n} is out of range"), hint);
        None
    }
}

/// What a YAML value is, for "expected X, found Y" messages.
pub(in crate::scenario) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
