//! `report.html`: one self-contained page per run, rendered from the
//! [`Report`] alone (so `coordinator report RUN_DIR` re-renders it from
//! report.json). No fetches and no external CSS or scripts: the charts are
//! inline SVG drawn by [`charts`], which the page's own inlined script (the
//! project's `web/` bundle, see [`interactive`]) makes interactive when
//! the browser runs it; without it the page still reads whole. Every piece
//! of text that comes from the report (names, notes, errors) goes through
//! [`esc`].
//!
//! This file is the page: its sections, in order, each turning report
//! figures into tables and [`charts::Chart`]s; who received what is in
//! [`consumers`]. May import `charts`, `consumers`, `escape` and
//! `report::format`.

use std::fmt::Write as _;

use common::hist::Hist;
use common::percentile::Percentile;
use common::report::{Ceiling, CeilingStep, ClientBound, IntervalRow, Latency, Report, LATENCY_KINDS};

mod charts;
pub mod compare;
mod consumers;
mod escape;
mod interactive;
mod spectrum;

pub use escape::esc;
pub use interactive::report_model;
pub use spectrum::spectrum;

use crate::report::format::{fmt_count, fmt_secs_exact, fmt_us_spaced};
use charts::{Axis, Band, Chart, Dash, Fmt, Scale, Series, VLine};

/// Which charts a page carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charts {
    /// uPlot charts (zoom, values on hover, series toggles), inline with
    /// their data: what a coordinator built with web/node_modules writes.
    Interactive,
    /// Inline SVG, no script: the fallback.
    Static,
}

/// Renders the whole page, with interactive charts when the coordinator
/// was built with the chart library.
pub fn render(r: &Report) -> String {
    render_with(r, if crate::ui::assets::charts_available() { Charts::Interactive } else { Charts::Static })
}

