//! A partition replica's log: batches, never single records. Offsets, the log end offset
//! (LEO), the flushed prefix, and range reads (DESIGN.md §3).

use crate::kafka::Pidx;
use crate::kafka::group::GroupSnapshot;
use crate::sim::{Duration, Time};
use serde::Serialize;
use std::cell::{Ref, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// Who wrote a batch: the producer instance and its session, which is the idempotent
/// producer's epoch: bumped at every restart (where Kafka's producer would get a new
/// producer id, which is as good) and at every local epoch bump (KIP-360).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
pub struct Writer {
    pub producer: u32,
    pub session: u32,
}

/// A producer batch: `count` records with sequence numbers `first_seq..first_seq+count`
/// of one producer on one partition.
///
/// `first_seq` names the records (the producer's own count of records it gave the
/// partition, which the checks follow); `seq` is the sequence number on the wire of an
/// idempotent producer, assigned when the batch is first drained and restarted at 0 by
/// an epoch bump (`ProducerBatch.baseSequence`), and `None` without idempotence.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct Batch {
    pub writer: Writer,
    pub first_seq: u64,
    pub count: u32,
    pub bytes: u32,
    pub seq: Option<u64>,
}

/// A run of consecutive records as they sit in a log: offsets
/// `base_offset..base_offset+count` hold sequences `first_seq..first_seq+count`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct RecordRange {
    pub base_offset: u64,
    pub producer: u32,
    pub first_seq: u64,
    pub count: u32,
    pub bytes: u32,
    pub leader_epoch: u32,
    /// The writer's producer epoch (its session) and the wire sequence of the first
    /// record, for an idempotent producer: what a replica rebuilds its producer state
    /// from.
    #[serde(skip)]
    pub producer_epoch: u32,
    #[serde(skip)]
    pub seq: Option<u64>,
}

impl RecordRange {
    pub fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
    /// The first `n` records.
    pub fn head(&self, n: u32) -> RecordRange {
        let n = n.min(self.count);
        RecordRange {
            count: n,
            bytes: scale(self.bytes, n, self.count),
            ..*self
        }
    }
    /// Everything from `offset` on.
    pub fn from_offset(&self, offset: u64) -> RecordRange {
        let skip = offset.saturating_sub(self.base_offset).min(u64::from(self.count)) as u32;
        RecordRange {
            base_offset: self.base_offset + u64::from(skip),
            first_seq: self.first_seq + u64::from(skip),
            seq: self.seq.map(|s| s + u64::from(skip)),
            count: self.count - skip,
            bytes: scale(self.bytes, self.count - skip, self.count),
            ..*self
        }
    }
}

/// The index of the first of `ranges` (in offset order) that ends after `offset`, or
/// `ranges.len()`. Reads, appends and comparisons happen near a log's end, so this looks
/// at the last few ranges before it searches the rest.
pub fn first_ending_after<T>(ranges: &[T], offset: u64, end: impl Fn(&T) -> u64) -> usize {
    let mut i = ranges.len();
    for _ in 0..8 {
        if i == 0 || end(&ranges[i - 1]) <= offset {
            return i;
        }
        i -= 1;
    }
    ranges[..i].partition_point(|r| end(r) <= offset)
}

/// Pushes onto a vector that grows by a quarter when full rather than doubling, so that a
/// long log's spare room stays small (large reallocations move pages, not bytes).
fn push_compact<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.capacity() / 4).max(16));
    }
    v.push(item);
}

fn scale(bytes: u32, part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (u64::from(bytes) * u64::from(part) / u64::from(whole)) as u32
    }
}

/// A batch as a log keeps it, in 24 bytes, since a partition keeps one per batch for the
/// whole run: its offset, size and the low half of its first sequence, and what it shares
/// with the other batches of its writer (producer, epochs, the high half of its first
/// sequence, how its wire sequence relates to it) as an index into the store's
/// [`Writers`]. Packing is canonical: two entries are equal when their batches are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    base_offset: u64,
    writer: u32,
    count: u32,
    bytes: u32,
    seq_low: u32,
}

impl Entry {
    fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
    /// The first `n` records.
    fn head(&self, n: u32) -> Entry {
        let n = n.min(self.count);
        Entry {
            count: n,
            bytes: scale(self.bytes, n, self.count),
            ..*self
        }
    }
}

/// What the batches of one writer in one partition have in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct WriterKey {
    producer: u32,
    producer_epoch: u32,
    leader_epoch: u32,
    /// The high 32 bits of the first sequence.
    seq_high: u32,
    /// `first_seq - seq` (wrapping), or `NO_SEQ` without idempotence.
    wire_delta: u64,
}

const NO_SEQ: u64 = u64::MAX;

/// The writers of a store's batches, each kept once.
#[derive(Debug, Default)]
struct Writers {
    keys: Vec<WriterKey>,
    index: BTreeMap<WriterKey, u32>,
}

impl Writers {
    fn pack(&mut self, r: &RecordRange) -> Entry {
        let key = WriterKey {
            producer: r.producer,
            producer_epoch: r.producer_epoch,
            leader_epoch: r.leader_epoch,
            seq_high: (r.first_seq >> 32) as u32,
            wire_delta: r.seq.map_or(NO_SEQ, |s| r.first_seq.wrapping_sub(s)),
        };
        let writer = *self.index.entry(key).or_insert_with(|| {
            self.keys.push(key);
            (self.keys.len() - 1) as u32
        });
        Entry {
            base_offset: r.base_offset,
            writer,
            count: r.count,
            bytes: r.bytes,
            seq_low: r.first_seq as u32,
        }
    }

