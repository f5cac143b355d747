//! One run of a scenario: build the cluster, schedule the faults, drive the engine,
//! collect observations for the checks and the report, and judge the expectations.

use crate::check::at_least_once::{AtLeastOnce, Final};
use crate::check::lost_write::{LostWrite, Names};
use crate::check::replication::Replication;
use crate::check::{CHECKS, CheckResult, cap};
use crate::kafka::log::RecordRange;
use crate::kafka::{
    self, ClusterInfo, ElectionReason, FailReason, MetadataImage, Node, Obs, PartitionState, Pidx, PositionCause,
    RebalanceCause, Role,
};
use crate::report::latency::Latencies;
use crate::report::series::{self, BrokerEvent, GroupSample, PartitionSample, Recorder};
use crate::report::*;
use crate::scenario::{Acks, Fault, FaultKind, RoleRef, Scenario};
use crate::sim::engine::Happening;
use crate::sim::network::Network;
use crate::sim::{Duration, Engine, FaultOp, FaultRecord, NodeId, Target, Time, rng};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Default)]
pub struct RunOptions<'a> {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Stops the run after this many events (a runaway run is an error, not a hang).
    pub max_events: Option<u64>,
    /// Receives the JSONL trace.
    pub trace: Option<Box<dyn Write>>,
    /// Which trace lines to write (all when empty).
    pub trace_filter: crate::trace::TraceFilter,
    /// Called as simulated time advances: (simulated µs so far, total µs).
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// How the scenario file is named in the command that reproduces the run.
    pub source: String,
}

/// Timeline entries of one kind that arrive close together are folded into one line.
const BURST_GAP: crate::sim::Duration = crate::sim::Duration::from_millis(5000);

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum BurstKind {
    ProduceError {
        producer: u32,
        error: &'static str,
        retrying: bool,
    },
    Failed {
        producer: u32,
        reason: String,
    },
    Position {
        group: u32,
        member: u32,
        cause: PositionCause,
    },
    CommitFailed {
        group: u32,
        member: u32,
        error: &'static str,
    },
}

struct Burst {
    first: Time,
    last: Time,
    count: u64,
    records: u64,
    partitions: Vec<Pidx>,
    offsets: Vec<u64>,
}

#[derive(Default)]
struct ProducerStats {
    sent: u64,
    acked: u64,
    failed: u64,
    unacknowledged: u64,
    refused: u64,
    /// Per partition: the error its batches keep getting and since when (cleared by an
    /// acknowledgement).
    stuck: BTreeMap<Pidx, (String, Time)>,
    errors: BTreeMap<String, u64>,
    failed_by_reason: BTreeMap<String, u64>,
    /// The latency of each batch's average record in µs, weighted by its records.
    latencies: Latencies,
    latency_max: u64,
    batches: u64,
    bytes: u64,
    requests: u64,
    retried_batches: u64,
    /// Records in one acknowledged batch, the largest.
    batch_records_max: u64,
    /// Acknowledged batches by records in them: bucket `k` holds 2^k ..= 2^(k+1) - 1.
    batch_histogram: [u64; 32],
    blocked_sends: u64,
    blocked: u64,
}

struct Collector<'a> {
    info: &'a ClusterInfo,
    names: &'a [String],
    first_producer: u32,
    group_first_member: Vec<u32>,
    lost_write: LostWrite,
    at_least_once: AtLeastOnce,
    nonmonotonic: crate::check::nonmonotonic::NonmonotonicPoll,
    replication: Replication,
    producers: Vec<ProducerStats>,
    timeline: Vec<TimelineEntry>,
    bursts: BTreeMap<BurstKind, Burst>,
    lifecycle: Vec<(Time, NodeId, bool)>,
    /// Each partition's state as the controller last published it.
    states: Vec<PartitionState>,
    /// Per partition: since when its ISR lacks a replica, and the total time so far.
    under_replicated: Vec<(Option<Time>, u64)>,
    last_hw: LastHw,
    /// Records processed per (group, member).
    processed: BTreeMap<(u32, u32), u64>,
    groups: Vec<GroupStats>,
    /// The run's faults in schedule order (explicit and drawn), then the drain.
    faults: &'a [Fault],
    /// Per scheduled fault (by engine index): what became of it.
    fault_records: BTreeMap<usize, FaultRecord>,
    /// Per partition: since when it has no leader, and the total time so far.
    offline: Vec<(Option<Time>, u64)>,
    /// Per partition: since when writes to it fail (from a produce error to the next
    /// acknowledgement), and the total time so far.
    refused: Vec<(Option<Time>, u64)>,
    /// ISR changes of one instant, one reason and the same brokers leaving or joining,
    /// folded into one timeline line (its index).
    isr_fold: Vec<IsrFold>,
    /// The run over time.
    series: Recorder,
    /// Per partition: its place among the series' partitions (the scenario's topics').
    series_index: Vec<Option<usize>>,
}

/// ISR changes folded into one timeline entry: in one millisecond, for one reason, the same
/// brokers leaving (or joining) the ISR of several partitions.
struct IsrFold {
    at: Time,
    shrinks: bool,
    reason: ElectionReason,
    /// The brokers that left or joined.
    moved: Vec<u32>,
    /// Each partition with its ISR before and after.
    changes: Vec<(Pidx, Vec<u32>, Vec<u32>)>,
    /// The timeline entry that says it.
    entry: usize,
}

/// What the group coordinator did for one group.
#[derive(Default)]
struct GroupStats {
    generation: i32,
    protocol: String,
    rebalances: u64,
    /// When the current rebalance began, and the total time spent rebalancing.
    began: Option<Time>,
    rebalancing: u64,
    /// The last stable assignment, by member, and how many partitions changed owner.
    last: BTreeMap<Pidx, u32>,
    moved: u64,
    commit_failures: u64,
    poll_timeouts: u64,
    max_poll: crate::sim::Duration,
    fetches: u64,
    fetched: u64,
    /// Each stable generation: when, the assignor, and each member's partitions.
    history: Vec<GenerationReport>,
    /// Revoked partitions and since when; the total time partitions spent revoked.
    unowned: BTreeMap<Pidx, Time>,
    paused: u64,
}

/// The last high watermark each broker announced for each partition it led.
type LastHw = BTreeMap<(Pidx, u32), u64>;

