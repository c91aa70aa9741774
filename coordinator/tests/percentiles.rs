//! The reported percentiles on the memory broker: p95 by default and the
//! scenario's `report.percentiles` in report.json (groups and intervals),
//! timeseries.csv, the console summary (`coordinator report`), report.html
//! and /metrics (coordinator and agent, scraped during the run); SLOs in
//! the general form (`p95_e2e`); bad lists refused; `compare` and `report`
//! of a version-1 report.json.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::common::metrics::{parse, scrape};
use common::*;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Two seconds on the memory broker: producers `p` at 200 msg/s on topic
/// `t`, consumers `c`; `extra` appended (a `report:` or `slo:` section).
fn scenario(extra: &str) -> String {
    format!(
        "name: pct\nbroker: {{kind: memory}}\ntopics: [{{name: t}}]\nproducers: [{{name: p, topic: t, rate: 200}}]\n\
         consumers: [{{name: c, topic: t}}]\nphases: {{duration: 2s}}\n{extra}"
    )
}

/// What one run showed: its results directory, report.json, and the
/// `quantile` labels of the latency gauges the coordinator's and the
/// agent's /metrics served during it.
struct Shown {
    dir: PathBuf,
    report: Value,
    coordinator_quantiles: BTreeSet<String>,
    agent_quantiles: BTreeSet<String>,
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// Every `quantile` label of the latency gauges in a scrape of `addr`.
async fn quantiles(addr: SocketAddr) -> BTreeSet<String> {
    let Ok(text) = scrape(addr).await else { return BTreeSet::new() };
    let samples = parse(&text).expect("the exposition parses");
    samples
        .iter()
        .filter(|s| s.name == "loadgen_e2e_latency_seconds" || s.name == "loadgen_publish_latency_seconds")
        .filter_map(|s| s.label("quantile").map(str::to_string))
        .collect()
}

/// Runs `yaml` on one in-process agent serving /metrics, the coordinator's
/// metrics served too, both scraped while it runs.
async fn run_scraped(tag: &str, yaml: &str) -> Shown {
    let stop = CancellationToken::new();
    let (l, addr) = listener().await;
    let (ml, agent_metrics) = listener().await;
    let mut opts = agent::AgentOptions::new(format!("{tag}-agent"));
    opts.memory = agent::driver::memory::MemoryBroker::new();
    tokio::spawn(::common::metrics::serve(ml, opts.metrics.renderer(opts.agent_id.clone()), stop.clone()));
    tokio::spawn(agent::serve(l, opts, stop.clone()));
    let metrics = coordinator::metrics::RunMetrics::new();
    let (cl, coordinator_metrics) = listener().await;
    tokio::spawn(::common::metrics::serve(cl, metrics.renderer(), stop.clone()));

    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let scraper = tokio::spawn(async move {
        let (mut c, mut a) = (BTreeSet::new(), BTreeSet::new());
        while !d2.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.extend(quantiles(coordinator_metrics).await);
            a.extend(quantiles(agent_metrics).await);
        }
        (c, a)
    });
    let scenario = write_scenario(tag, yaml);
    let opts = coordinator::run::RunOptions {
        scenario: scenario.clone(),
        agents: vec![addr.to_string()],
        results: Some(scenario.parent().expect("dir").to_path_buf()),
        quiet: true,
        metrics: Some(metrics.clone()),
        ..Default::default()
    };
    let out = coordinator::run::run(opts).await.expect("run");
    done.store(true, Ordering::SeqCst);
    let (coordinator_quantiles, agent_quantiles) = scraper.await.expect("scraper");
    stop.cancel();
    let report = serde_json::from_str(&read(&out.dir, "report.json")).expect("report.json");
    Shown { dir: out.dir, report, coordinator_quantiles, agent_quantiles }
}

/// report.html of the run in `dir` after headless Chromium drew its
/// charts (the DOM); None, said, without Chromium or the chart library.
fn drawn(dir: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() || !coordinator::ui::assets::charts_available() {
        println!("skipped: the drawn charts (no chromium at {CHROMIUM}, or no chart library)");
        return None;
    }
    let html = std::fs::canonicalize(dir.join("report.html")).expect("html path");
    let out = headless_chromium(&dir.join("chromium-profile"))
        .args(["--virtual-time-budget=3000", "--dump-dom", &format!("file://{}", utf8(&html))])
        .output()
        .expect("chromium --dump-dom");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("data-charts=\"5\""), "throughput, two latency, two spectra charts drawn");
    Some(dom)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("an object: {v}")).keys().cloned().collect()
}

