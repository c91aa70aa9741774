//! report.html's interactive charts: the run model the browser draws
//! (web/src/charts.js `fromModel`), built from a finished report, and the
//! page fragment that carries it with the chart code. Imports the
//! spectrum and the browser assets (`ui::assets`, which imports nothing of
//! ours). Columnar, rounded: a 1-hour run
//! at 1-s intervals with 20 groups is 72,000 rows, which as report.json rows
//! would be ~7 MB; as columns of rounded numbers (the rate and the
//! default five percentiles) it is ~2.6 MB.

use common::hist::Hist;
use common::report::Report;
use serde_json::{json, Value};

/// Microseconds to 3 significant digits (HDR's own precision), as a number.
pub(super) fn us3(v: f64) -> Value {
    if !(v.is_finite() && v > 0.0) {
        return Value::Null;
    }
    let digits = 10f64.powi(v.log10().floor() as i32 - 2).max(1.0);
    json!(((v / digits).round() * digits) as u64)
}

/// Rates to the message per second (or to 0.01 below 100 msg/s).
pub(super) fn rate(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    if v >= 100.0 {
        json!(v.round() as u64)
    } else {
        json!((v * 100.0).round() / 100.0)
    }
}

/// Phase bands from the report's phase lengths.
fn phases(r: &Report) -> Value {
    let p = &r.phases;
    let mut out = Vec::new();
    let mut at = 0.0;
    for (name, len) in
        [("warmup", p.warmup_s), ("measure", p.duration_s), ("cooldown", p.cooldown_s), ("drain", p.drain_s)]
    {
        if len > 0.0 {
            out.push(json!({"name": name, "from_s": at, "to_s": at + len}));
            at += len;
        }
    }
    Value::Array(out)
}

/// Interval rows as one time axis and per-group columns: the rate and
/// `lat`, a column per reported percentile by label (`p99.9`).
fn columns(r: &Report) -> Value {
    let mut times: Vec<f64> = r.intervals.iter().map(|i| i.t_s).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let slot = |t: f64| times.binary_search_by(|x| x.total_cmp(&t)).ok();
    let mut groups: Vec<(String, String)> = Vec::new();
    for i in &r.intervals {
        if !groups.iter().any(|(g, role)| g == &i.group && role == &i.role) {
            groups.push((i.group.clone(), i.role.clone()));
        }
    }
    let percentiles = r.reported_percentiles();
    let series: Vec<Value> = groups
        .iter()
        .map(|(g, role)| {
            let mut rates = vec![Value::Null; times.len()];
            let mut lat = vec![vec![Value::Null; times.len()]; percentiles.len()];
            for i in r.intervals.iter().filter(|i| &i.group == g && &i.role == role) {
                if let Some(k) = slot(i.t_s) {
                    rates[k] = rate(i.rate_msgs_per_s);
                    for (col, p) in lat.iter_mut().zip(&percentiles) {
                        col[k] = i.at(*p).map(us3).unwrap_or(Value::Null);
                    }
                }
            }
            let lat: serde_json::Map<String, Value> =
                percentiles.iter().zip(lat).map(|(p, col)| (p.label(), Value::Array(col))).collect();
            json!({"group": g, "role": role, "rate": rates, "lat": lat})
        })
        .collect();
    json!({"t": times, "series": series})
}

/// The percentile spectrum of every group's latencies, each named by its
/// kind (`groups[].latency`; the histogram kind `e2e` is `e2e_service`).
fn spectra(r: &Report) -> Value {
    let mut out = Vec::new();
    for (role, title, kinds) in [
        (
            "producer",
            "Publish latency distribution",
            &[("publish_response", " publish_response"), ("publish_service", " publish_service")][..],
        ),
        (
            "consumer",
            "End-to-end and ack latency distribution",
            &[("e2e", " e2e_service"), ("e2e_response", " e2e_response"), ("ack", " ack")][..],
        ),
    ] {
        let mut series = Vec::new();
        for h in r.histograms.iter().filter(|h| h.role == role) {
            let Some((_, suffix)) = kinds.iter().find(|(k, _)| *k == h.kind) else { continue };
            series.extend(spectrum_series(&h.data, format!("{}{suffix}", h.group)));
        }
        out.push(json!({"title": title, "series": series}));
    }
    Value::Array(out)
}