impl Collector<'_> {
    fn producer_name(&self, producer: u32) -> &str {
        &self.names[(self.first_producer + producer) as usize]
    }
    fn member_node(&self, group: u32, member: u32) -> NodeId {
        NodeId(self.group_first_member[group as usize] + member)
    }
    /// The (group, member) a node is, if it is a group member (members come last).
    fn member_of(&self, node: NodeId) -> Option<(u32, u32)> {
        let g = self.group_first_member.iter().rposition(|&first| first <= node.0)?;
        Some((g as u32, node.0 - self.group_first_member[g]))
    }
    fn push(&mut self, at: Time, rank: u8, text: String) {
        self.timeline.push(TimelineEntry {
            at_ms: at.as_millis(),
            at_us: at.0,
            rank,
            text,
        });
    }

    fn burst(&mut self, at: Time, kind: BurstKind, records: u64, partition: Option<Pidx>, offset: Option<u64>) {
        if let Some(b) = self.bursts.get(&kind)
            && at.since(b.last) > BURST_GAP
        {
            let b = self.bursts.remove(&kind).expect("present");
            self.flush_burst(&kind, b);
        }
        let b = self.bursts.entry(kind).or_insert(Burst {
            first: at,
            last: at,
            count: 0,
            records: 0,
            partitions: Vec::new(),
            offsets: Vec::new(),
        });
        b.last = at;
        b.count += 1;
        b.records += records;
        if let Some(p) = partition
            && !b.partitions.contains(&p)
        {
            b.partitions.push(p);
            b.offsets.extend(offset);
        }
    }

    fn partition_list(&self, partitions: &[Pidx]) -> String {
        let mut names: Vec<String> = partitions
            .iter()
            .take(4)
            .map(|&p| self.info.partition_name(p))
            .collect();
        if partitions.len() > 4 {
            names.push(format!("{} more", partitions.len() - 4));
        }
        names.join(", ")
    }

    fn flush_burst(&mut self, kind: &BurstKind, b: Burst) {
        let span = if b.first == b.last {
            String::new()
        } else {
            format!(" (until {})", b.last)
        };
        let parts = self.partition_list(&b.partitions);
        let text = match kind {
            BurstKind::ProduceError {
                producer,
                error,
                retrying,
            } => format!(
                "{}: {} to {} failed with {error}{span}{}",
                self.producer_name(*producer),
                plural(b.count, "produce attempt", "produce attempts"),
                parts,
                if *retrying {
                    "; the producer retries"
                } else {
                    "; the producer gives up"
                }
            ),
            BurstKind::Failed { producer, reason } => {
                format!(
                    "{} gives up {} on {} ({reason}){span}",
                    self.producer_name(*producer),
                    plural(b.records, "record", "records"),
                    parts
                )
            }
            BurstKind::Position { group, member, cause } => {
                let who = &self.names[self.member_node(*group, *member).index()];
                let mut positions: Vec<(Pidx, u64)> =
                    b.partitions.iter().copied().zip(b.offsets.iter().copied()).collect();
                positions.sort_unstable();
                let at: Vec<String> = positions
                    .iter()
                    .map(|(p, o)| format!("{}@{o}", self.info.partition_name(*p)))
                    .collect();
                match cause {
                    PositionCause::NoCommittedOffset(policy) => format!(
                        "{who} has no committed offset: auto.offset.reset={} starts it at {}",
                        policy.word(),
                        at.join(", ")
                    ),
                    PositionCause::OutOfRange(policy) => format!(
                        "{who}'s position is beyond the log (OFFSET_OUT_OF_RANGE): auto.offset.reset={} moves it to {}",
                        policy.word(),
                        at.join(", ")
                    ),
                    PositionCause::Committed => format!("{who} resumes from committed offsets {}", at.join(", ")),
                    PositionCause::Truncated => format!(
                        "{who} finds the log truncated below its position after a leader change (KIP-320) and moves back to {}",
                        at.join(", ")
                    ),
                }
            }
            BurstKind::CommitFailed { group, member, error } => {
                let who = &self.names[self.member_node(*group, *member).index()];
                format!(
                    "{who}: {} failed ({error}){span}",
                    plural(b.count, "offset commit", "offset commits")
                )
            }
        };
        self.push(b.first, 1, text);
    }

    fn observe(&mut self, at: Time, node: NodeId, obs: &Obs) {
        self.lost_write.observe(at, self.info.broker_of(node), obs);
        self.replication.observe(at, self.info.broker_of(node), obs);
        self.at_least_once.observe(at, obs);
        self.nonmonotonic.observe(at, obs);
        match obs {
            Obs::Sent { producer, records } => self.producers[*producer as usize].sent += records,
            Obs::SendBlocked { producer, waited } => {
                let s = &mut self.producers[*producer as usize];
                s.blocked_sends += 1;
                s.blocked += waited.0;
            }
            Obs::ProduceSent { producer, retried, .. } => {
                let s = &mut self.producers[*producer as usize];
                s.requests += 1;
                s.retried_batches += u64::from(*retried);
            }
            Obs::SentUnacknowledged { producer, records, .. } => {
                self.producers[*producer as usize].unacknowledged += u64::from(*records)
            }
            Obs::Acked {
                partition,
                producer,
                count,
                bytes,
                latency_max,
                latency_min,
                ..
            } => {
                let r = &mut self.refused[*partition as usize];
                if let Some(since) = r.0.take() {
                    r.1 += at.since(since).0;
                }
                let s = &mut self.producers[*producer as usize];
                s.stuck.remove(partition);
                s.acked += u64::from(*count);
                s.batches += 1;
                s.batch_records_max = s.batch_records_max.max(u64::from(*count));
                s.batch_histogram[count.max(&1).ilog2() as usize] += 1;
                s.bytes += u64::from(*bytes);
                s.latencies
                    .record((latency_max.0 + latency_min.0) / 2, u64::from(*count));
                s.latency_max = s.latency_max.max(latency_max.0);
                self.series.acked(
                    *producer as usize,
                    u64::from(*count),
                    (latency_max.0 + latency_min.0) / 2,
                );
            }
            Obs::ProduceError {
                partition,
                producer,
                error,
                records,
                retrying,
            } => {
                let s = &mut self.producers[*producer as usize];
                *s.errors.entry(error.name().to_string()).or_default() += 1;
                self.series.error(*producer as usize, error.name());
                let stuck = s.stuck.entry(*partition).or_insert((String::new(), at));
                stuck.0 = error.name().to_string();
                self.refused[*partition as usize].0.get_or_insert(at);
                let kind = BurstKind::ProduceError {
                    producer: *producer,
                    error: error.name(),
                    retrying: *retrying,
                };
                self.burst(at, kind, u64::from(*records), Some(*partition), None);
            }
            Obs::Failed {
                partition,
                producer,
                count,
                reason,
                ..
            } => {
                let reason_kind = reason;
                let reason = match reason {
                    FailReason::DeliveryTimeout => "delivery.timeout.ms expired".to_string(),
                    FailReason::Error(e) => e.name().to_string(),
                    FailReason::ProducerCrashed => "the producer crashed before sending them".to_string(),
                    FailReason::BufferExhausted => {
                        "BufferExhaustedException: buffer.memory full for max.block.ms".to_string()
                    }
                };
                self.refused[*partition as usize].0.get_or_insert(at);
                self.series.failed(*producer as usize, u64::from(*count));
                let s = &mut self.producers[*producer as usize];
                if matches!(reason_kind, FailReason::BufferExhausted) {
                    s.refused += u64::from(*count);
                } else {
                    s.failed += u64::from(*count);
                    *s.failed_by_reason.entry(reason.clone()).or_default() += u64::from(*count);
                }
                self.burst(
                    at,
                    BurstKind::Failed {
                        producer: *producer,
                        reason,
                    },
                    u64::from(*count),
                    Some(*partition),
                    None,
                );
            }
            Obs::LogLost { partition, from, to } => {
                let text = format!(
                    "{} lost {} of {} (written but not yet flushed to disk)",
                    self.names[node.index()],
                    crate::check::offsets_text(*from, *to),
                    self.info.partition_name(*partition)
                );
                self.push(at, 1, text);
            }
            Obs::PositionSet {
                group,
                member,
                partition,
                offset,
                cause,
            } => {
                let kind = BurstKind::Position {
                    group: *group,
                    member: *member,
                    cause: *cause,
                };
                self.burst(at, kind, 0, Some(*partition), Some(*offset));
            }
            Obs::RebalanceBegan {
                group,
                generation,
                cause,
            } => {
                let g = &mut self.groups[*group as usize];
                g.began.get_or_insert(at);
                let (who, why) = match cause {
                    RebalanceCause::Joined(m) => (*m, "joined"),
                    RebalanceCause::Rejoined(m) => (*m, "joined again"),
                    RebalanceCause::Left(m) => (*m, "left the group"),
                    RebalanceCause::SessionTimeout(m) => (*m, "sent no heartbeat for session.timeout.ms"),
                };
                let text = format!(
                    "{} rebalances (generation {generation}): {} {why}",
                    self.info.groups[*group as usize],
                    self.names[self.member_node(*group, who).index()]
                );
                self.push(at, 2, text);
            }
            Obs::GroupStable {
                group,
                generation,
                protocol,
                assignment,
            } => {
                let names = self.names;
                let node = |m: u32| names[self.member_node(*group, m).index()].clone();
                let mut sorted = assignment.clone();
                sorted.sort_by_key(|(m, _)| *m);
                let by_member: BTreeMap<String, Vec<String>> = sorted
                    .iter()
                    .map(|(m, ps)| (node(*m), ps.iter().map(|&p| self.info.partition_name(p)).collect()))
                    .collect();
                let parts: Vec<String> = sorted
                    .iter()
                    .map(|(m, ps)| {
                        let list: Vec<String> = ps.iter().map(|&p| self.info.partition_name(p)).collect();
                        format!(
                            "{}: {}",
                            node(*m),
                            if list.is_empty() {
                                "nothing".to_string()
                            } else {
                                list.join(", ")
                            }
                        )
                    })
                    .collect();
                let g = &mut self.groups[*group as usize];
                g.history.push(GenerationReport {
                    generation: *generation,
                    at_ms: at.as_millis(),
                    protocol: protocol.clone(),
                    assignment: by_member,
                });
                g.generation = *generation;
                g.protocol = protocol.clone();
                g.rebalances += 1;
                let took = g.began.take().map(|b| at.since(b).0).unwrap_or(0);
                g.rebalancing += took;
                let now: BTreeMap<Pidx, u32> = assignment
                    .iter()
                    .flat_map(|(m, ps)| ps.iter().map(move |&p| (p, *m)))
                    .collect();
                g.moved += now
                    .iter()
                    .filter(|(p, m)| g.last.get(p).is_some_and(|old| old != *m))
                    .count() as u64;
                for (p, m) in now {
                    if let Some(since) = g.unowned.remove(&p) {
                        g.paused += at.since(since).0;
                    }
                    // A partition withheld for a round keeps its last owner here, so a
                    // cooperative move counts once, when it arrives.
                    g.last.insert(p, m);
                }
                let text = format!(
                    "{} is stable in generation {generation} ({protocol}, {}ms after the rebalance began): {}",
                    self.info.groups[*group as usize],
                    took / 1000,
                    parts.join(" · ")
                );
                self.push(at, 2, text);
            }
            Obs::PollTimeout { group, member } => {
                self.groups[*group as usize].poll_timeouts += 1;
                let text = format!(
                    "{}'s poll took longer than max.poll.interval.ms ({}): it leaves the group, and its next commit will fail",
                    self.names[self.member_node(*group, *member).index()],
                    self.groups[*group as usize].max_poll
                );
                self.push(at, 2, text);
            }
            Obs::Revoked { group, partitions, .. } => {
                let g = &mut self.groups[*group as usize];
                for &p in partitions {
                    g.unowned.entry(p).or_insert(at);
                }
            }
            Obs::MemberStarted { .. } => {}
            Obs::Fetched { group, records, .. } => {
                let g = &mut self.groups[*group as usize];
                g.fetches += 1;
                g.fetched += records;
            }
            Obs::CommitFailed { group, member, error } => {
                self.groups[*group as usize].commit_failures += 1;
                let kind = BurstKind::CommitFailed {
                    group: *group,
                    member: *member,
                    error: error.name(),
                };
                self.burst(at, kind, 0, None, None);
            }
            Obs::BrokerFenced { broker, reason } => {
                let why = match reason {
                    ElectionReason::SessionExpired => format!(
                        "no heartbeat for broker.session.timeout.ms ({})",
                        self.info.config.broker_session_timeout
                    ),
                    ElectionReason::Restarted => "it registered again after a restart".to_string(),
                    _ => format!("{reason:?}"),
                };
                self.push(at, 1, format!("controller fences broker-{broker}: {why}"));
                self.series.broker(BrokerEvent {
                    at_us: at.0,
                    broker: *broker,
                    event: "fenced",
                });
            }
            Obs::BrokerUnfenced { broker } => {
                self.series.broker(BrokerEvent {
                    at_us: at.0,
                    broker: *broker,
                    event: "unfenced",
                });
                self.push(
                    at,
                    1,
                    format!("controller unfences broker-{broker}: it is back and caught up on metadata"),
                );
            }
            Obs::PartitionChanged {
                partition,
                state,
                reason,
            } => {
                let full = state.isr.len() == self.info.partitions[*partition as usize].replicas.len();
                span(&mut self.under_replicated[*partition as usize], at, !full);
                span(&mut self.offline[*partition as usize], at, state.leader.is_none());
                if let Some(i) = self.series_index[*partition as usize] {
                    self.series.partition_changed(i, series_change(at, state));
                }
                let before = std::mem::replace(&mut self.states[*partition as usize], state.clone());
                if before.leader == state.leader {
                    self.isr_changed(at, *partition, &before.isr, &state.isr, *reason);
                } else {
                    let text = partition_change(self.info, *partition, &before, state, *reason);
                    self.push(at, 1, text);
                }
            }
            Obs::Truncated {
                partition,
                from,
                to,
                why,
            } => {
                let text = format!(
                    "{} truncates {} to offset {from}, dropping {} ({why})",
                    self.names[node.index()],
                    self.info.partition_name(*partition),
                    crate::check::offsets_text(*from, *to)
                );
                self.push(at, 1, text);
                if let (Some(i), Some(broker)) = (self.series_index[*partition as usize], self.info.broker_of(node)) {
                    let t = series::Truncation {
                        at_us: at.0,
                        broker,
                        from: *from,
                        to: *to,
                    };
                    self.series.truncated(i, t);
                }
            }
            Obs::Processed { group, member, records } => {
                let n: u64 = records.iter().map(|(_, r)| u64::from(r.count)).sum();
                *self.processed.entry((*group, *member)).or_default() += n;
            }
            Obs::Committed { .. }
            | Obs::BrokerRegistered { .. }
            | Obs::BecameLeader { .. }
            | Obs::Replicated { .. }
            | Obs::AckedInSync { .. } => {}
            Obs::HighWatermark {
                partition,
                high_watermark,
                ..
            } => {
                if let Some(b) = self.info.broker_of(node) {
                    self.last_hw.insert((*partition, b), *high_watermark);
                }
            }
        }
    }

    /// An ISR change: its own timeline line, or folded into the line of other partitions'
    /// changes at the same instant, for the same reason, by the same brokers.
    fn isr_changed(&mut self, at: Time, p: Pidx, before: &[u32], after: &[u32], reason: ElectionReason) {
        let shrinks = after.len() < before.len();
        let mut moved: Vec<u32> = if shrinks {
            before.iter().filter(|b| !after.contains(b)).copied().collect()
        } else {
            after.iter().filter(|b| !before.contains(b)).copied().collect()
        };
        moved.sort_unstable();
        // One moment as the timeline shows it: the same millisecond.
        self.isr_fold.retain(|f| f.at.as_millis() == at.as_millis());
        let text = match self
            .isr_fold
            .iter_mut()
            .find(|f| f.shrinks == shrinks && f.reason == reason && f.moved == moved)
        {
            Some(fold) => {
                fold.changes.push((p, before.to_vec(), after.to_vec()));
                let entry = fold.entry;
                let text = isr_fold_text(self.info, fold);
                self.timeline[entry].text = text;
                return;
            }
            None => isr_text(self.info, p, before, after, reason),
        };
        self.push(at, 1, text);
        self.isr_fold.push(IsrFold {
            at,
            shrinks,
            reason,
            moved,
            changes: vec![(p, before.to_vec(), after.to_vec())],
            entry: self.timeline.len() - 1,
        });
    }

    fn fault(&mut self, record: &FaultRecord) {
        self.fault_records.insert(record.index, record.clone());
        let written = self.faults.get(record.index).filter(|_| record.heal_of.is_none());
        // Each role the fault names, and the node the engine resolved it to.
        let roles: Vec<(&str, String)> = written
            .map(|f| fault_targets(&f.kind))
            .unwrap_or_default()
            .into_iter()
            .filter(|t| RoleRef::parse(t).is_some())
            .zip(record.roles.iter().map(|n| self.names[n.index()].clone()))
            .collect();
        let Some(op) = &record.op else {
            let (kind, target) = fault_words(&written.expect("only written faults name roles").kind);
            let why = record.unresolved.clone().unwrap_or_default();
            self.push(record.at, 0, format!("{kind} {target} does not fire: {why}"));
            return;
        };
        let name = |n: &NodeId| self.names[n.index()].clone();
        let led = |n: &NodeId| -> Vec<Pidx> {
            match self.info.broker_of(*n) {
                Some(b) => (0..self.info.partitions.len() as Pidx)
                    .filter(|&p| self.states[p as usize].leader == Some(b))
                    .collect(),
                None => Vec::new(),
            }
        };
        let offline = |n: &NodeId| {
            let parts = led(n);
            if parts.is_empty() {
                String::new()
            } else {
                format!("; it leads {}", self.partition_list(&parts))
            }
        };
        let mut text = match (op, record.heal_of) {
            // A heal that found nothing to undo (the drain or `heal: all` got there
            // first) is not worth a line.
            (_, Some(_)) if !record.fired => return,
            (FaultOp::Restart(n), Some(of)) => {
                let f = &self.faults[of];
                let what = match f.kind {
                    FaultKind::PowerLoss(_) => "power loss",
                    FaultKind::Stop(_) => "shutdown",
                    _ => "crash",
                };
                format!(
                    "{} restarts (its {what} lasted {})",
                    name(n),
                    f.lasts.unwrap_or_default()
                )
            }
            (FaultOp::Undo(_), Some(of)) => {
                let f = &self.faults[of];
                let (kind, target) = fault_words(&f.kind);
                format!("{kind} {target} ends after {}", f.lasts.unwrap_or_default())
            }
            (FaultOp::Crash(n), _) if self.info.broker_of(*n).is_none() => format!("{} crashes", name(n)),
            (FaultOp::Crash(n), _) => format!(
                "{} crashes (the process dies; its disk and page cache survive){}",
                name(n),
                offline(n)
            ),
            (FaultOp::PowerLoss(n), _) => {
                format!("{} loses power (unflushed log data is gone){}", name(n), offline(n))
            }
            (FaultOp::Stop(n), _) => format!(
                "{} shuts down cleanly (close(): it commits under auto-commit and leaves the group)",
                name(n)
            ),
            (FaultOp::Restart(n), _) => format!("{} restarts", name(n)),
            (FaultOp::Pause(n, d), _) => {
                format!("{} pauses for {d} (a stall: it handles nothing, then resumes)", name(n))
            }
            (FaultOp::Isolate(n), _) => format!("{} is cut off from every node", name(n)),
            (FaultOp::Partition(groups), _) => {
                let gs: Vec<String> = groups
                    .iter()
                    .map(|g| format!("{{{}}}", g.iter().map(name).collect::<Vec<_>>().join(", ")))
                    .collect();
                format!("network partition: {}", gs.join(" | "))
            }
            (FaultOp::Cut(a, b), _) => format!("one-way cut: {} can no longer send to {}", name(a), name(b)),
            (FaultOp::Slow(nodes, d), _) => {
                format!(
                    "links of {} get {d} more latency",
                    nodes.iter().map(name).collect::<Vec<_>>().join(", ")
                )
            }
            (FaultOp::HealAll, _) => "the network heals".to_string(),
            (FaultOp::Undo(_), None) => unreachable!("only heals undo"),
            (FaultOp::Drain, _) => {
                let restarted: Vec<String> = record.affected.iter().map(name).collect();
                let mut t = "drain begins: producers stop".to_string();
                if record.healed > 0 {
                    t.push_str(", the network heals");
                }
                if !restarted.is_empty() {
                    let verb = if restarted.len() == 1 { "comes" } else { "come" };
                    t.push_str(&format!(", {} {verb} back", restarted.join(", ")));
                }
                t
            }
        };
        for (role, holder) in &roles {
            text.push_str(&format!(" [{role} = {holder}]"));
        }
        if !record.fired && !matches!(op, FaultOp::Drain) {
            text.push_str(" (no effect: nothing to change)");
        }
        if record.fired {
            let mut changes: Vec<(NodeId, bool)> = Vec::new();
            match op {
                FaultOp::Crash(n) | FaultOp::PowerLoss(n) | FaultOp::Stop(n) => {
                    changes.push((*n, true));
                    if let Some((g, m)) = self.member_of(*n) {
                        let crashed = !matches!(op, FaultOp::Stop(_));
                        self.at_least_once.member_down(g, m, crashed);
                    }
                }
                FaultOp::Restart(n) => changes.push((*n, false)),
                FaultOp::Drain => changes.extend(record.affected.iter().map(|n| (*n, false))),
                _ => {}
            }
            for (n, down) in changes {
                self.lifecycle.push((record.at, n, down));
                if let Some(broker) = self.info.broker_of(n) {
                    self.series.broker(BrokerEvent {
                        at_us: record.at.0,
                        broker,
                        event: if down { "down" } else { "up" },
                    });
                }
                // A broker counts as back (electable) once it has registered again; the
                // checker sees that through the controller's observation.
                if let Some(b) = self.info.broker_of(n).filter(|_| down) {
                    self.replication.set_down(b, true);
                }
            }
        }
        if !matches!(op, FaultOp::Drain) || record.fired {
            self.push(record.at, 0, text);
        } else {
            self.push(record.at, 0, "drain begins: producers stop".to_string());
        }
    }
}

