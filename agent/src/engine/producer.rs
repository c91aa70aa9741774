//! One producer task: from Start, sends on the group's schedule (or as
//! fast as the window allows), records acknowledgements and timeouts,
//! reports each interval, and at the end hands back what it sent and what
//! was acknowledged ([`ProducerFinal`]).
//!
//! Imports `task.rs`, `interval.rs`, `due.rs`, `in_flight.rs` and
//! `deadlines.rs` (through `in_flight.rs`).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use common::clock::TimeBase;
use common::plan::ProducerInstance;
use common::rangeset::RangeSet;
use common::scenario::{Phases, ProducerGroup};
use common::schedule::Schedule;
use common::stamp::Stamp;
use common::stats::GroupPhases;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::due::{Due, PaceChange, Span, Upcoming};
use super::in_flight::{AckResult, InFlight, Tagged};
use super::interval::Reporter;
use super::task::wait_start;
use crate::driver::{OutMessage, ProducerClient, SendError, SendOutcome};
use crate::payload::{KeyGen, PayloadError, PayloadGen};

/// A send later than this behind its intended time counts as late. Tokio
/// timers tick in milliseconds, so smaller lags are timer granularity.
pub const LATE_NS: i64 = 5_000_000;

/// How far past the end of the measurement a producer behind its schedule
/// keeps sending what was scheduled before the end.
pub const END_GRACE_NS: i64 = 100_000_000;

/// The agent-wide rate cap (`agent --max-rate`), shared by its producers.
pub(super) type RateCap = Arc<governor::DefaultDirectRateLimiter>;

/// A limiter for `rate` msg/s with a burst of 50 ms worth of messages.
pub(super) fn rate_limiter(rate: f64) -> Option<RateCap> {
    if !rate.is_finite() || rate < 1.0 {
        return None;
    }
    let per_s = std::num::NonZeroU32::new(rate.ceil().min(f64::from(u32::MAX)) as u32)?;
    let burst = std::num::NonZeroU32::new(((rate / 20.0).ceil() as u32).max(1))?;
    Some(Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(per_s).allow_burst(burst))))
}

/// What a producer hands back at the end of the run.
pub(super) struct ProducerFinal {
    pub inst: ProducerInstance,
    pub sent: u64,
    pub acked: RangeSet,
    pub error: Option<String>,
    /// Actual time of its first send (coordinator time); None if it sent nothing.
    pub first_send_ns: Option<i64>,
    /// (interval index, sends gone out by its end), one per interval it
    /// reported, in order: when each seq was sent, at interval resolution.
    pub marks: Vec<(u64, u64)>,
}

pub(super) struct ProducerTask {
    inst: ProducerInstance,
    group: ProducerGroup,
    time: TimeBase,
    rep: Reporter,
    stats: GroupPhases,
    acked: RangeSet,
    payloads: PayloadGen,
    keys: KeyGen,
    sent: u64,
    /// Actual time of the first send (when the load began here); set once.
    first_send_ns: Option<i64>,
    /// See [`ProducerFinal::marks`].
    marks: Vec<(u64, u64)>,
    /// Seeds the poisson arrivals of this producer.
    seed: u64,
    /// The agent-wide rate cap, shared by its producers (lock-free GCRA).
    cap: Option<RateCap>,
    /// The run's instants; set at Start.
    span: Span,
    /// Run control's changes for this producer's group (all of them so
    /// far), and how many of them this producer has applied.
    pace: PaceRx,
    pace_seen: usize,
    /// A wait saw the list change (which marks it seen): take it.
    pace_pending: bool,
}

/// Run control's changes for one producer group, as a growing list.
pub(super) type PaceRx = watch::Receiver<Arc<Vec<PaceChange>>>;

/// Why the send loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Nothing left to send.
    Done,
    /// Still behind the schedule past the end (and its grace): the rest of
    /// the schedule is counted as unsent.
    PastEnd,
    /// Cancelled (abort).
    Aborted,
    /// Told to stop sending (the agent leaves): the sends in flight are
    /// still awaited; the rest of the schedule is not a shortfall.
    Stopped,
    /// The client closed the producer.
    Closed,
}

