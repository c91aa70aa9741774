//! One report row per agent: what it was given, its clock, and its counts
//! from its final report — or, for an agent lost before it, from the
//! interval reports it sent until then. May import `input` (a sibling).

use common::proto::{self, FinalReport};
use common::report::AgentReport;
use common::stats::GroupPhases;

use super::input::AgentOutcome;

/// Every agent's row; rates over the measurement's `dur_s` seconds, start
/// offsets from `start_ns`, CPU over the measurement `window` too.
pub(super) fn rows(agents: &[AgentOutcome], dur_s: f64, start_ns: i64, window: (i64, i64)) -> Vec<AgentReport> {
    agents
        .iter()
        .map(|a| {
            let mut row = given(a);
            match &a.final_report {
                Some(f) => from_final(&mut row, f, dur_s, start_ns),
                None => from_intervals(&mut row, a, dur_s),
            }
            row.measure_cpu_percent = a.interval_totals.cpu_percent_in(window);
            row
        })
        .collect()
}

/// What agent `a` was given and its clock; no counts yet.
fn given(a: &AgentOutcome) -> AgentReport {
    AgentReport {
        id: a.hello.agent_id.clone(),
        address: a.address.clone(),
        status: a.status.clone(),
        hostname: a.hello.hostname.clone(),
        instance: a.hello.instance_id.clone(),
        clock_offset_us: a.clock_offset_ns as f64 / 1000.0,
        clock_error_us: a.clock_error_ns as f64 / 1000.0,
        clock_drift_us: a.clock_drift_ns as f64 / 1000.0,
        clock_updates: a.clock_updates,
        producers: a.producers,
        consumers: a.consumers,
        target_rate_msgs_per_s: a.target_rate_milli as f64 / 1000.0,
        sent: 0,
        acked: 0,
        send_errors: 0,
        received: 0,
        acked_measure: 0,
        received_measure: 0,
        publish_rate_msgs_per_s: 0.0,
        receive_rate_msgs_per_s: 0.0,
        cpu_percent: 0.0,
        measure_cpu_percent: None,
        max_lag_ms: 0.0,
        late_sends: 0,
        max_rss_mb: 0.0,
        start_offset_ms: None,
        error: a.error.clone(),
    }
}

/// The counts of an agent's final report.
fn from_final(row: &mut AgentReport, f: &FinalReport, dur_s: f64, start_ns: i64) {
    for g in &f.groups {
        let Ok(s) = GroupPhases::from_proto(g) else {
            continue;
        };
        let t = s.total();
        if g.role == proto::Role::Producer as i32 {
            row.sent += t.sent;
            row.acked += t.acked;
            row.send_errors += t.send_errors;
            row.acked_measure += s.measure.acked;
            row.late_sends += t.late_sends;
            row.max_lag_ms = row.max_lag_ms.max(t.max_lag_ns as f64 / 1e6);
        } else {
            row.received += t.received;
            row.received_measure += s.measure.received;
        }
    }
    row.publish_rate_msgs_per_s = row.acked_measure as f64 / dur_s;
    row.receive_rate_msgs_per_s = row.received_measure as f64 / dur_s;
    if f.wall_ns > 0 {
        row.cpu_percent = f.cpu_ns as f64 / f.wall_ns as f64 * 100.0;
    }
    row.max_rss_mb = f.max_rss_bytes as f64 / (1024.0 * 1024.0);
    if f.first_send_ns != 0 {
        row.start_offset_ms = Some((f.first_send_ns - start_ns) as f64 / 1e6);
    }
}

/// Lost: what its interval reports said until then.
fn from_intervals(row: &mut AgentReport, a: &AgentOutcome, dur_s: f64) {
    let t = &a.interval_totals;
    row.sent = t.sent;
    row.acked = t.acked;
    row.send_errors = t.send_errors;
    row.received = t.received;
    row.acked_measure = t.acked_measure;
    row.received_measure = t.received_measure;
    row.late_sends = t.late_sends;
    row.max_lag_ms = t.max_lag_ns as f64 / 1e6;
    row.publish_rate_msgs_per_s = t.acked_measure as f64 / dur_s;
    row.receive_rate_msgs_per_s = t.received_measure as f64 / dur_s;
    if t.wall_ns > 0 {
        row.cpu_percent = t.cpu_ns as f64 / t.wall_ns as f64 * 100.0;
    }
}