/// A partition's state as the series keeps it.
fn series_change(at: Time, state: &PartitionState) -> series::PartitionChange {
    series::PartitionChange {
        at_us: at.0,
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        isr: state.isr.clone(),
    }
}

/// Opens or closes a span of time (`since`, total so far) at `at`.
fn span(s: &mut (Option<Time>, u64), at: Time, open: bool) {
    match (s.0, open) {
        (None, true) => s.0 = Some(at),
        (Some(since), false) => {
            s.1 += at.since(since).0;
            s.0 = None;
        }
        _ => {}
    }
}

fn broker_list(brokers: &[u32]) -> String {
    format!(
        "[{}]",
        brokers.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// One timeline line for a partition's change of leader or ISR.
fn partition_change(
    info: &ClusterInfo,
    p: Pidx,
    before: &PartitionState,
    after: &PartitionState,
    reason: ElectionReason,
) -> String {
    let name = info.partition_name(p);
    let leader = |l: Option<u32>| l.map_or("none".to_string(), |b| format!("broker-{b}"));
    if before.leader != after.leader {
        let how = match (reason, after.leader) {
            (ElectionReason::Unclean, _) => {
                " by UNCLEAN election: an out-of-sync replica leads, and what only the others held is lost"
            }
            (_, None) => ": no in-sync replica is alive, so the partition is offline",
            _ => "",
        };
        return format!(
            "{name}: leader {} -> {}, epoch {}, isr {}{how}",
            leader(before.leader),
            leader(after.leader),
            after.leader_epoch,
            broker_list(&after.isr)
        );
    }
    isr_text(info, p, &before.isr, &after.isr, reason)
}

/// Why an ISR changed, in words.
fn isr_why(reason: ElectionReason) -> &'static str {
    match reason {
        ElectionReason::IsrShrink => "the leader found it behind for replica.lag.time.max.ms",
        ElectionReason::IsrExpand => "it caught up with the leader",
        ElectionReason::SessionExpired | ElectionReason::Restarted => "its broker was fenced",
        ElectionReason::BrokerReturned | ElectionReason::Unclean => "",
    }
}

/// One partition's ISR change: `orders-0: ISR shrinks [1, 2, 3] -> [1, 2] (why)`.
fn isr_text(info: &ClusterInfo, p: Pidx, before: &[u32], after: &[u32], reason: ElectionReason) -> String {
    let verb = if after.len() < before.len() {
        "shrinks"
    } else {
        "expands"
    };
    format!(
        "{}: ISR {verb} {} -> {} ({})",
        info.partition_name(p),
        broker_list(before),
        broker_list(after),
        isr_why(reason)
    )
}

/// Several partitions' ISR changes by the same brokers at one instant, in one line:
/// `ISR shrinks in 3 partitions, without broker-2 (why): orders-0 [1, 2, 3] -> [1, 3], …`.
fn isr_fold_text(info: &ClusterInfo, fold: &IsrFold) -> String {
    let brokers: Vec<String> = fold.moved.iter().map(|b| format!("broker-{b}")).collect();
    let (verb, how) = if fold.shrinks {
        ("shrinks", "without")
    } else {
        ("expands", "with")
    };
    let changes: Vec<String> = fold
        .changes
        .iter()
        .map(|(p, before, after)| {
            format!(
                "{} {} -> {}",
                info.partition_name(*p),
                broker_list(before),
                broker_list(after)
            )
        })
        .collect();
    format!(
        "ISR {verb} in {} partitions, {how} {} ({}): {}",
        fold.changes.len(),
        brokers.join(" and "),
        isr_why(fold.reason),
        changes.join(" · ")
    )
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The engine's form of a scenario fault: targets as nodes or roles, and how long after
/// firing it heals (a pause carries its own length).
fn fault_op(f: &Fault, target: &dyn Fn(&str) -> Target<Role>) -> (FaultOp<Target<Role>>, Option<Duration>) {
    let op = match &f.kind {
        FaultKind::Crash(n) => FaultOp::Crash(target(n)),
        FaultKind::Stop(n) => FaultOp::Stop(target(n)),
        FaultKind::PowerLoss(n) => FaultOp::PowerLoss(target(n)),
        FaultKind::Restart(n) => FaultOp::Restart(target(n)),
        FaultKind::Pause(n) => {
            let length = f.lasts.expect("validation gives every pause a length");
            return (FaultOp::Pause(target(n), length), None);
        }
        FaultKind::Isolate(n) => FaultOp::Isolate(target(n)),
        FaultKind::Partition(groups) => {
            FaultOp::Partition(groups.iter().map(|g| g.iter().map(|n| target(n)).collect()).collect())
        }
        FaultKind::Cut { from, to } => FaultOp::Cut(target(from), target(to)),
        FaultKind::Slow { nodes, latency } => FaultOp::Slow(nodes.iter().map(|n| target(n)).collect(), *latency),
        FaultKind::HealAll => FaultOp::HealAll,
    };
    (op, f.lasts)
}

/// Every node name and role a fault names, in the order written.
fn fault_targets(kind: &FaultKind) -> Vec<&str> {
    match kind {
        FaultKind::Crash(n)
        | FaultKind::Stop(n)
        | FaultKind::PowerLoss(n)
        | FaultKind::Restart(n)
        | FaultKind::Pause(n)
        | FaultKind::Isolate(n) => vec![n],
        FaultKind::Partition(groups) => groups.iter().flatten().map(String::as_str).collect(),
        FaultKind::Cut { from, to } => vec![from, to],
        FaultKind::Slow { nodes, .. } => nodes.iter().map(String::as_str).collect(),
        FaultKind::HealAll => Vec::new(),
    }
}

fn fault_words(kind: &FaultKind) -> (String, String) {
    match kind {
        FaultKind::Crash(n) => ("crash".into(), n.clone()),
        FaultKind::Stop(n) => ("stop".into(), n.clone()),
        FaultKind::PowerLoss(n) => ("power-loss".into(), n.clone()),
        FaultKind::Restart(n) => ("restart".into(), n.clone()),
        FaultKind::Pause(n) => ("pause".into(), n.clone()),
        FaultKind::Isolate(n) => ("isolate".into(), n.clone()),
        FaultKind::Partition(groups) => (
            "partition".into(),
            groups
                .iter()
                .map(|g| format!("[{}]", g.join(", ")))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        FaultKind::Cut { from, to } => ("cut".into(), format!("{from} -> {to}")),
        FaultKind::Slow { nodes, latency } => ("slow".into(), format!("{} by {latency}", nodes.join(", "))),
        FaultKind::HealAll => ("heal".into(), "all".into()),
    }
}

/// Weighted percentile of (value, weight) samples sorted by value.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Why a run gave no report.
#[derive(Debug)]
pub enum RunError {
    /// The trace could not be written.
    Trace(std::io::Error),
    /// The trace filter names a node or partition the run does not have.
    TraceFilter(String),
    /// The run handled its budget of events (`max_events`) before its end.
    Budget { events: u64, simulated_ms: u64 },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Trace(e) => write!(f, "cannot write the trace: {e}"),
            RunError::TraceFilter(e) => write!(f, "{e}"),
            RunError::Budget { events, simulated_ms } => write!(
                f,
                "the run used up its budget of {events} events at {} of simulated time and was stopped (raise it with --max-events)",
                Time::from_millis(*simulated_ms)
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `scenario` and returns its report.
pub fn run(scenario: &Scenario, mut opts: RunOptions) -> Result<Report, RunError> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let (nodes, info) = kafka::build(scenario, seed);
    let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
    let network = Network::new(
        nodes.len(),
        scenario.latency,
        scenario.jitter,
        rng::stream(seed, "network"),
    );
    let mut engine: Engine<Node> = Engine::new(nodes, network);
    if let Some(sink) = opts.trace.take() {
        let partitions: Vec<String> = (0..info.partitions.len() as Pidx)
            .map(|p| info.partition_name(p))
            .collect();
        opts.trace_filter
            .check(&names, &partitions)
            .map_err(RunError::TraceFilter)?;
        let first_producer = (scenario.brokers + 1) as usize;
        let producers: u32 = scenario.producers.iter().map(|p| p.instances).sum();
        let mut members = Vec::new();
        let mut next = first_producer + producers as usize;
        for g in &scenario.groups {
            members.push(names[next..next + g.members as usize].to_vec());
            next += g.members as usize;
        }
        let trace_names = crate::trace::Names {
            partitions,
            producers: names[first_producer..first_producer + producers as usize].to_vec(),
            groups: info.groups.clone(),
            members,
        };
        engine.set_trace(sink);
        engine.set_trace_shape(crate::trace::shape(trace_names, std::mem::take(&mut opts.trace_filter)));
    }
    if let Some(n) = opts.max_events {
        engine.set_max_events(n);
    }
    let id = |n: &str| NodeId(names.iter().position(|x| x == n).expect("validated node name") as u32);
    let target = |t: &str| -> Target<Role> {
        match RoleRef::parse(t) {
            Some(Ok(RoleRef::Leader(topic, p))) => {
                let t = info.topics.iter().find(|x| x.name == topic && !x.internal);
                Target::Role(Role::Leader(t.expect("validated topic").first + p))
            }
            Some(Ok(RoleRef::Coordinator(g))) => {
                let g = info.groups.iter().position(|x| x == g).expect("validated group");
                Target::Role(Role::Coordinator(g as u32))
            }
            _ => Target::Node(id(t)),
        }
    };
    // The scenario's faults and the nemesis's, scheduled in order: a fault's engine index
    // is its place in this list, and the drain comes right after.
    let faults = crate::scenario::nemesis::schedule(scenario, seed);
    for f in &faults {
        let (op, heal_after) = fault_op(f, &target);
        engine.schedule_fault(Time(f.at.0), op, heal_after);
    }
    engine.schedule_fault(Time(scenario.duration.0), FaultOp::Drain, None);

    // Node ids: brokers, the controller, producer instances, group members.
    let first_producer = scenario.brokers + 1;
    let total_producers: u32 = scenario.producers.iter().map(|p| p.instances).sum();
    let mut group_first_member = Vec::new();
    let mut next = first_producer + total_producers;
    for g in &scenario.groups {
        group_first_member.push(next);
        next += g.members;
    }
    let mut c = Collector {
        info: &info,
        names: &names,
        first_producer,
        group_first_member,
        lost_write: LostWrite::default(),
        replication: Replication::new(
            (0..info.partitions.len() as Pidx)
                .map(|p| info.partition_name(p))
                .collect(),
            (0..info.partitions.len() as Pidx)
                .map(|p| {
                    let t = info.topic_of(p);
                    t.min_insync_replicas.min(t.replication_factor)
                })
                .collect(),
            (0..info.partitions.len() as Pidx)
                .map(|p| {
                    let first = info.partitions[p as usize].replicas[0];
                    broker(&engine, &info, first)
                        .log(p)
                        .expect("a replica holds a log")
                        .store()
                })
                .collect(),
        ),
        at_least_once: AtLeastOnce::new(scenario.groups.len()),
        nonmonotonic: Default::default(),
        producers: (0..total_producers).map(|_| ProducerStats::default()).collect(),
        timeline: Vec::new(),
        bursts: BTreeMap::new(),
        lifecycle: Vec::new(),
        states: MetadataImage::initial(&info).partitions,
        under_replicated: vec![(None, 0); info.partitions.len()],
        last_hw: BTreeMap::new(),
        processed: BTreeMap::new(),
        groups: scenario
            .groups
            .iter()
            .map(|g| GroupStats {
                max_poll: g.max_poll_interval,
                ..GroupStats::default()
            })
            .collect(),
        faults: &faults,
        fault_records: BTreeMap::new(),
        offline: vec![(None, 0); info.partitions.len()],
        refused: vec![(None, 0); info.partitions.len()],
        isr_fold: Vec::new(),
        series: Recorder::default(),
        series_index: vec![None; info.partitions.len()],
    };
    c.replication.set_initial(&c.states);
    let user: Vec<Pidx> = info.user_partitions().collect();
    for (i, &p) in user.iter().enumerate() {
        c.series_index[p as usize] = Some(i);
    }
    c.series = Recorder::new(
        (0..total_producers)
            .map(|p| names[(first_producer + p) as usize].clone())
            .collect(),
        user.iter()
            .map(|&p| {
                let replicas = info.partitions[p as usize].replicas.clone();
                (
                    info.partition_name(p),
                    replicas,
                    series_change(Time::ZERO, &c.states[p as usize]),
                )
            })
            .collect(),
        scenario.groups.iter().map(|g| g.group.clone()).collect(),
    );

    let end = Time((scenario.duration + scenario.drain).0);
    // The engine runs in slices (for the progress bar), stopping also at every picture.
    let slices = 200u64;
    let mut stops: Vec<Time> = (1..slices).map(|i| Time(end.0 / slices * i)).collect();
    stops.push(end);
    // The series' points end at these stops.
    let points = stops.clone();
    let pictures: Vec<Time> = scenario.pictures.iter().map(|d| Time(d.0)).collect();
    stops.extend(&pictures);
    stops.sort_unstable();
    stops.dedup();
    let mut drawn = Vec::new();
    let mut lag_samples: Vec<Vec<(u64, u64)>> = vec![Vec::new(); scenario.groups.len()];
    for (i, until) in stops.into_iter().enumerate() {
        engine.run_until(until, &mut |h| match h {
            Happening::Observed { at, node, obs } => c.observe(at, node, obs),
            Happening::Fault(record) => c.fault(record),
        });
        if pictures.contains(&until) {
            drawn.push(Picture {
                at_ms: until.as_millis(),
                partitions: partition_reports(&engine, &info, &c.last_hw, &c.under_replicated, until),
                groups: group_marks(&engine, &info, scenario, &c.last_hw, &c.group_first_member),
            });
        }
        let lag_sample = i % 5 == 4 || until == end;
        let point = points.binary_search(&until).is_ok();
        if lag_sample || point {
            let marks = group_marks(&engine, &info, scenario, &c.last_hw, &c.group_first_member);
            // The groups' lag, 40 times a run: the high watermark minus the committed
            // offset, summed over the group's partitions.
            if lag_sample {
                for (g, m) in marks.iter().enumerate() {
                    lag_samples[g].push((until.as_millis(), m.lag.values().sum()));
                }
            }
            if point {
                close_point(&mut c, &engine, &info, &user, &marks, until);
            }
        }
        if let Some(progress) = opts.progress.as_mut() {
            progress(until.0, end.0);
        }
        if engine.over_budget() {
            return Err(RunError::Budget {
                events: engine.events(),
                simulated_ms: engine.now().as_millis(),
            });
        }
    }
    engine.finish_trace().map_err(RunError::Trace)?;
    for (kind, b) in std::mem::take(&mut c.bursts) {
        c.flush_burst(&kind, b);
    }
    c.timeline.sort_by_key(|e| (e.at_us, e.rank));

    let series = std::mem::take(&mut c.series).finish();
    let mut report = assemble(scenario, seed, &opts.source, &engine, &info, c);
    report.pictures = drawn;
    report.series = series;
    for (g, samples) in lag_samples.into_iter().enumerate() {
        report.consumer_groups[g].lag_over_time = samples
            .into_iter()
            .map(|(at_ms, lag)| LagSample { at_ms, lag })
            .collect();
    }
    Ok(report)
}

/// Ends the series' open point at `until`, sampling the producers' requests in flight,
/// each replica's log end and high watermark, and the groups' `marks`.
fn close_point(
    c: &mut Collector,
    engine: &Engine<Node>,
    info: &ClusterInfo,
    user: &[Pidx],
    marks: &[GroupMarks],
    until: Time,
) {
    let in_flight: Vec<u32> = (0..c.producers.len() as u32)
        .map(|p| {
            let node = NodeId(c.first_producer + p);
            match engine.node(node) {
                Node::Producer(producer) if engine.is_up(node) => producer.requests_in_flight() as u32,
                _ => 0,
            }
        })
        .collect();
    let partitions: Vec<PartitionSample> = user
        .iter()
        .map(|&p| PartitionSample {
            replicas: info.partitions[p as usize]
                .replicas
                .iter()
                .map(|&r| {
                    let leo = broker(engine, info, r).log(p).map_or(0, |l| l.end_offset());
                    (leo, replica_high_watermark(engine, info, &c.last_hw, r, p))
                })
                .collect(),
        })
        .collect();
    let groups: Vec<GroupSample> = marks
        .iter()
        .map(|m| GroupSample {
            lag: m.lag.values().sum(),
            partitions: m
                .lag
                .keys()
                .map(|name| {
                    (
                        name.clone(),
                        (m.committed.get(name).copied(), m.positions.get(name).map(|p| p.1)),
                    )
                })
                .collect(),
        })
        .collect();
    c.series.close(until.as_millis(), &in_flight, &partitions, &groups);
}

/// The broker that coordinates group `g` now: the leader of its `__consumer_offsets`
/// partition as the controller last published it, or, while it has none, its first
/// replica (whose disk holds the offsets it had).
fn coordinator_of(engine: &Engine<Node>, info: &ClusterInfo, g: usize) -> u32 {
    let p = info.offsets_pidx[g];
    controller(engine, info).image.partitions[p as usize]
        .leader
        .unwrap_or_else(|| info.preferred_leader(p))
}

fn broker<'e>(engine: &'e Engine<Node>, info: &ClusterInfo, b: u32) -> &'e kafka::broker::Broker {
    match engine.node(info.broker_node(b)) {
        Node::Broker(broker) => broker,
        _ => unreachable!("broker ids map to broker nodes"),
    }
}

fn controller<'e>(engine: &'e Engine<Node>, info: &ClusterInfo) -> &'e kafka::controller::Controller {
    match engine.node(info.controller_node()) {
        Node::Controller(c) => c,
        _ => unreachable!("the node after the brokers is the controller"),
    }
}