    fn range(&self, e: &Entry) -> RecordRange {
        let w = &self.keys[e.writer as usize];
        let first_seq = (u64::from(w.seq_high) << 32) | u64::from(e.seq_low);
        RecordRange {
            base_offset: e.base_offset,
            producer: w.producer,
            first_seq,
            count: e.count,
            bytes: e.bytes,
            leader_epoch: w.leader_epoch,
            producer_epoch: w.producer_epoch,
            seq: (w.wire_delta != NO_SEQ).then(|| first_seq.wrapping_sub(w.wire_delta)),
        }
    }

    /// Whether `a` and `b` hold the same record at `offset` (which both cover): the same
    /// producer's same sequence, under the same leader epoch.
    fn same_record_at(&self, a: &Entry, b: &Entry, offset: u64) -> bool {
        let (ra, rb) = (self.range(a), self.range(b));
        ra.producer == rb.producer
            && ra.leader_epoch == rb.leader_epoch
            && ra.first_seq + (offset - ra.base_offset) == rb.first_seq + (offset - rb.base_offset)
    }
}

/// The writer of the group coordinator's batches in `__consumer_offsets`: their
/// `first_seq` numbers their records in the partition's [`Store`].
pub const COORDINATOR: u32 = u32::MAX;

/// One record the group coordinator writes to `__consumer_offsets`: a group's committed
/// offset of one partition (`OffsetCommit`, key type 1), or the group's metadata
/// (`GroupMetadata`, key type 2), a tombstone-free snapshot of its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Offset { group: u32, partition: Pidx, offset: u64 },
    Group { group: u32, snapshot: u32 },
}

/// A [`CoordinatorRecord`] as the store keeps it, in 16 bytes: the partition `GROUP`
/// marks group metadata, whose snapshot number is the value.
#[derive(Clone, Copy, Debug)]
struct PackedRecord {
    group: u32,
    partition: u32,
    value: u64,
}

const GROUP: u32 = u32::MAX;

impl PackedRecord {
    fn is_dropped(&self) -> bool {
        self.group == DROPPED.group && self.partition == DROPPED.partition
    }
    fn of(r: &CoordinatorRecord) -> PackedRecord {
        match *r {
            CoordinatorRecord::Offset {
                group,
                partition,
                offset,
            } => PackedRecord {
                group,
                partition,
                value: offset,
            },
            CoordinatorRecord::Group { group, snapshot } => PackedRecord {
                group,
                partition: GROUP,
                value: u64::from(snapshot),
            },
        }
    }
    fn record(&self) -> CoordinatorRecord {
        if self.partition == GROUP {
            CoordinatorRecord::Group {
                group: self.group,
                snapshot: self.value as u32,
            }
        } else {
            CoordinatorRecord::Offset {
                group: self.group,
                partition: self.partition,
                offset: self.value,
            }
        }
    }
}

/// The coordinator's records of a store, by number, without those [`Store::compact`]
/// dropped: in chunks of `RECORD_CHUNK` numbers, each dense until it is full and half of
/// it is dropped, then only its live records.
#[derive(Debug, Default)]
struct Records {
    chunks: Vec<RecordChunk>,
    len: u64,
}

#[derive(Debug)]
enum RecordChunk {
    /// Every record of the chunk; `dropped` of them are dropped and marked `DROPPED`.
    Dense { records: Vec<PackedRecord>, dropped: usize },
    /// The live records, by their place in the chunk.
    Sparse(Vec<(u32, PackedRecord)>),
}

const RECORD_CHUNK: u64 = 1024;

/// A dropped record in a dense chunk.
const DROPPED: PackedRecord = PackedRecord {
    group: u32::MAX,
    partition: u32::MAX,
    value: u64::MAX,
};

impl Records {
    /// Adds `record` and returns its number.
    fn push(&mut self, record: PackedRecord) -> u64 {
        match self.chunks.last_mut() {
            Some(RecordChunk::Dense { records, .. }) if (records.len() as u64) < RECORD_CHUNK => records.push(record),
            // Full (a chunk goes sparse only when full): a new one.
            _ => {
                let mut records = Vec::with_capacity(RECORD_CHUNK as usize);
                records.push(record);
                self.chunks.push(RecordChunk::Dense { records, dropped: 0 });
            }
        }
        self.len += 1;
        self.len - 1
    }

    fn get(&self, n: u64) -> Option<PackedRecord> {
        let at = (n % RECORD_CHUNK) as u32;
        match self.chunks.get((n / RECORD_CHUNK) as usize)? {
            RecordChunk::Dense { records, .. } => records.get(at as usize).copied().filter(|r| !r.is_dropped()),
            RecordChunk::Sparse(live) => live.binary_search_by_key(&at, |l| l.0).ok().map(|i| live[i].1),
        }
    }

    fn drop(&mut self, n: u64) {
        let at = (n % RECORD_CHUNK) as u32;
        let chunk = &mut self.chunks[(n / RECORD_CHUNK) as usize];
        match chunk {
            RecordChunk::Dense { records, dropped } => {
                records[at as usize] = DROPPED;
                *dropped += 1;
                let full = records.len() as u64 == RECORD_CHUNK;
                if full && *dropped * 2 >= records.len() {
                    let mut live: Vec<_> = (0u32..)
                        .zip(records.iter())
                        .filter(|(_, r)| !r.is_dropped())
                        .map(|(i, r)| (i, *r))
                        .collect();
                    live.shrink_to_fit();
                    *chunk = RecordChunk::Sparse(live);
                }
            }
            RecordChunk::Sparse(live) => {
                if let Ok(i) = live.binary_search_by_key(&at, |l| l.0) {
                    live.remove(i);
                    if live.len() <= live.capacity() / 4 {
                        live.shrink_to_fit();
                    }
                }
            }
        }
    }
}

