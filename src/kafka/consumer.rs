//! A consumer-group member: finds its coordinator, joins the group (JoinGroup, SyncGroup,
//! heartbeats; the leader runs the assignor), loads committed offsets (or applies
//! `auto.offset.reset`), fetches below the high watermark with long polls, hands out at
//! most `max.poll.records` per poll, spends `processing` per record, and commits as its
//! commit mode says. Eager assignors revoke everything before rejoining; the cooperative
//! one revokes only what moves and rejoins at once. A poll that outlasts
//! `max.poll.interval.ms` makes the member leave. KAFKA.md §4.2, §4.3 and §5.

use crate::kafka::assignor::{self, Assignor, Strategy, TopicPartition};
use crate::kafka::config::{CommitMode, Group, OffsetReset};
use crate::kafka::log::RecordRange;
use crate::kafka::protocol::{ErrorCode, FetchPartition, JoinGroup, JoinResult, Msg, OffsetSpec, Subscription};
use crate::kafka::{ClusterInfo, Obs, Out, Pidx, PositionCause, Timer};
use crate::sim::{CrashKind, Duration, Time, TimerId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberTimer {
    /// The records of the current poll are processed.
    ProcessingDone(u64),
    RequestTimeout(u64),
    /// Try again after `retry.backoff.ms`.
    Retry,
    /// The member's start time (`start-at`).
    Begin,
    /// `heartbeat.interval.ms`.
    Heartbeat,
    /// The poll `token` began `max.poll.interval.ms` ago.
    PollTimeout(u64),
}

#[derive(Clone, Debug, PartialEq)]
enum Pending {
    Metadata,
    FindCoordinator,
    OffsetFetch,
    ListOffsets(Vec<Pidx>),
    /// KIP-320: OffsetsForLeaderEpoch for positions to validate after a leader change.
    Validate(Vec<Pidx>),
    Fetch,
    Commit,
    Join,
    Sync,
    Heartbeat,
    Leave,
}

/// Where the member stands in the group protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Membership {
    /// Not in the group: it must (re)join.
    Unjoined,
    /// A JoinGroup is out, or its answer came and the SyncGroup is out.
    Joining,
    Stable,
}

/// The poll being processed: its token, when processing began, and its records.
type Processing = (u64, Time, Vec<(Pidx, RecordRange)>);

pub struct Member {
    pub group: u32,
    pub index: u32,
    cfg: Arc<Group>,
    info: Arc<ClusterInfo>,
    pub assignment: Vec<Pidx>,
    leaders: Option<Vec<Option<u32>>>,
    /// Per partition: the leader epoch of the metadata last seen, and the epoch of the
    /// record before each position (`FetchPosition.offsetEpoch`).
    leader_epochs: BTreeMap<Pidx, u32>,
    position_epoch: BTreeMap<Pidx, u32>,
    /// Positions to validate with the new leader before fetching (KIP-320).
    validate: Vec<Pidx>,
    coordinator: Option<u32>,
    membership: Membership,
    member_id: String,
    generation: i32,
    protocol: Option<Strategy>,
    /// The leader's assignor, kept across rebalances as the Java client keeps it.
    assignor: Option<Assignor>,
    /// A rebalance is due: join again at the next poll.
    rejoin: bool,
    /// The member's partitions are lost (it left after a poll timeout, or the coordinator
    /// no longer knows it): at its next poll it gives them up without committing.
    lost: bool,
    /// The generation and member id of the heartbeat in flight.
    heartbeat_sent: (i32, String),
    /// An assignment from SyncGroup, applied at the next poll (revocations included).
    incoming: Option<Vec<Pidx>>,
    heartbeat_scheduled: bool,
    /// Assigned partitions whose committed offset is being fetched, or known to be none.
    offset_fetch: Vec<Pidx>,
    no_committed: Vec<Pidx>,
    started: bool,
    /// The next offset to fetch, per partition.
    fetch_position: BTreeMap<Pidx, u64>,
    /// The position after the last record handed out by `poll()` (`allConsumed`).
    consumed: BTreeMap<Pidx, u64>,
    /// Per owned partition, the offset the group holds as far as the member knows: its
    /// last successful commit, or the committed offset or reset its position came from.
    /// A member committing after processing commits again while it has processed past it.
    commit_known: BTreeMap<Pidx, u64>,
    /// After a failed commit, the next one waits until then (`retry.backoff.ms`).
    commit_not_before: Time,
    /// Partitions whose position was lost to OFFSET_OUT_OF_RANGE.
    out_of_range: Vec<Pidx>,
    buffer: VecDeque<(Pidx, RecordRange)>,
    pending: BTreeMap<u64, (u32, Pending, TimerId)>,
    processing: Option<Processing>,
    last_auto_commit: Time,
    retry_scheduled: bool,
    next_request: u64,
    bootstrap: u32,
}