/// The summary's groups header: the columns between TARGET/s and max.
fn summary_columns(summary: &str) -> Vec<String> {
    let head = summary.lines().find(|l| l.starts_with("GROUP")).expect("the groups table");
    let cols: Vec<&str> = head.split_whitespace().collect();
    let from = cols.iter().position(|c| *c == "TARGET/s").expect("TARGET/s") + 1;
    let to = cols.iter().position(|c| *c == "max").expect("max");
    cols[from..to].iter().map(|c| c.to_string()).collect()
}

/// timeseries.csv's latency columns (between rate_msgs_per_s and
/// max_lag_ms) and its first consumer row's cells in them.
fn csv_latency(dir: &Path) -> (Vec<String>, Vec<String>) {
    let csv = read(dir, "timeseries.csv");
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().expect("header").split(',').collect();
    let from = head.iter().position(|c| *c == "rate_msgs_per_s").expect("rate column") + 1;
    let to = head.iter().position(|c| *c == "max_lag_ms").expect("max_lag_ms column");
    let row: Vec<&str> =
        lines.map(|l| l.split(',').collect::<Vec<_>>()).find(|r| r[4] == "consumer" && r[8] != "0").expect("a row");
    (head[from..to].iter().map(|c| c.to_string()).collect(), row[from..to].iter().map(|c| c.to_string()).collect())
}

