//! The shorthands of `coordinator run` and `validate` that load-testing
//! CLIs have: `--duration`, `--rate`, `--quick`. Each stands for `--set`
//! overrides, which come after the user's own `--set`s (so they win) and
//! are checked like the file; `validate` prints them.
//!
//! May import `run::load_scenario` and the error type.

use std::path::Path;

use common::scenario::{LoadShape, Scenario};

use crate::error::CliError;

/// The phases of `--quick`: a smoke run that says in seconds whether the
/// scenario works end to end.
pub const QUICK: [&str; 4] =
    ["phases.warmup=1s", "phases.duration=5s", "phases.cooldown=0s", "phases.drain_timeout=10s"];

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Shorthands {
    /// The measurement phase's length, e.g. 30s or 5m: as `--set phases.duration=D`.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// The scenario's total producer rate, msg/s: each producer group's
    /// rates scaled by one factor, so the groups keep their proportions
    /// (closed-loop `rate: max` groups are left alone). As `--set` of each
    /// group's `total_rate` (or its load shape's rates).
    #[arg(long, value_name = "MSG_PER_S")]
    pub rate: Option<f64>,
    /// A short smoke run: 1 s warmup, 5 s measurement, no cooldown, 10 s
    /// drain timeout (`--set phases.*`); with --duration, that length.
    #[arg(long)]
    pub quick: bool,
}

impl Shorthands {
    /// The user's `--set`s followed by those the shorthands stand for.
    /// `--rate` reads the scenario as the file and the user's `--set`s
    /// make it (its groups and their rates).
    pub fn expand(&self, scenario: &Path, sets: &[String]) -> Result<Vec<String>, CliError> {
        let mut out = sets.to_vec();
        if self.quick {
            out.extend(QUICK.iter().map(|s| s.to_string()));
        }
        if let Some(d) = &self.duration {
            out.push(format!("phases.duration={d}"));
        }
        if let Some(rate) = self.rate {
            let sc = crate::run::load_scenario(scenario, sets)?;
            out.extend(rate_sets(&sc, rate)?);
        }
        Ok(out)
    }

    /// Whether any shorthand was given.
    pub fn any(&self) -> bool {
        self.quick || self.duration.is_some() || self.rate.is_some()
    }
}

/// The `--set`s that make the scenario's total producer rate `rate`.
pub fn rate_sets(sc: &Scenario, rate: f64) -> Result<Vec<String>, CliError> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(CliError::BadInput(format!(
            "--rate {rate}: a rate in messages per second above 0, e.g. --rate 5000"
        )));
    }
    let total: f64 = sc.producers.iter().filter(|p| !p.closed_loop()).map(|p| p.total_rate()).sum();
    if total <= 0.0 {
        return Err(CliError::BadInput(
            "--rate: the scenario has no producer group with a rate (every group runs at `rate: max`)".into(),
        ));
    }
    let factor = rate / total;
    let num = |milli: u64| trim(milli as f64 / 1000.0 * factor);
    let mut out = Vec::new();
    for (i, p) in sc.producers.iter().enumerate() {
        let at = format!("producers[{i}]");
        match &p.load {
            LoadShape::Max => {}
            LoadShape::Constant => {
                out.push(format!("{at}.rate=null"));
                out.push(format!("{at}.total_rate={}", trim(p.total_rate() * factor)));
            }
            LoadShape::Ramp { from_milli, to_milli, .. } => {
                out.push(format!("{at}.load.ramp.from={}", num(*from_milli)));
                out.push(format!("{at}.load.ramp.to={}", num(*to_milli)));
            }
            LoadShape::Steps(steps) => {
                for (k, s) in steps.iter().enumerate() {
                    out.push(format!("{at}.load.steps[{k}].rate={}", num(s.rate_milli)));
                }
            }
            LoadShape::Spike { base_milli, peak_milli, .. } => {
                out.push(format!("{at}.load.spike.base={}", num(*base_milli)));
                out.push(format!("{at}.load.spike.peak={}", num(*peak_milli)));
            }
        }
    }
    Ok(out)
}

/// A rate to the thousandth of a message per second (the scenario's own
/// resolution), without trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{:.3}", (v * 1000.0).round() / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(producers: &str) -> Scenario {
        let yaml = format!(
            "name: s\nbroker: {{kind: memory}}\ntopics: [{{name: t}}]\nproducers:\n{producers}\nphases: {{duration: 10s}}\n"
        );
        common::scenario::load_str(&yaml, "s.yaml", &[]).expect("scenario")
    }

    #[test]
    fn rate_keeps_the_groups_proportions_and_loads_as_the_sets_say() {
        let text = "name: s\nbroker: {kind: memory}\ntopics: [{name: t}]\nproducers:\n  - {name: a, topic: t, count: 2, rate: 100}\n  - {name: b, topic: t, total_rate: 600}\n  - {name: c, topic: t, load: {ramp: {from: 100, to: 200, over: 5s}}}\n  - {name: m, topic: t, rate: max}\nphases: {duration: 10s}\n";
        let sc = common::scenario::load_str(text, "s.yaml", &[]).expect("scenario");
        // 200 + 600 + 200 (the ramp's peak) = 1000: --rate 5000 is x5.
        let sets = rate_sets(&sc, 5000.0).expect("sets");
        assert_eq!(
            sets,
            [
                "producers[0].rate=null",
                "producers[0].total_rate=1000",
                "producers[1].rate=null",
                "producers[1].total_rate=3000",
                "producers[2].load.ramp.from=500",
                "producers[2].load.ramp.to=1000",
            ]
        );
        let overrides: Vec<_> = sets.iter().map(|s| common::scenario::Override::parse(s).expect("parses")).collect();
        let scaled = common::scenario::load_str(text, "s.yaml", &overrides).expect("the sets validate");
        let rates: Vec<f64> = scaled.producers.iter().filter(|p| !p.closed_loop()).map(|p| p.total_rate()).collect();
        assert_eq!(rates, [1000.0, 3000.0, 1000.0]);
        assert!(scaled.producers[3].closed_loop(), "rate: max stays");
    }

    #[test]
    fn rate_refuses_what_it_cannot_mean() {
        let sc = scenario("  - {name: m, topic: t, rate: max}");
        assert!(matches!(rate_sets(&sc, 100.0), Err(CliError::BadInput(m)) if m.contains("rate: max")));
        let sc = scenario("  - {name: a, topic: t, rate: 10}");
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            assert!(rate_sets(&sc, bad).is_err(), "{bad}");
        }
        assert_eq!(trim(1234.5678), "1234.568");
        assert_eq!(trim(10.0), "10");
    }
}
