//! Counters and histograms of one group for one phase, as recorded by a
//! task, merged by the agent per interval and by the coordinator across
//! agents. Conversion to and from the wire lives here so both sides agree.

use std::collections::BTreeMap;

use crate::hist::{Encoded, Hist, HistError, HistSum};
use crate::proto;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseStats {
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub received: u64,
    pub bytes: u64,
    pub late_sends: u64,
    pub max_lag_ns: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub redelivered: u64,
    pub receive_errors: u64,
    /// Producers: scheduled sends that had not gone out when sending ended.
    pub unsent: u64,
    /// Producers: time (ns, summed over producers) spent due to send but
    /// waiting for room in flight (`max_in_flight` sends awaiting acks) or
    /// for the client to take the send (backpressure).
    pub window_wait_ns: u64,
    /// Producers: ack - intended. Consumers: receive - intended.
    pub response: Hist,
    /// Producers: ack - actual send. Consumers: receive - actual send (e2e).
    pub service: Hist,
    /// Consumers: the ack's completion - the call to acknowledge (ack
    /// latency), where the client reports completion; empty otherwise.
    pub ack: Hist,
    /// Errors by kind (`send: timeout`, `ack: disconnected`, ...: see
    /// [`crate::errors::kind`]); they add up to `send_errors` +
    /// `receive_errors`.
    pub errors: BTreeMap<String, u64>,
}

impl PhaseStats {
    pub fn merge(&mut self, o: &PhaseStats) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.send_errors += o.send_errors;
        self.received += o.received;
        self.bytes += o.bytes;
        self.late_sends += o.late_sends;
        self.max_lag_ns = self.max_lag_ns.max(o.max_lag_ns);
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.redelivered += o.redelivered;
        self.receive_errors += o.receive_errors;
        self.unsent += o.unsent;
        self.window_wait_ns += o.window_wait_ns;
        self.response.add(&o.response);
        self.service.add(&o.service);
        self.ack.add(&o.ack);
        for (k, n) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
    }

    /// One error of `kind` (the caller counts it in `send_errors` or
    /// `receive_errors` too).
    pub fn error_of_kind(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.sent == 0
            && self.acked == 0
            && self.send_errors == 0
            && self.received == 0
            && self.receive_errors == 0
            && self.response.is_empty()
            && self.service.is_empty()
            && self.ack.is_empty()
    }

    pub fn to_proto(&self) -> proto::PhaseStats {
        proto::PhaseStats {
            sent: self.sent,
            acked: self.acked,
            send_errors: self.send_errors,
            received: self.received,
            bytes: self.bytes,
            late_sends: self.late_sends,
            max_lag_ns: self.max_lag_ns,
            duplicates: self.duplicates,
            reordered: self.reordered,
            redelivered: self.redelivered,
            receive_errors: self.receive_errors,
            unsent: self.unsent,
            window_wait_ns: self.window_wait_ns,
            response_hist: self.response.encode(),
            service_hist: self.service.encode(),
            ack_hist: self.ack.encode(),
            error_kinds: self.errors.iter().map(|(k, n)| (k.clone(), *n)).collect(),
        }
    }

    /// Adds a wire PhaseStats without building it first: its histograms
    /// merge straight into these (only their non-zero buckets are touched).
    /// On a bad histogram nothing is added.
    pub fn merge_proto(&mut self, p: &proto::PhaseStats) -> Result<(), HistError> {
        let [response, service, ack] = parse_hists(p)?;
        self.merge(&PhaseStats::counters_of(p));
        self.response.apply(response);
        self.service.apply(service);
        self.ack.apply(ack);
        Ok(())
    }

    /// The counters of a wire PhaseStats, histograms left empty.
    pub fn counters_of(p: &proto::PhaseStats) -> PhaseStats {
        PhaseStats {
            sent: p.sent,
            acked: p.acked,
            send_errors: p.send_errors,
            received: p.received,
            bytes: p.bytes,
            late_sends: p.late_sends,
            max_lag_ns: p.max_lag_ns,
            duplicates: p.duplicates,
            reordered: p.reordered,
            redelivered: p.redelivered,
            receive_errors: p.receive_errors,
            unsent: p.unsent,
            window_wait_ns: p.window_wait_ns,
            response: Hist::new(),
            service: Hist::new(),
            ack: Hist::new(),
            errors: p.error_kinds.iter().map(|(k, n)| (k.clone(), *n)).collect(),
        }
    }

    pub fn from_proto(p: &proto::PhaseStats) -> Result<PhaseStats, HistError> {
        Ok(PhaseStats {
            response: Hist::decode(&p.response_hist)?,
            service: Hist::decode(&p.service_hist)?,
            ack: Hist::decode(&p.ack_hist)?,
            ..PhaseStats::counters_of(p)
        })
    }
}

