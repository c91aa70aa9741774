//! Units used in scenarios and flags: humantime durations and byte sizes.
//! Imports nothing of the crate.

use std::time::Duration;

/// A duration or byte size that cannot be read; the message says what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty duration")]
    EmptyDuration,
    #[error("`{0}` has no unit; write e.g. `{0}s` or `{0}ms`")]
    NoUnit(String),
    #[error("`{text}` is not a duration ({reason}); write e.g. `30s`, `5m`, `250ms`")]
    NotDuration { text: String, reason: String },
    #[error("`{0}` is not a size; write e.g. `1024`, `1KiB`, `4MB`")]
    NotSize(String),
    #[error("`{text}`: unknown size unit `{unit}`; use B, KiB, MiB, KB, MB")]
    SizeUnit { text: String, unit: String },
    #[error("`{0}` is out of range")]
    SizeOutOfRange(String),
    #[error("`{0}` is not a whole number of bytes")]
    NotWholeBytes(String),
}

/// Parses "30s", "1m 30s", "250ms". A bare number is refused: durations
/// always carry a unit, so "30" is never read as seconds in one place and
/// milliseconds in another.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(UnitError::EmptyDuration);
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(UnitError::NoUnit(t.to_string()));
    }
    humantime::parse_duration(t).map_err(|e| UnitError::NotDuration { text: t.to_string(), reason: e.to_string() })
}

pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A count with a comma between each group of three digits: 10000 ->
/// "10,000", as the report's notes write numbers.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parses a byte size: a plain integer (bytes) or a number with a unit
/// (B, KB, KiB, MB, MiB, GB, GiB; case-insensitive).
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let value: f64 = num.parse().map_err(|_| UnitError::NotSize(t.to_string()))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(UnitError::SizeUnit { text: t.to_string(), unit: unit.to_string() }),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(UnitError::SizeOutOfRange(t.to_string()));
    }
    if bytes.fract() != 0.0 {
        return Err(UnitError::NotWholeBytes(t.to_string()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("30").unwrap_err().to_string().contains("no unit"));
        assert!(parse_duration("30 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("1KiB"), Ok(1024));
        assert_eq!(parse_bytes("1 KB"), Ok(1000));
        assert_eq!(parse_bytes("4MiB"), Ok(4 * 1024 * 1024));
        assert!(parse_bytes("1.5").is_err());
        assert!(parse_bytes("12 furlongs").is_err());
        assert!(parse_bytes("-3").is_err());
    }

    #[test]
    fn thousands_groups_by_three() {
        let cases =
            [(0, "0"), (16, "16"), (999, "999"), (1_000, "1,000"), (10_000, "10,000"), (1_234_567, "1,234,567")];
        for (n, want) in cases {
            assert_eq!(thousands(n), want);
        }
    }
}
