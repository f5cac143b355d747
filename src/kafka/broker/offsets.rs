//! The group coordinator's writes to `__consumer_offsets` (KAFKA.md §7.8), as Kafka 4's
//! `CoordinatorRuntime` makes them.
//!
//! Each `__consumer_offsets` partition this broker leads has a shard. An accepted
//! OffsetCommit becomes one record per partition, applied to the shard's state at once
//! and added to the current batch; the batch is appended to the partition's log when
//! `group.coordinator.append.linger.ms` has passed since it opened
//! (`CoordinatorRuntime.maybeAllocateNewBatch`'s linger task, `flushCurrentBatch`).
//! Followers copy it with their ordinary fetches. The commit is answered once the high
//! watermark covers its batch (`DeferredEventQueue.completeUpTo`), fails with
//! COORDINATOR_NOT_AVAILABLE when that takes `offsets.commit.timeout.ms`, and with
//! NOT_COORDINATOR when the broker stops leading the partition first. Group metadata goes
//! the same way, but nobody waits for it (simplified: Kafka answers SyncGroup only once
//! the group's record is committed, `GroupMetadataManager.classicGroupSync`). A broker
//! that becomes leader loads the shard from its own log (`CoordinatorLoaderImpl`); one
//! that stays leader in a new epoch keeps it. An OffsetFetch, which the consumer sends
//! with `requireStable`, reads the latest offsets written and is answered once they are
//! committed (`GroupCoordinatorService.fetchOffsets`).

use super::{Broker, BrokerTimer, Role};
use crate::kafka::group::GroupSnapshot;
use crate::kafka::log::CoordinatorRecord;
use crate::kafka::producer::BATCH_OVERHEAD;
use crate::kafka::protocol::{ErrorCode, Msg};
use crate::kafka::{Obs, Out, Pidx, Timer};
use crate::sim::{Duration, NodeId, Time, TimerId};
use std::collections::{BTreeMap, VecDeque};

/// `offsets.commit.timeout.ms` (`GroupCoordinatorConfig`): how long a commit may wait for
/// the high watermark; then `CoordinatorRuntime` fails it with a timeout, which
/// `CoordinatorOperationExceptionHelper.handleOperationException` turns into
/// COORDINATOR_NOT_AVAILABLE.
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// `group.coordinator.append.linger.ms` (`GroupCoordinatorConfig`, 5 ms in 4.0 and 4.1).
pub const APPEND_LINGER: Duration = Duration::from_millis(5);

/// The size of one OffsetCommit record (key: group, topic, partition; value: offset,
/// leader epoch, metadata, commit timestamp), about what Kafka writes for a short group
/// and topic name.
const RECORD_BYTES: u32 = 80;

/// The shards of the `__consumer_offsets` partitions this broker leads. Held in memory: a
/// crash forgets it, and the next leadership loads it from the log.
#[derive(Default)]
pub struct Shards {
    led: BTreeMap<Pidx, Shard>,
}

#[derive(Default)]
pub(super) struct Shard {
    /// Per (group, partition): the offsets written, each with the log offset after its
    /// record, oldest first. Only the newest one the high watermark covers and those
    /// above it are kept.
    offsets: BTreeMap<(u32, Pidx), VecDeque<(u64, u64)>>,
    /// The newest metadata of each group written (what a new coordinator loads).
    groups: BTreeMap<u32, GroupSnapshot>,
    /// The batch not appended yet, and its linger task.
    batch: Vec<CoordinatorRecord>,
    linger: Option<TimerId>,
    /// Commits in the open batch, then those appended and waiting for the high
    /// watermark to reach the end offset they carry, in the order they came.
    batched: Vec<Op>,
    waiting: VecDeque<(u64, Op)>,
    /// The timeout task for the oldest commit: it fires at that commit's deadline.
    expire: Option<TimerId>,
}

/// A request waiting for the high watermark: a commit, or an OffsetFetch, which the
/// consumer sends with `requireStable` and which `GroupCoordinatorService.fetchOffsets`
/// therefore runs as a write without records: it reads the latest offsets written and is
/// answered once they are committed.
struct Op {
    client: NodeId,
    request: u64,
    reply: Reply,
    deadline: Time,
}

enum Reply {
    Commit(Vec<(Pidx, u64)>),
    Fetch(Vec<(Pidx, Option<u64>)>),
}

