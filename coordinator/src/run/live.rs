//! What the live dashboard (`run --ui`) is fed while a run follows: the
//! run's model when it starts ([`start_model`]) and, per merged interval
//! the console shows, its rows — the same rows report.json's `intervals`
//! holds — with the agents, the subscriptions' delivery so far, notes and
//! run-control events ([`Live`]). One source of truth: nothing here is
//! measured again.
//!
//! May import `agents`, `progress`, `merge` and `ui`.

use std::sync::Arc;

use common::proto::IntervalReport;
use common::report::RunEvent;
use common::scenario::Scenario;
use serde_json::{json, Value};

use super::agents::Agents;
use super::progress::Progress;
use crate::merge::IntervalMerge;
use crate::ui::Dashboard;

/// The dashboard a run feeds, and what it keeps between intervals.
pub(super) struct Live {
    pub dashboard: Arc<Dashboard>,
    /// CPU of each agent in its latest interval (percent of one core).
    cpu_percent: Vec<Option<f64>>,
    /// Duplicates per consumer group so far (from the shown intervals).
    duplicates: Vec<u64>,
    /// Silence notes already shown.
    notes_shown: usize,
}

/// Phase bands of the run as planned (seconds from the start).
fn phases(sc: &Scenario) -> Value {
    let p = &sc.phases;
    let mut out = Vec::new();
    let mut at = 0.0;
    for (name, len) in [("warmup", p.warmup), ("measure", p.duration), ("cooldown", p.cooldown)] {
        let len = len.as_secs_f64();
        if len > 0.0 {
            out.push(json!({"name": name, "from_s": at, "to_s": at + len}));
            at += len;
        }
    }
    Value::Array(out)
}

/// The model a run starts with (what /state gives before any interval).
pub(super) fn start_model(sc: &Scenario, run_id: &str, agents: &Agents, total_rate: f64) -> Value {
    let groups: Vec<Value> = sc
        .producers
        .iter()
        .map(|g| json!({"name": g.name, "role": "producer"}))
        .chain(sc.consumers.iter().map(|g| json!({"name": g.name, "role": "consumer"})))
        .collect();
    json!({
        "run_id": run_id,
        "scenario": sc.name,
        "phase": "warmup",
        "elapsed_s": 0.0,
        "total_rate": total_rate,
        "groups": groups,
        // The latency charts' lines: the scenario's `report.percentiles`.
        "percentiles": sc.report.percentiles.iter().map(|p| p.label()).collect::<Vec<_>>(),
        "phases": phases(sc),
        "intervals": [],
        "agents": agent_rows(agents, &[]),
        "subscriptions": [],
        "notes": [],
        "events": [],
        "windows": [],
    })
}

fn agent_rows(agents: &Agents, cpu: &[Option<f64>]) -> Vec<Value> {
    agents
        .outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "id": o.hello.agent_id,
                "address": o.address,
                "status": o.status,
                "clock_offset_us": o.clock_offset_ns as f64 / 1e3,
                "clock_error_us": o.clock_error_ns as f64 / 1e3,
                "cpu_percent": cpu.get(i).copied().flatten(),
            })
        })
        .collect()
}

impl Live {
    pub fn new(dashboard: Arc<Dashboard>, agents: usize, sc: &Scenario) -> Live {
        Live { dashboard, cpu_percent: vec![None; agents], duplicates: vec![0; sc.consumers.len()], notes_shown: 0 }
    }

    /// Agent `i`'s interval report arrived (its CPU).
    pub fn agent_interval(&mut self, i: usize, r: &IntervalReport) {
        if let Some(c) = self.cpu_percent.get_mut(i) {
            *c = (r.wall_ns > 0).then(|| r.cpu_ns as f64 / r.wall_ns as f64 * 100.0);
        }
    }

    /// Interval `idx` was shown: its rows and everything that changed.
    pub fn interval(&mut self, sc: &Scenario, (idx, m): (u64, &IntervalMerge), start_ns: i64, state: LiveState) {
        for (g, s) in &m.consumers {
            if let Some(d) = self.duplicates.get_mut(*g as usize) {
                *d += s.total().duplicates;
            }
        }
        let rows = crate::merge::rows_of(sc, idx, m, start_ns);
        let phase = crate::merge::phase_name(sc, m.start_ns - start_ns);
        let update = json!({
            "intervals": rows,
            "phase": phase,
            "elapsed_s": (m.end_ns - start_ns) as f64 / 1e9,
            "agents": agent_rows(state.agents, &self.cpu_percent),
            "subscriptions": self.subscriptions(sc, state.progress),
            "notes": self.new_notes(state.agents),
        });
        self.dashboard.update(update);
    }

    fn subscriptions(&self, sc: &Scenario, progress: &Progress<'_>) -> Vec<Value> {
        sc.consumers
            .iter()
            .enumerate()
            .map(|(g, c)| {
                let (received, acked) = progress.received_and_acked(g);
                json!({
                    "topic": c.topic,
                    "subscription": c.subscription,
                    "group": c.name,
                    "received": received,
                    // Acknowledged but not (yet) received: in flight or lost.
                    "lost": acked.saturating_sub(received),
                    "duplicated": self.duplicates.get(g).copied().unwrap_or(0),
                })
            })
            .collect()
    }

    fn new_notes(&mut self, agents: &Agents) -> Vec<String> {
        let new: Vec<String> = agents.silences.iter().skip(self.notes_shown).cloned().collect();
        self.notes_shown = agents.silences.len();
        new
    }

    /// Run-control changes just applied: markers, the rate now, a note each.
    pub fn events(&self, events: &[RunEvent], total_rate: f64) {
        if events.is_empty() {
            return;
        }
        let notes: Vec<String> = events.iter().map(|e| format!("{:.1} s: {} ({})", e.t_s, e.label, e.who)).collect();
        self.dashboard.update(json!({
            "events": events.iter().map(|e| json!({"t_s": e.t_s, "kind": e.kind, "label": e.label})).collect::<Vec<_>>(),
            "total_rate": total_rate,
            "notes": notes,
        }));
    }
}

/// What an interval's update reads of the run.
pub(super) struct LiveState<'r, 'a> {
    pub agents: &'r Agents,
    pub progress: &'r Progress<'a>,
}
