//! How a consumer classifies a delivery: new (in order or not), a
//! redelivery the broker or a reconnect explains, or a duplicate.
//!
//! Imports no other engine file.

use common::rangeset::RangeSet;

/// What one consumer received of one producer.
#[derive(Default, Clone)]
pub(super) struct Seen {
    /// Every sequence number received.
    pub set: RangeSet,
    /// The highest received so far.
    max: Option<u64>,
}

/// What one delivery of a producer's message was to a consumer.
#[derive(Debug, PartialEq)]
pub(super) enum Receipt {
    /// First time; `reordered` when a later message came before it.
    New { reordered: bool },
    /// Again, and the broker says it redelivers, or the consumer had it
    /// before it last subscribed again (its ack may never have landed).
    Redelivered,
    /// Again, with nothing to explain it.
    Duplicate,
}

impl Seen {
    /// Records `seq`; `before` is what this consumer had received when it
    /// last subscribed again.
    pub fn receive(&mut self, seq: u64, before: Option<&RangeSet>, flagged: bool) -> Receipt {
        if self.set.insert(seq) {
            let reordered = self.max.is_some_and(|m| seq < m);
            if !reordered {
                self.max = Some(seq);
            }
            Receipt::New { reordered }
        } else if flagged || before.is_some_and(|b| b.contains(seq)) {
            Receipt::Redelivered
        } else {
            Receipt::Duplicate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_after_subscribing_again_are_redeliveries_others_duplicates() {
        let mut s = Seen::default();
        for seq in 0..3 {
            assert_eq!(s.receive(seq, None, false), Receipt::New { reordered: false });
        }
        assert_eq!(s.receive(1, None, false), Receipt::Duplicate);
        assert_eq!(s.receive(1, None, true), Receipt::Redelivered, "the broker says so");
        // The consumer subscribed again holding 0..3: the broker hands 1 and
        // 2 out again (their acks were lost), then 3 is new; 3 again is not
        // explained by the reconnect.
        let before = s.set.clone();
        assert_eq!(s.receive(1, Some(&before), false), Receipt::Redelivered);
        assert_eq!(s.receive(2, Some(&before), false), Receipt::Redelivered);
        assert_eq!(s.receive(5, Some(&before), false), Receipt::New { reordered: false });
        assert_eq!(s.receive(3, Some(&before), false), Receipt::New { reordered: true });
        assert_eq!(s.receive(3, Some(&before), false), Receipt::Duplicate);
    }
}