impl Op {
    /// The answer: the request's result, or `error`.
    fn answer(self, error: Option<ErrorCode>, out: &mut Out) {
        let id = self.request;
        let msg = match self.reply {
            Reply::Commit(offsets) => Msg::OffsetCommitResponse {
                id,
                result: error.map_or(Ok(offsets), Err),
            },
            Reply::Fetch(offsets) => Msg::OffsetFetchResponse {
                id,
                result: error.map_or(Ok(offsets), Err),
            },
        };
        out.send(self.client, msg);
    }

    /// The error when it waits `offsets.commit.timeout.ms`: a commit's timeout becomes
    /// COORDINATOR_NOT_AVAILABLE (`handleOperationException`), a fetch's NOT_COORDINATOR
    /// (`handleOffsetFetchException`, for clients before 3.9).
    fn timeout_error(&self) -> ErrorCode {
        match self.reply {
            Reply::Commit(_) => ErrorCode::CoordinatorNotAvailable,
            Reply::Fetch(_) => ErrorCode::NotCoordinator,
        }
    }
}

impl Shard {
    /// Records that `(group, partition)` holds `offset` from log offset `end` on, with the
    /// high watermark at `hw`.
    fn write(&mut self, group: u32, partition: Pidx, offset: u64, end: u64, hw: u64) {
        let values = self.offsets.entry((group, partition)).or_default();
        while values.get(1).is_some_and(|v| v.0 <= hw) {
            values.pop_front();
        }
        values.push_back((end, offset));
    }

    /// The committed offset as the high watermark `hw` has it.
    fn committed(&self, group: u32, partition: Pidx, hw: u64) -> Option<u64> {
        let values = self.offsets.get(&(group, partition))?;
        values.iter().rev().find(|v| v.0 <= hw).map(|v| v.1)
    }

    /// Sets the timeout task for the oldest request, unless it is set.
    fn arm_expire(&mut self, p: Pidx, out: &mut Out) {
        if self.expire.is_none() {
            self.expire = Some(out.set_timer(
                OFFSETS_COMMIT_TIMEOUT,
                Timer::Broker(BrokerTimer::OffsetCommitExpire(p)),
            ));
        }
    }

    /// The deadline of the oldest request still unanswered.
    fn next_deadline(&self) -> Option<Time> {
        self.waiting
            .front()
            .map(|w| &w.1)
            .or(self.batched.first())
            .map(|op| op.deadline)
    }
}

impl Broker {
    /// `p` belongs to `__consumer_offsets` and this broker now leads it: the shard loads
    /// from the log, everything up to the log end, with the high watermark deciding what
    /// reads see (`CoordinatorLoaderImpl`, `lastCommittedOffset = min(LEO, HW)`).
    pub(super) fn shard_load(&mut self, p: Pidx) {
        let hw = self.high_watermark[p as usize];
        let mut shard = Shard::default();
        if let Some(log) = self.log(p) {
            for (offset, record) in log.coordinator_records(log.end_offset()) {
                match record {
                    CoordinatorRecord::Offset {
                        group,
                        partition,
                        offset: value,
                    } => shard.write(group, partition, value, offset + 1, hw),
                    CoordinatorRecord::Group { group, snapshot } => {
                        shard.groups.insert(group, log.snapshot(snapshot));
                    }
                }
            }
        }
        self.shards.led.insert(p, shard);
    }

    /// The shard of `p`, taken out while this broker leads `p` (to be restored when it
    /// stays leader in a new epoch).
    pub(super) fn shard_keep(&mut self, p: Pidx) -> Option<Shard> {
        if self.is_leader(p) {
            self.shards.led.remove(&p)
        } else {
            None
        }
    }

    pub(super) fn shard_restore(&mut self, p: Pidx, shard: Shard) {
        self.shards.led.insert(p, shard);
    }

    /// The metadata of `group` that the shard of `p` loaded or wrote last.
    pub(super) fn shard_group(&self, p: Pidx, group: u32) -> Option<&GroupSnapshot> {
        self.shards.led.get(&p)?.groups.get(&group)
    }

    /// Leadership of `p` ends: the shard unloads; the batch not appended is dropped, and
    /// the commits waiting fail with NOT_COORDINATOR, as `CoordinatorRuntime` fails the
    /// pending events of a shard it unloads.
    pub(super) fn shard_unload(&mut self, p: Pidx, out: &mut Out) {
        let Some(shard) = self.shards.led.remove(&p) else {
            return;
        };
        for timer in [shard.linger, shard.expire].into_iter().flatten() {
            out.cancel_timer(timer);
        }
        for op in shard.waiting.into_iter().map(|w| w.1).chain(shard.batched) {
            op.answer(Some(ErrorCode::NotCoordinator), out);
        }
    }