/// What ended a producer's wait for room in flight.
enum Woke {
    Cancelled,
    Ack(AckResult),
    Tick,
    Timer,
}

/// What the client made of a send.
type Handed<A> = Result<A, SendError>;

impl ProducerTask {
    /// A producer of `group` (instance `inst`); `seed` makes its payloads,
    /// keys and arrivals reproducible. Fails when the group's payload file
    /// cannot be read.
    pub fn new(
        inst: ProducerInstance,
        group: ProducerGroup,
        seed: u64,
        time: TimeBase,
        rep: Reporter,
        cap: Option<RateCap>,
        pace: PaceRx,
    ) -> Result<ProducerTask, PayloadError> {
        let payloads = PayloadGen::new(group.message_size, &group.payload, seed)?;
        let keys = KeyGen::new(group.keys, seed, u64::from(inst.index_in_group));
        Ok(ProducerTask {
            inst,
            group,
            time,
            rep,
            stats: GroupPhases::default(),
            acked: RangeSet::new(),
            payloads,
            keys,
            sent: 0,
            first_send_ns: None,
            marks: Vec::new(),
            seed,
            cap,
            span: Span::default(),
            pace,
            pace_seen: 0,
            pace_pending: false,
        })
    }

    /// Waits for Start, sends until the end of the sends (or until
    /// `stop_sending`, a child of `cancel`), waits for the acks still in
    /// flight, and closes the client. `cancel` ends it at once.
    pub async fn run<P: ProducerClient>(
        mut self,
        mut client: P,
        start_rx: watch::Receiver<Option<i64>>,
        (cancel, stop_sending): (CancellationToken, CancellationToken),
        phases: Phases,
    ) -> ProducerFinal {
        let Some(start) = wait_start(start_rx, &cancel).await else {
            client.close().await;
            return self.into_final(None);
        };
        self.rep.started(start);
        self.span = Span::new(start, &phases);
        let schedule = Schedule::for_producer(&self.group, self.inst.rate_milli, self.seed);
        let mut upcoming = Upcoming::new(schedule, &self.span);
        let mut window = InFlight::new(self.group.max_in_flight, self.group.send_timeout);
        let ended = match self.send_all(&mut client, &mut upcoming, &mut window, &stop_sending).await {
            Ended::Aborted if !cancel.is_cancelled() => Ended::Stopped,
            ended => ended,
        };
        if ended == Ended::PastEnd {
            self.stats.measure.unsent += upcoming.left();
        }
        let mut error = (ended == Ended::Closed).then(|| "producer closed by the client".to_string());
        // Every send has a timeout, so the drain ends.
        let aborted = ended == Ended::Aborted || !self.drain(&mut window, &cancel).await;
        let unacked = window.live();
        if aborted && unacked > 0 {
            error = Some(format!("aborted with {unacked} sends unacknowledged"));
        }
        self.report_last();
        client.close().await;
        self.into_final(error)
    }

    fn into_final(self, error: Option<String>) -> ProducerFinal {
        ProducerFinal {
            inst: self.inst,
            sent: self.sent,
            acked: self.acked,
            error,
            first_send_ns: self.first_send_ns,
            marks: self.marks,
        }
    }

