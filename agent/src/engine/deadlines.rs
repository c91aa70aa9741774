//! Send timeouts without a timer per send: [`Deadlines`] holds when each
//! outstanding send of one producer times out, [`DeadlineTimer`] is the one
//! timer armed at the oldest.
//!
//! Imports no other engine file.

use std::time::Duration;

use common::clock::TimeBase;

/// Send timeouts without a timer per send. Every send of a producer has the
/// same timeout, so deadlines rise with the sequence number: the oldest
/// outstanding send holds the earliest one.
pub(super) struct Deadlines {
    timeout_ns: i64,
    /// Sequence number of `sent[0]`.
    base: u64,
    /// Send time per sequence number from `base`; `SETTLED` once its ack is in.
    sent: std::collections::VecDeque<i64>,
    /// Timed out (counted as failed) and still in the in-flight set.
    expired: std::collections::HashSet<u64>,
}

const SETTLED: i64 = i64::MIN;

impl Deadlines {
    pub fn new(timeout: Duration) -> Deadlines {
        Deadlines {
            timeout_ns: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            base: 0,
            sent: Default::default(),
            expired: Default::default(),
        }
    }

    /// A send now awaiting its ack (`seq` rises across calls).
    pub fn push(&mut self, seq: u64, sent_ns: i64) {
        if self.sent.is_empty() {
            self.base = seq;
        }
        // Sends settled at once in between never entered: fill their places.
        while self.base + (self.sent.len() as u64) < seq {
            self.sent.push_back(SETTLED);
        }
        self.sent.push_back(sent_ns);
    }

    /// An ack came in; false when that send had already timed out.
    pub fn settle(&mut self, seq: u64) -> bool {
        if self.expired.remove(&seq) {
            return false;
        }
        if let Some(idx) = seq.checked_sub(self.base) {
            if let Some(s) = self.sent.get_mut(idx as usize) {
                *s = SETTLED;
            }
        }
        self.trim();
        true
    }

    fn trim(&mut self) {
        while self.sent.front() == Some(&SETTLED) {
            self.sent.pop_front();
            self.base += 1;
        }
    }

    /// When the oldest outstanding send times out.
    pub fn next(&self) -> Option<i64> {
        self.sent.front().map(|&s| s.saturating_add(self.timeout_ns))
    }

    /// The oldest outstanding send if it is past its deadline (`seq`, sent).
    pub fn pop_expired(&mut self, now: i64) -> Option<(u64, i64)> {
        let sent = *self.sent.front()?;
        if sent.saturating_add(self.timeout_ns) > now {
            return None;
        }
        let seq = self.base;
        self.sent.pop_front();
        self.base += 1;
        self.trim();
        self.expired.insert(seq);
        Some((seq, sent))
    }

    /// Timed out but still in the in-flight set.
    pub fn expired(&self) -> usize {
        self.expired.len()
    }
}

/// One timer per producer, armed at the oldest outstanding deadline. It may
/// fire early (that send was acknowledged since); it then re-arms.
pub(super) struct DeadlineTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<i64>,
}

impl DeadlineTimer {
    pub fn new() -> DeadlineTimer {
        DeadlineTimer { sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))), armed: None }
    }

    pub fn arm(&mut self, deadlines: &Deadlines, time: &TimeBase) {
        if self.armed.is_none() {
            if let Some(d) = deadlines.next() {
                self.sleep.as_mut().reset(time.instant_at(d));
                self.armed = Some(d);
            }
        }
    }

    /// It fired: armed at nothing until [`DeadlineTimer::arm`] again.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    pub fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    pub fn due(&self, now: i64) -> bool {
        self.armed.is_some_and(|d| now >= d)
    }

    pub fn wait(&mut self) -> &mut std::pin::Pin<Box<tokio::time::Sleep>> {
        &mut self.sleep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_oldest_outstanding_send() {
        let mut d = Deadlines::new(Duration::from_nanos(100));
        assert_eq!(d.next(), None);
        d.push(0, 10);
        // 1 and 2 were acknowledged at once (never pushed).
        d.push(3, 20);
        d.push(4, 30);
        assert_eq!(d.next(), Some(110));
        // Out of order: 3 settles first; 0 still holds the deadline.
        assert!(d.settle(3));
        assert_eq!(d.next(), Some(110));
        assert!(d.settle(0));
        assert_eq!(d.next(), Some(130), "0 and the settled 1..3 are gone; 4 is next");
        assert_eq!(d.pop_expired(129), None);
        assert_eq!(d.pop_expired(130), Some((4, 30)));
        assert_eq!(d.expired(), 1);
        assert_eq!(d.next(), None);
        // The late ack of a timed-out send is not counted again.
        assert!(!d.settle(4));
        assert_eq!(d.expired(), 0);
    }

    #[test]
    fn deadlines_expire_in_send_order_and_skip_settled_ones() {
        let mut d = Deadlines::new(Duration::from_nanos(10));
        for seq in 0..5 {
            d.push(seq, seq as i64);
        }
        assert!(d.settle(1));
        let mut out = Vec::new();
        while let Some((seq, _)) = d.pop_expired(13) {
            out.push(seq);
        }
        assert_eq!(out, vec![0, 2, 3], "sent at 0, 2, 3 are past 13; 1 settled; 4 (due 14) is not");
        assert_eq!(d.next(), Some(14));
    }
}