/// The batches of one partition that its replicas agree on, kept once for all of them.
/// Each replica's log begins with a prefix of these (`shared`); whatever else it holds
/// (a diverging tail, while it has one) it keeps itself. The store is bookkeeping of the
/// simulator's memory, not a Kafka component: no replica learns anything through it.
#[derive(Debug, Default)]
pub struct Store {
    entries: Vec<Entry>,
    writers: Writers,
    /// Per replica: how many of `entries` begin its log, and what follows them in it.
    replicas: Vec<Replica>,
    /// In `__consumer_offsets`, what the coordinator's records say, numbered by the
    /// `first_seq` of their batches (so a batch cut in two still names its records), and
    /// the group snapshots they point to. Never truncated: a number names one record,
    /// though [`Store::compact`] drops the superseded ones.
    records: Records,
    snapshots: Vec<GroupSnapshot>,
    /// How many of `entries` compaction went through, and per key (group, and partition
    /// or `GROUP`) the number of its last record among them.
    compacted: usize,
    latest: BTreeMap<(u32, u32), u64>,
    /// Whether it may forget superseded records at all (see [`Store::compacting`]).
    forgets: bool,
}

/// One partition's store, shared by the logs of its replicas (a run is single-threaded).
pub type SharedStore = Rc<RefCell<Store>>;

/// One replica's log in its partition's store: the store's first `shared` batches, then
/// `own`, the batches it holds that the store does not (a diverging tail, while it has
/// one).
#[derive(Debug, Default)]
struct Replica {
    id: u32,
    shared: usize,
    own: Vec<Entry>,
    /// Its log's flushed offset (below it the log survives a power loss), and the high
    /// watermark its broker last checkpointed.
    flushed: u64,
    checkpoint: u64,
}

impl Store {
    /// A store that forgets superseded commit records, for a cluster whose followers
    /// truncate by leader epochs. One whose followers truncate to their high watermark
    /// (`cluster.truncation` before KIP-279) keeps them all: a follower takes a lower
    /// high watermark from a new leader and may truncate below its checkpoint.
    pub fn compacting() -> SharedStore {
        Rc::new(RefCell::new(Store {
            forgets: true,
            ..Store::default()
        }))
    }

    /// What no replica shares any more leaves the store.
    fn trim(&mut self) {
        let max = self.replicas.iter().map(|r| r.shared).max().unwrap_or(0);
        self.entries.truncate(max);
        // Compaction never goes where a truncation reaches; should one reach there
        // anyway, the batches written in place of the compacted ones compact again.
        self.compacted = self.compacted.min(self.entries.len());
    }

    /// Drops the coordinator's records that a later record of the same key supersedes
    /// where no replica can lose it: in the batches every replica's log holds, below each
    /// one's flushed offset and checkpointed high watermark. With leader epochs no
    /// truncation or power loss reaches below that, and every load and read there sees
    /// the later record (as Kafka's log cleaner keeps only a key's last record below the
    /// high watermark). Only a store made by [`Store::compacting`] forgets.
    fn compact(&mut self) {
        if !self.forgets || self.records.len == 0 {
            return;
        }
        let Some(floor) = self
            .replicas
            .iter()
            .map(|r| {
                let shared_end = self.entries[..r.shared].last().map_or(0, Entry::end_offset);
                shared_end.min(r.flushed).min(r.checkpoint)
            })
            .min()
        else {
            return;
        };
        while let Some(e) = self.entries.get(self.compacted).filter(|e| e.end_offset() <= floor) {
            let range = self.writers.range(e);
            self.compacted += 1;
            if range.producer != COORDINATOR {
                continue;
            }
            for n in range.first_seq..range.first_seq + u64::from(range.count) {
                let Some(r) = self.records.get(n) else { continue };
                if let Some(old) = self.latest.insert((r.group, r.partition), n) {
                    self.records.drop(old);
                }
            }
        }
    }

    fn view(&self, slot: usize) -> View<'_> {
        let r = &self.replicas[slot];
        View {
            prefix: &self.entries[..r.shared],
            own: &r.own,
            writers: &self.writers,
        }
    }

    fn slot(&self, replica: u32) -> Option<usize> {
        self.replicas.iter().position(|r| r.id == replica)
    }

    /// The log end offset of `replica`'s log (0 without one).
    pub fn end_offset(&self, replica: u32) -> u64 {
        self.slot(replica).map_or(0, |s| self.view(s).end_offset())
    }

    /// The batch of `replica`'s log that holds `offset`.
    pub fn range_at(&self, replica: u32, offset: u64) -> Option<RecordRange> {
        let v = self.view(self.slot(replica)?);
        v.entry_at(offset).map(|e| v.writers.range(e))
    }

    /// The first offset in `from..to` where the logs of `a` and `b` differ: one lacks
    /// it, or holds another record or the same under another leader epoch. Below both
    /// shared prefixes they agree.
    pub fn first_difference(&self, a: u32, b: u32, from: u64, to: u64) -> Option<u64> {
        let (Some(sa), Some(sb)) = (self.slot(a), self.slot(b)) else {
            return (from < to).then_some(from);
        };
        let (va, vb) = (self.view(sa), self.view(sb));
        let common = va.prefix.len().min(vb.prefix.len());
        let shared_end = va.prefix[..common].last().map_or(0, Entry::end_offset);
        let mut pos = from.max(shared_end);
        while pos < to {
            let (Some(ea), Some(eb)) = (va.entry_at(pos), vb.entry_at(pos)) else {
                return Some(pos);
            };
            if !va.writers.same_record_at(ea, eb, pos) {
                return Some(pos);
            }
            pos = ea.end_offset().min(eb.end_offset()).min(to);
        }
        None
    }
}

/// A replica's log: its part of the partition's [`Store`]. Offsets, the log end offset,
/// the flushed prefix and range reads work on the store's prefix and its own batches as
/// one.
#[derive(Debug)]
pub struct Log {
    store: SharedStore,
    /// Its place in the store's `replicas`.
    slot: usize,
    /// When each batch above the flushed offset (kept in the store's `Replica`) was
    /// appended, oldest first (the page cache's write-back flushes by age).
    unflushed: AppendTimes,
}