/// Renders the whole page with the charts asked for (static when the
/// interactive ones are not built in).
pub fn render_with(r: &Report, charts: Charts) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let charts = match charts {
        Charts::Interactive => interactive::fragment(r).map(Some),
        Charts::Static => None,
    }
    .flatten();
    // Writing into a String cannot fail.
    let _ = page(&mut o, r, charts.as_deref());
    o
}

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#ffffff;--soft:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;background:var(--soft);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}
header{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin-bottom:16px}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted);font-weight:600}
section{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin-bottom:16px}
.meta{color:var(--muted);font-size:13px}
.meta span{margin-right:18px;white-space:nowrap}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-size:13px;font-weight:700;color:#fff;vertical-align:middle;margin-left:8px;text-transform:uppercase;letter-spacing:.03em}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.incomplete{background:var(--warn)}
nav{margin-top:10px;font-size:13px}nav a{color:#0969da;text-decoration:none;margin-right:14px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:var(--soft)}
.card .v{font-size:20px;font-weight:700;font-variant-numeric:tabular-nums}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card.bad{border-color:var(--fail)}.card.bad .v{color:var(--fail)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 7px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal;min-width:160px}
th{white-space:normal}
th{background:var(--soft);font-weight:600;vertical-align:bottom}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.n{text-align:right}
tr.bad td{background:#fff1f0}
.ok{color:var(--pass);font-weight:700}.no{color:var(--fail);font-weight:700}
.chart{margin:4px 0 14px}
.chart svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--fg);margin:4px 0 0 64px}
.legend span{display:inline-flex;align-items:center;gap:6px;white-space:nowrap}
.hint{color:var(--muted);font-size:12px;margin:2px 0 8px}
.empty{color:var(--muted);font-style:italic}
.client-bound{border:1px solid var(--fail);border-radius:6px;padding:4px 12px;margin:8px 0;background:#fff1f0}
ul.notes{margin:0;padding-left:20px}
footer{color:var(--muted);font-size:12px;text-align:center}
code{font-size:12px}
"#;

const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#7f7f7f"];

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The page; `interactive`: the chart fragment that replaces the SVG
/// time series and spectra.
fn page(o: &mut String, r: &Report, interactive: Option<&str>) -> std::fmt::Result {
    writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(o, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(o, "<title>{} — {} — {}</title>", esc(&r.scenario), esc(&r.verdict), esc(&r.run_id))?;
    writeln!(o, "<style>{CSS}</style>\n</head>\n<body>\n<main>")?;
    header(o, r, interactive.is_some())?;
    summary(o, r)?;
    slo(o, r)?;
    groups(o, r)?;
    match interactive {
        Some(charts) => o.push_str(charts),
        None => {
            throughput(o, r)?;
            latency_over_time(o, r)?;
            distribution(o, r)?;
        }
    }
    if let Some(c) = &r.ceiling {
        ceiling(o, c, &r.reported_percentiles())?;
    }
    delivery(o, r)?;
    consumers::section(o, r)?;
    agents(o, r)?;
    notes(o, r)?;
    writeln!(
        o,
        "<footer>loadgen {} · rendered from report.json (schema {}) · latencies by kind: see the groups' latency table</footer>",
        esc(&r.tool_version),
        r.schema_version
    )?;
    writeln!(o, "</main>\n</body>\n</html>")
}

fn header(o: &mut String, r: &Report, interactive: bool) -> std::fmt::Result {
    let verdict_class = match r.verdict.as_str() {
        "pass" => "pass",
        "fail" => "fail",
        _ => "incomplete",
    };
    writeln!(o, "<header>")?;
    writeln!(o, "<h1>{}<span class=\"badge {verdict_class}\">{}</span></h1>", esc(&r.scenario), esc(&r.verdict))?;
    if let Some(c) = &r.client_bound {
        client_bound(o, c)?;
    }
    let p = &r.phases;
    let broker = match &r.broker.url {
        Some(u) => format!("{} ({})", r.broker.kind, u),
        None => r.broker.kind.clone(),
    };
    writeln!(
        o,
        "<div class=\"meta\"><span>run <code>{}</code></span><span>started {}</span><span>broker {}</span><span>scenario file {}</span></div>",
        esc(&r.run_id),
        esc(&r.started_at),
        esc(&broker),
        esc(&r.scenario_file)
    )?;
    writeln!(
        o,
        "<div class=\"meta\"><span>warmup {}</span><span>measure {}</span><span>cooldown {}</span><span>drain {}{}</span><span>interval {}</span><span>{} agent(s)</span></div>",
        fmt_secs_exact(p.warmup_s),
        fmt_secs_exact(p.duration_s),
        fmt_secs_exact(p.cooldown_s),
        fmt_secs_exact(p.drain_s),
        if p.drain_timed_out {
            format!(" (timed out at {})", fmt_secs_exact(p.drain_timeout_s))
        } else {
            String::new()
        },
        fmt_secs_exact(p.report_interval_s),
        r.agents.len()
    )?;
    write!(
        o,
        "<nav><a href=\"#summary\">summary</a><a href=\"#slo\">SLOs</a><a href=\"#groups\">groups</a>{}",
        if interactive {
            "<a href=\"#interactive\">charts</a>"
        } else {
            "<a href=\"#throughput\">throughput</a><a href=\"#latency\">latency</a><a href=\"#distribution\">distribution</a>"
        }
    )?;
    if r.ceiling.is_some() {
        write!(o, "<a href=\"#ceiling\">ceiling</a>")?;
    }
    writeln!(
        o,
        "<a href=\"#delivery\">delivery</a><a href=\"#agents\">agents</a><a href=\"#notes\">notes</a></nav>\n</header>"
    )
}

/// At the top: the figures were bounded by the client, and by what.
fn client_bound(o: &mut String, c: &ClientBound) -> std::fmt::Result {
    writeln!(o, "<div class=\"client-bound\"><p class=\"no\">Figures bounded by the client (the generator), not only the broker:</p><ul>")?;
    for reason in &c.reasons {
        writeln!(
            o,
            "<li>{} <span class=\"hint\">({}: {})</span></li>",
            esc(&reason.detail),
            esc(&reason.criterion),
            esc(&reason.agents.join(", "))
        )?;
    }
    writeln!(o, "</ul></div>")
}

fn summary(o: &mut String, r: &Report) -> std::fmt::Result {
    let t = &r.totals;
    writeln!(o, "<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">")?;
    let pub_rate: f64 = r.groups.iter().filter(|g| g.role == "producer").map(|g| g.rate_msgs_per_s).sum();
    let recv_rate: f64 = r.groups.iter().filter(|g| g.role == "consumer").map(|g| g.rate_msgs_per_s).sum();
    let cards: [(&str, String, bool); 10] = [
        ("publish rate", format!("{}/s", fmt_count(pub_rate)), false),
        ("receive rate", format!("{}/s", fmt_count(recv_rate)), false),
        ("sent", t.sent.to_string(), false),
        ("acked", t.acked.to_string(), false),
        ("received", t.received.to_string(), false),
        ("send errors", t.send_errors.to_string(), t.send_errors > 0),
        ("lost", t.lost.to_string(), t.lost > 0),
        ("duplicated", t.duplicated.to_string(), t.duplicated > 0),
        ("redelivered", t.redelivered.to_string(), false),
        ("reordered", t.reordered.to_string(), false),
    ];
    for (k, v, bad) in cards {
        writeln!(
            o,
            "<div class=\"card{}\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            if bad { " bad" } else { "" },
            esc(&v),
            esc(k)
        )?;
    }
    writeln!(o, "</div>")?;
    if let Some(c) = &r.ceiling {
        writeln!(o, "<p>Ceiling: {} (<a href=\"#ceiling\">curve</a>).</p>", ceiling_result(c))?;
    }
    writeln!(
        o,
        "<p class=\"hint\">Totals cover the whole run (warmup included); group rates and latencies cover the measurement phase.</p></section>"
    )
}

fn slo(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"slo\"><h2>SLOs</h2>")?;
    if r.slo.is_empty() {
        writeln!(o, "<p class=\"empty\">The scenario sets no SLOs.</p></section>")?;
        return Ok(());
    }
    writeln!(o, "<div class=\"scroll\"><table><tr><th>check</th><th class=\"n\">limit</th><th class=\"n\">actual</th><th>result</th></tr>")?;
    for c in &r.slo {
        writeln!(
            o,
            "<tr{}><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            if c.pass { "" } else { " class=\"bad\"" },
            esc(&c.name),
            esc(&c.limit),
            esc(&c.actual),
            if c.pass { "<span class=\"ok\">pass</span>" } else { "<span class=\"no\">FAIL</span>" }
        )?;
    }
    writeln!(o, "</table></div></section>")
}

fn groups(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"groups\"><h2>Groups (measurement phase)</h2>")?;
    if r.groups.is_empty() {
        return writeln!(o, "<p class=\"empty\">No groups.</p></section>");
    }
    writeln!(
        o,
        "<div class=\"scroll\"><table><tr><th>group</th><th>role</th><th>topic</th><th class=\"n\">messages</th><th class=\"n\">rate/s</th><th class=\"n\">target/s</th><th class=\"n\">MB/s</th>{}<th class=\"n\">max</th><th class=\"n\">errors</th><th class=\"n\">late sends</th><th class=\"n\">in-flight wait</th></tr>",
        percentile_heads(&r.reported_percentiles())
    )?;
    for g in &r.groups {
        let l = &g.latency_us;
        let role = match &g.subscription_type {
            Some(t) => format!("{} ({t})", g.role),
            None => g.role.clone(),
        };
        writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td>{}<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&g.name),
            esc(&role),
            esc(&g.topic),
            g.messages,
            g.rate_msgs_per_s,
            g.target_rate_msgs_per_s
                .map(|t| format!("{t:.1}"))
                .unwrap_or_else(|| "-".into()),
            g.rate_bytes_per_s / 1e6,
            percentile_cells(&r.reported_percentiles(), l),
            lat_cell(l.max, l.count),
            g.send_errors.max(g.errors_by_kind.values().sum()),
            g.late_sends,
            g.in_flight_wait_percent.map(|w| format!("{w:.1} %")).unwrap_or_else(|| "-".into())
        )?;
    }
    writeln!(o, "</table></div>")?;
    error_kinds(o, r)?;
    writeln!(
        o,
        "<p class=\"hint\">p50..max: producers <code>publish_response</code> (includes any time the generator fell behind), consumers <code>e2e_service</code>; every kind below. In-flight wait: the share of the measurement producers were due to send but held back (<code>max_in_flight</code> sends awaiting acks, or client backpressure).</p>"
    )?;
    latency_kinds(o, r)?;
    writeln!(o, "</section>")
}

