//! The run journal (`journal.jsonl` in the run directory): what a run has
//! measured so far, written as it goes, so a coordinator that dies (kill -9,
//! an OOM kill, a node gone) still leaves a report to rebuild
//! (`coordinator report RUN_DIR`).
//!
//! One JSON document per line:
//! - `{"start": REPORT}`: the report skeleton at the start instant (run id,
//!   scenario, broker, planned phases, agents with their clock offsets,
//!   groups with their targets; nothing measured yet);
//! - `{"interval": [ROWS]}`: each merged interval's rows as report.json
//!   has them, flushed to the OS per interval (a killed process loses
//!   nothing written; a lost host may lose the last interval);
//! - `{"note": TEXT}`: notes as they happen;
//! - `{"end": VERDICT}`: the run finished and report.json was written.
//!
//! A last line cut off mid-write is expected and skipped.
//!
//! May import: common (report model); nothing of the run loop.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use common::report::{IntervalRow, Report};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "journal.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no start line: not a run journal")]
    NoStart { path: PathBuf },
    #[error("{path}:{line}: {why}")]
    Corrupt { path: PathBuf, line: usize, why: String },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Start(Box<Report>),
    Interval(Vec<IntervalRow>),
    Note(String),
    End(String),
}

/// The writing end, owned by the run loop.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Journal {
    /// Creates the journal with the run's skeleton report.
    pub fn create(dir: &Path, skeleton: &Report) -> Result<Journal, JournalError> {
        let path = dir.join(FILE);
        let file = File::create(&path).map_err(|source| JournalError::Write { path: path.clone(), source })?;
        let mut j = Journal { path, out: BufWriter::new(file) };
        j.write(&Line::Start(Box::new(skeleton.clone())))?;
        Ok(j)
    }

    fn write(&mut self, line: &Line) -> Result<(), JournalError> {
        let err = |source| JournalError::Write { path: self.path.clone(), source };
        serde_json::to_writer(&mut self.out, line).map_err(|e| err(e.into()))?;
        self.out.write_all(b"\n").map_err(err)?;
        self.out.flush().map_err(err)
    }

    /// One merged interval (every group's row).
    pub fn interval(&mut self, rows: &[IntervalRow]) -> Result<(), JournalError> {
        self.write(&Line::Interval(rows.to_vec()))
    }

    pub fn note(&mut self, note: &str) -> Result<(), JournalError> {
        self.write(&Line::Note(note.to_string()))
    }

    /// The run finished and its report.json is written.
    pub fn end(mut self, verdict: &str) -> Result<(), JournalError> {
        self.write(&Line::End(verdict.to_string()))
    }
}

/// What a journal holds.
#[derive(Debug)]
pub struct Replay {
    pub skeleton: Report,
    pub intervals: Vec<IntervalRow>,
    pub notes: Vec<String>,
    /// The verdict of a run that finished; None: the coordinator stopped.
    pub ended: Option<String>,
    /// A last line cut off mid-write was skipped.
    pub truncated: bool,
}

/// Reads a run directory's journal.
pub fn read(dir: &Path) -> Result<Replay, JournalError> {
    let path = dir.join(FILE);
    let file = File::open(&path).map_err(|source| JournalError::Read { path: path.clone(), source })?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Read { path: path.clone(), source })?;
    let mut replay: Option<Replay> = None;
    let last = lines.len();
    for (n, text) in lines.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(text) {
            Ok(l) => l,
            // The last line may be cut off by the kill; any other is damage.
            Err(_) if n + 1 == last => {
                if let Some(r) = replay.as_mut() {
                    r.truncated = true;
                }
                continue;
            }
            Err(e) => return Err(JournalError::Corrupt { path, line: n + 1, why: e.to_string() }),
        };
        match (line, replay.as_mut()) {
            (Line::Start(s), None) => {
                replay = Some(Replay {
                    skeleton: *s,
                    intervals: Vec::new(),
                    notes: Vec::new(),
                    ended: None,
                    truncated: false,
                })
            }
            (Line::Start(_), Some(_)) => {
                return Err(JournalError::Corrupt { path, line: n + 1, why: "a second start line".into() })
            }
            (_, None) => return Err(JournalError::NoStart { path }),
            (Line::Interval(rows), Some(r)) => r.intervals.extend(rows),
            (Line::Note(t), Some(r)) => r.notes.push(t),
            (Line::End(v), Some(r)) => r.ended = Some(v),
        }
    }
    replay.ok_or(JournalError::NoStart { path })
}