/// Warmup and measurement stats of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupPhases {
    pub warmup: PhaseStats,
    pub measure: PhaseStats,
}

impl GroupPhases {
    pub fn merge(&mut self, o: &GroupPhases) {
        self.warmup.merge(&o.warmup);
        self.measure.merge(&o.measure);
    }

    /// Both phases together (whole-run counters).
    pub fn total(&self) -> PhaseStats {
        let mut t = self.warmup.clone();
        t.merge(&self.measure);
        t
    }

    pub fn to_proto(&self, group: u32, role: proto::Role) -> proto::GroupStats {
        proto::GroupStats {
            group,
            role: role as i32,
            warmup: Some(self.warmup.to_proto()),
            measure: Some(self.measure.to_proto()),
        }
    }

    /// Adds a wire GroupStats (see `PhaseStats::merge_proto`); on a bad
    /// histogram in one phase, that phase is left out.
    pub fn merge_proto(&mut self, g: &proto::GroupStats) -> Result<(), HistError> {
        let w = g.warmup.as_ref().map(|p| self.warmup.merge_proto(p)).unwrap_or(Ok(()));
        let m = g.measure.as_ref().map(|p| self.measure.merge_proto(p)).unwrap_or(Ok(()));
        w.and(m)
    }

    /// Adds a wire GroupStats with its histograms summed into `sums`, not
    /// yet into these (many agents' intervals merge at the cost of one
    /// addition per non-zero bucket; [`GroupSums::settle_into`] makes them
    /// readable). On a bad histogram in one phase, that phase is left out.
    pub fn merge_proto_deferred(&mut self, g: &proto::GroupStats, sums: &mut GroupSums) -> Result<(), HistError> {
        self.merge_read_deferred(g, ReadGroup::read(g), sums)
    }

    /// [`GroupPhases::merge_proto_deferred`] with the histograms already
    /// read (`read` is `ReadGroup::read(g)`, done on another thread): what
    /// is left is one addition per non-zero bucket.
    pub fn merge_read_deferred(
        &mut self,
        g: &proto::GroupStats,
        read: ReadGroup,
        sums: &mut GroupSums,
    ) -> Result<(), HistError> {
        let add = |sums: &mut PhaseSums, stats: &mut PhaseStats, p: &Option<proto::PhaseStats>, h| match (p, h) {
            (Some(p), Some(h)) => sums.add(stats, p, h),
            _ => Ok(()),
        };
        let w = add(&mut sums.warmup, &mut self.warmup, &g.warmup, read.warmup);
        let m = add(&mut sums.measure, &mut self.measure, &g.measure, read.measure);
        w.and(m)
    }

    pub fn from_proto(g: &proto::GroupStats) -> Result<GroupPhases, HistError> {
        Ok(GroupPhases {
            warmup: g.warmup.as_ref().map(PhaseStats::from_proto).transpose()?.unwrap_or_default(),
            measure: g.measure.as_ref().map(PhaseStats::from_proto).transpose()?.unwrap_or_default(),
        })
    }
}

