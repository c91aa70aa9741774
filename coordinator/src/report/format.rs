//! How numbers, durations and percentages read in what the coordinator
//! writes for people: the console (live view and summary), report.html,
//! `compare` and the SLO checks of the report. Each writer keeps the look it
//! has always had, so there are a few variants of a kind; they all live
//! here. Imports nothing of the crate.

/// A count or rate, compact: `950`, `12.3k`, `1.25M`.
pub fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Microseconds, compact (console, compare): `850us`, `1.25ms`, `2.50s`.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// Seconds, compact (the live view): `12.5s`, `120s`.
pub fn fmt_secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// Seconds, whole when whole (report.html): `5s`, `2.50s`, `-` when not finite.
pub fn fmt_secs_exact(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s == s.trunc() {
        format!("{s:.0}s")
    } else {
        format!("{s:.2}s")
    }
}

/// Microseconds, human-sized with a space (report.html): `850 µs`, `1.5 ms`, `2 s`.
pub fn fmt_us_spaced(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v >= 1e6 {
        format!("{} s", fmt_decimals(v / 1e6))
    } else if v >= 1e3 {
        format!("{} ms", fmt_decimals(v / 1e3))
    } else {
        format!("{} µs", fmt_decimals(v))
    }
}

/// Up to 3 significant-ish decimals, trailing zeros removed: `120`, `12.5`, `1.25`.
pub fn fmt_decimals(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Microseconds in an SLO check's limit and actual (report.json):
/// `999.0us`, `1.00ms` (never seconds).
pub fn fmt_us_slo(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}ms", v / 1000.0)
    } else {
        format!("{v:.1}us")
    }
}

/// A percentage without trailing zeros: `10`, `7.5`, `0.25`.
pub fn fmt_pct(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