/// The report of a run whose coordinator stopped: the skeleton with the
/// intervals written, whole-run counts summed from them (marked partial),
/// per-group rates over the measured intervals, verdict `incomplete`.
/// Latency percentiles per group stay as the skeleton has them (none): a
/// percentile of the whole run cannot be made from per-interval
/// percentiles, so the intervals carry the latency.
pub fn rebuild(replay: Replay) -> Report {
    let mut r = replay.skeleton;
    let last_t = replay.intervals.iter().map(|i| i.t_s).fold(0.0, f64::max);
    for row in &replay.intervals {
        r.totals.sent += row.sent;
        r.totals.acked += row.acked;
        r.totals.send_errors += row.send_errors;
        r.totals.received += row.received;
    }
    let interval_s = r.phases.report_interval_s.max(1e-9);
    for g in &mut r.groups {
        let measured: Vec<&IntervalRow> =
            replay.intervals.iter().filter(|i| i.group == g.name && i.role == g.role && i.phase == "measure").collect();
        g.messages = measured.iter().map(|i| if g.role == "producer" { i.acked } else { i.received }).sum();
        g.send_errors = measured.iter().map(|i| i.send_errors).sum();
        if !measured.is_empty() {
            g.rate_msgs_per_s = g.messages as f64 / (measured.len() as f64 * interval_s);
        }
        g.max_lag_ms = measured.iter().map(|i| i.max_lag_ms).fold(0.0, f64::max);
    }
    r.intervals = replay.intervals;
    r.notes.extend(replay.notes);
    r.verdict = "incomplete".into();
    r.notes.push(format!(
        "rebuilt from {FILE}: the coordinator stopped {last_t:.1}s into the run{}; totals are partial (summed from the \
         intervals written), nothing was judged for loss (the agents' final reports never arrived), latency is per interval only",
        if replay.truncated { " (its last line was cut off)" } else { "" }
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, group: &str, role: &str, n: u64) -> IntervalRow {
        IntervalRow {
            index: t as u64,
            t_s: t,
            phase: if t < 2.0 { "warmup".into() } else { "measure".into() },
            group: group.into(),
            role: role.into(),
            sent: if role == "producer" { n } else { 0 },
            acked: if role == "producer" { n } else { 0 },
            send_errors: 0,
            received: if role == "consumer" { n } else { 0 },
            backlog: 0,
            rate_msgs_per_s: n as f64,
            p50_us: 900.0,
            p99_us: 2000.0,
            p999_us: 3000.0,
            max_lag_ms: 0.5,
            agents_reporting: 1,
            in_flight_wait_percent: None,
            ..IntervalRow::default()
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lg-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn skeleton() -> Report {
        let mut r = crate::testutil::sample_report();
        r.verdict = "incomplete".into();
        r.intervals.clear();
        r.totals = Default::default();
        r
    }

    #[test]
    fn a_killed_run_leaves_a_journal_that_rebuilds_with_a_cut_last_line() {
        let d = dir("killed");
        let sk = skeleton();
        let name_of = |role: &str| sk.groups.iter().find(|g| g.role == role).map(|g| g.name.clone()).expect("a group");
        let (p, c) = (name_of("producer"), name_of("consumer"));
        let mut j = Journal::create(&d, &sk).expect("create");
        for t in 1..=4 {
            j.interval(&[row(f64::from(t), &p, "producer", 100), row(f64::from(t), &c, "consumer", 100)])
                .expect("append");
        }
        j.note("agent a1 was silent for 2.5s").expect("note");
        drop(j);
        // The kill came in the middle of the next line.
        let mut f = std::fs::OpenOptions::new().append(true).open(d.join(FILE)).expect("open");
        f.write_all(b"{\"interval\":[{\"index\":5,\"t_s\":5.0,\"pha").expect("cut line");
        drop(f);

        let replay = read(&d).expect("read");
        assert!(replay.truncated && replay.ended.is_none());
        assert_eq!(replay.intervals.len(), 8);
        let r = rebuild(replay);
        assert_eq!(r.verdict, "incomplete");
        assert_eq!((r.totals.sent, r.totals.acked, r.totals.received), (400, 400, 400));
        let g = r.groups.iter().find(|g| g.name == p).expect("producer group");
        assert_eq!(g.messages, 300, "the three measured intervals");
        assert!(r.notes.iter().any(|n| n.contains("silent")));
        assert!(r.notes.iter().any(|n| n.contains("rebuilt from journal.jsonl") && n.contains("cut off")));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn damage_before_the_last_line_or_no_start_is_an_error() {
        let d = dir("damaged");
        std::fs::write(d.join(FILE), "{\"note\":\"x\"}\n").expect("write");
        assert!(matches!(read(&d), Err(JournalError::NoStart { .. })));
        let mut j = Journal::create(&d, &skeleton()).expect("create");
        j.note("fine").expect("note");
        drop(j);
        let mut text = std::fs::read_to_string(d.join(FILE)).expect("read");
        text.push_str("garbage\n{\"note\":\"after\"}\n");
        std::fs::write(d.join(FILE), text).expect("write");
        assert!(matches!(read(&d), Err(JournalError::Corrupt { line: 3, .. })));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_finished_run_says_so() {
        let d = dir("finished");
        let j = Journal::create(&d, &skeleton()).expect("create");
        j.end("pass").expect("end");
        let replay = read(&d).expect("read");
        assert_eq!(replay.ended.as_deref(), Some("pass"));
        assert!(!replay.truncated);
        let _ = std::fs::remove_dir_all(d);
    }
}
