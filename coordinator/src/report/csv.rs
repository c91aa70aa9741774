//! timeseries.csv: the report's interval rows, one line per interval and
//! group, for spreadsheets and plotting tools. Its latency columns are the
//! report's percentiles, named by key (`p50_us`, `p95_us`, `p999_us` for
//! 99.9, `p9999_us` for 99.99; producers publish_response, consumers
//! e2e_service); a cell is empty where the report lacks the figure (p90 in
//! a version-1 report). `ack_p99_us`: consumers' ack latency where it is
//! timed; `lost`: see `IntervalRow::lost`. Imports nothing of the crate.

use std::io::Write;
use std::path::Path;

use common::report::Report;

/// Writes `report.intervals` as CSV to `path`.
pub fn write(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut csv = std::io::BufWriter::new(std::fs::File::create(path)?);
    let percentiles = report.reported_percentiles();
    let latency: Vec<String> = percentiles.iter().map(|p| format!("{}_us", p.key())).collect();
    writeln!(csv, "interval,t_s,phase,group,role,sent,acked,send_errors,received,rate_msgs_per_s,{},max_lag_ms,agents_reporting,in_flight_wait_percent,receive_errors,duplicates,redelivered,lost,ack_p99_us", latency.join(","))?;
    for r in &report.intervals {
        let latency: Vec<String> =
            percentiles.iter().map(|p| r.at(*p).map(|v| format!("{v:.1}")).unwrap_or_default()).collect();
        writeln!(
            csv,
            "{},{:.3},{},{},{},{},{},{},{},{:.3},{},{:.3},{},{},{},{},{},{},{}",
            r.index,
            r.t_s,
            r.phase,
            csv_field(&r.group),
            r.role,
            r.sent,
            r.acked,
            r.send_errors,
            r.received,
            r.rate_msgs_per_s,
            latency.join(","),
            r.max_lag_ms,
            r.agents_reporting,
            r.in_flight_wait_percent.map(|w| format!("{w:.1}")).unwrap_or_default(),
            r.receive_errors,
            r.duplicates,
            r.redelivered,
            r.lost,
            r.ack_p99_us.map(|a| format!("{a:.1}")).unwrap_or_default()
        )?;
    }
    csv.flush()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