    /// Adds records to the shard's open batch, opening one (and its linger task) if none
    /// is; returns the log offset after the last of them.
    fn shard_add(&mut self, p: Pidx, records: &[CoordinatorRecord], out: &mut Out) -> Option<u64> {
        let leo = self.leo(p);
        let shard = self.shards.led.get_mut(&p)?;
        if shard.linger.is_none() {
            shard.linger = Some(out.set_timer(APPEND_LINGER, Timer::Broker(BrokerTimer::CoordinatorAppend(p))));
        }
        shard.batch.extend_from_slice(records);
        Some(leo + shard.batch.len() as u64)
    }

    /// An accepted commit: applied to the shard at once, written with the next batch, and
    /// answered once the high watermark covers it.
    pub(super) fn offsets_commit(
        &mut self,
        now: Time,
        client: NodeId,
        request: u64,
        group: u32,
        offsets: Vec<(Pidx, u64)>,
        out: &mut Out,
    ) {
        let p = self.info.offsets_pidx[group as usize];
        let records: Vec<CoordinatorRecord> = offsets
            .iter()
            .map(|&(partition, offset)| CoordinatorRecord::Offset {
                group,
                partition,
                offset,
            })
            .collect();
        let Some(end) = self.shard_add(p, &records, out) else {
            let result = Err(ErrorCode::NotCoordinator);
            out.send(client, Msg::OffsetCommitResponse { id: request, result });
            return;
        };
        let hw = self.high_watermark[p as usize];
        let shard = self.shards.led.get_mut(&p).expect("shard_add found it");
        let first = end - offsets.len() as u64;
        for (k, &(tp, offset)) in offsets.iter().enumerate() {
            shard.write(group, tp, offset, first + k as u64 + 1, hw);
        }
        shard.batched.push(Op {
            client,
            request,
            reply: Reply::Commit(offsets),
            deadline: now + OFFSETS_COMMIT_TIMEOUT,
        });
        shard.arm_expire(p, out);
    }

    /// An OffsetFetch of `group`'s coordinator: the latest offsets written, answered once
    /// they are committed (with the open batch, or once the high watermark reaches the
    /// log end; at once when nothing is pending).
    pub(super) fn offsets_fetch(
        &mut self,
        now: Time,
        client: NodeId,
        request: u64,
        group: u32,
        partitions: Vec<Pidx>,
        out: &mut Out,
    ) {
        let p = self.info.offsets_pidx[group as usize];
        let (leo, hw) = (self.leo(p), self.high_watermark[p as usize]);
        let Some(shard) = self.shards.led.get_mut(&p) else {
            let result = Err(ErrorCode::NotCoordinator);
            return out.send(client, Msg::OffsetFetchResponse { id: request, result });
        };
        let offsets = partitions
            .into_iter()
            .map(|tp| (tp, shard.offsets.get(&(group, tp)).and_then(|v| v.back()).map(|v| v.1)))
            .collect();
        let op = Op {
            client,
            request,
            reply: Reply::Fetch(offsets),
            deadline: now + OFFSETS_COMMIT_TIMEOUT,
        };
        if shard.linger.is_some() {
            shard.batched.push(op);
        } else if hw < leo {
            shard.waiting.push_back((leo, op));
        } else {
            return op.answer(None, out);
        }
        shard.arm_expire(p, out);
    }

    /// Group metadata that changed: written with the shard's next batch; nobody waits.
    pub(super) fn shard_store_group(&mut self, group: u32, snapshot: GroupSnapshot, out: &mut Out) {
        let p = self.info.offsets_pidx[group as usize];
        if !self.shards.led.contains_key(&p) {
            return;
        }
        let index = self.log_mut(p).keep_snapshot(snapshot.clone());
        self.shard_add(p, &[CoordinatorRecord::Group { group, snapshot: index }], out);
        if let Some(shard) = self.shards.led.get_mut(&p) {
            shard.groups.insert(group, snapshot);
        }
    }

