//! The replication invariants, checked as the run goes (KAFKA.md §1.10, DESIGN.md §8):
//! `log-divergence`, `strong-isr`, `leader-in-isr`, `hw-monotonic`, `single-leader`,
//! `min-isr-ack`, and the end-of-run `liveness`.
//!
//! The checker keeps a mirror of every replica's log as spans, fed by the replicas' own
//! observations (appends, truncations, power losses). Replicas that agree share one copy
//! of their spans, and a replica keeps spans of its own only while it diverges. It
//! compares replicas only over offsets that changed since the last comparison, and not
//! at all where both share the copy, so the work grows with batches, not with the length
//! of the logs.

use crate::check::Violation;
use crate::kafka::log::{RecordRange, first_ending_after};
use crate::kafka::{ElectionReason, Obs, PartitionState, Pidx};
use crate::sim::Time;
use std::collections::BTreeMap;

/// What the checks need of a run of records in a log: where it sits, whose records
/// they are, and under which leader epoch they were written.
#[derive(Clone, Copy, Debug)]
struct Span {
    base_offset: u64,
    first_seq: u64,
    producer: u32,
    count: u32,
    leader_epoch: u32,
}

impl Span {
    fn of(r: &RecordRange) -> Span {
        Span {
            base_offset: r.base_offset,
            first_seq: r.first_seq,
            producer: r.producer,
            count: r.count,
            leader_epoch: r.leader_epoch,
        }
    }
    fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
    /// Whether both spans hold the same record at `offset` (which both cover).
    fn same_record_at(&self, other: &Span, offset: u64) -> bool {
        self.producer == other.producer
            && self.leader_epoch == other.leader_epoch
            && self.first_seq + (offset - self.base_offset) == other.first_seq + (offset - other.base_offset)
    }
    /// Whether `next` continues this span record for record (the same producer's next
    /// sequences at the next offsets, in the same epoch): then one span holds both.
    fn continued_by(&self, next: &Span) -> bool {
        next.base_offset == self.end_offset()
            && next.producer == self.producer
            && next.leader_epoch == self.leader_epoch
            && next.first_seq == self.first_seq + u64::from(self.count)
            && self.count.checked_add(next.count).is_some()
    }
}

/// A replica's log as the checker sees it: spans, merged where one continues another.
#[derive(Default, Clone)]
struct Mirror {
    ranges: Vec<Span>,
}

impl Mirror {
    fn end(&self) -> u64 {
        self.ranges.last().map_or(0, Span::end_offset)
    }
    /// The index of the range that holds `offset`, or of the first after it.
    fn index(&self, offset: u64) -> usize {
        first_ending_after(&self.ranges, offset, Span::end_offset)
    }
    fn truncate(&mut self, offset: u64) {
        let i = self.index(offset);
        if let Some(r) = self.ranges.get_mut(i)
            && r.base_offset < offset
        {
            r.count = (offset - r.base_offset) as u32;
            self.ranges.truncate(i + 1);
        } else {
            self.ranges.truncate(i);
        }
    }
    fn append(&mut self, r: &RecordRange) {
        if r.base_offset != self.end() {
            self.truncate(r.base_offset);
        }
        self.push(Span::of(r));
    }
    fn push(&mut self, span: Span) {
        match self.ranges.last_mut() {
            Some(last) if last.continued_by(&span) => last.count += span.count,
            _ => self.ranges.push(span),
        }
    }
    fn at(&self, offset: u64) -> Option<&Span> {
        self.ranges.get(self.index(offset)).filter(|r| r.base_offset <= offset)
    }
}

/// Every replica's log of one partition. Replicas hold the same records almost always,
/// so the spans they agree on are kept once (`canon`): a replica's log is the canon's
/// first `shared` offsets and then its own spans, which it has only while it diverges.
#[derive(Default)]
struct Mirrors {
    canon: Mirror,
    replicas: BTreeMap<u32, Replica>,
}