impl Default for Log {
    /// A log with a store of its own.
    fn default() -> Log {
        Log::new(SharedStore::default(), 0)
    }
}

/// When each unflushed batch of a log was appended, oldest first, in 4 bytes each while
/// they span less than 71 minutes of simulated time (the page cache writes back after 30
/// seconds, so only a broker back from a long crash with dirty pages spans more):
/// microseconds after `base`.
#[derive(Debug, Default)]
struct AppendTimes {
    base: Time,
    narrow: VecDeque<u32>,
    /// Used instead once a time does not fit.
    wide: Option<VecDeque<Time>>,
}

impl AppendTimes {
    fn push(&mut self, at: Time) {
        if self.wide.is_none() {
            if self.narrow.is_empty() {
                self.base = at;
            }
            if at.0.saturating_sub(self.base.0) > u64::from(u32::MAX)
                && let Some(&front) = self.narrow.front()
            {
                // Count from the oldest time kept instead.
                self.narrow.iter_mut().for_each(|d| *d -= front);
                self.base += Duration(u64::from(front));
            }
            if let Some(d) = at.0.checked_sub(self.base.0).and_then(|d| u32::try_from(d).ok()) {
                self.narrow.push_back(d);
                return;
            }
        }
        let base = self.base;
        let wide = self
            .wide
            .get_or_insert_with(|| self.narrow.drain(..).map(|d| base + Duration(u64::from(d))).collect());
        wide.push_back(at);
    }

    fn len(&self) -> usize {
        self.wide.as_ref().map_or(self.narrow.len(), VecDeque::len)
    }

    fn get(&self, i: usize) -> Time {
        match &self.wide {
            Some(wide) => wide[i],
            None => self.base + Duration(u64::from(self.narrow[i])),
        }
    }

    /// How many were appended at or before `cutoff`.
    fn count_until(&self, cutoff: Time) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid) <= cutoff {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn pop_front(&mut self, n: usize) {
        match &mut self.wide {
            Some(wide) => drop(wide.drain(..n)),
            None => drop(self.narrow.drain(..n)),
        }
        self.narrow_again();
    }

    fn pop_back(&mut self, n: usize) {
        let keep = self.len().saturating_sub(n);
        match &mut self.wide {
            Some(wide) => wide.truncate(keep),
            None => self.narrow.truncate(keep),
        }
        self.narrow_again();
    }

    fn clear(&mut self) {
        self.pop_front(self.len());
    }

    /// Back to 4 bytes a time once the times kept fit in them again.
    fn narrow_again(&mut self) {
        let Some(wide) = &self.wide else { return };
        let (Some(&first), Some(&last)) = (wide.front(), wide.back()) else {
            self.wide = None;
            self.narrow = VecDeque::new();
            return;
        };
        if last.0 - first.0 <= u64::from(u32::MAX) {
            self.narrow = wide.iter().map(|t| (t.0 - first.0) as u32).collect();
            self.base = first;
            self.wide = None;
        }
    }
}

/// A log's batches in offset order: the shared prefix, then its own.
struct View<'a> {
    prefix: &'a [Entry],
    own: &'a [Entry],
    writers: &'a Writers,
}

impl View<'_> {
    fn len(&self) -> usize {
        self.prefix.len() + self.own.len()
    }
    fn get(&self, i: usize) -> Option<&Entry> {
        match i.checked_sub(self.prefix.len()) {
            None => self.prefix.get(i),
            Some(j) => self.own.get(j),
        }
    }
    fn end_offset(&self) -> u64 {
        self.own.last().or(self.prefix.last()).map_or(0, Entry::end_offset)
    }
    /// The batch that holds `offset`, if any.
    fn entry_at(&self, offset: u64) -> Option<&Entry> {
        self.get(self.first_ending_after(offset))
            .filter(|e| e.base_offset <= offset)
    }
    /// The index of the first batch that ends after `offset`.
    fn first_ending_after(&self, offset: u64) -> usize {
        match self.own.first() {
            Some(o) if o.base_offset <= offset => {
                self.prefix.len() + first_ending_after(self.own, offset, Entry::end_offset)
            }
            _ => first_ending_after(self.prefix, offset, Entry::end_offset),
        }
    }
}

impl Log {
    /// Replica `replica`'s log of the partition whose batches `store` keeps.
    pub fn new(store: SharedStore, replica: u32) -> Log {
        let slot = {
            let mut st = store.borrow_mut();
            let slot = st.slot(replica).unwrap_or_else(|| {
                st.replicas.push(Replica {
                    id: replica,
                    ..Replica::default()
                });
                st.replicas.len() - 1
            });
            st.replicas[slot].shared = 0;
            st.replicas[slot].own.clear();
            st.replicas[slot].flushed = 0;
            st.replicas[slot].checkpoint = 0;
            st.trim();
            slot
        };
        Log {
            store,
            slot,
            unflushed: AppendTimes::default(),
        }
    }

