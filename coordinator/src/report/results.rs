//! The results directory: writes `results/<run-id>/` (report.json, then
//! timeseries.csv and report.html rendered from it by [`super::csv`] and
//! [`super::html`]); reads a run back, and lists the runs in a results
//! directory. May import `report::csv` and `report::html`.

use std::path::{Path, PathBuf};

use common::report::{Report, Totals};
use serde::Deserialize;

/// Writes report.json, then the files rendered from it.
pub fn write(dir: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    render(dir, report)
}

/// Writes timeseries.csv and report.html from the report (what
/// `coordinator report` re-renders; report.json is left as it is).
pub fn render(dir: &Path, report: &Report) -> std::io::Result<()> {
    super::csv::write(&dir.join("timeseries.csv"), report)?;
    std::fs::write(dir.join("report.html"), super::html::render(report))
}

/// What is wrong with a run directory or a results directory.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: no such directory", .0.display())]
    NoSuchDirectory(PathBuf),
    #[error("{} is not a directory; expected a run directory (results/<run-id>/)", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "{} is not a run directory: it has no report.json (expected results/<run-id>/ as written by `coordinator run`)",
        .0.display()
    )]
    NotARun(PathBuf),
    #[error("{}: not a report ({source})", .path.display())]
    NotAReport { path: PathBuf, source: serde_json::Error },
    #[error("{}: no such results directory (runs are written to ./results or --results DIR)", .0.display())]
    NoSuchResults(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl ReadError {
    fn io(path: &Path, source: std::io::Error) -> ReadError {
        ReadError::Io { path: path.to_path_buf(), source }
    }
}

/// Reads a run's report.json; the error says what is wrong with `dir`.
pub fn read(dir: &Path) -> Result<Report, ReadError> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ReadError::NoSuchDirectory(dir.to_path_buf())
        } else {
            ReadError::io(dir, e)
        }
    })?;
    if !meta.is_dir() {
        return Err(ReadError::NotADirectory(dir.to_path_buf()));
    }
    let p = dir.join("report.json");
    if !p.exists() {
        return Err(ReadError::NotARun(dir.to_path_buf()));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| ReadError::io(&p, e))?;
    serde_json::from_str(&text).map_err(|source| ReadError::NotAReport { path: p, source })
}

/// The fields `results --list` shows; the rest of report.json is skipped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub scenario: String,
    pub verdict: String,
    pub started_at: String,
    pub totals: Totals,
}

/// One entry of a results directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub dir: PathBuf,
    /// Err: why its report.json could not be read.
    pub summary: Result<RunSummary, String>,
}

/// The runs under `root` (directories holding a report.json), newest first;
/// unreadable ones last.
pub fn list(root: &Path) -> Result<Vec<RunEntry>, ReadError> {
    let rd = std::fs::read_dir(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ReadError::NoSuchResults(root.to_path_buf())
        } else {
            ReadError::io(root, e)
        }
    })?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| ReadError::io(root, e))?;
        let dir = e.path();
        let p = dir.join("report.json");
        if !dir.is_dir() || !p.is_file() {
            continue;
        }
        let summary = std::fs::read_to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<RunSummary>(&t).map_err(|e| format!("not a report ({e})")));
        out.push(RunEntry { dir, summary });
    }
    out.sort_by(|a, b| match (&a.summary, &b.summary) {
        (Ok(x), Ok(y)) => (&y.started_at, &y.run_id).cmp(&(&x.started_at, &x.run_id)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.dir.cmp(&b.dir),
    });
    Ok(out)
}

/// The table `coordinator results --list` prints.
pub fn list_table(root: &Path, entries: &[RunEntry]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if entries.is_empty() {
        let _ = writeln!(o, "no runs under {}", root.display());
        return o;
    }
    let _ = writeln!(
        o,
        "{:<44} {:<20} {:<10} {:<24} {:>10} {:>6}",
        "RUN ID", "SCENARIO", "VERDICT", "STARTED", "ACKED", "LOST"
    );
    for e in entries {
        match &e.summary {
            Ok(s) => {
                let name = e.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let moved = if name == s.run_id { String::new() } else { format!("  (directory {name})") };
                let _ = writeln!(
                    o,
                    "{:<44} {:<20} {:<10} {:<24} {:>10} {:>6}{moved}",
                    s.run_id, s.scenario, s.verdict, s.started_at, s.totals.acked, s.totals.lost
                );
            }
            Err(why) => {
                let name = e.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let _ = writeln!(o, "{name:<44} unreadable: {why}");
            }
        }
    }
    let _ = writeln!(o, "{} run(s) under {}", entries.len(), root.display());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sample_report;

    fn tmp(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lg-results-{tag}-{}-{:x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    #[test]
    fn writes_reads_and_lists() {
        let root = tmp("list");
        let mut a = sample_report();
        a.run_id = "run-a".into();
        a.started_at = "2025-01-01T00:00:00Z".into();
        let mut b = a.clone();
        b.run_id = "run-b".into();
        b.started_at = "2025-01-02T00:00:00Z".into();
        write(&root.join("run-a"), &a).expect("write a");
        write(&root.join("run-b"), &b).expect("write b");
        for f in ["report.json", "timeseries.csv", "report.html"] {
            assert!(root.join("run-a").join(f).is_file(), "{f}");
        }
        assert_eq!(read(&root.join("run-a")).expect("read"), a);
        std::fs::create_dir_all(root.join("not-a-run")).expect("mkdir");
        std::fs::create_dir_all(root.join("broken")).expect("mkdir");
        std::fs::write(root.join("broken/report.json"), "{").expect("write");
        let l = list(&root).expect("list");
        let ids: Vec<String> = l
            .iter()
            .map(|e| match &e.summary {
                Ok(s) => s.run_id.clone(),
                Err(_) => "?".into(),
            })
            .collect();
        assert_eq!(ids, ["run-b", "run-a", "?"], "newest first, unreadable last");
        let t = list_table(&root, &l);
        assert!(t.contains("RUN ID") && t.contains("run-b") && t.contains("unreadable"), "{t}");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn read_says_what_is_wrong() {
        let root = tmp("read");
        let e = read(&root.join("missing")).expect_err("missing").to_string();
        assert!(e.contains("no such directory"), "{e}");
        let e = read(&root).expect_err("no report.json").to_string();
        assert!(e.contains("not a run directory"), "{e}");
        std::fs::write(root.join("report.json"), "{\"run_id\": 3}").expect("write");
        let e = read(&root).expect_err("corrupt").to_string();
        assert!(e.contains("not a report"), "{e}");
        let e = read(&root.join("report.json")).expect_err("a file").to_string();
        assert!(e.contains("not a directory"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
        assert!(list(&root).expect_err("gone").to_string().contains("no such results directory"));
    }
}