/// A replica's log: the canon below `shared`, then `own` (spans from `shared` on).
#[derive(Default)]
struct Replica {
    shared: u64,
    own: Mirror,
}

impl Replica {
    fn end(&self) -> u64 {
        if self.own.ranges.is_empty() {
            self.shared
        } else {
            self.own.end()
        }
    }
}

impl Mirrors {
    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.replicas.keys().copied()
    }
    fn has(&self, b: u32) -> bool {
        self.replicas.contains_key(&b)
    }
    fn end(&self, b: u32) -> u64 {
        self.replicas.get(&b).map_or(0, Replica::end)
    }
    fn at(&self, b: u32, offset: u64) -> Option<&Span> {
        let r = self.replicas.get(&b)?;
        if offset < r.shared {
            self.canon.at(offset)
        } else {
            r.own.at(offset)
        }
    }

    /// Replica `b` appends `range` (after dropping what it held from there on, if the
    /// range does not start at its end).
    fn append(&mut self, b: u32, range: &RecordRange) {
        let span = Span::of(range);
        if span.base_offset != self.end(b) {
            self.truncate(b, span.base_offset);
        }
        let r = self.replicas.entry(b).or_default();
        if !r.own.ranges.is_empty() || span.base_offset != r.shared {
            r.own.append(range);
            return;
        }
        // At the end of its shared prefix: the canon either holds the same records there
        // (the replica copied them), ends there (the replica is the first to write
        // them), or holds others (the replica diverges).
        let mut pos = span.base_offset;
        let end = span.end_offset();
        while pos < end {
            let Some(c) = self.canon.at(pos) else { break };
            if !c.same_record_at(&span, pos) {
                r.own.append(range);
                return;
            }
            pos = c.end_offset().min(end);
        }
        if pos < end {
            if self.canon.end() != pos {
                r.own.append(range);
                return;
            }
            self.canon.append(&range.from_offset(pos));
        }
        r.shared = end;
    }

    /// Replica `b` drops everything from `offset` on.
    fn truncate(&mut self, b: u32, offset: u64) {
        let r = self.replicas.entry(b).or_default();
        if offset < r.shared {
            r.shared = offset;
            r.own.ranges.clear();
        } else {
            r.own.truncate(offset);
        }
        // What no replica shares any more leaves the canon; a replica whose own spans
        // now start at the canon's end makes them the canon.
        let shared = self.replicas.values().map(|r| r.shared).max().unwrap_or(0);
        if shared < self.canon.end() {
            self.canon.truncate(shared);
            let end = self.canon.end();
            if let Some(r) = self
                .replicas
                .values_mut()
                .find(|r| r.shared == end && !r.own.ranges.is_empty())
            {
                let own = std::mem::take(&mut r.own);
                r.shared = own.end();
                for span in own.ranges {
                    self.canon.push(span);
                }
            }
        }
    }

    /// The first offset in `from..to` where the logs of `a` and `b` differ (one lacks it,
    /// or holds another record or epoch there). Below both shared prefixes they agree.
    fn first_difference(&self, a: u32, b: u32, from: u64, to: u64) -> Option<u64> {
        let (sa, sb) = match (self.replicas.get(&a), self.replicas.get(&b)) {
            (Some(ra), Some(rb)) => (ra.shared, rb.shared),
            _ => (0, 0),
        };
        let mut pos = from.max(sa.min(sb));
        while pos < to {
            let (Some(ra), Some(rb)) = (self.at(a, pos), self.at(b, pos)) else {
                return Some(pos);
            };
            if !ra.same_record_at(rb, pos) {
                return Some(pos);
            }
            pos = ra.end_offset().min(rb.end_offset()).min(to);
        }
        None
    }

    fn describe(&self, b: u32, offset: u64) -> String {
        match self.at(b, offset) {
            Some(r) => format!(
                "record {} of producer #{} from epoch {}",
                r.first_seq + (offset - r.base_offset),
                r.producer,
                r.leader_epoch
            ),
            None => "nothing".to_string(),
        }
    }
}