/// The consumer group `c` and its first interval row with samples.
fn consumer(rep: &Value) -> (&Value, &Value) {
    let g = group(rep, "c");
    let rows = rep["intervals"].as_array().expect("intervals");
    let row = rows.iter().find(|r| r["group"] == "c" && r["received"].as_u64() > Some(0)).expect("a row");
    (g, row)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_p95_is_in_every_output() {
    let shown = run_scraped("pct-default", &scenario("")).await;
    let rep = &shown.report;
    assert_eq!(rep["verdict"], "pass", "{rep}");
    assert_eq!(rep["schema_version"], 2);
    assert_eq!(rep["percentiles"], serde_json::json!([50.0, 90.0, 95.0, 99.0, 99.9]));
    let all = set(&["p50", "p90", "p95", "p99", "p99.9"]);
    let (g, row) = consumer(rep);
    let lat = &g["latency_us"];
    assert_eq!(keys(&lat["percentiles"]), all);
    let p95 = lat["p95"].as_f64().expect("latency_us.p95");
    assert_eq!(lat["percentiles"]["p95"].as_f64(), Some(p95));
    assert!(lat["p50"].as_f64() <= Some(p95) && Some(p95) <= lat["p99"].as_f64(), "{lat}");
    assert_eq!(keys(&row["percentiles_us"]), all);
    let row_p95 = row["p95_us"].as_f64().expect("intervals[].p95_us");
    assert!(row_p95 > 0.0 && row["percentiles_us"]["p95"].as_f64() == Some(row_p95), "{row}");

    let (cols, cells) = csv_latency(&shown.dir);
    assert_eq!(cols, ["p50_us", "p90_us", "p95_us", "p99_us", "p999_us"]);
    // The first consumer row with samples is the one report.json's row is.
    let cell: f64 = cells[2].parse().expect("a p95 figure");
    assert!((cell - row_p95).abs() <= 0.05, "csv {cell} vs json {row_p95}");

    let summary = coordinator(&["report", utf8(&shown.dir)]);
    assert_eq!(summary.code, 0, "{}", summary.stderr);
    assert_eq!(summary_columns(&summary.stdout), ["p50", "p90", "p95", "p99", "p99.9"]);

    let html = read(&shown.dir, "report.html");
    assert!(html.contains("<th class=\"n\">p95</th>"), "groups table");
    if coordinator::ui::assets::charts_available() {
        assert!(html.contains("\"percentiles\":[\"p50\",\"p90\",\"p95\",\"p99\",\"p99.9\"]"), "the charts' model");
    } else {
        assert!(html.contains("p95 dashed"), "the latency chart's key");
    }
    if let Some(dom) = drawn(&shown.dir) {
        for want in ["c p50", "c p90", "c p95", "c p99", "c p99.9", "p p95"] {
            assert!(dom.contains(&format!(">{want}<")), "{want} not drawn");
        }
    }
    let q = set(&["0.5", "0.9", "0.95", "0.99", "0.999"]);
    assert_eq!(shown.coordinator_quantiles, q, "coordinator /metrics");
    assert_eq!(shown.agent_quantiles, q, "agent /metrics");
    remove_scenario_dir(&shown.dir.parent().expect("dir").join("s.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_list_is_shown_exactly() {
    let shown = run_scraped("pct-list", &scenario("report: {percentiles: [99.99, 50]}\n")).await;
    let rep = &shown.report;
    assert_eq!(rep["verdict"], "pass", "{rep}");
    assert_eq!(rep["percentiles"], serde_json::json!([50.0, 99.99]));
    let (g, row) = consumer(rep);
    assert_eq!(keys(&g["latency_us"]["percentiles"]), set(&["p50", "p99.99"]));
    assert_eq!(keys(&g["alt_latency_us"]["percentiles"]), set(&["p50", "p99.99"]));
    assert_eq!(keys(&row["percentiles_us"]), set(&["p50", "p99.99"]));
    let p9999 = g["latency_us"]["percentiles"]["p99.99"].as_f64().expect("p99.99");
    assert!(
        p9999 >= g["latency_us"]["p99"].as_f64().expect("p99")
            && p9999 <= g["latency_us"]["max"].as_f64().expect("max")
    );

    let (cols, cells) = csv_latency(&shown.dir);
    assert_eq!(cols, ["p50_us", "p9999_us"]);
    assert!(cells.iter().all(|c| c.parse::<f64>().is_ok_and(|v| v > 0.0)), "{cells:?}");

    let summary = coordinator(&["report", utf8(&shown.dir)]);
    assert_eq!(summary_columns(&summary.stdout), ["p50", "p99.99"]);

    let html = read(&shown.dir, "report.html");
    assert!(html.contains("<th class=\"n\">p99.99</th>"));
    assert!(!html.contains("<th class=\"n\">p95</th>") && !html.contains("<th class=\"n\">p99</th>"));
    if let Some(dom) = drawn(&shown.dir) {
        // The latency charts' series, as the browser drew them: the list's, no others.
        for want in ["c p50", "c p99.99", "p p50", "p p99.99"] {
            assert!(dom.contains(&format!(">{want}<")), "{want} not drawn");
        }
        for not in ["c p95", "c p99", "c p99.9", "p p90"] {
            assert!(!dom.contains(&format!(">{not}<")), "{not} drawn");
        }
    }
    let q = set(&["0.5", "0.9999"]);
    assert_eq!(shown.coordinator_quantiles, q, "coordinator /metrics");
    assert_eq!(shown.agent_quantiles, q, "agent /metrics");
    remove_scenario_dir(&shown.dir.parent().expect("dir").join("s.yaml"));
}

/// The check named `name` in a report.
fn check<'a>(rep: &'a Value, name: &str) -> &'a Value {
    let checks = rep["slo"].as_array().expect("slo");
    checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

#[test]
fn an_slo_on_p95_fails_when_impossible_and_passes_when_generous() {
    let tight = write_scenario("pct-slo-tight", &scenario("slo: {p95_e2e: 1us}\n"));
    let r = run_scenario(&tight, &["--quiet"]);
    assert_eq!(r.code, 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(rep["verdict"], "fail");
    let c = check(&rep, "p95_e2e c");
    assert_eq!((c["pass"].as_bool(), c["limit"].as_str()), (Some(false), Some("1.0us")), "{c}");
    remove_scenario_dir(&tight);

    // A generous limit on a percentile outside the list: judged, and reported.
    let yaml = scenario("report: {percentiles: [50]}\nslo: {p95_e2e: 10s, p9999_publish: 10s}\n");
    let generous = write_scenario("pct-slo-generous", &yaml);
    let r = run_scenario(&generous, &["--quiet"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let rep = report_of(&r);
    assert_eq!(check(&rep, "p95_e2e c")["pass"], true);
    assert_eq!(check(&rep, "p9999_publish p")["pass"], true);
    assert_eq!(rep["percentiles"], serde_json::json!([50.0, 95.0, 99.99]));
    assert!(group(&rep, "p")["latency_us"]["percentiles"]["p99.99"].as_f64() > Some(0.0));
    remove_scenario_dir(&generous);
}

#[test]
fn bad_lists_and_slo_keys_are_refused_with_one_line() {
    let cases = [
        ("report: {percentiles: [50, 100]}\n", "report.percentiles[1]: 100 is not between 0 and 100"),
        ("report: {percentiles: []}\n", "report.percentiles: is empty"),
        ("report: {percentiles: [50, 50]}\n", "report.percentiles[1]: 50 is listed twice"),
        ("report: {percentiles: [99.99999]}\n", "99.99999 has more than three decimals"),
        ("slo: {p95_e2: 10ms}\n", "slo.p95_e2: unknown key `p95_e2`"),
    ];
    for (extra, want) in cases {
        let s = write_scenario("pct-bad", &scenario(extra));
        let r = run_scenario(&s, &["--quiet"]);
        assert_eq!(r.code, 2, "{extra}: stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("s.yaml:")).collect();
        assert_eq!(lines.len(), 1, "{extra}: one line names the problem:\n{}", r.stderr);
        assert!(lines[0].contains(want), "{extra}: {}", r.stderr);
        remove_scenario_dir(&s);
    }
}

/// A version-1 report.json made from a version-2 one: the version, the
/// list, p95 and the percentile maps taken out.
fn as_version_1(mut rep: Value) -> Value {
    rep["schema_version"] = 1.into();
    let o = rep.as_object_mut().expect("object");
    o.remove("percentiles");
    for g in o["groups"].as_array_mut().expect("groups") {
        // Newer than version 1 too: the latencies by kind.
        g.as_object_mut().expect("group").remove("latency");
        for lat in ["latency_us", "alt_latency_us"] {
            let l = g[lat].as_object_mut().expect("latency");
            l.remove("p95");
            l.remove("percentiles");
        }
    }
    for r in o["intervals"].as_array_mut().expect("intervals") {
        let r = r.as_object_mut().expect("row");
        r.remove("p95_us");
        r.remove("percentiles_us");
    }
    rep
}

#[test]
fn compare_and_report_read_a_version_1_report() {
    let s = write_scenario("pct-v1", &scenario(""));
    let r = run_scenario(&s, &["--quiet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v2_dir = PathBuf::from(r.stdout.lines().last().expect("results dir"));
    let v1 = as_version_1(report_of(&r));
    let text = serde_json::to_string_pretty(&v1).expect("json");
    assert!(!text.contains("p95") && !text.contains("p99.9\""), "a version-1 report has none");
    let v1_dir = s.parent().expect("dir").join("v1-run");
    std::fs::create_dir_all(&v1_dir).expect("dir");
    std::fs::write(v1_dir.join("report.json"), text).expect("write");

    // Old against new: the new report's percentiles; p95, which the old lacks, shown as `-`.
    let c = coordinator(&["compare", utf8(&v1_dir), utf8(&v2_dir)]);
    assert_eq!(c.code, 0, "stdout:\n{}\nstderr:\n{}", c.stdout, c.stderr);
    assert!(c.stdout.contains("higher p50/p90/p95/p99/p999 latency"), "{}", c.stdout);
    let p95 = c.stdout.lines().find(|l| l.trim_start().starts_with("p95 ")).expect("a p95 row");
    assert_eq!(p95.split_whitespace().nth(1), Some("-"), "{p95}");
    let p999 = c.stdout.lines().find(|l| l.trim_start().starts_with("p999 ")).expect("a p999 row");
    assert_eq!(p999.split_whitespace().nth(3), Some("+0.0%"), "the same run: {p999}");
    assert!(c.stdout.contains("result: no regression"), "{}", c.stdout);
    // New against old: the old report's p50, p90, p99, p99.9.
    let c = coordinator(&["compare", utf8(&v2_dir), utf8(&v1_dir)]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("higher p50/p90/p99/p999 latency"), "{}", c.stdout);

    // `report` re-renders the old one with what it has.
    let rr = coordinator(&["report", utf8(&v1_dir)]);
    assert_eq!(rr.code, 0, "{}", rr.stderr);
    assert_eq!(summary_columns(&rr.stdout), ["p50", "p90", "p99", "p99.9"]);
    let (cols, cells) = csv_latency(&v1_dir);
    assert_eq!(cols, ["p50_us", "p90_us", "p99_us", "p999_us"]);
    assert_eq!(cells[1], "", "version-1 rows had no p90: {cells:?}");
    assert!(cells[0].parse::<f64>().is_ok_and(|v| v > 0.0), "{cells:?}");
    remove_scenario_dir(&s);
}
