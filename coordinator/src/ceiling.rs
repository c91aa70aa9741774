//! Ceiling search (`mode: ceiling`, `coordinator run --ceiling`): full runs
//! ("steps") on the same agents, every producer group scaled together to a
//! total target rate. The target doubles from `start` until a step breaks
//! the SLOs, then bisects between the last good and the first bad target
//! until they are within `precision`. A step where the generator itself was
//! the limit (a producer group behind its schedule whose producers were not
//! waiting for room in flight most of the time, as they measured it, or an
//! agent above its CPU threshold) is `client-bound`: it is never taken as
//! the broker's ceiling, and when it bounds the result the report says the
//! client was the limit (add agents). The client-bound criteria are the
//! ones every run is judged by (`merge::client`, `report.client_bound`),
//! here with the search's `ceiling.max_client_*` limits.
//!
//! The search runs its steps through a function it is given ([`search`]'s
//! `run_step`: `run` hands it one complete run on the agents), so this file
//! imports nothing of the run: only the console, the formatters and the
//! client-bound judgement.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use common::report::{Ceiling, CeilingStep, Latency, Report};
use common::scenario::{default_ceiling, BrokerKind, CeilingSpec, Scenario};

use crate::error::CliError;
use crate::merge::client::{self, window_bound, Limits};
use crate::report::console::Console;
use crate::report::format::{fmt_count, fmt_us};

/// What one step gave the search: its merged report (nothing written) and
/// the CPUs of each agent's host (from its Hello), in `report.agents` order.
pub struct Step {
    pub report: Report,
    pub cpus: Vec<u32>,
}

/// How long a step waits for an agent still finishing the previous step.
pub const BUSY_RETRY: Duration = Duration::from_secs(10);

/// Verdicts of a step.
pub const PASS: &str = "pass";
pub const FAIL: &str = "fail";
pub const CLIENT_BOUND: &str = "client-bound";

/// `bound_by` of a search that passed every step up to `ceiling.max`: the
/// result is a lower bound (nothing failed), not a limit of the broker.
pub const SEARCH_MAX: &str = "search_max";

/// The search's state: which target to try next, given what the steps said.
#[derive(Debug, Clone)]
pub struct Search {
    start: f64,
    max: f64,
    precision: f64,
    /// Highest target that passed, with its achieved rate.
    good: Option<(f64, f64)>,
    /// Lowest target that did not pass, with its verdict.
    bad: Option<(f64, String)>,
}

impl Search {
    pub fn new(spec: &CeilingSpec) -> Search {
        Search { start: spec.start, max: spec.max.max(spec.start), precision: spec.precision, good: None, bad: None }
    }

    /// The next total target, or `None` when the search is over.
    pub fn next_target(&self) -> Option<f64> {
        match (&self.good, &self.bad) {
            (None, None) => Some(self.start),
            // Even the start failed.
            (None, Some(_)) => None,
            // Doubling.
            (Some((g, _)), None) => (*g < self.max).then(|| (g * 2.0).min(self.max)),
            // Bisecting.
            (Some((g, _)), Some((b, _))) => ((b - g) / g > self.precision).then(|| (g + b) / 2.0),
        }
    }

    pub fn record(&mut self, target: f64, achieved: f64, verdict: &str) {
        if verdict == PASS {
            if self.good.as_ref().is_none_or(|(g, _)| target > *g) {
                self.good = Some((target, achieved));
            }
        } else if self.bad.as_ref().is_none_or(|(b, _)| target < *b) {
            self.bad = Some((target, verdict.to_string()));
        }
    }

    /// The achieved rate of the best passing step (0 when none passed).
    pub fn ceiling(&self) -> f64 {
        self.good.as_ref().map(|(_, a)| *a).unwrap_or(0.0)
    }

    /// "client" when the step that bounds the result was client-bound;
    /// [`SEARCH_MAX`] when no step failed and the search stopped at its own
    /// `max` (a lower bound, nothing found the limit); else "broker".
    pub fn bound_by(&self) -> &'static str {
        match (&self.good, &self.bad) {
            (_, Some((_, v))) if v == CLIENT_BOUND => "client",
            (Some((g, _)), None) if *g >= self.max => SEARCH_MAX,
            _ => "broker",
        }
    }

    pub fn found(&self) -> bool {
        self.good.is_some()
    }
}