/// One chart series of a histogram's percentile spectrum (`data`: the
/// report's base64 HDR histogram); None when it has no samples or does not
/// decode.
pub(super) fn spectrum_series(data: &str, name: String) -> Option<Value> {
    let hist = Hist::decode_base64(data).ok()?;
    let pts = super::spectrum::spectrum(&hist);
    if pts.is_empty() {
        return None;
    }
    let x: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let us: Vec<Value> = pts.iter().map(|p| us3(p.1)).collect();
    Some(json!({"name": name, "x": x, "us": us}))
}

fn ceiling(r: &Report) -> Value {
    let Some(c) = &r.ceiling else { return Value::Null };
    let steps: Vec<Value> = c
        .steps
        .iter()
        .map(|s| json!({"target": rate(s.target), "achieved": rate(s.achieved), "p99_us": us3(s.latency_us.p99), "verdict": s.verdict}))
        .collect();
    json!({"steps": steps})
}

/// The model of a finished run for report.html.
pub fn report_model(r: &Report) -> Value {
    json!({
        "run_id": r.run_id,
        "scenario": r.scenario,
        "verdict": r.verdict,
        "phases": phases(r),
        "percentiles": r.reported_percentiles().iter().map(|p| p.label()).collect::<Vec<_>>(),
        "columns": columns(r),
        "spectra": spectra(r),
        "ceiling": ceiling(r),
        // Fault windows and paused spans, shaded on every time chart.
        "windows": r.faults.iter().map(|w| json!({"from_s": w.from_s, "to_s": w.to_s, "name": "fault"})).chain(pause_windows(r).as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
        "events": r.events.iter().map(|e| json!({"t_s": e.t_s, "kind": e.kind, "label": e.label})).collect::<Vec<_>>(),
    })
}

/// Spans the producers were paused by run control (a pause to the next
/// resume, or to the end of the sends), shaded on the charts.
fn pause_windows(r: &Report) -> Value {
    let end = r.phases.warmup_s + r.phases.duration_s;
    let mut out = Vec::new();
    let mut from: Option<f64> = None;
    for e in &r.events {
        match (e.kind.as_str(), from) {
            ("pause", None) => from = Some(e.t_s),
            ("resume" | "stop", Some(f)) => {
                out.push(json!({"from_s": f, "to_s": e.t_s, "label": "paused"}));
                from = None;
            }
            _ => {}
        }
    }
    if let Some(f) = from {
        out.push(json!({"from_s": f, "to_s": end.max(f), "label": "paused"}));
    }
    Value::Array(out)
}

/// report.html's interactive charts: a container, the model and the
/// scripts (uPlot, charts.js, report.js), all inline; None when the
/// coordinator was built without the chart library.
pub fn fragment(r: &Report) -> Option<String> {
    if !crate::ui::assets::charts_available() {
        return None;
    }
    Some(format!(
        "<style>{}</style>\n<section id=\"interactive\"><h2>Charts</h2><p class=\"hint\">Drag to zoom (double-click to reset), hover for values, click a legend entry to hide or show its series.</p><div id=\"charts\"></div></section>\n{}{}",
        crate::ui::assets::UPLOT_CSS,
        crate::ui::assets::json_script("loadgen-chart-data", &report_model(r).to_string()),
        crate::ui::assets::inline_scripts(crate::ui::assets::REPORT_JS),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::{render_with, Charts};
    use crate::testutil::sample_report;

    #[test]
    fn run_control_events_are_markers_and_pauses_are_shaded() {
        let mut r = sample_report();
        let ev = |t_s: f64, kind: &str| common::report::RunEvent {
            t_s,
            kind: kind.into(),
            value: None,
            group: None,
            who: "dashboard".into(),
            label: kind.into(),
        };
        r.events = vec![ev(2.0, "pause"), ev(4.0, "resume"), ev(5.0, "rate"), ev(6.0, "pause")];
        (r.phases.warmup_s, r.phases.duration_s) = (1.0, 9.0);
        let model = report_model(&r);
        assert_eq!(model["events"].as_array().map(Vec::len), Some(4));
        assert_eq!(model["events"][2]["t_s"], 5.0);
        let end = 10.0;
        assert_eq!(
            model["windows"],
            json!([{"from_s": 2.0, "to_s": 4.0, "label": "paused"}, {"from_s": 6.0, "to_s": end, "label": "paused"}])
        );
    }

    #[test]
    fn the_interactive_page_carries_its_data_and_code_and_fetches_nothing() {
        let mut r = sample_report();
        r.notes.push("</script><script>alert(1)</script>".into());
        r.groups[0].name = "p</script>".into();
        let html = render_with(&r, Charts::Interactive);
        if !crate::ui::assets::charts_available() {
            assert_eq!(html, render_with(&r, Charts::Static), "without the library: the static page");
            return;
        }
        assert!(html.contains("<section id=\"interactive\">") && html.contains("href=\"#interactive\""));
        assert!(!html.contains("<section id=\"throughput\">"), "the SVG time series give way");
        assert!(html.contains("<section id=\"delivery\">") && html.contains("<section id=\"agents\">"));
        // The data is JSON inside its script element, which no string in it can close.
        let start = html.find("<script id=\"loadgen-chart-data\" type=\"application/json\">").expect("data element");
        let body = &html[start..];
        let body = &body[body.find('>').expect("tag end") + 1..body.find("</script>").expect("closed")];
        let model: Value = serde_json::from_str(body).expect("the data is JSON");
        assert_eq!(model["run_id"], r.run_id);
        assert!(model["columns"]["series"].as_array().is_some_and(|s| !s.is_empty()), "{model}");
        assert!(!html.contains("<script>alert(1)"), "notes stay escaped");
        assert!(!html.contains("src=") && !html.contains("fetch(") && !html.contains("XMLHttpRequest"));
        assert!(html.contains("uPlot (MIT license)"), "the library's license travels with it");
        assert_eq!(html, render_with(&r, Charts::Interactive), "deterministic");
    }

    /// A 1-hour run at 1-s intervals with 20 groups and the default five
    /// percentiles: the page stays small.
    #[test]
    fn an_hour_of_twenty_groups_is_under_three_megabytes() {
        let mut r = sample_report();
        let row = r.intervals[0].clone();
        r.intervals = (0..3600)
            .flat_map(|t| {
                let row = row.clone();
                (0..20).map(move |g| {
                    let mut x = row.clone();
                    x.t_s = f64::from(t) + 1.0;
                    x.group = format!("group-{g:02}");
                    x.role = if g % 2 == 0 { "producer".into() } else { "consumer".into() };
                    x.rate_msgs_per_s = 1000.0 + f64::from((t * 7 + g * 13) % 97);
                    x.p50_us = 1234.5 + f64::from(t % 100);
                    x.p99_us = 23456.7 + f64::from(t % 1000);
                    x.p999_us = 123456.7 + f64::from(t % 10000);
                    // The default list: p90 and p95 as well.
                    x.p95_us = Some(12345.6 + f64::from(t % 500));
                    x.percentiles_us = [("p90".to_string(), 6543.2 + f64::from(t % 300))].into();
                    x
                })
            })
            .collect();
        let html = render_with(&r, Charts::Interactive);
        let mb = html.len() as f64 / 1e6;
        println!("report.html for 1 h x 20 groups: {mb:.2} MB");
        assert!(mb < 3.0, "{mb:.2} MB");
    }

    #[test]
    fn numbers_are_rounded_to_what_they_carry() {
        assert_eq!(us3(123_456.7), json!(123_000));
        assert_eq!(us3(987.6), json!(988));
        assert_eq!(us3(12.34), json!(12));
        assert_eq!(us3(0.0), Value::Null);
        assert_eq!(rate(1234.6), json!(1235));
        assert_eq!(rate(12.345), json!(12.35));
    }
}