#[derive(Default)]
struct PartitionWatch {
    mirrors: Mirrors,
    /// The broker leading it, as it announced, with its epoch.
    leader: Option<(u32, u32)>,
    /// That leader's high watermark.
    high_watermark: u64,
    /// Per replica: offsets below this were compared with the current leader's log.
    verified: BTreeMap<u32, u64>,
    /// Replicas that copied records from the current leader in its epoch: only they are
    /// compared with it (one that has not fetched from it has not reconciled its log).
    following: Vec<u32>,
    /// The highest high watermark announced in the current lineage of the log: what a
    /// clean election must not lose. An unclean election starts a new lineage.
    committed: u64,
    /// The epoch of the last unclean election.
    unclean_epoch: Option<u32>,
    /// The controller's latest state.
    state: Option<PartitionState>,
}

/// The replication checks' state and findings.
#[derive(Default)]
pub struct Replication {
    partitions: Vec<PartitionWatch>,
    /// (partition, epoch) → the broker that claimed leadership.
    claims: BTreeMap<(Pidx, u32), u32>,
    /// (partition, epoch, broker) → the highest HW announced.
    high_watermarks: BTreeMap<(Pidx, u32, u32), u64>,
    /// Violations by check name.
    pub found: BTreeMap<&'static str, Vec<Violation>>,
    /// Per partition: (replica, offset) pairs already reported, to report each once.
    reported: BTreeMap<(&'static str, Pidx, u32), u64>,
    /// `min(min.insync.replicas, replication factor)` per partition.
    min_isr: Vec<u32>,
    /// Brokers whose process is down: they hold no electable replica.
    down: Vec<u32>,
    names: Vec<String>,
}

impl Replication {
    /// `partition_names[p]` and the effective min ISR of each partition.
    pub fn new(partition_names: Vec<String>, min_isr: Vec<u32>) -> Replication {
        Replication {
            partitions: (0..partition_names.len()).map(|_| PartitionWatch::default()).collect(),
            min_isr,
            names: partition_names,
            ..Default::default()
        }
    }

    /// The controller's state of every partition at time zero.
    pub fn set_initial(&mut self, states: &[PartitionState]) {
        for (w, s) in self.partitions.iter_mut().zip(states) {
            w.state = Some(s.clone());
        }
    }

    /// A broker's process died (`true`) or started again (`false`).
    pub fn set_down(&mut self, broker: u32, down: bool) {
        self.down.retain(|b| *b != broker);
        if down {
            self.down.push(broker);
        }
    }

    fn report(&mut self, check: &'static str, kind: &'static str, at: Time, message: String) {
        self.found
            .entry(check)
            .or_default()
            .push(Violation { at, message, kind });
    }

    /// Reports once per (check, partition, replica): the first offset found.
    fn report_once(
        &mut self,
        check: &'static str,
        kind: &'static str,
        p: Pidx,
        replica: u32,
        at: Time,
        message: String,
    ) {
        if self.reported.insert((check, p, replica), 0).is_none() {
            self.report(check, kind, at, message);
        }
    }