/// What a finished step says: its verdict, why, and its figures.
///
/// A producer group behind its schedule (further than `max_client_lag`, or
/// with sends left unsent) is judged by what its producers measured: the
/// share of the measurement they spent due to send but waiting for room in
/// flight. Window-bound ([`window_bound`]): the broker's acks paced them,
/// the step is the broker's (`fail` when an SLO broke) — unless an agent
/// was over `max_client_cpu`, as a saturated process takes its acks late
/// and a full window is then the generator's. Not window-bound: they had
/// room and still fell behind: client-bound. Any agent over
/// `max_client_cpu` makes the step client-bound. On the memory broker see
/// [`memory_broker_rule`].
pub fn judge_step(sc: &Scenario, report: &Report, cpus: &[u32], spec: &CeilingSpec) -> (CeilingStep, String) {
    let producers = report.groups.iter().filter(|g| g.role == "producer");
    let achieved: f64 = producers.clone().map(|g| g.rate_msgs_per_s).sum();
    let target: f64 = producers.clone().filter_map(|g| g.target_rate_msgs_per_s).sum();
    // End-to-end latency: the consumer group with the highest p99 (publish
    // latency when there are no consumers).
    let pick = |role: &str| {
        report
            .groups
            .iter()
            .filter(|g| g.role == role && g.latency_us.count > 0)
            .max_by(|a, b| a.latency_us.p99.total_cmp(&b.latency_us.p99))
            .map(|g| g.latency_us.clone())
    };
    let latency_us = pick("consumer").or_else(|| pick("producer")).unwrap_or_else(empty_latency);
    let measured_s = sc.phases.duration.as_secs_f64();
    let limits = Limits { cpu: spec.max_client_cpu, lag: spec.max_client_lag };
    let judged = client::judge(&report.agents, cpus, &report.groups, limits, measured_s);
    // The groups behind their schedule first, then the agents over their CPU limit.
    let (hot, behind): (Vec<_>, Vec<_>) = judged.client.iter().partition(|r| r.criterion == "cpu");
    let mut client: Vec<String> = behind.iter().chain(&hot).map(|r| r.detail.clone()).collect();
    let broker_paced = judged.broker_paced;
    if let Some(why) = memory_broker_rule(sc, report, target, measured_s) {
        client.push(why);
    }
    let growing = growing_backlogs(sc, report);
    let (verdict, why) = if !client.is_empty() {
        (CLIENT_BOUND, client.join("; "))
    } else if report.verdict == "pass" && growing.is_empty() {
        (PASS, String::new())
    } else {
        let failed: Vec<String> = report
            .slo
            .iter()
            .filter(|c| !c.pass)
            .map(|c| format!("{} {} (limit {})", c.name, c.actual, c.limit))
            .chain(growing)
            .chain(broker_paced)
            .collect();
        (FAIL, failed.join("; "))
    };
    (CeilingStep { target, achieved, latency_us, verdict: verdict.into() }, why)
}

