//! A producer instance: the workload that calls `send()`, the partitioners, the record
//! accumulator (one queue of batches per partition, closed by `batch.size` or
//! `linger.ms`), and the sender (produce requests per broker with up to
//! `max.in.flight.requests.per.connection` in flight, retries with exponential backoff,
//! the delivery timeout, metadata refresh on errors). KAFKA.md §2–3.
//!
//! `send()` blocks while `buffer.memory` is full, up to `max.block.ms`; the built-in
//! partitioner weighs partitions by their queues (KIP-794).
//!
//! Simplifications, all documented in README.md: the application hands records over at
//! their due times in 1 ms ticks; backoff has no jitter.

use crate::kafka::config::{Acks, Keys, Partitioner, Producer, Workload};
use crate::kafka::log::{Batch, Writer};
use crate::kafka::partitioner;
use crate::kafka::protocol::{AcksMode, ErrorCode, Msg};
use crate::kafka::{ClusterInfo, FailReason, Obs, Out, Pidx, Timer};
use crate::sim::rng::SimRng;
use crate::sim::{Duration, NodeId, Time, TimerId};
use rand::RngExt;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// `reconnect.backoff.ms`: how long a client leaves a broker alone after its connection
/// to it was refused or closed.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// The application's pace: it hands due records to `send()` at most once per tick.
pub const SEND_TICK: Duration = Duration::from_millis(1);

/// Bytes a record batch header takes (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
pub const BATCH_OVERHEAD: u32 = 61;
/// Approximate bytes of a record's own framing (length, attributes, deltas, header count).
pub const RECORD_OVERHEAD: u32 = 7;

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProducerTimer {
    /// Look again at the workload and the accumulator.
    Wake,
    RequestTimeout(u64),
    MetadataTimeout(u64),
}

/// A key's partition and serialized length.
#[derive(Clone, Copy, Debug)]
pub struct KeyInfo {
    pub partition: u32,
    pub bytes: u32,
}

/// What every instance of one `producers:` entry shares.
pub struct ProducerConfig {
    pub spec: Producer,
    /// The partitions of the topic: `first..first + count` in the flat numbering.
    pub first: Pidx,
    pub count: u32,
    /// For keyed workloads: the partition of `key-i`, computed once per key with murmur2.
    /// For keyed workloads, per key: its partition and serialized length, computed once;
    /// empty for keys `key-0` … placed by murmur2, which are hashed as drawn (a table of
    /// them would be a cache miss per record).
    pub key_table: Vec<KeyInfo>,
    /// For zipf keys: the cumulative weights of the keys, scaled to integers (see
    /// [`zipf_cdf`]); empty for uniform keys.
    pub key_cdf: Vec<u64>,
    /// When the workload stops (the scenario's `duration`).
    pub stop: Time,
}

impl ProducerConfig {
    /// The partition and serialized length of key number `key`.
    pub fn key_info(&self, key: usize) -> KeyInfo {
        if let Some(info) = self.key_table.get(key) {
            return *info;
        }
        let mut buf = [0; Keys::COUNTED_MAX];
        let name = Keys::counted(key, &mut buf);
        KeyInfo {
            partition: partitioner::partition_for_key(name.as_bytes(), self.count),
            bytes: name.len() as u32,
        }
    }

    /// Records the workload sends in all.
    pub fn total_records(&self) -> u64 {
        match self.spec.workload {
            Workload::Rate { count, per } => {
                let num = u128::from(self.stop.0) * u128::from(count);
                num.div_ceil(u128::from(per.0.max(1))) as u64
            }
            Workload::Messages(n) => n,
            Workload::Bursts { .. } => self.first_due_at_or_after(self.stop),
        }
    }
    /// The index of the first record due at or after `t`.
    pub fn first_due_at_or_after(&self, t: Time) -> u64 {
        // due(i) = floor(i * span / n) >= t  ⟺  i >= ceil(t * n / span).
        let (n, span) = match self.spec.workload {
            Workload::Rate { count, per } => (u128::from(count), u128::from(per.0)),
            Workload::Messages(n) => (u128::from(n), u128::from(self.stop.0)),
            Workload::Bursts { .. } => {
                // due(i) < t  ⟺  due_by(t - 1) >= i: records 0..=due_by(t - 1) come first.
                return match t.0 {
                    0 => 0,
                    t => (self.due_by(t - 1) / self.burst_denominator()) as u64 + 1,
                };
            }
        };
        (u128::from(t.0) * n).div_ceil(span.max(1)) as u64
    }