    pub fn observe(&mut self, at: Time, broker: Option<u32>, obs: &Obs) {
        match obs {
            Obs::Replicated {
                partition,
                range,
                source,
            } => {
                let b = broker.expect("replicas are brokers");
                let w = &mut self.partitions[*partition as usize];
                w.mirrors.append(b, range);
                let v = w.verified.entry(b).or_insert(0);
                *v = (*v).min(range.base_offset);
                // Only a copy from the current leader in its epoch makes a follower one
                // to compare; a zombie's own appends, or copies from it, do not.
                if source.is_some() && *source == w.leader {
                    if !w.following.contains(&b) {
                        w.following.push(b);
                    }
                    self.verify(at, *partition);
                }
            }
            Obs::Truncated { partition, from, .. } | Obs::LogLost { partition, from, .. } => {
                let b = broker.expect("replicas are brokers");
                let name = self.names[*partition as usize].clone();
                let w = &mut self.partitions[*partition as usize];
                w.mirrors.truncate(b, *from);
                let v = w.verified.entry(b).or_insert(0);
                *v = (*v).min(*from);
                // A live ISR member that drops committed records could be elected at
                // once (KIP-101's window). A power loss takes the broker down with it:
                // whether that loses data shows when it is elected again.
                let in_isr = w.state.as_ref().is_some_and(|s| s.isr.contains(&b));
                let leader_hw = w.high_watermark;
                let leader_elsewhere = w.leader.is_some_and(|(l, _)| l != b);
                if matches!(obs, Obs::Truncated { .. }) && in_isr && leader_elsewhere && *from < leader_hw {
                    self.report_once(
                        "strong-isr",
                        "isr-member-truncated",
                        *partition,
                        b,
                        at,
                        format!(
                            "{name}: broker-{b} is in the ISR but dropped offsets from {from}, below the leader's high watermark {leader_hw}: if it became leader now, committed records would be lost"
                        ),
                    );
                }
            }
            // A restarted broker is back once it registered; in KRaft the controller has
            // fenced its old registration (and removed it from the ISRs) by then.
            Obs::BrokerRegistered { broker, .. } => self.set_down(*broker, false),
            Obs::PartitionChanged {
                partition,
                state,
                reason,
            } => {
                if let Some(l) = state.leader
                    && !state.isr.contains(&l)
                {
                    let name = &self.names[*partition as usize];
                    let message = format!(
                        "{name}: broker-{l} leads epoch {} but the ISR is {:?}",
                        state.leader_epoch, state.isr
                    );
                    self.report("leader-in-isr", "leader-outside-isr", at, message);
                }
                let p = *partition as usize;
                if matches!(reason, ElectionReason::Unclean) {
                    self.partitions[p].unclean_epoch = Some(state.leader_epoch);
                }
                self.partitions[p].state = Some(state.clone());
            }
            Obs::BecameLeader { partition, epoch, .. } => {
                let b = broker.expect("leaders are brokers");
                if let Some(&other) = self.claims.get(&(*partition, *epoch))
                    && other != b
                {
                    let name = &self.names[*partition as usize];
                    let message = format!("{name}: broker-{b} and broker-{other} both lead epoch {epoch}");
                    self.report("single-leader", "two-leaders", at, message);
                }
                self.claims.insert((*partition, *epoch), b);
                // A broker taking up leadership must hold everything committed so far,
                // unless an unclean election made it leader (a new lineage begins). One
                // that takes up an epoch older than a leader already claimed (it learns of
                // the controller's changes late) is a zombie: what was committed since
                // came under newer epochs, and it can commit nothing, since no follower
                // that knows a newer epoch fetches from it.
                let p = *partition as usize;
                let w = &mut self.partitions[p];
                let end = w.mirrors.end(b);
                let stale = w.leader.is_some_and(|(_, e)| *epoch < e);
                if !stale && w.unclean_epoch == Some(*epoch) {
                    w.committed = end;
                } else if !stale && end < w.committed {
                    let committed = w.committed;
                    w.committed = end;
                    let name = &self.names[p];
                    let message = format!(
                        "{name}: broker-{b} became leader of epoch {epoch} from the ISR, but its log ends at {end}, below the committed offset {committed}: offsets {end}..{committed} are lost"
                    );
                    self.report("strong-isr", "leader-lacks-records", at, message);
                }
                let w = &mut self.partitions[*partition as usize];
                // A newer epoch takes over as the reference log; a zombie of an older one
                // does not.
                if w.leader.is_none_or(|(_, e)| *epoch >= e) {
                    w.leader = Some((b, *epoch));
                    w.high_watermark = 0;
                    w.verified.values_mut().for_each(|v| *v = 0);
                    w.following.clear();
                }
            }
            Obs::HighWatermark {
                partition,
                epoch,
                high_watermark,
            } => {
                let b = broker.expect("leaders are brokers");
                let key = (*partition, *epoch, b);
                let last = self.high_watermarks.get(&key).copied().unwrap_or(0);
                if *high_watermark < last {
                    let name = &self.names[*partition as usize];
                    let message = format!(
                        "{name}: broker-{b}'s high watermark went back from {last} to {high_watermark} in epoch {epoch}"
                    );
                    self.report("hw-monotonic", "high-watermark-went-back", at, message);
                }
                self.high_watermarks.insert(key, last.max(*high_watermark));
                let w = &mut self.partitions[*partition as usize];
                if w.leader == Some((b, *epoch)) {
                    w.high_watermark = w.high_watermark.max(*high_watermark);
                    w.committed = w.committed.max(*high_watermark);
                    self.verify(at, *partition);
                }
            }
            Obs::AckedInSync {
                partition,
                end_offset,
                isr,
            } => {
                // How many replicas hold the write's last record, as the leader does.
                let b = broker.expect("leaders are brokers");
                let p = *partition as usize;
                let w = &self.partitions[p];
                if !w.mirrors.has(b) {
                    return;
                }
                let last = end_offset.saturating_sub(1);
                // A replica that is down counts as holding it: what a power loss took is
                // the fault's doing, which the protocol cannot see.
                let m = &w.mirrors;
                let holding = m
                    .ids()
                    .filter(|r| {
                        self.down.contains(r)
                            || (m.end(*r) >= *end_offset && m.first_difference(b, *r, last, *end_offset).is_none())
                    })
                    .count() as u32;
                let required = self.min_isr[p];
                if holding < required {
                    let name = &self.names[p];
                    let message = format!(
                        "{name}: an acks=all write ending at offset {end_offset} was acknowledged while {holding} replica(s) held it (the leader counted {isr} in sync), below min.insync.replicas {required}"
                    );
                    self.report("min-isr-ack", "acked-below-min-isr", at, message);
                }
            }
            _ => {}
        }
    }

