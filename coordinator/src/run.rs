//! `coordinator run`: connect agents (or start local ones), sync clocks,
//! shard, prepare (barrier), start at one instant, follow the intervals,
//! drain, stop, merge and write the results.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::clock;
use common::plan::{self, AgentSlot};
use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage};
use common::report::Report;
use common::scenario::{self, OnAgentLoss, Override, Scenario};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ceiling;
use crate::discovery;
use crate::merge::{self, AgentOutcome, Intervals};
use crate::report::console;
use crate::session::AgentSession;
use crate::CliError;

/// What `coordinator run` was asked. `Default` leaves `scenario` empty and
/// `local_agents` at 0: set what the run needs (tests use `..Default::default()`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub agents: Vec<String>,
    pub local_agents: usize,
    pub results: Option<PathBuf>,
    pub quiet: bool,
    /// No colour in the live view (also when NO_COLOR is set).
    pub no_color: bool,
    /// Feed these metrics (served by `--metrics`) while running.
    pub metrics: Option<crate::metrics::RunMetrics>,
    /// How to find and reach remote agents (`--agents-dns`, token, TLS).
    pub remote: discovery::Remote,
    /// `--ceiling`: search for the highest rate within the SLOs (as `mode: ceiling`).
    pub ceiling: bool,
    /// Cancelled to stop the run early (SIGINT at the command line): the
    /// agents are stopped and the report so far is written, verdict
    /// `incomplete`. Never cancelled by default.
    pub shutdown: CancellationToken,
}

pub struct RunOutcome {
    pub report: Report,
    pub dir: PathBuf,
}

pub fn load_scenario(path: &Path, sets: &[String]) -> Result<Scenario, CliError> {
    let overrides =
        sets.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>().map_err(CliError::BadInput)?;
    scenario::load_file(path, &overrides).map_err(|e| CliError::BadInput(e.to_string()))
}

fn run_id(name: &str) -> String {
    let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let ts: String = ts.chars().filter(|c| c.is_ascii_digit()).collect();
    let (date, time) = ts.split_at(8.min(ts.len()));
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(40)
        .collect();
    format!("{date}-{time}-{slug}-{:04x}", rand::random::<u16>())
}

/// Local in-process agents on loopback, sharing one memory broker.
pub struct LocalAgents {
    pub addresses: Vec<String>,
    shutdown: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalAgents {
    pub async fn start(n: usize) -> Result<LocalAgents, CliError> {
        let memory = agent::memory_broker::MemoryBroker::new();
        let shutdown = CancellationToken::new();
        let mut addresses = Vec::new();
        let mut handles = Vec::new();
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| CliError::CannotComplete(format!("cannot start local agent {i}: {e}")))?;
            let addr = listener.local_addr().map_err(|e| CliError::CannotComplete(e.to_string()))?;
            addresses.push(addr.to_string());
            let mut opts = agent::AgentOptions::new(format!("local-{i}"));
            opts.memory = memory.clone();
            let sd = shutdown.clone();
            handles.push(tokio::spawn(async move {
                if let Err(e) = agent::serve(listener, opts, sd).await {
                    warn!(error = %e, "local agent failed");
                }
            }));
        }
        Ok(LocalAgents { addresses, shutdown, handles })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}