/// The histograms of a wire PhaseStats (response, service, ack), read and
/// checked: an error comes before anything is added anywhere. An ack
/// histogram absent (older agents, drivers that do not time acks) is empty.
type Parsed = [Encoded; 3];

fn parse_hists(p: &proto::PhaseStats) -> Result<Parsed, HistError> {
    Ok([Encoded::parse(&p.response_hist)?, Encoded::parse(&p.service_hist)?, Encoded::parse(&p.ack_hist)?])
}

/// A wire GroupStats' histograms read and checked (inflated, decoded into
/// non-zero counts) ahead of the merge, on whichever thread received them,
/// so the one thread that merges every agent only adds.
pub struct ReadGroup {
    warmup: Option<Result<Parsed, HistError>>,
    measure: Option<Result<Parsed, HistError>>,
}

impl ReadGroup {
    pub fn read(g: &proto::GroupStats) -> ReadGroup {
        ReadGroup { warmup: g.warmup.as_ref().map(parse_hists), measure: g.measure.as_ref().map(parse_hists) }
    }
}

/// A phase's histograms summed from the wire, not yet in its [`PhaseStats`].
#[derive(Debug, Clone, Default)]
pub struct PhaseSums {
    response: HistSum,
    service: HistSum,
    ack: HistSum,
}

impl PhaseSums {
    /// Counters into `stats` now, histograms into these sums; on a bad
    /// histogram nothing is added.
    fn add(
        &mut self,
        stats: &mut PhaseStats,
        p: &proto::PhaseStats,
        read: Result<Parsed, HistError>,
    ) -> Result<(), HistError> {
        let [response, service, ack] = read?;
        stats.merge(&PhaseStats::counters_of(p));
        self.response.add(response);
        self.service.add(service);
        self.ack.add(ack);
        Ok(())
    }

    fn settle_into(&mut self, s: &mut PhaseStats) {
        self.response.settle_into(&mut s.response);
        self.service.settle_into(&mut s.service);
        self.ack.settle_into(&mut s.ack);
    }

    fn is_empty(&self) -> bool {
        self.response.is_empty() && self.service.is_empty() && self.ack.is_empty()
    }
}

/// A group's histograms summed from the wire (see
/// [`GroupPhases::merge_proto_deferred`]).
#[derive(Debug, Clone, Default)]
pub struct GroupSums {
    warmup: PhaseSums,
    measure: PhaseSums,
}

impl GroupSums {
    /// Adds what was summed into `g` and empties these sums.
    pub fn settle_into(&mut self, g: &mut GroupPhases) {
        self.warmup.settle_into(&mut g.warmup);
        self.measure.settle_into(&mut g.measure);
    }

