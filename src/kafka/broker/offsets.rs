//! How a coordinator's committed offsets reach the other replicas of the group's
//! `__consumer_offsets` partition, standing in for that partition's log (KAFKA.md §7.8).
//!
//! Kafka appends each commit to the partition's log and answers it only once the high
//! watermark covers it (`CoordinatorRuntime`: the response waits in the
//! `DeferredEventQueue` until `HighWatermarkListener.onHighWatermarkUpdated`), so an
//! acknowledged commit is on every in-sync replica, and a replica catches up on the log
//! before it rejoins the ISR. kafkasim keeps offsets beside the log, so it numbers them as
//! a log would: within one leadership the coordinator numbers each commit and copies it to
//! the followers; a follower applies copies in order (a full copy of the partition's
//! offsets when it is behind) and answers with the last one it applied. The coordinator
//! answers a commit once every member of the maximal ISR has applied it
//! (`offsets.commit.timeout.ms` after, COORDINATOR_NOT_AVAILABLE; NOT_COORDINATOR if it
//! loses the partition first), counts a follower that holds back copies as lagging like
//! one that holds back the log, and lets a follower back into the ISR only once it holds
//! every copy.

use super::{Broker, BrokerTimer, Role};
use crate::kafka::protocol::{ErrorCode, Msg};
use crate::kafka::{Out, Pidx, Timer};
use crate::sim::{Duration, NodeId, Time, TimerId};
use std::collections::BTreeMap;

/// `offsets.commit.timeout.ms` (`GroupCoordinatorConfig`): how long a commit may wait for
/// the replicas; then `CoordinatorRuntime` fails it with a timeout, which
/// `CoordinatorOperationExceptionHelper.handleOperationException` turns into
/// COORDINATOR_NOT_AVAILABLE.
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// A follower that has not answered a copy for this long is sent a full one
/// (`replica.fetch.backoff.ms`, how long a follower waits before fetching again).
const RESEND_AFTER: Duration = Duration::from_millis(1000);

/// The copies of every `__consumer_offsets` partition this broker leads (the leader side)
/// and follows (the follower side). Held in memory: a crash forgets it.
#[derive(Default)]
pub struct OffsetCopies {
    led: BTreeMap<Pidx, Stream>,
    /// Per partition followed: the leader epoch and number of the last copy applied.
    applied: BTreeMap<Pidx, (u32, u64)>,
    next_wait: u64,
}

/// One leadership's numbered copies.
struct Stream {
    epoch: u32,
    /// The number of the last commit; 0 is the state the leadership began with.
    seq: u64,
    /// The last number every member of the maximal ISR holds (the copies' high watermark).
    held: u64,
    followers: BTreeMap<u32, Follower>,
    /// Commits waiting for the in-sync replicas, in order.
    waiting: Vec<Waiting>,
}

#[derive(Default)]
struct Follower {
    /// The last copy it applied in this leadership, as far as the leader knows.
    applied: Option<u64>,
    /// Whether it was in the maximal ISR when the leader last looked.
    in_isr: bool,
    /// `lastCaughtUpTimeMs`, and the leader's last number and the time at its previous
    /// answer (`Replica.updateFetchStateOrThrow`, with copies for the log).
    caught_up: Option<Time>,
    last_answer: Option<(u64, Time)>,
    /// When a copy was last sent to it, and when a full copy was.
    sent: Option<Time>,
    full_sent: Option<Time>,
}

struct Waiting {
    id: u64,
    seq: u64,
    client: NodeId,
    request: u64,
    offsets: Vec<(Pidx, u64)>,
    /// Its timeout, once it has to wait; cancelled when it is answered.
    expire: Option<TimerId>,
}

impl OffsetCopies {
    /// A broker's first boot: before the first leadership of `partitions` (epoch 0) has
    /// numbered a commit, every replica holds the same nothing.
    pub fn first_boot(partitions: impl Iterator<Item = Pidx>) -> OffsetCopies {
        OffsetCopies {
            applied: partitions.map(|p| (p, (0, 0))).collect(),
            ..OffsetCopies::default()
        }
    }
}

