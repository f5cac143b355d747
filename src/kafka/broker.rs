//! A broker: the leader side of each partition it leads (produce, fetch, list offsets),
//! the group coordinator's offset store, and its disk: logs and the high-watermark
//! checkpoint survive a process crash; a power loss also drops each log's unflushed tail.
//!
//! Replication is not modelled yet: the first replica of a partition leads it, followers
//! hold no data, and the ISR is the leader alone, so the high watermark is the leader's
//! log end offset.

use crate::kafka::log::{Log, RecordRange};
use crate::kafka::protocol::{AcksMode, ErrorCode, FetchedPartition, Msg, OffsetSpec, PartitionMetadata};
use crate::kafka::{ClusterInfo, Obs, Out, Pidx, Timer};
use crate::sim::{CrashKind, Duration, NodeId, Time};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// How long the OS keeps a dirty page before writing it back (Linux
/// `vm.dirty_expire_centisecs` = 3000), and how often its flusher runs
/// (`vm.dirty_writeback_centisecs` = 500).
pub const PAGE_CACHE_EXPIRE: Duration = Duration::from_millis(30_000);
pub const PAGE_CACHE_WRITEBACK: Duration = Duration::from_millis(5_000);

/// Broker timers.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerTimer {
    /// A parked fetch reached `fetch.max.wait.ms`.
    FetchExpire(u64),
    /// `replica.high.watermark.checkpoint.interval.ms`.
    HighWatermarkCheckpoint,
    /// The OS page-cache flusher, plus `flush.ms`.
    Writeback,
}

/// What survives a process crash.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// One log per partition this broker holds a replica of (`None` elsewhere).
    pub logs: Vec<Option<Log>>,
    pub high_watermark_checkpoint: Vec<u64>,
    /// Committed offsets of the groups this broker coordinates, by (group, partition).
    /// `__consumer_offsets` is a log like any other: a commit reaches the disk only when
    /// flushed, so a power loss can take recent commits back.
    pub offsets: BTreeMap<(u32, Pidx), CommittedOffset>,
}

#[derive(Clone, Debug, Default)]
pub struct CommittedOffset {
    /// The last commit that reached the disk.
    durable: Option<u64>,
    /// Later commits, in the page cache: (commit time, offset).
    cached: VecDeque<(Time, u64)>,
}

impl CommittedOffset {
    pub fn latest(&self) -> Option<u64> {
        self.cached.back().map(|c| c.1).or(self.durable)
    }
    fn flush_older_than(&mut self, cutoff: Time) {
        while self.cached.front().is_some_and(|c| c.0 <= cutoff) {
            self.durable = self.cached.pop_front().map(|c| c.1);
        }
    }
}

impl Disk {
    pub fn committed(&self, group: u32, p: Pidx) -> Option<u64> {
        self.offsets.get(&(group, p)).and_then(CommittedOffset::latest)
    }
}

struct Parked {
    id: u64,
    from: NodeId,
    request: u64,
    partitions: Vec<(Pidx, u64)>,
    min_bytes: u32,
    max_partition_bytes: u32,
}

/// The idempotent-producer state of one producer on one partition (`ProducerStateEntry`).
#[derive(Default)]
struct ProducerEntry {
    session: Option<u32>,
    /// The last five batches: (first sequence, count, base offset).
    window: VecDeque<(u64, u32, u64)>,
}

const BATCHES_TO_RETAIN: usize = 5;

pub struct Broker {
    pub id: u32,
    info: Arc<ClusterInfo>,
    pub disk: Disk,
    high_watermark: Vec<u64>,
    parked: Vec<Parked>,
    next_park: u64,
    producers: BTreeMap<(Pidx, u32), ProducerEntry>,
}

impl Broker {
    pub fn new(id: u32, info: Arc<ClusterInfo>) -> Broker {
        let n = info.partitions.len();
        let logs = info
            .partitions
            .iter()
            .map(|p| p.replicas.contains(&id).then(Log::default))
            .collect();
        Broker {
            id,
            disk: Disk {
                logs,
                high_watermark_checkpoint: vec![0; n],
                offsets: BTreeMap::new(),
            },
            high_watermark: vec![0; n],
            parked: Vec::new(),
            next_park: 0,
            producers: BTreeMap::new(),
            info,
        }
    }

