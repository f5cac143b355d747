//! The replication invariants, checked as the run goes (KAFKA.md §1.10, DESIGN.md §8):
//! `log-divergence`, `strong-isr`, `leader-in-isr`, `hw-monotonic`, `single-leader`,
//! `min-isr-ack`, and the end-of-run `liveness`.
//!
//! The checker reads the replicas' logs from their partition's store (the logs the
//! brokers hold), as the replicas' observations (appends, truncations, power losses) say
//! they changed. Replicas that agree share the store's batches, so below both shared
//! prefixes two logs agree without a look; the checker compares replicas only over offsets
//! that changed since the last comparison, so the work grows with batches, not with the
//! length of the logs.

use crate::check::Violation;
use crate::kafka::log::{SharedStore, Store};
use crate::kafka::{ElectionReason, Obs, PartitionState, Pidx};
use crate::sim::Time;
use std::collections::BTreeMap;

/// How a record reads in a violation: its producer's sequence and its leader epoch.
fn describe(store: &Store, b: u32, offset: u64) -> String {
    match store.range_at(b, offset) {
        Some(r) => format!(
            "record {} of producer #{} from epoch {}",
            r.first_seq + (offset - r.base_offset),
            r.producer,
            r.leader_epoch
        ),
        None => "nothing".to_string(),
    }
}

#[derive(Default)]
struct PartitionWatch {
    /// The partition's logs, as its replicas hold them.
    store: SharedStore,
    /// The replicas whose logs changed so far, in id order: the ones the checks look at.
    replicas: Vec<u32>,
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

impl PartitionWatch {
    fn has(&self, b: u32) -> bool {
        self.replicas.binary_search(&b).is_ok()
    }
    /// Replica `b`'s log changed.
    fn note(&mut self, b: u32) {
        if let Err(i) = self.replicas.binary_search(&b) {
            self.replicas.insert(i, b);
        }
    }
    fn end(&self, b: u32) -> u64 {
        if self.has(b) {
            self.store.borrow().end_offset(b)
        } else {
            0
        }
    }
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
    /// `stores[p]` holds partition `p`'s logs.
    pub fn new(partition_names: Vec<String>, min_isr: Vec<u32>, stores: Vec<SharedStore>) -> Replication {
        Replication {
            partitions: stores
                .into_iter()
                .map(|store| PartitionWatch {
                    store,
                    ..PartitionWatch::default()
                })
                .collect(),
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
                w.note(b);
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
                w.note(b);
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
                let end = w.end(b);
                let stale = w.leader.is_some_and(|(_, e)| *epoch < e);
                if !stale && w.unclean_epoch == Some(*epoch) {
                    w.committed = end;
                } else if !stale && end < w.committed {
                    let committed = w.committed;
                    w.committed = end;
                    let name = &self.names[p];
                    let message = format!(
                        "{name}: broker-{b} became leader of epoch {epoch} from the ISR, but its log ends at {end}, below the committed offset {committed}: {} are lost",
                        super::offsets_text(end, committed)
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
                if !w.has(b) {
                    return;
                }
                let last = end_offset.saturating_sub(1);
                // A replica that is down counts as holding it: what a power loss took is
                // the fault's doing, which the protocol cannot see.
                let store = w.store.borrow();
                let holding = w
                    .replicas
                    .iter()
                    .filter(|&&r| {
                        self.down.contains(&r)
                            || (store.end_offset(r) >= *end_offset
                                && store.first_difference(b, r, last, *end_offset).is_none())
                    })
                    .count() as u32;
                drop(store);
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
        if !w.has(leader) {
            return;
        }
        let controller_choice = leader_is_controller_choice(w, leader, epoch);
        let m = w.store.borrow();
        let mut findings: Vec<(&'static str, &'static str, u32, String)> = Vec::new();
        for &r in &w.replicas {
            if r == leader || !w.following.contains(&r) {
                continue;
            }
            let verified = w.verified.entry(r).or_insert(0);
            let from = *verified;
            let upto = hw.min(m.end_offset(r)).min(m.end_offset(leader));
            if from < upto
                && let Some(o) = m.first_difference(leader, r, from, upto)
            {
                findings.push((
                    "log-divergence",
                    "replicas-differ",
                    r,
                    format!(
                        "{name}: offset {o} holds {} on broker-{leader} (leader, epoch {epoch}) but {} on broker-{r}, below the high watermark {hw}",
                        describe(&m, leader, o),
                        describe(&m, r, o)
                    ),
                ));
            }
            *verified = upto.max(from);
        }
        let isr: &[u32] = w.state.as_ref().map_or(&[], |s| &s.isr);
        for &r in &w.replicas {
            if r == leader || down.contains(&r) {
                continue;
            }
            if isr.contains(&r) && m.end_offset(r) < hw && controller_choice {
                findings.push((
                    "strong-isr",
                    "isr-member-short",
                    r,
                    format!(
                        "{name}: broker-{r} is in the ISR but its log ends at {} while the leader broker-{leader}'s high watermark is {hw}",
                        m.end_offset(r)
                    ),
                ));
            }
        }
        drop(m);
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
    use crate::kafka::log::{Log, RecordRange};
    use std::rc::Rc;

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
            elr: Vec::new(),
            last_known_leader: None,
        }
    }

    /// A checker of one partition, `t-0`, whose replicas' logs the tests write through
    /// `logs` (brokers 1 to 3) as a broker would, before telling the checker.
    fn checker() -> Replication {
        Replication::new(vec!["t-0".to_string()], vec![2], vec![SharedStore::default()])
    }

    fn log(c: &Replication, b: u32) -> Log {
        let store = c.partitions[0].store.clone();
        LOGS.with(|logs| {
            let mut logs = logs.borrow_mut();
            if !Rc::ptr_eq(&logs.0, &store) {
                *logs = (store.clone(), BTreeMap::new());
            }
            logs.1.remove(&b).unwrap_or_else(|| Log::new(store, b))
        })
    }

    /// Broker `b`'s log drops everything from `offset` on (the checker is told next).
    fn cut(c: &Replication, b: u32, offset: u64) {
        let mut l = log(c, b);
        l.truncate_to(offset);
        put_back(b, l);
    }

    fn put_back(b: u32, log: Log) {
        LOGS.with(|logs| logs.borrow_mut().1.insert(b, log));
    }

    thread_local! {
        /// The test's logs, by broker, over the store of its checker.
        static LOGS: std::cell::RefCell<(SharedStore, BTreeMap<u32, Log>)> = Default::default();
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
        let mut l = log(c, b);
        if l.end_offset() != r.base_offset {
            l.truncate_to(r.base_offset);
        }
        l.append_range(&r, T);
        put_back(b, l);
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
        cut(&c, 2, 3);
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
        cut(&c, 2, 2);
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