    /// When record `i` is handed to `send()`.
    pub fn due(&self, i: u64) -> Time {
        match self.spec.workload {
            Workload::Rate { count, per } => Time((u128::from(i) * u128::from(per.0) / u128::from(count)) as u64),
            Workload::Messages(n) => Time((u128::from(i) * u128::from(self.stop.0) / u128::from(n)) as u64),
            Workload::Bursts { .. } => {
                // The first microsecond by which `i` records are due: a binary search over
                // the monotone `due_by` (records from `total_records()` on are never sent).
                let target = u128::from(i) * self.burst_denominator();
                let (mut lo, mut hi) = (0u64, self.stop.0);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.due_by(mid) >= target {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                Time(lo)
            }
        }
    }

    /// With bursts: the records due in `0..t` µs, times [`Self::burst_denominator`].
    fn due_by(&self, t: u64) -> u128 {
        let Workload::Bursts {
            base,
            base_per,
            burst,
            burst_per,
            every,
            length,
        } = self.spec.workload
        else {
            unreachable!("bursts only")
        };
        // Bursts cover [k·every, k·every + length) for k ≥ 1.
        let (periods, into) = (t / every.0, t % every.0);
        let in_burst = match periods {
            0 => 0,
            k => (k - 1) * length.0 + into.min(length.0),
        };
        let in_base = t - in_burst;
        u128::from(in_base) * u128::from(base) * u128::from(burst_per.0)
            + u128::from(in_burst) * u128::from(burst) * u128::from(base_per.0)
    }

    fn burst_denominator(&self) -> u128 {
        match self.spec.workload {
            Workload::Bursts {
                base_per, burst_per, ..
            } => u128::from(base_per.0) * u128::from(burst_per.0),
            _ => 1,
        }
    }
}

/// The cumulative distribution of zipf keys as integers: key `k` (from 0) has weight
/// `1 / (k + 1)^exponent`, and entry `k` is the weight of keys `0..=k` scaled so that the
/// last entry is 2^53. A key is drawn by taking `r` uniform in `0..2^53` and the first
/// entry above it. `libm` computes the powers, so the table is the same on every platform.
pub fn zipf_cdf(keys: usize, exponent: f64) -> Vec<u64> {
    const SCALE: f64 = (1u64 << 53) as f64;
    let mut cumulative = Vec::with_capacity(keys);
    let mut sum = 0.0;
    for k in 1..=keys {
        sum += libm::pow(k as f64, -exponent);
        cumulative.push(sum);
    }
    cumulative.iter().map(|c| libm::round(c / sum * SCALE) as u64).collect()
}

/// KIP-794's cumulative frequency table: each queue weighs `max + 1 - size`, summed in
/// order. A draw `r` in `0..last` picks the first entry above `r`.
pub fn frequency_table(sizes: &[u32]) -> Vec<u32> {
    let max = sizes.iter().copied().max().unwrap_or(0);
    let mut sum = 0;
    sizes
        .iter()
        .map(|q| {
            sum += max + 1 - q;
            sum
        })
        .collect()
}

#[derive(Debug)]
struct PendingBatch {
    first_seq: u64,
    count: u32,
    bytes: u32,
    /// When its first and last records were sent (for latency).
    first_at: Time,
    last_at: Time,
    /// Still accepting records.
    open: bool,
    /// Part of a produce request awaiting its answer.
    in_flight: bool,
    attempts: u32,
    retry_at: Time,
    /// Bytes it holds of `buffer.memory` (`max(batch.size, its first record)`).
    alloc: u32,
    /// An idempotent producer's epoch and wire sequence for the batch, from its first
    /// drain on (`ProducerBatch.setProducerState`); a retry keeps them unless an epoch
    /// bump rewrites them.
    seq: Option<(u32, u64)>,
    /// An epoch bump rewrote its sequence (`ProducerBatch.sequenceHasBeenReset`).
    reset: bool,
}

/// An idempotent producer's sequence state for one partition (`TxnPartitionEntry`), and
/// what the `TransactionManager` keeps of it.
#[derive(Clone, Copy, Debug, Default)]
struct SeqState {
    /// The epoch its sequence numbers belong to.
    epoch: u32,
    /// The sequence the next new batch gets.
    next: u64,
    /// The sequence after the last one acknowledged (`lastAckedSequence + 1`).
    acked_next: u64,
    /// After a batch in retry expired: the sequence after it
    /// (`partitionsWithUnresolvedSequences`). Nothing new is drained until it resolves.
    unresolved: Option<u64>,
    /// The next epoch bump restarts its sequences at 0 (`partitionsToRewriteSequences`).
    rewrite: bool,
}

/// A record whose `send()` waits for `buffer.memory`: its partition and size are chosen.
struct Held {
    i: usize,
    record: u32,
    sticky: bool,
    /// When `send()` was called.
    since: Time,
}

struct InFlight {
    broker: u32,
    /// Each batch of the request: its partition and first sequence.
    batches: Vec<(Pidx, u64)>,
    /// Its `request.timeout.ms`, cancelled by the answer.
    timeout: TimerId,
}

pub struct ProducerNode {
    /// The instance number, unique across all producers (the record's writer).
    pub index: u32,
    cfg: Arc<ProducerConfig>,
    info: Arc<ClusterInfo>,
    // The workload outlives the process: these survive a crash.
    rng: SimRng,
    next_record: u64,
    next_seq: Vec<u64>,
    /// The producer epoch: bumped at every restart and at every local bump (KIP-360).
    session: u32,
    started: bool,
    // Process memory.
    /// Per partition: the idempotent sequence state.
    seqs: Vec<SeqState>,
    /// A local epoch bump is due before the next drain (`epochBumpRequired`).
    bump_required: bool,
    /// Per broker: where the next drain starts among the partitions it leads.
    drain_index: BTreeMap<u32, usize>,
    leaders: Vec<Option<u32>>,
    metadata_request: Option<(u64, u32, TimerId)>,
    metadata_at: Option<Time>,
    /// After a failed metadata request, the next waits for the backoff.
    metadata_retry_at: Time,
    /// Brokers that refused a connection, and until when the producer leaves them be
    /// (`reconnect.backoff.ms`).
    blocked_until: BTreeMap<u32, Time>,
    bootstrap: u32,
    queues: Vec<VecDeque<PendingBatch>>,
    in_flight: BTreeMap<u64, InFlight>,
    next_request: u64,
    wake_at: Option<Time>,
    /// The timer for `wake_at`, cancelled when an earlier wake-up replaces it.
    wake: Option<TimerId>,
    /// The sticky partition and the bytes produced to it since it was chosen.
    sticky: Option<(u32, u64)>,
    /// The round-robin counter (`RoundRobinPartitioner` starts at 0; `DefaultPartitioner`
    /// ≤ 2.3 at a random int).
    counter: u32,
    /// Bytes of `buffer.memory` the batches hold.
    pool_used: u64,
    held: Option<Held>,
    /// When the application last came out of a blocked `send()`.
    app_at: Time,
    /// Partitions that have had a batch (Kafka's `batches` map has their entry).
    batched: Vec<bool>,
    /// Per broker: when it last had a batch ready, and when batches were last drained to
    /// it (`NodeLatencyStats`, for `partitioner.availability.timeout.ms`).
    node_stats: BTreeMap<u32, (Time, Time)>,
    /// No batch out of flight expires before this: a lower bound of their `first_at +
    /// delivery.timeout.ms`, lowered whenever a batch is queued or comes back from a
    /// request, and made exact by each pass of `expire` (bookkeeping, not Kafka's).
    expiry_floor: Time,
}

impl ProducerNode {
    pub fn new(index: u32, cfg: Arc<ProducerConfig>, info: Arc<ClusterInfo>, mut rng: SimRng) -> ProducerNode {
        let n = cfg.count as usize;
        let counter = Self::initial_counter(&cfg, &mut rng);
        ProducerNode {
            index,
            rng,
            next_record: 0,
            next_seq: vec![0; n],
            session: 0,
            started: false,
            seqs: vec![SeqState::default(); n],
            bump_required: false,
            drain_index: BTreeMap::new(),
            leaders: vec![None; n],
            metadata_request: None,
            metadata_at: None,
            metadata_retry_at: Time::ZERO,
            blocked_until: BTreeMap::new(),
            bootstrap: index,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            in_flight: BTreeMap::new(),
            next_request: 0,
            wake_at: None,
            wake: None,
            sticky: None,
            counter,
            pool_used: 0,
            held: None,
            app_at: Time::ZERO,
            batched: vec![false; n],
            node_stats: BTreeMap::new(),
            expiry_floor: Time::MAX,
            cfg,
            info,
        }
    }