pub async fn run(mut opts: RunOptions) -> Result<RunOutcome, CliError> {
    // `--ceiling` is `mode: ceiling`: the scenario's `ceiling:` block, or
    // defaults, and `--set ceiling.*` apply.
    let sets: Vec<String> = if opts.ceiling {
        std::iter::once("mode=ceiling".to_string()).chain(opts.sets.iter().cloned()).collect()
    } else {
        opts.sets.clone()
    };
    let sc = load_scenario(&opts.scenario, &sets)?;
    prepare_broker_topics(&sc).await?;
    let local = if opts.agents.is_empty() && opts.remote.agents_dns.is_none() {
        if opts.local_agents == 0 {
            return Err(CliError::BadInput("--local-agents must be at least 1".into()));
        }
        if opts.remote.tls.take().is_some() {
            warn!("the --tls-* flags are for remote agents (--agents, --agents-dns); local agents speak plaintext on loopback");
        }
        Some(LocalAgents::start(opts.local_agents).await?)
    } else {
        None
    };
    // Agents found by name prove that name (their addresses are pod IPs).
    if let (Some(tls), Some(target)) = (opts.remote.tls.as_mut(), &opts.remote.agents_dns) {
        if tls.domain.is_none() {
            tls.domain = Some(crate::session::host_of(target).to_string());
        }
    }
    let addresses = match (&local, &opts.remote.agents_dns) {
        (Some(l), _) => l.addresses.clone(),
        (None, Some(target)) => {
            let timeout = opts.remote.discovery_timeout.unwrap_or(discovery::DEFAULT_TIMEOUT);
            let found = discovery::discover(target, opts.remote.expect_agents, timeout, discovery::system_lookup)
                .await
                .map_err(CliError::CannotComplete)?;
            info!(target = %target, agents = found.len(), "agents discovered");
            found
        }
        (None, None) => opts.agents.clone(),
    };
    let result = if opts.ceiling || sc.ceiling.is_some() {
        ceiling_search(&opts, sc, &addresses).await
    } else {
        run_with_agents(&opts, sc, &addresses).await
    };
    if let Some(l) = local {
        l.stop().await;
    }
    result
}

/// `broker.admin_url`: the scenario's partitioned topics created (or
/// checked) through the Pulsar admin API before any agent prepares.
async fn prepare_broker_topics(sc: &Scenario) -> Result<(), CliError> {
    let Some(admin) = sc.broker.admin_url.as_deref() else { return Ok(()) };
    let budget = crate::pulsar_admin::budget(&sc.broker, sc.topics.len());
    let done = tokio::time::timeout(budget, crate::pulsar_admin::prepare_topics(&sc.broker, admin, &sc.topics))
        .await
        .map_err(|_| {
            CliError::CannotComplete(format!(
                "the Pulsar admin API at {admin} did not finish within {}",
                common::units::format_duration(budget)
            ))
        })?
        .map_err(|e| CliError::CannotComplete(e.to_string()))?;
    info!(created = ?done.created, existing = ?done.existing, admin, "topics ready");
    Ok(())
}

/// A ceiling search on `addresses`: [`run_step`] once per step; the
/// report of the best step written.
async fn ceiling_search(opts: &RunOptions, sc: Scenario, addresses: &[String]) -> Result<RunOutcome, CliError> {
    let run_one = |sc: Scenario, busy_retry: Duration| async move {
        let ran = run_step(opts, sc, addresses, true, busy_retry).await?;
        Ok::<_, CliError>(ceiling::Step { report: ran.report, cpus: ran.cpus })
    };
    let report = ceiling::search(sc, &opts.scenario, opts.quiet, addresses.len(), run_one).await?;
    write_results(opts, report)
}

struct Live {
    sessions: Vec<AgentSession>,
}

async fn run_with_agents(opts: &RunOptions, sc: Scenario, addresses: &[String]) -> Result<RunOutcome, CliError> {
    let step = run_step(opts, sc, addresses, opts.quiet, Duration::ZERO).await?;
    write_results(opts, step.report)
}

/// Writes `results/<run-id>/` (or `--results DIR`).
fn write_results(opts: &RunOptions, report: Report) -> Result<RunOutcome, CliError> {
    let dir = opts.results.clone().unwrap_or_else(|| PathBuf::from("results")).join(&report.run_id);
    crate::report::results::write(&dir, &report)
        .map_err(|e| CliError::CannotComplete(format!("cannot write results to {}: {e}", dir.display())))?;
    info!(dir = %dir.display(), "results written");
    Ok(RunOutcome { report, dir })
}

/// One complete run (connect, prepare, start, measure, drain, final) on
/// `addresses`, merged into a report; nothing written. A ceiling search
/// calls it once per step.
struct StepRun {
    pub report: Report,
    /// CPUs of each agent's host (from its Hello), in `report.agents` order.
    pub cpus: Vec<u32>,
}