/// The memory broker runs inside the agent's process, on its CPU, and its
/// limits are known (capacity, added latency). A failed step (not a loss,
/// duplicate or stall, which the broker makes by configuration) below 90 %
/// of its capacity (or with none) is the process's limit, not the broker's
/// ceiling, unless the broker's own figures fill the producers' windows:
/// each producer's sends in flight are its rate times the broker's ack time
/// (added latency plus one service time), and from half of
/// `max_in_flight` on the configured broker paces them. Otherwise producers
/// that waited for room in flight waited for a process that acknowledges
/// late (a saturated one); the message gives the measured wait share.
/// Some(reason) when the step is client-bound by this rule.
fn memory_broker_rule(sc: &Scenario, report: &Report, target: f64, measured_s: f64) -> Option<String> {
    if sc.broker.kind != BrokerKind::Memory || report.verdict == "pass" {
        return None;
    }
    let broker_made = report.slo.iter().any(|c| {
        !c.pass
            && (c.name.starts_with("max_loss")
                || c.name.starts_with("max_duplicates")
                || c.name.starts_with("no_stalled"))
    });
    let cap = sc.broker.capacity_msgs_per_s;
    let below = cap.is_none_or(|c| target < 0.9 * c);
    if broker_made || !below {
        return None;
    }
    let ack_s = sc.broker.latency.as_secs_f64() + cap.map_or(0.0, |c| 1.0 / c);
    let mut waits = Vec::new();
    for g in report.groups.iter().filter(|g| g.role == "producer") {
        let Some(group) = sc.producers.iter().find(|p| p.name == g.name) else { continue };
        let per_producer = g.target_rate_msgs_per_s.unwrap_or(0.0) / f64::from(group.count.max(1));
        let expected = per_producer * ack_s;
        if expected >= 0.5 * f64::from(group.max_in_flight) {
            // The configured latency holds this many in flight: the broker's doing.
            return None;
        }
        let (bound, share) = window_bound(g, measured_s);
        waits.push(format!(
            "`{}` waited for room in flight {:.0}% of the measurement{}",
            g.name,
            share * 100.0,
            if bound {
                format!(" where the broker's figures hold ~{expected:.1} of {} in flight", group.max_in_flight)
            } else {
                String::new()
            }
        ));
    }
    Some(format!(
        "the in-process memory broker ({}, latency {}) should keep up at {target:.0} msg/s offered{}: \
         the agent process that hosts it is the limit",
        match cap {
            Some(c) => format!("capacity {c:.0} msg/s"),
            None => "no capacity set".to_string(),
        },
        common::units::format_duration(sc.broker.latency),
        if waits.is_empty() { String::new() } else { format!(" (producers {})", waits.join(", ")) }
    ))
}

/// Consumer groups whose backlog grew through the measurement faster than
/// 2 % of their topic's offered rate (the consumers, or the broker's
/// dispatch, fall behind: not sustainable however good the latency so far).
fn growing_backlogs(sc: &Scenario, report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for c in &sc.consumers {
        let rows: Vec<_> = report
            .intervals
            .iter()
            .filter(|i| i.role == "consumer" && i.phase == "measure" && i.group == c.name)
            .collect();
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { continue };
        let dt = last.t_s - first.t_s;
        if dt <= 0.0 {
            continue;
        }
        let offered: f64 = report
            .groups
            .iter()
            .filter(|g| g.role == "producer" && g.topic == c.topic)
            .filter_map(|g| g.target_rate_msgs_per_s)
            .sum();
        let growth = (last.backlog as f64 - first.backlog as f64) / dt;
        if offered > 0.0 && growth > 0.02 * offered {
            out.push(format!(
                "backlog of `{}` grew {growth:.0} msg/s ({:.1}% of the offered {offered:.0} msg/s; limit 2%)",
                c.name,
                growth / offered * 100.0
            ));
        }
    }
    out
}

fn empty_latency() -> Latency {
    Latency { p95: Some(0.0), ..Latency::default() }
}

/// The scenario of one step: rates scaled to `target`, measured for
/// `step_duration`, judged by the search's SLOs.
pub fn step_scenario(sc: &Scenario, spec: &CeilingSpec, target: f64) -> Scenario {
    let mut s = sc.scaled_to(target);
    s.phases.duration = spec.step_duration;
    s.slo = spec.slo.clone();
    // The step's own report judges the client by the search's limits.
    s.slo.max_client_cpu = Some(spec.max_client_cpu);
    s.slo.max_client_lag = Some(spec.max_client_lag);
    s.faults.clear();
    s
}