/// Every group's latencies, one row per kind (`groups[].latency`), what
/// each kind measures, and why ack latency is missing where it is.
fn latency_kinds(o: &mut String, r: &Report) -> std::fmt::Result {
    if r.groups.iter().all(|g| g.latency.is_empty()) {
        return Ok(()); // an older report
    }
    let ps = r.reported_percentiles();
    writeln!(
        o,
        "<h3 id=\"latency-kinds\">Latency by kind</h3><div class=\"scroll\"><table><tr><th>group</th><th>kind</th>{}<th class=\"n\">max</th><th class=\"n\">samples</th></tr>",
        percentile_heads(&ps)
    )?;
    for g in &r.groups {
        for (_, kind, _) in LATENCY_KINDS.iter().filter(|(role, _, _)| *role == g.role) {
            let name = format!("{} ({})", g.name, g.role);
            if let Some(l) = g.latency.get(*kind) {
                writeln!(
                    o,
                    "<tr><td>{}</td><td><code>{kind}</code></td>{}<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(&name),
                    percentile_cells(&ps, l),
                    lat_cell(l.max, l.count),
                    l.count
                )?;
            } else if let (&"ack", Some(why)) = (kind, &g.ack_latency_not_measured) {
                writeln!(
                    o,
                    "<tr><td>{}</td><td><code>ack</code></td><td colspan=\"{}\">{}</td></tr>",
                    esc(&name),
                    ps.len() + 2,
                    esc(why)
                )?;
            }
        }
    }
    writeln!(o, "</table></div><ul class=\"hint\">")?;
    for (_, kind, what) in LATENCY_KINDS {
        writeln!(o, "<li><code>{kind}</code>: {}</li>", esc(what))?;
    }
    writeln!(o, "</ul>")
}

/// Every group's errors by kind (send, receive and ack apart), whole run.
fn error_kinds(o: &mut String, r: &Report) -> std::fmt::Result {
    if r.groups.iter().all(|g| g.errors_by_kind.is_empty()) {
        return Ok(());
    }
    writeln!(o, "<h3>Errors by kind (whole run)</h3><div class=\"scroll\"><table id=\"error-kinds\"><tr><th>group</th><th>role</th><th>kind</th><th class=\"n\">errors</th></tr>")?;
    for g in &r.groups {
        let mut kinds: Vec<(&String, &u64)> = g.errors_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, n) in kinds {
            writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{n}</td></tr>",
                esc(&g.name),
                esc(&g.role),
                esc(k)
            )?;
        }
    }
    writeln!(o, "</table></div>")
}

/// A header cell per reported percentile.
fn percentile_heads(ps: &[Percentile]) -> String {
    ps.iter().map(|p| format!("<th class=\"n\">{}</th>", p.label())).collect()
}

/// A cell per reported percentile of `l` ("-" where it has no figure).
fn percentile_cells(ps: &[Percentile], l: &Latency) -> String {
    let cell = |v: Option<f64>| v.map(|v| lat_cell(v, l.count)).unwrap_or_else(|| "-".into());
    ps.iter().map(|p| format!("<td class=\"n\">{}</td>", cell(l.at(*p)))).collect()
}