impl Broker {
    /// `p` belongs to `__consumer_offsets` and this broker now leads it in `epoch`: a new
    /// stream of copies begins with a full copy to every follower, except in the first
    /// leadership while nothing is committed (see `first_boot`). Followers in the ISR
    /// count as caught up now, as `Partition.makeLeader` counts them for the log.
    pub(super) fn offsets_lead(&mut self, now: Time, p: Pidx, epoch: u32, isr: &[u32], out: &mut Out) {
        let empty = !self
            .disk
            .offsets
            .keys()
            .any(|(g, _)| self.info.offsets_pidx[*g as usize] == p);
        let first = epoch == 0 && empty;
        let followers = self.info.partitions[p as usize]
            .replicas
            .iter()
            .filter(|&&b| b != self.id)
            .map(|&b| {
                let f = Follower {
                    applied: first.then_some(0),
                    in_isr: isr.contains(&b),
                    caught_up: isr.contains(&b).then_some(now),
                    ..Follower::default()
                };
                (b, f)
            })
            .collect();
        self.offsets.led.insert(
            p,
            Stream {
                epoch,
                seq: 0,
                held: 0,
                followers,
                waiting: Vec::new(),
            },
        );
        if !first {
            let followers: Vec<u32> = self.offsets.led[&p].followers.keys().copied().collect();
            for b in followers {
                self.offsets_full_copy(now, p, b, out);
            }
        }
    }

    /// Leadership of `p` ends: the commits waiting on it fail with NOT_COORDINATOR, as
    /// `CoordinatorRuntime` fails the pending events of a shard it unloads.
    pub(super) fn offsets_resign(&mut self, p: Pidx, out: &mut Out) {
        if let Some(stream) = self.offsets.led.remove(&p) {
            for w in stream.waiting {
                if let Some(expire) = w.expire {
                    out.cancel_timer(expire);
                }
                let result = Err(ErrorCode::NotCoordinator);
                out.send(w.client, Msg::OffsetCommitResponse { id: w.request, result });
            }
        }
    }

    /// An accepted commit: kept here at once, copied to the followers under the next
    /// number, and answered once the in-sync replicas hold it.
    pub(super) fn offsets_commit(
        &mut self,
        now: Time,
        client: NodeId,
        request: u64,
        group: u32,
        offsets: Vec<(Pidx, u64)>,
        out: &mut Out,
    ) {
        for &(tp, offset) in &offsets {
            self.store_commit(now, group, tp, offset);
        }
        let p = self.info.offsets_pidx[group as usize];
        let Some(stream) = self.offsets.led.get_mut(&p) else {
            // Not leading the partition after all: `coordinates` said otherwise.
            out.send(
                client,
                Msg::OffsetCommitResponse {
                    id: request,
                    result: Ok(offsets),
                },
            );
            return;
        };
        stream.seq += 1;
        let (seq, epoch) = (stream.seq, stream.epoch);
        let copy: Vec<(u32, Pidx, u64)> = offsets.iter().map(|&(tp, o)| (group, tp, o)).collect();
        for (&b, f) in &mut stream.followers {
            f.sent = Some(now);
            let msg = Msg::OffsetCommitReplica {
                partition: p,
                leader_epoch: epoch,
                seq,
                full: false,
                offsets: copy.clone(),
            };
            out.send(self.info.broker_node(b), msg);
        }
        self.offsets.next_wait += 1;
        let id = self.offsets.next_wait;
        self.offsets.led.get_mut(&p).expect("led").waiting.push(Waiting {
            id,
            seq,
            client,
            request,
            offsets,
            expire: None,
        });
        self.offsets_complete(p, out);
        let stream = self.offsets.led.get_mut(&p).expect("led");
        if let Some(w) = stream.waiting.iter_mut().find(|w| w.id == id) {
            w.expire = Some(out.set_timer(
                OFFSETS_COMMIT_TIMEOUT,
                Timer::Broker(BrokerTimer::OffsetCommitExpire(id)),
            ));
        }
    }

