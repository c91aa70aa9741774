//! Counters and histograms of one group for one phase, as recorded by a
//! task, merged by the agent per interval and by the coordinator across
//! agents. Conversion to and from the wire lives here so both sides agree.

use crate::hist::{Encoded, Hist, HistError};
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
    }

    pub fn is_empty(&self) -> bool {
        self.sent == 0
            && self.acked == 0
            && self.send_errors == 0
            && self.received == 0
            && self.receive_errors == 0
            && self.response.is_empty()
            && self.service.is_empty()
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
        }
    }

    /// Adds a wire PhaseStats without building it first: its histograms
    /// merge straight into these (only their non-zero buckets are touched).
    /// On a bad histogram nothing is added.
    pub fn merge_proto(&mut self, p: &proto::PhaseStats) -> Result<(), HistError> {
        let response = Encoded::parse(&p.response_hist)?;
        let service = Encoded::parse(&p.service_hist)?;
        self.merge(&PhaseStats::counters_of(p));
        self.response.apply(response);
        self.service.apply(service);
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
        }
    }

    pub fn from_proto(p: &proto::PhaseStats) -> Result<PhaseStats, HistError> {
        Ok(PhaseStats {
            response: Hist::decode(&p.response_hist)?,
            service: Hist::decode(&p.service_hist)?,
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

    pub fn from_proto(g: &proto::GroupStats) -> Result<GroupPhases, HistError> {
        Ok(GroupPhases {
            warmup: g.warmup.as_ref().map(PhaseStats::from_proto).transpose()?.unwrap_or_default(),
            measure: g.measure.as_ref().map(PhaseStats::from_proto).transpose()?.unwrap_or_default(),
        })
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
        let back = PhaseStats::from_proto(&a.to_proto()).expect("decode");
        assert_eq!(back, a);
        let mut m = a.clone();
        m.merge(&back);
        assert_eq!(m.sent, 6);
        assert_eq!(m.max_lag_ns, 9);
        assert_eq!(m.window_wait_ns, 14, "waits add up like the other counters");
        assert_eq!(m.response.len(), 2);
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
    }
}