    /// The send loop. The hot path reads the clock once per message (plus
    /// once per ack that is not in at once) and builds no wait future
    /// unless it waits.
    async fn send_all<P: ProducerClient>(
        &mut self,
        client: &mut P,
        upcoming: &mut Upcoming,
        window: &mut InFlight<P::Ack>,
        cancel: &CancellationToken,
    ) -> Ended {
        let mut seq = 0u64;
        loop {
            let mut now = self.time.now_ns();
            if self.pace_pending || matches!(self.pace.has_changed(), Ok(true)) {
                self.take_pace(upcoming, now);
            }
            let intended = match upcoming.intended(now, &self.span) {
                Due::At(t) => t,
                Due::Done => return Ended::Done,
                Due::Paused => {
                    if !self.wait_paused(window, cancel).await {
                        return Ended::Aborted;
                    }
                    continue;
                }
            };
            if self.rep.tick_pending() {
                self.on_tick();
            }
            self.at(now);
            // Sending ends with the phase, whatever is left of the schedule:
            // a producer far behind its schedule never runs past the
            // measurement. (A grace covers timer granularity, so a producer
            // a few milliseconds behind still sends its last messages.)
            if now >= self.span.end + END_GRACE_NS {
                return Ended::PastEnd;
            }
            if window.timer.due(now) {
                self.expire(window, now);
            }
            debug_assert!(intended < self.span.end + 1);
            if now < intended {
                if !self.wait_until(intended, window, cancel).await {
                    return Ended::Aborted;
                }
                continue;
            }
            if window.is_full() {
                if !self.wait_for_room(now, window, cancel).await {
                    return Ended::Aborted;
                }
                continue;
            }
            if let Some(cap) = &self.cap {
                match take_permit(cap, cancel).await {
                    Some(true) => now = self.time.now_ns(),
                    Some(false) => {}
                    None => return Ended::Aborted,
                }
            }
            if self.settle_ready(window, now) {
                now = self.time.now_ns();
            }
            let msg = self.next_message(seq, intended, now);
            let Some(handed) = self.hand_over(client, msg, now, cancel).await else { return Ended::Aborted };
            if !self.book(handed, window, seq, intended, now) {
                return Ended::Closed;
            }
            seq += 1;
            if upcoming.advance(seq) {
                tokio::task::yield_now().await;
                if cancel.is_cancelled() {
                    return Ended::Aborted;
                }
            }
        }
    }