    /// The linger task: the open batch goes to the log as the leader's append
    /// (`CoordinatorPartitionWriter.append`, acks=1), and its commits wait for the high
    /// watermark.
    pub(super) fn shard_append(&mut self, now: Time, p: Pidx, out: &mut Out) {
        let Some(shard) = self.shards.led.get_mut(&p) else {
            return out.idle();
        };
        shard.linger = None;
        let batch = std::mem::take(&mut shard.batch);
        let ops = std::mem::take(&mut shard.batched);
        let Role::Leader(l) = &self.roles[p as usize] else {
            // Not reached: the shard goes when the leadership does.
            for op in ops {
                op.answer(Some(ErrorCode::NotCoordinator), out);
            }
            return;
        };
        let epoch = l.epoch;
        let flush_messages = self.info.topic_of(p).flush_messages;
        let bytes = BATCH_OVERHEAD + RECORD_BYTES * batch.len() as u32;
        let log = self.log_mut(p);
        let range = log.append_coordinator(&batch, bytes, epoch, now);
        if flush_messages.is_some_and(|n| log.unflushed_records() >= n) {
            log.flush();
        }
        out.observe(Obs::Replicated {
            partition: p,
            range,
            source: None,
        });
        let end = range.end_offset();
        let shard = self.shards.led.get_mut(&p).expect("led");
        shard.waiting.extend(ops.into_iter().map(|op| (end, op)));
        self.complete_parked_followers(p, out);
        self.maybe_increment_hw(now, p, out);
    }

    /// The high watermark of `p` moved: the commits it covers are answered.
    pub(super) fn shard_complete(&mut self, p: Pidx, out: &mut Out) {
        let hw = self.high_watermark[p as usize];
        let Some(shard) = self.shards.led.get_mut(&p) else {
            return;
        };
        while shard.waiting.front().is_some_and(|w| w.0 <= hw) {
            let (_, op) = shard.waiting.pop_front().expect("front");
            op.answer(None, out);
        }
        if shard.next_deadline().is_none()
            && let Some(expire) = shard.expire.take()
        {
            out.cancel_timer(expire);
        }
    }

    /// The oldest commit's deadline: the commits past theirs fail (their records stay in
    /// the log, and may still be committed), and the task waits for the next one.
    pub(super) fn offsets_expire(&mut self, now: Time, p: Pidx, out: &mut Out) {
        let Some(shard) = self.shards.led.get_mut(&p) else {
            return out.idle();
        };
        shard.expire = None;
        let mut expired = Vec::new();
        while shard.waiting.front().is_some_and(|w| w.1.deadline <= now) {
            expired.push(shard.waiting.pop_front().expect("front").1);
        }
        if shard.waiting.is_empty() {
            let n = shard.batched.iter().take_while(|op| op.deadline <= now).count();
            expired.extend(shard.batched.drain(..n));
        }
        if let Some(next) = shard.next_deadline() {
            shard.expire = Some(out.set_timer(next.since(now), Timer::Broker(BrokerTimer::OffsetCommitExpire(p))));
        }
        for op in expired {
            let error = op.timeout_error();
            op.answer(Some(error), out);
        }
    }

    /// The committed offset of `group` on partition `tp`: as the coordinator's reads see
    /// it when this broker leads the group's `__consumer_offsets` partition, otherwise as
    /// this broker's log holds it (what it would load).
    pub fn committed(&self, group: u32, tp: Pidx) -> Option<u64> {
        let p = self.info.offsets_pidx[group as usize];
        if let Some(shard) = self.shards.led.get(&p) {
            return shard.committed(group, tp, self.high_watermark[p as usize]);
        }
        let log = self.log(p)?;
        log.coordinator_records(log.end_offset())
            .into_iter()
            .rev()
            .find_map(|(_, r)| match r {
                CoordinatorRecord::Offset {
                    group: g,
                    partition,
                    offset,
                } if g == group && partition == tp => Some(offset),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads see the newest offset the high watermark covers; values it covers are
    /// dropped once a newer one is covered too.
    #[test]
    fn a_shard_reads_offsets_as_the_high_watermark_has_them() {
        let mut shard = Shard::default();
        shard.write(0, 7, 100, 1, 0);
        assert_eq!(shard.committed(0, 7, 0), None, "not covered yet");
        assert_eq!(shard.committed(0, 7, 1), Some(100));
        shard.write(0, 7, 150, 2, 1);
        shard.write(0, 7, 200, 3, 1);
        assert_eq!(shard.committed(0, 7, 1), Some(100));
        assert_eq!(shard.committed(0, 7, 2), Some(150));
        assert_eq!(shard.committed(0, 7, 3), Some(200));
        assert_eq!(shard.committed(1, 7, 3), None, "another group");
        // With the high watermark at 3, only the newest covered value stays.
        shard.write(0, 7, 250, 4, 3);
        assert_eq!(shard.offsets[&(0, 7)], VecDeque::from([(3, 200), (4, 250)]));
    }
}