impl Member {
    pub fn new(group: u32, index: u32, cfg: Arc<Group>, info: Arc<ClusterInfo>) -> Member {
        Member {
            group,
            index,
            cfg,
            info,
            assignment: Vec::new(),
            leaders: None,
            leader_epochs: BTreeMap::new(),
            position_epoch: BTreeMap::new(),
            validate: Vec::new(),
            coordinator: None,
            membership: Membership::Unjoined,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            assignor: None,
            rejoin: false,
            lost: false,
            heartbeat_sent: (-1, String::new()),
            incoming: None,
            heartbeat_scheduled: false,
            offset_fetch: Vec::new(),
            no_committed: Vec::new(),
            started: false,
            fetch_position: BTreeMap::new(),
            consumed: BTreeMap::new(),
            commit_known: BTreeMap::new(),
            commit_not_before: Time::ZERO,
            out_of_range: Vec::new(),
            buffer: VecDeque::new(),
            pending: BTreeMap::new(),
            processing: None,
            last_auto_commit: Time::ZERO,
            retry_scheduled: false,
            next_request: 0,
            bootstrap: index,
        }
    }

    /// `position()`: the offset of the next record `poll()` hands out from `p`, if the
    /// member owns `p` and has a position on it.
    pub fn position(&self, p: Pidx) -> Option<u64> {
        self.consumed.get(&p).copied().filter(|_| self.assignment.contains(&p))
    }

    pub fn brokers(&self) -> u32 {
        self.info.brokers
    }

    /// The process dies. Records of the current poll that were already processed (one
    /// every `processing`) count as processed; the rest never were.
    pub fn crash(&mut self, now: Time, kind: CrashKind, out: &mut Out) {
        if let Some((_, started, records)) = self.processing.take() {
            let per_record = self.cfg.processing.0.max(1);
            let mut done = now.since(started).0 / per_record;
            let mut finished = Vec::new();
            for (p, r) in records {
                if done == 0 {
                    break;
                }
                let head = r.head(done.min(u64::from(r.count)) as u32);
                done -= u64::from(head.count);
                finished.push((p, head));
            }
            if !finished.is_empty() {
                out.observe(Obs::Processed {
                    group: self.group,
                    member: self.index,
                    records: finished,
                });
            }
        }
        if kind == CrashKind::Stop {
            self.close(out);
        }
        let (group, index, cfg, info) = (self.group, self.index, self.cfg.clone(), self.info.clone());
        let next_request = self.next_request;
        *self = Member::new(group, index, cfg, info);
        self.next_request = next_request;
    }

    /// `KafkaConsumer.close()`: a last commit under auto-commit, then LeaveGroup (a
    /// static member just goes, and is removed when its session times out).
    fn close(&mut self, out: &mut Out) {
        if self.cfg.commit == CommitMode::Auto {
            self.commit(out);
        }
        self.leave_group(out);
    }

    /// LeaveGroup, for a dynamic member the coordinator knows (`maybeLeaveGroup`).
    fn leave_group(&mut self, out: &mut Out) {
        if self.instance().is_none()
            && !self.member_id.is_empty()
            && let Some(coordinator) = self.coordinator
        {
            let (group, member_id) = (self.group, self.member_id.clone());
            let timeout = self.cfg.request_timeout;
            self.request(
                coordinator,
                Pending::Leave,
                |id| Msg::LeaveGroupRequest { id, group, member_id },
                timeout,
                out,
            );
        }
    }

    pub fn start(&mut self, now: Time, out: &mut Out) {
        let at = Time(self.cfg.start_at[self.index as usize].0);
        if now < at {
            out.set_timer(at.since(now), Timer::Member(MemberTimer::Begin));
            return;
        }
        self.started = true;
        out.observe(Obs::MemberStarted {
            group: self.group,
            member: self.index,
        });
        self.last_auto_commit = now;
        self.drive(now, out);
    }

    /// `group.instance.id` of a static member.
    fn instance(&self) -> Option<String> {
        self.cfg.instance_prefix.as_ref().map(|p| format!("{p}-{}", self.index))
    }

    fn cooperative(&self) -> bool {
        self.protocol == Some(Strategy::CooperativeSticky)
    }

    pub fn on_timer(&mut self, now: Time, timer: MemberTimer, out: &mut Out) {
        match timer {
            MemberTimer::ProcessingDone(token) => {
                if self.processing.as_ref().is_none_or(|(t, _, _)| *t != token) {
                    return out.idle();
                }
                let (_, _, records) = self.processing.take().expect("checked");
                self.finish_processing(records, out);
            }
            MemberTimer::RequestTimeout(id) => {
                let Some((broker, what, _)) = self.pending.remove(&id) else {
                    return out.idle();
                };
                // `NetworkClient.handleTimedOutRequests`: the connection is closed and
                // every request in flight on it fails.
                out.close(self.info.broker_node(broker));
                self.request_failed(now, what, ErrorCode::RequestTimedOut, out);
                self.fail_requests_to(now, broker, out);
            }
            MemberTimer::Retry => self.retry_scheduled = false,
            MemberTimer::Begin => return self.start(now, out),
            MemberTimer::Heartbeat => {
                self.heartbeat_scheduled = false;
                self.heartbeat(out);
            }
            MemberTimer::PollTimeout(token) => {
                if self.processing.as_ref().is_none_or(|(t, _, _)| *t != token) {
                    return out.idle();
                }
                self.poll_timeout(out);
            }
        }
        if self.started {
            self.drive(now, out);
        }
    }