    /// Compares every replica with the current leader below the leader's high watermark:
    /// different records at one offset are `log-divergence`; an ISR member lacking one is
    /// `strong-isr`.
    fn verify(&mut self, at: Time, p: Pidx) {
        let name = &self.names[p as usize];
        let down = &self.down;
        let w = &mut self.partitions[p as usize];
        let Some((leader, epoch)) = w.leader else { return };
        let hw = w.high_watermark;
        if !w.mirrors.has(leader) {
            return;
        }
        let controller_choice = leader_is_controller_choice(w, leader, epoch);
        let m = &w.mirrors;
        let mut findings: Vec<(&'static str, &'static str, u32, String)> = Vec::new();
        for r in m.ids() {
            if r == leader || !w.following.contains(&r) {
                continue;
            }
            let verified = w.verified.entry(r).or_insert(0);
            let from = *verified;
            let upto = hw.min(m.end(r)).min(m.end(leader));
            if from < upto
                && let Some(o) = m.first_difference(leader, r, from, upto)
            {
                findings.push((
                    "log-divergence",
                    "replicas-differ",
                    r,
                    format!(
                        "{name}: offset {o} holds {} on broker-{leader} (leader, epoch {epoch}) but {} on broker-{r}, below the high watermark {hw}",
                        m.describe(leader, o),
                        m.describe(r, o)
                    ),
                ));
            }
            *verified = upto.max(from);
        }
        let isr: &[u32] = w.state.as_ref().map_or(&[], |s| &s.isr);
        for r in m.ids() {
            if r == leader || down.contains(&r) {
                continue;
            }
            if isr.contains(&r) && m.end(r) < hw && controller_choice {
                findings.push((
                    "strong-isr",
                    "isr-member-short",
                    r,
                    format!(
                        "{name}: broker-{r} is in the ISR but its log ends at {} while the leader broker-{leader}'s high watermark is {hw}",
                        m.end(r)
                    ),
                ));
            }
        }
        for (check, kind, r, message) in findings {
            self.report_once(check, kind, p, r, at, message);
        }
    }

