//! The agent's Prometheus metrics (`agent --metrics ADDR`): cumulative
//! counters per group, and the last interval's rates and latency quantiles.
//!
//! They are fed by the run's aggregator from the interval reports it builds,
//! once per interval; the per-message path never touches them. The HTTP
//! handler reads the same snapshot under a mutex held for microseconds.
//! Counters live as long as the agent process (a group seen in an earlier
//! run keeps its series), so they only ever go up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::metrics::{self, Exposition, GroupKey, GroupMetrics, Groups, IntervalGauges, Kind, Role};
use common::scenario::Scenario;
use common::stats::GroupPhases;

#[derive(Clone, Default)]
pub struct AgentMetrics {
    inner: Arc<Mutex<State>>,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentMetrics")
    }
}

#[derive(Default)]
struct State {
    groups: Groups,
    /// The run in progress, if any.
    run_id: Option<String>,
    runs: u64,
    intervals: u64,
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        AgentMetrics::default()
    }

    /// A run started: every group of this agent's shard gets its series
    /// (counters at their earlier value or 0), with this agent's share of the
    /// target rate.
    pub fn run_started(&self, run_id: &str, sc: &Scenario, target_milli: &HashMap<usize, u64>) {
        let mut st = metrics::lock(&self.inner);
        st.run_id = Some(run_id.to_string());
        st.runs += 1;
        for g in st.groups.values_mut() {
            g.interval = None;
            g.target_rate = None;
        }
        for (i, milli) in target_milli {
            if let Some(k) = GroupKey::of(sc, Role::Producer, *i) {
                st.groups.entry(k).or_default().target_rate = Some(*milli as f64 / 1000.0);
            }
        }
    }

    /// One interval of this agent, `secs` long, per group index.
    pub fn interval(
        &self,
        sc: &Scenario,
        secs: f64,
        producers: &HashMap<usize, GroupPhases>,
        consumers: &HashMap<usize, GroupPhases>,
    ) {
        let mut st = metrics::lock(&self.inner);
        st.intervals += 1;
        for g in st.groups.values_mut() {
            // A group with no report this interval did nothing in it.
            if g.interval.is_some() || g.target_rate.is_some() {
                g.interval = Some(IntervalGauges::default());
            }
        }
        for (role, map) in [(Role::Producer, producers), (Role::Consumer, consumers)] {
            for (i, s) in map {
                let Some(k) = GroupKey::of(sc, role, *i) else { continue };
                let g: &mut GroupMetrics = st.groups.entry(k).or_default();
                g.counters.add(&s.warmup);
                g.counters.add(&s.measure);
                g.interval = Some(IntervalGauges::of(role, s, secs, &sc.report.percentiles));
            }
        }
    }

    /// The run ended: rates and latencies no longer apply.
    pub fn run_ended(&self) {
        let mut st = metrics::lock(&self.inner);
        st.run_id = None;
        for g in st.groups.values_mut() {
            g.interval = None;
            g.target_rate = None;
        }
    }

    pub fn render(&self, agent_id: &str) -> String {
        let st = metrics::lock(&self.inner);
        let mut e = Exposition::new();
        e.family("loadgen_agent_info", Kind::Gauge, "This agent: id and version.");
        e.sample("loadgen_agent_info", &[("agent", agent_id), ("version", common::VERSION)], 1.0);
        e.family("loadgen_run_active", Kind::Gauge, "1 while a run is in progress on this agent.");
        let run = st.run_id.as_deref().unwrap_or("");
        e.sample("loadgen_run_active", &[("run_id", run)], if st.run_id.is_some() { 1.0 } else { 0.0 });
        e.family("loadgen_runs_total", Kind::Counter, "Runs this agent has started.");
        e.sample_u64("loadgen_runs_total", &[], st.runs);
        e.family("loadgen_intervals_total", Kind::Counter, "Interval reports this agent has built.");
        e.sample_u64("loadgen_intervals_total", &[], st.intervals);
        metrics::write_groups(&mut e, &st.groups);
        e.finish()
    }

    /// The renderer for [`common::metrics::serve`].
    pub fn renderer(&self, agent_id: String) -> metrics::Render {
        let me = self.clone();
        Arc::new(move || me.render(&agent_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accumulate_across_intervals_and_runs() {
        let sc = common::scenario::load_str(
            "name: m\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
             producers: [{name: pubs, topic: t, count: 2, rate: 500}]\n\
             consumers: [{name: subs, topic: t, subscription: s1}]\n\
             phases: {duration: 10s}\n",
            "m.yaml",
            &[],
        )
        .expect("valid");
        let m = AgentMetrics::new();
        let mut targets = HashMap::new();
        targets.insert(0usize, 500_000u64);
        let mut p = GroupPhases::default();
        p.warmup.sent = 7;
        p.measure.sent = 100;
        p.measure.acked = 100;
        p.measure.window_wait_ns = 250_000_000;
        p.measure.response.record_ns(2_000_000);
        let mut c = GroupPhases::default();
        c.measure.received = 98;
        c.measure.service.record_ns(3_000_000);
        let producers: HashMap<usize, GroupPhases> = [(0, p)].into_iter().collect();
        let consumers: HashMap<usize, GroupPhases> = [(0, c)].into_iter().collect();
        for run in ["r1", "r2"] {
            m.run_started(run, &sc, &targets);
            m.interval(&sc, 1.0, &producers, &consumers);
            m.interval(&sc, 1.0, &producers, &consumers);
        }
        let text = m.render("a1");
        let s = common::metrics::parse(&text).expect("parses");
        let v = |name: &str| common::metrics::sum(&s, name, &[]);
        assert_eq!(v("loadgen_messages_sent_total"), 4.0 * 107.0, "{text}");
        assert_eq!(v("loadgen_messages_acked_total"), 400.0);
        assert_eq!(v("loadgen_in_flight_wait_seconds_total"), 1.0, "4 intervals of 0.25 s: {text}");
        assert_eq!(v("loadgen_messages_received_total"), 392.0);
        assert_eq!(v("loadgen_publish_rate_msgs_per_second"), 100.0);
        assert_eq!(v("loadgen_target_publish_rate_msgs_per_second"), 500.0);
        assert_eq!(v("loadgen_run_active"), 1.0);
        let e2e =
            common::metrics::sum(&s, "loadgen_e2e_latency_seconds", &[("quantile", "0.99"), ("subscription", "s1")]);
        assert!((e2e - 0.003).abs() < 0.0001, "{text}");
        assert!(
            text.contains("loadgen_messages_sent_total{group=\"pubs\",topic=\"t\",role=\"producer\"} 428"),
            "{text}"
        );
        m.run_ended();
        let text = m.render("a1");
        assert!(!text.contains("loadgen_publish_rate_msgs_per_second"), "no rate after the run: {text}");
        assert!(text.contains("loadgen_run_active{run_id=\"\"} 0"), "{text}");
        assert!(text.contains("loadgen_runs_total 2"), "{text}");
    }
}