    pub fn log(&self, p: Pidx) -> Option<&Log> {
        self.disk.logs[p as usize].as_ref()
    }

    pub fn high_watermark(&self, p: Pidx) -> u64 {
        self.high_watermark[p as usize]
    }

    pub fn is_leader(&self, p: Pidx) -> bool {
        self.info.leader(p) == Some(self.id)
    }

    pub fn crash(&mut self, kind: CrashKind, out: &mut Out) {
        self.parked.clear();
        self.producers.clear();
        self.high_watermark.iter_mut().for_each(|h| *h = 0);
        if kind == CrashKind::PowerLoss {
            for c in self.disk.offsets.values_mut() {
                c.cached.clear();
            }
            for (p, log) in self.disk.logs.iter_mut().enumerate() {
                if let Some(log) = log {
                    let lost = log.truncate_to(log.flushed_offset());
                    if !lost.is_empty() {
                        out.observe(Obs::LogLost {
                            partition: p as Pidx,
                            from: lost.start,
                            to: lost.end,
                        });
                    }
                }
            }
        }
    }

    pub fn start(&mut self, out: &mut Out) {
        for p in 0..self.info.partitions.len() {
            let Some(log) = &self.disk.logs[p] else { continue };
            // The HW comes back from its checkpoint; a leader whose ISR is itself alone
            // then raises it to its log end offset (`maybeIncrementLeaderHW`).
            let checkpoint = self.disk.high_watermark_checkpoint[p].min(log.end_offset());
            self.high_watermark[p] = if self.is_leader(p as Pidx) {
                log.end_offset()
            } else {
                checkpoint
            };
        }
        out.set_timer(
            self.info.high_watermark_checkpoint_interval,
            Timer::Broker(BrokerTimer::HighWatermarkCheckpoint),
        );
        out.set_timer(PAGE_CACHE_WRITEBACK, Timer::Broker(BrokerTimer::Writeback));
    }

    pub fn on_timer(&mut self, now: Time, timer: BrokerTimer, out: &mut Out) {
        match timer {
            BrokerTimer::FetchExpire(id) => {
                if let Some(i) = self.parked.iter().position(|f| f.id == id) {
                    let f = self.parked.remove(i);
                    let partitions = self.read_fetch(&f.partitions, f.max_partition_bytes);
                    out.send(
                        f.from,
                        Msg::FetchResponse {
                            id: f.request,
                            partitions,
                        },
                    );
                }
            }
            BrokerTimer::HighWatermarkCheckpoint => {
                self.disk
                    .high_watermark_checkpoint
                    .copy_from_slice(&self.high_watermark);
                out.set_timer(self.info.high_watermark_checkpoint_interval, Timer::Broker(timer));
            }
            BrokerTimer::Writeback => {
                let expire_before = Time(now.0.saturating_sub(PAGE_CACHE_EXPIRE.0));
                for c in self.disk.offsets.values_mut() {
                    c.flush_older_than(expire_before);
                }
                for (p, log) in self.disk.logs.iter_mut().enumerate() {
                    let Some(log) = log else { continue };
                    log.flush_older_than(expire_before);
                    let flush_ms = self.info.topic_of(p as Pidx).flush_interval;
                    if let (Some(limit), Some(oldest)) = (flush_ms, log.oldest_unflushed())
                        && now.since(oldest) >= limit
                    {
                        log.flush();
                    }
                }
                out.set_timer(PAGE_CACHE_WRITEBACK, Timer::Broker(timer));
            }
        }
    }