    /// The background heartbeat, while the member has a generation.
    fn heartbeat(&mut self, out: &mut Out) {
        if self.generation < 0 {
            return;
        }
        // The heartbeat thread is idle while a JoinGroup is out.
        if let Some(coordinator) = self.coordinator
            && !self.is_pending(&Pending::Heartbeat)
            && !self.is_pending(&Pending::Join)
        {
            let (group, generation, member_id) = (self.group, self.generation, self.member_id.clone());
            self.heartbeat_sent = (generation, member_id.clone());
            let timeout = self.cfg.request_timeout;
            self.request(
                coordinator,
                Pending::Heartbeat,
                |id| Msg::HeartbeatRequest {
                    id,
                    group,
                    generation,
                    member_id,
                },
                timeout,
                out,
            );
        }
        self.schedule_heartbeat(out);
    }

    fn schedule_heartbeat(&mut self, out: &mut Out) {
        if !self.heartbeat_scheduled {
            self.heartbeat_scheduled = true;
            out.set_timer(self.cfg.heartbeat_interval, Timer::Member(MemberTimer::Heartbeat));
        }
    }

    /// `max.poll.interval.ms` passed during a poll: the heartbeat thread makes a dynamic
    /// member leave (a static one just stops heartbeating). Its commits will fail.
    fn poll_timeout(&mut self, out: &mut Out) {
        out.observe(Obs::PollTimeout {
            group: self.group,
            member: self.index,
        });
        self.leave_group(out);
        // `resetGenerationOnLeaveGroup`: the commit after this poll fails.
        self.reset_membership();
    }

    /// Forgets the group: the next poll joins as a new member (`resetStateAndRejoin`).
    fn reset_membership(&mut self) {
        self.lost = true;
        self.member_id.clear();
        self.generation = -1;
        self.membership = Membership::Unjoined;
    }

    /// Gives partitions up: positions, buffered records and pending lookups go.
    fn revoke(&mut self, partitions: &[Pidx], commit: bool, out: &mut Out) {
        if partitions.is_empty() {
            return;
        }
        if commit && self.cfg.commit == CommitMode::Auto {
            self.commit(out);
        }
        for p in partitions {
            self.fetch_position.remove(p);
            self.consumed.remove(p);
            self.commit_known.remove(p);
        }
        self.buffer.retain(|(p, _)| !partitions.contains(p));
        self.assignment.retain(|p| !partitions.contains(p));
        self.offset_fetch.retain(|p| !partitions.contains(p));
        self.no_committed.retain(|p| !partitions.contains(p));
        self.out_of_range.retain(|p| !partitions.contains(p));
        self.validate.retain(|p| !partitions.contains(p));
        for p in partitions {
            self.position_epoch.remove(p);
            self.leader_epochs.remove(p);
        }
        out.observe(Obs::Revoked {
            group: self.group,
            member: self.index,
            partitions: partitions.to_vec(),
        });
    }

