//! Merges what the agents sent into one report: interval rows, whole-run
//! group stats, and delivery accounting per subscription (range sets
//! unioned across consumers and agents, compared with what producers had
//! acknowledged). Also judges the SLOs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::hist::Hist;
use common::plan::{ConsumerInstance, ProducerInstance};
use common::proto::{self, FinalReport, IntervalReport};
use common::rangeset::RangeSet;
use common::report::*;
use common::scenario::Scenario;
use common::stats::{GroupPhases, GroupSums, ReadGroup};

use crate::report::format::fmt_us_slo;

/// What the coordinator knows of one agent at the end.
pub struct AgentOutcome {
    pub address: String,
    pub hello: proto::HelloAck,
    pub clock_offset_ns: i64,
    pub clock_error_ns: i64,
    /// How far the offset moved during the run (re-sync from keepalives),
    /// and the corrections sent.
    pub clock_drift_ns: i64,
    pub clock_updates: u32,
    pub producers: u32,
    pub consumers: u32,
    pub target_rate_milli: u64,
    /// "ok", "lost" or "error".
    pub status: String,
    pub error: Option<String>,
    pub final_report: Option<FinalReport>,
    /// The agent's shard: which producers and consumers ran there.
    pub shard_producers: Vec<ProducerInstance>,
    pub shard_consumers: Vec<ConsumerInstance>,
    /// Its counts summed from its interval reports (for an agent lost
    /// before its final report: its counts until the loss).
    pub interval_totals: IntervalTotals,
}

/// One agent's counters summed over the interval reports it sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalTotals {
    pub intervals: u64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub received: u64,
    pub acked_measure: u64,
    pub received_measure: u64,
    pub late_sends: u64,
    pub max_lag_ns: u64,
    pub cpu_ns: u64,
    pub wall_ns: u64,
}

impl IntervalTotals {
    pub fn add(&mut self, r: &IntervalReport) {
        self.intervals += 1;
        self.cpu_ns += r.cpu_ns;
        self.wall_ns += r.wall_ns;
        self.max_lag_ns = self.max_lag_ns.max(r.max_lag_ns);
        for g in &r.groups {
            let producer = g.role == proto::Role::Producer as i32;
            for (p, measure) in [(&g.warmup, false), (&g.measure, true)] {
                let Some(p) = p else { continue };
                if producer {
                    self.sent += p.sent;
                    self.acked += p.acked;
                    self.send_errors += p.send_errors;
                    self.late_sends += p.late_sends;
                    if measure {
                        self.acked_measure += p.acked;
                    }
                } else {
                    self.received += p.received;
                    if measure {
                        self.received_measure += p.received;
                    }
                }
            }
        }
    }
}

/// An interval report's histograms, read and checked (what
/// [`Intervals::add`] takes): the costly part of a merge, done where
/// the report arrives so a thousand agents' reports are read in parallel.
pub fn read_ahead(r: &IntervalReport) -> Vec<ReadGroup> {
    r.groups.iter().map(ReadGroup::read).collect()
}

/// Interval reports merged across agents, by interval index.
#[derive(Default)]
pub struct Intervals {
    pub by_index: BTreeMap<u64, IntervalMerge>,
}

#[derive(Default)]
pub struct IntervalMerge {
    pub agents: u32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub producers: BTreeMap<u32, GroupPhases>,
    pub consumers: BTreeMap<u32, GroupPhases>,
    pub max_lag_ns: u64,
    pub cpu_ns: u64,
    pub wall_ns: u64,
    /// Histograms added but not yet settled into the groups, by (producer, group).
    pub(crate) pending: BTreeMap<(bool, u32), GroupSums>,
}

impl IntervalMerge {
    /// Makes every histogram added so far readable in `producers` and `consumers`.
    pub fn settle(&mut self) {
        for ((producer, group), mut sums) in std::mem::take(&mut self.pending) {
            let map = if producer { &mut self.producers } else { &mut self.consumers };
            sums.settle_into(map.entry(group).or_default());
        }
    }
}

impl Intervals {
    /// Adds one agent's interval; returns the merged interval, its counters
    /// up to date, its histograms summed but not settled (see
    /// [`IntervalMerge::settle`]: once per printed line, not per agent).
    /// `read` is `read_ahead(r)`, done on the session's task.
    pub fn add(&mut self, r: &IntervalReport, read: Vec<ReadGroup>) -> &mut IntervalMerge {
        let m = self.by_index.entry(r.index).or_default();
        m.agents += 1;
        m.start_ns = r.start_ns;
        m.end_ns = r.end_ns;
        m.max_lag_ns = m.max_lag_ns.max(r.max_lag_ns);
        m.cpu_ns += r.cpu_ns;
        m.wall_ns = m.wall_ns.max(r.wall_ns);
        for (g, read) in r.groups.iter().zip(read) {
            let producer = g.role == proto::Role::Producer as i32;
            let map = if producer { &mut m.producers } else { &mut m.consumers };
            // Summed, settled when the interval's line prints (a bad
            // histogram from one agent leaves its phase out).
            let sums = m.pending.entry((producer, g.group)).or_default();
            let _ = map.entry(g.group).or_default().merge_read_deferred(g, read, sums);
        }
        m
    }

