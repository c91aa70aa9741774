//! One producer's sends in flight: the acknowledgements not yet in, when
//! each send times out, and the one timer armed at the oldest.
//!
//! Imports `deadlines.rs` only.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::FuturesUnordered;

use common::clock::TimeBase;

use super::deadlines::{DeadlineTimer, Deadlines};
use crate::driver::SendOutcome;

/// A send's answer: (`seq`, intended, sent, the broker's answer).
pub(super) type AckResult = (u64, i64, i64, SendOutcome);

/// An acknowledgement tagged with its send: what `ack.map(..)` would build,
/// as a type a struct field can name. No allocation of its own.
pub(super) struct Tagged<A> {
    pub ack: A,
    pub seq: u64,
    pub intended: i64,
    pub sent: i64,
}

impl<A: Future<Output = SendOutcome> + Unpin> Future for Tagged<A> {
    type Output = AckResult;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckResult> {
        let this = &mut *self;
        Pin::new(&mut this.ack).poll(cx).map(|r| (this.seq, this.intended, this.sent, r))
    }
}

/// The sends awaiting their acknowledgement. Send timeouts are tracked by
/// `deadlines` and one timer, not a timer per send.
pub(super) struct InFlight<A> {
    pub acks: FuturesUnordered<Tagged<A>>,
    pub deadlines: Deadlines,
    pub timer: DeadlineTimer,
    /// The group's `max_in_flight`.
    max: usize,
}

impl<A> InFlight<A> {
    pub fn new(max_in_flight: u32, send_timeout: std::time::Duration) -> InFlight<A> {
        InFlight {
            acks: FuturesUnordered::new(),
            deadlines: Deadlines::new(send_timeout),
            timer: DeadlineTimer::new(),
            max: max_in_flight as usize,
        }
    }

    /// Sends still awaiting an answer (not those already timed out, whose
    /// acks are ignored when they come).
    #[inline]
    pub fn live(&self) -> usize {
        self.acks.len() - self.deadlines.expired()
    }

    /// A send whose ack is not in yet: its deadline, the timer, the set.
    #[inline]
    pub fn push(&mut self, ack: Tagged<A>, time: &TimeBase) {
        self.deadlines.push(ack.seq, ack.sent);
        self.timer.arm(&self.deadlines, time);
        self.acks.push(ack);
    }

    /// No room for another send.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.live() >= self.max
    }
}