    /// Answers the commits every member of the maximal ISR holds, while the ISR is at
    /// least `min.insync.replicas` (as the high watermark would advance). A follower that
    /// leaves the ISR must show again that it holds the copies before it rejoins: it may
    /// have restarted and lost some.
    pub(super) fn offsets_complete(&mut self, p: Pidx, out: &mut Out) {
        let Role::Leader(l) = &self.roles[p as usize] else {
            return;
        };
        let Some(stream) = self.offsets.led.get_mut(&p) else {
            return;
        };
        let maximal = l.maximal_isr();
        for (b, f) in &mut stream.followers {
            let in_isr = maximal.contains(b);
            if f.in_isr && !in_isr {
                f.applied = None;
            }
            f.in_isr = in_isr;
        }
        let topic = self.info.topic_of(p);
        if (l.isr.len() as u32) < topic.min_insync_replicas.min(topic.replication_factor) {
            return;
        }
        let held = maximal
            .iter()
            .filter(|&&b| b != self.id)
            .map(|b| stream.followers.get(b).and_then(|f| f.applied).unwrap_or(0))
            .min()
            .unwrap_or(stream.seq);
        stream.held = stream.held.max(held);
        let done = stream.waiting.iter().take_while(|w| w.seq <= held).count();
        for w in stream.waiting.drain(..done) {
            if let Some(expire) = w.expire {
                out.cancel_timer(expire);
            }
            out.send(
                w.client,
                Msg::OffsetCommitResponse {
                    id: w.request,
                    result: Ok(w.offsets),
                },
            );
        }
    }

    /// A commit waited `offsets.commit.timeout.ms`.
    pub(super) fn offsets_expire(&mut self, id: u64, out: &mut Out) {
        for stream in self.offsets.led.values_mut() {
            if let Some(i) = stream.waiting.iter().position(|w| w.id == id) {
                let w = stream.waiting.remove(i);
                let result = Err(ErrorCode::CoordinatorNotAvailable);
                out.send(w.client, Msg::OffsetCommitResponse { id: w.request, result });
                return;
            }
        }
        out.idle();
    }

    /// Sends follower `b` every offset kept in `p`, as of the stream's last number.
    fn offsets_full_copy(&mut self, now: Time, p: Pidx, b: u32, out: &mut Out) {
        let offsets: Vec<(u32, Pidx, u64)> = self
            .disk
            .offsets
            .iter()
            .filter(|((g, _), _)| self.info.offsets_pidx[*g as usize] == p)
            .filter_map(|(&(g, tp), c)| c.latest().map(|&o| (g, tp, o)))
            .collect();
        let Some(stream) = self.offsets.led.get_mut(&p) else {
            return;
        };
        let Some(f) = stream.followers.get_mut(&b) else {
            return;
        };
        f.sent = Some(now);
        f.full_sent = Some(now);
        let msg = Msg::OffsetCommitReplica {
            partition: p,
            leader_epoch: stream.epoch,
            seq: stream.seq,
            full: true,
            offsets,
        };
        out.send(self.info.broker_node(b), msg);
    }

    /// Whether follower `b` of `p` holds every copy the in-sync replicas hold, as a
    /// follower's log must reach the high watermark to join the ISR
    /// (`Partition.isFollowerInSync`); always, for other partitions.
    pub(super) fn offsets_caught_up(&self, p: Pidx, b: u32) -> bool {
        self.offsets
            .led
            .get(&p)
            .is_none_or(|s| s.followers.get(&b).and_then(|f| f.applied).is_some_and(|a| a >= s.held))
    }