/// Opens a session; an agent that answers "busy" is asked again for up to
/// `busy_retry` (zero for a run's first contact: another coordinator's agent
/// is refused at once).
async fn open_session(
    address: &str,
    run_id: &str,
    coordinator_id: &str,
    token: Option<&agent::safety::Token>,
    tls: Option<&crate::session::ClientTls>,
    busy_retry: Duration,
) -> Result<AgentSession, String> {
    let deadline = tokio::time::Instant::now() + busy_retry;
    loop {
        match AgentSession::open(address, run_id, coordinator_id, token, tls).await {
            // The agent frees itself a few milliseconds after the previous run.
            Err(e) if e.contains("busy") && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r,
        }
    }
}

async fn run_step(
    opts: &RunOptions,
    sc: Scenario,
    addresses: &[String],
    quiet: bool,
    busy_retry: Duration,
) -> Result<StepRun, CliError> {
    let t_setup = std::time::Instant::now();
    let run_id = run_id(&sc.name);
    let coordinator_id = format!("coordinator-{}", std::process::id());
    let mode = console::Mode::detect(quiet);
    let out = console::Console::for_run(mode, console::color_wanted(opts.no_color), &sc, &run_id, opts.metrics.clone());

    // Connect, Hello, clock sync: many agents at once, but not a thousand
    // TCP and HTTP/2 handshakes in the same instant (in address order).
    let opened: Vec<Result<AgentSession, String>> = futures::stream::iter(addresses.iter().map(|a| {
        open_session(a, &run_id, &coordinator_id, opts.remote.token.as_ref(), opts.remote.tls.as_ref(), busy_retry)
    }))
    .buffered(OPEN_CONCURRENCY)
    .collect()
    .await;
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    for r in opened {
        match r {
            Ok(s) => sessions.push(s),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::CannotComplete(errors.join("\n")));
    }
    for s in &sessions {
        if !s.hello.drivers.iter().any(|d| d == sc.broker.kind.as_str()) {
            return Err(CliError::CannotComplete(format!(
                "agent {} cannot drive a `{}` broker (it has: {})",
                s.address,
                sc.broker.kind.as_str(),
                s.hello.drivers.join(", ")
            )));
        }
    }
    let slots: Vec<AgentSlot> =
        sessions.iter().map(|s| AgentSlot { name: s.address.clone(), instance: s.hello.instance_id.clone() }).collect();
    let plan = plan::plan(&sc, &run_id, &slots)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", opts.scenario.display())))?;
    out.line(&format!(
        "run {run_id}: scenario `{}` on {} agent(s), {} broker",
        sc.name,
        sessions.len(),
        sc.broker.kind.as_str()
    ));
    for s in &sessions {
        out.line(&format!(
            "  agent {:<22} {:<12} clock offset {:+.3} ms (± {:.3} ms)",
            s.address,
            s.hello.agent_id,
            s.clock_offset_ns as f64 / 1e6,
            s.clock_error_ns as f64 / 1e6
        ));
    }
    if let Some(line) = plan.memory_capacity_line(&slots) {
        out.line(&format!("  {line}"));
    }
    out.agents(&sessions, &plan);
    let cpus: Vec<u32> = sessions.iter().map(|s| s.hello.cpus).collect();
    let mut live = Live { sessions };

    // Merge every agent's stream into one channel. Interval reports have
    // their histograms read on the way (on any worker thread), with the CPU
    // time that took.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    for (i, s) in live.sessions.iter_mut().enumerate() {
        let Some(mut stream) = s.take_stream() else {
            continue;
        };
        let tx = ev_tx.clone();
        let clock = s.clock_follower();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if let Some(AMsg::Pong(p)) = &m.msg {
                            clock.pong(p);
                        }
                        let inbound = match m.msg {
                            Some(AMsg::Interval(r)) => {
                                let c0 = thread_cpu_ns();
                                let groups = merge::read_ahead(&r);
                                let cpu_ns = thread_cpu_ns().saturating_sub(c0);
                                Inbound::Interval(Box::new((r, ReadAhead { groups, cpu_ns })))
                            }
                            msg => Inbound::Msg(AgentMessage { msg }),
                        };
                        if tx.send((i, inbound)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send((i, Inbound::Ended("the agent closed the session".into())));
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send((i, Inbound::Ended(format!("session failed: {}", e.message()))));
                        break;
                    }
                }
            }
        });
    }
    drop(ev_tx);

    let n = live.sessions.len();
    let mut outcomes: Vec<AgentOutcome> = live
        .sessions
        .iter()
        .zip(&plan.shards)
        .map(|(s, shard)| AgentOutcome {
            address: s.address.clone(),
            hello: s.hello.clone(),
            clock_offset_ns: s.clock_offset_ns,
            clock_error_ns: s.clock_error_ns,
            clock_drift_ns: 0,
            clock_updates: 0,
            producers: shard.producers.len() as u32,
            consumers: shard.consumers.len() as u32,
            target_rate_milli: shard.rate_milli(),
            status: "ok".into(),
            error: None,
            final_report: None,
            shard_producers: shard.producers.clone(),
            shard_consumers: shard.consumers.clone(),
            interval_totals: Default::default(),
        })
        .collect();

    // Prepare: every agent subscribes its consumers, then creates producers.
    for (s, shard) in live.sessions.iter().zip(&plan.shards) {
        s.send(CMsg::Prepare(proto::Prepare {
            shard_format: common::SHARD_FORMAT_JSON_V1.into(),
            shard: shard.to_json(),
            clock_offset_ns: s.clock_offset_ns,
        }))
        .await
        .map_err(CliError::CannotComplete)?;
    }
    let prepare_deadline = tokio::time::Instant::now() + sc.broker.connect_timeout * 3 + Duration::from_secs(30);
    let mut ready = vec![false; n];
    let mut failure: Option<String> = None;
    while ready.iter().any(|r| !r) && failure.is_none() {
        match tokio::time::timeout_at(prepare_deadline, ev_rx.recv()).await {
            Err(_) => failure = Some(format!("agents not ready in time: {}", not_ready(&live, &ready))),
            Ok(None) => failure = Some("every agent session ended during prepare".into()),
            Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Ready(_)) })))) => ready[i] = true,
            Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Error(e)) })))) => {
                failure = Some(format!("agent {} failed to prepare: {}", live.sessions[i].address, e.message));
            }
            Ok(Some((i, Inbound::Ended(why)))) => failure = Some(format!("agent {}: {why}", live.sessions[i].address)),
            Ok(Some(_)) => {}
        }
    }
    if let Some(f) = failure {
        abort_all(&live).await;
        return Err(CliError::CannotComplete(f));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    // Time spent taking each interval's reports, per interval index.
    let mut merge_ns: BTreeMap<u64, (u64, u64)> = BTreeMap::new();

    // Start: one instant in coordinator time, far enough ahead for every agent.
    let max_rtt = live.sessions.iter().map(|s| s.rtt_ns).max().unwrap_or(0);
    let start_ns = clock::now_ns() + (300_000_000i64).max(max_rtt * 4);
    for s in &live.sessions {
        s.send(CMsg::Start(proto::Start { start_at_ns: start_ns })).await.map_err(CliError::CannotComplete)?;
    }
    let started_at =
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_nanos(start_ns.max(0) as u64))
            .to_string();
    out.line(&format!(
        "start: warmup {}, measure {}, cooldown {}, drain up to {}",
        common::units::format_duration(sc.phases.warmup),
        common::units::format_duration(sc.phases.duration),
        common::units::format_duration(sc.phases.cooldown),
        common::units::format_duration(sc.phases.drain_timeout)
    ));
    out.started();

    // Follow the run.
    let send_end = start_ns + sc.phases.send_end().as_nanos() as i64;
    let drain_start = send_end + sc.phases.cooldown.as_nanos() as i64;
    let drain_deadline = drain_start + sc.phases.drain_timeout.as_nanos() as i64;
    let mut intervals = Intervals::default();
    let mut printed_upto: i64 = -1;
    // Latest cumulative progress per agent and consumer group, and its sum
    // over agents, kept up to date per report (O(groups) per report, not
    // O(groups x agents): a thousand agents stay cheap).
    let groups_of_sub: HashMap<(&str, &str), Vec<usize>> =
        sc.consumers.iter().enumerate().fold(HashMap::new(), |mut m, (g, c)| {
            m.entry((c.topic.as_str(), c.subscription.as_str())).or_default().push(g);
            m
        });
    let mut progress: Vec<Vec<u64>> = vec![vec![0; sc.consumers.len()]; n];
    let mut progress_sum = vec![0u64; sc.consumers.len()];
    let mut acked_by_topic: HashMap<String, u64> = HashMap::new();
    // Latest count of producer tasks still running, per agent.
    let mut producers_active: Vec<u32> = plan.shards.iter().map(|s| s.producers.len() as u32).collect();
    let mut last_progress_change = vec![start_ns; sc.consumers.len()];
    let mut last_progress_sum = vec![0u64; sc.consumers.len()];
    let mut incomplete: Option<String> = None;
    let mut alive = vec![true; n];
    let mut drain_done_at: Option<i64> = None;
    let mut drain_timed_out = false;
    // Last time each agent said anything (Pongs to the keepalive included).
    let mut last_heard = vec![tokio::time::Instant::now(); n];
    // An agent sends an interval report every report_interval and answers
    // every keepalive ping: silence for twice the shorter of the two (at
    // least 1 s) that ends before the lease is noted, not hidden.
    let quiet_limit: Vec<Duration> = live
        .sessions
        .iter()
        .map(|s| (2 * sc.report_interval.min(s.keepalive_every())).max(Duration::from_secs(1)))
        .collect();
    let mut silences: Vec<String> = Vec::new();
    let mut next_lease_check = tokio::time::Instant::now();
    'follow: loop {
        let now = clock::now_ns();
        // An agent silent for longer than its lease is frozen or cut off
        // (its TCP connection may not tell); it has stopped its load by now.
        // Checked every 100 ms, not on every message (a thousand agents).
        let now_i = tokio::time::Instant::now();
        let check_leases = now_i >= next_lease_check;
        if check_leases {
            next_lease_check = now_i + Duration::from_millis(100);
        }
        for i in (0..n).filter(|_| check_leases) {
            let limit = live.sessions[i].lease + LOST_AFTER_LEASE;
            if alive[i] && now_i.saturating_duration_since(last_heard[i]) > limit {
                let why = format!("no word from the agent for {}", common::units::format_duration(limit));
                if let Some(stop) = lose_agent(i, "lost", why, &sc, &mut alive, &mut outcomes, &live, &out) {
                    incomplete = Some(stop);
                    break 'follow;
                }
            }
        }
        if now >= drain_start {
            // Drain complete when every subscription has every acknowledged
            // message (subscriptions with a consumer on a lost agent cannot tell).
            let lost_groups: Vec<usize> = if alive.iter().all(|a| *a) {
                Vec::new()
            } else {
                (0..n).filter(|i| !alive[*i]).flat_map(|i| plan.shards[i].consumers.iter().map(|c| c.group)).collect()
            };
            let complete = producers_active.iter().zip(&alive).all(|(p, a)| *p == 0 || !*a)
                && sc
                    .consumers
                    .iter()
                    .enumerate()
                    .filter(|(g, _)| !lost_groups.contains(g))
                    .all(|(g, c)| progress_sum[g] >= acked_by_topic.get(&c.topic).copied().unwrap_or(0));
            if complete {
                drain_done_at = Some(now);
                break;
            }
            if now >= drain_deadline {
                drain_timed_out = true;
                drain_done_at = Some(now);
                break;
            }
        }
        let wake = if now < drain_start { drain_start } else { (now + 100_000_000).min(drain_deadline) };
        let wake = wake.min(now + 500_000_000);
        tokio::select! {
            _ = opts.shutdown.cancelled() => {
                incomplete = Some("interrupted (Ctrl-C)".into());
                break;
            }
            _ = tokio::time::sleep_until(clock::instant_at(wake).into()) => {}
            ev = ev_rx.recv() => match ev {
                None => { incomplete = Some("every agent session ended".into()); break; }
                Some((i, Inbound::Ended(why))) => {
                    if alive[i] {
                        if let Some(stop) = lose_agent(i, "lost", why, &sc, &mut alive, &mut outcomes, &live, &out) {
                            incomplete = Some(stop);
                            break;
                        }
                    }
                }
                // An agent already called lost is not heard any more.
                Some((i, _)) if !alive[i] => {}
                Some((i, msg)) => {
                    let heard = tokio::time::Instant::now();
                    let quiet = heard.saturating_duration_since(last_heard[i]);
                    if quiet > quiet_limit[i] {
                        let note = silence_note(&live.sessions[i], quiet, clock::now_ns() - start_ns);
                        out.line(&note);
                        silences.push(note);
                    }
                    last_heard[i] = heard;
                    match msg {
                        Inbound::Interval(report) => {
                            let (r, read) = *report;
                            producers_active[i] = r.producers_active;
                            for g in &r.groups {
                                if g.role == proto::Role::Producer as i32 {
                                    if let Some(grp) = sc.producers.get(g.group as usize) {
                                        let acked = g.warmup.as_ref().map(|p| p.acked).unwrap_or(0) + g.measure.as_ref().map(|p| p.acked).unwrap_or(0);
                                        *acked_by_topic.entry(grp.topic.clone()).or_default() += acked;
                                    }
                                }
                            }
                            for p in &r.progress {
                                for &g in groups_of_sub.get(&(p.topic.as_str(), p.subscription.as_str())).into_iter().flatten() {
                                    progress_sum[g] = progress_sum[g] - progress[i][g] + p.unique_received;
                                    progress[i][g] = p.unique_received;
                                }
                            }
                            for (g, &sum) in progress_sum.iter().enumerate() {
                                if sum != last_progress_sum[g] {
                                    last_progress_sum[g] = sum;
                                    last_progress_change[g] = r.end_ns;
                                }
                            }
                            take_interval(i, &r, read, &sc, start_ns, &alive, &out, &mut outcomes, &mut intervals, &mut printed_upto, &mut merge_ns);
                        }
                        Inbound::Msg(AgentMessage { msg: Some(AMsg::Error(e)) }) => {
                            warn!(agent = %live.sessions[i].address, phase = %e.phase, error = %e.message, "agent error");
                            out.line(&format!("agent {}: {} error: {}", live.sessions[i].address, e.phase, e.message));
                            if e.fatal && alive[i] {
                                let why = format!("failed: {}", e.message);
                                if let Some(stop) = lose_agent(i, "error", why, &sc, &mut alive, &mut outcomes, &live, &out) {
                                    incomplete = Some(stop);
                                    break;
                                }
                            }
                        }
                        Inbound::Msg(AgentMessage { msg: Some(AMsg::Final(f)) }) => outcomes[i].final_report = Some(f),
                        _ => {}
                    }
                }
            }
        }
    }
    let drain_s = drain_done_at.map(|t| ((t - drain_start).max(0)) as f64 / 1e9).unwrap_or(0.0);

    // Stop: producers are done (or aborted); consumers stop; finals come back.
    let abort = incomplete.is_some();
    for (i, s) in live.sessions.iter().enumerate() {
        if alive[i] {
            let _ = s
                .send(CMsg::Stop(proto::Stop {
                    reason: if abort { "abort".into() } else { "drain complete".into() },
                    abort,
                }))
                .await;
        }
    }
    let max_send_timeout = sc.producers.iter().map(|p| p.send_timeout).max().unwrap_or_default();
    let final_deadline = tokio::time::Instant::now() + max_send_timeout + Duration::from_secs(30);
    while outcomes.iter().enumerate().any(|(i, o)| alive[i] && o.final_report.is_none()) {
        match tokio::time::timeout_at(final_deadline, ev_rx.recv()).await {
            Err(_) => {
                for (i, o) in outcomes.iter_mut().enumerate() {
                    if alive[i] && o.final_report.is_none() {
                        o.status = "lost".into();
                        o.error = Some("no final report in time".into());
                        alive[i] = false;
                    }
                }
                if sc.on_agent_loss == OnAgentLoss::Abort || outcomes.iter().all(|o| o.final_report.is_none()) {
                    incomplete.get_or_insert_with(|| "some agents sent no final report".into());
                }
            }
            Ok(None) => break,
            Ok(Some((i, Inbound::Msg(AgentMessage { msg: Some(AMsg::Final(f)) })))) if alive[i] => {
                outcomes[i].final_report = Some(f)
            }
            Ok(Some((i, Inbound::Interval(report)))) if alive[i] => {
                let (r, read) = *report;
                take_interval(
                    i,
                    &r,
                    read,
                    &sc,
                    start_ns,
                    &alive,
                    &out,
                    &mut outcomes,
                    &mut intervals,
                    &mut printed_upto,
                    &mut merge_ns,
                );
            }
            Ok(Some((i, Inbound::Ended(why)))) => {
                if alive[i] && outcomes[i].final_report.is_none() {
                    let why = format!("before its final report: {why}");
                    if let Some(stop) = lose_agent(i, "lost", why, &sc, &mut alive, &mut outcomes, &live, &out) {
                        incomplete.get_or_insert(stop);
                    }
                }
            }
            Ok(Some(_)) => {}
        }
    }
    for (o, s) in outcomes.iter_mut().zip(&live.sessions) {
        let c = s.clock_follower().snapshot();
        o.clock_drift_ns = c.drift_ns();
        o.clock_updates = c.updates();
        // A re-sync may have used a wider bound than the initial one.
        o.clock_error_ns = o.clock_error_ns.max(c.worst_error_ns());
    }
    drop(live);

    let stalled: Vec<(String, String)> = sc
        .consumers
        .iter()
        .enumerate()
        .filter(|(g, _)| {
            drain_timed_out && last_progress_change[*g] < send_end - 2 * sc.report_interval.as_nanos() as i64
        })
        .map(|(_, c)| (c.topic.clone(), c.subscription.clone()))
        .collect();
    let scenario_file = opts.scenario.display().to_string();
    let t_build = std::time::Instant::now();
    // Late agents' intervals (after their line was printed) are summed, not settled.
    intervals.settle_all();
    let mut report = merge::build(merge::ReportInput {
        run_id: &run_id,
        scenario: &sc,
        scenario_file: &scenario_file,
        started_at,
        agents: &outcomes,
        intervals: &intervals,
        start_ns,
        drain_s,
        drain_timed_out,
        stalled,
        incomplete,
        notes: silences,
    });
    let (mut wall, mut cpu): (Vec<u64>, Vec<u64>) = merge_ns.into_values().unzip();
    wall.sort_unstable();
    cpu.sort_unstable();
    let ms = |v: &[u64], at: usize| v.get(at).copied().unwrap_or(0) as f64 / 1e6;
    report.coordinator = Some(common::report::CoordinatorCost {
        agents: n as u32,
        setup_s,
        interval_merge_ms_p50: ms(&wall, wall.len() / 2),
        interval_merge_ms_max: ms(&wall, wall.len().saturating_sub(1)),
        interval_merge_cpu_ms_p50: ms(&cpu, cpu.len() / 2),
        interval_merge_cpu_ms_max: ms(&cpu, cpu.len().saturating_sub(1)),
        report_build_ms: t_build.elapsed().as_secs_f64() * 1e3,
        start_spread_ms: report.start_offsets().map(|(first, last, _)| last - first),
    });
    out.finish(&report);
    Ok(StepRun { report, cpus })
}

