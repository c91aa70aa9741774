//! Whether a run's figures were bounded by the client (the generator)
//! rather than the broker: an agent over its CPU limit, or a producer group
//! behind its schedule that had room in flight (or waited for it with an
//! agent saturated). Every run is judged so (`report.client_bound`); a
//! ceiling step is judged by the same functions (`crate::ceiling`), with
//! the search's own limits. Imports nothing of the crate.

use std::time::Duration;

use common::report::{AgentReport, ClientBound, ClientBoundReason, GroupReport};

/// A producer group behind its schedule was held back by the broker when
/// its producers spent at least this share of the measurement due to send
/// but waiting for room in flight (`groups[].in_flight_wait_percent`).
///
/// Why one half: a producer behind its schedule is due all the time it is
/// behind, and spends that time either waiting for an ack to free a slot
/// (the broker paces it), or sending and taking acks, or waiting for the
/// runtime to run it (both the generator's). Against a broker at its limit
/// the window stays full once it has filled, and a send takes microseconds
/// against milliseconds for an ack, so the share heads for 100 % (99.8 % in
/// the engine's test against acks held 100 ms); a generator short of
/// CPU rarely has a full window and the share stays near 0. One half sits
/// far from both and leaves room for the window to take part of the step
/// to fill. A short stall of the broker can put a producer behind by more
/// than the lag limit while filling only a sliver of the step, so waits
/// that account for at least half of the group's largest lag also count
/// (see [`window_bound`]).
pub const WINDOW_BOUND_SHARE: f64 = 0.5;

/// What counts as bounded by the client: `slo.max_client_cpu` and
/// `slo.max_client_lag` (a ceiling search: `ceiling.max_client_*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Share of an agent's CPUs (0..=1).
    pub cpu: f64,
    pub lag: Duration,
}

/// Whether producer group `g`'s lag is the broker's: its producers waited
/// for room in flight most of the measurement, or (per producer, on
/// average) for at least half as long as the group's largest lag.
/// Returns the measured wait share (0..=1) with the verdict.
pub fn window_bound(g: &GroupReport, measured_s: f64) -> (bool, f64) {
    let share = g.in_flight_wait_percent.unwrap_or(0.0) / 100.0;
    let waited_ms = share * measured_s * 1e3;
    let bound = share >= WINDOW_BOUND_SHARE || (g.max_lag_ms > 0.0 && waited_ms >= 0.5 * g.max_lag_ms);
    (bound, share)
}

/// What the judgement found: the reasons the client bounded the figures,
/// and the producer groups behind their schedule that the broker's acks
/// paced (one line each: not the client's doing).
pub struct Judged {
    pub client: Vec<ClientBoundReason>,
    pub broker_paced: Vec<String>,
}

impl Judged {
    /// `report.client_bound`: None when nothing bounded the figures.
    pub fn client_bound(&self) -> Option<ClientBound> {
        (!self.client.is_empty()).then(|| ClientBound {
            summary: self.client.iter().map(|r| r.detail.as_str()).collect::<Vec<_>>().join("; "),
            reasons: self.client.clone(),
        })
    }
}

/// Judges a run from its agents (with `cpus`, each one's CPU count, in the
/// same order) and groups, measured for `measured_s` seconds. CPU reasons
/// first, one per agent; then one per producer group behind its schedule.
pub fn judge(agents: &[AgentReport], cpus: &[u32], groups: &[GroupReport], limits: Limits, measured_s: f64) -> Judged {
    let mut client = hot_agents(agents, cpus, limits.cpu);
    let hot: Vec<String> = client.iter().flat_map(|r| r.agents.clone()).collect();
    let (behind, broker_paced) = behind_schedule(groups, agents, &hot, limits, measured_s);
    client.extend(behind);
    Judged { client, broker_paced }
}