fn lat_cell(v: f64, count: u64) -> String {
    if count == 0 {
        "-".into()
    } else {
        fmt_us_spaced(v)
    }
}

/// (role, group) pairs in the order of `report.groups`, then any extra
/// ones found only in the intervals.
fn series_keys(r: &Report) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = r.groups.iter().map(|g| (g.role.clone(), g.name.clone())).collect();
    for row in &r.intervals {
        let k = (row.role.clone(), row.group.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

fn rows_of<'a>(r: &'a Report, role: &'a str, group: &'a str) -> impl Iterator<Item = &'a IntervalRow> {
    r.intervals.iter().filter(move |x| x.role == role && x.group == group)
}

/// Phase shading for the time charts.
fn phase_bands(r: &Report) -> Vec<Band> {
    let p = &r.phases;
    let w = p.warmup_s.max(0.0);
    let m = w + p.duration_s.max(0.0);
    let c = m + p.cooldown_s.max(0.0);
    let d = c + p.drain_s.max(0.0);
    let mut out = Vec::new();
    if w > 0.0 {
        out.push(Band::new(0.0, w, "warmup", "#eceff3"));
    }
    out.push(Band::new(w, m, "measure", "none"));
    if c > m {
        out.push(Band::new(m, c, "cooldown", "#f6f1e4"));
    }
    if d > c {
        out.push(Band::new(c, d, "drain", "#e8f0f8"));
    }
    // Fault windows over the phases, drawn after them.
    out.extend(r.faults.iter().map(|f| Band::new(f.from_s, f.to_s, "fault", "#f8d7d5")));
    out
}

fn throughput(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"throughput\"><h2>Throughput over time</h2>")?;
    if r.intervals.is_empty() {
        return writeln!(o, "<p class=\"empty\">No intervals were recorded.</p></section>");
    }
    let mut series = Vec::new();
    for (i, (role, group)) in series_keys(r).iter().enumerate() {
        let pts: Vec<(f64, f64)> = rows_of(r, role, group).map(|x| (x.t_s, x.rate_msgs_per_s)).collect();
        if pts.is_empty() {
            continue;
        }
        let verb = if role == "producer" { "acked" } else { "received" };
        series.push(Series {
            label: format!("{group} ({verb})"),
            color: color(i),
            dash: if role == "producer" { Dash::Solid } else { Dash::Dashed },
            points: pts,
            line: true,
            markers: false,
        });
    }
    let bands = phase_bands(r);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(bands.iter().map(|b| b.x1)).chain([0.0]);
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let chart = Chart {
        title: "Throughput over time".into(),
        x: Axis::fit(Scale::Linear, Fmt::Seconds, "time since start (s)", xs, true),
        y: Axis::fit(Scale::Linear, Fmt::Rate, "messages / s", ys, true),
        series,
        bands,
        vlines: Vec::new(),
        diagonal: false,
    };
    chart.render(o)?;
    writeln!(
        o,
        "<p class=\"hint\">Per interval: producers count acknowledged messages (solid), consumers received ones (dashed). Shaded: warmup, cooldown and drain.</p></section>"
    )
}

fn latency_over_time(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"latency\"><h2>Latency percentiles over time</h2>")?;
    if r.intervals.is_empty() {
        return writeln!(o, "<p class=\"empty\">No intervals were recorded.</p></section>");
    }
    let keys = series_keys(r);
    for (role, title) in [("producer", "publish_response (producers)"), ("consumer", "e2e_service (consumers)")] {
        let mut series = Vec::new();
        for (i, (grole, group)) in keys.iter().enumerate() {
            if grole != role {
                continue;
            }
            let rows: Vec<&IntervalRow> = rows_of(r, grole, group).collect();
            if rows.is_empty() {
                continue;
            }
            for (k, p) in r.reported_percentiles().into_iter().enumerate() {
                series.push(Series {
                    label: format!("{group} {}", p.label()),
                    color: color(i),
                    dash: DASHES[k % DASHES.len()],
                    // A figure the report lacks (p95 of a version-1 report) leaves a gap.
                    points: rows.iter().map(|x| (x.t_s, x.at(p).unwrap_or(0.0))).collect(),
                    line: true,
                    markers: false,
                });
            }
        }
        writeln!(o, "<h3>{}</h3>", esc(title))?;
        if series.is_empty() {
            writeln!(o, "<p class=\"empty\">No {role} groups.</p>")?;
            continue;
        }
        let bands = phase_bands(r);
        let xs =
            series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(bands.iter().map(|b| b.x1)).chain([0.0]);
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        Chart {
            title: title.into(),
            x: Axis::fit(Scale::Linear, Fmt::Seconds, "time since start (s)", xs, true),
            y: Axis::fit(Scale::Log, Fmt::Micros, "latency (log scale)", ys, false),
            series,
            bands,
            vlines: Vec::new(),
            diagonal: false,
        }
        .render(o)?;
    }
    let styles: Vec<String> = r
        .reported_percentiles()
        .iter()
        .enumerate()
        .map(|(k, p)| format!("{} {}", p.label(), ["solid", "dashed", "dotted"][k % DASHES.len()]))
        .collect();
    writeln!(
        o,
        "<p class=\"hint\">Per interval, merged across agents: {}. Intervals without samples leave a gap.</p></section>",
        styles.join(", ")
    )
}

