//! One consumer task: from Start, receives and acknowledges, classifies
//! each delivery (new, redelivered, duplicate), takes nothing during the
//! group's pauses, reports each interval, and at the end hands back what
//! it received of each producer ([`ConsumerFinal`]).
//!
//! Imports `task.rs`, `interval.rs`, `seen.rs` and `activity.rs`.

use std::task::Poll;
use std::time::Duration;

use common::clock::TimeBase;
use common::plan::ConsumerInstance;
use common::rangeset::RangeSet;
use common::scenario::Pause;
use common::stamp::Stamp;
use common::stats::GroupPhases;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::activity::Activity;
use super::interval::Reporter;
use super::seen::{Receipt, Seen};
use super::task::wait_start;
use crate::driver::{ConsumerClient, Delivery, RecvError};

/// At most this many deliveries are taken without waiting before the task
/// yields to the runtime (and looks at ticks, Stop and the fault).
const BATCH: usize = 256;

/// What a consumer hands back at the end of the run.
pub(super) struct ConsumerFinal {
    pub inst: ConsumerInstance,
    pub seen: Vec<Option<Seen>>,
    pub duplicates: u64,
    pub redelivered: u64,
    /// Times it subscribed again plus deliveries the broker flagged as
    /// redelivered: what makes a message two consumers got a redelivery.
    pub redelivery_causes: u64,
    pub reordered: u64,
    pub deliveries: u64,
    pub undecodable: u64,
    /// When it received, per partition and key (and how many per partition).
    pub activity: Activity,
    pub faulted: bool,
    pub error: Option<String>,
    pub errors: RecvErrors,
}

/// Receive and ack failures a consumer went on after: how many, the first
/// and the last (a final-report note; the count is also in the
/// interval stats as `receive_errors`).
#[derive(Default)]
pub(super) struct RecvErrors {
    count: u64,
    first: Option<String>,
    last: Option<String>,
}

impl RecvErrors {
    fn add(&mut self, e: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.last = Some(e);
        }
    }

    pub fn note(&self) -> Option<String> {
        let first = self.first.as_deref()?;
        Some(match &self.last {
            None => format!("1 receive error: {first}"),
            Some(last) => format!("{} receive errors, the first: {first}; the last: {last}", self.count),
        })
    }
}

pub(super) struct ConsumerTask {
    inst: ConsumerInstance,
    time: TimeBase,
    warmup_end: i64,
    /// Producers in the run: a stamp naming another is undecodable.
    n_producers: u64,
    rep: Reporter,
    stats: GroupPhases,
    unique_new: u64,
    seen: Vec<Option<Seen>>,
    /// What `seen` held when the driver last subscribed again: a repeat of
    /// one of these is a redelivery, not a duplicate.
    before_reconnect: Vec<Option<RangeSet>>,
    connection: u32,
    /// Deliveries the broker flagged as redelivered.
    flagged: u64,
    duplicates: u64,
    redelivered: u64,
    reordered: u64,
    deliveries: u64,
    undecodable: u64,
    activity: Activity,
    faulted: bool,
    errors: RecvErrors,
    /// The group's windows without taking anything (offsets from Start).
    pauses: Vec<Pause>,
}

impl ConsumerTask {
    pub fn new(
        inst: ConsumerInstance,
        n_producers: u64,
        pauses: Vec<Pause>,
        time: TimeBase,
        rep: Reporter,
        activity: Activity,
    ) -> ConsumerTask {
        ConsumerTask {
            inst,
            time,
            warmup_end: 0,
            n_producers,
            rep,
            stats: GroupPhases::default(),
            unique_new: 0,
            seen: Vec::new(),
            before_reconnect: Vec::new(),
            connection: 0,
            flagged: 0,
            duplicates: 0,
            redelivered: 0,
            reordered: 0,
            deliveries: 0,
            undecodable: 0,
            activity,
            faulted: false,
            errors: RecvErrors::default(),
            pauses,
        }
    }

