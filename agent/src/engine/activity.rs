//! When one consumer received: spans of receipts per partition (so the
//! coordinator can tell when the receiving consumer of an exclusive or
//! failover subscription changed) and, for key_shared subscriptions, per
//! message key (so it can tell whether a key was on two consumers at once).
//!
//! A span is a run of receipts with no gap longer than [`GAP_NS`] between
//! two of them; a receipt after a longer gap opens a new span. Memory is
//! bounded: at most [`MAX_SPANS`] spans per partition, [`MAX_KEYS`] keys
//! and [`MAX_KEY_SPANS`] spans per key; what a cap leaves out is counted,
//! so the report can say the check was cut short.
//!
//! Imports no other engine file.

use std::collections::HashMap;

use common::proto;

/// A gap without receipts longer than this ends a span (1 s).
pub(super) const GAP_NS: i64 = 1_000_000_000;
/// Spans kept per partition of one consumer.
pub(super) const MAX_SPANS: usize = common::report::ACTIVITY_MAX_SPANS;
/// Distinct keys tracked per consumer.
pub(super) const MAX_KEYS: usize = common::report::ACTIVITY_MAX_KEYS;
/// Spans kept per key of one consumer.
pub(super) const MAX_KEY_SPANS: usize = common::report::ACTIVITY_MAX_KEY_SPANS;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    first: i64,
    last: i64,
    n: u64,
}

/// Spans of receipts, at most `max`; false from [`Spans::add`] once a
/// receipt would have needed one more. `total` counts every receipt, the
/// ones a cap left out of the spans too.
#[derive(Debug, Default)]
struct Spans {
    v: Vec<Span>,
    capped: bool,
    total: u64,
}

impl Spans {
    fn add(&mut self, now: i64, max: usize) -> bool {
        self.total += 1;
        if self.capped {
            return false;
        }
        let full = self.v.len() >= max;
        match self.v.last_mut() {
            Some(s) if now - s.last <= GAP_NS => {
                s.last = s.last.max(now);
                s.n += 1;
            }
            _ if full => {
                self.capped = true;
                return false;
            }
            _ => self.v.push(Span { first: now, last: now, n: 1 }),
        }
        true
    }
}

/// One consumer's activity over the run (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Per partition: index 0 not partitioned, i + 1 partition i (a
    /// vector: one index per delivery on the hot path, no hashing).
    partitions: Vec<Spans>,
    /// Per key; only when the subscription is key_shared.
    keys: Option<HashMap<u64, Spans>>,
    /// Receipts of keys left out by a cap.
    keys_untracked: u64,
}

impl Activity {
    /// `track_keys`: a key_shared subscription (only there do keys matter).
    pub fn new(track_keys: bool) -> Activity {
        Activity { keys: track_keys.then(HashMap::new), ..Activity::default() }
    }

    /// One receipt at `now` (coordinator time, ns).
    #[inline]
    pub fn record(&mut self, now: i64, partition: Option<u32>, key: Option<u64>) {
        let i = partition.map_or(0, |p| p as usize + 1);
        if self.partitions.len() <= i {
            self.partitions.resize_with(i + 1, Spans::default);
        }
        self.partitions[i].add(now, MAX_SPANS);
        let (Some(keys), Some(k)) = (self.keys.as_mut(), key) else { return };
        let full = keys.len() >= MAX_KEYS;
        let tracked = match keys.get_mut(&k) {
            Some(s) => s.add(now, MAX_KEY_SPANS),
            None if full => false,
            None => keys.entry(k).or_default().add(now, MAX_KEY_SPANS),
        };
        if !tracked {
            self.keys_untracked += 1;
        }
    }

