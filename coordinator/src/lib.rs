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
    #[command(subcommand)]
    pub command: Command,
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
    },
    /// Write a commented scenario template.
    Init {
        /// Template: quickstart, baseline, subscriptions, multi-topic, partitions,
        /// failover, pulsar, danube, ceiling.
        #[arg(long, default_value = "quickstart")]
        template: String,
        /// Where to write it ("-" for stdout).
        #[arg(long, short, default_value = "scenario.yaml")]
        output: PathBuf,
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
    /// Compare two runs group by group; exit 1 when NEW regressed against BASE.
    ///
    /// A regression: throughput lower, or p50/p99/p999 latency higher, by
    /// more than --max-regression (latency changes under 50us are ignored as
    /// noise), or any increase in lost messages.
    Compare {
        /// The reference run's results/<run-id> directory.
        base_dir: PathBuf,
        /// The run to judge against it.
        new_dir: PathBuf,
        /// Allowed worsening, percent: `10` or `10%`.
        #[arg(long, value_name = "PCT", default_value = "10", value_parser = compare::parse_pct)]
        max_regression: f64,
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
async fn ctl_command(addr: &str, action: CtlAction, token_file: Option<&Path>) -> Result<u8, CliError> {
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
    let done = ui::ctl::send(addr, bearer.as_deref(), &control).await.map_err(|e| CliError::BadInput(e.to_string()))?;
    println!("{done}");
    Ok(0)
}

/// The signals that stop a run early: it stops its agents and writes the
/// report so far (verdict `incomplete`). Another signal is one more entry.
const STOP_SIGNALS: &[(SignalKind, &str)] = &[(SignalKind::interrupt(), "SIGINT (Ctrl-C)")];

/// Cancels `shutdown` when one of [`STOP_SIGNALS`] arrives. The binary's
/// edge: the run itself only sees the token.
fn cancel_on_signals(shutdown: &CancellationToken) {
    for &(kind, name) in STOP_SIGNALS {
        match tokio::signal::unix::signal(kind) {
            Ok(mut signal) => {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    if signal.recv().await.is_some() {
                        shutdown.cancel();
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
            remote,
            ui,
            max_rate,
            ui_linger,
        } => {
            let server = match metrics {
                Some(addr) => Some(MetricsServer::start(addr, quiet).await?),
                None => None,
            };
            let metrics = server.as_ref().map(|s| s.metrics.clone());
            let remote = remote.resolve()?;
            let shutdown = CancellationToken::new();
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
                ui,
            };
            let code = run_command(opts).await;
            if let Some(d) = dashboard.filter(|_| ui_linger) {
                d.linger(&shutdown).await;
            }
            code
        }
        Command::Ctl { addr, action, token_file } => ctl_command(&addr, action, token_file.as_deref()).await,
        Command::Validate { scenario, agents, remote, sets } => validate(&scenario, agents, remote, &sets),
        Command::Init { template, output, force } => init(&template, &output, force),
        Command::Report { run_dir } => report_command(&run_dir),
        Command::Compare { base_dir, new_dir, max_regression } => compare_command(&base_dir, &new_dir, max_regression),
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
/// on stdout; exit 0 pass, 1 fail, 3 incomplete.
async fn run_command(opts: run::RunOptions) -> Result<u8, CliError> {
    let quiet = opts.quiet;
    let out = run::run(opts).await?;
    if !quiet {
        print!("{}", report::summary::summary(&out.report));
    }
    println!("{}", out.dir.display());
    Ok(match out.report.verdict.as_str() {
        "pass" => 0,
        "fail" => 1,
        _ => 3,
    })
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

/// `coordinator report`: the summary of an earlier run, its files re-rendered.
fn report_command(run_dir: &Path) -> Result<u8, CliError> {
    let report = results::read(run_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    print!("{}", report::summary::summary(&report));
    results::render(run_dir, &report).map_err(|e| {
        CliError::CannotComplete(format!("cannot write report.html/timeseries.csv in {}: {e}", run_dir.display()))
    })?;
    println!("{}", run_dir.join("report.html").display());
    Ok(if report.passed() { 0 } else { 1 })
}

/// `coordinator compare`: exit 1 when NEW regressed against BASE.
fn compare_command(base_dir: &Path, new_dir: &Path, max_regression: f64) -> Result<u8, CliError> {
    let base = results::read(base_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    let new = results::read(new_dir).map_err(|e| CliError::BadInput(e.to_string()))?;
    let c = compare::compare(&base, &new, max_regression);
    if c.groups.is_empty() {
        return Err(CliError::BadInput(format!(
            "{} and {} have no group in common (base: {}; new: {})",
            base_dir.display(),
            new_dir.display(),
            c.only_base.join(", "),
            c.only_new.join(", ")
        )));
    }
    print!("{}", c.render());
    Ok(if c.regressed() { 1 } else { 0 })
}