    /// End of run, the replication half of `liveness`: every partition has a leader and
    /// its full replica set in the ISR.
    pub fn liveness(&mut self, at: Time, replicas: &[Vec<u32>]) {
        for (p, w) in self.partitions.iter().enumerate() {
            let Some(state) = &w.state else { continue };
            let name = &self.names[p];
            if state.leader.is_none() {
                let message = format!("{name} has no leader after the drain (ISR {:?})", state.isr);
                self.found.entry("liveness").or_default().push(Violation {
                    at,
                    message,
                    kind: "no-leader",
                });
            } else if state.isr.len() < replicas[p].len() {
                let message = format!(
                    "{name}'s ISR {:?} has not recovered to its replicas {:?} after the drain",
                    state.isr, replicas[p]
                );
                self.found.entry("liveness").or_default().push(Violation {
                    at,
                    message,
                    kind: "isr-not-recovered",
                });
            }
        }
    }
}

/// Whether the leader is the one the controller last chose (a zombie's high watermark
/// is not the partition's).
fn leader_is_controller_choice(w: &PartitionWatch, leader: u32, epoch: u32) -> bool {
    w.state
        .as_ref()
        .is_none_or(|s| s.leader == Some(leader) && s.leader_epoch == epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::ElectionReason::{IsrExpand, IsrShrink};

    fn range(base: u64, seq: u64, count: u32, epoch: u32) -> RecordRange {
        RecordRange {
            base_offset: base,
            producer: 0,
            first_seq: seq,
            count,
            bytes: 100,
            leader_epoch: epoch,
            producer_epoch: 0,
            seq: None,
        }
    }

    fn state(leader: Option<u32>, epoch: u32, isr: &[u32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            partition_epoch: 0,
        }
    }

    fn checker() -> Replication {
        Replication::new(vec!["t-0".to_string()], vec![2])
    }

    fn count(c: &Replication, check: &str) -> usize {
        c.found.get(check).map_or(0, Vec::len)
    }

    const T: Time = Time(1);

    fn changed(c: &mut Replication, leader: Option<u32>, epoch: u32, isr: &[u32], reason: ElectionReason) {
        c.observe(
            T,
            None,
            &Obs::PartitionChanged {
                partition: 0,
                state: state(leader, epoch, isr),
                reason,
            },
        );
    }
    fn lead(c: &mut Replication, b: u32, epoch: u32) {
        c.observe(
            T,
            Some(b),
            &Obs::BecameLeader {
                partition: 0,
                epoch,
                log_end_offset: 0,
            },
        );
    }
    fn append(c: &mut Replication, b: u32, r: RecordRange, source: Option<(u32, u32)>) {
        c.observe(
            T,
            Some(b),
            &Obs::Replicated {
                partition: 0,
                range: r,
                source,
            },
        );
    }
    fn hw(c: &mut Replication, b: u32, epoch: u32, high_watermark: u64) {
        c.observe(
            T,
            Some(b),
            &Obs::HighWatermark {
                partition: 0,
                epoch,
                high_watermark,
            },
        );
    }

    /// Broker 1 leads epoch 1 with ISR [1, 2]; both hold offsets 0..5, committed.
    fn five_committed_on_two() -> Replication {
        let mut c = checker();
        changed(&mut c, Some(1), 1, &[1, 2], IsrExpand);
        lead(&mut c, 1, 1);
        append(&mut c, 1, range(0, 0, 5, 1), None);
        append(&mut c, 2, range(0, 0, 5, 1), Some((1, 1)));
        hw(&mut c, 1, 1, 5);
        c
    }

    #[test]
    fn replicas_that_agree_share_one_copy_and_one_that_diverges_keeps_its_own() {
        let mut m = Mirrors::default();
        for b in [1, 2] {
            m.append(b, &range(0, 0, 5, 0));
            m.append(b, &range(5, 5, 5, 0));
        }
        // One span for both replicas: the second batch continues the first.
        assert_eq!(m.canon.ranges.len(), 1);
        assert!(m.replicas.values().all(|r| r.own.ranges.is_empty()));
        assert_eq!(m.first_difference(1, 2, 0, 10), None);
        // broker-3 holds other records from offset 5 on (a later epoch's).
        m.append(3, &range(0, 0, 5, 0));
        m.append(3, &range(5, 100, 3, 1));
        assert_eq!((m.end(3), m.replicas[&3].shared), (8, 5));
        assert_eq!(m.first_difference(1, 3, 0, 8), Some(5));
        assert_eq!(m.describe(3, 6), "record 101 of producer #0 from epoch 1");
        assert_eq!(m.describe(1, 6), "record 6 of producer #0 from epoch 0");
        // The others truncate to 5: the canon's old tail goes, broker-3's records take
        // its place, and copying them costs nothing more.
        m.truncate(1, 5);
        m.truncate(2, 5);
        assert_eq!((m.canon.end(), m.replicas[&3].shared), (8, 8));
        m.append(1, &range(5, 100, 3, 1));
        assert_eq!(m.replicas[&1].shared, 8);
        assert!(m.replicas.values().all(|r| r.own.ranges.is_empty()));
        assert_eq!(m.first_difference(1, 3, 0, 8), None);
        assert_eq!(m.first_difference(2, 3, 0, 8), Some(5), "broker-2 lacks offset 5");
        // A replica that copies part of a batch and then the rest.
        m.append(2, &range(5, 100, 2, 1));
        m.append(2, &range(7, 102, 1, 1));
        assert_eq!((m.end(2), m.replicas[&2].shared), (8, 8));
    }

    #[test]
    fn divergence_below_the_high_watermark_is_found_and_agreement_is_not() {
        let mut c = five_committed_on_two();
        assert_eq!(count(&c, "log-divergence"), 0);
        assert_eq!(count(&c, "strong-isr"), 0);
        // Broker 2 holds other records at 5..8 (from an older epoch, kept by a faulty
        // truncation) and copies on top of them from the leader.
        append(&mut c, 1, range(5, 5, 3, 1), None);
        append(&mut c, 2, range(5, 9, 3, 0), Some((1, 1)));
        hw(&mut c, 1, 1, 8);
        assert_eq!(count(&c, "log-divergence"), 1);
        assert!(c.found["log-divergence"][0].message.contains("offset 5"));
    }

    #[test]
    fn a_zombies_own_appends_are_not_divergence() {
        let mut c = checker();
        changed(&mut c, Some(2), 2, &[2, 3], IsrShrink);
        lead(&mut c, 2, 2);
        append(&mut c, 2, range(0, 0, 5, 2), None);
        append(&mut c, 3, range(0, 0, 5, 2), Some((2, 2)));
        // Broker 1 still believes it leads epoch 1 and appends other records.
        append(&mut c, 1, range(0, 100, 5, 1), None);
        hw(&mut c, 2, 2, 5);
        assert_eq!(count(&c, "log-divergence"), 0);
    }

    #[test]
    fn an_isr_member_truncating_below_the_high_watermark_breaks_strong_isr() {
        let mut c = five_committed_on_two();
        c.observe(
            T,
            Some(2),
            &Obs::Truncated {
                partition: 0,
                from: 3,
                to: 5,
                why: "test",
            },
        );
        assert_eq!(count(&c, "strong-isr"), 1);
    }

    #[test]
    fn electing_an_isr_member_that_lost_committed_records_breaks_strong_isr() {
        let mut c = five_committed_on_two();
        // Broker 2 loses power (down, so not yet a violation), comes back short, and is
        // elected from the ISR.
        c.set_down(2, true);
        c.observe(
            T,
            Some(2),
            &Obs::LogLost {
                partition: 0,
                from: 2,
                to: 5,
            },
        );
        assert_eq!(count(&c, "strong-isr"), 0);
        c.set_down(2, false);
        changed(&mut c, Some(2), 2, &[2], ElectionReason::SessionExpired);
        assert_eq!(count(&c, "strong-isr"), 0, "elected, but not leading yet");
        lead(&mut c, 2, 2);
        assert_eq!(count(&c, "strong-isr"), 1);
    }

    #[test]
    fn a_broker_taking_up_an_epoch_already_superseded_breaks_nothing() {
        let mut c = five_committed_on_two();
        // The controller moves leadership to broker 2 (epoch 2), then to broker 3 (epoch
        // 3), which commits offsets 5..8 with broker 1. Broker 2 hears of epoch 2 only
        // now, with the five records it held when it was elected.
        changed(&mut c, Some(2), 2, &[2, 3], ElectionReason::SessionExpired);
        changed(&mut c, Some(3), 3, &[3], ElectionReason::SessionExpired);
        append(&mut c, 3, range(0, 0, 5, 1), Some((1, 1)));
        lead(&mut c, 3, 3);
        append(&mut c, 3, range(5, 5, 3, 3), None);
        changed(&mut c, Some(3), 3, &[3, 1], IsrExpand);
        append(&mut c, 1, range(5, 5, 3, 3), Some((3, 3)));
        hw(&mut c, 3, 3, 8);
        lead(&mut c, 2, 2);
        assert_eq!(count(&c, "strong-isr"), 0);
        // Elected anew without those records, it would lose them.
        changed(&mut c, Some(2), 4, &[2], ElectionReason::SessionExpired);
        lead(&mut c, 2, 4);
        assert_eq!(count(&c, "strong-isr"), 1);
    }

    #[test]
    fn min_isr_ack_counts_the_replicas_that_hold_the_write() {
        let mut c = checker();
        changed(&mut c, Some(1), 1, &[1, 2], IsrExpand);
        lead(&mut c, 1, 1);
        append(&mut c, 1, range(0, 0, 5, 1), None);
        append(&mut c, 2, range(0, 0, 5, 1), Some((1, 1)));
        c.observe(
            T,
            Some(1),
            &Obs::AckedInSync {
                partition: 0,
                end_offset: 5,
                isr: 2,
            },
        );
        assert_eq!(count(&c, "min-isr-ack"), 0);
        append(&mut c, 1, range(5, 5, 1, 1), None);
        c.observe(
            T,
            Some(1),
            &Obs::AckedInSync {
                partition: 0,
                end_offset: 6,
                isr: 2,
            },
        );
        assert_eq!(count(&c, "min-isr-ack"), 1);
    }

    /// These rules hold in every correct run; a stream that breaks them on purpose shows
    /// each check can fire.
    #[test]
    fn broken_rules_are_reported() {
        let mut c = checker();
        changed(&mut c, Some(3), 2, &[1, 2], IsrExpand);
        assert_eq!(count(&c, "leader-in-isr"), 1);
        lead(&mut c, 1, 4);
        lead(&mut c, 2, 4);
        assert_eq!(count(&c, "single-leader"), 1);
        hw(&mut c, 1, 4, 9);
        hw(&mut c, 1, 4, 7);
        assert_eq!(count(&c, "hw-monotonic"), 1);
        c.liveness(T, &[vec![1, 2, 3]]);
        assert_eq!(count(&c, "liveness"), 1);
    }

    #[test]
    fn a_new_epoch_and_more_data_keep_the_checks_quiet() {
        let mut c = checker();
        changed(&mut c, Some(1), 1, &[1, 2], IsrExpand);
        lead(&mut c, 1, 1);
        append(&mut c, 1, range(0, 0, 3, 1), None);
        append(&mut c, 2, range(0, 0, 3, 1), Some((1, 1)));
        hw(&mut c, 1, 1, 3);
        hw(&mut c, 1, 1, 3);
        lead(&mut c, 2, 2);
        hw(&mut c, 2, 2, 1);
        c.liveness(T, &[vec![1, 2]]);
        assert!(c.found.is_empty(), "{:?}", c.found.keys().collect::<Vec<_>>());
    }
}