    /// Receipts per partition of a partitioned topic (exact, caps or not).
    pub fn partition_deliveries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.partitions.iter().enumerate().skip(1).filter(|(_, s)| s.total > 0).map(|(i, s)| (i as u32 - 1, s.total))
    }

    /// Fills the activity fields of `out`.
    pub fn fill(self, out: &mut proto::ConsumerReceipts) {
        let span = |s: &Span| proto::ActivitySpan { first_ns: s.first, last_ns: s.last, deliveries: s.n };
        out.spans_capped = self.partitions.iter().any(|s| s.capped);
        out.partitions = self
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.v.is_empty())
            .map(|(i, s)| proto::PartitionSpans { partition: i as i64 - 1, spans: s.v.iter().map(span).collect() })
            .collect();
        out.keys_tracked = self.keys.is_some();
        out.keys_untracked = self.keys_untracked;
        let mut keys: Vec<_> = self.keys.unwrap_or_default().into_iter().collect();
        keys.sort_by_key(|(k, _)| *k);
        out.keys = keys
            .into_iter()
            .map(|(key, s)| proto::KeySpans { key, bounds: s.v.iter().flat_map(|s| [s.first, s.last]).collect() })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn filled(a: Activity) -> proto::ConsumerReceipts {
        let mut out = proto::ConsumerReceipts::default();
        a.fill(&mut out);
        out
    }

    #[test]
    fn a_gap_longer_than_a_second_opens_a_new_span() {
        let mut a = Activity::new(false);
        for t in [0, 500 * MS, 1_400 * MS, 2_500 * MS, 2_600 * MS] {
            a.record(t, None, Some(7));
        }
        a.record(100 * MS, Some(3), None);
        let out = filled(a);
        assert!(!out.keys_tracked && out.keys.is_empty(), "keys only for key_shared");
        assert_eq!(out.partitions.len(), 2);
        assert_eq!(out.partitions[0].partition, -1);
        let spans: Vec<_> = out.partitions[0].spans.iter().map(|s| (s.first_ns, s.last_ns, s.deliveries)).collect();
        assert_eq!(spans, vec![(0, 1_400 * MS, 3), (2_500 * MS, 2_600 * MS, 2)]);
        assert_eq!(out.partitions[1].partition, 3);
        assert!(!out.spans_capped);
    }

    #[test]
    fn keys_are_tracked_per_key_up_to_the_caps() {
        let mut a = Activity::new(true);
        a.record(0, None, Some(1));
        a.record(10 * MS, None, Some(2));
        a.record(3_000 * MS, None, Some(1));
        a.record(3_000 * MS, None, None);
        let out = filled(a);
        assert!(out.keys_tracked);
        assert_eq!(out.keys.len(), 2);
        assert_eq!(out.keys[0].key, 1);
        assert_eq!(out.keys[0].bounds, vec![0, 0, 3_000 * MS, 3_000 * MS]);
        assert_eq!(out.keys[1].bounds, vec![10 * MS, 10 * MS]);
        assert_eq!(out.keys_untracked, 0);

        let mut a = Activity::new(true);
        for k in 0..MAX_KEYS as u64 + 5 {
            a.record(0, None, Some(k));
        }
        // One key received every 2 s: a span each, up to the cap.
        for i in 0..MAX_KEY_SPANS as i64 + 3 {
            a.record(2_000 * MS * (i + 1), None, Some(0));
        }
        let out = filled(a);
        assert_eq!(out.keys.len(), MAX_KEYS);
        assert_eq!(out.keys_untracked, 5 + 4, "5 keys over the key cap, 4 receipts over key 0's span cap");
        assert_eq!(out.keys[0].bounds.len(), 2 * MAX_KEY_SPANS);
    }

    #[test]
    fn spans_past_the_cap_are_left_out_and_said() {
        let mut a = Activity::new(false);
        for i in 0..MAX_SPANS as i64 + 1 {
            a.record(i * 2_000 * MS, None, None);
            a.record(i * 2_000 * MS, Some(3), None);
        }
        // The per-partition count stays exact past the cap.
        assert_eq!(a.partition_deliveries().collect::<Vec<_>>(), [(3, MAX_SPANS as u64 + 1)]);
        let out = filled(a);
        assert!(out.spans_capped);
        assert_eq!(out.partitions[0].spans.len(), MAX_SPANS);
    }
}