    /// Settles every interval (before the report reads them).
    pub fn settle_all(&mut self) {
        self.by_index.values_mut().for_each(IntervalMerge::settle);
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

pub fn latency(h: &Hist) -> Latency {
    Latency {
        p50: us(h.quantile_ns(0.5)),
        p90: us(h.quantile_ns(0.9)),
        p99: us(h.quantile_ns(0.99)),
        p999: us(h.quantile_ns(0.999)),
        max: us(h.max_ns()),
        mean: if h.is_empty() { 0.0 } else { h.mean_ns() / 1000.0 },
        count: h.len(),
    }
}

pub struct ReportInput<'a> {
    pub run_id: &'a str,
    pub scenario: &'a Scenario,
    pub scenario_file: &'a str,
    pub started_at: String,
    pub agents: &'a [AgentOutcome],
    pub intervals: &'a Intervals,
    pub start_ns: i64,
    pub drain_s: f64,
    pub drain_timed_out: bool,
    pub stalled: Vec<(String, String)>,
    pub incomplete: Option<String>,
    pub notes: Vec<String>,
}

pub fn build(input: ReportInput<'_>) -> Report {
    let sc = input.scenario;
    let dur_s = sc.phases.duration.as_secs_f64().max(1e-9);
    // Throughput is what happened inside the measurement window: acks and
    // deliveries counted by when they happened, from the interval counts
    // (an interval across an edge counts pro rata). The measure phase's own
    // counters also hold what arrived after it (during the drain): under
    // overload that is the queue emptying, and dividing it by the window
    // would report more than the broker did (or more than the target).
    let window =
        (input.start_ns + sc.phases.warmup.as_nanos() as i64, input.start_ns + sc.phases.send_end().as_nanos() as i64);
    let in_window = |role: Role, g: usize, measured: u64| -> f64 {
        window_count(input.intervals, role, g as u32, window).unwrap_or(measured as f64)
    };
    let mut notes = input.notes.clone();

    // Whole-run group stats.
    let mut pgroups: BTreeMap<u32, GroupPhases> = BTreeMap::new();
    let mut cgroups: BTreeMap<u32, GroupPhases> = BTreeMap::new();
    for a in input.agents {
        let Some(f) = &a.final_report else { continue };
        for g in &f.groups {
            match GroupPhases::from_proto(g) {
                Ok(s) => {
                    let map = if g.role == proto::Role::Producer as i32 { &mut pgroups } else { &mut cgroups };
                    map.entry(g.group).or_default().merge(&s);
                }
                Err(e) => notes.push(format!("agent {}: a histogram did not decode: {e}", a.address)),
            }
        }
        for n in &f.notes {
            notes.push(format!("agent {}: {n}", a.address));
        }
    }

    // Agents lost before their final report: their producers' acknowledged
    // sets and their consumers' received sets never arrived.
    let lost_agents: Vec<&AgentOutcome> = input.agents.iter().filter(|a| a.final_report.is_none()).collect();
    let lost_producers: HashSet<u64> =
        lost_agents.iter().flat_map(|a| a.shard_producers.iter().map(|p| u64::from(p.id))).collect();
    let not_judged: BTreeSet<usize> =
        lost_agents.iter().flat_map(|a| a.shard_consumers.iter().map(|c| c.group)).collect();
    let mut excluded_received = 0u64;

    // Acknowledged sets per producer, received sets per subscription.
    let mut acked: HashMap<u64, (String, RangeSet, u64)> = HashMap::new();
    struct Sub {
        received: HashMap<u64, RangeSet>,
        duplicates: u64,
        redelivered: u64,
        /// Messages more than one consumer received.
        overlaps: u64,
        redelivery_causes: u64,
        reordered: u64,
        deliveries: u64,
        undecodable: u64,
        partitions: BTreeMap<u32, u64>,
    }
    let mut subs: BTreeMap<(String, String), Sub> = BTreeMap::new();
    for a in input.agents {
        let Some(f) = &a.final_report else { continue };
        for p in &f.producers {
            let set = p.acked.as_ref().map(RangeSet::from_proto).unwrap_or_default();
            let e = acked.entry(p.producer_id).or_insert_with(|| (p.topic.clone(), RangeSet::new(), 0));
            e.1.union_with(&set);
            e.2 += p.sent;
        }
        for s in &f.subscriptions {
            let acc = subs.entry((s.topic.clone(), s.subscription.clone())).or_insert_with(|| Sub {
                received: HashMap::new(),
                duplicates: 0,
                redelivered: 0,
                overlaps: 0,
                redelivery_causes: 0,
                reordered: 0,
                deliveries: 0,
                undecodable: 0,
                partitions: BTreeMap::new(),
            });
            acc.duplicates += s.duplicates;
            acc.redelivered += s.redelivered;
            acc.overlaps += s.overlaps;
            acc.redelivery_causes += s.redelivery_causes;
            acc.reordered += s.reordered;
            acc.deliveries += s.deliveries;
            acc.undecodable += s.undecodable;
            for (p, n) in &s.partition_deliveries {
                *acc.partitions.entry(*p).or_default() += n;
            }
            for pr in &s.producers {
                let set = pr.received.as_ref().map(RangeSet::from_proto).unwrap_or_default();
                let e = acc.received.entry(pr.producer_id).or_default();
                acc.overlaps += e.union_with(&set);
            }
        }
    }
    // A message two consumers both got: after a consumer subscribed again
    // or left (the broker flags what it hands to the others), the broker
    // redelivering what it had no ack for; without either, a duplicate.
    for s in subs.values_mut() {
        let overlaps = std::mem::take(&mut s.overlaps);
        if s.redelivery_causes > 0 {
            s.redelivered += overlaps;
        } else {
            s.duplicates += overlaps;
        }
    }

    let mut totals = Totals::default();
    for (_, set, sent) in acked.values() {
        totals.acked += set.len();
        totals.sent += sent;
    }
    for g in pgroups.values() {
        totals.send_errors += g.total().send_errors;
    }

    let backlogs = group_backlogs(sc, input.intervals, input.start_ns);
    let mut subscriptions = Vec::new();
    for (ci, c) in sc.consumers.iter().enumerate() {
        let key = (c.topic.clone(), c.subscription.clone());
        let empty = Sub {
            received: HashMap::new(),
            duplicates: 0,
            redelivered: 0,
            overlaps: 0,
            redelivery_causes: 0,
            reordered: 0,
            deliveries: 0,
            undecodable: 0,
            partitions: BTreeMap::new(),
        };
        let s = subs.get(&key).unwrap_or(&empty);
        let mut expected = 0;
        let mut lost = 0;
        let mut unacked_received = 0;
        let mut received_unique = 0;
        let mut missing_sample = Vec::new();
        let no_set = RangeSet::new();
        for (pid, (topic, set, _)) in &acked {
            if *topic != c.topic {
                continue;
            }
            expected += set.len();
            let got = s.received.get(pid).unwrap_or(&no_set);
            lost += set.difference_len(got);
            if missing_sample.len() < 10 {
                for (a, b) in set.missing_ranges(got, 10 - missing_sample.len()) {
                    missing_sample.push(format!("{pid}:{a}-{}", b - 1));
                }
            }
        }
        for (pid, got) in &s.received {
            if lost_producers.contains(pid) {
                // Its acknowledged set never arrived: neither loss nor "unacked".
                excluded_received += got.len();
                continue;
            }
            received_unique += got.len();
            let set = acked.get(pid).map(|x| &x.1).unwrap_or(&no_set);
            unacked_received += got.difference_len(set);
        }
        missing_sample.sort();
        let judged = !not_judged.contains(&ci);
        let stalled =
            judged && input.stalled.iter().any(|(t, sname)| *t == c.topic && *sname == c.subscription) && lost > 0;
        totals.received += s.deliveries;
        if judged {
            totals.lost += lost;
            totals.duplicated += s.duplicates;
            totals.redelivered += s.redelivered;
            totals.reordered += s.reordered;
            totals.unacked_received += unacked_received;
        }
        subscriptions.push(SubscriptionReport {
            topic: c.topic.clone(),
            subscription: c.subscription.clone(),
            sub_type: c.sub_type.as_str().into(),
            consumers: c.count,
            expected,
            received_unique,
            deliveries: s.deliveries,
            lost,
            duplicated: s.duplicates,
            redelivered: s.redelivered,
            reordered: s.reordered,
            unacked_received,
            undecodable: s.undecodable,
            partition_deliveries: s.partitions.clone(),
            missing_sample,
            stalled,
            backlog: backlog_summary(&backlogs[ci]),
        });
    }

    // Groups, measurement phase.
    let mut groups = Vec::new();
    let mut histograms = Vec::new();
    for (i, g) in sc.producers.iter().enumerate() {
        let s = pgroups.get(&(i as u32)).cloned().unwrap_or_default();
        let m = &s.measure;
        groups.push(GroupReport {
            name: g.name.clone(),
            role: "producer".into(),
            topic: g.topic.clone(),
            subscription: None,
            subscription_type: None,
            instances: g.count,
            messages: m.acked,
            bytes: m.bytes,
            rate_msgs_per_s: in_window(Role::Producer, i, m.acked) / dur_s,
            rate_bytes_per_s: in_window(Role::Producer, i, m.acked) / dur_s * m.bytes as f64 / m.acked.max(1) as f64,
            // The schedule's mean over the measurement (a load shape's
            // integral), for the producers whose agents reported.
            target_rate_msgs_per_s: g.target_rate(sc.phases.warmup, sc.phases.send_end()).map(|t| {
                if lost_agents.is_empty() || g.total_rate_milli == 0 {
                    t
                } else {
                    let left = input
                        .agents
                        .iter()
                        .filter(|a| a.final_report.is_some())
                        .flat_map(|a| a.shard_producers.iter().filter(|p| p.group == i))
                        .map(|p| p.rate_milli)
                        .sum::<u64>() as f64;
                    t * left / g.total_rate_milli as f64
                }
            }),
            closed_loop: g.closed_loop(),
            send_errors: s.total().send_errors,
            warmup_messages: s.warmup.acked,
            latency_us: latency(&m.response),
            alt_latency_us: latency(&m.service),
            late_sends: m.late_sends + s.warmup.late_sends,
            max_lag_ms: m.max_lag_ns.max(s.warmup.max_lag_ns) as f64 / 1e6,
            unsent: m.unsent + s.warmup.unsent,
            in_flight_wait_percent: {
                // Over the producers that reported (all of them, unless agents were lost).
                let producers: usize = input
                    .agents
                    .iter()
                    .filter(|a| a.final_report.is_some())
                    .map(|a| a.shard_producers.iter().filter(|p| p.group == i).count())
                    .sum();
                (producers > 0).then(|| wait_percent(m.window_wait_ns, producers as f64, dur_s))
            },
            duplicates: 0,
            reordered: 0,
            redelivered: 0,
            e2e_clock_error_us: None,
        });
        histograms.push(hist_record(&g.name, "producer", "publish_response", &m.response));
        histograms.push(hist_record(&g.name, "producer", "publish_service", &m.service));
    }
    for (i, g) in sc.consumers.iter().enumerate() {
        let s = cgroups.get(&(i as u32)).cloned().unwrap_or_default();
        let m = &s.measure;
        let t = s.total();
        groups.push(GroupReport {
            name: g.name.clone(),
            role: "consumer".into(),
            topic: g.topic.clone(),
            subscription: Some(g.subscription.clone()),
            subscription_type: Some(g.sub_type.as_str().into()),
            instances: g.count,
            messages: m.received,
            bytes: m.bytes,
            rate_msgs_per_s: in_window(Role::Consumer, i, m.received) / dur_s,
            rate_bytes_per_s: in_window(Role::Consumer, i, m.received) / dur_s * m.bytes as f64
                / m.received.max(1) as f64,
            target_rate_msgs_per_s: None,
            closed_loop: false,
            send_errors: 0,
            warmup_messages: s.warmup.received,
            latency_us: latency(&m.service),
            alt_latency_us: latency(&m.response),
            late_sends: 0,
            max_lag_ms: 0.0,
            unsent: 0,
            in_flight_wait_percent: None,
            duplicates: t.duplicates,
            reordered: t.reordered,
            redelivered: t.redelivered,
            e2e_clock_error_us: e2e_clock_error_ns(sc, input.agents, i).map(|ns| ns as f64 / 1000.0),
        });
        histograms.push(hist_record(&g.name, "consumer", "e2e", &m.service));
        histograms.push(hist_record(&g.name, "consumer", "e2e_response", &m.response));
    }

    // Agents.
    let mut agents = Vec::new();
    for a in input.agents {
        let mut row = AgentReport {
            id: a.hello.agent_id.clone(),
            address: a.address.clone(),
            status: a.status.clone(),
            hostname: a.hello.hostname.clone(),
            instance: a.hello.instance_id.clone(),
            clock_offset_us: a.clock_offset_ns as f64 / 1000.0,
            clock_error_us: a.clock_error_ns as f64 / 1000.0,
            clock_drift_us: a.clock_drift_ns as f64 / 1000.0,
            clock_updates: a.clock_updates,
            producers: a.producers,
            consumers: a.consumers,
            target_rate_msgs_per_s: a.target_rate_milli as f64 / 1000.0,
            sent: 0,
            acked: 0,
            send_errors: 0,
            received: 0,
            acked_measure: 0,
            received_measure: 0,
            publish_rate_msgs_per_s: 0.0,
            receive_rate_msgs_per_s: 0.0,
            cpu_percent: 0.0,
            max_lag_ms: 0.0,
            late_sends: 0,
            max_rss_mb: 0.0,
            start_offset_ms: None,
            error: a.error.clone(),
        };
        if let Some(f) = &a.final_report {
            for g in &f.groups {
                let Ok(s) = GroupPhases::from_proto(g) else {
                    continue;
                };
                let t = s.total();
                if g.role == proto::Role::Producer as i32 {
                    row.sent += t.sent;
                    row.acked += t.acked;
                    row.send_errors += t.send_errors;
                    row.acked_measure += s.measure.acked;
                    row.late_sends += t.late_sends;
                    row.max_lag_ms = row.max_lag_ms.max(t.max_lag_ns as f64 / 1e6);
                } else {
                    row.received += t.received;
                    row.received_measure += s.measure.received;
                }
            }
            row.publish_rate_msgs_per_s = row.acked_measure as f64 / dur_s;
            row.receive_rate_msgs_per_s = row.received_measure as f64 / dur_s;
            if f.wall_ns > 0 {
                row.cpu_percent = f.cpu_ns as f64 / f.wall_ns as f64 * 100.0;
            }
            row.max_rss_mb = f.max_rss_bytes as f64 / (1024.0 * 1024.0);
            if f.first_send_ns != 0 {
                row.start_offset_ms = Some((f.first_send_ns - input.start_ns) as f64 / 1e6);
            }
        } else {
            // Lost: what its interval reports said until then.
            let t = &a.interval_totals;
            row.sent = t.sent;
            row.acked = t.acked;
            row.send_errors = t.send_errors;
            row.received = t.received;
            row.acked_measure = t.acked_measure;
            row.received_measure = t.received_measure;
            row.late_sends = t.late_sends;
            row.max_lag_ms = t.max_lag_ns as f64 / 1e6;
            row.publish_rate_msgs_per_s = t.acked_measure as f64 / dur_s;
            row.receive_rate_msgs_per_s = t.received_measure as f64 / dur_s;
            if t.wall_ns > 0 {
                row.cpu_percent = t.cpu_ns as f64 / t.wall_ns as f64 * 100.0;
            }
        }
        agents.push(row);
    }
    let coverage = (!lost_agents.is_empty()).then(|| {
        for a in &lost_agents {
            notes.push(format!(
                "agent {} was lost ({}): its counts are those of its {} interval report(s) until then",
                a.address,
                a.error.as_deref().unwrap_or("no final report"),
                a.interval_totals.intervals
            ));
        }
        if !lost_producers.is_empty() {
            notes.push(format!(
                "{} producer(s) on lost agents never reported what was acknowledged: their messages \
                 ({excluded_received} received) are left out of the loss accounting, and producer targets \
                 count only the producers that reported",
                lost_producers.len()
            ));
        }
        let not_judged_names: Vec<String> =
            not_judged.iter().filter_map(|g| sc.consumers.get(*g)).map(|c| format!("{}/{}", c.topic, c.subscription)).collect();
        for n in &not_judged_names {
            notes.push(format!(
                "subscription {n} is not judged for loss: consumers on a lost agent took messages that were never reported"
            ));
        }
        let cov = Coverage {
            agents: input.agents.len() as u32,
            agents_lost: lost_agents.len() as u32,
            producers: input.agents.iter().map(|a| a.shard_producers.len() as u32).sum(),
            producers_reported: input
                .agents
                .iter()
                .filter(|a| a.final_report.is_some())
                .map(|a| a.shard_producers.len() as u32)
                .sum(),
            subscriptions: sc.consumers.len() as u32,
            subscriptions_judged: (sc.consumers.len() - not_judged_names.len()) as u32,
            not_judged: not_judged_names,
        };
        notes.push(format!(
            "coverage: {} of {} agent(s) lost; {} of {} producer(s) reported; {} of {} subscription(s) judged",
            cov.agents_lost, cov.agents, cov.producers_reported, cov.producers, cov.subscriptions_judged, cov.subscriptions
        ));
        cov
    });
    let nothing_judged = !input.agents.iter().any(|a| a.final_report.is_some());

    let intervals = interval_rows(sc, input.intervals, input.start_ns, &backlogs);
    let slo = judge(sc, &groups, &totals, &subscriptions);
    let verdict = if input.incomplete.is_some() {
        "incomplete"
    } else if nothing_judged {
        notes.insert(0, "nothing could be judged: no agent sent a final report".into());
        "incomplete"
    } else if slo.iter().all(|c| c.pass) {
        "pass"
    } else {
        "fail"
    };
    if let Some(why) = &input.incomplete {
        notes.insert(0, format!("the run could not complete: {why}"));
    }
    if input.drain_timed_out {
        notes.push(format!(
            "drain timed out after {:.1}s with messages still missing",
            sc.phases.drain_timeout.as_secs_f64()
        ));
    }
    for s in &subscriptions {
        if s.stalled {
            notes.push(format!(
                "subscription `{}` on `{}` stalled: it stopped receiving before the producers stopped, and {} acknowledged messages never arrived",
                s.subscription, s.topic, s.lost
            ));
        }
    }

    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run_id: input.run_id.into(),
        scenario: sc.name.clone(),
        scenario_file: input.scenario_file.into(),
        tool_version: common::VERSION.into(),
        started_at: input.started_at,
        verdict: verdict.into(),
        broker: BrokerInfo { kind: sc.broker.kind.as_str().into(), url: sc.broker.url.clone() },
        phases: PhasesInfo {
            warmup_s: sc.phases.warmup.as_secs_f64(),
            duration_s: sc.phases.duration.as_secs_f64(),
            cooldown_s: sc.phases.cooldown.as_secs_f64(),
            drain_s: input.drain_s,
            drain_timeout_s: sc.phases.drain_timeout.as_secs_f64(),
            drain_timed_out: input.drain_timed_out,
            report_interval_s: sc.report_interval.as_secs_f64(),
        },
        agents,
        totals,
        groups,
        subscriptions,
        slo,
        histograms,
        intervals,
        notes,
        ceiling: None,
        coordinator: None,
        coverage,
    }
}