    /// Not due yet: waits for `intended`, taking acks, ticks, timeouts and
    /// run control's changes as they come (any of them ends the wait).
    /// False when cancelled.
    async fn wait_until<A: ProducerAck>(
        &mut self,
        intended: i64,
        window: &mut InFlight<A>,
        cancel: &CancellationToken,
    ) -> bool {
        let at = self.time.instant_at(intended);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return false,
            Some(r) = window.acks.next(), if !window.acks.is_empty() => {
                self.settle(r, window, self.time.now_ns());
            }
            _ = self.rep.next_tick() => self.on_tick(),
            _ = window.timer.wait(), if window.timer.is_armed() => {
                self.expire(window, self.time.now_ns());
            }
            Ok(()) = self.pace.changed() => self.pace_pending = true,
            _ = tokio::time::sleep_until(at) => {}
        }
        true
    }

    /// Run control's changes not applied yet, applied (at `now` when their
    /// instant has passed).
    fn take_pace(&mut self, upcoming: &mut Upcoming, now: i64) {
        let log = self.pace.borrow_and_update().clone();
        for c in log.iter().skip(self.pace_seen) {
            upcoming.rebase(c, now, &mut self.span);
        }
        self.pace_seen = log.len();
        self.pace_pending = false;
    }

    /// Paused by run control: waits for a change (or the end of the sends:
    /// past it a paused closed loop is done; an open loop's schedule says so
    /// by itself), taking acks, ticks and timeouts meanwhile. False when
    /// cancelled.
    async fn wait_paused<A: ProducerAck>(&mut self, window: &mut InFlight<A>, cancel: &CancellationToken) -> bool {
        self.wait_until(self.span.end, window, cancel).await
    }

    /// Due to send, and the window is full: the broker holds this producer
    /// back. The wait is counted (`window_wait_ns`) from this iteration's
    /// clock read (`now`) to the one after the wake-up, which the ack or
    /// the timeout needs anyway; a tick counts the wait so far before the
    /// interval is flushed. False when cancelled.
    async fn wait_for_room<A: ProducerAck>(
        &mut self,
        now: i64,
        window: &mut InFlight<A>,
        cancel: &CancellationToken,
    ) -> bool {
        let woke = tokio::select! {
            biased;
            _ = cancel.cancelled() => Woke::Cancelled,
            Some(r) = window.acks.next() => Woke::Ack(r),
            _ = self.rep.next_tick() => Woke::Tick,
            _ = window.timer.wait(), if window.timer.is_armed() => Woke::Timer,
        };
        let t = self.time.now_ns();
        self.add_wait(now, t);
        match woke {
            Woke::Cancelled => return false,
            Woke::Ack(r) => self.settle(r, window, t),
            Woke::Tick => self.on_tick(),
            Woke::Timer => self.expire(window, t),
        }
        true
    }

    /// Takes the acks that are already in, without waiting. True when it
    /// took any (the clock must be read again).
    #[inline]
    fn settle_ready<A: ProducerAck>(&mut self, window: &mut InFlight<A>, now: i64) -> bool {
        if window.acks.is_empty() {
            return false;
        }
        let mut took = false;
        while let Some(Some(r)) = window.acks.next().now_or_never() {
            self.settle(r, window, now);
            took = true;
        }
        took
    }

    /// The message for send `seq`, counted as sent at `sent`.
    #[inline]
    fn next_message(&mut self, seq: u64, intended: i64, sent: i64) -> OutMessage {
        let payload = self.payloads.next_payload();
        let len = payload.len() as u64;
        let key = self.keys.next_key();
        let stamp = Stamp { producer_id: self.inst.id, seq, intended_ns: intended, sent_ns: sent };
        let lag = sent - intended;
        let ph = self.span.phase(&mut self.stats, sent);
        ph.sent += 1;
        ph.bytes += len;
        ph.max_lag_ns = ph.max_lag_ns.max(lag.max(0) as u64);
        if lag > LATE_NS {
            ph.late_sends += 1;
        }
        if self.sent == 0 {
            // The clock was read for the stamp already: no extra cost per send.
            self.first_send_ns = Some(sent);
        }
        self.sent += 1;
        OutMessage { stamp, key, payload }
    }

    /// Hands one message to the client. Most sends are taken at once; wait
    /// (cancellably) only when not. Waiting for the client to take a send
    /// (its queue is full: backpressure) counts like waiting for room in
    /// flight. None when cancelled while waiting.
    #[inline]
    async fn hand_over<P: ProducerClient>(
        &mut self,
        client: &mut P,
        msg: OutMessage,
        sent: i64,
        cancel: &CancellationToken,
    ) -> Option<Handed<P::Ack>> {
        let send = client.send(msg);
        tokio::pin!(send);
        if let Poll::Ready(r) = futures::poll!(send.as_mut()) {
            return Some(r);
        }
        let r = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            r = &mut send => Some(r),
        };
        self.add_wait(sent, self.time.now_ns());
        r
    }

    /// Books what the client made of send `seq`: an ack already in is
    /// recorded at once (an in-process broker: no bookkeeping), a pending
    /// one joins the window. False when the client closed the producer.
    #[inline]
    fn book<A: ProducerAck>(
        &mut self,
        handed: Handed<A>,
        window: &mut InFlight<A>,
        seq: u64,
        intended: i64,
        sent: i64,
    ) -> bool {
        match handed {
            Ok(mut ack) => match (&mut ack).now_or_never() {
                Some(r) => self.record_ack((seq, intended, sent, r), self.time.now_ns()),
                None => window.push(Tagged { ack, seq, intended, sent }, &self.time),
            },
            Err(e) => {
                let closed = e == SendError::Closed;
                self.record_ack((seq, intended, sent, Err(e)), sent);
                return !closed;
            }
        }
        true
    }

    /// After the last send: waits for the acks still in flight. False when
    /// cancelled first.
    async fn drain<A: ProducerAck>(&mut self, window: &mut InFlight<A>, cancel: &CancellationToken) -> bool {
        while window.live() > 0 {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return false,
                Some(r) = window.acks.next() => self.settle(r, window, self.time.now_ns()),
                _ = self.rep.next_tick() => self.on_tick(),
                _ = window.timer.wait(), if window.timer.is_armed() => {
                    self.expire(window, self.time.now_ns());
                }
            }
        }
        true
    }

    fn flush(&mut self, interval: u64) {
        self.marks.push((interval, self.sent));
        let stats = std::mem::take(&mut self.stats);
        self.rep.send(interval, stats, 0, false);
    }

    fn on_tick(&mut self) {
        if let Some(k) = self.rep.ticked() {
            self.flush(k);
        }
    }

    /// Reports the interval that ended before `now`, if one did.
    #[inline]
    fn at(&mut self, now: i64) {
        if let Some(k) = self.rep.crossed(now) {
            self.flush(k);
        }
    }

    /// The last report. A boundary passed but not yet seen: what was
    /// recorded belongs before it.
    fn report_last(&mut self) {
        if self.rep.tick_pending() {
            self.on_tick();
        }
        let last = self.rep.last_tick();
        if self.marks.last().is_none_or(|m| m.0 < last) {
            self.marks.push((last, self.sent));
        }
        let stats = std::mem::take(&mut self.stats);
        self.rep.send(last, stats, 0, true);
    }

    fn record_ack(&mut self, (seq, intended, sent, res): AckResult, now: i64) {
        self.at(now);
        let at = answered_at(&res, sent, now);
        // Acks and latencies count when the ack came: its time picks the
        // phase (the coordinator caps the achieved rate by the schedule).
        let ph = self.span.phase(&mut self.stats, at);
        match res {
            Ok(_) => {
                ph.acked += 1;
                ph.response.record_ns(at - intended);
                ph.service.record_ns(at - sent);
                self.acked.insert(seq);
            }
            Err(e) => {
                ph.send_errors += 1;
                ph.error_of_kind(send_error_kind(&e));
                debug!(producer = self.inst.id, seq, error = ?e, "send failed");
            }
        }
    }

    /// Counts `from..to` (ns, coordinator time) as time spent due to send
    /// but held back (window full, or the client not taking the send), in
    /// the phase it fell in, up to the end of the sends: the measurement's
    /// share stays within its duration.
    fn add_wait(&mut self, from: i64, to: i64) {
        let Span { warmup_end, end, .. } = self.span;
        let to = to.min(end);
        if to <= from {
            return;
        }
        if from < warmup_end {
            self.stats.warmup.window_wait_ns += (to.min(warmup_end) - from) as u64;
        }
        if to > warmup_end {
            self.stats.measure.window_wait_ns += (to - from.max(warmup_end)) as u64;
        }
    }

    /// Counts every send past its timeout as failed (its ack, if it ever
    /// comes, is ignored) and re-arms the deadline timer.
    fn expire<A>(&mut self, window: &mut InFlight<A>, now: i64) {
        window.timer.disarm();
        while let Some((seq, sent)) = window.deadlines.pop_expired(now) {
            self.record_ack((seq, sent, sent, Err(SendError::Timeout)), now);
        }
        window.timer.arm(&window.deadlines, &self.time);
    }

    /// An acknowledgement from the in-flight set (not one already timed out).
    fn settle<A>(&mut self, r: AckResult, window: &mut InFlight<A>, now: i64) {
        if window.deadlines.settle(r.0) {
            self.record_ack(r, now);
        }
    }
}