/// The line styles of the percentiles, in turn.
const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];

fn distribution(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"distribution\"><h2>Latency distribution (percentile spectrum)</h2>")?;
    if r.histograms.is_empty() {
        return writeln!(o, "<p class=\"empty\">The report holds no histograms.</p></section>");
    }
    let keys = series_keys(r);
    let mut problems = Vec::new();
    for (role, title, main_kind, alt_kind, alt_name) in [
        ("producer", "Publish latency (producers)", "publish_response", "publish_service", "publish_service"),
        ("consumer", "End-to-end and ack latency (consumers)", "e2e", "e2e_response", "e2e_response"),
    ] {
        let mut series = Vec::new();
        for h in r.histograms.iter().filter(|h| h.role == role) {
            let dash = if h.kind == main_kind {
                Dash::Solid
            } else if h.kind == alt_kind {
                Dash::Dashed
            } else {
                Dash::Dotted
            };
            let hist = match Hist::decode_base64(&h.data) {
                Ok(x) => x,
                Err(e) => {
                    problems.push(format!("{} {} ({}): {e}", h.role, h.group, h.kind));
                    continue;
                }
            };
            let pts = spectrum(&hist);
            if pts.is_empty() {
                continue;
            }
            let idx = keys.iter().position(|(kr, kg)| kr == &h.role && kg == &h.group).unwrap_or(keys.len());
            let label = if h.kind == "e2e" {
                format!("{} (e2e_service)", h.group)
            } else if h.kind == main_kind {
                format!("{} ({main_kind})", h.group)
            } else if h.kind == alt_kind {
                format!("{} ({alt_name})", h.group)
            } else {
                format!("{} ({})", h.group, h.kind)
            };
            series.push(Series { label, color: color(idx), dash, points: pts, line: true, markers: false });
        }
        writeln!(o, "<h3>{}</h3>", esc(title))?;
        if series.is_empty() {
            writeln!(o, "<p class=\"empty\">No samples.</p>")?;
            continue;
        }
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain([0.0]);
        Chart {
            title: title.into(),
            x: Axis::fit(Scale::Log, Fmt::Percentile, "percentile", xs.chain([10.0]), false),
            y: Axis::fit(Scale::Linear, Fmt::Micros, "latency", ys, true),
            series,
            bands: Vec::new(),
            vlines: Vec::new(),
            diagonal: false,
        }
        .render(o)?;
    }
    for p in &problems {
        writeln!(o, "<p class=\"no\">histogram did not decode: {}</p>", esc(p))?;
    }
    writeln!(
        o,
        "<p class=\"hint\">From the merged HDR histograms of the measurement phase. The x axis is 1/(1−q) on a log scale, so each step to the right is one more nine; the curve ends at the maximum. Solid: producers' <code>publish_response</code>, consumers' <code>e2e_service</code>; dashed: <code>publish_service</code>, <code>e2e_response</code>; dotted: consumers' <code>ack</code>.</p></section>"
    )
}

/// The search's result as HTML: the rate and what bound it, or, when every
/// step up to `ceiling.max` passed, that the rate is only a lower bound.
fn ceiling_result(c: &Ceiling) -> String {
    let rate = esc(&fmt_count(c.rate_msgs_per_s));
    if c.bound_by == "search_max" {
        format!("<b>at least {rate} msg/s</b>: every step up to ceiling.max passed; raise ceiling.max")
    } else {
        format!("<b>{rate} msg/s</b>, bound by the <b>{}</b>", esc(&c.bound_by))
    }
}

/// The search's steps, their latency at the percentiles `ps`.
fn ceiling(o: &mut String, c: &Ceiling, ps: &[Percentile]) -> std::fmt::Result {
    writeln!(o, "<section id=\"ceiling\"><h2>Ceiling search</h2>")?;
    writeln!(o, "<p>Highest rate that held the SLOs: {}.</p>", ceiling_result(c))?;
    if c.steps.is_empty() {
        return writeln!(o, "<p class=\"empty\">No steps recorded.</p></section>");
    }
    let mut steps = c.steps.clone();
    steps.sort_by(|a, b| a.target.total_cmp(&b.target));
    let along = CeilingAxis::new(c, &steps);
    writeln!(o, "<h3>Achieved vs offered rate</h3>")?;
    ceiling_rate_chart(o, &steps, &along)?;
    writeln!(o, "<h3>Latency vs offered rate</h3>")?;
    ceiling_latency_chart(o, &steps, &along)?;

    writeln!(
        o,
        "<div class=\"scroll\"><table><tr><th class=\"n\">offered/s</th><th class=\"n\">achieved/s</th><th class=\"n\">ratio</th>{}<th class=\"n\">max</th><th>verdict</th></tr>",
        percentile_heads(ps)
    )?;
    for s in &steps {
        let ok = s.verdict == "pass";
        writeln!(
            o,
            "<tr{}><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td>{}<td class=\"n\">{}</td><td>{}</td></tr>",
            if ok { "" } else { " class=\"bad\"" },
            s.target,
            s.achieved,
            if s.target > 0.0 {
                format!("{:.3}", s.achieved / s.target)
            } else {
                "-".into()
            },
            percentile_cells(ps, &s.latency_us),
            fmt_us_spaced(s.latency_us.max),
            if ok {
                "<span class=\"ok\">pass</span>".to_string()
            } else {
                format!("<span class=\"no\">{}</span>", esc(&s.verdict))
            }
        )?;
    }
    writeln!(
        o,
        "</table></div><p class=\"hint\">The grey diagonal is achieved = offered; where the curve falls below it the system no longer keeps up.</p></section>"
    )
}