    /// Receives from Start until stopped. `stop_after`: a fault action stops
    /// this consumer (closes it) that long after Start.
    pub async fn run<C: ConsumerClient>(
        mut self,
        client: C,
        start_rx: watch::Receiver<Option<i64>>,
        stop: CancellationToken,
        warmup: Duration,
        stop_after: Option<Duration>,
    ) -> ConsumerFinal {
        let mut error = None;
        let mut client = Some(client);
        // Messages flow only after Start (no producer sends before it).
        if let (Some(start), Some(c)) = (wait_start(start_rx, &stop).await, client.as_mut()) {
            self.rep.started(start);
            self.warmup_end = start + warmup.as_nanos() as i64;
            let fault_ns = stop_after.map(|d| start + d.as_nanos() as i64);
            error = self.receive(c, start, fault_ns, &stop).await.err();
            if !stop.is_cancelled() {
                // Stopped by a fault or closed by the broker: leave now, keep reporting.
                if let Some(c) = client.take() {
                    c.close().await;
                }
                self.idle(&stop).await;
            }
        }
        if self.rep.tick_pending() {
            self.flush_tick();
        }
        let last = self.rep.last_tick();
        self.flush(last);
        if let Some(c) = client {
            c.close().await;
        }
        self.into_final(error)
    }

    fn into_final(self, error: Option<String>) -> ConsumerFinal {
        ConsumerFinal {
            inst: self.inst,
            seen: self.seen,
            duplicates: self.duplicates,
            redelivered: self.redelivered,
            redelivery_causes: u64::from(self.connection) + self.flagged,
            reordered: self.reordered,
            deliveries: self.deliveries,
            undecodable: self.undecodable,
            activity: self.activity,
            faulted: self.faulted,
            error,
            errors: self.errors,
        }
    }