    pub fn crash(&mut self, out: &mut Out) {
        for (i, q) in self.queues.iter_mut().enumerate() {
            for b in q.drain(..) {
                out.observe(Obs::Failed {
                    partition: self.cfg.first + i as u32,
                    producer: self.index,
                    first_seq: b.first_seq,
                    count: b.count,
                    reason: FailReason::ProducerCrashed,
                });
            }
        }
        self.leaders.iter_mut().for_each(|l| *l = None);
        self.seqs.iter_mut().for_each(|s| *s = SeqState::default());
        self.bump_required = false;
        self.drain_index.clear();
        self.metadata_request = None;
        self.metadata_at = None;
        self.in_flight.clear();
        self.wake_at = None;
        self.wake = None;
        self.sticky = None;
        self.counter = Self::initial_counter(&self.cfg, &mut self.rng);
        self.pool_used = 0;
        self.held = None;
        self.batched.iter_mut().for_each(|b| *b = false);
        self.node_stats.clear();
        self.expiry_floor = Time::MAX;
    }

    pub fn start(&mut self, now: Time, out: &mut Out) {
        if self.started {
            // A restarted producer is a new session; the records that fell due while it
            // was down were never sent.
            self.session += 1;
            let first_due = self.cfg.first_due_at_or_after(now);
            self.next_record = self.next_record.max(first_due).min(self.cfg.total_records());
        }
        self.started = true;
        self.drive(now, out);
    }

    pub fn on_timer(&mut self, now: Time, timer: ProducerTimer, out: &mut Out) {
        match timer {
            ProducerTimer::Wake => {
                // A wake-up held by a pause comes late, and stands unless a later one
                // replaced it since.
                if self.wake_at.is_none_or(|w| w > now) {
                    out.idle();
                    return;
                }
                self.wake_at = None;
                self.wake = None;
            }
            ProducerTimer::RequestTimeout(id) => {
                let Some(broker) = self.in_flight.get(&id).map(|r| r.broker) else {
                    out.idle();
                    return;
                };
                self.disconnect(now, broker, out);
            }
            ProducerTimer::MetadataTimeout(id) => {
                let Some((_, broker, _)) = self.metadata_request.filter(|m| m.0 == id) else {
                    out.idle();
                    return;
                };
                self.disconnect(now, broker, out);
            }
        }
        self.drive(now, out);
    }

    /// A request to `broker` timed out: the client closes the connection and every request
    /// in flight on it fails as timed out (`NetworkClient.handleTimedOutRequests`); the
    /// next request opens a new connection.
    fn disconnect(&mut self, now: Time, broker: u32, out: &mut Out) {
        out.close(self.info.broker_node(broker));
        self.connection_lost(now, broker, ErrorCode::RequestTimedOut, out);
    }

    pub fn on_peer_down(&mut self, now: Time, broker: u32, out: &mut Out) {
        self.blocked_until.insert(broker, now + RECONNECT_BACKOFF);
        self.connection_lost(now, broker, ErrorCode::NetworkException, out);
        self.drive(now, out);
    }