    pub fn is_empty(&self) -> bool {
        self.warmup.is_empty() && self.measure.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_roundtrip_and_merge() {
        let mut a = PhaseStats {
            sent: 3,
            acked: 2,
            send_errors: 1,
            bytes: 300,
            max_lag_ns: 9,
            window_wait_ns: 7,
            ..Default::default()
        };
        a.response.record_ns(5_000);
        a.service.record_ns(4_000);
        a.ack.record_ns(700);
        a.error_of_kind("send: timeout".into());
        let back = PhaseStats::from_proto(&a.to_proto()).expect("decode");
        assert_eq!(back, a);
        let mut m = a.clone();
        m.merge(&back);
        assert_eq!(m.sent, 6);
        assert_eq!(m.errors.get("send: timeout"), Some(&2), "kinds add up");
        assert_eq!(m.max_lag_ns, 9);
        assert_eq!(m.window_wait_ns, 14, "waits add up like the other counters");
        assert_eq!(m.response.len(), 2);
        assert_eq!(m.ack.len(), 2, "ack latencies travel and merge like the others");
        let g = GroupPhases { warmup: a.clone(), measure: a };
        let gp = GroupPhases::from_proto(&g.to_proto(1, proto::Role::Producer)).expect("decode");
        assert_eq!(gp.total().sent, 6);
    }

    #[test]
    fn merge_proto_equals_decode_then_merge() {
        let mut a = PhaseStats {
            sent: 3,
            acked: 2,
            send_errors: 1,
            bytes: 300,
            max_lag_ns: 9,
            unsent: 4,
            window_wait_ns: 1_500_000,
            ..Default::default()
        };
        let mut b = PhaseStats {
            received: 7,
            duplicates: 1,
            reordered: 2,
            redelivered: 3,
            receive_errors: 1,
            ..Default::default()
        };
        for v in [5_000, 70_000, 9_000_000, 123_456_789] {
            a.response.record_ns(v);
            a.service.record_ns(v / 3);
            b.response.record_ns(v * 2);
            b.ack.record_ns(v / 7);
        }
        let mut via_decode = a.clone();
        via_decode.merge(&PhaseStats::from_proto(&b.to_proto()).expect("decode"));
        let mut direct = a.clone();
        direct.merge_proto(&b.to_proto()).expect("merge");
        assert_eq!(direct, via_decode);
        // A bad histogram: nothing is added.
        let mut bad = b.to_proto();
        bad.service_hist = vec![1, 2, 3];
        let before = direct.clone();
        assert!(direct.merge_proto(&bad).is_err());
        assert_eq!(direct, before);
        // A bad ack histogram too (the others good): nothing is added.
        let mut bad = b.to_proto();
        bad.ack_hist = vec![7; 9];
        assert!(direct.merge_proto(&bad).is_err());
        assert_eq!(direct, before);
    }

    #[test]
    fn deferred_merge_equals_direct_merge_once_settled() {
        let phase = |k: i64| {
            let mut p = PhaseStats { sent: 10 + k as u64, acked: 9, received: 8, duplicates: 1, ..Default::default() };
            for v in [5_000, 70_000 * k, 9_000_000, 123_456_789 / k] {
                p.response.record_ns(v);
                p.service.record_ns(v / 3);
                p.ack.record_ns(v / 5);
            }
            p
        };
        let wire: Vec<proto::GroupStats> = (1..=5)
            .map(|k| GroupPhases { warmup: phase(k), measure: phase(k + 7) }.to_proto(0, proto::Role::Consumer))
            .collect();
        let mut direct = GroupPhases::default();
        let mut deferred = GroupPhases::default();
        let mut sums = GroupSums::default();
        for g in &wire {
            direct.merge_proto(g).expect("merge");
            deferred.merge_proto_deferred(g, &mut sums).expect("deferred");
        }
        // Counters are in at once; the histograms once settled.
        assert_eq!(deferred.measure.sent, direct.measure.sent);
        assert!(deferred.measure.response.is_empty() && !sums.is_empty());
        sums.settle_into(&mut deferred);
        assert!(sums.is_empty());
        assert_eq!(deferred, direct);
        // A bad histogram in one phase leaves that phase out, counters too.
        let mut bad = wire[0].clone();
        bad.measure.as_mut().expect("measure").response_hist = vec![9; 12];
        let before = deferred.clone();
        assert!(deferred.merge_proto_deferred(&bad, &mut sums).is_err());
        sums.settle_into(&mut deferred);
        assert_eq!(deferred.measure, before.measure);
        assert_eq!(deferred.warmup.sent, before.warmup.sent + wire[0].warmup.as_ref().expect("warmup").sent);
        // A good response and a bad service histogram: the response sum is taken back.
        let mut bad = wire[1].clone();
        bad.measure.as_mut().expect("measure").service_hist = vec![9; 12];
        let before = deferred.clone();
        assert!(deferred.merge_proto_deferred(&bad, &mut sums).is_err());
        sums.settle_into(&mut deferred);
        assert_eq!(deferred.measure, before.measure);
    }
}
