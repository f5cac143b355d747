//! A partition replica's log: batches, never single records. Offsets, the log end offset
//! (LEO), the flushed prefix, and range reads (DESIGN.md §3).

use crate::sim::Time;
use serde::Serialize;

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

fn scale(bytes: u32, part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (u64::from(bytes) * u64::from(part) / u64::from(whole)) as u32
    }
}

/// A batch as a log keeps it: a [`RecordRange`] laid out flat (56 bytes, where the range
/// and its time took 64), since a log holds one per batch for the whole run.
#[derive(Clone, Debug)]
struct Entry {
    base_offset: u64,
    first_seq: u64,
    /// The wire sequence, or `NO_SEQ` without idempotence.
    seq: u64,
    appended_at: Time,
    producer: u32,
    count: u32,
    bytes: u32,
    leader_epoch: u32,
    producer_epoch: u32,
}

const NO_SEQ: u64 = u64::MAX;

impl Entry {
    fn of(r: &RecordRange, appended_at: Time) -> Entry {
        Entry {
            base_offset: r.base_offset,
            first_seq: r.first_seq,
            seq: r.seq.unwrap_or(NO_SEQ),
            appended_at,
            producer: r.producer,
            count: r.count,
            bytes: r.bytes,
            leader_epoch: r.leader_epoch,
            producer_epoch: r.producer_epoch,
        }
    }
    fn range(&self) -> RecordRange {
        RecordRange {
            base_offset: self.base_offset,
            producer: self.producer,
            first_seq: self.first_seq,
            count: self.count,
            bytes: self.bytes,
            leader_epoch: self.leader_epoch,
            producer_epoch: self.producer_epoch,
            seq: (self.seq != NO_SEQ).then_some(self.seq),
        }
    }
    fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Log {
    entries: Vec<Entry>,
    /// Offsets below this are on disk and survive a power loss.
    flushed: u64,
}

impl Log {
    /// The log end offset: the offset the next record will get.
    pub fn end_offset(&self) -> u64 {
        self.entries.last().map_or(0, Entry::end_offset)
    }

    pub fn flushed_offset(&self) -> u64 {
        self.flushed
    }

    pub fn unflushed_records(&self) -> u64 {
        self.end_offset() - self.flushed
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
        self.entries.push(Entry::of(&range, now));
        base_offset
    }

    /// Appends records copied from a leader's log (a follower's append): same producer,
    /// sequences and leader epoch, at this log's end. Returns their base offset here.
    pub fn append_range(&mut self, r: &RecordRange, now: Time) -> u64 {
        let base_offset = self.end_offset();
        self.entries.push(Entry::of(&RecordRange { base_offset, ..*r }, now));
        base_offset
    }

    pub fn flush(&mut self) {
        self.flushed = self.end_offset();
    }

    /// Flushes every batch appended at or before `cutoff` (the OS writing back old dirty
    /// pages).
    pub fn flush_older_than(&mut self, cutoff: Time) {
        let n = self.entries.partition_point(|e| e.appended_at <= cutoff);
        if n > 0 {
            self.flushed = self.flushed.max(self.entries[n - 1].end_offset());
        }
    }

    /// How many batches lie (at least partly) above the flushed offset.
    pub fn unflushed_batches(&self) -> usize {
        self.entries.len() - self.entries.partition_point(|e| e.end_offset() <= self.flushed)
    }

    /// The end offset of the `n`th unflushed batch (the flushed offset for `n = 0`).
    pub fn offset_after_unflushed_batches(&self, n: usize) -> u64 {
        if n == 0 {
            return self.flushed;
        }
        let first = self.entries.partition_point(|e| e.end_offset() <= self.flushed);
        self.entries
            .get(first + n - 1)
            .map_or(self.end_offset(), |e| e.end_offset())
    }

    /// Drops everything from `offset` on. Returns the offsets removed.
    pub fn truncate_to(&mut self, offset: u64) -> std::ops::Range<u64> {
        let end = self.end_offset();
        let i = first_ending_after(&self.entries, offset, |e| e.end_offset());
        if let Some(e) = self.entries.get_mut(i) {
            if e.base_offset < offset {
                *e = Entry::of(&e.range().head((offset - e.base_offset) as u32), e.appended_at);
                self.entries.truncate(i + 1);
            } else {
                self.entries.truncate(i);
            }
        }
        self.flushed = self.flushed.min(self.end_offset());
        offset.min(end)..end
    }

    /// Reads from `from` up to (not including) `until`, at most `max_bytes` bytes except
    /// that the first batch is always returned whole (Kafka's limits are soft).
    pub fn read(&self, from: u64, until: u64, max_bytes: u32) -> Vec<RecordRange> {
        let mut out = Vec::new();
        let mut bytes: u64 = 0;
        let start = first_ending_after(&self.entries, from, |e| e.end_offset());
        for e in &self.entries[start..] {
            if e.base_offset >= until {
                break;
            }
            let mut r = e.range().from_offset(from);
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
    }

    /// Every record range in the log, in offset order.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = RecordRange> + '_ {
        self.entries.iter().map(Entry::range)
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