    /// The partition's store, which this log is part of.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.store.borrow().view(self.slot))
    }

    /// The log end offset: the offset the next record will get.
    pub fn end_offset(&self) -> u64 {
        self.with_view(|v| v.end_offset())
    }

    /// Offsets below this are on disk and survive a power loss; always a batch boundary.
    pub fn flushed_offset(&self) -> u64 {
        self.store.borrow().replicas[self.slot].flushed
    }

    pub fn unflushed_records(&self) -> u64 {
        self.end_offset() - self.flushed_offset()
    }

    /// Appends a batch and returns its base offset.
    pub fn append(&mut self, batch: &Batch, leader_epoch: u32, now: Time) -> u64 {
        let base_offset = self.end_offset();
        let range = RecordRange {
            base_offset,
            producer: batch.writer.producer,
            first_seq: batch.first_seq,
            count: batch.count,
            bytes: batch.bytes,
            leader_epoch,
            producer_epoch: batch.writer.session,
            seq: batch.seq,
        };
        self.push(&range, now);
        base_offset
    }

    /// Appends records copied from a leader's log (a follower's append): same producer,
    /// sequences and leader epoch, at this log's end. Returns their base offset here.
    pub fn append_range(&mut self, r: &RecordRange, now: Time) -> u64 {
        let base_offset = self.end_offset();
        self.push(&RecordRange { base_offset, ..*r }, now);
        base_offset
    }

    /// Appends the group coordinator's `records` as one batch (`CoordinatorPartitionWriter
    /// .append`) and returns it as it sits in the log.
    pub fn append_coordinator(
        &mut self,
        records: &[CoordinatorRecord],
        bytes: u32,
        leader_epoch: u32,
        now: Time,
    ) -> RecordRange {
        let first_seq = {
            let mut store = self.store.borrow_mut();
            let first = store.records.len;
            for r in records {
                store.records.push(PackedRecord::of(r));
            }
            first
        };
        let range = RecordRange {
            base_offset: self.end_offset(),
            producer: COORDINATOR,
            first_seq,
            count: records.len() as u32,
            bytes,
            leader_epoch,
            producer_epoch: 0,
            seq: None,
        };
        self.push(&range, now);
        range
    }

    /// Keeps a group snapshot for a [`CoordinatorRecord::Group`] to point to.
    pub fn keep_snapshot(&mut self, snapshot: GroupSnapshot) -> u32 {
        let mut store = self.store.borrow_mut();
        store.snapshots.push(snapshot);
        (store.snapshots.len() - 1) as u32
    }

    pub fn snapshot(&self, i: u32) -> GroupSnapshot {
        self.store.borrow().snapshots[i as usize].clone()
    }

    /// The coordinator's records in this log below `until`, in offset order, each with
    /// its offset (what `CoordinatorLoaderImpl` replays).
    pub fn coordinator_records(&self, until: u64) -> Vec<(u64, CoordinatorRecord)> {
        let store = self.store.borrow();
        let mut out = Vec::new();
        for r in self.ranges().filter(|r| r.producer == COORDINATOR) {
            for k in 0..u64::from(r.count) {
                if r.base_offset + k >= until {
                    return out;
                }
                // A record compaction dropped has a later one of its key in this log.
                if let Some(record) = store.records.get(r.first_seq + k) {
                    out.push((r.base_offset + k, record.record()));
                }
            }
        }
        out
    }

    /// Appends `e` at the end: into the store when the store ends where this log does (the
    /// first replica to write it) or holds the same batch there (a replica copying it),
    /// and into `own` otherwise.
    fn push(&mut self, r: &RecordRange, now: Time) {
        self.unflushed.push(now);
        let mut store = self.store.borrow_mut();
        let Store {
            entries,
            replicas,
            writers,
            ..
        } = &mut *store;
        let e = writers.pack(r);
        let r = &mut replicas[self.slot];
        if !r.own.is_empty() && r.shared == entries.len() {
            // The store lost the tail this log diverged from: its own batches become
            // the store's.
            entries.append(&mut r.own);
            r.shared = entries.len();
        }
        if r.own.is_empty() {
            if r.shared == entries.len() {
                push_compact(entries, e);
            } else if entries[r.shared] != e {
                r.own.push(e);
                return;
            }
            r.shared += 1;
        } else {
            r.own.push(e);
        }
    }

    pub fn flush(&mut self) {
        self.set_flushed(self.end_offset());
        self.unflushed.clear();
    }

    /// This replica's broker checkpointed `hw` as the partition's high watermark.
    pub fn checkpoint_high_watermark(&mut self, hw: u64) {
        let mut store = self.store.borrow_mut();
        store.replicas[self.slot].checkpoint = hw;
        store.compact();
    }

    /// The flushed offset moved; the store may compact.
    fn set_flushed(&mut self, offset: u64) {
        let mut store = self.store.borrow_mut();
        store.replicas[self.slot].flushed = offset;
        store.compact();
    }

    /// Flushes every batch appended at or before `cutoff` (the OS writing back old dirty
    /// pages).
    pub fn flush_older_than(&mut self, cutoff: Time) {
        let n = self.unflushed.count_until(cutoff);
        if n > 0 {
            self.set_flushed(self.offset_after_unflushed_batches(n));
            self.unflushed.pop_front(n);
        }
    }

    /// How many batches lie (at least partly) above the flushed offset.
    pub fn unflushed_batches(&self) -> usize {
        self.unflushed.len()
    }

    /// The end offset of the `n`th unflushed batch (the flushed offset for `n = 0`).
    pub fn offset_after_unflushed_batches(&self, n: usize) -> u64 {
        if n == 0 {
            return self.flushed_offset();
        }
        self.with_view(|v| {
            let first = v.len() - self.unflushed.len();
            v.get(first + n - 1).map_or(v.end_offset(), Entry::end_offset)
        })
    }

    /// Drops everything from `offset` on. Returns the offsets removed.
    pub fn truncate_to(&mut self, offset: u64) -> std::ops::Range<u64> {
        let end = self.end_offset();
        if offset < end {
            let (len, i, head) = self.with_view(|v| {
                let i = v.first_ending_after(offset);
                let head = v
                    .get(i)
                    .filter(|e| e.base_offset < offset)
                    .map(|e| e.head((offset - e.base_offset) as u32));
                (v.len(), i, head)
            });
            // A batch cut in two keeps its time; the batches after it go.
            let removed = len - i - usize::from(head.is_some());
            self.unflushed.pop_back(removed);
            let mut store = self.store.borrow_mut();
            let r = &mut store.replicas[self.slot];
            if i >= r.shared {
                r.own.truncate(i - r.shared);
            } else {
                r.own.clear();
                r.shared = i;
            }
            r.own.extend(head);
            store.trim();
            drop(store);
        }
        self.set_flushed(self.flushed_offset().min(self.end_offset()));
        offset.min(end)..end
    }

    /// Reads from `from` up to (not including) `until`, at most `max_bytes` bytes except
    /// that the first batch is always returned whole (Kafka's limits are soft).
    pub fn read(&self, from: u64, until: u64, max_bytes: u32) -> Vec<RecordRange> {
        self.with_view(|v| {
            let mut out = Vec::new();
            let mut bytes: u64 = 0;
            for i in v.first_ending_after(from)..v.len() {
                let e = v.get(i).expect("within the log");
                if e.base_offset >= until {
                    break;
                }
                let mut r = v.writers.range(e).from_offset(from);
                if r.end_offset() > until {
                    r = r.head((until - r.base_offset) as u32);
                }
                if !out.is_empty() && bytes + u64::from(r.bytes) > u64::from(max_bytes) {
                    break;
                }
                bytes += u64::from(r.bytes);
                out.push(r);
            }
            out
        })
    }

    /// Every record range in the log, in offset order.
    pub fn ranges(&self) -> Ranges<'_> {
        let store = self.store.borrow();
        Ranges {
            back: store.view(self.slot).len(),
            store,
            slot: self.slot,
            front: 0,
        }
    }
}