/// Sessions opened at the same time.
const OPEN_CONCURRENCY: usize = 64;

/// Silence beyond an agent's lease after which the coordinator calls it lost.
const LOST_AFTER_LEASE: Duration = Duration::from_secs(1);

/// What the report says about an agent that fell silent for `quiet` and
/// was heard again `now_ns` into the run (from the start instant).
fn silence_note(s: &AgentSession, quiet: Duration, now_ns: i64) -> String {
    let from_s = (now_ns as f64 / 1e9 - quiet.as_secs_f64()).max(0.0);
    format!(
        "agent {} was silent for {:.1}s from {:.1}s into the run (no interval report, no keepalive answer; \
         its lease is {}), then was heard again: a cut link or a stalled host",
        s.address,
        quiet.as_secs_f64(),
        from_s,
        common::units::format_duration(s.lease)
    )
}

/// Marks agent `i` lost (`status`: "lost" or "error") and tells it to stop
/// if it still listens. Returns why the run cannot go on — `on_agent_loss:
/// abort`, or no agent left — or None when it goes on without this agent.
#[allow(clippy::too_many_arguments)]
fn lose_agent(
    i: usize,
    status: &str,
    why: String,
    sc: &Scenario,
    alive: &mut [bool],
    outcomes: &mut [AgentOutcome],
    live: &Live,
    out: &console::Console,
) -> Option<String> {
    let address = &live.sessions[i].address;
    warn!(agent = %address, reason = %why, policy = sc.on_agent_loss.as_str(), "agent lost");
    alive[i] = false;
    outcomes[i].status = status.into();
    outcomes[i].error = Some(why.clone());
    out.agent_status(i, status);
    live.sessions[i].send_now(CMsg::Stop(proto::Stop { reason: "lost by the coordinator".into(), abort: true }));
    let left = alive.iter().filter(|a| **a).count();
    match sc.on_agent_loss {
        OnAgentLoss::Continue if left > 0 => {
            out.line(&format!(
                "agent {address} lost ({why}); continuing with {left} agent(s) (on_agent_loss: continue)"
            ));
            None
        }
        OnAgentLoss::Continue => Some(format!("lost agent {address}: {why}; no agent left")),
        OnAgentLoss::Abort => Some(format!("lost agent {address}: {why} (on_agent_loss: abort)")),
    }
}