    pub fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        match msg {
            Msg::MetadataRequest { id } => {
                let partitions = (0..self.info.partitions.len() as Pidx)
                    .map(|p| PartitionMetadata {
                        leader: self.info.leader(p),
                        leader_epoch: 0,
                    })
                    .collect();
                out.send(from, Msg::MetadataResponse { id, partitions });
            }
            Msg::ProduceRequest {
                id,
                acks,
                idempotent,
                batches,
            } => {
                let mut results = Vec::with_capacity(batches.len());
                for (p, batch) in batches {
                    let result = self.append(now, p, &batch, acks, idempotent);
                    if result.is_ok() {
                        self.complete_parked(p, out);
                    }
                    results.push((p, result));
                }
                if acks != AcksMode::Zero {
                    out.send(from, Msg::ProduceResponse { id, results });
                }
            }
            Msg::FetchRequest {
                id,
                partitions,
                max_wait_ms,
                min_bytes,
                max_partition_bytes,
            } => {
                let response = self.read_fetch(&partitions, max_partition_bytes);
                let has_error = response.iter().any(|f| f.result.is_err());
                let bytes: u64 = response.iter().map(bytes_of).sum();
                if has_error || bytes >= u64::from(min_bytes) || max_wait_ms == 0 {
                    out.send(
                        from,
                        Msg::FetchResponse {
                            id,
                            partitions: response,
                        },
                    );
                } else {
                    self.next_park += 1;
                    let park = self.next_park;
                    self.parked.push(Parked {
                        id: park,
                        from,
                        request: id,
                        partitions,
                        min_bytes,
                        max_partition_bytes,
                    });
                    out.set_timer(
                        Duration::from_millis(max_wait_ms),
                        Timer::Broker(BrokerTimer::FetchExpire(park)),
                    );
                }
            }
            Msg::ListOffsetsRequest { id, spec, partitions } => {
                let offsets = partitions
                    .into_iter()
                    .map(|p| {
                        let r = if !self.is_leader(p) {
                            Err(ErrorCode::NotLeaderOrFollower)
                        } else {
                            Ok(match spec {
                                OffsetSpec::Earliest => 0,
                                // A read_uncommitted consumer's "latest" is the high watermark.
                                OffsetSpec::Latest => self.high_watermark[p as usize],
                            })
                        };
                        (p, r)
                    })
                    .collect();
                out.send(from, Msg::ListOffsetsResponse { id, offsets });
            }
            Msg::FindCoordinatorRequest { id, group } => {
                out.send(
                    from,
                    Msg::FindCoordinatorResponse {
                        id,
                        coordinator: self.info.coordinators[group as usize],
                    },
                );
            }
            Msg::OffsetCommitRequest { id, group, offsets } => {
                let result = if self.info.coordinators[group as usize] != self.id {
                    Err(ErrorCode::NotCoordinator)
                } else {
                    for (p, offset) in &offsets {
                        let c = self.disk.offsets.entry((group, *p)).or_default();
                        c.cached.push_back((now, *offset));
                        if self
                            .info
                            .offsets_flush_messages
                            .is_some_and(|n| c.cached.len() as u64 >= n)
                        {
                            c.flush_older_than(now);
                        }
                    }
                    Ok(offsets)
                };
                out.send(from, Msg::OffsetCommitResponse { id, result });
            }
            Msg::OffsetFetchRequest { id, group, partitions } => {
                let result = if self.info.coordinators[group as usize] != self.id {
                    Err(ErrorCode::NotCoordinator)
                } else {
                    Ok(partitions
                        .into_iter()
                        .map(|p| (p, self.disk.committed(group, p)))
                        .collect())
                };
                out.send(from, Msg::OffsetFetchResponse { id, result });
            }
            // Responses are for clients; a broker sends requests to no one yet.
            Msg::MetadataResponse { .. }
            | Msg::ProduceResponse { .. }
            | Msg::FetchResponse { .. }
            | Msg::ListOffsetsResponse { .. }
            | Msg::FindCoordinatorResponse { .. }
            | Msg::OffsetCommitResponse { .. }
            | Msg::OffsetFetchResponse { .. } => {}
        }
    }

    /// The leader's append path (`Partition.appendRecordsToLeader`, `UnifiedLog.append`).
    fn append(
        &mut self,
        now: Time,
        p: Pidx,
        batch: &crate::kafka::log::Batch,
        acks: AcksMode,
        idempotent: bool,
    ) -> Result<u64, ErrorCode> {
        if !self.is_leader(p) {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let topic = self.info.topic_of(p);
        // The ISR is the leader alone. KAFKA-15583 (3.7): the requirement is capped at the
        // replication factor.
        let isr_size = 1;
        let effective_min_isr = topic.min_insync_replicas.min(topic.replication_factor);
        if acks == AcksMode::All && isr_size < effective_min_isr {
            return Err(ErrorCode::NotEnoughReplicas);
        }
        let log = self.disk.logs[p as usize].as_mut().expect("a leader holds a replica");
        let producer = batch.writer.producer;
        if idempotent {
            let entry = self.producers.entry((p, producer)).or_insert_with(|| {
                // Rebuilt from the log after a restart, as Kafka rebuilds producer state
                // from its snapshot and log.
                let window = log
                    .last_batches_of(producer, BATCHES_TO_RETAIN)
                    .iter()
                    .map(|r: &RecordRange| (r.first_seq, r.count, r.base_offset))
                    .collect();
                ProducerEntry { session: None, window }
            });
            if let Some(&(_, _, base)) = entry
                .window
                .iter()
                .find(|(seq, count, _)| *seq == batch.first_seq && *count == batch.count)
            {
                return Ok(base);
            }
            let in_sequence = match (entry.session, entry.window.back()) {
                (Some(s), Some(&(seq, count, _))) if s == batch.writer.session => {
                    batch.first_seq == seq + u64::from(count)
                }
                _ => true,
            };
            if !in_sequence {
                return Err(ErrorCode::OutOfOrderSequenceNumber);
            }
        }
        let base = log.append(batch, 0, now);
        if let Some(n) = topic.flush_messages
            && log.unflushed_records() >= n
        {
            log.flush();
        }
        let leo = log.end_offset();
        self.high_watermark[p as usize] = leo;
        if idempotent {
            let entry = self.producers.get_mut(&(p, producer)).expect("inserted above");
            entry.session = Some(batch.writer.session);
            entry.window.push_back((batch.first_seq, batch.count, base));
            if entry.window.len() > BATCHES_TO_RETAIN {
                entry.window.pop_front();
            }
        }
        Ok(base)
    }

    /// Reads a consumer fetch: records below the high watermark (`FetchIsolation.HIGH_WATERMARK`).
    fn read_fetch(&self, partitions: &[(Pidx, u64)], max_partition_bytes: u32) -> Vec<FetchedPartition> {
        partitions
            .iter()
            .map(|&(p, offset)| {
                let hw = self.high_watermark[p as usize];
                let result = match self.log(p) {
                    Some(log) if self.is_leader(p) => {
                        if offset > log.end_offset() {
                            Err(ErrorCode::OffsetOutOfRange)
                        } else {
                            Ok(log.read(offset, hw, max_partition_bytes))
                        }
                    }
                    _ => Err(ErrorCode::NotLeaderOrFollower),
                };
                FetchedPartition {
                    partition: p,
                    fetch_offset: offset,
                    result,
                    high_watermark: hw,
                }
            })
            .collect()
    }

    /// Answers parked fetches that now have enough data (`DelayedFetch.tryComplete`).
    fn complete_parked(&mut self, p: Pidx, out: &mut Out) {
        let mut i = 0;
        while i < self.parked.len() {
            let f = &self.parked[i];
            if !f.partitions.iter().any(|(q, _)| *q == p) {
                i += 1;
                continue;
            }
            let response = self.read_fetch(&f.partitions, f.max_partition_bytes);
            let bytes: u64 = response.iter().map(bytes_of).sum();
            if bytes >= u64::from(f.min_bytes) {
                let f = self.parked.remove(i);
                out.send(
                    f.from,
                    Msg::FetchResponse {
                        id: f.request,
                        partitions: response,
                    },
                );
            } else {
                i += 1;
            }
        }
    }
}

fn bytes_of(f: &FetchedPartition) -> u64 {
    match &f.result {
        Ok(ranges) => ranges.iter().map(|r| u64::from(r.bytes)).sum(),
        Err(_) => 0,
    }
}