/// Agents above the CPU limit (a share of their CPUs, over the
/// measurement where known, else over the run), one reason each.
fn hot_agents(agents: &[AgentReport], cpus: &[u32], limit: f64) -> Vec<ClientBoundReason> {
    agents
        .iter()
        .zip(cpus)
        .filter_map(|(a, n)| {
            let (cpu, when) = match a.measure_cpu_percent {
                Some(m) => (m, " during the measurement"),
                None => (a.cpu_percent, ""),
            };
            let share = cpu / 100.0 / f64::from((*n).max(1));
            (share > limit).then(|| ClientBoundReason {
                criterion: "cpu".into(),
                agents: vec![a.id.clone()],
                group: None,
                value: share * 100.0,
                limit: limit * 100.0,
                unit: "%".into(),
                over_limit_percent: None,
                detail: format!(
                    "agent {} used {:.0}% of its {n} CPU(s){when} (limit {:.0}%)",
                    a.id,
                    share * 100.0,
                    limit * 100.0
                ),
            })
        })
        .collect()
}

/// Producer groups behind their schedule (further than the lag limit, or
/// with sends left unsent), judged by their wait for room in flight:
/// window-bound ([`window_bound`]) is the broker's pace unless an agent is
/// in `hot` (a saturated process takes its acks late); not window-bound,
/// the generator could not keep up. The client's reasons, and the lines
/// of the groups the broker paced.
fn behind_schedule(
    groups: &[GroupReport],
    agents: &[AgentReport],
    hot: &[String],
    limits: Limits,
    measured_s: f64,
) -> (Vec<ClientBoundReason>, Vec<String>) {
    let lag_limit_ms = limits.lag.as_secs_f64() * 1e3;
    let mut client = Vec::new();
    let mut broker_paced = Vec::new();
    for g in groups.iter().filter(|g| g.role == "producer") {
        if !(g.max_lag_ms > lag_limit_ms || g.unsent > 0) {
            continue;
        }
        let (bound, share) = window_bound(g, measured_s);
        let behind =
            format!("producers `{}` fell {:.0} ms behind their schedule ({} unsent)", g.name, g.max_lag_ms, g.unsent);
        let reason = |criterion: &str, agents: Vec<String>, value: f64, limit: f64, unit: &str, detail: String| {
            ClientBoundReason {
                criterion: criterion.into(),
                agents,
                group: Some(g.name.clone()),
                value,
                limit,
                unit: unit.into(),
                over_limit_percent: None,
                detail,
            }
        };
        if !bound {
            let detail = format!(
                "{behind} but waited for room in flight only {:.0}% of the measurement: the generator could not keep up",
                share * 100.0
            );
            client.push(reason("lag", lagging(agents, lag_limit_ms), g.max_lag_ms, lag_limit_ms, "ms", detail));
        } else if !hot.is_empty() {
            let detail = format!(
                "{behind} waiting for room in flight {:.0}% of the measurement, with an agent over its CPU limit: \
                 a saturated process takes its acks late",
                share * 100.0
            );
            let limit = WINDOW_BOUND_SHARE * 100.0;
            client.push(reason("in_flight_wait", hot.to_vec(), share * 100.0, limit, "%", detail));
        } else {
            broker_paced.push(format!(
                "{behind} waiting for room in flight {:.0}% of the measurement: the broker's acks paced them",
                share * 100.0
            ));
        }
    }
    (client, broker_paced)
}

/// A "cpu" reason's agent spent `over` of the measurement's `of`
/// intervals over the limit: said in the reason and its line.
pub fn over_limit_for(r: &mut ClientBoundReason, over: usize, of: usize) {
    r.over_limit_percent = Some(over as f64 / of.max(1) as f64 * 100.0);
    r.detail.push_str(&format!(", over it in {over} of the measurement's {of} intervals"));
}