/// Runs the search on `agents` agents and returns the report of the best
/// step (the last one when none passed) with `ceiling` filled in, to be
/// written by the caller. Verdict `pass` when a ceiling was found, `fail`
/// when even the start rate failed. `run_step(scenario, busy_retry)` runs
/// one step; `scenario_file` names the scenario in errors.
pub async fn search<F, Fut>(
    sc: Scenario,
    scenario_file: &Path,
    quiet: bool,
    agents: usize,
    mut run_step: F,
) -> Result<Report, CliError>
where
    F: FnMut(Scenario, Duration) -> Fut,
    Fut: Future<Output = Result<Step, CliError>>,
{
    let spec = sc.ceiling.clone().unwrap_or_else(|| default_ceiling(&sc.slo));
    if sc.producers.iter().any(|g| g.closed_loop()) {
        return Err(CliError::BadInput(format!(
            "{}: a ceiling search scales rates; `rate: max` groups have none",
            scenario_file.display()
        )));
    }
    let out = Console::new(quiet);
    out.line(&format!(
        "ceiling search: from {} msg/s up to {} msg/s, {} per step, precision {:.0}%, on {} agent(s)",
        fmt_count(spec.start),
        fmt_count(spec.max),
        common::units::format_duration(spec.step_duration),
        spec.precision * 100.0,
        agents
    ));
    let began = std::time::Instant::now();
    let mut search = Search::new(&spec);
    let mut steps: Vec<CeilingStep> = Vec::new();
    let mut best: Option<Report> = None;
    let mut last: Option<Report> = None;
    while let Some(target) = search.next_target() {
        let step_sc = step_scenario(&sc, &spec, target);
        // The agents free themselves a moment after the previous step.
        let busy_retry = if steps.is_empty() { Duration::ZERO } else { BUSY_RETRY };
        let ran = match run_step(step_sc.clone(), busy_retry).await {
            Ok(ran) => ran,
            // Stopped before the step's load ran: the steps so far.
            Err(CliError::Interrupted(why)) => match best.or(last) {
                Some(r) => return Ok(interrupted(r, None, steps, &out)),
                None => return Err(CliError::Interrupted(why)),
            },
            Err(e) => return Err(e),
        };
        if ran.report.verdict == "interrupted" {
            let base = best.or(last).unwrap_or_else(|| ran.report.clone());
            return Ok(interrupted(base, Some((target, ran.report)), steps, &out));
        }
        if ran.report.verdict == "incomplete" {
            let why = ran.report.notes.first().cloned().unwrap_or_else(|| "the step did not complete".into());
            return Err(CliError::CannotComplete(format!(
                "ceiling step at {} msg/s did not complete: {why}",
                fmt_count(target)
            )));
        }
        let (step, why) = judge_step(&step_sc, &ran.report, &ran.cpus, &spec);
        out.line(&step_line(steps.len() + 1, &step, &why));
        search.record(target, step.achieved, &step.verdict);
        if step.verdict == PASS && search.ceiling() <= step.achieved {
            best = Some(ran.report.clone());
        }
        steps.push(step);
        last = Some(ran.report);
    }
    let mut report = match best.or(last) {
        Some(r) => r,
        None => return Err(CliError::CannotComplete("the ceiling search ran no step".into())),
    };
    let ceiling = Ceiling { rate_msgs_per_s: search.ceiling(), bound_by: search.bound_by().into(), steps };
    let took = began.elapsed().as_secs_f64();
    report.verdict = if search.found() { "pass" } else { "fail" }.into();
    let summary = summary_line(&search, &ceiling, spec.start, took);
    report.notes.insert(0, summary.clone());
    report.ceiling = Some(ceiling);
    out.line(&summary);
    Ok(report)
}

/// The report of a search stopped by a signal: `base` (the best step so
/// far, else the last, else the interrupted step itself) with the steps
/// judged so far, verdict `interrupted`; `cut` is the step that was
/// running (its target and report), not judged.
fn interrupted(mut base: Report, cut: Option<(f64, Report)>, steps: Vec<CeilingStep>, out: &Console) -> Report {
    let signal = cut.as_ref().and_then(|(_, r)| r.interrupted.clone()).or_else(|| base.interrupted.clone());
    let line = format!(
        "ceiling search interrupted{}{} after {} judged step(s): no ceiling was established",
        signal.as_ref().map(|i| format!(" by {}", i.signal)).unwrap_or_default(),
        cut.as_ref().map(|(t, _)| format!(" during the step at {} msg/s", fmt_count(*t))).unwrap_or_default(),
        steps.len()
    );
    out.line(&line);
    let best = steps.iter().filter(|s| s.verdict == PASS).map(|s| s.achieved).fold(0.0, f64::max);
    base.ceiling = Some(Ceiling { rate_msgs_per_s: best, bound_by: "interrupted".into(), steps });
    base.verdict = "interrupted".into();
    base.interrupted = signal.or(Some(common::report::Interruption {
        signal: "stop request".into(),
        at_s: 0.0,
        phase: "between steps".into(),
    }));
    base.notes.insert(0, line);
    base
}