    /// The connection to `broker` is gone: its metadata request and every produce request
    /// on it fail with `code`.
    fn connection_lost(&mut self, now: Time, broker: u32, code: ErrorCode, out: &mut Out) {
        if let Some((_, _, timeout)) = self.metadata_request.filter(|m| m.1 == broker) {
            out.cancel_timer(timeout);
            self.metadata_request = None;
            self.metadata_retry_at = now + self.cfg.spec.retry_backoff;
        }
        let ids: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.broker == broker)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let req = self.in_flight.remove(&id).expect("listed");
            out.cancel_timer(req.timeout);
            self.fail_request(now, req, code, out);
        }
    }

    pub fn on_message(&mut self, now: Time, msg: Msg, out: &mut Out) {
        match msg {
            Msg::MetadataResponse { id, partitions } if self.metadata_request.is_some_and(|m| m.0 == id) => {
                if let Some((_, _, timeout)) = self.metadata_request.take() {
                    out.cancel_timer(timeout);
                }
                self.metadata_at = Some(now);
                for i in 0..self.cfg.count {
                    self.leaders[i as usize] = partitions[(self.cfg.first + i) as usize].leader;
                }
            }
            Msg::ProduceResponse { id, results } => {
                let Some(req) = self.in_flight.remove(&id) else { return };
                out.cancel_timer(req.timeout);
                for (p, result) in results {
                    let i = (p - self.cfg.first) as usize;
                    let Some(&(_, seq)) = req.batches.iter().find(|(q, _)| *q == p) else {
                        continue;
                    };
                    let Some(k) = self.find_in_flight(i, seq) else { continue };
                    self.out_of_flight(i, k);
                    match result {
                        Ok(base_offset) => {
                            let b = self.queues[i].remove(k).expect("found");
                            self.pool_used -= u64::from(b.alloc);
                            // `TransactionManager.maybeUpdateLastAckedSequence`.
                            let st = &mut self.seqs[i];
                            if let Some((epoch, seq)) = b.seq
                                && epoch == st.epoch
                            {
                                st.acked_next = st.acked_next.max(seq + u64::from(b.count));
                            }
                            out.observe(Obs::Acked {
                                partition: p,
                                producer: self.index,
                                broker: req.broker,
                                first_seq: b.first_seq,
                                count: b.count,
                                bytes: b.bytes,
                                base_offset,
                                latency_max: now.since(b.first_at),
                                latency_min: now.since(b.last_at),
                            });
                        }
                        Err(code) => self.batch_failed(now, i, k, code, out),
                    }
                }
            }
            _ => {}
        }
        self.drive(now, out);
    }

    fn fail_request(&mut self, now: Time, req: InFlight, code: ErrorCode, out: &mut Out) {
        for (p, seq) in req.batches {
            let i = (p - self.cfg.first) as usize;
            if let Some(k) = self.find_in_flight(i, seq) {
                self.out_of_flight(i, k);
                self.batch_failed(now, i, k, code, out);
            }
        }
    }

    /// Partition `i`'s batch `k` is no longer in flight: it may expire.
    fn out_of_flight(&mut self, i: usize, k: usize) {
        let b = &mut self.queues[i][k];
        b.in_flight = false;
        self.expiry_floor = self.expiry_floor.min(b.first_at + self.cfg.spec.delivery_timeout);
    }

    /// The position of partition `i`'s in-flight batch that starts at `seq`.
    fn find_in_flight(&self, i: usize, seq: u64) -> Option<usize> {
        self.queues[i].iter().position(|b| b.in_flight && b.first_seq == seq)
    }

    /// A failed attempt: retry after backoff, or give the batch up (`Sender.completeBatch`,
    /// `Sender.canRetry`, `TransactionManager.canRetry`).
    fn batch_failed(&mut self, now: Time, i: usize, k: usize, code: ErrorCode, out: &mut Out) {
        let cfg = Arc::clone(&self.cfg);
        let spec = &cfg.spec;
        let p = self.cfg.first + i as u32;
        let b = &mut self.queues[i][k];
        b.attempts += 1;
        let expired = now.since(b.first_at) >= spec.delivery_timeout;
        let attempts_left = u64::from(b.attempts) <= spec.retries;
        let may_retry = attempts_left && !expired;
        let retry = match code {
            ErrorCode::OutOfOrderSequenceNumber if spec.idempotence && may_retry => {
                // A gap in the log, or only a batch that arrived before its predecessor?
                // Bump the epoch when this batch is the next one after the acknowledged
                // sequence (or after an unresolved one); otherwise retry it as it is.
                let st = &self.seqs[i];
                let seq = b.seq.map(|(_, s)| s);
                let next_after_acked = seq == Some(st.acked_next);
                let bump = match st.unresolved {
                    None => !b.reset && next_after_acked,
                    Some(after) => seq == Some(after),
                };
                if bump {
                    self.request_epoch_bump(i);
                }
                true
            }
            code => code.retriable() && may_retry,
        };
        let b = &mut self.queues[i][k];
        out.observe(Obs::ProduceError {
            partition: p,
            producer: self.index,
            error: code,
            records: b.count,
            retrying: retry,
        });
        if retry {
            let exp = b.attempts.saturating_sub(1).min(20);
            let backoff = Duration(spec.retry_backoff.0.saturating_mul(1 << exp))
                .min(spec.retry_backoff_max.max(spec.retry_backoff));
            b.retry_at = now + backoff;
            if !spec.idempotence {
                // `RecordAccumulator.reenqueue`: without idempotence the batch goes back to
                // the front of the queue (`addFirst`), so batches that fail together are
                // sent again newest first. An idempotent producer keeps sequence order
                // (`insertInSequenceOrder`), which is where it already sits.
                let b = self.queues[i].remove(k).expect("exists");
                let front = self.queues[i]
                    .iter()
                    .position(|b| !b.in_flight)
                    .unwrap_or(self.queues[i].len());
                self.queues[i].insert(front, b);
            }
        } else {
            let b = self.queues[i].remove(k).expect("exists");
            self.pool_used -= u64::from(b.alloc);
            // `TransactionManager.handleFailedBatch`: sequences after a batch that may or
            // may not be in the log restart in a new epoch, unless the batch ran out of
            // retries (then nobody knows whether the broker has it).
            if let Some((_, seq)) = b.seq.filter(|_| spec.idempotence) {
                if expired {
                    self.mark_unresolved(i, seq + u64::from(b.count));
                } else if attempts_left || code == ErrorCode::OutOfOrderSequenceNumber {
                    self.request_epoch_bump(i);
                }
            }
            let reason = if expired {
                FailReason::DeliveryTimeout
            } else {
                FailReason::Error(code)
            };
            out.observe(Obs::Failed {
                partition: p,
                producer: self.index,
                first_seq: b.first_seq,
                count: b.count,
                reason,
            });
        }
        if code.refresh_metadata() {
            self.metadata_at = None;
        }
    }

    /// A batch sent before expired: it may or may not be in the log, so nothing new goes
    /// to the partition until its sequences resolve (`Sender.sendProducerData` calling
    /// `TransactionManager.markSequenceUnresolved`).
    fn mark_unresolved(&mut self, i: usize, after: u64) {
        let st = &mut self.seqs[i];
        st.unresolved = Some(st.unresolved.map_or(after, |u| u.max(after)));
    }

    /// `TransactionManager.requestEpochBumpForPartition`.
    fn request_epoch_bump(&mut self, i: usize) {
        self.bump_required = true;
        self.seqs[i].rewrite = true;
    }

    /// Before each drain (`Sender.runOnce`): resolve the partitions whose batches in
    /// retry expired (`maybeResolveSequences`), then bump the epoch locally if asked to
    /// (`bumpIdempotentEpochAndResetIdIfNeeded`, KAFKA-8805): the partitions that asked
    /// restart their sequences at 0, renumbering the batches that have one
    /// (`startSequencesAtBeginning`).
    fn resolve_sequences(&mut self) {
        for i in 0..self.queues.len() {
            let Some(_) = self.seqs[i].unresolved else { continue };
            if self.queues[i].iter().any(|b| b.seq.is_some()) {
                continue;
            }
            let st = &mut self.seqs[i];
            st.unresolved = None;
            if st.acked_next != st.next {
                self.request_epoch_bump(i);
            }
        }
        if !self.bump_required {
            return;
        }
        self.bump_required = false;
        self.session += 1;
        for i in 0..self.queues.len() {
            if !self.seqs[i].rewrite {
                continue;
            }
            let mut next = 0;
            for b in self.queues[i].iter_mut().filter(|b| b.seq.is_some()) {
                b.seq = Some((self.session, next));
                b.reset = true;
                next += u64::from(b.count);
            }
            self.seqs[i] = SeqState {
                epoch: self.session,
                next,
                ..SeqState::default()
            };
        }
    }

    /// Everything the producer does at `now`: generate due records, expire, send, and
    /// set the next wake-up.
    fn drive(&mut self, now: Time, out: &mut Out) {
        self.generate(now, out);
        let spec = &self.cfg.spec;
        let stale = self.metadata_at.is_none_or(|at| now.since(at) >= spec.metadata_max_age);
        if stale && self.metadata_request.is_none() && now >= self.metadata_retry_at {
            self.request_metadata(now, out);
        }
        self.expire(now, out);
        self.send_ready(now, out);
        self.schedule(now, out);
    }

    fn generate(&mut self, now: Time, out: &mut Out) {
        let total = self.cfg.total_records();
        let batch_size = self.cfg.spec.batch_size;
        let mut generated = 0u64;
        while self.next_record < total {
            let due = self.cfg.due(self.next_record);
            if due > now {
                break;
            }
            // `send()` is called at the record's due time, or when the application comes
            // out of an earlier blocked call.
            let was_held = self.held.is_some();
            let Held {
                i,
                record,
                sticky,
                since,
            } = match self.held.take() {
                Some(held) => held,
                None => self.place(due.max(self.app_at)),
            };
            let handed = since.max(self.app_at);
            let opens_batch = self.queues[i]
                .back()
                .is_none_or(|b| !b.open || b.bytes + record > batch_size);
            let mut appended = record;
            if opens_batch {
                // `BufferPool.allocate`: a new batch takes `batch.size` (or the record's
                // size, when larger) from `buffer.memory`, blocking up to `max.block.ms`.
                let alloc = batch_size.max(BATCH_OVERHEAD + record);
                if self.pool_used + u64::from(alloc) > self.cfg.spec.buffer_memory {
                    if now < since + self.cfg.spec.max_block {
                        self.held = Some(Held {
                            i,
                            record,
                            sticky,
                            since,
                        });
                        break;
                    }
                    // BufferExhaustedException: the record never enters the accumulator.
                    self.app_at = now;
                    out.observe(Obs::SendBlocked {
                        producer: self.index,
                        waited: now.since(since),
                    });
                    out.observe(Obs::Failed {
                        partition: self.cfg.first + i as u32,
                        producer: self.index,
                        first_seq: self.next_seq[i],
                        count: 1,
                        reason: FailReason::BufferExhausted,
                    });
                    self.next_record += 1;
                    generated += 1;
                    continue;
                }
                if was_held && now > since {
                    self.app_at = now;
                    out.observe(Obs::SendBlocked {
                        producer: self.index,
                        waited: now.since(since),
                    });
                }
                let at = handed.max(self.app_at);
                let q = &mut self.queues[i];
                if let Some(b) = q.back_mut() {
                    b.open = false;
                }
                q.push_back(PendingBatch {
                    first_seq: self.next_seq[i],
                    count: 1,
                    bytes: BATCH_OVERHEAD + record,
                    first_at: at,
                    last_at: at,
                    open: true,
                    in_flight: false,
                    attempts: 0,
                    retry_at: Time::ZERO,
                    alloc,
                    seq: None,
                    reset: false,
                });
                self.pool_used += u64::from(alloc);
                self.batched[i] = true;
                self.expiry_floor = self.expiry_floor.min(at + self.cfg.spec.delivery_timeout);
                appended += BATCH_OVERHEAD;
            } else {
                let b = self.queues[i].back_mut().expect("an open batch");
                b.count += 1;
                b.bytes += record;
                b.last_at = handed;
            }
            if sticky {
                // `BuiltInPartitioner.updatePartitionInfo`: switch once `batch.size`
                // bytes went to the partition and its batches are full, or at twice that.
                let produced = self.sticky.as_mut().map(|(_, p)| {
                    *p += u64::from(appended);
                    *p
                });
                let limit = u64::from(batch_size);
                if produced.is_some_and(|p| (p >= limit && self.all_batches_full(i)) || p >= 2 * limit) {
                    let next = self.next_builtin();
                    self.sticky = Some((next as u32, 0));
                }
            }
            self.next_seq[i] += 1;
            self.next_record += 1;
            generated += 1;
        }
        if generated > 0 {
            out.observe(Obs::Sent {
                producer: self.index,
                records: generated,
            });
        }
    }

    /// Chooses the partition and size of the next record, `send()` being called at `at`.
    fn place(&mut self, at: Time) -> Held {
        let (mut i, key_bytes, keyed) = self.choose_partition();
        let sizes = self.cfg.spec.value_bytes;
        let value = if sizes.min == sizes.max {
            sizes.min
        } else {
            self.rng.random_range(sizes.min..=sizes.max)
        };
        let record = RECORD_OVERHEAD + key_bytes + value;
        let batch_size = self.cfg.spec.batch_size;
        let opens_batch =
            |q: &VecDeque<PendingBatch>| q.back().is_none_or(|b| !b.open || b.bytes + record > batch_size);
        if opens_batch(&self.queues[i]) {
            // The accumulator would open a new batch here (`abortOnNewBatch`).
            match self.cfg.spec.partitioner {
                // KIP-480: `onNewBatch` moves the sticky partition, and the record is
                // partitioned again.
                Partitioner::Sticky24 if !keyed => i = self.next_sticky(i),
                Partitioner::UniformSticky => i = self.next_sticky(i),
                // KAFKA-9965: `partition()` is called a second time, so the counter
                // advances twice.
                Partitioner::RoundRobin => i = self.round_robin(),
                _ => {}
            }
        }
        Held {
            i,
            record,
            sticky: self.cfg.spec.partitioner == Partitioner::BuiltIn && !keyed,
            since: at,
        }
    }

    /// `allBatchesFull`: the partition's last queued batch, if any, takes no more records.
    fn all_batches_full(&self, i: usize) -> bool {
        let batch_size = self.cfg.spec.batch_size;
        self.queues[i]
            .iter()
            .rev()
            .find(|b| !b.in_flight)
            .is_none_or(|b| !b.open || b.bytes >= batch_size)
    }

    /// The partition index (within the topic) of the next record, its key's size, and
    /// whether it has a key the partitioner uses.
    fn choose_partition(&mut self) -> (usize, u32, bool) {
        let spec = &self.cfg.spec;
        let (key, key_bytes) = match &spec.keys {
            Some(keys) => {
                let hot = spec.hot_share > 0 && self.rng.random_range(0..100u32) < spec.hot_share;
                let cdf = &self.cfg.key_cdf;
                let key = if hot {
                    0
                } else if let Some(&end) = cdf.last() {
                    let r = self.rng.random_range(0..end);
                    cdf.partition_point(|&c| c <= r)
                } else {
                    self.rng.random_range(0..keys.len() as u32) as usize
                };
                let info = self.cfg.key_info(key);
                (Some(info), info.bytes)
            }
            None => (None, 0),
        };
        let by_key = |key: Option<KeyInfo>| key.map(|k| k.partition as usize);
        match spec.partitioner {
            Partitioner::BuiltIn => match by_key(key).filter(|_| !spec.ignore_keys) {
                Some(p) => (p, key_bytes, true),
                None => (self.uniform_sticky_partition(), key_bytes, false),
            },
            Partitioner::Default23 => match by_key(key) {
                Some(p) => (p, key_bytes, true),
                None => (self.round_robin(), key_bytes, false),
            },
            Partitioner::Sticky24 => match by_key(key) {
                Some(p) => (p, key_bytes, true),
                None => (self.sticky_partition(), key_bytes, false),
            },
            Partitioner::Custom => (by_key(key).expect("validation requires keys"), key_bytes, true),
            Partitioner::UniformSticky => (self.sticky_partition(), key_bytes, false),
            Partitioner::RoundRobin => (self.round_robin(), key_bytes, false),
        }
    }

    /// `DefaultPartitioner` ≤ 2.3 starts its counter at `ThreadLocalRandom.nextInt()`;
    /// `RoundRobinPartitioner` at 0.
    fn initial_counter(cfg: &ProducerConfig, rng: &mut SimRng) -> u32 {
        if cfg.spec.partitioner == Partitioner::Default23 {
            rng.random()
        } else {
            0
        }
    }

    /// The partitions whose leader the producer knows (`availablePartitionsForTopic`), or
    /// all of them when none is known.
    fn available(&self) -> Vec<usize> {
        let known: Vec<usize> = (0..self.leaders.len()).filter(|&i| self.leaders[i].is_some()).collect();
        if known.is_empty() {
            (0..self.leaders.len()).collect()
        } else {
            known
        }
    }

    /// `RoundRobinPartitioner` and `DefaultPartitioner` ≤ 2.3 for null keys: the next
    /// available partition in turn (`toPositive(counter++) % available`).
    fn round_robin(&mut self) -> usize {
        let available = self.available();
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        available[(counter & 0x7fff_ffff) as usize % available.len()]
    }

    /// `StickyPartitionCache.partition`: the current sticky partition, or a random
    /// available one to start.
    fn sticky_partition(&mut self) -> usize {
        match self.sticky {
            Some((p, _)) => p as usize,
            None => {
                let available = self.available();
                let p = available[self.rng.random_range(0..available.len())];
                self.sticky = Some((p as u32, 0));
                p
            }
        }
    }

    /// `StickyPartitionCache.nextPartition`: a random available partition other than
    /// `previous` (or the only one).
    fn next_sticky(&mut self, previous: usize) -> usize {
        let others: Vec<usize> = self.available().into_iter().filter(|&p| p != previous).collect();
        let p = if others.is_empty() {
            previous
        } else {
            others[self.rng.random_range(0..others.len())]
        };
        self.sticky = Some((p as u32, 0));
        p
    }

    /// The built-in uniform sticky partitioner (KIP-794): the current sticky partition,
    /// or the next one when `batch.size` bytes went to it and its batches are full
    /// (`peekCurrentPartitionInfo`, then `partitionChanged`).
    fn uniform_sticky_partition(&mut self) -> usize {
        let limit = u64::from(self.cfg.spec.batch_size);
        match self.sticky {
            Some((p, produced)) if produced < limit || !self.all_batches_full(p as usize) => p as usize,
            _ => {
                let p = self.next_builtin();
                self.sticky = Some((p as u32, 0));
                p
            }
        }
    }

    /// `BuiltInPartitioner.nextPartition`: with adaptive partitioning, a pick weighted
    /// against the partitions' queues (`updatePartitionLoadStats`); otherwise, or when
    /// every queue is the same length, uniform over the available partitions.
    fn next_builtin(&mut self) -> usize {
        let random = (self.rng.random::<u32>() & 0x7fff_ffff) as usize;
        if let Some((ids, table)) = self.load_stats() {
            let r = random % *table.last().expect("not empty") as usize;
            return ids[table.partition_point(|&c| c as usize <= r)];
        }
        let available = self.available();
        available[random % available.len()]
    }

    /// The cumulative frequency table of KIP-794 (`RecordAccumulator.partitionReady` and
    /// `BuiltInPartitioner.updatePartitionLoadStats`): over the partitions with a known
    /// leader, minus those whose leader has had batches ready but none drained for longer
    /// than `partitioner.availability.timeout.ms`, each weighs `max queue + 1 - queue`,
    /// a queue being the batches waiting to be sent. `None` while some partition never
    /// had a batch, with fewer than two partitions, or when every queue is equal and
    /// nothing is excluded.
    fn load_stats(&self) -> Option<(Vec<usize>, Vec<u32>)> {
        let spec = &self.cfg.spec;
        if !spec.adaptive || self.batched.len() < 2 || !self.batched.iter().all(|&b| b) {
            return None;
        }
        let timeout = spec.availability_timeout;
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        for (i, leader) in self.leaders.iter().enumerate() {
            let Some(leader) = leader else { continue };
            let stalled = self
                .node_stats
                .get(leader)
                .is_some_and(|&(ready, drained)| timeout > Duration::ZERO && ready.since(drained) > timeout);
            if !stalled {
                ids.push(i);
                sizes.push(self.queues[i].iter().filter(|b| !b.in_flight).count() as u32);
            }
        }
        let max = *sizes.iter().max()?;
        if ids.len() == self.batched.len() && sizes.iter().all(|&q| q == max) {
            return None;
        }
        Some((ids, frequency_table(&sizes)))
    }

    fn request_metadata(&mut self, now: Time, out: &mut Out) {
        let brokers = self.info.brokers;
        // The next bootstrap broker that has not just refused us.
        let Some(broker) = (0..brokers)
            .map(|k| (self.bootstrap + k) % brokers + 1)
            .find(|b| self.blocked_until.get(b).is_none_or(|&t| t <= now))
        else {
            self.metadata_retry_at = self.blocked_until.values().copied().min().unwrap_or(now);
            return;
        };
        self.bootstrap = broker;
        self.next_request += 1;
        let id = self.next_request;
        out.send(self.info.broker_node(broker), Msg::MetadataRequest { id });
        let timeout = out.set_timer(
            self.cfg.spec.request_timeout,
            Timer::Producer(ProducerTimer::MetadataTimeout(id)),
        );
        self.metadata_request = Some((id, broker, timeout));
    }

    /// Gives up queued batches older than `delivery.timeout.ms`.
    fn expire(&mut self, now: Time, out: &mut Out) {
        let limit = self.cfg.spec.delivery_timeout;
        if now < self.expiry_floor {
            return;
        }
        for i in 0..self.queues.len() {
            // Batches in flight expire when their request fails; the others here.
            while let Some(k) = self.queues[i]
                .iter()
                .position(|b| !b.in_flight && now.since(b.first_at) >= limit)
            {
                let b = self.queues[i].remove(k).expect("found");
                self.pool_used -= u64::from(b.alloc);
                if let Some((_, seq)) = b.seq {
                    self.mark_unresolved(i, seq + u64::from(b.count));
                }
                out.observe(Obs::Failed {
                    partition: self.cfg.first + i as u32,
                    producer: self.index,
                    first_seq: b.first_seq,
                    count: b.count,
                    reason: FailReason::DeliveryTimeout,
                });
            }
        }
        self.expiry_floor = self
            .queues
            .iter()
            .flatten()
            .filter(|b| !b.in_flight)
            .map(|b| b.first_at + limit)
            .min()
            .unwrap_or(Time::MAX);
    }

    /// Whether the sender may take a batch now (`RecordAccumulator.batchReady`): after its
    /// retry backoff; otherwise once full or lingered, or at once while `send()` is
    /// blocked on memory (`exhausted`).
    fn ready(&self, now: Time, b: &PendingBatch) -> bool {
        if b.attempts > 0 {
            now >= b.retry_at
        } else {
            !b.open || now >= b.first_at + self.cfg.spec.linger || self.held.is_some()
        }
    }

    /// The partition's head batch: the first one not in flight (Kafka's deque holds only
    /// these; a retried batch goes back to its front).
    fn head(&self, i: usize) -> Option<usize> {
        self.queues[i].iter().position(|b| !b.in_flight)
    }

    /// Sends what can go now: produce requests, one per ready broker, each carrying the
    /// head batch of every partition that broker leads (`Sender.sendProducerData`), run
    /// until nothing more can go.
    fn send_ready(&mut self, now: Time, out: &mut Out) {
        if self.cfg.spec.idempotence {
            self.resolve_sequences();
        }
        while self.send_round(now, out) {}
    }

    /// One pass of `Sender.sendProducerData`: the brokers with a sendable partition
    /// (`RecordAccumulator.ready`), less those the network client cannot send to
    /// (`NetworkClient.ready`: reconnect backoff, `max.in.flight.requests.per.connection`),
    /// each drained into one request (`RecordAccumulator.drain`).
    fn send_round(&mut self, now: Time, out: &mut Out) -> bool {
        let mut ready_nodes: Vec<u32> = Vec::new();
        for i in 0..self.queues.len() {
            let Some(k) = self.head(i) else { continue };
            let Some(leader) = self.leaders[i] else {
                // An unknown leader asks for metadata.
                self.metadata_at = None;
                continue;
            };
            if self.ready(now, &self.queues[i][k]) {
                // `NodeLatencyStats.readyTimeMs`, for the partitioner.
                self.node_stats.entry(leader).or_insert((now, now)).0 = now;
                if !ready_nodes.contains(&leader) {
                    ready_nodes.push(leader);
                }
            }
        }
        ready_nodes.sort_unstable();
        let mut sent_any = false;
        for broker in ready_nodes {
            if self.blocked_until.get(&broker).is_some_and(|&t| t > now) {
                continue;
            }
            let in_flight = self.in_flight.values().filter(|r| r.broker == broker).count() as u32;
            if in_flight >= self.cfg.spec.max_in_flight {
                continue;
            }
            let parts = self.drain(now, broker);
            if !parts.is_empty() {
                self.send_request(now, broker, parts, out);
                sent_any = true;
            }
        }
        sent_any
    }

    /// `RecordAccumulator.drainBatchesForOneNode`: walks the partitions `broker` leads
    /// round-robin from where the last drain stopped, taking each one's head batch unless
    /// it is backing off, up to `max.request.size` (a first batch goes alone even when
    /// larger). Linger does not matter here: once the broker is ready, every partition's
    /// head batch goes along. With one request in flight allowed, a partition with a batch
    /// in flight is muted. An idempotent producer stops the drain at a partition whose
    /// sequences are not settled (`shouldStopDrainBatchesForPartition`).
    fn drain(&mut self, now: Time, broker: u32) -> Vec<(usize, usize)> {
        let spec = &self.cfg.spec;
        let led: Vec<usize> = (0..self.queues.len())
            .filter(|&i| self.leaders[i] == Some(broker))
            .collect();
        let mut taken = Vec::new();
        if led.is_empty() {
            return taken;
        }
        let start = self.drain_index.get(&broker).copied().unwrap_or(0) % led.len();
        let mut size = 0u32;
        let mut last = start;
        for step in 0..led.len() {
            let at = (start + step) % led.len();
            let i = led[at];
            last = at;
            let muted = spec.max_in_flight == 1 && self.queues[i].iter().any(|b| b.in_flight);
            let Some(k) = self.head(i).filter(|_| !muted) else {
                continue;
            };
            let b = &self.queues[i][k];
            if b.attempts > 0 && now < b.retry_at {
                continue;
            }
            if !taken.is_empty() && size + b.bytes > spec.max_request_size {
                break;
            }
            if spec.idempotence && self.stop_drain(i, k) {
                break;
            }
            if spec.idempotence && b.seq.is_none() {
                let st = &mut self.seqs[i];
                if st.epoch != self.session {
                    // `maybeUpdateProducerIdAndEpoch`: the partition's batches of the old
                    // epoch are all done; its sequences start again at 0.
                    *st = SeqState {
                        epoch: self.session,
                        ..SeqState::default()
                    };
                }
                let count = u64::from(self.queues[i][k].count);
                self.queues[i][k].seq = Some((self.session, st.next));
                st.next += count;
            }
            size += self.queues[i][k].bytes;
            taken.push((i, k));
        }
        // The next drain starts after the last partition looked at.
        self.drain_index.insert(broker, (last + 1) % led.len());
        taken
    }

    /// `RecordAccumulator.shouldStopDrainBatchesForPartition`: a new batch waits while the
    /// partition has batches of an older epoch still out, or unresolved sequences; a
    /// retried batch waits until every batch before it is done.
    fn stop_drain(&self, i: usize, k: usize) -> bool {
        let st = &self.seqs[i];
        let b = &self.queues[i][k];
        if b.seq.is_none() {
            let outstanding = self.queues[i].iter().any(|b| b.seq.is_some());
            (outstanding && st.epoch != self.session) || st.unresolved.is_some()
        } else {
            k != 0
        }
    }

    /// Sends one produce request with the drained batches.
    fn send_request(&mut self, now: Time, broker: u32, parts: Vec<(usize, usize)>, out: &mut Out) {
        let spec = &self.cfg.spec;
        let acks = match spec.acks {
            Acks::Zero => AcksMode::Zero,
            Acks::One => AcksMode::One,
            Acks::All => AcksMode::All,
        };
        self.node_stats.insert(broker, (now, now));
        let mut batches = Vec::with_capacity(parts.len());
        let mut retried = 0u32;
        for &(i, k) in &parts {
            let b = &mut self.queues[i][k];
            b.open = false;
            b.in_flight = acks != AcksMode::Zero;
            retried += u32::from(b.attempts > 0);
            let (session, seq) = match b.seq {
                Some((epoch, seq)) => (epoch, Some(seq)),
                None => (self.session, None),
            };
            let batch = Batch {
                writer: Writer {
                    producer: self.index,
                    session,
                },
                first_seq: b.first_seq,
                count: b.count,
                bytes: b.bytes,
                seq,
            };
            batches.push((self.cfg.first + i as u32, batch));
        }
        self.next_request += 1;
        let id = self.next_request;
        out.observe(Obs::ProduceSent {
            producer: self.index,
            batches: batches.len() as u32,
            retried,
        });
        let sent: Vec<(Pidx, u64)> = batches.iter().map(|(p, b)| (*p, b.first_seq)).collect();
        let msg = Msg::ProduceRequest {
            id,
            acks,
            idempotent: spec.idempotence,
            timeout_ms: spec.request_timeout.as_millis(),
            batches,
        };
        out.send(self.info.broker_node(broker), msg);
        if acks == AcksMode::Zero {
            // Nothing comes back: the send is complete once it is on the wire. Remove
            // from the back so the positions stay valid.
            let mut parts = parts;
            parts.sort_unstable_by(|a, b| b.cmp(a));
            for (i, k) in parts {
                let b = self.queues[i].remove(k).expect("sent");
                self.pool_used -= u64::from(b.alloc);
                out.observe(Obs::SentUnacknowledged {
                    partition: self.cfg.first + i as u32,
                    producer: self.index,
                    records: b.count,
                });
            }
        } else {
            let timeout = out.set_timer(spec.request_timeout, Timer::Producer(ProducerTimer::RequestTimeout(id)));
            self.in_flight.insert(
                id,
                InFlight {
                    broker,
                    batches: sent,
                    timeout,
                },
            );
        }
    }

    /// Sets a wake-up for the earliest future moment something becomes due. Batches that
    /// are ready but blocked (no leader known, too many requests in flight) wait for the
    /// response or timeout that unblocks them.
    fn schedule(&mut self, now: Time, out: &mut Out) {
        let spec = &self.cfg.spec;
        let mut next = Time::MAX;
        if let Some(held) = &self.held {
            // Blocked in `send()`: until memory frees up (an answer wakes the producer)
            // or `max.block.ms` passes.
            next = next.min(held.since + spec.max_block);
        } else if self.next_record < self.cfg.total_records() {
            // The application hands records over at their due times, but at most once per
            // millisecond: at high rates records arrive in 1ms ticks, so the work grows
            // with time and batches, not with records.
            next = next.min(self.cfg.due(self.next_record).max(now + SEND_TICK));
        }
        for q in &self.queues {
            // The first batch not in flight: when it becomes ready, and when it expires.
            let Some(b) = q.iter().find(|b| !b.in_flight) else {
                continue;
            };
            let ready_at = if b.attempts > 0 {
                b.retry_at
            } else if b.open {
                b.first_at + spec.linger
            } else {
                now
            };
            if ready_at > now {
                next = next.min(ready_at);
            }
            next = next.min(b.first_at + spec.delivery_timeout);
        }
        for &t in self.blocked_until.values() {
            if t > now {
                next = next.min(t);
            }
        }
        if let Some(at) = self.metadata_at {
            next = next.min(at + spec.metadata_max_age);
        } else if self.metadata_request.is_none() {
            next = next.min(self.metadata_retry_at.max(now + spec.retry_backoff));
        }
        if next == Time::MAX || next <= now {
            return;
        }
        if self.wake_at.is_none_or(|w| next < w || w <= now) {
            if let Some(earlier) = self.wake.take() {
                out.cancel_timer(earlier);
            }
            self.wake_at = Some(next);
            self.wake = Some(out.set_timer(next.since(now), Timer::Producer(ProducerTimer::Wake)));
        }
    }

    /// Records the workload hands to `send()` over the run, if the producer is up for all
    /// of it.
    pub fn offered(&self) -> u64 {
        self.cfg.total_records()
    }

    /// Records still in the producer's queues, per partition: handed to `send()`, not yet
    /// acknowledged nor given up. (A record in a blocked `send()` has not been handed
    /// over yet.)
    pub fn pending(&self) -> Vec<(Pidx, u64)> {
        self.queues
            .iter()
            .enumerate()
            .map(|(i, q)| (self.cfg.first + i as u32, q.iter().map(|b| u64::from(b.count)).sum()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Produce requests sent and not yet answered.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn peer(&self, node: NodeId) -> Option<u32> {
        self.info.broker_of(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BuiltInPartitionerTest.adaptivePartitionsTest`: queue sizes 5 0 3 0 1 give the
    /// frequencies 1 6 3 6 5; and the source's own example, 0 3 1 ⇒ 4 1 3 ⇒ 4 5 8.
    #[test]
    fn frequency_table_matches_kafkas_examples() {
        assert_eq!(frequency_table(&[5, 0, 3, 0, 1]), vec![1, 7, 10, 16, 21]);
        let table = frequency_table(&[0, 3, 1]);
        assert_eq!(table, vec![4, 5, 8]);
        let pick = |r: u32| table.partition_point(|&c| c <= r);
        let picks: Vec<usize> = (0..8).map(pick).collect();
        assert_eq!(picks, vec![0, 0, 0, 0, 1, 2, 2, 2]);
    }

    /// With exponent 1 the weights are 1, 1/2, 1/3, 1/4 (sum 25/12), so the cumulative
    /// shares are 12/25, 18/25, 22/25 and 1.
    #[test]
    fn zipf_cdf_follows_the_harmonic_weights() {
        let cdf = zipf_cdf(4, 1.0);
        let scale = (1u64 << 53) as f64;
        for (got, want) in cdf.iter().zip([12.0 / 25.0, 18.0 / 25.0, 22.0 / 25.0, 1.0]) {
            assert!((*got as f64 / scale - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(*cdf.last().unwrap(), 1u64 << 53);
        // Exponent 2 over two keys: weights 1 and 1/4, so the first key takes 4/5.
        let cdf = zipf_cdf(2, 2.0);
        assert_eq!(cdf[0], libm::round(0.8 * scale) as u64);
    }

    fn config(producer: &str) -> ProducerConfig {
        let yaml = format!(
            "name: t\nduration: 10s\ncluster: {{brokers: 1}}\ntopics: [{{name: t}}]\nproducers: [{producer}]\n"
        );
        let spec = crate::scenario::parse("t.yaml", &yaml).unwrap().producers.remove(0);
        ProducerConfig {
            spec,
            first: 0,
            count: 1,
            key_table: Vec::new(),
            key_cdf: vec![],
            stop: Time::from_millis(10_000),
        }
    }

    #[test]
    fn keys_hashed_as_drawn_match_a_table_of_their_names() {
        let mut cfg = config("{name: p, topic: t, rate: 7/s, keys: {count: 100001}}");
        cfg.count = 24;
        for key in [0, 1, 9, 10, 99, 12_345, 100_000] {
            let name = format!("key-{key}");
            let info = cfg.key_info(key);
            assert_eq!(info.bytes as usize, name.len(), "{name}");
            assert_eq!(
                info.partition,
                partitioner::partition_for_key(name.as_bytes(), 24),
                "{name}"
            );
        }
    }

    #[test]
    fn first_due_matches_due() {
        let bursts = "{name: p, topic: t, rate: 7/s, burst: {rate: 3/ms, every: 3s, for: 250ms}}";
        for cfg in [config("{name: p, topic: t, rate: 7/s}"), config(bursts)] {
            for t in [
                0, 1, 142_857, 142_858, 3_000_000, 3_000_333, 3_250_000, 5_000_000, 9_999_999,
            ] {
                let i = cfg.first_due_at_or_after(Time(t));
                assert!(cfg.due(i) >= Time(t));
                assert!(i == 0 || cfg.due(i - 1) < Time(t), "t={t} i={i}");
            }
        }
    }

    /// 10 s at 100/s with bursts of 1000/s for 1 s at 4 s and 8 s: 8 s of base rate
    /// (800 records) and 2 s of bursts (2000 records).
    #[test]
    fn bursts_add_up() {
        let cfg = config("{name: p, topic: t, rate: 100/s, burst: {rate: 1000/s, every: 4s, for: 1s}}");
        assert_eq!(cfg.total_records(), 2800);
        // By 4 s, 400 records at 10 ms apart; the burst then sends one per millisecond.
        assert_eq!(cfg.due(400), Time::from_millis(4000));
        assert_eq!(cfg.due(401), Time::from_millis(4001));
        // 1000 burst records end at 5 s; the base rate resumes.
        assert_eq!(cfg.due(1400), Time::from_millis(5000));
        assert_eq!(cfg.due(1401), Time::from_millis(5010));
    }
}