/// The replica whose log counts as the partition's final log: the leader the controller
/// last chose, or, with none, the last ISR member (the one it would elect).
fn final_replica(engine: &Engine<Node>, info: &ClusterInfo, p: Pidx) -> u32 {
    let state = &controller(engine, info).image.partitions[p as usize];
    state
        .leader
        .or(state.isr.first().copied())
        .unwrap_or_else(|| info.preferred_leader(p))
}

/// A replica's high watermark at the end: its own, or, if it is down, the last one it
/// announced as leader (bounded by its log end) or its checkpoint, whichever is higher.
fn replica_high_watermark(engine: &Engine<Node>, info: &ClusterInfo, last_hw: &LastHw, b: u32, p: Pidx) -> u64 {
    let broker = broker(engine, info, b);
    if engine.is_up(info.broker_node(b)) {
        return broker.high_watermark(p);
    }
    let leo = broker.log(p).map_or(0, |l| l.end_offset());
    let announced = last_hw.get(&(p, b)).copied().unwrap_or(0);
    broker.disk.high_watermark_checkpoint[p as usize]
        .max(announced)
        .min(leo)
}

/// A partition's high watermark at the end: its final replica's.
fn final_high_watermark(engine: &Engine<Node>, info: &ClusterInfo, last_hw: &LastHw, p: Pidx) -> u64 {
    replica_high_watermark(engine, info, last_hw, final_replica(engine, info, p), p)
}

