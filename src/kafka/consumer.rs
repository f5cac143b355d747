//! A consumer-group member: finds its coordinator, loads committed offsets (or applies
//! `auto.offset.reset`), fetches below the high watermark with long polls, hands out at
//! most `max.poll.records` per poll, spends `processing` per record, and commits as its
//! commit mode says. KAFKA.md §4.3 and §5.
//!
//! The group protocol is not modelled yet: each member owns a fixed range assignment
//! computed when the run starts, and keeps it through crashes and restarts.

use crate::kafka::log::RecordRange;
use crate::kafka::protocol::{ErrorCode, FetchPartition, Msg, OffsetSpec};
use crate::kafka::{ClusterInfo, Obs, Out, Pidx, PositionCause, Timer};
use crate::scenario::schema::CommitMode;
use crate::scenario::{Group, OffsetReset};
use crate::sim::{Duration, Time};
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
}

#[derive(Clone, Debug, PartialEq)]
enum Pending {
    Metadata,
    FindCoordinator,
    OffsetFetch,
    ListOffsets(Vec<Pidx>),
    Fetch,
    Commit,
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
    coordinator: Option<u32>,
    offsets_loaded: bool,
    /// The next offset to fetch, per partition.
    fetch_position: BTreeMap<Pidx, u64>,
    /// The position after the last record handed out by `poll()` (`allConsumed`).
    consumed: BTreeMap<Pidx, u64>,
    /// Partitions whose position was lost to OFFSET_OUT_OF_RANGE.
    out_of_range: Vec<Pidx>,
    buffer: VecDeque<(Pidx, RecordRange)>,
    pending: BTreeMap<u64, (u32, Pending)>,
    processing: Option<Processing>,
    last_auto_commit: Time,
    retry_scheduled: bool,
    next_request: u64,
    bootstrap: u32,
}