    /// The receive loop: until Stop, the fault at `fault_ns` (coordinator
    /// time), or the consumer is gone (Err: why).
    async fn receive<C: ConsumerClient>(
        &mut self,
        c: &mut C,
        start: i64,
        fault_ns: Option<i64>,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let fault_at = fault_ns.map(|ns| self.time.instant_at(ns));
        let fault = async move {
            match fault_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(fault);
        loop {
            // A late start or a pause: take nothing (the subscription keeps
            // it all: a backlog), report intervals, obey Stop.
            if let Some(until) = self.pause_until(start) {
                if !self.pause(until, stop).await {
                    return Ok(());
                }
                continue;
            }
            let took = self.take_ready(c).await?;
            if self.rep.tick_pending() {
                self.flush_tick();
            }
            if stop.is_cancelled() {
                return Ok(());
            }
            if fault_ns.is_some_and(|f| self.time.now_ns() >= f) {
                self.stopped_by_fault();
                return Ok(());
            }
            if took == BATCH {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                _ = &mut fault => {
                    self.stopped_by_fault();
                    return Ok(());
                }
                _ = self.rep.next_tick() => self.flush_tick(),
                d = c.recv() => self.on_delivery(c, d).await?,
            }
        }
    }

    /// Takes what is in without building the wait futures (a dropped
    /// `recv` loses nothing: it is cancel-safe), at most [`BATCH`].
    #[inline]
    async fn take_ready<C: ConsumerClient>(&mut self, c: &mut C) -> Result<usize, String> {
        let mut took = 0;
        while took < BATCH {
            let d = {
                let next = c.recv();
                tokio::pin!(next);
                match futures::poll!(next) {
                    Poll::Ready(d) => d,
                    Poll::Pending => break,
                }
            };
            took += 1;
            self.on_delivery(c, d).await?;
        }
        Ok(took)
    }

    fn stopped_by_fault(&mut self) {
        info!(consumer = self.inst.id, "stopped by a fault action");
        self.faulted = true;
    }

    /// The end (coordinator time) of the pause the group is in now, if any.
    fn pause_until(&self, start: i64) -> Option<i64> {
        if self.pauses.is_empty() {
            return None;
        }
        let offset = Duration::from_nanos((self.time.now_ns() - start).max(0) as u64);
        Pause::until_after(&self.pauses, offset).map(|until| start + until.as_nanos() as i64)
    }

    fn flush(&mut self, interval: u64) {
        let stats = std::mem::take(&mut self.stats);
        let unique_new = std::mem::take(&mut self.unique_new);
        self.rep.send(interval, stats, unique_new, false);
    }

    fn flush_tick(&mut self) {
        if let Some(k) = self.rep.ticked() {
            self.flush(k);
        }
    }

    /// Counts one delivery in the interval and phase it fell in; returns
    /// when it was received (coordinator time).
    #[inline]
    fn record(&mut self, d: Delivery) -> i64 {
        let now = self.time.now_ns();
        if let Some(k) = self.rep.crossed(now) {
            self.flush(k);
        }
        self.deliveries += 1;
        self.activity.record(now, d.partition, d.key);
        let stamp = match d.stamp {
            Ok(s) if u64::from(s.producer_id) < self.n_producers => s,
            _ => {
                self.undecodable += 1;
                self.stats.measure.receive_errors += 1;
                self.stats.measure.error_of_kind("receive: undecodable payload".into());
                return now;
            }
        };
        let receipt = self.receipt(&stamp, d.redelivered, d.connection);
        // Throughput counts on receipt: the receive time picks the phase.
        let ph = if now < self.warmup_end { &mut self.stats.warmup } else { &mut self.stats.measure };
        ph.received += 1;
        ph.bytes += d.payload_len as u64;
        ph.service.record_ns(now - stamp.sent_ns);
        ph.response.record_ns(now - stamp.intended_ns);
        match receipt {
            Receipt::New { reordered } => {
                self.unique_new += 1;
                if reordered {
                    ph.reordered += 1;
                    self.reordered += 1;
                }
            }
            Receipt::Redelivered => {
                ph.redelivered += 1;
                self.redelivered += 1;
            }
            Receipt::Duplicate => {
                ph.duplicates += 1;
                self.duplicates += 1;
            }
        }
        now
    }

    /// Records an ack that began at `began` in the phase of the delivery it
    /// acknowledged, received at `received_at`.
    #[inline]
    fn ack_done(&mut self, received_at: i64, began: tokio::time::Instant) {
        let ph = if received_at < self.warmup_end { &mut self.stats.warmup } else { &mut self.stats.measure };
        ph.ack.record_ns(began.elapsed().as_nanos() as i64);
    }

    /// What this delivery of `stamp` is to this consumer (`redelivered`:
    /// the broker says so; `connection`: see [`Delivery::connection`]).
    #[inline]
    fn receipt(&mut self, stamp: &Stamp, redelivered: bool, connection: u32) -> Receipt {
        self.flagged += u64::from(redelivered);
        if connection != self.connection {
            self.connection = connection;
            self.before_reconnect = self.seen.iter().map(|s| s.as_ref().map(|s| s.set.clone())).collect();
        }
        let pid = stamp.producer_id as usize;
        if self.seen.len() <= pid {
            self.seen.resize(pid + 1, None);
        }
        let s = self.seen[pid].get_or_insert_with(Seen::default);
        let before = self.before_reconnect.get(pid).and_then(Option::as_ref);
        s.receive(stamp.seq, before, redelivered)
    }

    /// Records and acknowledges one delivery; Err when the consumer is gone.
    async fn on_delivery<C: ConsumerClient>(
        &mut self,
        c: &mut C,
        d: Result<Delivery, RecvError>,
    ) -> Result<(), String> {
        match d {
            Ok(d) => {
                let received_at = self.record(d);
                // Ack latency where the client says when the ack is done.
                let began = C::ACK_NOT_TIMED.is_none().then(tokio::time::Instant::now);
                let acked = c.ack_last().await;
                if let (Some(began), Ok(())) = (began, &acked) {
                    self.ack_done(received_at, began);
                }
                if let Err(RecvError::Transient(e) | RecvError::Closed(e)) = acked {
                    self.stats.measure.receive_errors += 1;
                    self.stats.measure.error_of_kind(common::errors::kind("ack", &e));
                    debug!(consumer = self.inst.id, error = %e, "ack failed");
                    self.errors.add(format!("ack failed: {e}"));
                }
            }
            Err(RecvError::Transient(e)) => {
                self.stats.measure.receive_errors += 1;
                self.stats.measure.error_of_kind(common::errors::kind("receive", &e));
                debug!(consumer = self.inst.id, error = %e, "receive failed");
                self.errors.add(e);
            }
            Err(RecvError::Closed(e)) => {
                warn!(consumer = self.inst.id, error = %e, "consumer closed");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Takes nothing until `until` (coordinator time); false when stopped first.
    async fn pause(&mut self, until: i64, stop: &CancellationToken) -> bool {
        let at = self.time.instant_at(until);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return false,
                _ = self.rep.next_tick() => self.flush_tick(),
                _ = tokio::time::sleep_until(at) => return true,
            }
        }
    }

    /// Reports intervals (empty) until the run stops.
    async fn idle(&mut self, stop: &CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.rep.next_tick() => self.flush_tick(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_errors_note_the_count_the_first_and_the_last() {
        let mut e = RecvErrors::default();
        assert_eq!(e.note(), None);
        e.add("stream ended".into());
        assert_eq!(e.note().as_deref(), Some("1 receive error: stream ended"));
        e.add("ack failed: x".into());
        e.add("subscribed again".into());
        assert_eq!(e.note().as_deref(), Some("3 receive errors, the first: stream ended; the last: subscribed again"));
    }
}
