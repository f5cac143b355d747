//! What a run observes, as it happens: the figures of every producer, group and partition,
//! the timeline, the series over time, and the checks fed as observations come.

use super::*;

/// Timeline entries of one kind that arrive close together are folded into one line.
pub(super) const BURST_GAP: crate::sim::Duration = crate::sim::Duration::from_millis(5000);

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum BurstKind {
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

pub(super) struct Burst {
    pub(super) first: Time,
    pub(super) last: Time,
    pub(super) count: u64,
    pub(super) records: u64,
    pub(super) partitions: Vec<Pidx>,
    pub(super) offsets: Vec<u64>,
}

#[derive(Default)]
pub(super) struct ProducerStats {
    pub(super) sent: u64,
    pub(super) acked: u64,
    pub(super) failed: u64,
    pub(super) unacknowledged: u64,
    pub(super) refused: u64,
    /// Per partition: the error its batches keep getting and since when (cleared by an
    /// acknowledgement).
    pub(super) stuck: BTreeMap<Pidx, (String, Time)>,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) failed_by_reason: BTreeMap<String, u64>,
    /// The latency of each batch's average record in µs, weighted by its records.
    pub(super) latencies: Latencies,
    pub(super) latency_max: u64,
    pub(super) batches: u64,
    pub(super) bytes: u64,
    pub(super) requests: u64,
    pub(super) retried_batches: u64,
    /// Records in one acknowledged batch, the largest.
    pub(super) batch_records_max: u64,
    /// Acknowledged batches by records in them: bucket `k` holds 2^k ..= 2^(k+1) - 1.
    pub(super) batch_histogram: [u64; 32],
    pub(super) blocked_sends: u64,
    pub(super) blocked: u64,
}

pub(super) struct Collector<'a> {
    pub(super) info: &'a ClusterInfo,
    pub(super) names: &'a [String],
    pub(super) first_producer: u32,
    pub(super) group_first_member: Vec<u32>,
    pub(super) lost_write: LostWrite,
    pub(super) at_least_once: AtLeastOnce,
    pub(super) nonmonotonic: crate::check::nonmonotonic::NonmonotonicPoll,
    pub(super) replication: Replication,
    pub(super) producers: Vec<ProducerStats>,
    pub(super) timeline: Vec<TimelineEntry>,
    pub(super) bursts: BTreeMap<BurstKind, Burst>,
    pub(super) lifecycle: Vec<(Time, NodeId, bool)>,
    /// Each partition's state as the controller last published it.
    pub(super) states: Vec<PartitionState>,
    /// Per partition: since when its ISR lacks a replica, and the total time so far.
    pub(super) under_replicated: Vec<(Option<Time>, u64)>,
    pub(super) last_hw: LastHw,
    /// Records processed per (group, member).
    pub(super) processed: BTreeMap<(u32, u32), u64>,
    pub(super) groups: Vec<GroupStats>,
    /// The run's faults in schedule order (explicit and drawn), then the drain.
    pub(super) faults: &'a [Fault],
    /// Per scheduled fault (by engine index): what became of it.
    pub(super) fault_records: BTreeMap<usize, FaultRecord>,
    /// Per partition: since when it has no leader, and the total time so far.
    pub(super) offline: Vec<(Option<Time>, u64)>,
    /// Per partition: since when writes to it fail (from a produce error to the next
    /// acknowledgement), and the total time so far.
    pub(super) refused: Vec<(Option<Time>, u64)>,
    /// ISR changes of one instant, one reason and the same brokers leaving or joining,
    /// folded into one timeline line (its index).
    pub(super) isr_fold: Vec<IsrFold>,
    /// The run over time.
    pub(super) series: Recorder,
    /// Per partition: its place among the series' partitions (the scenario's topics').
    pub(super) series_index: Vec<Option<usize>>,
    /// Per broker: a registration of its current restart was refused (told once).
    pub(super) registration_refused: Vec<bool>,
    pub(super) single_controller: crate::check::controller::SingleController,
}

