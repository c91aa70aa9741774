//! Writes `results/<run-id>/`: report.json and timeseries.csv.

use std::io::Write;
use std::path::Path;

use common::report::Report;

pub fn write(dir: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("timeseries.csv"))?);
    writeln!(csv, "interval,t_s,phase,group,role,sent,acked,send_errors,received,rate_msgs_per_s,p50_us,p99_us,p999_us,max_lag_ms,agents_reporting")?;
    for r in &report.intervals {
        writeln!(
            csv,
            "{},{:.3},{},{},{},{},{},{},{},{:.3},{:.1},{:.1},{:.1},{:.3},{}",
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
            r.agents_reporting
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

/// Reads a run's report.json.
pub fn read(dir: &Path) -> Result<Report, String> {
    let p = dir.join("report.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a report ({e})", p.display()))
}
