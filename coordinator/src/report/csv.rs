//! timeseries.csv: the report's interval rows, one line per interval and
//! group, for spreadsheets and plotting tools (`p50_us`..`p999_us`:
//! producers publish_response, consumers e2e_service; `ack_p99_us`:
//! consumers' ack latency where it is timed). Imports nothing of the crate.

use std::io::Write;
use std::path::Path;

use common::report::Report;

/// Writes `report.intervals` as CSV to `path`.
pub fn write(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut csv = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(csv, "interval,t_s,phase,group,role,sent,acked,send_errors,received,rate_msgs_per_s,p50_us,p99_us,p999_us,max_lag_ms,agents_reporting,in_flight_wait_percent,receive_errors,duplicates,redelivered,ack_p99_us")?;
    for r in &report.intervals {
        writeln!(
            csv,
            "{},{:.3},{},{},{},{},{},{},{},{:.3},{:.1},{:.1},{:.1},{:.3},{},{},{},{},{},{}",
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
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.max_lag_ms,
            r.agents_reporting,
            r.in_flight_wait_percent.map(|w| format!("{w:.1}")).unwrap_or_default(),
            r.receive_errors,
            r.duplicates,
            r.redelivered,
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
