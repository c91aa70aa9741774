//! What a person sees: one line per interval while running, a summary at
//! the end. All of it goes to stderr except the summary table and the last
//! line (the results directory), which go to stdout.

use std::fmt::Write as _;
use std::io::Write as _;

use common::report::Report;
use common::scenario::Scenario;

use crate::merge::{phase_name, IntervalMerge};

pub struct Console {
    quiet: bool,
}

pub fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

impl Console {
    pub fn new(quiet: bool) -> Console {
        Console { quiet }
    }

    pub fn line(&self, s: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    }

    /// One line for a merged interval.
    pub fn interval(&self, sc: &Scenario, idx: u64, m: &IntervalMerge, start_ns: i64, agents: u32) {
        if self.quiet {
            return;
        }
        let secs = ((m.end_ns - m.start_ns) as f64 / 1e9).max(1e-9);
        let mut acked = 0u64;
        let mut errors = 0u64;
        let mut received = 0u64;
        let mut e2e = common::hist::Hist::new();
        let mut publish = common::hist::Hist::new();
        for s in m.producers.values() {
            let t = s.total();
            acked += t.acked;
            errors += t.send_errors;
            publish.add(&t.response);
        }
        for s in m.consumers.values() {
            let t = s.total();
            received += t.received;
            e2e.add(&t.service);
        }
        let target: f64 = sc.producers.iter().map(|p| p.total_rate()).sum();
        let t = (m.end_ns - start_ns) as f64 / 1e9;
        let phase = phase_name(sc, m.start_ns - start_ns);
        self.line(&format!(
            "[{t:>6.1}s] #{idx:<4} {phase:<8} pub {:>8}/s (target {:>7})  recv {:>8}/s  pub p99 {:>8}  e2e p50 {:>8} p99 {:>8}  err {errors}  lag {:.1}ms  agents {}/{agents}",
            fmt_count(acked as f64 / secs),
            fmt_count(target),
            fmt_count(received as f64 / secs),
            fmt_us(publish.quantile_ns(0.99) as f64 / 1e3),
            fmt_us(e2e.quantile_ns(0.5) as f64 / 1e3),
            fmt_us(e2e.quantile_ns(0.99) as f64 / 1e3),
            m.max_lag_ns as f64 / 1e6,
            m.agents,
        ));
    }
}

/// The end-of-run summary.
pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\n== {} ({}) — verdict: {}", r.scenario, r.run_id, r.verdict.to_uppercase());
    let _ = writeln!(
        o,
        "{:<22} {:<9} {:<18} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "GROUP", "ROLE", "TOPIC", "MESSAGES", "RATE/s", "TARGET/s", "p50", "p99", "p99.9", "max"
    );
    for g in &r.groups {
        let _ = writeln!(
            o,
            "{:<22} {:<9} {:<18} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
            g.name,
            g.role,
            g.topic,
            g.messages,
            format!("{:.1}", g.rate_msgs_per_s),
            g.target_rate_msgs_per_s.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into()),
            fmt_us(g.latency_us.p50),
            fmt_us(g.latency_us.p99),
            fmt_us(g.latency_us.p999),
            fmt_us(g.latency_us.max),
        );
    }
    let _ = writeln!(o, "(producers: publish latency from the intended send time; consumers: end-to-end latency)");
    let _ = writeln!(
        o,
        "\n{:<24} {:<11} {:>10} {:>10} {:>8} {:>10} {:>9}",
        "SUBSCRIPTION", "TYPE", "EXPECTED", "RECEIVED", "LOST", "DUPLICATE", "REORDER"
    );
    for s in &r.subscriptions {
        let _ = writeln!(
            o,
            "{:<24} {:<11} {:>10} {:>10} {:>8} {:>10} {:>9}{}",
            format!("{}/{}", s.topic, s.subscription),
            s.sub_type,
            s.expected,
            s.received_unique,
            s.lost,
            s.duplicated,
            s.reordered,
            if s.stalled { "  STALLED" } else { "" }
        );
    }
    let t = &r.totals;
    let _ = writeln!(
        o,
        "\ntotals: sent {} acked {} send_errors {} received {} lost {} duplicated {} reordered {}",
        t.sent, t.acked, t.send_errors, t.received, t.lost, t.duplicated, t.reordered
    );
    if let Some(c) = &r.ceiling {
        let _ = writeln!(
            o,
            "ceiling: {} msg/s, bound by the {} ({} step(s))",
            fmt_count(c.rate_msgs_per_s),
            c.bound_by,
            c.steps.len()
        );
    }
    let _ = writeln!(
        o,
        "\n{:<20} {:<16} {:<9} {:>8} {:>8} {:>10} {:>10} {:>12} {:>6}",
        "AGENT", "ADDRESS", "STATUS", "PRODS", "CONS", "PUB/s", "RECV/s", "CLOCK ±ms", "CPU%"
    );
    for a in &r.agents {
        let _ = writeln!(
            o,
            "{:<20} {:<16} {:<9} {:>8} {:>8} {:>10.1} {:>10.1} {:>12} {:>6.1}",
            a.id,
            a.address,
            a.status,
            a.producers,
            a.consumers,
            a.publish_rate_msgs_per_s,
            a.receive_rate_msgs_per_s,
            format!("{:+.3}±{:.3}", a.clock_offset_us / 1e3, a.clock_error_us / 1e3),
            a.cpu_percent
        );
    }
    if !r.slo.is_empty() {
        let _ = writeln!(o, "\nSLO");
        for c in &r.slo {
            let _ = writeln!(
                o,
                "  {} {:<36} limit {:>10}  actual {:>10}",
                if c.pass { "ok  " } else { "FAIL" },
                c.name,
                c.limit,
                c.actual
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}
