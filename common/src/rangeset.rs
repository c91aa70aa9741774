//! Sets of sequence numbers as sorted, disjoint, half-open ranges. In-order
//! inserts (the common case) touch only the last range; out-of-order ones
//! binary-search. Used for what producers had acknowledged and what each
//! subscription received, and merged across consumers and agents.

use crate::proto;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// Sorted, disjoint, non-adjacent `[start, end)` ranges.
    ranges: Vec<(u64, u64)>,
    len: u64,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// Number of values in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Largest value in the set.
    pub fn max(&self) -> Option<u64> {
        self.ranges.last().map(|r| r.1 - 1)
    }

    pub fn contains(&self, v: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= v);
        self.ranges.get(i).is_some_and(|r| r.0 <= v)
    }

    /// Inserts `v`; false when it was already present.
    pub fn insert(&mut self, v: u64) -> bool {
        // Fast path: at or just past the end of the last range.
        if let Some(last) = self.ranges.last_mut() {
            if v == last.1 && v != u64::MAX {
                last.1 += 1;
                self.len += 1;
                return true;
            }
            if v > last.1 {
                self.ranges.push((v, v.saturating_add(1)));
                self.len += 1;
                return true;
            }
        } else {
            self.ranges.push((v, v.saturating_add(1)));
            self.len += 1;
            return true;
        }
        // First range whose end is beyond v.
        let i = self.ranges.partition_point(|r| r.1 <= v);
        if i < self.ranges.len() && self.ranges[i].0 <= v {
            return false;
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1 == v;
        let joins_next = i < self.ranges.len() && self.ranges[i].0 == v + 1;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = v + 1,
            (false, true) => self.ranges[i].0 = v,
            (false, false) => self.ranges.insert(i, (v, v + 1)),
        }
        self.len += 1;
        true
    }

    /// Adds every value of `other`; returns how many were already present.
    pub fn union_with(&mut self, other: &RangeSet) -> u64 {
        if other.is_empty() {
            return 0;
        }
        if self.is_empty() {
            *self = other.clone();
            return 0;
        }
        let overlap = self.intersection_len(other);
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len() + other.ranges.len());
        let (mut a, mut b) = (self.ranges.iter().peekable(), other.ranges.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if x.0 <= y.0 {
                        a.next()
                    } else {
                        b.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            let &(s, e) = next.unwrap_or(&(0, 0));
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.len = merged.iter().map(|r| r.1 - r.0).sum();
        self.ranges = merged;
        overlap
    }

    /// Number of values in both sets.
    pub fn intersection_len(&self, other: &RangeSet) -> u64 {
        let (mut i, mut j, mut n) = (0, 0, 0u64);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let lo = a.0.max(b.0);
            let hi = a.1.min(b.1);
            if lo < hi {
                n += hi - lo;
            }
            if a.1 <= b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        n
    }

    /// Number of values in `self` that are not in `other`.
    pub fn difference_len(&self, other: &RangeSet) -> u64 {
        self.len - self.intersection_len(other)
    }

    /// The values of `self` missing from `other`, as ranges (first `limit`).
    pub fn missing_ranges(&self, other: &RangeSet, limit: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for &(s, e) in &self.ranges {
            let mut cur = s;
            let mut j = other.ranges.partition_point(|r| r.1 <= s);
            while cur < e && out.len() < limit {
                match other.ranges.get(j) {
                    Some(&(os, oe)) if os < e => {
                        if os > cur {
                            out.push((cur, os));
                        }
                        cur = cur.max(oe);
                        j += 1;
                    }
                    _ => {
                        out.push((cur, e));
                        cur = e;
                    }
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        out
    }

    pub fn to_proto(&self) -> proto::RangeSet {
        proto::RangeSet {
            starts: self.ranges.iter().map(|r| r.0).collect(),
            ends: self.ranges.iter().map(|r| r.1).collect(),
        }
    }

    /// Rebuilds a set from the wire, normalising anything unsorted,
    /// overlapping or empty that a faulty peer might send.
    pub fn from_proto(p: &proto::RangeSet) -> RangeSet {
        let mut pairs: Vec<(u64, u64)> =
            p.starts.iter().zip(&p.ends).filter(|(s, e)| s < e).map(|(s, e)| (*s, *e)).collect();
        let sorted = pairs.windows(2).all(|w| w[0].1 < w[1].0);
        if sorted {
            let len = pairs.iter().map(|r| r.1 - r.0).sum();
            return RangeSet { ranges: pairs, len };
        }
        pairs.sort_unstable();
        let mut out = RangeSet::new();
        for (s, e) in pairs {
            out.union_with(&RangeSet { ranges: vec![(s, e)], len: e - s });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn model_check(set: &RangeSet, model: &BTreeSet<u64>) {
        assert_eq!(set.len(), model.len() as u64);
        let flat: Vec<u64> = set.ranges().iter().flat_map(|r| r.0..r.1).collect();
        let m: Vec<u64> = model.iter().copied().collect();
        assert_eq!(flat, m);
        for w in set.ranges().windows(2) {
            assert!(w[0].1 < w[1].0, "ranges must be disjoint and non-adjacent");
        }
    }

    proptest! {
        #[test]
        fn insert_matches_model(vals in proptest::collection::vec(0u64..200, 0..400)) {
            let mut s = RangeSet::new();
            let mut m = BTreeSet::new();
            for v in vals {
                prop_assert_eq!(s.insert(v), m.insert(v));
            }
            model_check(&s, &m);
            for v in 0..200 {
                prop_assert_eq!(s.contains(v), m.contains(&v));
            }
        }

        #[test]
        fn union_and_difference(a in proptest::collection::vec(0u64..300, 0..300), b in proptest::collection::vec(0u64..300, 0..300)) {
            let (mut sa, mut sb) = (RangeSet::new(), RangeSet::new());
            let (ma, mb): (BTreeSet<u64>, BTreeSet<u64>) = (a.iter().copied().collect(), b.iter().copied().collect());
            for v in &a { sa.insert(*v); }
            for v in &b { sb.insert(*v); }
            prop_assert_eq!(sa.intersection_len(&sb), ma.intersection(&mb).count() as u64);
            prop_assert_eq!(sa.difference_len(&sb), ma.difference(&mb).count() as u64);
            let missing: u64 = sa.missing_ranges(&sb, usize::MAX).iter().map(|r| r.1 - r.0).sum();
            prop_assert_eq!(missing, ma.difference(&mb).count() as u64);
            let mut u = sa.clone();
            let overlap = u.union_with(&sb);
            prop_assert_eq!(overlap, ma.intersection(&mb).count() as u64);
            let mu: BTreeSet<u64> = ma.union(&mb).copied().collect();
            model_check(&u, &mu);
            prop_assert_eq!(RangeSet::from_proto(&u.to_proto()), u);
        }

        #[test]
        fn from_proto_normalises_garbage(starts in proptest::collection::vec(0u64..100, 0..20), ends in proptest::collection::vec(0u64..100, 0..20)) {
            let s = RangeSet::from_proto(&proto::RangeSet { starts: starts.clone(), ends: ends.clone() });
            let model: BTreeSet<u64> = starts.iter().zip(&ends).flat_map(|(a, b)| *a..*b).collect();
            model_check(&s, &model);
        }
    }

    #[test]
    fn in_order_is_one_range() {
        let mut s = RangeSet::new();
        for v in 0..100_000 {
            assert!(s.insert(v));
        }
        assert_eq!(s.ranges().len(), 1);
        assert!(!s.insert(500));
        assert_eq!(s.max(), Some(99_999));
    }
}
