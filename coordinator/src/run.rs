//! `coordinator run`: connect agents (or start local ones), sync clocks,
//! shard, prepare (barrier), start at one instant, follow the intervals,
//! drain, stop, merge and write the results.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::clock;
use common::plan::{self, AgentSlot};
use common::proto::{self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage};
use common::report::Report;
use common::scenario::{self, Override, Scenario};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::console;
use crate::merge::{self, AgentOutcome, Intervals};
use crate::session::AgentSession;
use crate::CliError;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub agents: Vec<String>,
    pub local_agents: usize,
    pub results: Option<PathBuf>,
    pub quiet: bool,
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

pub async fn run(opts: RunOptions) -> Result<RunOutcome, CliError> {
    let sc = load_scenario(&opts.scenario, &opts.sets)?;
    let local = if opts.agents.is_empty() {
        if opts.local_agents == 0 {
            return Err(CliError::BadInput("--local-agents must be at least 1".into()));
        }
        Some(LocalAgents::start(opts.local_agents).await?)
    } else {
        None
    };
    let addresses = match &local {
        Some(l) => l.addresses.clone(),
        None => opts.agents.clone(),
    };
    let result = run_with_agents(&opts, sc, &addresses).await;
    if let Some(l) = local {
        l.stop().await;
    }
    result
}

struct Live {
    sessions: Vec<AgentSession>,
}