impl Member {
    pub fn new(group: u32, index: u32, cfg: Arc<Group>, info: Arc<ClusterInfo>, assignment: Vec<Pidx>) -> Member {
        Member {
            group,
            index,
            cfg,
            info,
            assignment,
            leaders: None,
            coordinator: None,
            offsets_loaded: false,
            fetch_position: BTreeMap::new(),
            consumed: BTreeMap::new(),
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

    pub fn brokers(&self) -> u32 {
        self.info.brokers
    }

    /// The process dies. Records of the current poll that were already processed (one
    /// every `processing`) count as processed; the rest never were.
    pub fn crash(&mut self, now: Time, out: &mut Out) {
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
        let (group, index, cfg, info, assignment) = (
            self.group,
            self.index,
            self.cfg.clone(),
            self.info.clone(),
            std::mem::take(&mut self.assignment),
        );
        let next_request = self.next_request;
        *self = Member::new(group, index, cfg, info, assignment);
        self.next_request = next_request;
    }

    pub fn start(&mut self, now: Time, out: &mut Out) {
        self.last_auto_commit = now;
        self.drive(now, out);
    }

    pub fn on_timer(&mut self, now: Time, timer: MemberTimer, out: &mut Out) {
        match timer {
            MemberTimer::ProcessingDone(token) => {
                if self.processing.as_ref().is_some_and(|(t, _, _)| *t == token) {
                    let (_, _, records) = self.processing.take().expect("checked");
                    self.finish_processing(records, out);
                }
            }
            MemberTimer::RequestTimeout(id) => {
                if let Some((_, what)) = self.pending.remove(&id) {
                    self.request_failed(what, ErrorCode::RequestTimedOut, out);
                }
            }
            MemberTimer::Retry => self.retry_scheduled = false,
        }
        self.drive(now, out);
    }

    pub fn on_peer_down(&mut self, now: Time, broker: u32, out: &mut Out) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (b, _))| *b == broker)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let (_, what) = self.pending.remove(&id).expect("listed");
            self.request_failed(what, ErrorCode::NetworkException, out);
        }
        self.drive(now, out);
    }

    fn request_failed(&mut self, what: Pending, error: ErrorCode, out: &mut Out) {
        match what {
            Pending::Commit => out.observe(Obs::CommitFailed {
                group: self.group,
                member: self.index,
                error,
            }),
            Pending::Fetch | Pending::ListOffsets(_) => self.leaders = None,
            Pending::FindCoordinator | Pending::OffsetFetch => self.coordinator = None,
            Pending::Metadata => {}
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
        self.pending.values().any(|(_, w)| w == what)
    }

    fn request(&mut self, broker: u32, what: Pending, make: impl FnOnce(u64) -> Msg, timeout: Duration, out: &mut Out) {
        self.next_request += 1;
        let id = self.next_request;
        self.pending.insert(id, (broker, what));
        out.send(self.info.broker_node(broker), make(id));
        out.set_timer(timeout, Timer::Member(MemberTimer::RequestTimeout(id)));
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
            | Msg::OffsetCommitResponse { id, .. } => *id,
            _ => return,
        };
        let Some((_, what)) = self.pending.remove(&id) else {
            return;
        };
        match (what, msg) {
            (Pending::Metadata, Msg::MetadataResponse { partitions, .. }) => {
                self.leaders = Some(partitions.iter().map(|p| p.leader).collect());
            }
            (Pending::FindCoordinator, Msg::FindCoordinatorResponse { coordinator, .. }) => {
                self.coordinator = Some(coordinator);
            }
            (Pending::OffsetFetch, Msg::OffsetFetchResponse { result, .. }) => match result {
                Ok(offsets) => {
                    self.offsets_loaded = true;
                    for (p, committed) in offsets {
                        if let Some(offset) = committed {
                            self.fetch_position.insert(p, offset);
                            self.consumed.insert(p, offset);
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
                    self.schedule_retry(out);
                }
            },
            (Pending::ListOffsets(_), Msg::ListOffsetsResponse { offsets, .. }) => {
                for (p, r) in offsets {
                    match r {
                        Ok(offset) if !self.fetch_position.contains_key(&p) => {
                            self.fetch_position.insert(p, offset);
                            self.consumed.insert(p, offset);
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
                for f in partitions {
                    if self.fetch_position.get(&f.partition) != Some(&f.fetch_offset) {
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
                        out.observe(Obs::Committed {
                            group: self.group,
                            member: self.index,
                            partition: p,
                            offset,
                        });
                    }
                }
                Err(error) => {
                    self.coordinator = None;
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
        if !self.offsets_loaded {
            if !self.is_pending(&Pending::OffsetFetch) {
                let (group, partitions) = (self.group, self.assignment.clone());
                self.request(
                    coordinator,
                    Pending::OffsetFetch,
                    |id| Msg::OffsetFetchRequest { id, group, partitions },
                    timeout,
                    out,
                );
            }
            return;
        }
        // Partitions with no position: ask their leaders (`auto.offset.reset`).
        let mut resets: BTreeMap<u32, Vec<Pidx>> = BTreeMap::new();
        for &p in &self.assignment {
            let looking = self
                .pending
                .values()
                .any(|(_, w)| matches!(w, Pending::ListOffsets(ps) if ps.contains(&p)));
            if !self.fetch_position.contains_key(&p)
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
                records.push((p, head));
            }
            if self.cfg.commit == CommitMode::BeforeProcessing {
                self.commit(out);
            }
            let n: u64 = records.iter().map(|(_, r)| u64::from(r.count)).sum();
            let time = self.cfg.processing.times(n);
            if time == Duration::ZERO {
                self.finish_processing(records, out);
                return true;
            }
            self.next_request += 1;
            let token = self.next_request;
            self.processing = Some((token, now, records));
            out.set_timer(time, Timer::Member(MemberTimer::ProcessingDone(token)));
            return false;
        }
        // A partition with no known leader: look again after the backoff
        // (`Metadata.requestUpdate`), while fetching the others.
        if self.assignment.iter().any(|&p| leaders[p as usize].is_none()) {
            self.leaders = None;
            self.schedule_retry(out);
        }
        // Nothing buffered: fetch from every leader with no fetch of ours in flight.
        let mut per_broker: BTreeMap<u32, Vec<FetchPartition>> = BTreeMap::new();
        for &p in &self.assignment {
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
            .filter(|(_, w)| *w == Pending::Fetch)
            .map(|(b, _)| *b)
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

    /// Commits the consumed positions (`commitAsync`): the next offset to read.
    fn commit(&mut self, out: &mut Out) {
        let Some(coordinator) = self.coordinator else { return };
        if self.consumed.is_empty() {
            return;
        }
        let offsets: Vec<(Pidx, u64)> = self.consumed.iter().map(|(p, o)| (*p, *o)).collect();
        let group = self.group;
        let timeout = self.cfg.request_timeout;
        self.request(
            coordinator,
            Pending::Commit,
            |id| Msg::OffsetCommitRequest { id, group, offsets },
            timeout,
            out,
        );
    }
}