fn final_log(engine: &Engine<Node>, info: &ClusterInfo, p: Pidx) -> Vec<RecordRange> {
    match broker(engine, info, final_replica(engine, info, p)).log(p) {
        Some(log) => log.ranges().collect(),
        None => Vec::new(),
    }
}

/// The partition of each of a producer's keys, when it has ten or fewer and its
/// partitioner places records by key.
fn key_partitions(spec: &crate::scenario::Producer, partitions: u32) -> Vec<(String, u32)> {
    match &spec.keys {
        Some(keys) if keys.len() <= 10 => (0..keys.len())
            .filter_map(|i| {
                let k = keys.name(i);
                let p = spec.partition_of_key(&k, partitions)?;
                Some((k.into_owned(), p))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Per producer instance, from the partitions' final logs: records written more than
/// once (a retry after a lost response, without idempotence) and records that landed
/// after a record of a higher sequence (reordered by a retry).
fn producer_log_figures(engine: &Engine<Node>, info: &ClusterInfo, producers: usize) -> Vec<(u64, u64)> {
    let mut figures = vec![(0u64, 0u64); producers];
    for p in (0..info.partitions.len() as Pidx).filter(|&p| !info.is_internal(p)) {
        let mut seen: BTreeMap<u32, (rangemap::RangeSet<u64>, u64)> = BTreeMap::new();
        for r in final_log(engine, info, p) {
            let (set, next) = seen.entry(r.producer).or_insert_with(|| (rangemap::RangeSet::new(), 0));
            let seqs = r.first_seq..r.first_seq + u64::from(r.count);
            let fresh: Vec<std::ops::Range<u64>> = set.gaps(&seqs).collect();
            let fresh_count: u64 = fresh.iter().map(|g| g.end - g.start).sum();
            let f = &mut figures[r.producer as usize];
            f.0 += u64::from(r.count) - fresh_count;
            f.1 += fresh
                .iter()
                .map(|g| g.end.min(*next).saturating_sub(g.start))
                .sum::<u64>();
            set.insert(seqs.clone());
            *next = (*next).max(seqs.end);
        }
    }
    figures
}

/// Every partition as it stands at `now`: leader, epoch, ISR, each replica's LEO and HW.
fn partition_reports(
    engine: &Engine<Node>,
    info: &ClusterInfo,
    last_hw: &LastHw,
    under_replicated: &[(Option<Time>, u64)],
    now: Time,
) -> Vec<PartitionReport> {
    info.user_partitions()
        .map(|p| {
            let pi = &info.partitions[p as usize];
            let state = &controller(engine, info).image.partitions[p as usize];
            let mut log_end_offsets = BTreeMap::new();
            let mut high_watermarks = BTreeMap::new();
            for &r in &pi.replicas {
                let leo = broker(engine, info, r).log(p).map_or(0, |l| l.end_offset());
                log_end_offsets.insert(r.to_string(), leo);
                high_watermarks.insert(r.to_string(), replica_high_watermark(engine, info, last_hw, r, p));
            }
            let (since, total) = under_replicated[p as usize];
            PartitionReport {
                topic: info.topics[pi.topic].name.clone(),
                partition: pi.partition,
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                replicas: pi.replicas.clone(),
                isr: state.isr.clone(),
                high_watermark: final_high_watermark(engine, info, last_hw, p),
                log_end_offsets,
                high_watermarks,
                under_replicated_ms: (total + since.map_or(0, |t| now.since(t).0)) / 1000,
                bytes: final_log(engine, info, p).iter().map(|r| u64::from(r.bytes)).sum(),
            }
        })
        .collect()
}

/// The partitions each group reads.
fn group_partitions(scenario: &Scenario, info: &ClusterInfo) -> Vec<Vec<Pidx>> {
    scenario
        .groups
        .iter()
        .map(|g| {
            g.topics
                .iter()
                .flat_map(|&t| info.topics[t].first..info.topics[t].first + info.topics[t].partitions)
                .collect()
        })
        .collect()
}

/// Each group's committed offset, lag and owning member's position on each of its
/// partitions, as they stand now. `first_member`: each group's first member node.
fn group_marks(
    engine: &Engine<Node>,
    info: &ClusterInfo,
    scenario: &Scenario,
    last_hw: &LastHw,
    first_member: &[u32],
) -> Vec<GroupMarks> {
    group_partitions(scenario, info)
        .iter()
        .enumerate()
        .map(|(g, parts)| {
            let coordinator = broker(engine, info, coordinator_of(engine, info, g));
            let mut committed = BTreeMap::new();
            let mut lag = BTreeMap::new();
            let mut positions = BTreeMap::new();
            for &p in parts {
                let offset = coordinator.committed(g as u32, p);
                if let Some(o) = offset {
                    committed.insert(info.partition_name(p), o);
                }
                let hw = final_high_watermark(engine, info, last_hw, p);
                lag.insert(info.partition_name(p), hw.saturating_sub(offset.unwrap_or(0)));
                for m in 0..scenario.groups[g].members {
                    let node = NodeId(first_member[g] + m);
                    if engine.is_up(node)
                        && let Node::Member(member) = engine.node(node)
                        && let Some(at) = member.position(p)
                    {
                        positions.insert(info.partition_name(p), (engine.name(node).to_string(), at));
                    }
                }
            }
            GroupMarks {
                group: scenario.groups[g].group.clone(),
                committed,
                lag,
                positions,
            }
        })
        .collect()
}

fn assemble(
    scenario: &Scenario,
    seed: u64,
    source: &str,
    engine: &Engine<Node>,
    info: &ClusterInfo,
    c: Collector,
) -> Report {
    let names = c.names;
    let all_producers: Vec<&crate::scenario::Producer> = scenario
        .producers
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, p.instances as usize))
        .collect();
    let acks_word = |producer: u32| match all_producers[producer as usize].acks {
        Acks::Zero => "0",
        Acks::One => "1",
        Acks::All => "all",
    };
    let partition_name = |p: Pidx| info.partition_name(p);
    let producer_name = |p: u32| names[(c.first_producer + p) as usize].clone();
    let end = Time((scenario.duration + scenario.drain).0);
    let producer_node = |i: usize| match engine.node(NodeId(c.first_producer + i as u32)) {
        Node::Producer(p) => p,
        _ => unreachable!("producers are numbered from first_producer"),
    };
    let producer_pending: Vec<Vec<(Pidx, u64)>> = (0..c.producers.len()).map(|i| producer_node(i).pending()).collect();
    let producer_offered: Vec<u64> = (0..c.producers.len()).map(|i| producer_node(i).offered()).collect();
    let lost_write = c.lost_write.finish(
        |p| final_log(engine, info, p),
        |p| final_replica(engine, info, p),
        end,
        &Names {
            partition: &partition_name,
            producer: &producer_name,
            acks: &acks_word,
        },
    );
    let group_partitions = group_partitions(scenario, info);
    let committed_log = |p: Pidx| -> Vec<RecordRange> {
        let hw = final_high_watermark(engine, info, &c.last_hw, p);
        final_log(engine, info, p)
            .into_iter()
            .filter(|r| r.base_offset < hw)
            .map(|r| {
                if r.end_offset() > hw {
                    r.head((hw - r.base_offset) as u32)
                } else {
                    r
                }
            })
            .collect()
    };
    let group_name = |g: u32| scenario.groups[g as usize].group.clone();
    let member_name = |g: u32, m: u32| names[(c.group_first_member[g as usize] + m) as usize].clone();
    let lifecycle = |g: u32| -> Vec<(Time, u32, bool)> {
        let first = c.group_first_member[g as usize];
        let n = scenario.groups[g as usize].members;
        c.lifecycle
            .iter()
            .filter(|(_, node, _)| node.0 >= first && node.0 < first + n)
            .map(|(t, node, up)| (*t, node.0 - first, *up))
            .collect()
    };
    let (alo, lost_per_group) = c.at_least_once.finish(
        end,
        &Final {
            group_partitions: group_partitions.clone(),
            committed_log: &committed_log,
            partition_name: &partition_name,
            group_name: &group_name,
            member_name: &member_name,
            member_lifecycle: &lifecycle,
        },
    );
    let mut replication = c.replication;
    let replicas: Vec<Vec<u32>> = info.partitions.iter().map(|p| p.replicas.clone()).collect();
    replication.liveness(end, &replicas);
    let mut results: BTreeMap<&str, Vec<crate::check::Violation>> = std::mem::take(&mut replication.found);
    results.insert("lost-write", lost_write);
    results.insert("at-least-once", alo);
    results.insert(
        "nonmonotonic-poll",
        c.nonmonotonic.violations(&partition_name, &member_name),
    );
    // The producer half of liveness: after the drain, no producer still holds records that
    // were neither acknowledged nor given up.
    for (i, pending) in producer_pending.iter().enumerate() {
        for &(p, n) in pending {
            let why = match c.producers[i].stuck.get(&p) {
                Some((error, since)) => format!(", getting {error} since {since}"),
                None => String::new(),
            };
            results.entry("liveness").or_default().push(crate::check::Violation {
                at: end,
                message: format!(
                    "{} still holds {n} record{} for {} after the drain{why}",
                    producer_name(i as u32),
                    if n == 1 { "" } else { "s" },
                    info.partition_name(p)
                ),
                kind: "producer-stuck",
            });
        }
    }
    // The consumer half of liveness: after the drain, every group has committed up to the
    // high watermark of every partition it reads.
    for (g, parts) in group_partitions.iter().enumerate() {
        let coordinator = broker(engine, info, coordinator_of(engine, info, g));
        for &p in parts {
            let hw = final_high_watermark(engine, info, &c.last_hw, p);
            let committed = coordinator.committed(g as u32, p).unwrap_or(0);
            if committed < hw {
                let message = format!(
                    "group {} still lags on {} after the drain: committed {committed}, high watermark {hw}",
                    scenario.groups[g].group,
                    info.partition_name(p)
                );
                results.entry("liveness").or_default().push(crate::check::Violation {
                    at: end,
                    message,
                    kind: "group-lags",
                });
            }
        }
    }
    let checks: Vec<CheckReport> = CHECKS
        .iter()
        .map(|info| {
            let expected_to_fail = scenario.expect_violations.iter().any(|v| v == info.name);
            let mut violations = results.remove(info.name).unwrap_or_default();
            violations.sort_by_key(|v| v.at);
            let count = violations.len() as u64;
            let mut kinds: Vec<String> = violations.iter().map(|v| v.kind.to_string()).collect();
            kinds.sort();
            kinds.dedup();
            let violations = cap(violations);
            let r = CheckResult {
                name: info.name,
                violations,
                expected_to_fail,
            };
            CheckReport {
                name: info.name.to_string(),
                passed: r.passed(),
                expected_to_fail,
                implemented: info.implemented,
                count,
                kinds,
                violations: r
                    .violations
                    .iter()
                    .map(|v| ViolationReport {
                        at_ms: v.at.as_millis(),
                        message: v.message.clone(),
                        kind: v.kind.to_string(),
                    })
                    .collect(),
            }
        })
        .collect();
    let passed = checks.iter().all(|c| c.passed != c.expected_to_fail);

    let log_figures = producer_log_figures(engine, info, c.producers.len());
    let producers = c
        .producers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let spec = all_producers[i];
            ProducerReport {
                name: names[(c.first_producer as usize) + i].clone(),
                topic: info.topics[spec.topic].name.clone(),
                acks: acks_word(i as u32).to_string(),
                idempotence: spec.idempotence,
                sent: s.sent,
                acked: s.acked,
                failed: s.failed,
                unacknowledged: s.unacknowledged,
                refused: s.refused,
                pending: producer_pending[i].iter().map(|(_, n)| n).sum(),
                offered: producer_offered[i],
                errors: s.errors.clone(),
                failed_by_reason: s.failed_by_reason.clone(),
                latency_ms: Latency {
                    p50: ms(s.latencies.percentile(500)),
                    p99: ms(s.latencies.percentile(990)),
                    max: ms(s.latency_max),
                },
                batches: s.batches,
                bytes: s.bytes,
                requests: s.requests,
                retried_batches: s.retried_batches,
                batch_records_max: s.batch_records_max,
                batch_sizes: s
                    .batch_histogram
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| BatchSizes {
                        records_min: 1 << k,
                        records_max: (1 << (k + 1)) - 1,
                        batches: *n,
                    })
                    .collect(),
                blocked_sends: s.blocked_sends,
                blocked_ms: ms(s.blocked),
                throughput_per_s: s.acked * 1000 / scenario.duration.as_millis().max(1),
                duplicates_written: log_figures[i].0,
                reordered: log_figures[i].1,
                key_partitions: key_partitions(spec, info.topics[spec.topic].partitions),
            }
        })
        .collect();

    let end_marks = group_marks(engine, info, scenario, &c.last_hw, &c.group_first_member);
    let consumer_groups = scenario
        .groups
        .iter()
        .enumerate()
        .map(|(g, spec)| {
            let tally = &c.at_least_once.groups[g];
            let unique = tally.unique();
            let coordinator = broker(engine, info, coordinator_of(engine, info, g));
            let mut committed = BTreeMap::new();
            let mut lag = BTreeMap::new();
            for &p in &group_partitions[g] {
                let offset = coordinator.committed(g as u32, p);
                if let Some(o) = offset {
                    committed.insert(info.partition_name(p), o);
                }
                let hw = final_high_watermark(engine, info, &c.last_hw, p);
                lag.insert(info.partition_name(p), hw.saturating_sub(offset.unwrap_or(0)));
            }
            let mut assignment = BTreeMap::new();
            let mut processed_by_member = BTreeMap::new();
            for m in 0..spec.members {
                let node = NodeId(c.group_first_member[g] + m);
                processed_by_member.insert(
                    names[node.index()].clone(),
                    c.processed.get(&(g as u32, m)).copied().unwrap_or(0),
                );
                if let Node::Member(member) = engine.node(node) {
                    assignment.insert(
                        names[node.index()].clone(),
                        member.assignment.iter().map(|&p| info.partition_name(p)).collect(),
                    );
                }
            }
            GroupReport {
                group: spec.group.clone(),
                commit: match spec.commit {
                    crate::scenario::schema::CommitMode::AfterProcessing => "after-processing",
                    crate::scenario::schema::CommitMode::BeforeProcessing => "before-processing",
                    crate::scenario::schema::CommitMode::Auto => "auto",
                }
                .to_string(),
                consumed: tally.consumed,
                unique,
                duplicates: tally.consumed - unique,
                lost: lost_per_group[g],
                committed,
                lag,
                generation: c.groups[g].generation.max(0) as u32,
                protocol: c.groups[g].protocol.clone(),
                rebalances: c.groups[g].rebalances,
                rebalance_ms: ms(c.groups[g].rebalancing),
                partitions_moved: c.groups[g].moved,
                commit_failures: c.groups[g].commit_failures,
                poll_timeouts: c.groups[g].poll_timeouts,
                positions: end_marks[g].positions.clone(),
                duplicates_by_reason: tally
                    .duplicates_by_reason
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                duplicate_offsets: tally
                    .duplicate_offsets
                    .iter()
                    .map(|(why, parts)| {
                        let parts = parts
                            .iter()
                            .map(|(p, set)| (info.partition_name(*p), set.iter().map(|r| (r.start, r.end)).collect()))
                            .collect();
                        (why.to_string(), parts)
                    })
                    .collect(),
                delivery: match (tally.consumed - unique > 0, lost_per_group[g] > 0) {
                    (false, false) => "exactly-once (as observed)",
                    (true, false) => "at-least-once",
                    (false, true) => "at-most-once",
                    (true, true) => "neither (records missed and records duplicated)",
                }
                .to_string(),
                revoked_ms: ms(c.groups[g].paused),
                generations: c.groups[g].history.clone(),
                lag_over_time: Vec::new(),
                fetches: c.groups[g].fetches,
                fetched: c.groups[g].fetched,
                assignment,
                processed_by_member,
            }
        })
        .collect();

    let partitions = partition_reports(engine, info, &c.last_hw, &c.under_replicated, end);
    // Availability: how long writes failed (from an error to the partition's next
    // acknowledgement, or the end of the workload), how long partitions had no leader,
    // and the produce latency every record shared.
    let workload_end = Time(scenario.duration.0);
    let total = |spans: &[(Option<Time>, u64)], until: Time| -> u64 {
        info.user_partitions()
            .map(|p| {
                let (since, done) = spans[p as usize];
                done + since.map_or(0, |t| until.max(t).since(t).0)
            })
            .sum::<u64>()
            / 1000
    };
    let mut all_latencies = Latencies::default();
    c.producers.iter().for_each(|s| all_latencies.add(&s.latencies));
    let availability = Availability {
        writes_refused_ms: total(&c.refused, workload_end),
        offline_ms: total(&c.offline, end),
        produce_p99_ms: ms(all_latencies.percentile(990)),
    };

    let brokers = (1..=info.brokers)
        .map(|b| {
            let mut report = BrokerReport {
                broker: b,
                up: engine.is_up(info.broker_node(b)),
                leads: Vec::new(),
                follows: Vec::new(),
                records: 0,
                follower_records: 0,
                bytes: 0,
                coordinates: Vec::new(),
            };
            let image = &controller(engine, info).image;
            for (p, pi) in info.partitions.iter().enumerate() {
                if info.is_internal(p as Pidx) {
                    continue;
                }
                if image.partitions[p].leader == Some(b) {
                    report.leads.push(info.partition_name(p as Pidx));
                    let log = final_log(engine, info, p as Pidx);
                    report.records += log.iter().map(|r| u64::from(r.count)).sum::<u64>();
                    report.bytes += log.iter().map(|r| u64::from(r.bytes)).sum::<u64>();
                } else if pi.replicas.contains(&b) {
                    report.follows.push(info.partition_name(p as Pidx));
                    report.follower_records += broker(engine, info, b).log(p as Pidx).map_or(0, |l| l.end_offset());
                }
            }
            for g in 0..info.groups.len() {
                if coordinator_of(engine, info, g) == b {
                    report.coordinates.push(info.groups[g].clone());
                }
            }
            report
        })
        .collect();

    let faults = c
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (fault, target) = fault_words(&f.kind);
            let record = c.fault_records.get(&i);
            FaultReport {
                at_ms: f.at.as_millis(),
                fault,
                target,
                fired: record.is_some_and(|r| r.fired),
                for_ms: f.lasts.map(Duration::as_millis),
                hit: record.map_or(Vec::new(), |r| {
                    r.roles.iter().map(|n| names[n.index()].clone()).collect()
                }),
                unresolved: record.and_then(|r| r.unresolved.clone()),
            }
        })
        .collect();

    let notes = vec!["the controller is one node that never fails (it can be cut off from the network)".to_string()];

    Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seed,
        reproduce: format!("kafkasim run {source} --seed {seed}"),
        simulated_ms: engine.now().as_millis(),
        events: engine.events(),
        peak_pending: engine.peak_pending() as u64,
        idle_events: engine.idle_events(),
        passed,
        checks,
        producers,
        consumer_groups,
        partitions,
        brokers,
        faults,
        availability,
        timeline: c.timeline,
        pictures: Vec::new(),
        notes,
        warnings: scenario.warnings.clone(),
        series: Default::default(),
        settings: Settings {
            brokers: scenario.brokers,
            duration_ms: scenario.duration.as_millis(),
            drain_ms: scenario.drain.as_millis(),
            latency: scenario.latency.to_string(),
            jitter: scenario.jitter.to_string(),
            topics: scenario
                .topics
                .iter()
                .map(|t| TopicSummary {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    min_insync_replicas: t.min_insync_replicas,
                })
                .collect(),
        },
    }
}