/// ISR changes folded into one timeline entry: in one millisecond, for one reason, the same
/// brokers leaving (or joining) the ISR of several partitions.
pub(super) struct IsrFold {
    pub(super) at: Time,
    pub(super) shrinks: bool,
    pub(super) reason: ElectionReason,
    /// The brokers that left or joined.
    pub(super) moved: Vec<u32>,
    /// Each partition with its ISR before and after.
    pub(super) changes: Vec<(Pidx, Vec<u32>, Vec<u32>)>,
    /// The timeline entry that says it.
    pub(super) entry: usize,
}

/// What the group coordinator did for one group.
#[derive(Default)]
pub(super) struct GroupStats {
    pub(super) generation: i32,
    pub(super) protocol: String,
    pub(super) rebalances: u64,
    /// When the current rebalance began, and the total time spent rebalancing.
    pub(super) began: Option<Time>,
    pub(super) rebalancing: u64,
    /// The last stable assignment, by member, and how many partitions changed owner.
    pub(super) last: BTreeMap<Pidx, u32>,
    pub(super) moved: u64,
    pub(super) commit_failures: u64,
    pub(super) poll_timeouts: u64,
    pub(super) max_poll: crate::sim::Duration,
    pub(super) fetches: u64,
    pub(super) fetched: u64,
    /// Each stable generation: when, the assignor, and each member's partitions.
    pub(super) history: Vec<GenerationReport>,
    /// Revoked partitions and since when; the total time partitions spent revoked.
    pub(super) unowned: BTreeMap<Pidx, Time>,
    pub(super) paused: u64,
}

/// The last high watermark each broker announced for each partition it led.
pub(super) type LastHw = BTreeMap<(Pidx, u32), u64>;