/// What both ceiling charts share: the offered rates on the x axis, the
/// ceiling's vertical line, and the steps that passed or failed.
struct CeilingAxis {
    targets: Vec<f64>,
    ceiling: f64,
    vline: VLine,
}

impl CeilingAxis {
    fn new(c: &Ceiling, steps: &[CeilingStep]) -> CeilingAxis {
        CeilingAxis {
            targets: steps.iter().map(|s| s.target).collect(),
            ceiling: c.rate_msgs_per_s,
            vline: VLine {
                x: c.rate_msgs_per_s,
                label: format!("ceiling {}", fmt_count(c.rate_msgs_per_s)),
                color: "#1a7f37",
            },
        }
    }

    fn x(&self) -> Axis {
        Axis::fit(
            Scale::Linear,
            Fmt::Rate,
            "offered rate (msg/s)",
            self.targets.iter().copied().chain([self.ceiling, 0.0]),
            true,
        )
    }
}

/// (offered, `f` of the step) for the steps that passed (`keep`) or failed.
fn step_points(steps: &[CeilingStep], f: fn(&CeilingStep) -> f64, keep: bool) -> Vec<(f64, f64)> {
    steps.iter().filter(|s| (s.verdict == "pass") == keep).map(|s| (s.target, f(s))).collect()
}

/// Achieved against offered rate, with the y = x diagonal.
fn ceiling_rate_chart(o: &mut String, steps: &[CeilingStep], along: &CeilingAxis) -> std::fmt::Result {
    let pts = |f: fn(&CeilingStep) -> f64, keep: bool| step_points(steps, f, keep);
    let targets = &along.targets;

    let achieved: Vec<(f64, f64)> = steps.iter().map(|s| (s.target, s.achieved)).collect();
    let ys: Vec<f64> = achieved.iter().map(|p| p.1).chain(targets.iter().copied()).collect();
    Chart {
        title: "Achieved vs offered rate".into(),
        x: along.x(),
        y: Axis::fit(Scale::Linear, Fmt::Rate, "achieved (msg/s)", ys.into_iter(), true),
        series: vec![
            Series {
                label: "achieved".into(),
                color: color(0),
                dash: Dash::Solid,
                points: achieved,
                line: true,
                markers: false,
            },
            Series {
                label: "step passed".into(),
                color: "#1a7f37",
                dash: Dash::Solid,
                points: pts(|s| s.achieved, true),
                line: false,
                markers: true,
            },
            Series {
                label: "step failed".into(),
                color: "#cf222e",
                dash: Dash::Solid,
                points: pts(|s| s.achieved, false),
                line: false,
                markers: true,
            },
        ],
        bands: Vec::new(),
        vlines: vec![along.vline.clone()],
        diagonal: true,
    }
    .render(o)
}

/// p99 and p50 latency against offered rate, log scale.
fn ceiling_latency_chart(o: &mut String, steps: &[CeilingStep], along: &CeilingAxis) -> std::fmt::Result {
    let pts = |f: fn(&CeilingStep) -> f64, keep: bool| step_points(steps, f, keep);
    let p99: Vec<(f64, f64)> = steps.iter().map(|s| (s.target, s.latency_us.p99)).collect();
    let p50: Vec<(f64, f64)> = steps.iter().map(|s| (s.target, s.latency_us.p50)).collect();
    let ys: Vec<f64> = p99.iter().chain(p50.iter()).map(|p| p.1).collect();
    Chart {
        title: "Latency vs offered rate".into(),
        x: along.x(),
        y: Axis::fit(Scale::Log, Fmt::Micros, "latency (log scale)", ys.into_iter(), false),
        series: vec![
            Series { label: "p99".into(), color: color(2), dash: Dash::Solid, points: p99, line: true, markers: false },
            Series {
                label: "p50".into(),
                color: color(0),
                dash: Dash::Dashed,
                points: p50,
                line: true,
                markers: false,
            },
            Series {
                label: "p99, step passed".into(),
                color: "#1a7f37",
                dash: Dash::Solid,
                points: pts(|s| s.latency_us.p99, true),
                line: false,
                markers: true,
            },
            Series {
                label: "p99, step failed".into(),
                color: "#cf222e",
                dash: Dash::Solid,
                points: pts(|s| s.latency_us.p99, false),
                line: false,
                markers: true,
            },
        ],
        bands: Vec::new(),
        vlines: vec![along.vline.clone()],
        diagonal: false,
    }
    .render(o)
}

