//! One percentile (`report.percentiles`, the SLO keys, report.json's
//! `percentiles` maps, CSV columns, Prometheus quantile labels), held
//! exactly in thousandths of a percent so 99.9 stays 99.9, and its three
//! spellings:
//! - the label, `p99.9`: console, HTML, `compare`, report.json's maps;
//! - the key, `p999`: SLO keys (`p999_e2e`) and CSV columns (`p999_us`),
//!   where a dot would be a path separator. Its digits read as `DD.ddd`:
//!   the first two are the whole percent, the rest its decimals (`p50`,
//!   `p95`, `p999` = 99.9, `p9999` = 99.99, `p055` = 5.5; one or two digits
//!   are whole: `p5`);
//! - the quantile, `0.999`: Prometheus' `quantile` label.
//!
//! Imports nothing of the crate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A percentile strictly between 0 and 100 with at most three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentile(u32);

/// The list reported when the scenario gives none (`report.percentiles`).
pub const DEFAULT: [Percentile; 5] =
    [Percentile(50_000), Percentile(90_000), Percentile(95_000), Percentile(99_000), Percentile(99_900)];

/// What a version-1 report.json carried (named fields only).
pub const V1: [Percentile; 4] = [Percentile(50_000), Percentile(90_000), Percentile(99_000), Percentile(99_900)];

/// Most percentiles one scenario may report.
pub const MAX_COUNT: usize = 12;

impl Percentile {
    pub const P50: Percentile = Percentile(50_000);
    pub const P90: Percentile = Percentile(90_000);
    pub const P95: Percentile = Percentile(95_000);
    pub const P99: Percentile = Percentile(99_000);
    pub const P999: Percentile = Percentile(99_900);

    /// The percentile `p` (percent), or why it is not one.
    pub fn new(p: f64) -> Result<Percentile, String> {
        if !(p.is_finite() && p > 0.0 && p < 100.0) {
            return Err(format!("{p} is not between 0 and 100 (both excluded)"));
        }
        let milli = (p * 1000.0).round();
        if (milli / 1000.0 - p).abs() > 1e-9 {
            return Err(format!("{p} has more than three decimals"));
        }
        Ok(Percentile(milli as u32))
    }

    /// The percentile a key's digits name (`999` → 99.9), or why not.
    pub fn from_key_digits(d: &str) -> Result<Percentile, String> {
        if d.is_empty() || d.len() > 5 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`p{d}`: expected 1 to 5 digits after `p` (p95, p999 for 99.9, p9999 for 99.99)"));
        }
        let (whole, frac) = d.split_at(d.len().min(2));
        let frac_milli =
            if frac.is_empty() { 0 } else { frac.parse::<u32>().unwrap_or(0) * 10u32.pow(3 - frac.len() as u32) };
        let p = Percentile(whole.parse::<u32>().unwrap_or(0) * 1000 + frac_milli);
        if p.0 == 0 {
            return Err(format!("`p{d}`: a percentile is above 0"));
        }
        Ok(p)
    }

    /// Percent, e.g. 99.9.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// The fraction a histogram is asked for, e.g. 0.999.
    pub fn quantile(self) -> f64 {
        f64::from(self.0) / 100_000.0
    }

    /// `p99.9`, `p50`.
    pub fn label(self) -> String {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            format!("p{whole}")
        } else {
            format!("p{whole}.{}", trim_zeros(&format!("{frac:03}")))
        }
    }

    /// `p999`, `p50`, `p055` (5.5): see the module doc.
    pub fn key(self) -> String {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            format!("p{whole}")
        } else {
            format!("p{whole:02}{}", trim_zeros(&format!("{frac:03}")))
        }
    }

    /// Prometheus' label value: `0.999`, `0.5`.
    pub fn quantile_label(self) -> String {
        format!("0.{}", trim_zeros(&format!("{:05}", self.0)))
    }
}

fn trim_zeros(s: &str) -> &str {
    s.trim_end_matches('0')
}

impl std::fmt::Display for Percentile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// As its percent: `99.9`.
impl Serialize for Percentile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl<'de> Deserialize<'de> for Percentile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Percentile::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: f64) -> Percentile {
        Percentile::new(v).expect("valid")
    }

    #[test]
    fn three_spellings() {
        let cases = [
            (50.0, "p50", "p50", "0.5"),
            (95.0, "p95", "p95", "0.95"),
            (99.9, "p99.9", "p999", "0.999"),
            (99.99, "p99.99", "p9999", "0.9999"),
            (99.999, "p99.999", "p99999", "0.99999"),
            (5.0, "p5", "p5", "0.05"),
            (5.5, "p5.5", "p055", "0.055"),
            (0.1, "p0.1", "p001", "0.001"),
        ];
        for (v, label, key, q) in cases {
            let x = p(v);
            assert_eq!((x.label().as_str(), x.key().as_str(), x.quantile_label().as_str()), (label, key, q), "{v}");
            assert_eq!(Percentile::from_key_digits(&key[1..]), Ok(x), "{key}");
            assert!((x.quantile() - v / 100.0).abs() < 1e-12);
        }
    }

    #[test]
    fn refuses_what_is_not_a_percentile() {
        for bad in [0.0, 100.0, -1.0, 150.0, f64::NAN, 99.9999] {
            assert!(Percentile::new(bad).is_err(), "{bad}");
        }
        for bad in ["", "0", "00", "123456", "9a"] {
            assert!(Percentile::from_key_digits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serialises_as_its_percent() {
        assert_eq!(serde_json::to_string(&[p(50.0), p(99.99)]).expect("json"), "[50.0,99.99]");
        let back: Vec<Percentile> = serde_json::from_str("[50, 99.99]").expect("parse");
        assert_eq!(back, vec![p(50.0), p(99.99)]);
        assert!(serde_json::from_str::<Percentile>("100").is_err());
        assert_eq!(DEFAULT.map(Percentile::label), ["p50", "p90", "p95", "p99", "p99.9"]);
    }
}