impl Collector<'_> {
    pub(super) fn producer_name(&self, producer: u32) -> &str {
        &self.names[(self.first_producer + producer) as usize]
    }
    pub(super) fn member_node(&self, group: u32, member: u32) -> NodeId {
        NodeId(self.group_first_member[group as usize] + member)
    }
    /// The (group, member) a node is, if it is a group member (members come last).
    pub(super) fn member_of(&self, node: NodeId) -> Option<(u32, u32)> {
        let g = self.group_first_member.iter().rposition(|&first| first <= node.0)?;
        Some((g as u32, node.0 - self.group_first_member[g]))
    }
    pub(super) fn push(&mut self, at: Time, rank: u8, text: String) {
        self.timeline.push(TimelineEntry {
            at_ms: at.as_millis(),
            at_us: at.0,
            rank,
            text,
        });
    }

    pub(super) fn burst(
        &mut self,
        at: Time,
        kind: BurstKind,
        records: u64,
        partition: Option<Pidx>,
        offset: Option<u64>,
    ) {
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

    pub(super) fn partition_list(&self, partitions: &[Pidx]) -> String {
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

    pub(super) fn flush_burst(&mut self, kind: &BurstKind, b: Burst) {
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

    pub(super) fn observe(&mut self, at: Time, node: NodeId, obs: &Obs) {
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
                    ElectionReason::UncleanShutdown => {
                        "it registered again after an unclean shutdown (no clean-shutdown file), so it leaves every ISR and ELR".to_string()
                    }
                    ElectionReason::ControlledShutdown => "its controlled shutdown is complete".to_string(),
                    _ => format!("{reason:?}"),
                };
                self.push(at, 1, format!("controller fences broker-{broker}: {why}"));
                self.series.broker(BrokerEvent {
                    at_us: at.0,
                    broker: *broker,
                    event: "fenced",
                });
            }
            Obs::ShutdownRequested { .. } => {}
            Obs::ControllerActivated { controller, epoch } => {
                self.single_controller.observe(at, obs);
                let text = format!(
                    "controller-{controller} becomes the active controller (epoch {epoch}): it won the election, gives every unfenced broker a fresh session and restarts its periodic tasks"
                );
                self.push(at, 1, text);
            }
            Obs::ControllerResigned { controller, epoch, why } => {
                let why = match *why {
                    "check-quorum" => "no majority of voters fetched from it for 3s (check quorum)",
                    _ => "it learned of a newer epoch",
                };
                self.push(
                    at,
                    1,
                    format!("controller-{controller} stops being the active controller (epoch {epoch}): {why}"),
                );
            }
            Obs::BrokerStopped { broker, timed_out } => {
                let node = self.info.broker_node(*broker);
                self.lifecycle.push((at, node, true));
                self.series.broker(BrokerEvent {
                    at_us: at.0,
                    broker: *broker,
                    event: "down",
                });
                self.replication.set_down(*broker, true);
                let text = if *timed_out {
                    format!(
                        "broker-{broker} stops without the controller's leave: it waited 5 minutes for its controlled shutdown (logs flushed)"
                    )
                } else {
                    format!("broker-{broker} stops cleanly: it flushes its logs and writes its clean-shutdown file")
                };
                self.push(at, 1, text);
            }
            Obs::RegistrationRefused { broker, until } => {
                let told = &mut self.registration_refused[*broker as usize - 1];
                if !std::mem::replace(told, true) {
                    let text = format!(
                        "controller refuses broker-{broker}'s registration (DUPLICATE_BROKER_REGISTRATION): its previous incarnation's session is valid until {until}; it tries again every broker.heartbeat.interval.ms ({})",
                        self.info.config.broker_heartbeat_interval
                    );
                    self.push(at, 1, text);
                }
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
                if before.leader != state.leader {
                    let text = partition_change(self.info, *partition, &before, state, *reason);
                    self.push(at, 1, text);
                } else {
                    if before.isr != state.isr {
                        self.isr_changed(at, *partition, &before.isr, &state.isr, *reason);
                    }
                    if before.elr != state.elr {
                        let text = elr_text(self.info, *partition, &before.elr, &state.elr, *reason);
                        self.push(at, 1, text);
                    }
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
            Obs::BrokerRegistered { broker, .. } => self.registration_refused[*broker as usize - 1] = false,
            Obs::Committed { .. } | Obs::BecameLeader { .. } | Obs::Replicated { .. } | Obs::AckedInSync { .. } => {}
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
    pub(super) fn isr_changed(&mut self, at: Time, p: Pidx, before: &[u32], after: &[u32], reason: ElectionReason) {
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

    pub(super) fn fault(&mut self, record: &FaultRecord) {
        self.fault_records.insert(record.index, record.clone());
        let written = self.faults.get(record.index).filter(|_| record.heal_of.is_none());
        // Each role the fault names, and the node the engine resolved it to.
        let roles: Vec<(&str, String)> = written
            .map(|f| fault_targets(&f.kind))
            .unwrap_or_default()
            .into_iter()
            .filter(|t| {
                RoleRef::parse(t).is_some() || (*t == crate::kafka::config::CONTROLLER && self.info.controllers > 1)
            })
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
            (FaultOp::Stop(n), _) if self.info.broker_of(*n).is_some() => {
                let parts = led(n);
                let leads = if parts.is_empty() {
                    "it leads nothing, so it may stop at once".to_string()
                } else {
                    format!(
                        "it asks the controller to move its leadership of {} first",
                        self.partition_list(&parts)
                    )
                };
                format!("{} begins a controlled shutdown: {leads}", name(n))
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
                // A broker stops when its controlled shutdown ends (`Obs::BrokerStopped`).
                FaultOp::Stop(n) if self.info.broker_of(*n).is_some() => {}
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
pub(super) fn series_change(at: Time, state: &PartitionState) -> series::PartitionChange {
    series::PartitionChange {
        at_us: at.0,
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        isr: state.isr.clone(),
        elr: state.elr.clone(),
    }
}

/// Opens or closes a span of time (`since`, total so far) at `at`.
pub(super) fn span(s: &mut (Option<Time>, u64), at: Time, open: bool) {
    match (s.0, open) {
        (None, true) => s.0 = Some(at),
        (Some(since), false) => {
            s.1 += at.since(since).0;
            s.0 = None;
        }
        _ => {}
    }
}

pub(super) fn broker_list(brokers: &[u32]) -> String {
    format!(
        "[{}]",
        brokers.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// One timeline line for a partition's change of leader or ISR.
pub(super) fn partition_change(
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
            (ElectionReason::Unclean, Some(_)) if before.leader.is_none() && after.leader == before.last_known_leader => {
                " by UNCLEAN election of its last leader (KIP-966): no in-sync or eligible replica is left, and since it restarted after an unclean shutdown, whatever its log lost is gone".to_string()
            }
            (ElectionReason::Unclean, _) => {
                " by UNCLEAN election: an out-of-sync replica leads, and what only the others held is lost".to_string()
            }
            (ElectionReason::EligibleLeader, _) => {
                " from the eligible leader replicas (KIP-966): the ISR was empty, and this replica left it while it was below min.insync.replicas, so it holds every committed record".to_string()
            }
            (ElectionReason::ControlledShutdown, _) => format!(
                ": {} is shutting down cleanly and hands its leadership over",
                leader(before.leader)
            ),
            (ElectionReason::Preferred, _) => ": back to the preferred replica (auto.leader.rebalance.enable)".to_string(),
            (_, None) if !after.elr.is_empty() => {
                ": no in-sync or eligible replica can lead, so the partition is offline".to_string()
            }
            (_, None) if after.isr.is_empty() && after.last_known_leader.is_some() => format!(
                ": no in-sync or eligible replica is left, so the partition is offline until its last leader, {}, can lead it again uncleanly (KIP-966)",
                leader(after.last_known_leader)
            ),
            (_, None) => ": no in-sync replica is alive, so the partition is offline".to_string(),
            _ => String::new(),
        };
        let elr = if after.elr.is_empty() {
            String::new()
        } else {
            format!(", ELR {}", broker_list(&after.elr))
        };
        return format!(
            "{name}: leader {} -> {}, epoch {}, isr {}{elr}{how}",
            leader(before.leader),
            leader(after.leader),
            after.leader_epoch,
            broker_list(&after.isr)
        );
    }
    isr_text(info, p, &before.isr, &after.isr, reason)
}

/// Why an ISR changed, in words.
pub(super) fn isr_why(reason: ElectionReason) -> &'static str {
    match reason {
        ElectionReason::IsrShrink => "the leader found it behind for replica.lag.time.max.ms",
        ElectionReason::IsrExpand => "it caught up with the leader",
        ElectionReason::SessionExpired | ElectionReason::Restarted => "its broker was fenced",
        ElectionReason::UncleanShutdown => {
            "its broker restarted after an unclean shutdown, so its log may lack what it acknowledged"
        }
        ElectionReason::ControlledShutdown => "its broker is shutting down cleanly",
        ElectionReason::BrokerReturned
        | ElectionReason::Unclean
        | ElectionReason::EligibleLeader
        | ElectionReason::Preferred => "",
    }
}

/// A change of a partition's eligible leader replicas (KIP-966) with no change of leader.
pub(super) fn elr_text(info: &ClusterInfo, p: Pidx, before: &[u32], after: &[u32], reason: ElectionReason) -> String {
    let name = info.partition_name(p);
    let min_isr = info.topic_of(p).min_insync_replicas;
    let why = match reason {
        ElectionReason::UncleanShutdown => " (its broker restarted after an unclean shutdown)".to_string(),
        _ if after.is_empty() => " (the ISR is back at min.insync.replicas)".to_string(),
        _ => format!(
            ", out of the ISR while it was below min.insync.replicas={min_isr}: they hold every committed record"
        ),
    };
    format!(
        "{name}: eligible leader replicas {} -> {}{why}",
        broker_list(before),
        broker_list(after)
    )
}

/// One partition's ISR change: `orders-0: ISR shrinks [1, 2, 3] -> [1, 2] (why)`.
pub(super) fn isr_text(info: &ClusterInfo, p: Pidx, before: &[u32], after: &[u32], reason: ElectionReason) -> String {
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
pub(super) fn isr_fold_text(info: &ClusterInfo, fold: &IsrFold) -> String {
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

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Every node name and role a fault names, in the order written.
pub(super) fn fault_targets(kind: &FaultKind) -> Vec<&str> {
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

pub(super) fn fault_words(kind: &FaultKind) -> (String, String) {
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
pub(super) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}
