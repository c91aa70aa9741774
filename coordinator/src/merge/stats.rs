//! Report figures from histograms and counters: latency percentiles in
//! microseconds, histogram records, the in-flight wait share. Imports
//! nothing of the crate.

use std::collections::BTreeMap;

use common::hist::Hist;
use common::percentile::Percentile;
use common::report::{HistogramRecord, Latency};

/// Nanoseconds as microseconds.
pub(super) fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A histogram's percentiles (the named ones and `percentiles`), max and
/// mean in microseconds.
pub fn latency(h: &Hist, percentiles: &[Percentile]) -> Latency {
    Latency {
        p50: us(h.quantile_ns(0.5)),
        p90: us(h.quantile_ns(0.9)),
        p95: Some(us(h.quantile_ns(0.95))),
        p99: us(h.quantile_ns(0.99)),
        p999: us(h.quantile_ns(0.999)),
        max: us(h.max_ns()),
        mean: if h.is_empty() { 0.0 } else { h.mean_ns() / 1000.0 },
        count: h.len(),
        percentiles: by_label(h, percentiles),
    }
}

/// `percentiles` of `h` in microseconds, keyed by label (`p99.9`).
pub(super) fn by_label(h: &Hist, percentiles: &[Percentile]) -> BTreeMap<String, f64> {
    percentiles.iter().map(|p| (p.label(), us(h.quantile_ns(p.quantile())))).collect()
}

/// A group's histogram as report.json carries it.
pub(super) fn hist_record(group: &str, role: &str, kind: &str, h: &Hist) -> HistogramRecord {
    HistogramRecord {
        group: group.into(),
        role: role.into(),
        kind: kind.into(),
        unit: "ns".into(),
        encoding: "hdr-v2-deflate-base64".into(),
        data: h.encode_base64(),
    }
}

/// Producers' time held for room in flight, as a percent of `producers` ×
/// `secs` (the whole run's groups[] figure and each interval's row).
pub(super) fn wait_percent(wait_ns: u64, producers: f64, secs: f64) -> f64 {
    wait_ns as f64 / (producers * secs * 1e9) * 100.0
}
