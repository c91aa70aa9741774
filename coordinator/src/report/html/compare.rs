//! The compare page (`coordinator compare BASE NEW… --html FILE`): the
//! runs' throughput over time and percentile spectra overlaid, and per NEW
//! run the table of changes against BASE with its regression verdict
//! (the same [`Comparison`] the console prints and the exit code judges).
//! One self-contained file like report.html: uPlot and the chart code
//! inline, no network. Without the chart library built in, the tables
//! alone.
//!
//! May import `report::compare`, `report::format` and this folder's
//! siblings (the page style, escaping, the spectrum, number rounding).

use std::fmt::Write as _;

use common::report::Report;
use serde_json::{json, Value};

use super::escape::esc;
use super::interactive::{rate, spectrum_series};
use crate::report::compare::{fmt_change, fmt_value, Comparison, LATENCY_FLOOR_US};
use crate::report::format::fmt_pct;

/// A short label per run for legends: `base`, then `new` (or `new 1`,
/// `new 2`, … when there are several).
pub fn labels(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match (i, n) {
            (0, _) => "base".to_string(),
            (_, 2) => "new".to_string(),
            _ => format!("new {i}"),
        })
        .collect()
}

/// The page. `runs[0]` is the base; `comparisons[i]` compares
/// `runs[i + 1]` against it.
pub fn render(runs: &[&Report], comparisons: &[Comparison]) -> String {
    let mut o = String::with_capacity(64 * 1024);
    // Writing into a String cannot fail.
    let _ = page(&mut o, runs, comparisons);
    o
}