fn delivery(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"delivery\"><h2>Delivery: loss, duplicates, reordering</h2>")?;
    if r.subscriptions.is_empty() {
        return writeln!(o, "<p class=\"empty\">No subscriptions.</p></section>");
    }
    writeln!(
        o,
        "<div class=\"scroll\"><table><tr><th>topic</th><th>subscription</th><th>type</th><th class=\"n\">consumers</th><th class=\"n\">expected</th><th class=\"n\">received</th><th class=\"n\">deliveries</th><th class=\"n\">lost</th><th class=\"n\">duplicated</th><th class=\"n\">redelivered</th><th class=\"n\">reordered</th><th class=\"n\">unacked recv</th><th>stalled</th><th>missing (sample)</th></tr>"
    )?;
    for s in &r.subscriptions {
        let bad = s.lost > 0 || s.stalled;
        let missing = if s.missing_sample.is_empty() { String::new() } else { esc(&s.missing_sample.join(", ")) };
        writeln!(
            o,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"wrap\"><code>{}</code></td></tr>",
            if bad { " class=\"bad\"" } else { "" },
            esc(&s.topic),
            esc(&s.subscription),
            esc(&s.sub_type),
            s.consumers,
            s.expected,
            s.received_unique,
            s.deliveries,
            num_bad(s.lost),
            num_bad(s.duplicated),
            s.redelivered,
            s.reordered,
            s.unacked_received,
            if s.stalled {
                "<span class=\"no\">STALLED</span>"
            } else {
                "no"
            },
            missing
        )?;
    }
    writeln!(
        o,
        "</table></div><p class=\"hint\">Whole run. Lost = acknowledged to a producer but never received on this subscription; failed sends are errors, not loss.</p></section>"
    )
}

fn num_bad(n: u64) -> String {
    if n > 0 {
        format!("<span class=\"no\">{n}</span>")
    } else {
        "0".into()
    }
}

fn agents(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"agents\"><h2>Agents</h2>")?;
    if r.agents.is_empty() {
        return writeln!(o, "<p class=\"empty\">No agents.</p></section>");
    }
    writeln!(
        o,
        "<div class=\"scroll\"><table><tr><th>agent</th><th>address (host)</th><th>status</th><th class=\"n\">clock offset</th><th class=\"n\">prod / cons</th><th class=\"n\">target/s</th><th class=\"n\">sent</th><th class=\"n\">acked</th><th class=\"n\">errors</th><th class=\"n\">received</th><th class=\"n\">pub/s</th><th class=\"n\">recv/s</th><th class=\"n\">CPU %</th><th class=\"n\">RSS MB</th><th class=\"n\">max lag</th></tr>"
    )?;
    for a in &r.agents {
        let ok = a.status == "ok";
        writeln!(
            o,
            "<tr{}><td>{}</td><td>{} ({})</td><td>{}</td><td class=\"n\">{:+.3} ± {:.3} ms{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1} ms</td></tr>",
            if ok { "" } else { " class=\"bad\"" },
            esc(&a.id),
            esc(&a.address),
            esc(&a.hostname),
            if ok {
                esc(&a.status)
            } else {
                format!("<span class=\"no\">{}</span>", esc(&a.status))
            },
            a.clock_offset_us / 1e3,
            a.clock_error_us / 1e3,
            if a.clock_updates > 0 { format!(" (moved {:+.3} ms)", a.clock_drift_us / 1e3) } else { String::new() },
            a.producers,
            a.consumers,
            a.target_rate_msgs_per_s,
            a.sent,
            a.acked,
            a.send_errors,
            a.received,
            a.publish_rate_msgs_per_s,
            a.receive_rate_msgs_per_s,
            a.cpu_percent,
            a.max_rss_mb,
            a.max_lag_ms
        )?;
        if let Some(e) = &a.error {
            writeln!(o, "<tr class=\"bad\"><td></td><td class=\"wrap\" colspan=\"14\">{}</td></tr>", esc(e))?;
        }
    }
    writeln!(
        o,
        "</table></div><p class=\"hint\">Clock offset: agent clock minus coordinator clock, ± the error bound (half the best ping's round trip). CPU: agent process, percent of one core. Rates: measurement phase.</p></section>"
    )
}