    /// Whether follower `b` of `p` has held back copies for longer than `max_lag`
    /// (`Replica.isCaughtUp`, with copies for the log).
    pub(super) fn offsets_lagging(&self, p: Pidx, b: u32, now: Time, max_lag: Duration) -> bool {
        self.offsets.led.get(&p).is_some_and(|s| {
            s.followers
                .get(&b)
                .is_some_and(|f| f.applied != Some(s.seq) && f.caught_up.is_none_or(|t| now.since(t) > max_lag))
        })
    }

    /// Follower `b` fetched `p`: one that is behind and has had nothing for a while gets a
    /// full copy (a copy was lost, or it restarted).
    pub(super) fn offsets_fetched(&mut self, now: Time, p: Pidx, b: u32, out: &mut Out) {
        let behind = self
            .offsets
            .led
            .get(&p)
            .is_some_and(|s| s.followers.get(&b).is_some_and(|f| f.applied != Some(s.seq)));
        if !behind {
            return;
        }
        let quiet = self
            .offsets
            .led
            .get(&p)
            .and_then(|s| s.followers.get(&b))
            .is_some_and(|f| f.sent.is_none_or(|t| now.since(t) >= RESEND_AFTER));
        if quiet {
            self.offsets_full_copy(now, p, b, out);
        }
    }

    /// A copy from the leader of `p`: a full copy is applied whole, a numbered one only
    /// right after the one before it. The answer says what this replica now holds.
    pub(super) fn offsets_copy(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        let Msg::OffsetCommitReplica {
            partition: p,
            leader_epoch: epoch,
            seq,
            full,
            offsets,
        } = msg
        else {
            return;
        };
        // A copy from an older leader, or one arriving at the leader itself, is dropped.
        let current = self.image.as_ref().map_or(0, |i| i.partitions[p as usize].leader_epoch);
        if self.is_leader(p) || epoch < current {
            return;
        }
        let next = seq
            .checked_sub(1)
            .is_some_and(|s| self.offsets.applied.get(&p) == Some(&(epoch, s)));
        if full || next {
            for (g, tp, offset) in offsets {
                if self.disk.committed(g, tp) != Some(offset) {
                    self.store_commit(now, g, tp, offset);
                }
            }
            self.offsets.applied.insert(p, (epoch, seq));
        }
        let applied = self
            .offsets
            .applied
            .get(&p)
            .filter(|(e, _)| *e == epoch)
            .map(|(_, s)| *s);
        let ack = Msg::OffsetCommitReplicaAck {
            partition: p,
            leader_epoch: epoch,
            seq,
            applied,
        };
        out.send(from, ack);
    }

    /// A follower's answer to copy `seq`: what it holds now. One that could not apply the
    /// copy is sent a full one, unless one is already on its way.
    pub(super) fn offsets_ack(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        let Msg::OffsetCommitReplicaAck {
            partition: p,
            leader_epoch: epoch,
            seq,
            applied,
        } = msg
        else {
            return;
        };
        let Some(b) = self.info.broker_of(from) else { return };
        let Some(stream) = self.offsets.led.get_mut(&p).filter(|s| s.epoch == epoch) else {
            return;
        };
        let latest = stream.seq;
        let Some(f) = stream.followers.get_mut(&b) else { return };
        // Answers come in order on the link, so the last one is what the follower holds
        // (less than before only if it restarted).
        f.applied = applied;
        // `Replica.updateFetchStateOrThrow`: holding the leader's last copy makes the
        // follower caught up now; holding what the leader had at its previous answer, as
        // of that answer.
        if let Some(a) = f.applied {
            if a >= latest {
                f.caught_up = f.caught_up.max(Some(now));
                f.full_sent = None;
            } else if let Some((before, at)) = f.last_answer
                && a >= before
            {
                f.caught_up = f.caught_up.max(Some(at));
            }
        }
        f.last_answer = Some((latest, now));
        let gap = applied.is_none_or(|a| a < seq);
        let resend = gap && f.full_sent.is_none_or(|t| now.since(t) >= RESEND_AFTER);
        if resend {
            self.offsets_full_copy(now, p, b, out);
        }
        self.offsets_complete(p, out);
    }
}