/// When a send's answer came: as the client noted it, never before the
/// send and never after `now` (this look at it); else `now`. A correction
/// of the time base can put `sent` after `now`: then `now`, as without a
/// noted time.
pub(super) fn answered_at(res: &SendOutcome, sent: i64, now: i64) -> i64 {
    match res {
        Ok(Some(t)) => (*t).max(sent).min(now),
        _ => now,
    }
}

/// Over the agent's cap: waits for a permit (the wait shows as lag; the
/// permit it returns is this send's). Some(true) when it waited (the clock
/// must be read again), None when cancelled first.
#[inline]
async fn take_permit(cap: &RateCap, cancel: &CancellationToken) -> Option<bool> {
    if cap.check().is_ok() {
        return Some(false);
    }
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        _ = cap.until_ready() => Some(true),
    }
}

/// A client's acknowledgement future (what [`ProducerClient::Ack`] is).
trait ProducerAck: Future<Output = SendOutcome> + Unpin {}
impl<A: Future<Output = SendOutcome> + Unpin> ProducerAck for A {}

/// The kind a failed send is counted under (see `common::errors::kind`).
fn send_error_kind(e: &SendError) -> String {
    match e {
        SendError::Timeout => "send: timeout".into(),
        SendError::Closed => "send: disconnected".into(),
        SendError::Broker(m) => common::errors::kind("send", m),
    }
}
