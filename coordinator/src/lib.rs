//! The coordinator: reads a scenario, shards it over agents, drives them
//! over gRPC and merges their results into one report. The binary
//! (`src/main.rs`) parses flags and calls [`execute`]; everything else is
//! here so tests can call it directly.

mod error;

pub mod ceiling;
pub mod discovery;
pub mod journal;
pub mod merge;
pub mod metrics;
pub mod pulsar_admin;
pub mod report;
pub mod run;
pub mod schema_doc;
pub mod session;
pub mod shorthands;
#[cfg(test)]
mod testutil;
pub mod ui;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tokio::signal::unix::SignalKind;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use error::exit_code_of;
pub use error::CliError;
use report::{compare, results};

#[derive(Parser, Debug)]
#[command(
    name = "coordinator",
    version,
    about = "Distributed load generator for message brokers: coordinator",
    after_help = "Logs go to stderr; RUST_LOG sets the level and filters (default warn), e.g. RUST_LOG=debug or \
                  RUST_LOG=coordinator=debug,agent=info."
)]
pub struct Cli {
    /// More detail in the logs on stderr: -v info, -vv debug, -vvv trace
    /// (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines as text (default) or as JSON objects, one per line, for
    /// log collectors.
    #[arg(long, value_enum, default_value = "text", global = true, value_name = "FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr: RUST_LOG when set, else warn, or info/debug/trace with
/// -v/-vv/-vvv; as text or JSON lines.
pub fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario on agents and write results/<run-id>/.
    Run {
        /// Scenario YAML file.
        scenario: PathBuf,
        /// Remote agents, HOST:PORT, comma-separated or repeated.
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
        /// Without --agents: how many in-process agents to start on loopback.
        #[arg(long, default_value_t = 2)]
        local_agents: usize,
        /// Directory for results (default ./results).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Override a scenario field: --set broker.url=pulsar://host:6650 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// No live lines and no summary; only the results directory.
        #[arg(long, short)]
        quiet: bool,
        /// No colour in the live view (a terminal on stderr gets a live view;
        /// anything else one line per interval). NO_COLOR works too.
        #[arg(long)]
        no_color: bool,
        /// Serve Prometheus metrics of the run, merged across agents, at
        /// http://ADDR/metrics (e.g. 127.0.0.1:9464) until the coordinator exits.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Search for the highest total rate that holds the SLOs (as
        /// `mode: ceiling`; settings from the scenario's `ceiling:` or defaults).
        #[arg(long)]
        ceiling: bool,
        #[command(flatten)]
        shorthands: shorthands::Shorthands,
        /// After SIGTERM or SIGINT: how long consumers may drain once the
        /// load has stopped (whatever the scenario's drain timeout); a
        /// second signal ends the drain at once. Then the report so far is
        /// written (verdict `interrupted`, exit 4).
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = common::units::parse_duration)]
        interrupt_drain: std::time::Duration,
        /// Serve the live dashboard at http://ADDR/ while the run lasts (e.g.
        /// 127.0.0.1:8080), with run control (rate, pause, resume, stop; also
        /// `coordinator ctl ADDR`). Off loopback it needs --token-file.
        #[arg(long, value_name = "ADDR")]
        ui: Option<SocketAddr>,
        /// The highest total rate the dashboard may set (msg/s).
        #[arg(long, value_name = "MSG_PER_S", requires = "ui")]
        max_rate: Option<f64>,
        /// Keep serving the dashboard after the run, until Ctrl-C.
        #[arg(long, requires = "ui")]
        ui_linger: bool,
        // Boxed: by far the largest variant (clippy::large_enum_variant).
        #[command(flatten)]
        remote: Box<discovery::RemoteArgs>,
    },
    /// Check a scenario and print how it would be sharded.
    Validate {
        scenario: PathBuf,
        /// Number of agents to plan for.
        #[arg(long, default_value_t = 2)]
        agents: usize,
        /// Plan as if every agent were a separate process (remote agents).
        #[arg(long)]
        remote: bool,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        shorthands: shorthands::Shorthands,
    },
    /// Write a commented scenario template.
    Init {
        /// Template: quickstart, baseline, subscriptions, multi-topic, partitions,
        /// failover, pulsar, danube, ceiling.
        #[arg(long, default_value = "quickstart")]
        template: String,
        /// Write every template, each as NAME.yaml in the --output directory.
        #[arg(long, conflicts_with = "template")]
        all: bool,
        /// Where to write it ("-" for stdout; default scenario.yaml); with
        /// --all, a directory (default: the current one).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the summary of an earlier run and re-render its report.html
    /// and timeseries.csv from its report.json.
    Report {
        /// A results/<run-id> directory.
        run_dir: PathBuf,
    },
    /// Compare runs group by group: NEW (and each further run) against
    /// BASE; exit 1 when any of them regressed against BASE.
    ///
    /// A regression: throughput lower, or latency higher at a percentile
    /// NEW reports (`report.percentiles`: p50/p90/p95/p99/p999 by default),
    /// by more than --max-regression (latency changes under 50us are ignored as
    /// noise), or any increase in lost messages.
    Compare {
        /// The reference run's results/<run-id> directory.
        base_dir: PathBuf,
        /// The run(s) to judge against it, each a results/<run-id> directory.
        #[arg(required = true, value_name = "NEW_DIR")]
        new_dirs: Vec<PathBuf>,
        /// Allowed worsening, percent: `10` or `10%`.
        #[arg(long, value_name = "PCT", default_value = "10", value_parser = compare::parse_pct)]
        max_regression: f64,
        /// Also write the comparison as one self-contained HTML page: the
        /// runs' throughput and latency distributions overlaid, the table
        /// of changes and the verdict.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// List the runs in a results directory, newest first.
    Results {
        /// List the runs (the default, and for now the only action).
        #[arg(long)]
        list: bool,
        /// Results directory (default ./results).
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
    },
    /// Print the JSON Schema of a scenario file (for editors: YAML language
    /// servers complete and check scenarios with it).
    Schema {
        /// Print the scenario reference in Markdown instead (docs/scenario-reference.md),
        /// rendered from the same schema.
        #[arg(long)]
        markdown: bool,
    },
    /// Change a running run through its dashboard (`run --ui ADDR`): the
    /// same checks and answers as the page. Exit 2 when refused.
    Ctl {
        /// The dashboard's address: HOST:PORT or a URL.
        addr: String,
        #[command(subcommand)]
        action: CtlAction,
        /// File holding the dashboard's token (the run's --token-file). Or
        /// set LOADGEN_TOKEN to the token itself.
        #[arg(long, value_name = "FILE", global = true)]
        token_file: Option<PathBuf>,
        /// One producer group (its name): its rate, or its pause and resume.
        /// Without it a rate is the total over every group (they keep their
        /// proportions) and pause/resume take every group.
        #[arg(long, value_name = "NAME", global = true)]
        group: Option<String>,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    ///
    /// e.g. `coordinator completions bash > /etc/bash_completion.d/coordinator`,
    /// or `source <(coordinator completions zsh)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What `coordinator ctl` asks of a run.
#[derive(Subcommand, Debug)]
pub enum CtlAction {
    /// A new total producer rate (msg/s); the groups keep their proportions.
    Rate {
        #[arg(allow_negative_numbers = true)]
        rate: f64,
    },
    /// Pause every producer (the paused span is not owed on resume).
    Pause,
    /// Resume the producers.
    Resume,
    /// End the sends now; the run drains and reports as usual.
    Stop,
}

/// The templates `init` writes: the example configs, embedded.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("quickstart", include_str!("../../configs/quickstart.yaml")),
    ("baseline", include_str!("../../configs/memory-a-baseline.yaml")),
    ("subscriptions", include_str!("../../configs/memory-b-subscriptions.yaml")),
    ("multi-topic", include_str!("../../configs/memory-c-multi-topic.yaml")),
    ("partitions", include_str!("../../configs/memory-d-partitions.yaml")),
    ("failover", include_str!("../../configs/memory-e-failover.yaml")),
    ("pulsar", include_str!("../../configs/pulsar-a-baseline.yaml")),
    ("danube", include_str!("../../configs/danube-quickstart.yaml")),
    ("ceiling", include_str!("../../configs/ceiling-memory.yaml")),
];

/// `--metrics`: the HTTP server and the metrics it serves; stops on drop.
struct MetricsServer {
    metrics: metrics::RunMetrics,
    shutdown: CancellationToken,
}

impl MetricsServer {
    async fn start(addr: SocketAddr, quiet: bool) -> Result<MetricsServer, CliError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::BadInput(format!("--metrics {addr}: cannot listen: {e}")))?;
        let bound = listener.local_addr().map_err(|e| CliError::BadInput(format!("--metrics {addr}: {e}")))?;
        let metrics = metrics::RunMetrics::new();
        let shutdown = CancellationToken::new();
        let (render, sd) = (metrics.renderer(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = common::metrics::serve(listener, render, sd).await {
                warn!(error = %e, "metrics server failed");
            }
        });
        if !quiet {
            eprintln!("metrics: http://{bound}/metrics");
        }
        Ok(MetricsServer { metrics, shutdown })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `--ui`: the dashboard's server and what the run feeds; stops on drop.
struct UiServer {
    hook: run::UiHook,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl UiServer {
    async fn start(
        addr: SocketAddr,
        token: Option<common::wire::Token>,
        max_rate: Option<f64>,
        quiet: bool,
    ) -> Result<UiServer, CliError> {
        if max_rate.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
            return Err(CliError::BadInput("--max-rate must be a positive number of msg/s".into()));
        }
        let shutdown = CancellationToken::new();
        let access = ui::server::Access { token, max_rate };
        let (dashboard, requests, bound) =
            ui::start(addr, access, shutdown.clone()).await.map_err(CliError::BadInput)?;
        if !quiet {
            eprintln!("dashboard: http://{bound}/");
        }
        let hook = run::UiHook { dashboard, requests: std::sync::Arc::new(tokio::sync::Mutex::new(requests)) };
        Ok(UiServer { hook, addr: bound, shutdown })
    }

    /// `--ui-linger`: serves the finished run until Ctrl-C.
    async fn linger(&self, stop: &CancellationToken) {
        eprintln!("dashboard: the run is over; still at http://{}/ until Ctrl-C", self.addr);
        stop.cancelled().await;
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `coordinator ctl`: one request to a running run's dashboard; what it
/// did on stdout, exit 2 when refused or unreachable.
async fn ctl_command(
    addr: &str,
    action: CtlAction,
    token_file: Option<&Path>,
    group: Option<&str>,
) -> Result<u8, CliError> {
    let token = match (token_file, std::env::var("LOADGEN_TOKEN")) {
        (Some(f), _) => Some(common::wire::Token::from_file(f).map_err(|e| CliError::BadInput(e.to_string()))?),
        (None, Ok(t)) => {
            Some(common::wire::Token::parse(&t, "LOADGEN_TOKEN").map_err(|e| CliError::BadInput(e.to_string()))?)
        }
        (None, Err(_)) => None,
    };
    let bearer = token.map(|t| t.bearer().trim_start_matches("Bearer ").to_string());
    let control = match action {
        CtlAction::Rate { rate } => ui::Control::Rate(rate),
        CtlAction::Pause => ui::Control::Pause,
        CtlAction::Resume => ui::Control::Resume,
        CtlAction::Stop => ui::Control::Stop,
    };
    let done = ui::ctl::send_for(addr, bearer.as_deref(), &control, group)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    println!("{done}");
    Ok(0)
}

/// The signals that stop a run early (Kubernetes sends SIGTERM, a
/// terminal SIGINT): the first stops the load, lets consumers drain for
/// `--interrupt-drain` and writes the report so far (verdict
/// `interrupted`, exit 4); a second ends the drain at once. Another signal
/// is one more entry.
const STOP_SIGNALS: &[(SignalKind, &str)] =
    &[(SignalKind::interrupt(), "SIGINT"), (SignalKind::terminate(), "SIGTERM")];

/// Calls [`run::Shutdown::request`] whenever one of [`STOP_SIGNALS`]
/// arrives. The binary's edge: the run itself only sees the tokens.
fn cancel_on_signals(shutdown: &run::Shutdown) {
    for &(kind, name) in STOP_SIGNALS {
        match tokio::signal::unix::signal(kind) {
            Ok(mut signal) => {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    while signal.recv().await.is_some() {
                        warn!(signal = name, "stopping the run");
                        shutdown.request(name);
                    }
                });
            }
            // As before: without a handler the signal ends the process.
            Err(e) => warn!(signal = name, error = %e, "cannot listen for the signal"),
        }
    }
}

/// Runs one command; prints what a person should see; returns the exit code.
pub async fn execute(cli: Cli) -> ExitCode {
    match execute_inner(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn execute_inner(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run {
            scenario,
            agents,
            local_agents,
            results,
            sets,
            quiet,
            no_color,
            metrics,
            ceiling,
            shorthands,
            interrupt_drain,
            remote,
            ui,
            max_rate,
            ui_linger,
        } => {
            let sets = shorthands.expand(&scenario, &sets)?;
            let server = match metrics {
                Some(addr) => Some(MetricsServer::start(addr, quiet).await?),
                None => None,
            };
            let metrics = server.as_ref().map(|s| s.metrics.clone());
            let remote = remote.resolve()?;
            let shutdown = run::Shutdown::default();
            cancel_on_signals(&shutdown);
            let dashboard = match ui {
                Some(addr) => Some(UiServer::start(addr, remote.token.clone(), max_rate, quiet).await?),
                None => None,
            };
            let ui = dashboard.as_ref().map(|d| d.hook.clone());
            let opts = run::RunOptions {
                scenario,
                sets,
                agents,
                local_agents,
                results,
                quiet,
                no_color,
                metrics,
                remote,
                ceiling,
                shutdown: shutdown.clone(),
                interrupt_drain: Some(interrupt_drain),
                ui,
            };
            let code = run_command(opts).await;
            if let Some(d) = dashboard.filter(|_| ui_linger) {
                d.linger(&shutdown.stop).await;
            }
            code
        }
        Command::Ctl { addr, action, token_file, group } => {
            ctl_command(&addr, action, token_file.as_deref(), group.as_deref()).await
        }
        Command::Validate { scenario, agents, remote, sets, shorthands } => {
            let all = shorthands.expand(&scenario, &sets)?;
            if shorthands.any() {
                let added: Vec<String> = all[sets.len()..].iter().map(|s| format!("--set {s}")).collect();
                println!("shorthands stand for: {}", added.join(" "));
            }
            validate(&scenario, agents, remote, &all)
        }
        Command::Init { all: true, output, force, .. } => init_all(output.as_deref().unwrap_or(Path::new(".")), force),
        Command::Init { template, all: false, output, force } => {
            init(&template, output.as_deref().unwrap_or(Path::new("scenario.yaml")), force)
        }
        Command::Report { run_dir } => report_command(&run_dir),
        Command::Compare { base_dir, new_dirs, max_regression, html } => {
            compare_command(&base_dir, &new_dirs, max_regression, html.as_deref())
        }
        Command::Results { list: _, results } => {
            let root = results.unwrap_or_else(|| PathBuf::from("results"));
            let entries = results::list(&root).map_err(|e| CliError::BadInput(e.to_string()))?;
            print!("{}", results::list_table(&root, &entries));
            Ok(0)
        }
        Command::Schema { markdown } => {
            let schema = common::scenario::raw::json_schema();
            if markdown {
                print!("{}", schema_doc::render(schema.as_value()));
                return Ok(0);
            }
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| CliError::CannotComplete(format!("cannot encode the schema: {e}")))?;
            println!("{text}");
            Ok(0)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "coordinator", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// `coordinator run`: the summary (unless quiet) and the results directory
/// (last) on stdout; exit 0 pass, 1 fail, 3 incomplete, 4 interrupted.
async fn run_command(opts: run::RunOptions) -> Result<u8, CliError> {
    let quiet = opts.quiet;
    let out = run::run(opts).await?;
    if !quiet {
        print!("{}", report::summary::summary(&out.report));
    }
    println!("{}", out.dir.display());
    Ok(exit_code_of(&out.report.verdict))
}

/// `coordinator validate`: the scenario checked, and its plan on `agents` agents.
fn validate(scenario: &Path, agents: usize, remote: bool, sets: &[String]) -> Result<u8, CliError> {
    let sc = run::load_scenario(scenario, sets)?;
    if agents == 0 {
        return Err(CliError::BadInput("--agents must be at least 1".into()));
    }
    let slots: Vec<common::plan::AgentSlot> = (0..agents)
        .map(|i| common::plan::AgentSlot {
            name: format!("agent-{i}"),
            instance: if remote { format!("process-{i}") } else { "local".into() },
        })
        .collect();
    let plan = common::plan::plan(&sc, "validate", &slots)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", scenario.display())))?;
    println!(
        "{}: ok — `{}`, {} broker, {} topic(s), {} producer group(s), {} consumer group(s)",
        scenario.display(),
        sc.name,
        sc.broker.kind.as_str(),
        sc.topics.len(),
        sc.producers.len(),
        sc.consumers.len()
    );
    println!(
        "phases: warmup {}, measure {}, cooldown {}, drain timeout {}; report every {}",
        common::units::format_duration(sc.phases.warmup),
        common::units::format_duration(sc.phases.duration),
        common::units::format_duration(sc.phases.cooldown),
        common::units::format_duration(sc.phases.drain_timeout),
        common::units::format_duration(sc.report_interval)
    );
    print!("{}", plan.table(&slots));
    Ok(0)
}

/// `coordinator init`: a template to `output` ("-": stdout).
fn init(template: &str, output: &Path, force: bool) -> Result<u8, CliError> {
    let Some((_, text)) = TEMPLATES.iter().find(|(n, _)| *n == template) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        return Err(CliError::BadInput(format!("unknown template `{template}`; choose one of: {}", names.join(", "))));
    };
    if output.as_os_str() == "-" {
        print!("{text}");
        return Ok(0);
    }
    if output.exists() && !force {
        return Err(CliError::BadInput(format!("{} exists; pass --force to overwrite", output.display())));
    }
    std::fs::write(output, text)
        .map_err(|e| CliError::CannotComplete(format!("cannot write {}: {e}", output.display())))?;
    println!("wrote {} (template `{template}`); try: coordinator run {}", output.display(), output.display());
    Ok(0)
}

/// `coordinator init --all`: every template into `dir` as NAME.yaml;
/// nothing written when one exists (without --force).
fn init_all(dir: &Path, force: bool) -> Result<u8, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::CannotComplete(format!("cannot create {}: {e}", dir.display())))?;
    let files: Vec<(PathBuf, &str)> = TEMPLATES.iter().map(|(n, t)| (dir.join(format!("{n}.yaml")), *t)).collect();
    if let Some((p, _)) = files.iter().find(|(p, _)| p.exists() && !force) {
        return Err(CliError::BadInput(format!("{} exists; pass --force to overwrite", p.display())));
    }
    for (p, text) in &files {
        std::fs::write(p, text).map_err(|e| CliError::CannotComplete(format!("cannot write {}: {e}", p.display())))?;
        println!("wrote {}", p.display());
    }
    Ok(0)
}

/// `coordinator report`: the summary of an earlier run, its files
/// re-rendered; exit by its verdict (0 pass, 1 fail, 3 incomplete, 4
/// interrupted). A run directory with a journal and no report.json (the
/// coordinator was killed) gets its report rebuilt from the journal
/// (verdict `incomplete`, exit 3).
fn report_command(run_dir: &Path) -> Result<u8, CliError> {
    if !run_dir.join("report.json").exists() && run_dir.join(journal::FILE).exists() {
        return rebuild_command(run_dir);
    }
    let report = results::read(run_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    print!("{}", report::summary::summary(&report));
    results::render(run_dir, &report).map_err(|e| {
        CliError::CannotComplete(format!("cannot write report.html/timeseries.csv in {}: {e}", run_dir.display()))
    })?;
    println!("{}", run_dir.join("report.html").display());
    Ok(if report.passed() { 0 } else { exit_code_of(&report.verdict).max(1) })
}

/// `coordinator report` on what a killed coordinator left: report.json,
/// timeseries.csv and report.html rebuilt from journal.jsonl.
fn rebuild_command(run_dir: &Path) -> Result<u8, CliError> {
    let replay = journal::read(run_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    let report = journal::rebuild(replay);
    results::write(run_dir, &report)
        .map_err(|e| CliError::CannotComplete(format!("cannot write the report in {}: {e}", run_dir.display())))?;
    print!("{}", report::summary::summary(&report));
    println!("{}", run_dir.join("report.html").display());
    Ok(exit_code_of(&report.verdict))
}

/// `coordinator compare`: exit 1 when any NEW regressed against BASE.
fn compare_command(
    base_dir: &Path,
    new_dirs: &[PathBuf],
    max_regression: f64,
    html: Option<&Path>,
) -> Result<u8, CliError> {
    let base = results::read(base_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    let news = new_dirs
        .iter()
        .map(|d| results::read(d).map_err(|e| CliError::BadInput(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut comparisons = Vec::new();
    for (new, new_dir) in news.iter().zip(new_dirs) {
        let c = compare::compare(&base, new, max_regression);
        if c.groups.is_empty() {
            return Err(CliError::BadInput(format!(
                "{} and {} have no group in common (base: {}; new: {})",
                base_dir.display(),
                new_dir.display(),
                c.only_base.join(", "),
                c.only_new.join(", ")
            )));
        }
        comparisons.push(c);
    }
    for (i, c) in comparisons.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", c.render());
    }
    if let Some(file) = html {
        let runs: Vec<&common::report::Report> = std::iter::once(&base).chain(news.iter()).collect();
        std::fs::write(file, report::html::compare::render(&runs, &comparisons))
            .map_err(|e| CliError::CannotComplete(format!("cannot write {}: {e}", file.display())))?;
        println!("{}", file.display());
    }
    Ok(if comparisons.iter().any(compare::Comparison::regressed) { 1 } else { 0 })
}
