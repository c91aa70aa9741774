//! A hand-made report for unit tests of the HTML and compare code.

use common::hist::Hist;
use common::report::*;

/// A version-2 latency: the named figures and the default list's map.
fn lat(p50: f64) -> Latency {
    let (p90, p95, p99, p999) = (p50 * 1.5, p50 * 2.0, p50 * 3.0, p50 * 5.0);
    let percentiles = [("p50", p50), ("p90", p90), ("p95", p95), ("p99", p99), ("p99.9", p999)];
    let percentiles = percentiles.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Latency { p50, p90, p95: Some(p95), p99, p999, max: p50 * 8.0, mean: p50 * 1.2, count: 3000, percentiles }
}

fn hist(center_us: i64) -> String {
    let mut h = Hist::new();
    for i in 0..3000i64 {
        h.record_ns((center_us + (i % 100) * center_us / 50) * 1000);
    }
    h.encode_base64()
}

pub fn group(name: &str, role: &str, rate: f64, p50: f64) -> GroupReport {
    GroupReport {
        name: name.into(),
        role: role.into(),
        topic: "t".into(),
        subscription: (role == "consumer").then(|| name.to_string()),
        subscription_type: (role == "consumer").then(|| "shared".to_string()),
        instances: 2,
        messages: (rate * 3.0) as u64,
        bytes: (rate * 3.0 * 1024.0) as u64,
        rate_msgs_per_s: rate,
        rate_bytes_per_s: rate * 1024.0,
        target_rate_msgs_per_s: (role == "producer").then_some(rate),
        closed_loop: false,
        send_errors: 0,
        warmup_messages: rate as u64,
        latency_us: lat(p50),
        alt_latency_us: lat(p50 * 0.9),
        latency: if role == "producer" {
            [("publish_response", lat(p50)), ("publish_service", lat(p50 * 0.9))]
                .into_iter()
                .map(|(k, l)| (k.to_string(), l))
                .collect()
        } else {
            [("e2e_service", lat(p50)), ("e2e_response", lat(p50 * 0.9)), ("ack", lat(p50 / 20.0))]
                .into_iter()
                .map(|(k, l)| (k.to_string(), l))
                .collect()
        },
        ack_latency_not_measured: None,
        late_sends: 0,
        max_lag_ms: 0.0,
        unsent: 0,
        in_flight_wait_percent: (role == "producer").then_some(0.0),
        duplicates: 0,
        reordered: 0,
        redelivered: 0,
        e2e_clock_error_us: None,
        errors_by_kind: Default::default(),
    }
}

/// Built from JSON, so fields added to the report model with
/// `#[serde(default)]` need no change here.
pub fn subscription(name: &str, lost: u64, stalled: bool) -> SubscriptionReport {
    let missing: Vec<&str> = if lost > 0 { vec!["1:10-19"] } else { Vec::new() };
    serde_json::from_value(serde_json::json!({
        "topic": "t",
        "subscription": name,
        "type": "shared",
        "consumers": 2,
        "expected": 4000,
        "received_unique": 4000 - lost,
        "deliveries": 4000 - lost,
        "lost": lost,
        "duplicated": 0,
        "reordered": 0,
        "unacked_received": 0,
        "undecodable": 0,
        "missing_sample": missing,
        "stalled": stalled,
    }))
    .expect("a valid subscription report")
}