fn page(o: &mut String, runs: &[&Report], comparisons: &[Comparison]) -> std::fmt::Result {
    let labels = labels(runs.len());
    let regressed = comparisons.iter().any(Comparison::regressed);
    writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(o, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(
        o,
        "<title>compare {} runs — {}</title>",
        runs.len(),
        if regressed { "regression" } else { "no regression" }
    )?;
    writeln!(o, "<style>{}</style>\n</head>\n<body>\n<main>", super::CSS)?;
    let (class, word) = if regressed { ("fail", "regression") } else { ("pass", "no regression") };
    writeln!(o, "<header><h1>Comparison of {} runs<span class=\"badge {class}\">{word}</span></h1>", runs.len())?;
    let pct = comparisons.first().map(|c| c.max_regression_pct).unwrap_or_default();
    writeln!(
        o,
        "<div class=\"meta\"><span>regression: worse by more than {}% (lower throughput; higher {}, ignoring changes under {LATENCY_FLOOR_US:.0} µs); any increase in lost messages</span></div></header>",
        fmt_pct(pct),
        comparisons.first().map(Comparison::percentile_keys).unwrap_or_default()
    )?;
    runs_table(o, runs, &labels)?;
    match charts(runs, &labels) {
        Some(fragment) => o.push_str(&fragment),
        None => writeln!(
            o,
            "<section id=\"interactive\"><h2>Charts</h2><p class=\"empty\">This coordinator was built without the chart library (web/node_modules): tables only.</p></section>"
        )?,
    }
    for (c, label) in comparisons.iter().zip(labels.iter().skip(1)) {
        changes(o, c, label)?;
    }
    writeln!(o, "<footer>loadgen · compare · rendered from the runs' report.json</footer>\n</main>\n</body>\n</html>")
}

fn runs_table(o: &mut String, runs: &[&Report], labels: &[String]) -> std::fmt::Result {
    writeln!(o, "<section id=\"runs\"><h2>Runs</h2><div class=\"scroll\"><table>")?;
    writeln!(o, "<tr><th></th><th>run</th><th>scenario</th><th>started</th><th>verdict</th><th class=\"n\">measure</th><th>broker</th></tr>")?;
    for (r, label) in runs.iter().zip(labels) {
        writeln!(
            o,
            "<tr><td><b>{}</b></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.0} s</td><td>{}</td></tr>",
            esc(label),
            esc(&r.run_id),
            esc(&r.scenario),
            esc(&r.started_at),
            esc(&r.verdict),
            r.phases.duration_s,
            esc(&r.broker.kind)
        )?;
    }
    writeln!(o, "</table></div></section>")
}

/// One NEW run against BASE: verdict, notes, and every metric's change.
fn changes(o: &mut String, c: &Comparison, label: &str) -> std::fmt::Result {
    let regs = c.regressions();
    let verdict = if regs.is_empty() {
        "<span class=\"ok\">no regression</span>".to_string()
    } else {
        format!("<span class=\"no\">regression in {} metric(s)</span>", regs.len())
    };
    writeln!(o, "<section class=\"changes\"><h2>{} against base: {verdict}</h2>", esc(label))?;
    let notes: Vec<String> = c
        .notes
        .iter()
        .cloned()
        .chain((!c.only_base.is_empty()).then(|| format!("only in base (not compared): {}", c.only_base.join(", "))))
        .chain((!c.only_new.is_empty()).then(|| format!("only in {label} (not compared): {}", c.only_new.join(", "))))
        .collect();
    if !notes.is_empty() {
        writeln!(o, "<ul class=\"notes\">")?;
        for n in &notes {
            writeln!(o, "<li>{}</li>", esc(n))?;
        }
        writeln!(o, "</ul>")?;
    }
    writeln!(o, "<div class=\"scroll\"><table><tr><th>group / metric</th><th class=\"n\">base</th><th class=\"n\">{}</th><th class=\"n\">change</th><th></th></tr>", esc(label))?;
    for g in &c.groups {
        let what = if g.role == "producer" { "latency: publish_response" } else { "latency: e2e_service" };
        writeln!(
            o,
            "<tr><td colspan=\"5\"><b>{} {}</b> <span class=\"meta\">topic {}; {what}</span></td></tr>",
            esc(&g.role),
            esc(&g.name),
            esc(&g.topic)
        )?;
        for r in &g.rows {
            metric_row(o, r)?;
        }
    }
    writeln!(o, "<tr><td colspan=\"5\"><b>totals</b></td></tr>")?;
    for r in &c.totals {
        metric_row(o, r)?;
    }
    writeln!(o, "</table></div></section>")
}

fn metric_row(o: &mut String, r: &crate::report::compare::MetricRow) -> std::fmt::Result {
    let flag = if r.regressed {
        "<span class=\"no\">REGRESSED</span>".to_string()
    } else {
        r.remark.as_deref().map(esc).unwrap_or_default()
    };
    writeln!(
        o,
        "<tr{}><td>&nbsp;&nbsp;{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{flag}</td></tr>",
        if r.regressed { " class=\"bad\"" } else { "" },
        esc(&r.metric),
        esc(&fmt_value(r.kind, r.base)),
        esc(&fmt_value(r.kind, r.new)),
        esc(&fmt_change(r))
    )
}

/// Throughput per group of every run on one time axis (seconds from each
/// run's start instant), series named "label group (role)".
fn throughput(runs: &[&Report], labels: &[String]) -> Value {
    let mut times: Vec<f64> = runs.iter().flat_map(|r| r.intervals.iter().map(|i| i.t_s)).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let slot = |t: f64| times.binary_search_by(|x| x.total_cmp(&t)).ok();
    let mut series = Vec::new();
    for (r, label) in runs.iter().zip(labels) {
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for i in &r.intervals {
            if !keys.contains(&(i.group.as_str(), i.role.as_str())) {
                keys.push((&i.group, &i.role));
            }
        }
        for (group, role) in keys {
            let mut values = vec![Value::Null; times.len()];
            for i in r.intervals.iter().filter(|i| i.group == group && i.role == role) {
                if let Some(k) = slot(i.t_s) {
                    values[k] = rate(i.rate_msgs_per_s);
                }
            }
            series.push(json!({"name": format!("{label} {group} ({role})"), "values": values}));
        }
    }
    json!({"t": times, "series": series})
}

/// Each kind's percentile spectrum (publish response time; end to end),
/// every run's groups overlaid.
fn spectra(runs: &[&Report], labels: &[String]) -> Value {
    let mut out = Vec::new();
    for (kind, title) in
        [("publish_response", "Publish latency distribution"), ("e2e", "End-to-end latency distribution")]
    {
        let mut series = Vec::new();
        for (r, label) in runs.iter().zip(labels) {
            for h in r.histograms.iter().filter(|h| h.kind == kind) {
                series.extend(spectrum_series(&h.data, format!("{label} {}", h.group)));
            }
        }
        out.push(json!({"title": title, "series": series}));
    }
    Value::Array(out)
}

/// The chart model in the form the chart code draws directly (`drawn`).
pub fn model(runs: &[&Report], labels: &[String]) -> Value {
    json!({
        "drawn": true,
        "phases": [],
        "windows": [],
        "events": [],
        "throughput": throughput(runs, labels),
        "latency": [],
        "spectra": spectra(runs, labels),
        "ceiling": Value::Null,
    })
}

fn charts(runs: &[&Report], labels: &[String]) -> Option<String> {
    if !crate::ui::assets::charts_available() {
        return None;
    }
    Some(format!(
        "<style>{}</style>\n<section id=\"interactive\"><h2>Throughput and latency distribution, overlaid</h2><p class=\"hint\">Drag to zoom (double-click to reset), hover for values, click a legend entry to hide or show its series.</p><div id=\"charts\"></div></section>\n{}{}",
        crate::ui::assets::UPLOT_CSS,
        crate::ui::assets::json_script("loadgen-chart-data", &model(runs, labels).to_string()),
        crate::ui::assets::inline_scripts(crate::ui::assets::REPORT_JS),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::compare;
    use crate::testutil::sample_report;

    #[test]
    fn labels_name_base_and_new_runs() {
        assert_eq!(labels(2), ["base", "new"]);
        assert_eq!(labels(3), ["base", "new 1", "new 2"]);
    }

    #[test]
    fn the_page_has_every_run_the_changes_and_overlaid_series() {
        let base = sample_report();
        let mut slower = sample_report();
        slower.run_id = "run-<slower>".into();
        for g in &mut slower.groups {
            g.rate_msgs_per_s *= 0.5;
        }
        let c = compare(&base, &slower, 10.0);
        assert!(c.regressed());
        let html = render(&[&base, &slower], std::slice::from_ref(&c));
        assert!(html.contains(&base.run_id) && html.contains("run-&lt;slower&gt;"), "ids, escaped");
        assert!(html.contains("badge fail") && html.contains("REGRESSED"));
        assert!(html.contains("<tr class=\"bad\">"), "the regressed metric's row is marked");
        let m = model(&[&base, &slower], &labels(2));
        let names: Vec<&str> =
            m["throughput"]["series"].as_array().expect("series").iter().filter_map(|s| s["name"].as_str()).collect();
        assert!(
            names.iter().any(|n| n.starts_with("base ")) && names.iter().any(|n| n.starts_with("new ")),
            "{names:?}"
        );
        assert_eq!(names.len() % 2, 0, "each run's groups: {names:?}");
        if crate::ui::assets::charts_available() {
            assert!(html.contains("loadgen-chart-data") && !html.contains("src="), "inline, no network");
        }
        let same = compare(&base, &base, 10.0);
        assert!(render(&[&base, &base], &[same]).contains("badge pass"));
    }
}
