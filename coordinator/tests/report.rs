//! Results people read and compare: report.html next to report.json,
//! `report RUN_DIR` re-rendering, `compare`, `results --list`, and a
//! headless-Chromium look at the page. Runs the real `coordinator` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

/// Two quickstart runs on the memory broker, made once for this file:
/// BASE with 2 ms added broker latency, NEW with 10 ms.
struct Runs {
    root: PathBuf,
    base: PathBuf,
    new: PathBuf,
}

fn quickstart(root: &Path, latency: &str) -> PathBuf {
    let r = run_short_quickstart(root, &["--quiet", "--set", &format!("broker.latency={latency}")]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    PathBuf::from(r.stdout.lines().last().expect("results dir on the last line"))
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        // Cargo's scratch directory for integration tests; emptied per test binary run.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-runs");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("results dir");
        let (base, new) = std::thread::scope(|s| {
            let b = s.spawn(|| quickstart(&root, "2ms"));
            let n = s.spawn(|| quickstart(&root, "10ms"));
            (b.join().expect("base run"), n.join().expect("new run"))
        });
        Runs { root, base, new }
    })
}

#[test]
fn a_run_writes_json_csv_and_a_self_contained_html() {
    let r = runs();
    for f in ["report.json", "timeseries.csv", "report.html"] {
        let p = r.base.join(f);
        assert!(p.is_file(), "{} missing", p.display());
    }
    let html = std::fs::read_to_string(r.base.join("report.html")).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Self-contained: no stylesheets, images or scripts from elsewhere (its
    // own scripts are inline: uPlot, whose source names its home page, and
    // ours).
    assert!(!html.contains("<link"));
    assert!(!html.contains("src="));
    let no_urls = html.replace("http://www.w3.org/2000/svg", "").replace("https://github.com/leeoniya/uPlot", "");
    assert!(!no_urls.contains("http://") && !no_urls.contains("https://"));
    // Every section, the groups, and the charts: interactive ones (their
    // data inline) when the coordinator was built with the chart library,
    // which the test command installs; drawn SVG otherwise.
    let interactive = html.contains("<section id=\"interactive\">");
    assert_eq!(interactive, coordinator::ui::assets::charts_available());
    let charts: &[&str] = if interactive {
        &["id=\"loadgen-chart-data\"", "LoadgenCharts", "\"columns\""]
    } else {
        &[
            "Throughput over time",
            "Latency percentiles over time",
            "percentile spectrum",
            "99.9%",
            ">warmup<",
            "<svg",
            "<path d=\"M",
        ]
    };
    for needle in ["id=\"delivery\"", "id=\"agents\"", "id=\"slo\"", "order-producers", "order-audit", "event-handlers"]
        .iter()
        .chain(charts)
    {
        assert!(html.contains(needle), "report.html lacks `{needle}`");
    }
    assert!(!html.contains("NaN"));
}

/// Every group of a memory-broker run names its latencies by kind, the
/// same way for both roles; the consumers' ack latency is measured (the
/// memory driver says when an ack is done) once per delivery.
#[test]
fn report_json_names_every_latency_kind_and_times_consumer_acks() {
    let r = runs();
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.base.join("report.json")).expect("json")).expect("parse");
    for g in rep["groups"].as_array().expect("groups") {
        let lat = &g["latency"];
        let kinds: Vec<&str> = lat.as_object().expect("latency by kind").keys().map(String::as_str).collect();
        let (main, alt) = if g["role"] == "producer" {
            assert_eq!(kinds, ["publish_response", "publish_service"], "{g}");
            ("publish_response", "publish_service")
        } else {
            assert_eq!(kinds, ["ack", "e2e_response", "e2e_service"], "{g}");
            assert!(g.get("ack_latency_not_measured").is_none(), "{g}");
            let ack = &lat["ack"];
            assert_eq!(ack["count"], g["messages"], "one ack per delivery: {g}");
            let (p50, max) = (ack["p50"].as_f64().expect("p50"), ack["max"].as_f64().expect("max"));
            // Done in process, at once: well under the end-to-end latency (1 ms added per publish).
            assert!(p50 > 0.0 && p50 < lat["e2e_service"]["p50"].as_f64().expect("e2e p50"), "{g}");
            assert!(max < 1e6, "{g}");
            ("e2e_service", "e2e_response")
        };
        // The old fields are the same figures under their old names.
        assert_eq!(g["latency_us"], lat[main], "{g}");
        assert_eq!(g["alt_latency_us"], lat[alt], "{g}");
    }
    let kinds: Vec<&str> =
        rep["histograms"].as_array().expect("histograms").iter().filter_map(|h| h["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "ack").count(), 3, "one per consumer group: {kinds:?}");
    let consumer_rows: Vec<&serde_json::Value> =
        rep["intervals"].as_array().expect("intervals").iter().filter(|i| i["role"] == "consumer").collect();
    assert!(consumer_rows.iter().any(|i| i["ack_p99_us"].as_f64().is_some_and(|a| a > 0.0)), "per interval too");
    let csv = std::fs::read_to_string(r.base.join("timeseries.csv")).expect("csv");
    assert!(csv.lines().next().expect("header").ends_with(",ack_p99_us"), "{csv}");
}

#[test]
fn report_re_renders_html_and_csv_from_report_json() {
    let r = runs();
    // Outside the results root, so `results --list` does not see a copy.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rerender-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(r.base.join("report.json"), dir.join("report.json")).expect("copy");
    let out = coordinator(&["report", utf8(&dir)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("verdict: PASS"), "{}", out.stdout);
    assert!(out.stdout.lines().last().expect("last line").ends_with("report.html"));
    // Rendered from report.json alone, the files are the ones the run wrote.
    for f in ["report.html", "timeseries.csv"] {
        let again = std::fs::read(dir.join(f)).expect(f);
        let orig = std::fs::read(r.base.join(f)).expect(f);
        assert!(again == orig, "{f} differs when re-rendered");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_of_a_run_with_itself_is_clean() {
    let r = runs();
    let out = coordinator(&["compare", utf8(&r.base), utf8(&r.base)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("result: no regression beyond 10%"), "{}", out.stdout);
    for g in ["order-producers", "event-producers", "order-processing", "order-audit", "event-handlers"] {
        assert!(out.stdout.contains(g), "{g}: {}", out.stdout);
    }
}

#[test]
fn compare_finds_the_slower_broker_and_names_p50() {
    let r = runs();
    let out = coordinator(&["compare", utf8(&r.base), utf8(&r.new), "--max-regression", "10%"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("REGRESSION"), "{}", out.stdout);
    assert!(out.stdout.contains("REGRESSED (p50)"), "{}", out.stdout);
    assert!(out.stdout.contains("p50 of producer order-producers"), "{}", out.stdout);
    // The other way round p50 improves. (Only p50 is asserted: on a busy
    // 2-core machine the tails of two concurrent debug runs are noise.)
    let back = coordinator(&["compare", utf8(&r.new), utf8(&r.base), "--max-regression", "10"]);
    assert!(back.code == 0 || back.code == 1, "{}\n{}", back.stdout, back.stderr);
    assert!(!back.stdout.contains("REGRESSED (p50)"), "{}", back.stdout);
}

#[test]
fn results_list_shows_the_runs_newest_first() {
    let r = runs();
    let out = coordinator(&["results", "--list", "--results", utf8(&r.root)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("RUN ID"), "{}", out.stdout);
    let id = |p: &Path| p.file_name().expect("run id").to_str().expect("utf8").to_string();
    let (b, n) = (id(&r.base), id(&r.new));
    let pb = out.stdout.find(&b).expect("base listed");
    let pn = out.stdout.find(&n).expect("new listed");
    let line = out.stdout.lines().find(|l| l.starts_with(&b)).expect("base line");
    assert!(line.contains("quickstart") && line.contains("pass") && line.contains("12000"), "{line}");
    // Newest first: the runs started together, so order by started_at then id.
    let rb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.base.join("report.json")).expect("json")).expect("json");
    let rn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.new.join("report.json")).expect("json")).expect("json");
    let kb = (rb["started_at"].as_str().expect("started_at").to_string(), b.clone());
    let kn = (rn["started_at"].as_str().expect("started_at").to_string(), n.clone());
    assert_eq!(kb > kn, pb < pn, "newest first:\n{}", out.stdout);
}

#[test]
fn bad_run_directories_exit_2() {
    let dir = temp_dir("badrun");
    let missing = dir.join("does-not-exist");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let corrupt = dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join("report.json"), "{\"run_id\": \"x\", \"verdict\": ").expect("write");
    let not_report = dir.join("not-report");
    std::fs::create_dir_all(&not_report).expect("mkdir");
    std::fs::write(not_report.join("report.json"), "[1, 2, 3]").expect("write");

    let cases: [(&Path, &str); 4] = [
        (&missing, "no such directory"),
        (&empty, "not a run directory"),
        (&corrupt, "not a report"),
        (&not_report, "not a report"),
    ];
    for (p, msg) in cases {
        let r = coordinator(&["report", utf8(p)]);
        assert_eq!(r.code, 2, "report {}: {}", p.display(), r.stderr);
        assert!(r.stderr.contains(msg) && r.stderr.contains(utf8(p)), "report {}: {}", p.display(), r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(!p.join("report.html").exists(), "nothing rendered for a bad run");
        // compare: either side.
        let r = coordinator(&["compare", utf8(p), utf8(&empty)]);
        assert_eq!(r.code, 2, "compare {}: {}", p.display(), r.stderr);
        assert!(r.stderr.contains(msg), "compare {}: {}", p.display(), r.stderr);
    }
    let r = coordinator(&["compare", utf8(&empty), utf8(&missing)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Bad flags.
    let r = coordinator(&["compare", utf8(&empty), utf8(&empty), "--max-regression", "lots"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a percentage"), "{}", r.stderr);
    let r = coordinator(&["compare", utf8(&empty)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = coordinator(&["results", "--list", "--results", utf8(&missing)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no such results directory"), "{}", r.stderr);
    // An empty results directory lists nothing, successfully.
    let r = coordinator(&["results", "--list", "--results", utf8(&empty)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no runs"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

/// Renders report.html in headless Chromium and checks the screenshot is
/// a page with charts, not a blank one. Skipped where Chromium is not
/// installed (`apt-get install chromium`).
#[test]
fn report_html_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: chromium not installed ({CHROMIUM})");
        return;
    }
    let r = runs();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let profile = work.join("profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    let png_path = work.join("report.png");
    let html = std::fs::canonicalize(r.base.join("report.html")).expect("html path");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", utf8(&profile)),
            &format!("--screenshot={}", utf8(&png_path)),
            "--window-size=1400,3000",
            &format!("file://{}", utf8(&html)),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait chromium") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium exited with {status}");

    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).expect("png")));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!((w, h), (1400, 3000), "screenshot size");
    let spp = info.color_type.samples();
    assert!(spp >= 3, "colour screenshot, got {:?}", info.color_type);
    let px = |i: usize| {
        let o = i * spp;
        (buf[o], buf[o + 1], buf[o + 2])
    };
    let bg = px(0);
    let total = w * h;
    let differ = (0..total).filter(|&i| px(i) != bg).count();
    // Chart lines and badges: clearly coloured (not grey) pixels.
    let coloured = (0..total)
        .filter(|&i| {
            let (r, g, b) = px(i);
            let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
            mx - mn > 60
        })
        .count();
    println!(
        "screenshot {}: {differ} of {total} pixels differ from the background, {coloured} coloured",
        png_path.display()
    );
    assert!(differ > total / 5, "page looks blank: only {differ} of {total} pixels differ from {bg:?}");
    assert!(coloured > 2_000, "no charts drawn? only {coloured} coloured pixels");

    // The interactive charts drew from the page alone: every host name
    // resolves to nothing, so a request for anything would fail, and the
    // page marks how many charts it drew.
    let dom = headless_chromium(&profile)
        .args([
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("file://{}", utf8(&html)),
        ])
        .output()
        .expect("chromium --dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let body = dom.split("<body").nth(1).and_then(|b| b.split('>').next()).unwrap_or_default();
    assert!(body.contains("data-charts=\"5\""), "throughput, two latency, two spectra charts: <body{body}>");
    assert!(dom.matches("<canvas").count() >= 5, "uPlot draws on canvases");
    let _ = std::fs::remove_dir_all(&work);
}

/// `compare BASE NEW NEW2 --html FILE`: every new run judged against the
/// base (exit 1: one regressed), and one page with the runs overlaid that
/// draws its charts in headless Chromium with no network.
#[test]
fn compare_of_three_runs_writes_a_page_with_the_runs_overlaid() {
    let r = runs();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("compare-html-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("mkdir");
    let page = work.join("compare.html");
    let out = coordinator(&["compare", utf8(&r.base), utf8(&r.new), utf8(&r.base), "--html", utf8(&page)]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.matches("base: ").count(), 2, "two comparisons printed: {}", out.stdout);
    assert!(
        out.stdout.contains("result: REGRESSION") && out.stdout.contains("result: no regression"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().last(), Some(utf8(&page)), "the page's path last");
    let html = std::fs::read_to_string(&page).expect("compare.html");
    let base_id = r.base.file_name().and_then(|n| n.to_str()).expect("run id");
    let new_id = r.new.file_name().and_then(|n| n.to_str()).expect("run id");
    assert!(html.contains(base_id) && html.contains(new_id), "both runs named");
    assert!(html.contains("new 1 against base") && html.contains("new 2 against base"));
    assert!(html.contains("REGRESSED") && html.contains("badge fail"));
    assert!(!html.contains("src=") && !html.contains("<link"), "self-contained");
    if !coordinator::ui::assets::charts_available() || !Path::new(CHROMIUM).exists() {
        println!("skipped the browser check: chromium or the chart library missing");
        return;
    }
    let profile = work.join("profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    let dom = headless_chromium(&profile)
        .args([
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("file://{}", utf8(&std::fs::canonicalize(&page).expect("path"))),
        ])
        .output()
        .expect("chromium --dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let body = dom.split("<body").nth(1).and_then(|b| b.split('>').next()).unwrap_or_default();
    assert!(body.contains("data-charts=\"3\""), "throughput and two spectra, overlaid: <body{body}>");
    let _ = std::fs::remove_dir_all(&work);
}
