//! Merges what the agents sent into one report. While the run runs:
//! interval reports merged by index ([`intervals`]). At the end,
//! [`build`], in named steps:
//! - [`groups`]: whole-run group stats from the final reports, and each
//!   group's report;
//! - [`delivery`]: delivery accounting per subscription (range sets unioned
//!   across consumers and agents, compared with what producers had
//!   acknowledged) and the totals;
//! - [`consumers`]: who received what per subscription (each consumer's
//!   share, the spread, failover switches, keys on two consumers at once);
//! - [`agents`]: one row per agent; [`coverage`]: what lost agents left out;
//! - [`series`]: the time series and backlogs; [`slo`]: the SLO checks;
//! - [`faults`]: spans with send or receive errors, and the recovery after;
//! - [`client`]: whether the client (the generator) bounded the figures
//!   (also the ceiling search's judgement of a step);
//! - then the verdict and its notes (here).
//!
//! [`input`] holds what the steps take; [`stats`] the figures from
//! histograms. This file may import all of them; they import only their
//! siblings (each says which), never this file. May import `report::format`.

mod agents;
pub mod client;
mod consumers;
mod coverage;
mod delivery;
mod faults;
mod groups;
mod input;
mod intervals;
mod series;
mod slo;
mod stats;

use common::report::{
    AgentReport, BrokerInfo, ClientBound, GroupReport, PhasesInfo, Report, SloCheck, SubscriptionReport,
    REPORT_SCHEMA_VERSION,
};

pub use input::{pace_share, AgentOutcome, PaceMark, ReportInput};
pub use intervals::{read_ahead, IntervalMerge, IntervalTotals, Intervals};
pub use series::{phase_name, rows_of, LiveRows};
pub use slo::judge;
pub use stats::latency;

use delivery::Delivery;
use input::{Ctx, Lost};

/// The report of a run: every step in order (see the module doc).
pub fn build(input: ReportInput<'_>) -> Report {
    let sc = input.scenario;
    let cx = Ctx::new(&input);
    let mut notes = input.notes.clone();
    let (pgroups, cgroups) = groups::whole_run(input.agents, &mut notes);
    let lost = Lost::of(input.agents);
    let delivery = Delivery::collect(input.agents);
    let mut totals = delivery.producer_totals(&pgroups);
    let backlogs = series::group_backlogs(sc, input.intervals, input.start_ns);
    let (mut subscriptions, excluded_received, lost_by_interval) =
        delivery.subscriptions(&cx, &lost, &input.stalled, &backlogs, &mut totals);
    consumers::fill(&mut subscriptions, input.agents, input.start_ns, &mut notes);
    let (groups, histograms) = groups::reports(&cx, &pgroups, &cgroups, &lost);
    let agents = agents::rows(input.agents, cx.dur_s, input.start_ns, cx.window);
    let coverage = coverage::coverage(sc, input.agents, &lost, (excluded_received, input.start_ns), &mut notes);
    let intervals = series::interval_rows(sc, input.intervals, input.start_ns, &backlogs, &lost_by_interval);
    let client_bound = client_bound(&input, &agents, &groups, (cx.dur_s, cx.window), &mut notes);
    let mut slo = judge(sc, &groups, &totals, &subscriptions);
    slo.extend(slo::client_bound_check(sc, client_bound.as_ref()));
    let faults = faults::windows(sc, &intervals);
    notes.extend(faults.iter().map(faults::note));
    let verdict = verdict(&input, &slo, &subscriptions, &mut notes);
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run_id: input.run_id.into(),
        scenario: sc.name.clone(),
        scenario_file: input.scenario_file.into(),
        tool_version: common::VERSION.into(),
        started_at: input.started_at,
        verdict: verdict.into(),
        broker: BrokerInfo { kind: sc.broker.kind.as_str().into(), url: sc.broker.url.clone() },
        phases: PhasesInfo {
            warmup_s: sc.phases.warmup.as_secs_f64(),
            duration_s: sc.phases.duration.as_secs_f64(),
            cooldown_s: sc.phases.cooldown.as_secs_f64(),
            drain_s: input.drain_s,
            drain_timeout_s: sc.phases.drain_timeout.as_secs_f64(),
            drain_timed_out: input.drain_timed_out,
            report_interval_s: sc.report_interval.as_secs_f64(),
        },
        agents,
        totals,
        groups,
        subscriptions,
        slo,
        histograms,
        intervals,
        notes,
        ceiling: None,
        coordinator: None,
        coverage,
        faults,
        interrupted: None,
        events: input.events.to_vec(),
        percentiles: sc.report.percentiles.clone(),
        client_bound,
    }
}

/// Whether the client bounded the run's figures, by the scenario's
/// `slo.max_client_*` limits, over the measurement (`dur_s` seconds,
/// `window` on the coordinator's clock): said first in the notes, with how
/// much of the measurement each agent over its CPU limit spent over it;
/// producer groups the broker's acks paced are said last.
fn client_bound(
    input: &ReportInput<'_>,
    agents: &[AgentReport],
    groups: &[GroupReport],
    (dur_s, window): (f64, (i64, i64)),
    notes: &mut Vec<String>,
) -> Option<ClientBound> {
    let slo = &input.scenario.slo;
    let cpus: Vec<u32> = input.agents.iter().map(|a| a.hello.cpus).collect();
    let limits = client::Limits { cpu: slo.client_cpu_limit(), lag: slo.client_lag_limit() };
    let mut judged = client::judge(agents, &cpus, groups, limits, dur_s);
    for r in judged.client.iter_mut().filter(|r| r.criterion == "cpu") {
        let Some(i) = agents.iter().position(|a| r.agents.first() == Some(&a.id)) else { continue };
        let limit = limits.cpu * 100.0 * f64::from(cpus[i].max(1));
        if let Some((over, of)) = input.agents[i].interval_totals.cpu_over_in(window, limit) {
            client::over_limit_for(r, over, of);
        }
    }
    let bound = judged.client_bound();
    if let Some(b) = &bound {
        notes.insert(0, format!("figures bounded by the client: {}", b.summary));
    }
    notes.extend(judged.broker_paced);
    bound
}

/// The run's verdict — `incomplete` (it could not complete, or no agent
/// sent a final report), `pass` (every SLO held) or `fail` — with the notes
/// that explain it: why it is incomplete first, a drain that timed out and
/// stalled subscriptions last.
fn verdict(
    input: &ReportInput<'_>,
    slo: &[SloCheck],
    subscriptions: &[SubscriptionReport],
    notes: &mut Vec<String>,
) -> &'static str {
    let nothing_judged = !input.agents.iter().any(|a| a.final_report.is_some());
    let verdict = if input.incomplete.is_some() {
        "incomplete"
    } else if nothing_judged {
        notes.insert(0, "nothing could be judged: no agent sent a final report".into());
        "incomplete"
    } else if slo.iter().all(|c| c.pass) {
        "pass"
    } else {
        "fail"
    };
    if let Some(why) = &input.incomplete {
        notes.insert(0, format!("the run could not complete: {why}"));
    }
    if input.drain_timed_out {
        notes.push(format!(
            "drain timed out after {:.1}s with messages still missing",
            input.scenario.phases.drain_timeout.as_secs_f64()
        ));
    }
    for s in subscriptions.iter().filter(|s| s.stalled) {
        notes.push(format!(
            "subscription `{}` on `{}` stalled: it stopped receiving before the producers stopped, and {} acknowledged messages never arrived",
            s.subscription, s.topic, s.lost
        ));
    }
    verdict
}