async fn run_with_agents(opts: &RunOptions, sc: Scenario, addresses: &[String]) -> Result<RunOutcome, CliError> {
    let run_id = run_id(&sc.name);
    let coordinator_id = format!("coordinator-{}", std::process::id());
    let out = console::Console::new(opts.quiet);

    // Connect, Hello, clock sync: all agents at once.
    let opened =
        futures::future::join_all(addresses.iter().map(|a| AgentSession::open(a, &run_id, &coordinator_id))).await;
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
    let mut live = Live { sessions };

    // Merge every agent's stream into one channel.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, Option<AgentMessage>, Option<String>)>();
    for (i, s) in live.sessions.iter_mut().enumerate() {
        let Some(mut stream) = s.take_stream() else {
            continue;
        };
        let tx = ev_tx.clone();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if tx.send((i, Some(m), None)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send((i, None, Some("the agent closed the session".into())));
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send((i, None, Some(format!("session failed: {}", e.message()))));
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
            producers: shard.producers.len() as u32,
            consumers: shard.consumers.len() as u32,
            target_rate_milli: shard.rate_milli(),
            status: "ok".into(),
            error: None,
            final_report: None,
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
            Ok(Some((i, Some(AgentMessage { msg: Some(AMsg::Ready(_)) }), _))) => ready[i] = true,
            Ok(Some((i, Some(AgentMessage { msg: Some(AMsg::Error(e)) }), _))) => {
                failure = Some(format!("agent {} failed to prepare: {}", live.sessions[i].address, e.message));
            }
            Ok(Some((i, None, why))) => {
                failure = Some(format!("agent {}: {}", live.sessions[i].address, why.unwrap_or_default()))
            }
            Ok(Some(_)) => {}
        }
    }
    if let Some(f) = failure {
        abort_all(&live).await;
        return Err(CliError::CannotComplete(f));
    }

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

    // Follow the run.
    let send_end = start_ns + sc.phases.send_end().as_nanos() as i64;
    let drain_start = send_end + sc.phases.cooldown.as_nanos() as i64;
    let drain_deadline = drain_start + sc.phases.drain_timeout.as_nanos() as i64;
    let mut intervals = Intervals::default();
    let mut printed_upto: i64 = -1;
    // Latest cumulative progress per agent, per consumer group index.
    let mut progress: Vec<HashMap<(String, String), u64>> = vec![HashMap::new(); n];
    let mut acked_by_topic: HashMap<String, u64> = HashMap::new();
    // Latest count of producer tasks still running, per agent.
    let mut producers_active: Vec<u32> = plan.shards.iter().map(|s| s.producers.len() as u32).collect();
    let mut last_progress_change = vec![start_ns; sc.consumers.len()];
    let mut last_progress_sum = vec![0u64; sc.consumers.len()];
    let mut incomplete: Option<String> = None;
    let mut alive = vec![true; n];
    let mut drain_done_at: Option<i64> = None;
    let mut drain_timed_out = false;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        let now = clock::now_ns();
        if now >= drain_start {
            // Drain complete when every subscription has every acknowledged message.
            let complete = producers_active.iter().zip(&alive).all(|(p, a)| *p == 0 || !*a)
                && sc.consumers.iter().all(|c| {
                    let want = acked_by_topic.get(&c.topic).copied().unwrap_or(0);
                    let have: u64 = progress
                        .iter()
                        .map(|p| p.get(&(c.topic.clone(), c.subscription.clone())).copied().unwrap_or(0))
                        .sum();
                    have >= want
                });
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
        tokio::select! {
            _ = &mut interrupt => {
                incomplete = Some("interrupted (Ctrl-C)".into());
                break;
            }
            _ = tokio::time::sleep_until(clock::instant_at(wake).into()) => {}
            ev = ev_rx.recv() => match ev {
                None => { incomplete = Some("every agent session ended".into()); break; }
                Some((i, Some(msg), _)) => match msg.msg {
                    Some(AMsg::Interval(r)) => {
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
                            progress[i].insert((p.topic.clone(), p.subscription.clone()), p.unique_received);
                        }
                        for (g, c) in sc.consumers.iter().enumerate() {
                            let sum: u64 = progress.iter().map(|p| p.get(&(c.topic.clone(), c.subscription.clone())).copied().unwrap_or(0)).sum();
                            if sum != last_progress_sum[g] {
                                last_progress_sum[g] = sum;
                                last_progress_change[g] = r.end_ns;
                            }
                        }
                        let idx = r.index;
                        let merged = intervals.add(&r);
                        let alive_n = alive.iter().filter(|a| **a).count() as u32;
                        if merged.agents >= alive_n && idx as i64 > printed_upto {
                            out.interval(&sc, idx, merged, start_ns, alive_n);
                            printed_upto = idx as i64;
                        }
                    }
                    Some(AMsg::Error(e)) => {
                        warn!(agent = %live.sessions[i].address, phase = %e.phase, error = %e.message, "agent error");
                        out.line(&format!("agent {}: {} error: {}", live.sessions[i].address, e.phase, e.message));
                        if e.fatal {
                            outcomes[i].status = "error".into();
                            outcomes[i].error = Some(e.message.clone());
                            incomplete = Some(format!("agent {} failed: {}", live.sessions[i].address, e.message));
                            break;
                        }
                    }
                    Some(AMsg::Final(f)) => outcomes[i].final_report = Some(f),
                    _ => {}
                },
                Some((i, None, why)) => {
                    alive[i] = false;
                    let why = why.unwrap_or_default();
                    outcomes[i].status = "lost".into();
                    outcomes[i].error = Some(why.clone());
                    incomplete = Some(format!("lost agent {}: {why}", live.sessions[i].address));
                    break;
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
                incomplete.get_or_insert_with(|| "some agents sent no final report".into());
            }
            Ok(None) => break,
            Ok(Some((i, Some(AgentMessage { msg: Some(AMsg::Final(f)) }), _))) => outcomes[i].final_report = Some(f),
            Ok(Some((_, Some(AgentMessage { msg: Some(AMsg::Interval(r)) }), _))) => {
                let idx = r.index;
                let merged = intervals.add(&r);
                let alive_n = alive.iter().filter(|a| **a).count() as u32;
                if merged.agents >= alive_n && idx as i64 > printed_upto {
                    out.interval(&sc, idx, merged, start_ns, alive_n);
                    printed_upto = idx as i64;
                }
            }
            Ok(Some((i, None, why))) => {
                if outcomes[i].final_report.is_none() {
                    alive[i] = false;
                    outcomes[i].status = "lost".into();
                    outcomes[i].error = why.clone();
                    incomplete.get_or_insert_with(|| {
                        format!("lost agent {}: {}", live.sessions[i].address, why.unwrap_or_default())
                    });
                }
            }
            Ok(Some(_)) => {}
        }
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
    let report = merge::build(merge::ReportInput {
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
        notes: Vec::new(),
    });
    let dir = opts.results.clone().unwrap_or_else(|| PathBuf::from("results")).join(&run_id);
    crate::results::write(&dir, &report)
        .map_err(|e| CliError::CannotComplete(format!("cannot write results to {}: {e}", dir.display())))?;
    info!(dir = %dir.display(), "results written");
    Ok(RunOutcome { report, dir })
}

fn not_ready(live: &Live, ready: &[bool]) -> String {
    live.sessions.iter().zip(ready).filter(|(_, r)| !**r).map(|(s, _)| s.address.clone()).collect::<Vec<_>>().join(", ")
}

async fn abort_all(live: &Live) {
    for s in &live.sessions {
        let _ = s.send(CMsg::Stop(proto::Stop { reason: "abort".into(), abort: true })).await;
    }
}