fn notes(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "<section id=\"notes\"><h2>Notes</h2>")?;
    if r.notes.is_empty() {
        return writeln!(o, "<p class=\"empty\">None.</p></section>");
    }
    writeln!(o, "<ul class=\"notes\">")?;
    for n in &r.notes {
        writeln!(o, "<li>{}</li>", esc(n))?;
    }
    writeln!(o, "</ul></section>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sample_report;
    use common::report::{CeilingStep, Latency};

    #[test]
    fn escapes_text() {
        assert_eq!(esc("<b>\"a\" & 'b'</b>"), "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;");
    }

    #[test]
    fn the_page_names_each_latency_kind_and_says_at_the_top_when_the_client_bound_the_figures() {
        let mut r = sample_report();
        let html = render_with(&r, Charts::Static);
        assert!(!html.contains("class=\"client-bound\""), "not bound, not said");
        for (_, kind, what) in LATENCY_KINDS {
            assert!(html.contains(&format!("<td><code>{kind}</code></td>")), "a row of {kind}");
            assert!(html.contains(&format!("<li><code>{kind}</code>: {}</li>", esc(what))), "{kind} explained");
        }
        let why = "not measured on pulsar: the client only queues the ack";
        for g in r.groups.iter_mut().filter(|g| g.role == "consumer") {
            g.latency.remove("ack");
            g.ack_latency_not_measured = Some(why.into());
        }
        r.client_bound = Some(ClientBound {
            summary: "agent a1 used 99% of its 1 CPU(s) (limit 90%)".into(),
            reasons: vec![common::report::ClientBoundReason {
                criterion: "cpu".into(),
                agents: vec!["a1".into()],
                detail: "agent a1 used 99% of its 1 CPU(s) (limit 90%)".into(),
                ..Default::default()
            }],
        });
        let html = render_with(&r, Charts::Static);
        // The reason spans the percentile columns, max and samples.
        let span = r.reported_percentiles().len() + 2;
        assert!(html.contains(&format!("<td><code>ack</code></td><td colspan=\"{span}\">{}</td>", esc(why))));
        let top = html.find("class=\"client-bound\"").expect("said");
        assert!(top < html.find("<section id=\"summary\">").expect("summary"), "at the top");
        assert!(html
            .contains("<li>agent a1 used 99% of its 1 CPU(s) (limit 90%) <span class=\"hint\">(cpu: a1)</span></li>"));
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut r = sample_report();
        r.notes.push("<script>alert(1)</script> & more".into());
        r.groups[0].name = "p<1>".into();
        r.groups[0].in_flight_wait_percent = Some(42.5);
        let html = render_with(&r, Charts::Static);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(!html.contains("<script"), "no scripts, escaped notes");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(html.contains("p&lt;1&gt;"));
        // Nothing is fetched: the only URL is the SVG namespace.
        let without_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        assert!(!html.contains("src="));
        for id in ["summary", "slo", "groups", "throughput", "latency", "distribution", "delivery", "agents", "notes"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(!html.contains("id=\"ceiling\""), "no ceiling section without one");
        assert!(html.contains("<path d=\"M"), "charts have lines");
        assert!(html.contains("99.9%"), "percentile axis");
        assert!(html.contains(">warmup<"), "phases are shaded and labelled");
        assert!(html.contains("STALLED"));
        assert!(html.contains("<th class=\"n\">in-flight wait</th>") && html.contains(">42.5 %<"));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        // Deterministic: the same report renders the same bytes.
        assert_eq!(html, render_with(&r, Charts::Static));
    }

    #[test]
    fn renders_ceiling_curve() {
        let mut r = sample_report();
        let lat = |p99: f64| Latency {
            p50: p99 / 4.0,
            p90: p99 / 2.0,
            p99,
            p999: p99 * 2.0,
            max: p99 * 3.0,
            mean: p99 / 4.0,
            count: 1000,
            ..Latency::default()
        };
        r.ceiling = Some(Ceiling {
            rate_msgs_per_s: 40_000.0,
            bound_by: "broker".into(),
            steps: vec![
                CeilingStep { target: 10_000.0, achieved: 10_000.0, latency_us: lat(2_000.0), verdict: "pass".into() },
                CeilingStep { target: 40_000.0, achieved: 39_900.0, latency_us: lat(9_000.0), verdict: "pass".into() },
                CeilingStep {
                    target: 80_000.0,
                    achieved: 52_000.0,
                    latency_us: lat(250_000.0),
                    verdict: "fail".into(),
                },
            ],
        });
        let html = render(&r);
        assert!(html.contains("<section id=\"ceiling\">"));
        assert!(html.contains("href=\"#ceiling\""));
        assert!(html.contains("Achieved vs offered rate"));
        assert!(html.contains("Latency vs offered rate"));
        assert!(html.contains("achieved = offered"), "diagonal reference");
        assert!(html.contains("ceiling 40.0k"), "ceiling marker");
        assert!(html.contains("bound by the <b>broker</b>"));
        assert!(!html.contains("raise ceiling.max"));
        assert!(html.contains("<td class=\"n\">52000.0</td>"));
        assert!(html.contains("250 ms"), "p99 of the failed step");
        // Pass and fail markers.
        assert_eq!(html.matches("r=\"4\" fill").count(), 6);
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn spectrum_covers_the_nines_and_ends_at_max() {
        let mut h = Hist::new();
        for i in 1..=100_000i64 {
            h.record_ns(i * 1_000);
        }
        let pts = spectrum(&h);
        assert_eq!(pts[0].0, 1.0);
        let last = pts[pts.len() - 1];
        assert!((last.0 - 1e5).abs() < 1.0);
        assert!((last.1 - 100_000.0).abs() / 100_000.0 < 0.01, "{last:?}");
        // Monotone in both axes.
        for w in pts.windows(2) {
            assert!(w[1].0 >= w[0].0 && w[1].1 >= w[0].1, "{w:?}");
        }
        // p90 is at x = 10.
        let p90 = pts.iter().find(|p| (p.0 - 10.0).abs() < 1e-9).expect("x=10");
        assert!((p90.1 - 90_000.0).abs() / 90_000.0 < 0.01, "{p90:?}");
        // Few samples: stops early.
        let mut small = Hist::new();
        for i in 1..=50i64 {
            small.record_ns(i * 1_000);
        }
        let pts = spectrum(&small);
        assert!(pts.iter().all(|p| p.0 <= 50.0));
        assert!(spectrum(&Hist::new()).is_empty());
    }
}