/// Takes one agent's interval report: its live view and running totals, the
/// merged interval, and one printed line once every live agent has sent it.
#[allow(clippy::too_many_arguments)]
fn take_interval(
    i: usize,
    r: &proto::IntervalReport,
    read: ReadAhead,
    sc: &Scenario,
    start_ns: i64,
    alive: &[bool],
    out: &console::Console,
    outcomes: &mut [AgentOutcome],
    intervals: &mut Intervals,
    printed_upto: &mut i64,
    merge_ns: &mut BTreeMap<u64, (u64, u64)>,
) {
    let t0 = std::time::Instant::now();
    let c0 = thread_cpu_ns();
    out.agent_interval(i, r);
    outcomes[i].interval_totals.add(r);
    let merged = intervals.add(r, read.groups);
    let alive_n = alive.iter().filter(|a| **a).count() as u32;
    if merged.agents >= alive_n && r.index as i64 > *printed_upto {
        merged.settle();
        out.interval(sc, r.index, merged, start_ns, alive_n);
        *printed_upto = r.index as i64;
    }
    let (wall, cpu) = merge_ns.entry(r.index).or_default();
    *wall += t0.elapsed().as_nanos() as u64;
    *cpu += thread_cpu_ns().saturating_sub(c0) + read.cpu_ns;
}

/// One event from an agent's session for the run loop, with the agent's index.
type Event = (usize, Inbound);

/// What an agent's session hands the run loop.
enum Inbound {
    /// An interval report, its histograms read on the session's task.
    Interval(Box<(proto::IntervalReport, ReadAhead)>),
    /// Any other message.
    Msg(AgentMessage),
    /// The session ended, and why.
    Ended(String),
}

/// An interval report's histograms, read on the session's task.
struct ReadAhead {
    groups: Vec<common::stats::ReadGroup>,
    /// CPU time the reading took (part of the interval's merge cost).
    cpu_ns: u64,
}

/// CPU time of the calling thread (ns).
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

fn not_ready(live: &Live, ready: &[bool]) -> String {
    live.sessions.iter().zip(ready).filter(|(_, r)| !**r).map(|(s, _)| s.address.clone()).collect::<Vec<_>>().join(", ")
}

async fn abort_all(live: &Live) {
    for s in &live.sessions {
        let _ = s.send(CMsg::Stop(proto::Stop { reason: "abort".into(), abort: true })).await;
    }
}
