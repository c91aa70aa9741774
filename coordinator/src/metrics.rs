//! The coordinator's Prometheus metrics (`coordinator run --metrics ADDR`):
//! the run merged across agents. Counters add up every interval report as
//! it arrives (so at the end they equal the whole-run totals of
//! report.json); gauges show the last complete merged interval. After the
//! run the final values stay until the process exits.

use std::sync::{Arc, Mutex};

use common::metrics::{self, Exposition, GroupKey, Groups, IntervalGauges, Kind, Role};
use common::proto::IntervalReport;
use common::report::Report;
use common::scenario::Scenario;

use crate::merge::IntervalMerge;

/// The phases a run goes through, in order (`loadgen_run_phase{phase}`).
pub const PHASES: [&str; 7] = ["connecting", "preparing", "warmup", "measure", "cooldown", "drain", "done"];

#[derive(Clone, Default)]
pub struct RunMetrics {
    inner: Arc<Mutex<State>>,
}

impl std::fmt::Debug for RunMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunMetrics")
    }
}

#[derive(Default)]
struct State {
    run_id: String,
    scenario: String,
    broker: String,
    phase: &'static str,
    verdict: Option<String>,
    agents: u32,
    agents_connected: u32,
    elapsed_s: f64,
    intervals: u64,
    groups: Groups,
}

impl RunMetrics {
    pub fn new() -> RunMetrics {
        RunMetrics::default()
    }

    /// A run begins: every group gets its series at 0.
    pub fn begin(&self, sc: &Scenario, run_id: &str) {
        let mut st = metrics::lock(&self.inner);
        *st = State {
            run_id: run_id.into(),
            scenario: sc.name.clone(),
            broker: sc.broker.kind.as_str().into(),
            phase: PHASES[0],
            ..State::default()
        };
        for (role, n) in [(Role::Producer, sc.producers.len()), (Role::Consumer, sc.consumers.len())] {
            for i in 0..n {
                if let Some(k) = GroupKey::of(sc, role, i) {
                    let g = st.groups.entry(k).or_default();
                    if role == Role::Producer {
                        g.target_rate = sc.producers.get(i).map(|p| p.total_rate());
                    }
                }
            }
        }
    }

    /// Agents are connected and preparing.
    pub fn agents(&self, n: u32) {
        let mut st = metrics::lock(&self.inner);
        st.agents = n;
        st.agents_connected = n;
        st.phase = PHASES[1];
    }

    pub fn set_phase(&self, phase: &'static str) {
        metrics::lock(&self.inner).phase = phase;
    }

    /// One agent's interval report, as it arrives: counters only.
    pub fn agent_interval(&self, sc: &Scenario, r: &IntervalReport) {
        let mut st = metrics::lock(&self.inner);
        for g in &r.groups {
            let role = Role::of_proto(g.role);
            let Some(k) = GroupKey::of(sc, role, g.group as usize) else { continue };
            st.groups.entry(k).or_default().counters.add_proto(g);
        }
    }

    /// A merged interval every agent has reported: the gauges.
    pub fn interval(&self, sc: &Scenario, m: &IntervalMerge, phase: &'static str, elapsed_s: f64, alive: u32) {
        let secs = (m.end_ns - m.start_ns) as f64 / 1e9;
        let mut st = metrics::lock(&self.inner);
        st.phase = phase;
        st.elapsed_s = elapsed_s;
        st.agents_connected = alive;
        st.intervals += 1;
        for (role, map) in [(Role::Producer, &m.producers), (Role::Consumer, &m.consumers)] {
            for (i, s) in map {
                let Some(k) = GroupKey::of(sc, role, *i as usize) else { continue };
                st.groups.entry(k).or_default().interval =
                    Some(IntervalGauges::of(role, s, secs, &sc.report.percentiles));
            }
        }
    }

    /// The run is over: the verdict; rates and latencies no longer apply.
    pub fn finish(&self, report: &Report) {
        let mut st = metrics::lock(&self.inner);
        st.phase = "done";
        st.verdict = Some(report.verdict.clone());
        st.agents_connected = 0;
        for g in st.groups.values_mut() {
            g.interval = None;
        }
    }

    pub fn render(&self) -> String {
        let st = metrics::lock(&self.inner);
        let mut e = Exposition::new();
        e.family("loadgen_run_info", Kind::Gauge, "The run: id, scenario and broker kind.");
        e.sample(
            "loadgen_run_info",
            &[("run_id", &st.run_id), ("scenario", &st.scenario), ("broker", &st.broker)],
            1.0,
        );
        e.family("loadgen_run_phase", Kind::Gauge, "1 for the phase the run is in, 0 for the others.");
        for p in PHASES {
            e.sample("loadgen_run_phase", &[("phase", p)], if st.phase == p { 1.0 } else { 0.0 });
        }
        if let Some(v) = &st.verdict {
            e.family("loadgen_run_verdict", Kind::Gauge, "After the run: 1 for its verdict (pass, fail, incomplete).");
            e.sample("loadgen_run_verdict", &[("verdict", v)], 1.0);
        }
        e.family("loadgen_run_elapsed_seconds", Kind::Gauge, "Time from the start instant to the last interval.");
        e.sample("loadgen_run_elapsed_seconds", &[], st.elapsed_s);
        e.family("loadgen_agents", Kind::Gauge, "Agents in the run.");
        e.sample("loadgen_agents", &[], f64::from(st.agents));
        e.family("loadgen_agents_connected", Kind::Gauge, "Agents connected and reporting.");
        e.sample("loadgen_agents_connected", &[], f64::from(st.agents_connected));
        e.family("loadgen_intervals_total", Kind::Counter, "Merged intervals every agent has reported.");
        e.sample_u64("loadgen_intervals_total", &[], st.intervals);
        metrics::write_groups(&mut e, &st.groups);
        e.finish()
    }

    /// The renderer for [`common::metrics::serve`].
    pub fn renderer(&self) -> metrics::Render {
        let me = self.clone();
        Arc::new(move || me.render())
    }
}