/// Producer group `p1` (1000 msg/s, p50 2 ms) and consumer group `c1`
/// (p50 3 ms) on topic `t`; warmup 1 s, measure 3 s, drain 0.5 s.
///
/// Longer than a screen: one report written out field by field, so a test
/// reads every value it starts from in one place.
pub fn sample_report() -> Report {
    let mut intervals = Vec::new();
    for i in 0..5u64 {
        let t_s = (i + 1) as f64;
        let phase = match i {
            0 => "warmup",
            4 => "drain",
            _ => "measure",
        };
        for (g, role, p50) in [("p1", "producer", 2000.0), ("c1", "consumer", 3000.0)] {
            let rate = if i == 4 { 0.0 } else { 1000.0 + i as f64 * 10.0 };
            intervals.push(IntervalRow {
                index: i,
                t_s,
                phase: phase.into(),
                group: g.into(),
                role: role.into(),
                sent: rate as u64,
                acked: rate as u64,
                send_errors: 0,
                received: rate as u64,
                backlog: 0,
                rate_msgs_per_s: rate,
                p50_us: if i == 4 { 0.0 } else { p50 },
                p95_us: Some(if i == 4 { 0.0 } else { p50 * 2.0 }),
                p99_us: if i == 4 { 0.0 } else { p50 * 3.0 },
                p999_us: if i == 4 { 0.0 } else { p50 * 5.0 },
                max_lag_ms: 0.0,
                agents_reporting: 2,
                in_flight_wait_percent: (role == "producer").then_some(0.0),
                ..IntervalRow::default()
            });
        }
    }
    let agent = |id: &str| AgentReport {
        id: id.into(),
        address: "127.0.0.1:7070".into(),
        status: "ok".into(),
        hostname: "host".into(),
        instance: "local".into(),
        clock_offset_us: 12.5,
        clock_error_us: 40.0,
        clock_drift_us: 0.0,
        clock_updates: 0,
        producers: 1,
        consumers: 1,
        target_rate_msgs_per_s: 500.0,
        sent: 2000,
        acked: 2000,
        send_errors: 0,
        received: 2000,
        acked_measure: 1500,
        received_measure: 1500,
        publish_rate_msgs_per_s: 500.0,
        receive_rate_msgs_per_s: 500.0,
        cpu_percent: 7.5,
        measure_cpu_percent: None,
        max_lag_ms: 0.4,
        late_sends: 0,
        max_rss_mb: 20.0,
        start_offset_ms: Some(0.4),
        error: None,
    };
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        percentiles: common::percentile::DEFAULT.to_vec(),
        run_id: "20250101-000000-sample-abcd".into(),
        scenario: "sample".into(),
        scenario_file: "sample.yaml".into(),
        tool_version: "0.1.0".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        verdict: "fail".into(),
        broker: BrokerInfo { kind: "memory".into(), url: None },
        phases: PhasesInfo {
            warmup_s: 1.0,
            duration_s: 3.0,
            cooldown_s: 0.0,
            drain_s: 0.5,
            drain_timeout_s: 10.0,
            drain_timed_out: false,
            report_interval_s: 1.0,
        },
        agents: vec![agent("agent-0"), agent("agent-1")],
        totals: Totals {
            sent: 4000,
            acked: 4000,
            send_errors: 0,
            received: 4000,
            lost: 0,
            duplicated: 0,
            redelivered: 0,
            reordered: 0,
            unacked_received: 0,
        },
        groups: vec![group("p1", "producer", 1000.0, 2000.0), group("c1", "consumer", 1000.0, 3000.0)],
        subscriptions: vec![subscription("c1", 0, true)],
        slo: vec![
            SloCheck { name: "p99_e2e c1".into(), limit: "50.00ms".into(), actual: "9.00ms".into(), pass: true },
            SloCheck { name: "no_stalled_subscriptions".into(), limit: "0".into(), actual: "c1".into(), pass: false },
        ],
        histograms: vec![
            HistogramRecord {
                group: "p1".into(),
                role: "producer".into(),
                kind: "publish_response".into(),
                unit: "ns".into(),
                encoding: "hdr-v2-deflate-base64".into(),
                data: hist(2000),
            },
            HistogramRecord {
                group: "p1".into(),
                role: "producer".into(),
                kind: "publish_service".into(),
                unit: "ns".into(),
                encoding: "hdr-v2-deflate-base64".into(),
                data: hist(1800),
            },
            HistogramRecord {
                group: "c1".into(),
                role: "consumer".into(),
                kind: "e2e".into(),
                unit: "ns".into(),
                encoding: "hdr-v2-deflate-base64".into(),
                data: hist(3000),
            },
        ],
        intervals,
        notes: vec!["a note".into()],
        ceiling: None,
        coverage: None,
        events: Vec::new(),
        coordinator: None,
        faults: Vec::new(),
        interrupted: None,
        client_bound: None,
    }
}