    /// Every request in flight to `broker` fails: its connection is gone.
    fn fail_requests_to(&mut self, now: Time, broker: u32, out: &mut Out) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (b, _, _))| *b == broker)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let (_, what, timeout) = self.pending.remove(&id).expect("listed");
            out.cancel_timer(timeout);
            self.request_failed(now, what, ErrorCode::NetworkException, out);
        }
    }

    pub fn on_peer_down(&mut self, now: Time, broker: u32, out: &mut Out) {
        self.fail_requests_to(now, broker, out);
        self.drive(now, out);
    }

    /// A request timed out or its connection closed. A client whose request times out
    /// closes the connection (`NetworkClient.handleTimedOutRequests`), so both fail it
    /// with a `DisconnectException`, and for a coordinator request that marks the
    /// coordinator unknown (`AbstractCoordinator.CoordinatorResponseHandler.onFailure`,
    /// `markCoordinatorUnknown`): the member looks it up again.
    fn request_failed(&mut self, now: Time, what: Pending, error: ErrorCode, out: &mut Out) {
        match what {
            Pending::Commit => {
                self.coordinator = None;
                self.commit_failed(now);
                out.observe(Obs::CommitFailed {
                    group: self.group,
                    member: self.index,
                    error,
                });
            }
            Pending::Fetch | Pending::ListOffsets(_) | Pending::Validate(_) => self.leaders = None,
            Pending::FindCoordinator => self.coordinator = None,
            Pending::OffsetFetch => {
                self.coordinator = None;
                self.offset_fetch.clear();
            }
            Pending::Join | Pending::Sync => {
                self.coordinator = None;
                self.membership = Membership::Unjoined;
            }
            Pending::Heartbeat => self.coordinator = None,
            Pending::Metadata | Pending::Leave => {}
        }
        self.schedule_retry(out);
    }

    fn schedule_retry(&mut self, out: &mut Out) {
        if !self.retry_scheduled {
            self.retry_scheduled = true;
            out.set_timer(
                self.cfg.retry_backoff.max(Duration::from_millis(1)),
                Timer::Member(MemberTimer::Retry),
            );
        }
    }

    fn is_pending(&self, what: &Pending) -> bool {
        self.pending.values().any(|(_, w, _)| w == what)
    }

    fn request(&mut self, broker: u32, what: Pending, make: impl FnOnce(u64) -> Msg, timeout: Duration, out: &mut Out) {
        self.next_request += 1;
        let id = self.next_request;
        out.send(self.info.broker_node(broker), make(id));
        let timeout = out.set_timer(timeout, Timer::Member(MemberTimer::RequestTimeout(id)));
        self.pending.insert(id, (broker, what, timeout));
    }

    fn any_broker(&mut self) -> u32 {
        self.bootstrap += 1;
        self.bootstrap % self.info.brokers + 1
    }

    pub fn on_message(&mut self, now: Time, msg: Msg, out: &mut Out) {
        let id = match &msg {
            Msg::MetadataResponse { id, .. }
            | Msg::FindCoordinatorResponse { id, .. }
            | Msg::OffsetFetchResponse { id, .. }
            | Msg::ListOffsetsResponse { id, .. }
            | Msg::FetchResponse { id, .. }
            | Msg::OffsetsForLeaderEpochResponse { id, .. }
            | Msg::OffsetCommitResponse { id, .. }
            | Msg::JoinGroupResponse { id, .. }
            | Msg::SyncGroupResponse { id, .. }
            | Msg::HeartbeatResponse { id, .. }
            | Msg::LeaveGroupResponse { id } => *id,
            _ => return,
        };
        let Some((_, what, timeout)) = self.pending.remove(&id) else {
            return;
        };
        out.cancel_timer(timeout);
        match (what, msg) {
            (Pending::Metadata, Msg::MetadataResponse { partitions, .. }) => {
                self.leaders = Some(partitions.iter().map(|p| p.leader).collect());
                // A new leader epoch: positions are validated before the next fetch
                // (`SubscriptionState.maybeValidatePositionForCurrentLeader`), in today's
                // protocol only.
                let kip320 = self.info.config.truncation == crate::kafka::TruncationMode::LeaderEpoch;
                for &p in &self.assignment {
                    let epoch = partitions[p as usize].leader_epoch;
                    let known = self.leader_epochs.insert(p, epoch);
                    if kip320
                        && known.is_some_and(|k| k < epoch)
                        && self.position_epoch.contains_key(&p)
                        && !self.validate.contains(&p)
                    {
                        self.validate.push(p);
                    }
                }
            }
            (Pending::Validate(_), Msg::OffsetsForLeaderEpochResponse { partitions, .. }) => {
                for (p, result) in partitions {
                    match result {
                        Ok(end) => {
                            self.validate.retain(|q| *q != p);
                            let (Some(end_offset), Some(&position)) = (end.end_offset, self.consumed.get(&p)) else {
                                continue;
                            };
                            if end_offset < position {
                                // `maybeCompleteValidation`: truncation; with a reset policy
                                // the position moves back to where the epoch ends.
                                self.fetch_position.insert(p, end_offset);
                                self.consumed.insert(p, end_offset);
                                self.commit_known.insert(p, end_offset);
                                self.buffer.retain(|(q, _)| *q != p);
                                if let Some(epoch) = end.epoch {
                                    self.position_epoch.insert(p, epoch);
                                }
                                out.observe(Obs::PositionSet {
                                    group: self.group,
                                    member: self.index,
                                    partition: p,
                                    offset: end_offset,
                                    cause: PositionCause::Truncated,
                                });
                            }
                        }
                        Err(_) => {
                            self.leaders = None;
                            self.schedule_retry(out);
                        }
                    }
                }
            }
            (Pending::FindCoordinator, Msg::FindCoordinatorResponse { coordinator, .. }) => match coordinator {
                Ok(b) => self.coordinator = Some(b),
                Err(_) => self.schedule_retry(out),
            },
            (Pending::OffsetFetch, Msg::OffsetFetchResponse { result, .. }) => match result {
                Ok(offsets) => {
                    for (p, committed) in offsets {
                        if !self.offset_fetch.contains(&p) {
                            continue; // Revoked since.
                        }
                        self.offset_fetch.retain(|q| *q != p);
                        if committed.is_none() {
                            self.no_committed.push(p);
                        }
                        if let Some(offset) = committed {
                            self.fetch_position.insert(p, offset);
                            self.consumed.insert(p, offset);
                            self.commit_known.insert(p, offset);
                            out.observe(Obs::PositionSet {
                                group: self.group,
                                member: self.index,
                                partition: p,
                                offset,
                                cause: PositionCause::Committed,
                            });
                        }
                    }
                }
                Err(_) => {
                    self.coordinator = None;
                    self.offset_fetch.clear();
                    self.schedule_retry(out);
                }
            },
            (Pending::Join, Msg::JoinGroupResponse { result, .. }) => self.joined(result, out),
            (Pending::Sync, Msg::SyncGroupResponse { result, .. }) => match result {
                Ok(assignment) => {
                    self.membership = Membership::Stable;
                    self.incoming = Some(assignment);
                    self.schedule_heartbeat(out);
                }
                Err(e) => self.group_error(e, out),
            },
            // A heartbeat's news of a rebalance matters only to a member that is not
            // already joining.
            // News of a rebalance matters only to a member not already joining, and an
            // error about a generation or member id the member has left behind is
            // ignored (`HeartbeatResponseHandler`, `generationUnchanged`).
            (Pending::Heartbeat, Msg::HeartbeatResponse { error: Some(e), .. })
                if match e {
                    ErrorCode::RebalanceInProgress => self.membership == Membership::Stable,
                    ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId | ErrorCode::FencedInstanceId => {
                        self.heartbeat_sent == (self.generation, self.member_id.clone())
                    }
                    _ => true,
                } =>
            {
                self.group_error(e, out)
            }
            (Pending::Leave, _) => {}
            (Pending::ListOffsets(_), Msg::ListOffsetsResponse { offsets, .. }) => {
                for (p, r) in offsets {
                    match r {
                        Ok(offset) if !self.fetch_position.contains_key(&p) && self.assignment.contains(&p) => {
                            self.no_committed.retain(|q| *q != p);
                            self.fetch_position.insert(p, offset);
                            self.consumed.insert(p, offset);
                            // Nothing processed yet: nothing to commit until there is.
                            self.commit_known.insert(p, offset);
                            let policy = self.cfg.auto_offset_reset;
                            let cause = if self.out_of_range.contains(&p) {
                                PositionCause::OutOfRange(policy)
                            } else {
                                PositionCause::NoCommittedOffset(policy)
                            };
                            self.out_of_range.retain(|q| *q != p);
                            out.observe(Obs::PositionSet {
                                group: self.group,
                                member: self.index,
                                partition: p,
                                offset,
                                cause,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => {
                            self.leaders = None;
                            self.schedule_retry(out);
                        }
                    }
                }
            }
            (Pending::Fetch, Msg::FetchResponse { partitions, .. }) => {
                let records: u64 = partitions
                    .iter()
                    .filter_map(|f| f.result.as_ref().ok())
                    .flatten()
                    .map(|r| u64::from(r.count))
                    .sum();
                out.observe(Obs::Fetched {
                    group: self.group,
                    member: self.index,
                    records,
                });
                for f in partitions {
                    if !self.assignment.contains(&f.partition)
                        || self.fetch_position.get(&f.partition) != Some(&f.fetch_offset)
                    {
                        continue; // The position moved since: a stale response.
                    }
                    match f.result {
                        Ok(ranges) => {
                            if let Some(last) = ranges.last() {
                                self.fetch_position.insert(f.partition, last.end_offset());
                            }
                            self.buffer.extend(ranges.into_iter().map(|r| (f.partition, r)));
                        }
                        Err(ErrorCode::OffsetOutOfRange) => {
                            // `auto.offset.reset` applies: forget the position and look it up.
                            self.fetch_position.remove(&f.partition);
                            self.consumed.remove(&f.partition);
                            self.out_of_range.push(f.partition);
                            self.buffer.retain(|(p, _)| *p != f.partition);
                        }
                        Err(_) => {
                            self.leaders = None;
                            self.schedule_retry(out);
                        }
                    }
                }
            }
            (Pending::Commit, Msg::OffsetCommitResponse { result, .. }) => match result {
                Ok(offsets) => {
                    for (p, offset) in offsets {
                        if self.assignment.contains(&p) {
                            self.commit_known.insert(p, offset);
                        }
                        out.observe(Obs::Committed {
                            group: self.group,
                            member: self.index,
                            partition: p,
                            offset,
                        });
                    }
                }
                Err(error) => {
                    // `ConsumerCoordinator.OffsetCommitResponseHandler.handle`: a coordinator
                    // that is not (or no longer) one is looked up again
                    // (`markCoordinatorUnknown`); a member the coordinator no longer knows
                    // in this generation starts over; a rebalance means rejoin.
                    self.commit_failed(now);
                    match error {
                        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::RequestTimedOut => {
                            self.coordinator = None
                        }
                        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => self.reset_membership(),
                        ErrorCode::RebalanceInProgress => self.rejoin = true,
                        _ => {}
                    }
                    out.observe(Obs::CommitFailed {
                        group: self.group,
                        member: self.index,
                        error,
                    });
                }
            },
            _ => {}
        }
        self.drive(now, out);
    }

    /// The group protocol's part of `poll()`: apply an assignment that arrived, leave
    /// for good after a poll timeout, and join when needed (`ConsumerCoordinator.poll`).
    fn maybe_rejoin(&mut self, coordinator: u32, out: &mut Out) {
        if let Some(mut new) = self.incoming.take() {
            new.sort_unstable();
            let revoked: Vec<Pidx> = self.assignment.iter().copied().filter(|p| !new.contains(p)).collect();
            self.revoke(&revoked, true, out);
            self.assignment = new;
            if self.cooperative() && !revoked.is_empty() {
                // KIP-429: what was revoked is handed out in a second rebalance.
                self.rejoin = true;
            }
        }
        if self.lost {
            // `onPartitionsLost`: no commit, everything goes; then a new member joins.
            let all = self.assignment.clone();
            self.revoke(&all, false, out);
            self.lost = false;
        }
        let needed = self.membership == Membership::Unjoined || self.rejoin;
        if !needed || self.is_pending(&Pending::Join) || self.is_pending(&Pending::Sync) {
            return;
        }
        // What the member owned: `ownedPartitions` for cooperative-sticky, and the
        // previous assignment `StickyAssignor` sends in its user data.
        let owned = self.assignment.clone();
        if !self.cooperative() {
            // Eager (`onJoinPrepare`): commit, then give everything up before joining.
            self.revoke(&owned, true, out);
        }
        self.rejoin = false;
        self.membership = Membership::Joining;
        let subscription = Subscription {
            topics: self.cfg.topics.clone(),
            owned,
            generation: self.generation,
        };
        let (group, member, member_id, instance) = (self.group, self.index, self.member_id.clone(), self.instance());
        let protocols = self.cfg.strategies.clone();
        let (session, rebalance) = (self.cfg.session_timeout, self.cfg.max_poll_interval);
        // JoinGroup waits as long as the rebalance may take.
        let timeout = self.cfg.request_timeout.max(rebalance) + Duration::from_millis(5000);
        self.request(
            coordinator,
            Pending::Join,
            |id| Msg::JoinGroupRequest {
                id,
                join: Box::new(JoinGroup {
                    group,
                    member,
                    member_id,
                    instance,
                    protocols,
                    subscription,
                    session_timeout_ms: session.as_millis(),
                    rebalance_timeout_ms: rebalance.as_millis(),
                }),
            },
            timeout,
            out,
        );
    }

    /// The JoinGroup answer: the leader runs the assignor; everyone sends SyncGroup.
    fn joined(&mut self, result: Result<Box<JoinResult>, (ErrorCode, String)>, out: &mut Out) {
        let r = match result {
            Ok(r) => *r,
            Err((ErrorCode::MemberIdRequired, id)) => {
                // KIP-394: join again at once with the id the coordinator gave.
                self.member_id = id;
                self.membership = Membership::Unjoined;
                return;
            }
            Err((e, _)) => {
                self.membership = Membership::Unjoined;
                return self.group_error(e, out);
            }
        };
        self.member_id = r.member_id.clone();
        self.generation = r.generation;
        self.protocol = Strategy::parse(&r.protocol);
        let assignments = if r.leader == self.member_id && !r.members.is_empty() {
            self.assign(&r)
        } else {
            Vec::new()
        };
        let Some(coordinator) = self.coordinator else {
            self.membership = Membership::Unjoined;
            return;
        };
        let (group, generation, member_id) = (self.group, self.generation, self.member_id.clone());
        let timeout = self.cfg.request_timeout;
        self.request(
            coordinator,
            Pending::Sync,
            |id| Msg::SyncGroupRequest {
                id,
                group,
                generation,
                member_id,
                assignments,
            },
            timeout,
            out,
        );
    }

    /// The leader's assignment, computed by the chosen assignor over the members'
    /// subscriptions exactly as the Java client would.
    fn assign(&mut self, r: &JoinResult) -> Vec<(String, Vec<Pidx>)> {
        let strategy = Strategy::parse(&r.protocol).unwrap_or(Strategy::Range);
        let info = &self.info;
        let tp = |p: Pidx| {
            let part = &info.partitions[p as usize];
            TopicPartition::new(&info.topics[part.topic].name, part.partition)
        };
        let mut topics = BTreeMap::new();
        let members: Vec<assignor::Member> = r
            .members
            .iter()
            .map(|(id, instance, sub)| {
                for &t in &sub.topics {
                    topics.insert(info.topics[t].name.clone(), info.topics[t].partitions);
                }
                assignor::Member {
                    id: id.clone(),
                    instance: instance.clone(),
                    topics: sub.topics.iter().map(|&t| info.topics[t].name.clone()).collect(),
                    owned: sub.owned.iter().map(|&p| tp(p)).collect(),
                    generation: sub.generation,
                }
            })
            .collect();
        let assignor = match &mut self.assignor {
            Some(a) if a.strategy == strategy => a,
            slot => slot.insert(Assignor::new(strategy)),
        };
        let outcome = assignor.assign(&topics, &members).unwrap_or_default();
        let pidx = |t: &TopicPartition| {
            let topic = info
                .topics
                .iter()
                .find(|x| x.name == t.topic)
                .expect("a subscribed topic");
            topic.first + t.partition
        };
        r.members
            .iter()
            .map(|(id, _, _)| {
                let parts = outcome
                    .assignment
                    .get(id)
                    .map(|v| v.iter().map(pidx).collect())
                    .unwrap_or_default();
                (id.clone(), parts)
            })
            .collect()
    }

    /// An error from the coordinator on JoinGroup, SyncGroup or Heartbeat.
    fn group_error(&mut self, error: ErrorCode, out: &mut Out) {
        match error {
            ErrorCode::RebalanceInProgress => {
                self.rejoin = true;
                if self.membership == Membership::Joining {
                    self.membership = Membership::Unjoined;
                }
            }
            ErrorCode::IllegalGeneration => {
                self.generation = -1;
                self.membership = Membership::Unjoined;
                self.lost = true;
            }
            ErrorCode::UnknownMemberId | ErrorCode::FencedInstanceId => self.reset_membership(),
            _ => {
                self.coordinator = None;
                if self.membership == Membership::Joining {
                    self.membership = Membership::Unjoined;
                }
                self.schedule_retry(out);
            }
        }
    }

    /// The member's main loop, run after every input: bootstrap, then poll.
    fn drive(&mut self, now: Time, out: &mut Out) {
        let timeout = self.cfg.request_timeout;
        if self.retry_scheduled {
            return;
        }
        let Some(leaders) = self.leaders.clone() else {
            if !self.is_pending(&Pending::Metadata) {
                let b = self.any_broker();
                self.request(b, Pending::Metadata, |id| Msg::MetadataRequest { id }, timeout, out);
            }
            return;
        };
        let Some(coordinator) = self.coordinator else {
            if !self.is_pending(&Pending::FindCoordinator) {
                let b = self.any_broker();
                let group = self.group;
                self.request(
                    b,
                    Pending::FindCoordinator,
                    |id| Msg::FindCoordinatorRequest { id, group },
                    timeout,
                    out,
                );
            }
            return;
        };
        // The group protocol runs inside `poll()`, between polls.
        if self.processing.is_none() {
            self.maybe_rejoin(coordinator, out);
        }
        // A cooperative member keeps reading what it owns during a rebalance.
        let keeps_reading = self.cooperative() && !self.assignment.is_empty();
        if self.membership != Membership::Stable && !keeps_reading {
            return;
        }
        // Assigned partitions with no position: their committed offsets first.
        let unknown: Vec<Pidx> = self
            .assignment
            .iter()
            .copied()
            .filter(|p| {
                !self.fetch_position.contains_key(p)
                    && !self.offset_fetch.contains(p)
                    && !self.no_committed.contains(p)
                    && !self.out_of_range.contains(p)
            })
            .collect();
        if !unknown.is_empty() {
            self.offset_fetch.extend(&unknown);
            let (group, partitions) = (self.group, unknown);
            self.request(
                coordinator,
                Pending::OffsetFetch,
                |id| Msg::OffsetFetchRequest { id, group, partitions },
                timeout,
                out,
            );
        }
        // Partitions with no committed offset: ask their leaders (`auto.offset.reset`).
        let mut resets: BTreeMap<u32, Vec<Pidx>> = BTreeMap::new();
        for &p in &self.assignment {
            let looking = self
                .pending
                .values()
                .any(|(_, w, _)| matches!(w, Pending::ListOffsets(ps) if ps.contains(&p)));
            let reset = self.no_committed.contains(&p) || self.out_of_range.contains(&p);
            if !self.fetch_position.contains_key(&p)
                && reset
                && !looking
                && let Some(leader) = leaders[p as usize]
            {
                resets.entry(leader).or_default().push(p);
            }
        }
        let spec = if self.cfg.auto_offset_reset == OffsetReset::Earliest {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        for (broker, partitions) in resets {
            let ps = partitions.clone();
            self.request(
                broker,
                Pending::ListOffsets(ps),
                |id| Msg::ListOffsetsRequest { id, spec, partitions },
                timeout,
                out,
            );
        }
        if self.processing.is_none() {
            self.poll(now, &leaders, out);
        }
    }

    /// `KafkaConsumer.poll()`: auto-commit when due, then hand out buffered records or
    /// fetch more.
    fn poll(&mut self, now: Time, leaders: &[Option<u32>], out: &mut Out) {
        // With no processing time, records are done as soon as they are handed out, and
        // the application polls again at once.
        while self.poll_once(now, leaders, out) {}
    }

    /// One `poll()`. Returns whether the application polls again at once.
    fn poll_once(&mut self, now: Time, leaders: &[Option<u32>], out: &mut Out) -> bool {
        if self.cfg.commit == CommitMode::Auto && now.since(self.last_auto_commit) >= self.cfg.auto_commit_interval {
            self.last_auto_commit = now;
            self.commit(out);
        }
        // A loop that commits after every poll, empty ones too, sends a commit that was
        // refused or lost again: commit while what was processed is past what the
        // group is known to hold.
        if self.cfg.commit != CommitMode::Auto && self.commit_due(now) {
            self.commit(out);
        }
        if !self.buffer.is_empty() {
            let mut take = self.cfg.max_poll_records;
            let mut records = Vec::new();
            while take > 0 {
                let Some((p, r)) = self.buffer.pop_front() else { break };
                let head = r.head(take);
                if head.count < r.count {
                    self.buffer.push_front((p, r.from_offset(head.end_offset())));
                }
                take -= head.count;
                self.consumed.insert(p, head.end_offset());
                self.position_epoch.insert(p, head.leader_epoch);
                records.push((p, head));
            }
            if self.cfg.commit == CommitMode::BeforeProcessing {
                self.commit(out);
            }
            let n: u64 = records.iter().map(|(_, r)| u64::from(r.count)).sum();
            let mut time = self.cfg.processing.times(n);
            if let Some((member, at, length)) = self.cfg.stall
                && member == self.index
            {
                // The stall holds up the poll that is processed when it begins, or
                // that begins during it.
                let (from, to) = (Time(at.0), Time(at.0) + length);
                if now < to && now + time > from {
                    time = time + to.since(now.max(from)).min(length);
                }
            }
            if time == Duration::ZERO {
                self.finish_processing(records, out);
                return true;
            }
            self.next_request += 1;
            let token = self.next_request;
            self.processing = Some((token, now, records));
            out.set_timer(time, Timer::Member(MemberTimer::ProcessingDone(token)));
            if time > self.cfg.max_poll_interval {
                out.set_timer(
                    self.cfg.max_poll_interval,
                    Timer::Member(MemberTimer::PollTimeout(token)),
                );
            }
            return false;
        }
        // A partition with no known leader: look again after the backoff
        // (`Metadata.requestUpdate`), while fetching the others.
        if self.assignment.iter().any(|&p| leaders[p as usize].is_none()) {
            self.leaders = None;
            self.schedule_retry(out);
        }
        // Positions to validate after a leader change go first (KIP-320).
        let mut checks: BTreeMap<u32, Vec<(Pidx, Option<u32>)>> = BTreeMap::new();
        for &p in &self.validate {
            let asked = self
                .pending
                .values()
                .any(|(_, w, _)| matches!(w, Pending::Validate(ps) if ps.contains(&p)));
            if let (false, Some(leader)) = (asked, leaders[p as usize]) {
                checks
                    .entry(leader)
                    .or_default()
                    .push((p, self.position_epoch.get(&p).copied()));
            }
        }
        for (broker, partitions) in checks {
            let ps = partitions.iter().map(|(p, _)| *p).collect();
            let timeout = self.cfg.request_timeout;
            self.request(
                broker,
                Pending::Validate(ps),
                |id| Msg::OffsetsForLeaderEpochRequest { id, partitions },
                timeout,
                out,
            );
        }
        // Nothing buffered: fetch from every leader with no fetch of ours in flight.
        let mut per_broker: BTreeMap<u32, Vec<FetchPartition>> = BTreeMap::new();
        for &p in &self.assignment {
            if self.validate.contains(&p) {
                continue;
            }
            let (Some(&offset), Some(leader)) = (self.fetch_position.get(&p), leaders[p as usize]) else {
                continue;
            };
            per_broker.entry(leader).or_default().push(FetchPartition {
                partition: p,
                offset,
                current_leader_epoch: None,
                last_fetched_epoch: None,
            });
        }
        let busy: Vec<u32> = self
            .pending
            .values()
            .filter(|(_, w, _)| *w == Pending::Fetch)
            .map(|(b, _, _)| *b)
            .collect();
        for (broker, partitions) in per_broker {
            if busy.contains(&broker) {
                continue;
            }
            let cfg = self.cfg.clone();
            let timeout = cfg.request_timeout + cfg.fetch_max_wait;
            self.request(
                broker,
                Pending::Fetch,
                |id| Msg::FetchRequest {
                    id,
                    replica: None,
                    partitions,
                    max_wait_ms: cfg.fetch_max_wait.as_millis(),
                    min_bytes: cfg.fetch_min_bytes,
                    max_partition_bytes: cfg.max_partition_fetch_bytes,
                },
                timeout,
                out,
            );
        }
        false
    }

    fn finish_processing(&mut self, records: Vec<(Pidx, RecordRange)>, out: &mut Out) {
        out.observe(Obs::Processed {
            group: self.group,
            member: self.index,
            records,
        });
        if self.cfg.commit == CommitMode::AfterProcessing {
            self.commit(out);
        }
    }

    /// Whether a stable member with a known coordinator and no commit in flight has
    /// consumed past what the group is known to hold on one of its partitions.
    fn commit_due(&self, now: Time) -> bool {
        self.membership == Membership::Stable
            && self.generation >= 0
            && self.coordinator.is_some()
            && now >= self.commit_not_before
            && !self.is_pending(&Pending::Commit)
            && self
                .consumed
                .iter()
                .any(|(p, o)| self.commit_known.get(p).is_none_or(|k| o > k))
    }

    fn commit_failed(&mut self, now: Time) {
        self.commit_not_before = now + self.cfg.retry_backoff;
    }

    /// Commits the consumed positions (`commitAsync`): the next offset to read. With no
    /// coordinator known there is nothing to send to; `drive` looks it up, and the next
    /// poll commits (as `commitOffsetsAsync` sends the commit once the lookup is done).
    fn commit(&mut self, out: &mut Out) {
        let Some(coordinator) = self.coordinator else { return };
        if self.consumed.is_empty() {
            return;
        }
        // `generationIfStable`: only a stable member commits; otherwise the client fails
        // the commit itself.
        if self.membership != Membership::Stable || self.generation < 0 {
            let error = if self.generation < 0 {
                ErrorCode::CommitFailed
            } else {
                ErrorCode::RebalanceInProgress
            };
            out.observe(Obs::CommitFailed {
                group: self.group,
                member: self.index,
                error,
            });
            return;
        }
        let offsets: Vec<(Pidx, u64)> = self.consumed.iter().map(|(p, o)| (*p, *o)).collect();
        let (group, generation, member_id) = (self.group, self.generation, self.member_id.clone());
        let timeout = self.cfg.request_timeout;
        self.request(
            coordinator,
            Pending::Commit,
            |id| Msg::OffsetCommitRequest {
                id,
                group,
                generation,
                member_id,
                offsets,
            },
            timeout,
            out,
        );
    }
}