fn hist_record(group: &str, role: &str, kind: &str, h: &Hist) -> HistogramRecord {
    HistogramRecord {
        group: group.into(),
        role: role.into(),
        kind: kind.into(),
        unit: "ns".into(),
        encoding: "hdr-v2-deflate-base64".into(),
        data: h.encode_base64(),
    }
}

/// Phase of an interval by its start (for the time series).
pub fn phase_name(sc: &Scenario, offset_ns: i64) -> &'static str {
    let w = sc.phases.warmup.as_nanos() as i64;
    let e = sc.phases.send_end().as_nanos() as i64;
    if offset_ns < w {
        "warmup"
    } else if offset_ns < e {
        "measure"
    } else {
        "drain"
    }
}

/// Each consumer group's backlog at the end of every interval, in order:
/// (seconds from the start, index, messages the topic's producers had
/// acknowledged minus the deliveries the group had taken).
fn group_backlogs(sc: &Scenario, iv: &Intervals, start_ns: i64) -> Vec<Vec<(f64, u64, u64)>> {
    let mut acked_by_topic: BTreeMap<&str, u64> = BTreeMap::new();
    let mut received = vec![0u64; sc.consumers.len()];
    let mut out = vec![Vec::new(); sc.consumers.len()];
    for (idx, m) in &iv.by_index {
        for (g, s) in &m.producers {
            if let Some(grp) = sc.producers.get(*g as usize) {
                *acked_by_topic.entry(grp.topic.as_str()).or_default() += s.total().acked;
            }
        }
        for (g, s) in &m.consumers {
            if let Some(r) = received.get_mut(*g as usize) {
                *r += s.total().received;
            }
        }
        let t_s = (m.end_ns - start_ns) as f64 / 1e9;
        for (g, c) in sc.consumers.iter().enumerate() {
            let acked = acked_by_topic.get(c.topic.as_str()).copied().unwrap_or(0);
            out[g].push((t_s, *idx, acked.saturating_sub(received[g])));
        }
    }
    out
}

