//! A replica's idempotent-producer state (`ProducerStateManager`, KAFKA.md §7.1): for each
//! producer on each partition, its epoch and its last five batches. Every replica records
//! the batches it appends, leader and follower alike, so a new leader already knows the
//! batches it replicated; a truncation or a restart rebuilds the state from what the log
//! still holds, so it never vouches for records the log lost.

use crate::kafka::Pidx;
use crate::kafka::log::{Batch, Log, RecordRange};
use crate::kafka::protocol::ErrorCode;
use std::collections::{BTreeMap, VecDeque};

/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`.
pub const BATCHES_TO_RETAIN: usize = 5;

/// One cached batch (`BatchMetadata`): its wire sequence, length and base offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cached {
    seq: u64,
    count: u32,
    base_offset: u64,
}

#[derive(Debug)]
struct Entry {
    epoch: u32,
    batches: VecDeque<Cached>,
}

/// What the leader makes of a batch before appending it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// A retry of a batch already in the log at this base offset: answer with it and
    /// append nothing.
    Duplicate(u64),
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    entries: BTreeMap<(Pidx, u32), Entry>,
}

impl ProducerStates {
    /// The leader's checks on a client's batch (`UnifiedLog.analyzeAndValidateProducerState`):
    /// a duplicate within the same epoch (`findDuplicateBatch`), then the epoch
    /// (`ProducerAppendInfo.checkProducerEpoch`), then the sequence (`checkSequence`).
    pub fn check(&self, p: Pidx, batch: &Batch) -> Result<Verdict, ErrorCode> {
        let Some(seq) = batch.seq else {
            return Ok(Verdict::Append);
        };
        let Some(entry) = self.entries.get(&(p, batch.writer.producer)) else {
            // No state (never seen, or gone with the log): any sequence is accepted.
            return Ok(Verdict::Append);
        };
        let epoch = batch.writer.session;
        if epoch == entry.epoch
            && let Some(c) = entry.batches.iter().find(|c| c.seq == seq && c.count == batch.count)
        {
            return Ok(Verdict::Duplicate(c.base_offset));
        }
        if epoch < entry.epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        let in_sequence = if epoch > entry.epoch {
            seq == 0
        } else {
            entry.batches.back().is_none_or(|c| seq == c.seq + u64::from(c.count))
        };
        if in_sequence {
            Ok(Verdict::Append)
        } else {
            Err(ErrorCode::OutOfOrderSequenceNumber)
        }
    }

    /// Records a batch just appended to partition `p`'s log, by the leader or a follower
    /// (`ProducerAppendInfo.appendDataBatch`; a follower records a lower epoch too).
    pub fn record(&mut self, p: Pidx, r: &RecordRange) {
        let Some(seq) = r.seq else { return };
        let entry = self.entries.entry((p, r.producer)).or_insert(Entry {
            epoch: r.producer_epoch,
            batches: VecDeque::new(),
        });
        if entry.epoch != r.producer_epoch {
            // `maybeUpdateProducerEpoch`: a new epoch starts with no batches.
            entry.epoch = r.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(Cached {
            seq,
            count: r.count,
            base_offset: r.base_offset,
        });
        if entry.batches.len() > BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
    }

    /// Rebuilds partition `p`'s state from its log, after a truncation or at start-up
    /// (`UnifiedLog.rebuildProducerState`): what the remaining log implies, no more. The
    /// log is read from its end until every producer found has its epoch's last five
    /// batches.
    pub fn rebuild(&mut self, p: Pidx, log: &Log) {
        self.entries.retain(|(q, _), _| *q != p);
        // Producers whose entry is complete: five batches, or an older epoch reached.
        let mut done: BTreeMap<u32, bool> = BTreeMap::new();
        for r in log.ranges().rev() {
            let Some(seq) = r.seq else { continue };
            if done.get(&r.producer) == Some(&true) {
                continue;
            }
            let entry = self.entries.entry((p, r.producer)).or_insert(Entry {
                epoch: r.producer_epoch,
                batches: VecDeque::new(),
            });
            if entry.epoch != r.producer_epoch || entry.batches.len() == BATCHES_TO_RETAIN {
                done.insert(r.producer, true);
                continue;
            }
            entry.batches.push_front(Cached {
                seq,
                count: r.count,
                base_offset: r.base_offset,
            });
            done.entry(r.producer).or_insert(false);
        }
    }

    /// A crash: the state lives in memory (Kafka's snapshots are a cache of the log).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::log::Writer;
    use crate::sim::Time;

    fn batch(session: u32, first_seq: u64, seq: u64, count: u32) -> Batch {
        Batch {
            writer: Writer { producer: 7, session },
            first_seq,
            count,
            bytes: 100,
            seq: Some(seq),
        }
    }

    /// Appends as a leader would: check, then append and record.
    fn append(states: &mut ProducerStates, log: &mut Log, b: &Batch) -> Result<Verdict, ErrorCode> {
        let v = states.check(0, b)?;
        if v == Verdict::Append {
            log.append(b, 0, Time(0));
            states.record(0, &log.ranges().last().expect("appended"));
        }
        Ok(v)
    }

    #[test]
    fn retries_are_duplicates_within_an_epoch_only() {
        let (mut s, mut log) = (ProducerStates::default(), Log::default());
        assert_eq!(append(&mut s, &mut log, &batch(0, 0, 0, 5)), Ok(Verdict::Append));
        assert_eq!(append(&mut s, &mut log, &batch(0, 5, 5, 5)), Ok(Verdict::Append));
        assert_eq!(append(&mut s, &mut log, &batch(0, 0, 0, 5)), Ok(Verdict::Duplicate(0)));
        assert_eq!(append(&mut s, &mut log, &batch(0, 5, 5, 5)), Ok(Verdict::Duplicate(5)));
        // A gap, or a new epoch that does not start at 0, is out of order.
        assert_eq!(
            s.check(0, &batch(0, 15, 15, 5)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            s.check(0, &batch(1, 10, 3, 5)),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        // A bumped epoch starts at 0; the old epoch is then fenced, retries included.
        assert_eq!(append(&mut s, &mut log, &batch(1, 10, 0, 5)), Ok(Verdict::Append));
        assert_eq!(s.check(0, &batch(0, 5, 5, 5)), Err(ErrorCode::InvalidProducerEpoch));
        assert_eq!(append(&mut s, &mut log, &batch(1, 15, 5, 5)), Ok(Verdict::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let (mut s, mut log) = (ProducerStates::default(), Log::default());
        for k in 0..6 {
            append(&mut s, &mut log, &batch(0, k * 2, k * 2, 2)).expect("in order");
        }
        assert_eq!(s.check(0, &batch(0, 2, 2, 2)), Ok(Verdict::Duplicate(2)));
        // The first batch fell out of the window: its retry is out of order.
        assert_eq!(s.check(0, &batch(0, 0, 0, 2)), Err(ErrorCode::OutOfOrderSequenceNumber));
    }

    #[test]
    fn a_truncation_forgets_the_batches_it_removed() {
        let (mut s, mut log) = (ProducerStates::default(), Log::default());
        for k in 0..4 {
            append(&mut s, &mut log, &batch(0, k * 5, k * 5, 5)).expect("in order");
        }
        log.truncate_to(10);
        s.rebuild(0, &log);
        // The removed batches are no longer duplicates: their retries append again.
        assert_eq!(s.check(0, &batch(0, 10, 10, 5)), Ok(Verdict::Append));
        assert_eq!(s.check(0, &batch(0, 5, 5, 5)), Ok(Verdict::Duplicate(5)));
        // The rebuilt state equals the one recorded batch by batch.
        let mut again = ProducerStates::default();
        for r in log.ranges() {
            again.record(0, &r);
        }
        assert_eq!(format!("{:?}", again), format!("{:?}", s));
    }

    #[test]
    fn a_rebuild_keeps_only_the_latest_epoch() {
        let (mut s, mut log) = (ProducerStates::default(), Log::default());
        for k in 0..3 {
            append(&mut s, &mut log, &batch(0, k, k, 1)).expect("in order");
        }
        for k in 0..7 {
            append(&mut s, &mut log, &batch(1, 3 + k, k, 1)).expect("in order");
        }
        let recorded = format!("{:?}", s);
        s.rebuild(0, &log);
        assert_eq!(format!("{:?}", s), recorded);
    }
}