/// The console line of one finished step (`n` from 1) and why it was judged so.
fn step_line(n: usize, step: &CeilingStep, why: &str) -> String {
    format!(
        "  step {:>2}: target {:>9} msg/s  achieved {:>9} msg/s  e2e p99 {:>9}  {}{}",
        n,
        fmt_count(step.target),
        fmt_count(step.achieved),
        fmt_us(step.latency_us.p99),
        step.verdict,
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    )
}

/// The search's outcome in one line (the report's first note): the
/// ceiling and what bound it, or that even the `start` rate failed.
fn summary_line(search: &Search, ceiling: &Ceiling, start: f64, took_s: f64) -> String {
    if ceiling.bound_by == SEARCH_MAX {
        format!(
            "ceiling: at least {} msg/s: every step up to ceiling.max ({} msg/s) passed; raise ceiling.max \
             ({} steps in {took_s:.0} s)",
            fmt_count(ceiling.rate_msgs_per_s),
            fmt_count(search.max),
            ceiling.steps.len()
        )
    } else if search.found() {
        format!(
            "ceiling: {} msg/s, bound by the {} ({} steps in {took_s:.0} s){}",
            fmt_count(ceiling.rate_msgs_per_s),
            ceiling.bound_by,
            ceiling.steps.len(),
            if ceiling.bound_by == "client" { "; the generator was the limit: add agents" } else { "" }
        )
    } else {
        format!(
            "ceiling: not found: even the start rate ({} msg/s) broke the SLOs{}",
            fmt_count(start),
            if ceiling.bound_by == "client" { " (the generator was the limit: add agents)" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Producers `p1` (1000 msg/s in all, `producer` adds fields) and
    /// consumers `c1` on topic `t` of `broker` (a flow mapping's body),
    /// 1 s warmup, 3 s measured.
    fn scenario(broker: &str, producer: &str) -> Scenario {
        common::scenario::load_str(
            &format!(
                "name: s\nbroker: {{{broker}}}\ntopics: [{{name: t}}]\n\
                 producers: [{{name: p1, topic: t, total_rate: 1000{producer}}}]\n\
                 consumers: [{{name: c1, topic: t}}]\nphases: {{warmup: 1s, duration: 3s}}\n"
            ),
            "s.yaml",
            &[],
        )
        .expect("scenario")
    }

    /// The sample report, failed on one SLO check.
    fn failed_on(name: &str, limit: &str, actual: &str) -> Report {
        let mut report = crate::testutil::sample_report();
        report.verdict = "fail".into();
        report.slo = vec![common::report::SloCheck {
            name: name.into(),
            limit: limit.into(),
            actual: actual.into(),
            pass: false,
        }];
        report
    }

    #[test]
    fn a_growing_backlog_fails_the_step() {
        let sc = scenario("kind: memory", "");
        let mut report = crate::testutil::sample_report();
        report.verdict = "pass".into();
        report.slo.retain(|c| c.pass);
        let spec = spec(1000.0, 1e6, 0.05);
        assert_eq!(judge_step(&sc, &report, &[2, 2], &spec).0.verdict, PASS);
        // c1 falls behind by 100 msg/s (10 % of the offered 1000) through the measurement.
        let mut backlog = 0;
        for row in report.intervals.iter_mut().filter(|r| r.group == "c1" && r.phase == "measure") {
            backlog += 100;
            row.backlog = backlog;
        }
        let (step, why) = judge_step(&sc, &report, &[2, 2], &spec);
        assert_eq!(step.verdict, FAIL);
        assert!(why.contains("backlog of `c1` grew 100 msg/s"), "{why}");
    }

    #[test]
    fn a_memory_broker_failing_far_below_its_capacity_is_client_bound() {
        let sc = |cap: &str| scenario(&format!("kind: memory{cap}"), "");
        // The sample report failed a latency SLO at 1000 msg/s offered.
        let mut report = failed_on("p99_e2e c1", "1.00ms", "9.00ms");
        let spec = spec(1000.0, 1e6, 0.05);
        for cap in [", capacity_msgs_per_s: 1000000", ""] {
            let (step, why) = judge_step(&sc(cap), &report, &[2, 2], &spec);
            assert_eq!(step.verdict, CLIENT_BOUND, "{cap}: {why}");
            assert!(why.contains("the agent process that hosts it is the limit"), "{why}");
        }
        // At its capacity, the broker's own queue explains the failure.
        assert_eq!(judge_step(&sc(", capacity_msgs_per_s: 1000"), &report, &[2, 2], &spec).0.verdict, FAIL);
        // A loss is the broker's doing (drop_every and the like), not the process's.
        report.slo[0].name = "max_loss".into();
        assert_eq!(judge_step(&sc(""), &report, &[2, 2], &spec).0.verdict, FAIL);
    }

    /// A failed step on a Pulsar broker (no memory-broker rule): `p1` at
    /// 1000 msg/s fell `lag_ms` behind, its producers waiting for room in
    /// flight `wait_percent` of the 3-s measurement; agents at `cpu` % of
    /// one core each (2 CPUs each).
    fn behind(lag_ms: f64, unsent: u64, wait_percent: f64, cpu: f64) -> (CeilingStep, String) {
        let sc = scenario("kind: pulsar, url: 'pulsar://127.0.0.1:6650'", ", count: 2, max_in_flight: 100");
        let mut report = failed_on("min_rate_ratio p1", "0.98", "0.60");
        for g in report.groups.iter_mut().filter(|g| g.name == "p1") {
            g.max_lag_ms = lag_ms;
            g.unsent = unsent;
            g.in_flight_wait_percent = Some(wait_percent);
        }
        for a in &mut report.agents {
            a.cpu_percent = cpu;
        }
        judge_step(&sc, &report, &[2, 2], &spec(1000.0, 1e6, 0.05))
    }

    #[test]
    fn behind_with_the_window_full_most_of_the_time_is_the_brokers_limit() {
        let (step, why) = behind(800.0, 0, 93.0, 50.0);
        assert_eq!(step.verdict, FAIL, "{why}");
        assert!(why.contains("min_rate_ratio p1 0.60 (limit 0.98)"), "{why}");
        assert!(why.contains("producers `p1` fell 800 ms behind"), "{why}");
        assert!(why.contains("waiting for room in flight 93% of the measurement"), "{why}");
        // Unsent sends at the end, the window full throughout: the same.
        assert_eq!(behind(0.0, 40, 99.0, 50.0).0.verdict, FAIL);
    }

    #[test]
    fn behind_with_room_in_flight_is_client_bound() {
        let (step, why) = behind(800.0, 0, 2.0, 50.0);
        assert_eq!(step.verdict, CLIENT_BOUND, "{why}");
        assert!(why.contains("waited for room in flight only 2% of the measurement"), "{why}");
        assert!(why.contains("the generator could not keep up"), "{why}");
        assert_eq!(behind(0.0, 40, 0.0, 50.0).0.verdict, CLIENT_BOUND);
        // Within the lag limit (100 ms) and nothing unsent: not judged behind.
        assert_eq!(behind(80.0, 0, 0.0, 50.0).0.verdict, FAIL);
    }

    #[test]
    fn a_short_broker_stall_that_accounts_for_the_lag_is_the_brokers() {
        // 15 % of 3 s: 450 ms of waiting per producer, for a lag of 800 ms:
        // the waits explain more than half of it.
        assert_eq!(behind(800.0, 0, 15.0, 50.0).0.verdict, FAIL);
        // 5 %: 150 ms of waiting does not explain 800 ms of lag.
        assert_eq!(behind(800.0, 0, 5.0, 50.0).0.verdict, CLIENT_BOUND);
    }

    #[test]
    fn the_window_full_with_an_agent_over_its_cpu_limit_is_client_bound() {
        // 195 % of one core on 2 CPUs: 97.5 %, over the 90 % limit.
        let (step, why) = behind(800.0, 0, 93.0, 195.0);
        assert_eq!(step.verdict, CLIENT_BOUND, "{why}");
        assert!(
            why.contains("waiting for room in flight 93% of the measurement, with an agent over its CPU limit"),
            "{why}"
        );
        assert!(why.contains("a saturated process takes its acks late"), "{why}");
        assert!(why.contains("used 98% of its 2 CPU(s) (limit 90%)"), "{why}");
    }

    #[test]
    fn on_the_memory_broker_a_full_window_is_the_process_unless_its_latency_explains_it() {
        let sc = |broker: &str, max_in_flight: u32| {
            scenario(&format!("kind: memory{broker}"), &format!(", count: 2, max_in_flight: {max_in_flight}"))
        };
        let mut report = failed_on("min_rate_ratio p1", "0.98", "0.60");
        for g in report.groups.iter_mut().filter(|g| g.name == "p1") {
            g.max_lag_ms = 800.0;
            g.in_flight_wait_percent = Some(91.0);
        }
        let spec = spec(1000.0, 1e6, 0.05);
        // 500 msg/s per producer, acks due at once: ~0 in flight expected, so
        // a full window is the process acknowledging late.
        let (step, why) = judge_step(&sc(", capacity_msgs_per_s: 1000000", 100), &report, &[2, 2], &spec);
        assert_eq!(step.verdict, CLIENT_BOUND, "{why}");
        assert!(why.contains("`p1` waited for room in flight 91% of the measurement"), "{why}");
        assert!(why.contains("the agent process that hosts it is the limit"), "{why}");
        // An added latency of 100 ms holds 50 sends of each producer in
        // flight, max_in_flight 10: the configured broker paces them.
        let (step, why) = judge_step(&sc(", latency: 100ms", 10), &report, &[2, 2], &spec);
        assert_eq!(step.verdict, FAIL, "{why}");
        assert!(why.contains("the broker's acks paced them"), "{why}");
    }

    fn spec(start: f64, max: f64, precision: f64) -> CeilingSpec {
        let mut s = default_ceiling(&Default::default());
        s.start = start;
        s.max = max;
        s.precision = precision;
        s.step_duration = Duration::from_secs(1);
        s
    }

    /// Runs the search against a broker that holds up to `cap`, with a
    /// client that cannot go past `client`.
    fn simulate(spec: &CeilingSpec, cap: f64, client: f64) -> (Search, Vec<f64>) {
        let mut s = Search::new(spec);
        let mut tried = Vec::new();
        while let Some(t) = s.next_target() {
            tried.push(t);
            assert!(tried.len() < 100, "the search ends");
            let v = if t > client {
                CLIENT_BOUND
            } else if t <= cap {
                PASS
            } else {
                FAIL
            };
            s.record(t, t.min(cap), v);
        }
        (s, tried)
    }

    #[test]
    fn doubles_then_bisects_to_the_precision() {
        let (s, tried) = simulate(&spec(1000.0, 1e6, 0.05), 50_000.0, f64::INFINITY);
        assert_eq!(&tried[..7], &[1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 64000.0]);
        assert!(s.found());
        let c = s.ceiling();
        assert!((c - 50_000.0).abs() / 50_000.0 <= 0.05, "{c}");
        assert_eq!(s.bound_by(), "broker");
    }

    #[test]
    fn a_client_bound_step_is_never_the_broker_ceiling() {
        let (s, _) = simulate(&spec(1000.0, 1e6, 0.05), 50_000.0, 20_000.0);
        assert_eq!(s.bound_by(), "client");
        assert!(s.ceiling() <= 20_000.0);
    }

    #[test]
    fn start_failing_finds_nothing_and_max_caps_the_search() {
        let (s, tried) = simulate(&spec(1000.0, 1e6, 0.05), 500.0, f64::INFINITY);
        assert!(!s.found());
        assert_eq!(tried, vec![1000.0]);
        let (s, tried) = simulate(&spec(1000.0, 5000.0, 0.05), 1e9, f64::INFINITY);
        assert_eq!(tried, vec![1000.0, 2000.0, 4000.0, 5000.0]);
        assert_eq!(s.ceiling(), 5000.0);
        // Every step passed up to max: a lower bound, not the broker's ceiling.
        assert_eq!(s.bound_by(), SEARCH_MAX);
        // A step failing at max: the broker's (bisecting below it).
        let (s, _) = simulate(&spec(1000.0, 5000.0, 0.05), 4500.0, f64::INFINITY);
        assert_eq!(s.bound_by(), "broker");
    }
}