/// How far off one end-to-end sample of consumer group `g` can be from
/// the clocks: the worst sum of two clock error bounds over the pairs of a
/// producer agent of its topic and a consumer agent of the group that are
/// different processes (one process has one clock). None: no such pair.
fn e2e_clock_error_ns(sc: &Scenario, agents: &[AgentOutcome], g: usize) -> Option<i64> {
    let topic = &sc.consumers.get(g)?.topic;
    // The worst error per process on each side, then the worst pair of
    // different processes among each side's two worst (linear in agents).
    let producing =
        worst_two(agents.iter().filter(|a| {
            a.shard_producers.iter().any(|p| sc.producers.get(p.group).is_some_and(|pg| pg.topic == *topic))
        }));
    let consuming = worst_two(agents.iter().filter(|a| a.shard_consumers.iter().any(|c| c.group == g)));
    producing.iter().flat_map(|p| consuming.iter().filter(move |c| c.1 != p.1).map(move |c| p.0 + c.0)).max()
}

/// The two processes with the worst clock error among `side` (each
/// process's worst agent), worst first.
fn worst_two<'a>(side: impl Iterator<Item = &'a AgentOutcome>) -> Vec<(i64, &'a str)> {
    let mut per: BTreeMap<&'a str, i64> = BTreeMap::new();
    for a in side {
        let e = per.entry(a.hello.instance_id.as_str()).or_insert(i64::MIN);
        *e = (*e).max(a.clock_error_ns);
    }
    let mut v: Vec<(i64, &'a str)> = per.into_iter().map(|(k, e)| (e, k)).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.truncate(2);
    v
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Producer,
    Consumer,
}

/// Acks (producer group) or deliveries (consumer group) of group `g` that
/// happened in `[from, to)`, from the interval counts; None without intervals.
fn window_count(iv: &Intervals, role: Role, g: u32, (from, to): (i64, i64)) -> Option<f64> {
    if iv.by_index.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for m in iv.by_index.values() {
        let stats = if role == Role::Producer { m.producers.get(&g) } else { m.consumers.get(&g) };
        let Some(s) = stats else { continue };
        let (a, b) = (m.start_ns.max(from), m.end_ns.min(to));
        if b <= a {
            continue;
        }
        let t = s.total();
        let n = if role == Role::Producer { t.acked } else { t.received };
        sum += n as f64 * (b - a) as f64 / (m.end_ns - m.start_ns).max(1) as f64;
    }
    Some(sum)
}

/// Peak, growth and drain of one backlog series (see [`BacklogReport`]).
fn backlog_summary(series: &[(f64, u64, u64)]) -> BacklogReport {
    let mut peak = (0usize, 0.0f64, 0u64);
    for (i, &(t, _, b)) in series.iter().enumerate() {
        if b > peak.2 {
            peak = (i, t, b);
        }
    }
    let (ip, t_max, max) = peak;
    let low = max / 20;
    let (t0, b0) = series[..ip].iter().rev().find(|x| x.2 <= low).map(|x| (x.0, x.2)).unwrap_or((0.0, 0));
    let rate = |db: u64, dt: f64| if dt > 0.0 { db as f64 / dt } else { 0.0 };
    let growth_msgs_per_s = rate(max - b0.min(max), t_max - t0);
    let after = series.get(ip + 1..).unwrap_or(&[]);
    let (drain_msgs_per_s, drained_after_s) = match after.iter().find(|x| x.2 <= low) {
        Some(&(t1, _, b1)) => (rate(max - b1.min(max), t1 - t_max), Some(t1 - t_max)),
        None if max == 0 => (0.0, Some(0.0)),
        None => match after.last() {
            Some(&(t1, _, b1)) => (rate(max.saturating_sub(b1), t1 - t_max), None),
            None => (0.0, None),
        },
    };
    BacklogReport { max, max_at_s: t_max, growth_msgs_per_s, drain_msgs_per_s, drained_after_s }
}

/// Producers' time held for room in flight, as a percent of `producers` ×
/// `secs` (the whole run's groups[] figure and each interval's row).
fn wait_percent(wait_ns: u64, producers: f64, secs: f64) -> f64 {
    wait_ns as f64 / (producers * secs * 1e9) * 100.0
}

fn interval_rows(sc: &Scenario, iv: &Intervals, start_ns: i64, backlogs: &[Vec<(f64, u64, u64)>]) -> Vec<IntervalRow> {
    let mut rows = Vec::new();
    for (idx, m) in &iv.by_index {
        debug_assert!(m.pending.is_empty(), "interval {idx} read before Intervals::settle_all");
        let secs = ((m.end_ns - m.start_ns) as f64 / 1e9).max(1e-9);
        let phase = phase_name(sc, m.start_ns - start_ns);
        let t_s = (m.end_ns - start_ns) as f64 / 1e9;
        for (g, s) in &m.producers {
            let Some(grp) = sc.producers.get(*g as usize) else {
                continue;
            };
            let t = s.total();
            rows.push(IntervalRow {
                index: *idx,
                t_s,
                phase: phase.into(),
                group: grp.name.clone(),
                role: "producer".into(),
                sent: t.sent,
                acked: t.acked,
                send_errors: t.send_errors,
                received: 0,
                backlog: 0,
                rate_msgs_per_s: t.acked as f64 / secs,
                p50_us: us(t.response.quantile_ns(0.5)),
                p99_us: us(t.response.quantile_ns(0.99)),
                p999_us: us(t.response.quantile_ns(0.999)),
                max_lag_ms: t.max_lag_ns as f64 / 1e6,
                agents_reporting: m.agents,
                in_flight_wait_percent: Some(wait_percent(t.window_wait_ns, f64::from(grp.count.max(1)), secs)),
            });
        }
        for (g, s) in &m.consumers {
            let Some(grp) = sc.consumers.get(*g as usize) else {
                continue;
            };
            let t = s.total();
            rows.push(IntervalRow {
                index: *idx,
                t_s,
                phase: phase.into(),
                group: grp.name.clone(),
                role: "consumer".into(),
                sent: 0,
                acked: 0,
                send_errors: 0,
                received: t.received,
                backlog: backlogs
                    .get(*g as usize)
                    .and_then(|v| v.binary_search_by_key(idx, |x| x.1).ok().map(|i| v[i].2))
                    .unwrap_or(0),
                rate_msgs_per_s: t.received as f64 / secs,
                p50_us: us(t.service.quantile_ns(0.5)),
                p99_us: us(t.service.quantile_ns(0.99)),
                p999_us: us(t.service.quantile_ns(0.999)),
                max_lag_ms: 0.0,
                agents_reporting: m.agents,
                in_flight_wait_percent: None,
            });
        }
    }
    rows
}

/// Checks every SLO of the scenario.
pub fn judge(sc: &Scenario, groups: &[GroupReport], totals: &Totals, subs: &[SubscriptionReport]) -> Vec<SloCheck> {
    let slo = &sc.slo;
    let mut out = Vec::new();
    type Check = (&'static str, Option<std::time::Duration>, fn(&Latency) -> f64, &'static str);
    let lat_checks: [Check; 8] = [
        ("p50_e2e", slo.p50_e2e, |l| l.p50, "consumer"),
        ("p90_e2e", slo.p90_e2e, |l| l.p90, "consumer"),
        ("p99_e2e", slo.p99_e2e, |l| l.p99, "consumer"),
        ("p999_e2e", slo.p999_e2e, |l| l.p999, "consumer"),
        ("max_e2e", slo.max_e2e, |l| l.max, "consumer"),
        ("p50_publish", slo.p50_publish, |l| l.p50, "producer"),
        ("p99_publish", slo.p99_publish, |l| l.p99, "producer"),
        ("p999_publish", slo.p999_publish, |l| l.p999, "producer"),
    ];
    for (name, limit, pick, role) in lat_checks {
        let Some(limit) = limit else { continue };
        let limit_us = limit.as_secs_f64() * 1e6;
        // A closed loop has no intended times: its publish latency is service time.
        for g in groups.iter().filter(|g| g.role == role && !g.closed_loop) {
            let actual = pick(&g.latency_us);
            let pass = g.latency_us.count > 0 && actual <= limit_us;
            out.push(SloCheck {
                name: format!("{name} {}", g.name),
                limit: fmt_us_slo(limit_us),
                actual: if g.latency_us.count == 0 { "no samples".into() } else { fmt_us_slo(actual) },
                pass,
            });
        }
    }
    if let Some(max) = slo.max_loss {
        out.push(SloCheck {
            name: "max_loss".into(),
            limit: max.to_string(),
            actual: totals.lost.to_string(),
            pass: totals.lost <= max,
        });
        let stalled: Vec<String> = subs.iter().filter(|s| s.stalled).map(|s| s.subscription.clone()).collect();
        if !stalled.is_empty() {
            out.push(SloCheck {
                name: "no_stalled_subscriptions".into(),
                limit: "0".into(),
                actual: stalled.join(","),
                pass: false,
            });
        }
    }
    if let Some(max) = slo.max_duplicates {
        out.push(SloCheck {
            name: "max_duplicates".into(),
            limit: max.to_string(),
            actual: totals.duplicated.to_string(),
            pass: totals.duplicated <= max,
        });
    }
    if let Some(max) = slo.max_send_errors {
        out.push(SloCheck {
            name: "max_send_errors".into(),
            limit: max.to_string(),
            actual: totals.send_errors.to_string(),
            pass: totals.send_errors <= max,
        });
    }
    if let Some(min) = slo.min_rate_ratio {
        for g in groups.iter().filter(|g| g.role == "producer" && !g.closed_loop) {
            let target = g.target_rate_msgs_per_s.unwrap_or(0.0);
            let ratio = if target > 0.0 { g.rate_msgs_per_s / target } else { 0.0 };
            out.push(SloCheck {
                name: format!("min_rate_ratio {}", g.name),
                limit: format!("{min:.3}"),
                actual: format!("{ratio:.3}"),
                pass: ratio >= min,
            });
        }
    }
    out
}