/// A log's record ranges, copied out one by one (see [`Log::ranges`]).
pub struct Ranges<'a> {
    store: Ref<'a, Store>,
    slot: usize,
    front: usize,
    back: usize,
}

impl Ranges<'_> {
    fn at(&self, i: usize) -> RecordRange {
        let v = self.store.view(self.slot);
        v.writers.range(v.get(i).expect("within the log"))
    }
}

impl Iterator for Ranges<'_> {
    type Item = RecordRange;
    fn next(&mut self) -> Option<RecordRange> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.at(self.front - 1)
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.back - self.front, Some(self.back - self.front))
    }
    fn last(mut self) -> Option<RecordRange> {
        self.next_back()
    }
}

impl ExactSizeIterator for Ranges<'_> {}

impl DoubleEndedIterator for Ranges<'_> {
    fn next_back(&mut self) -> Option<RecordRange> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.at(self.back)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, count: u32) -> Batch {
        Batch {
            writer: Writer {
                producer: 1,
                session: 0,
            },
            first_seq: seq,
            count,
            bytes: count * 10,
            seq: Some(seq),
        }
    }

    #[test]
    fn the_search_from_the_end_agrees_with_a_binary_search() {
        let ends: Vec<u64> = (1..=40).map(|i| i * 3).collect();
        for offset in 0..130 {
            let expected = ends.partition_point(|&e| e <= offset);
            assert_eq!(first_ending_after(&ends, offset, |&e| e), expected, "offset {offset}");
        }
        assert_eq!(first_ending_after(&[] as &[u64], 5, |&e| e), 0);
    }

    /// A log's batches as (base offset, first sequence, count).
    fn spans(log: &Log) -> Vec<(u64, u64, u32)> {
        log.ranges().map(|r| (r.base_offset, r.first_seq, r.count)).collect()
    }

    /// How many batches `log` holds of its own, outside the store.
    fn own(log: &Log) -> usize {
        log.store.borrow().replicas[log.slot].own.len()
    }

    fn commit(partition: Pidx, offset: u64) -> CoordinatorRecord {
        CoordinatorRecord::Offset {
            group: 0,
            partition,
            offset,
        }
    }

    /// A follower copying the coordinator's batches, whole or in part, and a replica that
    /// wrote other records at the same offsets, each read back their own records.
    /// (offset, partition, committed offset) of each commit a replay of `log` reads.
    fn commits(log: &Log) -> Vec<(u64, Pidx, u64)> {
        log.coordinator_records(log.end_offset())
            .into_iter()
            .map(|(at, r)| match r {
                CoordinatorRecord::Offset { partition, offset, .. } => (at, partition, offset),
                CoordinatorRecord::Group { .. } => panic!("only commits here"),
            })
            .collect()
    }

    /// Copies everything `from` has that `to` lacks.
    fn catch_up(to: &mut Log, from: &Log) {
        for r in from.read(to.end_offset(), from.end_offset(), u32::MAX) {
            to.append_range(&r, Time(0));
        }
    }

    /// A commit superseded by a later one of its key goes once every replica holds the
    /// later one below its flushed offset and checkpointed high watermark; before that
    /// a power loss or a high watermark below the later one could make it the last again.
    #[test]
    fn superseded_commits_go_once_the_later_one_is_durable_on_every_replica() {
        let store = Store::compacting();
        let (mut leader, mut follower) = (Log::new(store.clone(), 1), Log::new(store.clone(), 2));
        leader.append_coordinator(&[commit(0, 10)], 100, 0, Time(0));
        leader.append_coordinator(&[commit(0, 11), commit(1, 5)], 100, 0, Time(0));
        catch_up(&mut follower, &leader);
        leader.flush();
        leader.checkpoint_high_watermark(3);
        follower.flush();
        let live = |n| store.borrow().records.get(n).is_some();
        assert!(live(0), "the follower has not checkpointed a high watermark yet");
        follower.checkpoint_high_watermark(1);
        assert!(live(0), "commit(0, 11) lies above the follower's checkpoint");
        follower.checkpoint_high_watermark(3);
        assert!(!live(0) && live(1) && live(2), "only the superseded commit goes");
        assert_eq!(commits(&leader), vec![(1, 0, 11), (2, 1, 5)]);
        assert_eq!(commits(&follower), commits(&leader));

        // A later commit the follower has not flushed keeps the one it supersedes, which a
        // power loss makes the follower's last again.
        leader.append_coordinator(&[commit(0, 12)], 100, 0, Time(1));
        catch_up(&mut follower, &leader);
        leader.flush();
        leader.checkpoint_high_watermark(4);
        follower.checkpoint_high_watermark(4);
        assert!(live(1), "commit(0, 12) is not flushed on the follower");
        follower.truncate_to(follower.flushed_offset());
        assert_eq!(commits(&follower), vec![(1, 0, 11), (2, 1, 5)]);
    }

    /// A store of a cluster without leader epochs keeps a superseded commit through
    /// flushes and checkpoints.
    #[test]
    fn a_store_that_does_not_compact_keeps_every_commit() {
        let store = SharedStore::default();
        let mut log = Log::new(store.clone(), 1);
        log.append_coordinator(&[commit(0, 10)], 100, 0, Time(0));
        log.append_coordinator(&[commit(0, 11)], 100, 0, Time(0));
        log.flush();
        log.checkpoint_high_watermark(2);
        assert!(store.borrow().records.get(0).is_some());
        assert_eq!(commits(&log), vec![(0, 0, 10), (1, 0, 11)]);
    }

    /// Commits of one key, many chunks of them: all but the last go, and the chunks keep
    /// only what lives.
    #[test]
    fn compacted_chunks_keep_only_their_live_records() {
        let store = Store::compacting();
        let mut log = Log::new(store.clone(), 1);
        let n = 3 * RECORD_CHUNK + 5;
        for i in 0..n {
            log.append_coordinator(&[commit(i as Pidx % 2, i)], 100, 0, Time(0));
        }
        log.flush();
        log.checkpoint_high_watermark(n);
        assert_eq!(commits(&log), vec![(n - 2, 1, n - 2), (n - 1, 0, n - 1)]);
        let st = store.borrow();
        let sparse = st
            .records
            .chunks
            .iter()
            .filter(|c| matches!(c, RecordChunk::Sparse(live) if live.capacity() == 0))
            .count();
        assert_eq!(sparse, 3, "the three full chunks hold nothing, nor room for anything");
    }

    #[test]
    fn coordinator_records_follow_their_batches_through_copies_and_cuts() {
        let store = SharedStore::default();
        let (mut leader, mut follower) = (Log::new(store.clone(), 1), Log::new(store.clone(), 2));
        leader.append_coordinator(&[commit(0, 10), commit(1, 20)], 100, 0, Time(0));
        leader.append_coordinator(&[commit(0, 11), commit(1, 21), commit(2, 31)], 100, 0, Time(1));
        // The follower copies the first batch and the first record of the second.
        for r in leader.read(0, 3, u32::MAX) {
            follower.append_range(&r, Time(2));
        }
        let offsets = |log: &Log, until| -> Vec<(u64, u64)> {
            log.coordinator_records(until)
                .into_iter()
                .map(|(at, r)| match r {
                    CoordinatorRecord::Offset { offset, .. } => (at, offset),
                    CoordinatorRecord::Group { .. } => panic!("only commits here"),
                })
                .collect()
        };
        assert_eq!(offsets(&leader, 5), vec![(0, 10), (1, 20), (2, 11), (3, 21), (4, 31)]);
        assert_eq!(offsets(&leader, 4), vec![(0, 10), (1, 20), (2, 11), (3, 21)]);
        assert_eq!(offsets(&follower, 5), vec![(0, 10), (1, 20), (2, 11)]);
        // The follower becomes leader and writes its own record at offset 3; the old
        // leader truncates to 3 and copies it.
        follower.append_coordinator(&[commit(1, 99)], 100, 1, Time(3));
        leader.truncate_to(3);
        for r in follower.read(3, 4, u32::MAX) {
            leader.append_range(&r, Time(4));
        }
        assert_eq!(offsets(&leader, 10), vec![(0, 10), (1, 20), (2, 11), (3, 99)]);
        assert_eq!(offsets(&follower, 10), offsets(&leader, 10));
    }

    #[test]
    fn replicas_that_agree_keep_one_copy_and_a_diverging_one_its_own() {
        let store = SharedStore::default();
        let (mut leader, mut follower) = (Log::new(store.clone(), 1), Log::new(store.clone(), 2));
        for i in 0..3 {
            leader.append(&batch(i * 5, 5), 0, Time(i));
        }
        for r in leader.read(0, 15, u32::MAX) {
            follower.append_range(&r, Time(10));
        }
        assert_eq!(
            store.borrow().entries.len(),
            3,
            "the follower's copies are the leader's batches"
        );
        assert!(own(&follower) == 0);
        assert_eq!(spans(&follower), spans(&leader));

        // A new leader (the follower) writes other records at offset 15 while the old
        // one still holds its own there: the new one keeps them itself.
        leader.append(&batch(15, 5), 0, Time(11));
        follower.append(&batch(100, 2), 1, Time(12));
        assert_eq!(own(&follower), 1);
        assert_eq!(spans(&follower), vec![(0, 0, 5), (5, 5, 5), (10, 10, 5), (15, 100, 2)]);
        assert_eq!(follower.end_offset(), 17);
        assert_eq!(follower.read(15, 17, u32::MAX)[0].first_seq, 100);
        // What the replication checks ask of the store.
        {
            let st = store.borrow();
            assert_eq!((st.end_offset(1), st.end_offset(2), st.end_offset(9)), (20, 17, 0));
            assert_eq!(st.first_difference(1, 2, 0, 17), Some(15));
            assert_eq!(st.first_difference(1, 2, 0, 15), None);
            assert_eq!(st.first_difference(1, 9, 3, 5), Some(3), "a replica with no log");
            assert_eq!(
                st.range_at(2, 16).map(|r| (r.base_offset, r.first_seq)),
                Some((15, 100))
            );
            assert_eq!(st.range_at(1, 16).map(|r| (r.base_offset, r.first_seq)), Some((15, 15)));
            assert_eq!(st.range_at(2, 17), None);
        }

        // The old leader truncates to the divergence: nobody shares offset 15 any more,
        // and at its next append the new leader's own batches become the store's.
        assert_eq!(leader.truncate_to(15), 15..20);
        assert_eq!(store.borrow().entries.len(), 3);
        follower.append(&batch(102, 1), 1, Time(13));
        assert!(own(&follower) == 0);
        assert_eq!(store.borrow().entries.len(), 5);
        for r in follower.read(15, 18, u32::MAX) {
            leader.append_range(&r, Time(14));
        }
        assert!(own(&leader) == 0);
        assert_eq!(spans(&leader), spans(&follower));

        // Truncating inside a shared batch keeps its head as the replica's own.
        assert_eq!(leader.truncate_to(12), 12..18);
        assert_eq!(spans(&leader), vec![(0, 0, 5), (5, 5, 5), (10, 10, 2)]);
        assert_eq!(own(&leader), 1);
        assert_eq!(
            store.borrow().first_difference(1, 2, 0, 18),
            Some(12),
            "the leader lacks 12"
        );
        assert_eq!(store.borrow().entries.len(), 5, "the follower still shares them all");
        assert_eq!(spans(&follower).len(), 5);
    }

    /// Append times agree with a plain list of them through gaps longer than four bytes
    /// of microseconds hold, flushes and truncations.
    #[test]
    fn append_times_agree_with_a_list_of_times() {
        let hour = 3_600_000_000u64;
        let (mut times, mut list) = (AppendTimes::default(), VecDeque::new());
        let (mut widened, mut narrowed) = (0, 0);
        let mut at = 5u64;
        for step in 0..4_000u64 {
            at += match step % 500 {
                // Past 71 minutes from the first time kept (it is counted from again) and
                // from the oldest kept (the times widen until those are gone).
                100 => hour,
                300 => 2 * hour,
                _ => step % 7 * 1_000,
            };
            times.push(Time(at));
            list.push_back(Time(at));
            match step % 97 {
                0 => {
                    let cutoff = Time(at.saturating_sub(20_000));
                    let n = list.partition_point(|&t| t <= cutoff);
                    assert_eq!(times.count_until(cutoff), n, "step {step}");
                    times.pop_front(n);
                    list.drain(..n);
                }
                50 => {
                    times.pop_back(3);
                    list.truncate(list.len().saturating_sub(3));
                }
                _ => {}
            }
            assert_eq!(times.len(), list.len());
            assert!((0..list.len()).all(|i| times.get(i) == list[i]), "step {step}");
            let wide = times.wide.is_some();
            widened += usize::from(wide && step % 500 == 300);
            narrowed += usize::from(!wide && step % 500 == 499);
        }
        assert_eq!(
            (widened, narrowed),
            (8, 8),
            "each two-hour gap widens, and it narrows again"
        );
        times.clear();
        assert!(times.wide.is_none() && times.len() == 0);
    }

    #[test]
    fn the_unflushed_tail_is_counted_in_batches_and_flushed_by_age() {
        let mut log = Log::default();
        for i in 0..4 {
            log.append(&batch(i * 5, 5), 0, Time(i * 10));
        }
        assert_eq!((log.unflushed_batches(), log.flushed_offset()), (4, 0));
        assert_eq!(log.offset_after_unflushed_batches(2), 10);
        log.flush_older_than(Time(15));
        assert_eq!((log.unflushed_batches(), log.flushed_offset()), (2, 10));
        assert_eq!(log.offset_after_unflushed_batches(1), 15);
        // A cut batch keeps its time; those after it go.
        assert_eq!(log.truncate_to(17), 17..20);
        assert_eq!((log.unflushed_batches(), log.end_offset()), (2, 17));
        log.flush_older_than(Time(25));
        assert_eq!((log.unflushed_batches(), log.flushed_offset()), (1, 15));
        // Truncating below the flushed offset flushes nothing more and leaves no tail.
        assert_eq!(log.truncate_to(3), 3..17);
        assert_eq!((log.unflushed_batches(), log.flushed_offset()), (0, 3));
        log.append(&batch(3, 2), 0, Time(40));
        log.flush();
        assert_eq!((log.unflushed_batches(), log.flushed_offset()), (0, 5));
    }

    #[test]
    fn append_read_truncate() {
        let mut log = Log::default();
        assert_eq!(log.append(&batch(0, 5), 0, Time(1)), 0);
        assert_eq!(log.append(&batch(5, 5), 0, Time(2)), 5);
        assert_eq!(log.end_offset(), 10);
        let r = log.read(3, 8, 1_000_000);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].base_offset, r[0].first_seq, r[0].count), (3, 3, 2));
        assert_eq!((r[1].base_offset, r[1].count), (5, 3));
        // The first batch comes back even when it exceeds the byte limit.
        assert_eq!(log.read(0, 10, 1).len(), 1);
        log.flush_older_than(Time(1));
        assert_eq!(log.flushed_offset(), 5);
        assert_eq!(log.truncate_to(log.flushed_offset()), 5..10);
        assert_eq!(log.end_offset(), 5);
        assert_eq!(log.truncate_to(2), 2..5);
        assert_eq!(log.end_offset(), 2);
        // A batch without a wire sequence reads back without one.
        let plain = Batch {
            seq: None,
            ..batch(2, 3)
        };
        log.append(&plain, 1, Time(3));
        let r = log.read(2, 5, 1_000_000);
        assert_eq!((r[0].seq, r[0].leader_epoch, r[0].count), (None, 1, 3));
        assert_eq!(log.ranges().next().map(|r| r.seq), Some(Some(0)));
    }
}