/// The agents whose producers fell behind by more than `limit_ms`; every
/// agent with producers when none did (sends left unsent at the end).
fn lagging(agents: &[AgentReport], limit_ms: f64) -> Vec<String> {
    let over: Vec<String> =
        agents.iter().filter(|a| a.producers > 0 && a.max_lag_ms > limit_ms).map(|a| a.id.clone()).collect();
    if !over.is_empty() {
        return over;
    }
    agents.iter().filter(|a| a.producers > 0).map(|a| a.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { cpu: 0.9, lag: Duration::from_millis(100) };

    /// The sample report's agents and groups, its producer groups `lag_ms`
    /// behind having waited `wait_percent` of 3 s for room in flight,
    /// agent-1's producers `lag_ms` behind too, agents at `cpu` % of one
    /// core each (2 CPUs each).
    fn judged(lag_ms: f64, wait_percent: f64, cpu: f64) -> Judged {
        let mut r = crate::testutil::sample_report();
        for g in r.groups.iter_mut().filter(|g| g.role == "producer") {
            g.max_lag_ms = lag_ms;
            g.in_flight_wait_percent = Some(wait_percent);
        }
        r.agents[1].max_lag_ms = lag_ms;
        for a in &mut r.agents {
            a.cpu_percent = cpu;
        }
        judge(&r.agents, &[2, 2], &r.groups, LIMITS, 3.0)
    }

    #[test]
    fn cpu_is_judged_over_the_measurement_where_known() {
        let mut r = crate::testutil::sample_report();
        for a in &mut r.agents {
            a.cpu_percent = 120.0; // 60 % of 2 CPUs over the run, setup and drain included
        }
        assert!(judge(&r.agents, &[2, 2], &r.groups, LIMITS, 3.0).client.is_empty());
        r.agents[1].measure_cpu_percent = Some(196.0);
        let j = judge(&r.agents, &[2, 2], &r.groups, LIMITS, 3.0);
        assert_eq!(j.client.len(), 1, "{:?}", j.client);
        assert_eq!((j.client[0].agents.as_slice(), j.client[0].value), (&["agent-1".to_string()][..], 98.0));
        assert_eq!(j.client[0].detail, "agent agent-1 used 98% of its 2 CPU(s) during the measurement (limit 90%)");
        let mut r = j.client[0].clone();
        over_limit_for(&mut r, 8, 10);
        assert_eq!(r.over_limit_percent, Some(80.0));
        assert!(r.detail.ends_with("(limit 90%), over it in 8 of the measurement's 10 intervals"), "{}", r.detail);
    }

    #[test]
    fn a_comfortable_run_is_not_bound_by_the_client() {
        let j = judged(20.0, 0.0, 50.0);
        assert!(j.client.is_empty() && j.broker_paced.is_empty());
        assert_eq!(j.client_bound(), None);
    }

    #[test]
    fn behind_with_room_in_flight_names_the_lagging_agent_and_the_lag() {
        let j = judged(2300.0, 1.0, 50.0);
        let lag: Vec<&ClientBoundReason> = j.client.iter().filter(|r| r.criterion == "lag").collect();
        assert!(!lag.is_empty() && lag.len() == j.client.len(), "{:?}", j.client);
        for r in lag {
            assert_eq!(r.agents, ["agent-1"], "only the agent whose producers lagged");
            assert_eq!((r.value, r.limit, r.unit.as_str()), (2300.0, 100.0, "ms"));
            assert!(r.detail.contains("the generator could not keep up"), "{}", r.detail);
        }
        let bound = j.client_bound().expect("bound");
        assert_eq!(bound.reasons.len(), j.client.len());
        assert!(bound.summary.starts_with("producers `"), "{}", bound.summary);
    }

    #[test]
    fn waiting_for_acks_is_the_brokers_pace_unless_an_agent_is_saturated() {
        let j = judged(2300.0, 95.0, 50.0);
        assert!(j.client.is_empty(), "{:?}", j.client);
        assert!(
            j.broker_paced.iter().all(|l| l.contains("the broker's acks paced them")) && !j.broker_paced.is_empty()
        );
        // 190 % of one core on 2 CPUs: 95 %, over the 90 % limit.
        let j = judged(2300.0, 95.0, 190.0);
        let cpu: Vec<&ClientBoundReason> = j.client.iter().filter(|r| r.criterion == "cpu").collect();
        assert_eq!(cpu.len(), 2, "one per agent: {:?}", j.client);
        assert_eq!((cpu[0].agents.as_slice(), cpu[0].value, cpu[0].limit), (&["agent-0".to_string()][..], 95.0, 90.0));
        let waits: Vec<&ClientBoundReason> = j.client.iter().filter(|r| r.criterion == "in_flight_wait").collect();
        assert!(!waits.is_empty(), "{:?}", j.client);
        assert_eq!(waits[0].agents, ["agent-0", "agent-1"], "the saturated agents");
        assert_eq!(waits[0].value, 95.0);
        assert!(j.broker_paced.is_empty());
    }
}
