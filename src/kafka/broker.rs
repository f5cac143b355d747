//! A broker: the leader and follower sides of every partition it holds a replica of,
//! the group coordinator's shards (`broker/offsets.rs`), and its disk.
//!
//! Leader side (KAFKA.md §1.1–1.4): appends (idempotent dedup window, `min.insync.replicas`),
//! follower fetch state (`Replica.updateFetchStateOrThrow`), the high watermark
//! (`Partition.maybeIncrementLeaderHW`), ISR shrink and expand through AlterPartition, the
//! produce purgatory for `acks=all`, parked fetches. Follower side (§1.7): a fetcher per
//! leader, truncation by the scenario's protocol (DivergingEpoch, KIP-101 or the
//! high-watermark rule). The disk (logs, `__consumer_offsets` with the groups' commits
//! among them, leader epoch caches, the HW checkpoint) survives a process crash; a power
//! loss drops each log's unflushed tail.

use crate::kafka::epoch::{EpochCache, truncation_offset};
use crate::kafka::group::{Coordinator, GroupTimer};
use crate::kafka::log::{Batch, Log, RecordRange, SharedStore};
use crate::kafka::producer_state::{ProducerStates, Verdict};
use crate::kafka::protocol::{
    AcksMode, ErrorCode, FetchPartition, FetchedPartition, Msg, OffsetSpec, PartitionMetadata,
};
use crate::kafka::{ClusterInfo, MetadataImage, Obs, Out, PartitionState, Pidx, Timer, TruncationMode};
use crate::sim::rng::SimRng;
use crate::sim::{CrashKind, Duration, NodeId, Time, TimerId};
use rand::RngExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

mod offsets;

/// How long the OS keeps a dirty page before writing it back (Linux
/// `vm.dirty_expire_centisecs` = 3000), and how often its flusher runs
/// (`vm.dirty_writeback_centisecs` = 500).
pub const PAGE_CACHE_EXPIRE: Duration = Duration::from_millis(30_000);
pub const PAGE_CACHE_WRITEBACK: Duration = Duration::from_millis(5_000);

/// `replica.socket.timeout.ms`: how long a follower waits for a fetch response.
const REPLICA_SOCKET_TIMEOUT: Duration = Duration::from_millis(30_000);

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerTimer {
    /// A parked fetch reached its maximum wait.
    FetchExpire(u64),
    /// An `acks=all` produce reached its timeout.
    ProduceExpire(u64),
    /// `replica.high.watermark.checkpoint.interval.ms`.
    HighWatermarkCheckpoint,
    /// The OS page-cache flusher.
    Writeback,
    /// `broker.heartbeat.interval.ms`.
    Heartbeat,
    /// The `isr-expiration` task, every `replica.lag.time.max.ms / 2`.
    IsrExpiration,
    /// A follower's fetch (or epoch request) to this leader timed out.
    FetcherTimeout { leader: u32, request: u64 },
    /// A follower's backoff before fetching from this leader again.
    FetcherRetry { leader: u32 },
    /// An AlterPartition went unanswered.
    AlterPartitionTimeout { partition: Pidx, request: u64 },
    /// The oldest offset commit (or fetch) on this `__consumer_offsets` partition reached
    /// `offsets.commit.timeout.ms`.
    OffsetCommitExpire(Pidx),
    /// The group coordinator's batch for this `__consumer_offsets` partition lingered
    /// `group.coordinator.append.linger.ms`.
    CoordinatorAppend(Pidx),
    /// The quicker heartbeat after the first answer in controlled shutdown.
    ShutdownHeartbeat,
    /// The broker stops waiting for the controller to grant its controlled shutdown.
    ShutdownTimeout,
    /// A metadata fetch to a quorum's controller went unanswered: it goes again.
    MetadataFetchTimeout,
}

/// How long a broker waits for an answer to its metadata fetch (the controller parks it
/// up to 500 ms) before it asks again, maybe another controller.
const METADATA_FETCH_TIMEOUT: Duration = Duration::from_millis(2000);

/// How long a broker waits for the controller to grant its controlled shutdown before it
/// stops anyway (`Server.shutdown()`'s five minutes, `BrokerServer.shutdown`).
const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_millis(300_000);

/// The follow-up heartbeat after the first answer in controlled shutdown
/// (`BrokerLifecycleManager`: "a little bit sooner than we usually would").
const SHUTDOWN_HEARTBEAT: Duration = Duration::from_millis(50);

/// A controlled shutdown in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shutdown {
    Running,
    /// Asked the controller; no answer yet.
    Requested,
    /// The controller answered at least once without granting it.
    Waiting,
    /// The wait ran out: the broker stops without the controller's leave.
    TimedOut,
}

/// What survives a process crash.
#[derive(Debug, Default)]
pub struct Disk {
    /// One log per partition this broker holds a replica of (`None` elsewhere).
    pub logs: Vec<Option<Log>>,
    /// The leader epoch cache of each replica (`leader-epoch-checkpoint`).
    pub epochs: Vec<EpochCache>,
    pub high_watermark_checkpoint: Vec<u64>,
    /// The clean-shutdown file: written when the broker stops cleanly, read and removed
    /// when it starts (`CleanShutdownFileHandler`).
    pub clean_shutdown: bool,
}

/// What the leader knows of one follower (`Replica.scala`'s `ReplicaState`).
#[derive(Clone, Debug, Default)]
struct FollowerProgress {
    /// The fetch offset of its last fetch in this leadership; `None` until it fetches.
    log_end_offset: Option<u64>,
    /// `lastCaughtUpTimeMs`; `None` is Kafka's 0: never, as far as the clock can tell.
    last_caught_up: Option<Time>,
    last_fetch_leader_log_end: u64,
    last_fetch_time: Option<Time>,
}

impl FollowerProgress {
    /// `Replica.updateFetchStateOrThrow` (KAFKA.md §1.3): a fetch at or past the leader's
    /// end makes the follower caught up now; a fetch reaching where the leader ended at the
    /// previous fetch makes it caught up as of that fetch.
    fn update_fetch_state(&mut self, fetch_offset: u64, leader_log_end: u64, now: Time) {
        if fetch_offset >= leader_log_end {
            self.last_caught_up = self.last_caught_up.max(Some(now));
        } else if fetch_offset >= self.last_fetch_leader_log_end {
            self.last_caught_up = self.last_caught_up.max(self.last_fetch_time);
        }
        self.last_fetch_leader_log_end = self.last_fetch_leader_log_end.max(leader_log_end);
        self.last_fetch_time = Some(now);
        self.log_end_offset = Some(fetch_offset);
    }

    /// `Replica.isCaughtUp`.
    fn is_caught_up(&self, leader_log_end: u64, now: Time, max_lag: Duration) -> bool {
        self.log_end_offset == Some(leader_log_end) || self.last_caught_up.is_some_and(|t| now.since(t) <= max_lag)
    }
}

#[derive(Clone, Debug)]
struct PendingIsr {
    request: u64,
    isr: Vec<u32>,
    /// When to send it again, unless answered first.
    timeout: TimerId,
}

/// The leader's pending ISR change is settled: its resend no longer matters.
fn settle_pending(pending: &mut Option<PendingIsr>, out: &mut Out) {
    if let Some(p) = pending.take() {
        out.cancel_timer(p.timeout);
    }
}

#[derive(Clone, Debug)]
struct LeaderState {
    epoch: u32,
    /// The committed ISR, as the controller last confirmed it.
    isr: Vec<u32>,
    partition_epoch: u32,
    /// An AlterPartition in flight.
    pending: Option<PendingIsr>,
    followers: BTreeMap<u32, FollowerProgress>,
    /// The log end offset when this leadership began (KAFKA-7128).
    epoch_start: u64,
}

impl LeaderState {
    /// Whether `b` is in the maximal ISR: the ISR the high watermark must respect while a
    /// change is in flight (KIP-497), the larger of the committed and the pending one.
    fn in_maximal_isr(&self, b: u32) -> bool {
        self.isr.contains(&b) || self.pending.as_ref().is_some_and(|p| p.isr.contains(&b))
    }

    /// The size of the maximal ISR, without building it.
    fn maximal_isr_len(&self) -> usize {
        self.isr.len()
            + self
                .pending
                .as_ref()
                .map_or(0, |p| p.isr.iter().filter(|b| !self.isr.contains(b)).count())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FollowerPhase {
    /// KIP-101 mode: waiting to ask the leader for the end of its latest epoch.
    NeedsEpochEnd,
    Fetching,
}

#[derive(Clone, Debug)]
struct FollowerState {
    leader: u32,
    epoch: u32,
    phase: FollowerPhase,
}

#[derive(Clone, Debug)]
enum Role {
    /// No leader is known, or the partition's leader is elsewhere and unknown.
    Offline,
    Leader(LeaderState),
    Follower(FollowerState),
}

struct Parked {
    id: u64,
    from: NodeId,
    request: u64,
    replica: Option<u32>,
    partitions: Vec<FetchPartition>,
    min_bytes: u32,
    max_partition_bytes: u32,
    /// Its `fetch.max.wait.ms`, cancelled when it is answered sooner.
    expire: TimerId,
}

/// (partition, offset the HW must reach, base offset, result once known).
type ProducePart = (Pidx, u64, u64, Option<Result<u64, ErrorCode>>);

struct PendingProduce {
    id: u64,
    from: NodeId,
    request: u64,
    acks: AcksMode,
    /// Per partition: the offset the HW must reach, the base offset, and the result once
    /// known.
    parts: Vec<ProducePart>,
    /// Its timeout once it waits in purgatory, cancelled when it is answered sooner.
    expire: Option<TimerId>,
}

#[derive(Default)]
struct Fetcher {
    in_flight: Option<u64>,
    /// The in-flight fetch's timeout, cancelled by the answer.
    timeout: Option<TimerId>,
    backing_off: bool,
}

impl Fetcher {
    /// The request in flight is answered or gone: its timeout no longer matters.
    fn done(&mut self, out: &mut Out) {
        self.in_flight = None;
        if let Some(timeout) = self.timeout.take() {
            out.cancel_timer(timeout);
        }
    }
}

pub struct Broker {
    pub id: u32,
    info: Arc<ClusterInfo>,
    /// Decides how much of the unflushed tail a power loss takes.
    disk_rng: SimRng,
    pub disk: Disk,
    broker_epoch: Option<u64>,
    image: Option<MetadataImage>,
    roles: Vec<Role>,
    high_watermark: Vec<u64>,
    parked: Vec<Parked>,
    purgatory: Vec<PendingProduce>,
    producers: ProducerStates,
    fetchers: BTreeMap<u32, Fetcher>,
    /// A heartbeat is out with no answer yet.
    heartbeat_unanswered: bool,
    /// The controller this broker talks to: the active one as far as it knows
    /// (`NodeToControllerChannelManager` follows the Raft leader).
    controller: NodeId,
    /// The controller that last answered a heartbeat.
    answered_by: NodeId,
    /// With a quorum: a metadata fetch is out, and its timeout.
    metadata_fetch: Option<TimerId>,
    /// Whether this incarnation found the clean-shutdown file at start: its registration
    /// says so.
    started_clean: bool,
    shutdown: Shutdown,
    next_id: u64,
    /// The classic group coordinator, for the groups this broker coordinates.
    pub coordinator: Coordinator,
    /// The coordinator's shards of the `__consumer_offsets` partitions it leads.
    shards: offsets::Shards,
}

impl Broker {
    /// A broker at first boot: registered with the controller at time zero (epoch = its id)
    /// and holding the initial metadata.
    /// `stores` holds each partition's batches for all its replicas (see [`crate::kafka::log::Store`]).
    pub fn new(id: u32, info: Arc<ClusterInfo>, stores: &[SharedStore], disk_rng: SimRng, group_rng: SimRng) -> Broker {
        let n = info.partitions.len();
        let logs = info
            .partitions
            .iter()
            .zip(stores)
            .map(|(p, store)| p.replicas.contains(&id).then(|| Log::new(store.clone(), id)))
            .collect();
        Broker {
            id,
            disk: Disk {
                logs,
                epochs: vec![EpochCache::default(); n],
                high_watermark_checkpoint: vec![0; n],
                clean_shutdown: false,
            },
            broker_epoch: Some(u64::from(id)),
            image: Some(MetadataImage::initial(&info)),
            roles: vec![Role::Offline; n],
            high_watermark: vec![0; n],
            parked: Vec::new(),
            purgatory: Vec::new(),
            producers: ProducerStates::default(),
            fetchers: BTreeMap::new(),
            heartbeat_unanswered: false,
            controller: info.controller_node(),
            answered_by: info.controller_node(),
            metadata_fetch: None,
            started_clean: false,
            shutdown: Shutdown::Running,
            next_id: 0,
            disk_rng,
            coordinator: Coordinator::new(group_rng, info.config.group_initial_rebalance_delay),
            shards: offsets::Shards::default(),
            info,
        }
    }

    pub fn log(&self, p: Pidx) -> Option<&Log> {
        self.disk.logs[p as usize].as_ref()
    }

    pub fn high_watermark(&self, p: Pidx) -> u64 {
        self.high_watermark[p as usize]
    }

    pub fn is_leader(&self, p: Pidx) -> bool {
        matches!(self.roles[p as usize], Role::Leader(_))
    }

    /// Whether this broker coordinates `group`: it leads the group's `__consumer_offsets`
    /// partition.
    pub fn coordinates(&self, group: u32) -> bool {
        self.is_leader(self.info.offsets_pidx[group as usize])
    }

    /// The coordinator's timers, and the group metadata they may change.
    pub fn on_group_timer(&mut self, now: Time, timer: GroupTimer, out: &mut Out) {
        self.coordinator.on_timer(now, timer, out);
        self.store_groups(out);
    }

    /// Writes the metadata of groups that changed to their `__consumer_offsets`
    /// partitions.
    pub fn store_groups(&mut self, out: &mut Out) {
        for (group, snapshot) in self.coordinator.take_changes() {
            self.shard_store_group(group, snapshot, out);
        }
    }

    /// This broker's view of a partition's leader epoch, when it leads it.
    pub fn leader_epoch(&self, p: Pidx) -> Option<u32> {
        match &self.roles[p as usize] {
            Role::Leader(l) => Some(l.epoch),
            _ => None,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn log_mut(&mut self, p: Pidx) -> &mut Log {
        self.disk.logs[p as usize].as_mut().expect("a replica holds a log")
    }

    fn leo(&self, p: Pidx) -> u64 {
        self.log(p).map_or(0, Log::end_offset)
    }

    /// `BrokerServer.shutdown` with `controlled.shutdown.enable`: the broker asks the
    /// controller at once (`BrokerLifecycleManager.beginControlledShutdown`) and stops when
    /// the controller lets it. A broker that is not registered stops at once.
    pub fn begin_stop(&mut self, _now: Time, out: &mut Out) -> bool {
        if !self.info.config.controlled_shutdown || self.broker_epoch.is_none() {
            return true;
        }
        self.shutdown = Shutdown::Requested;
        out.observe(Obs::ShutdownRequested { broker: self.id });
        self.heartbeat(out);
        out.set_timer(CONTROLLED_SHUTDOWN_WAIT, Timer::Broker(BrokerTimer::ShutdownTimeout));
        false
    }

    pub fn crash(&mut self, kind: CrashKind, out: &mut Out) {
        if kind == CrashKind::Stop {
            out.observe(Obs::BrokerStopped {
                broker: self.id,
                timed_out: self.shutdown == Shutdown::TimedOut,
            });
            // A clean shutdown checkpoints the high watermarks, flushes every log
            // (`ReplicaManager.shutdown`, `LogManager.shutdown`) and writes the
            // clean-shutdown file.
            self.checkpoint_high_watermarks();
            for log in self.disk.logs.iter_mut().flatten() {
                log.flush();
            }
            self.disk.clean_shutdown = true;
        }
        self.shutdown = Shutdown::Running;
        self.coordinator.crash();
        self.shards = offsets::Shards::default();
        self.parked.clear();
        self.purgatory.clear();
        self.producers.clear();
        self.fetchers.clear();
        self.heartbeat_unanswered = false;
        self.metadata_fetch = None;
        self.broker_epoch = None;
        self.image = None;
        self.roles.iter_mut().for_each(|r| *r = Role::Offline);
        self.high_watermark.iter_mut().for_each(|h| *h = 0);
        if kind == CrashKind::PowerLoss {
            for (p, log) in self.disk.logs.iter_mut().enumerate() {
                if let Some(log) = log {
                    // The OS may have written back part of the dirty tail on its own: a
                    // seeded number of its batches, never all of them, survives.
                    let tail = log.unflushed_batches();
                    let survive = if tail == 0 {
                        0
                    } else {
                        self.disk_rng.random_range(0..tail)
                    };
                    let keep = log.offset_after_unflushed_batches(survive);
                    let lost = log.truncate_to(keep);
                    self.disk.epochs[p].truncate_from_end(log.end_offset());
                    if !lost.is_empty() {
                        out.observe(Obs::LogLost {
                            partition: p as Pidx,
                            from: lost.start,
                            to: lost.end,
                        });
                    }
                }
            }
        }
    }

    pub fn start(&mut self, now: Time, out: &mut Out) {
        self.started_clean = std::mem::take(&mut self.disk.clean_shutdown);
        for (p, log) in self.disk.logs.iter().enumerate() {
            // The coordinator's batches in `__consumer_offsets` carry no producer state.
            if let Some(log) = log
                && !self.info.is_internal(p as Pidx)
            {
                self.producers.rebuild(p as Pidx, log);
            }
        }
        for p in 0..self.info.partitions.len() {
            // The HW comes back from its checkpoint, never above the log end.
            self.high_watermark[p] = self.disk.high_watermark_checkpoint[p].min(self.leo(p as Pidx));
        }
        if let Some(image) = self.image.take() {
            self.apply_image(now, image, out);
        }
        self.heartbeat(out);
        let c = &self.info.config;
        out.set_timer(
            c.high_watermark_checkpoint_interval,
            Timer::Broker(BrokerTimer::HighWatermarkCheckpoint),
        );
        out.set_timer(PAGE_CACHE_WRITEBACK, Timer::Broker(BrokerTimer::Writeback));
        out.set_timer(c.broker_heartbeat_interval, Timer::Broker(BrokerTimer::Heartbeat));
        out.set_timer(
            Duration(c.replica_lag_time_max.0 / 2),
            Timer::Broker(BrokerTimer::IsrExpiration),
        );
    }

    fn checkpoint_high_watermarks(&mut self) {
        self.disk
            .high_watermark_checkpoint
            .copy_from_slice(&self.high_watermark);
        for (log, &hw) in self.disk.logs.iter_mut().zip(&self.high_watermark) {
            if let Some(log) = log {
                log.checkpoint_high_watermark(hw);
            }
        }
    }

    fn heartbeat(&mut self, out: &mut Out) {
        if self.heartbeat_unanswered {
            // The last heartbeat went unanswered for its timeout,
            // min(`controller.socket.timeout.ms`, `broker.heartbeat.interval.ms`): the
            // channel to the controller closes the connection and opens a new one
            // (`NodeToControllerRequestThread`, `NetworkClient.handleTimedOutRequests`).
            out.close(self.controller);
            // With a quorum, it drops the cached controller and tries the next voter.
            self.next_controller(None);
        }
        self.heartbeat_unanswered = true;
        let metadata_version = self.image.as_ref().map_or(0, |i| i.version);
        let msg = Msg::BrokerHeartbeat {
            broker_epoch: self.broker_epoch,
            metadata_version,
            clean_shutdown: self.started_clean,
            want_shutdown: self.shutdown != Shutdown::Running,
        };
        out.send(self.controller, msg);
    }

    /// With a quorum, a registered broker fetches the committed metadata from the
    /// controller it knows as active, one fetch at a time; the controller answers when it
    /// has a newer image, or after 500 ms (`BrokerMetadataListener` on `__cluster_metadata`).
    fn fetch_metadata(&mut self, out: &mut Out) {
        if self.broker_epoch.is_none() {
            return;
        }
        if let Some(t) = self.metadata_fetch.take() {
            out.cancel_timer(t);
        }
        let version = self.image.as_ref().map_or(0, |i| i.version);
        out.send(self.controller, Msg::MetadataFetch { version });
        let t = out.set_timer(METADATA_FETCH_TIMEOUT, Timer::Broker(BrokerTimer::MetadataFetchTimeout));
        self.metadata_fetch = Some(t);
    }

    /// Moves to the controller named by a NOT_CONTROLLER answer, or to the next voter.
    fn next_controller(&mut self, hint: Option<u32>) {
        let n = self.info.controllers;
        if n == 1 {
            return;
        }
        let current = self.info.controller_of(self.controller).unwrap_or(1);
        let next = hint.filter(|&h| h != current).unwrap_or(current % n + 1);
        self.controller = self.info.controller_node_of(next);
    }

    /// Sends every AlterPartition still pending again, to the controller it now talks to.
    fn resend_alters(&mut self, out: &mut Out) {
        for p in 0..self.info.partitions.len() as Pidx {
            if let Role::Leader(l) = &self.roles[p as usize]
                && let Some(isr) = l.pending.as_ref().map(|pending| pending.isr.clone())
            {
                self.alter_isr(p, isr, out);
            }
        }
    }

    pub fn on_timer(&mut self, now: Time, timer: BrokerTimer, out: &mut Out) {
        match timer {
            BrokerTimer::FetchExpire(id) => {
                let Some(i) = self.parked.iter().position(|f| f.id == id) else {
                    return out.idle();
                };
                {
                    let f = self.parked.remove(i);
                    let partitions = self.read_fetch(&f.partitions, f.replica, f.max_partition_bytes);
                    out.send(
                        f.from,
                        Msg::FetchResponse {
                            id: f.request,
                            partitions,
                        },
                    );
                }
            }
            BrokerTimer::ProduceExpire(id) => {
                let Some(i) = self.purgatory.iter().position(|pp| pp.id == id) else {
                    return out.idle();
                };
                {
                    let mut pp = self.purgatory.remove(i);
                    for part in &mut pp.parts {
                        part.3.get_or_insert(Err(ErrorCode::RequestTimedOut));
                    }
                    self.respond_produce(pp, out);
                }
            }
            BrokerTimer::HighWatermarkCheckpoint => {
                self.checkpoint_high_watermarks();
                out.set_timer(
                    self.info.config.high_watermark_checkpoint_interval,
                    Timer::Broker(timer),
                );
            }
            BrokerTimer::Writeback => {
                let expire_before = Time(now.0.saturating_sub(PAGE_CACHE_EXPIRE.0));
                for log in self.disk.logs.iter_mut().flatten() {
                    log.flush_older_than(expire_before);
                }
                out.set_timer(PAGE_CACHE_WRITEBACK, Timer::Broker(timer));
            }
            BrokerTimer::Heartbeat => {
                self.heartbeat(out);
                out.set_timer(self.info.config.broker_heartbeat_interval, Timer::Broker(timer));
            }
            BrokerTimer::IsrExpiration => {
                self.maybe_shrink_isr(now, out);
                out.set_timer(
                    Duration(self.info.config.replica_lag_time_max.0 / 2),
                    Timer::Broker(timer),
                );
            }
            BrokerTimer::FetcherTimeout { leader, request } => {
                let f = self.fetchers.entry(leader).or_default();
                if f.in_flight != Some(request) {
                    return out.idle();
                }
                {
                    f.in_flight = None;
                    f.timeout = None;
                    // The fetcher's client gives up on the connection
                    // (`NetworkClient.handleTimedOutRequests`) and reconnects after the
                    // backoff.
                    out.close(self.info.broker_node(leader));
                    self.back_off(leader, out);
                }
            }
            BrokerTimer::FetcherRetry { leader } => {
                self.fetchers.entry(leader).or_default().backing_off = false;
                self.fetch_from(leader, out);
            }
            BrokerTimer::AlterPartitionTimeout { partition, request } => {
                // Kafka never times an AlterPartition out: it sends it again, and the
                // pending change keeps counting in the maximal ISR meanwhile
                // (`DefaultAlterPartitionManager`).
                if let Role::Leader(l) = &self.roles[partition as usize]
                    && let Some(pending) = l.pending.as_ref().filter(|p| p.request == request)
                {
                    let isr = pending.isr.clone();
                    self.alter_isr(partition, isr, out);
                } else {
                    out.idle();
                }
            }
            BrokerTimer::ShutdownHeartbeat => self.heartbeat(out),
            BrokerTimer::MetadataFetchTimeout => {
                self.metadata_fetch = None;
                self.fetch_metadata(out);
            }
            BrokerTimer::ShutdownTimeout => {
                self.shutdown = Shutdown::TimedOut;
                out.exit();
            }
            BrokerTimer::OffsetCommitExpire(p) => self.offsets_expire(now, p, out),
            BrokerTimer::CoordinatorAppend(p) => self.shard_append(now, p, out),
        }
    }

    pub fn on_peer_down(&mut self, node: NodeId, out: &mut Out) {
        if let Some(leader) = self.info.broker_of(node)
            && self.fetchers.get(&leader).is_some_and(|f| f.in_flight.is_some())
        {
            self.fetchers.entry(leader).or_default().done(out);
            self.back_off(leader, out);
        }
    }

    fn back_off(&mut self, leader: u32, out: &mut Out) {
        let f = self.fetchers.entry(leader).or_default();
        if !f.backing_off {
            f.backing_off = true;
            out.set_timer(
                self.info.config.replica_fetch_backoff,
                Timer::Broker(BrokerTimer::FetcherRetry { leader }),
            );
        }
    }

    pub fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        match msg {
            Msg::BrokerHeartbeatResponse {
                error: Some(ErrorCode::NotController),
                controller,
                ..
            } => {
                // Not the active controller: ask the one it names at once, else the next
                // voter at the next heartbeat.
                self.heartbeat_unanswered = false;
                let before = self.controller;
                self.next_controller(controller);
                if controller.is_some() && self.controller != before {
                    self.heartbeat(out);
                    self.resend_alters(out);
                }
            }
            Msg::BrokerHeartbeatResponse {
                broker_epoch,
                image,
                shutdown_now,
                ..
            } => {
                self.heartbeat_unanswered = false;
                if from != self.controller {
                    return;
                }
                if std::mem::replace(&mut self.answered_by, from) != from {
                    // A new active controller: what the old one left unanswered goes again.
                    self.resend_alters(out);
                }
                if self.info.controllers > 1 && self.metadata_fetch.is_none() && broker_epoch.is_some() {
                    self.broker_epoch = broker_epoch;
                    self.fetch_metadata(out);
                }
                self.broker_epoch = broker_epoch;
                if let Some(image) = image {
                    self.apply_image(now, image, out);
                }
                match self.shutdown {
                    Shutdown::Requested | Shutdown::Waiting if shutdown_now => out.exit(),
                    Shutdown::Requested => {
                        self.shutdown = Shutdown::Waiting;
                        out.set_timer(SHUTDOWN_HEARTBEAT, Timer::Broker(BrokerTimer::ShutdownHeartbeat));
                    }
                    _ => {}
                }
            }
            // A restarted broker acts on metadata only once the controller has taken its
            // registration (`BrokerServer.startup` waits for `initialCatchUpFuture` before
            // it installs the metadata publishers): until then the metadata may still name
            // its old incarnation as a leader.
            Msg::MetadataUpdate { image } if self.broker_epoch.is_some() => {
                self.apply_image(now, image, out);
                if self.info.controllers > 1 {
                    self.fetch_metadata(out);
                }
            }
            Msg::MetadataUpdate { .. } => {}
            Msg::AlterPartitionResponse { id, partition, result } => {
                let Role::Leader(l) = &mut self.roles[partition as usize] else {
                    return;
                };
                if l.pending.as_ref().is_none_or(|p| p.request != id) {
                    return;
                }
                // `Partition.handleAlterPartitionError`: only an ineligible replica undoes
                // the pending change; otherwise it stands until newer metadata arrives.
                match result {
                    Ok(state) if state.leader_epoch == l.epoch => {
                        settle_pending(&mut l.pending, out);
                        l.isr = state.isr;
                        l.partition_epoch = state.partition_epoch;
                    }
                    Ok(_) => {}
                    Err(ErrorCode::IneligibleReplica) => settle_pending(&mut l.pending, out),
                    // Sent again once the broker has found the active controller.
                    Err(_) => {}
                }
                self.maybe_increment_hw(now, partition, out);
            }
            Msg::MetadataRequest { id } => {
                let partitions = match &self.image {
                    Some(image) => image
                        .partitions
                        .iter()
                        .map(|s| PartitionMetadata {
                            leader: s.leader,
                            leader_epoch: s.leader_epoch,
                        })
                        .collect(),
                    None => vec![
                        PartitionMetadata {
                            leader: None,
                            leader_epoch: 0
                        };
                        self.info.partitions.len()
                    ],
                };
                out.send(from, Msg::MetadataResponse { id, partitions });
            }
            Msg::ProduceRequest {
                id,
                acks,
                idempotent,
                timeout_ms,
                batches,
            } => {
                self.produce(now, from, id, acks, idempotent, timeout_ms, batches, out);
            }
            Msg::FetchRequest {
                id,
                replica,
                partitions,
                max_wait_ms,
                min_bytes,
                max_partition_bytes,
            } => {
                // The leader reads first, so the response carries the high watermark from
                // before this fetch moved it (KAFKA.md §1.1): followers learn it a round late.
                let response = self.read_fetch(&partitions, replica, max_partition_bytes);
                if let Some(follower) = replica {
                    for fp in &partitions {
                        self.note_follower_fetch(now, fp, follower, out);
                    }
                }
                let urgent = response.iter().any(|f| f.result.is_err() || f.diverging.is_some());
                let bytes: u64 = response.iter().map(bytes_of).sum();
                if urgent || bytes >= u64::from(min_bytes) || max_wait_ms == 0 {
                    out.send(
                        from,
                        Msg::FetchResponse {
                            id,
                            partitions: response,
                        },
                    );
                } else {
                    let park = self.id();
                    let expire = out.set_timer(
                        Duration::from_millis(max_wait_ms),
                        Timer::Broker(BrokerTimer::FetchExpire(park)),
                    );
                    self.parked.push(Parked {
                        id: park,
                        from,
                        request: id,
                        replica,
                        partitions,
                        min_bytes,
                        max_partition_bytes,
                        expire,
                    });
                }
            }
            Msg::FetchResponse { id, partitions } => {
                let Some(leader) = self.info.broker_of(from) else {
                    return;
                };
                self.on_fetch_response(now, leader, id, partitions, out);
            }
            Msg::OffsetsForLeaderEpochRequest { id, partitions } => {
                let answers = partitions
                    .into_iter()
                    .map(|(p, epoch)| {
                        let end = if self.is_leader(p) {
                            let cache = &self.disk.epochs[p as usize];
                            Ok(match self.info.config.truncation {
                                TruncationMode::Kip101 => cache.end_offset_for_kip101(epoch, self.leo(p)),
                                _ => cache.end_offset_for(epoch, self.leo(p)),
                            })
                        } else {
                            // Not (yet) the leader: the follower retries without truncating.
                            Err(ErrorCode::NotLeaderOrFollower)
                        };
                        (p, end)
                    })
                    .collect();
                out.send(
                    from,
                    Msg::OffsetsForLeaderEpochResponse {
                        id,
                        partitions: answers,
                    },
                );
            }
            Msg::OffsetsForLeaderEpochResponse { id, partitions } => {
                let Some(leader) = self.info.broker_of(from) else {
                    return;
                };
                let f = self.fetchers.entry(leader).or_default();
                if f.in_flight != Some(id) {
                    return;
                }
                f.done(out);
                let mut error = false;
                for (p, end) in partitions {
                    let Role::Follower(fs) = &self.roles[p as usize] else {
                        continue;
                    };
                    if fs.leader != leader || fs.phase != FollowerPhase::NeedsEpochEnd {
                        continue;
                    }
                    let Ok(end) = end else {
                        error = true;
                        continue;
                    };
                    let leo = self.leo(p);
                    let t = truncation_offset(end, &self.disk.epochs[p as usize], leo, self.high_watermark(p));
                    self.truncate(p, t.offset, "KIP-101 epoch request", out);
                    if let Role::Follower(fs) = &mut self.roles[p as usize] {
                        fs.phase = FollowerPhase::Fetching;
                    }
                }
                if error {
                    self.back_off(leader, out);
                } else {
                    self.fetch_from(leader, out);
                }
            }
            Msg::ListOffsetsRequest { id, spec, partitions } => {
                let offsets = partitions
                    .into_iter()
                    .map(|p| {
                        let r = if !self.is_leader(p) {
                            Err(ErrorCode::NotLeaderOrFollower)
                        } else {
                            Ok(match spec {
                                OffsetSpec::Earliest => 0,
                                // A read_uncommitted consumer's "latest" is the high watermark.
                                OffsetSpec::Latest => self.high_watermark[p as usize],
                            })
                        };
                        (p, r)
                    })
                    .collect();
                out.send(from, Msg::ListOffsetsResponse { id, offsets });
            }
            Msg::FindCoordinatorRequest { id, group } => {
                // The coordinator is the leader of the group's `__consumer_offsets`
                // partition, as this broker's metadata says.
                let p = self.info.offsets_pidx[group as usize];
                let coordinator = self
                    .image
                    .as_ref()
                    .and_then(|i| i.partitions[p as usize].leader)
                    .ok_or(ErrorCode::CoordinatorNotAvailable);
                out.send(from, Msg::FindCoordinatorResponse { id, coordinator });
            }
            Msg::OffsetCommitRequest {
                id,
                group,
                generation,
                member_id,
                offsets,
            } => {
                let error = if !self.coordinates(group) {
                    Some(ErrorCode::NotCoordinator)
                } else {
                    self.coordinator.check_commit(group, generation, &member_id)
                };
                match error {
                    Some(error) => out.send(from, Msg::OffsetCommitResponse { id, result: Err(error) }),
                    None => self.offsets_commit(now, from, id, group, offsets, out),
                }
            }
            Msg::JoinGroupRequest { id, ref join } if !self.coordinates(join.group) => {
                out.send(
                    from,
                    Msg::JoinGroupResponse {
                        id,
                        result: Err((ErrorCode::NotCoordinator, String::new())),
                    },
                );
            }
            msg @ Msg::JoinGroupRequest { .. } => {
                let Msg::JoinGroupRequest { join, .. } = &msg else {
                    unreachable!()
                };
                let client = format!("{}-{}", self.info.groups[join.group as usize], join.member);
                self.coordinator.join(now, from, &client, msg, out);
            }
            Msg::SyncGroupRequest { id, group, .. } if !self.coordinates(group) => {
                out.send(
                    from,
                    Msg::SyncGroupResponse {
                        id,
                        result: Err(ErrorCode::NotCoordinator),
                    },
                );
            }
            msg @ Msg::SyncGroupRequest { .. } => self.coordinator.sync(now, from, msg, out),
            Msg::HeartbeatRequest {
                id,
                group,
                generation,
                member_id,
            } => {
                let error = if !self.coordinates(group) {
                    Some(ErrorCode::NotCoordinator)
                } else {
                    self.coordinator.heartbeat(now, group, generation, &member_id)
                };
                out.send(from, Msg::HeartbeatResponse { id, error });
            }
            Msg::LeaveGroupRequest { id, group, member_id } => {
                if self.coordinates(group) {
                    self.coordinator.leave(now, group, &member_id, out);
                }
                out.send(from, Msg::LeaveGroupResponse { id });
            }
            Msg::OffsetFetchRequest { id, group, partitions } => {
                if self.coordinates(group) {
                    self.offsets_fetch(now, from, id, group, partitions, out);
                } else {
                    out.send(
                        from,
                        Msg::OffsetFetchResponse {
                            id,
                            result: Err(ErrorCode::NotCoordinator),
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Applies a newer metadata image: every replica becomes leader, follower or offline
    /// as it says (`ReplicaManager.applyDelta`).
    fn apply_image(&mut self, now: Time, image: MetadataImage, out: &mut Out) {
        if self.image.as_ref().is_some_and(|i| i.version >= image.version) {
            return;
        }
        for p in 0..self.info.partitions.len() as Pidx {
            if self.log(p).is_none() {
                continue;
            }
            let state = image.partitions[p as usize].clone();
            match (&mut self.roles[p as usize], state.leader) {
                (Role::Leader(l), Some(leader)) if leader == self.id && l.epoch == state.leader_epoch => {
                    if state.partition_epoch > l.partition_epoch {
                        l.isr = state.isr.clone();
                        l.partition_epoch = state.partition_epoch;
                        settle_pending(&mut l.pending, out);
                    }
                }
                (_, Some(leader)) if leader == self.id => self.become_leader(now, p, &state, out),
                (Role::Follower(f), Some(leader)) if f.leader == leader && f.epoch == state.leader_epoch => {}
                (_, Some(leader)) => self.become_follower(p, leader, state.leader_epoch, out),
                (_, None) => self.become_offline(p, out),
            }
        }
        self.image = Some(image);
        // A broker that no longer leads a group's `__consumer_offsets` partition unloads
        // the group.
        for g in 0..self.info.groups.len() as u32 {
            if !self.coordinates(g) {
                self.coordinator.forget(g, out);
            } else if !self.coordinator.has(g)
                && let Some(snapshot) = self.shard_group(self.info.offsets_pidx[g as usize], g).cloned()
            {
                // The new coordinator loads the group it finds in the partition.
                self.coordinator.load(now, g, &snapshot, out);
            }
        }
        let leaders: Vec<u32> = self.fetchers.keys().copied().collect();
        for leader in leaders {
            self.fetch_from(leader, out);
        }
        for p in 0..self.info.partitions.len() as Pidx {
            if self.is_leader(p) {
                self.maybe_increment_hw(now, p, out);
            }
        }
    }

    /// `Partition.makeLeader`: the epoch starts at the log end; followers in the ISR count
    /// as caught up now, but their log end offsets are unknown until they fetch (so the
    /// high watermark waits for every ISR member to fetch in this epoch, KIP-320).
    fn become_leader(&mut self, now: Time, p: Pidx, state: &PartitionState, out: &mut Out) {
        // A coordinator that stays leader in a new epoch keeps its shard, pending requests
        // and all (`CoordinatorRuntime.scheduleLoadOperation` only raises the epoch of an
        // active context).
        let shard = self.shard_keep(p);
        self.stop_leading(p, out);
        let leo = self.leo(p);
        self.disk.epochs[p as usize].assign(state.leader_epoch, leo);
        let followers = self.info.partitions[p as usize]
            .replicas
            .iter()
            .filter(|b| **b != self.id)
            .map(|&b| {
                let in_sync = state.isr.contains(&b);
                (
                    b,
                    FollowerProgress {
                        last_caught_up: in_sync.then_some(now),
                        ..Default::default()
                    },
                )
            })
            .collect();
        self.roles[p as usize] = Role::Leader(LeaderState {
            epoch: state.leader_epoch,
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
            pending: None,
            followers,
            epoch_start: leo,
        });
        if self.info.is_internal(p) {
            match shard {
                Some(shard) => self.shard_restore(p, shard),
                None => self.shard_load(p),
            }
        }
        out.observe(Obs::BecameLeader {
            partition: p,
            epoch: state.leader_epoch,
            log_end_offset: leo,
        });
    }

    /// `Partition.makeFollower`, then the truncation the scenario's protocol prescribes.
    fn become_follower(&mut self, p: Pidx, leader: u32, epoch: u32, out: &mut Out) {
        self.stop_leading(p, out);
        let phase = match self.info.config.truncation {
            TruncationMode::HighWatermark => {
                // Kafka before 0.11: truncate to the local high watermark, then fetch.
                let hw = self.high_watermark(p);
                self.truncate(p, hw, "high-watermark truncation on becoming follower", out);
                FollowerPhase::Fetching
            }
            TruncationMode::Kip101 => FollowerPhase::NeedsEpochEnd,
            TruncationMode::LeaderEpoch => FollowerPhase::Fetching,
        };
        self.roles[p as usize] = Role::Follower(FollowerState { leader, epoch, phase });
        self.fetchers.entry(leader).or_default();
    }

    fn become_offline(&mut self, p: Pidx, out: &mut Out) {
        self.stop_leading(p, out);
        self.roles[p as usize] = Role::Offline;
    }

    /// Leaving leadership: produces waiting on this partition fail, parked consumer
    /// fetches are answered (with NOT_LEADER_OR_FOLLOWER).
    fn stop_leading(&mut self, p: Pidx, out: &mut Out) {
        if !self.is_leader(p) {
            return;
        }
        self.shard_unload(p, out);
        self.roles[p as usize] = Role::Offline;
        let mut i = 0;
        while i < self.purgatory.len() {
            let mut touched = false;
            for part in &mut self.purgatory[i].parts {
                if part.0 == p && part.3.is_none() {
                    part.3 = Some(Err(ErrorCode::NotLeaderOrFollower));
                    touched = true;
                }
            }
            if touched && self.purgatory[i].parts.iter().all(|part| part.3.is_some()) {
                let pp = self.purgatory.remove(i);
                self.respond_produce(pp, out);
            } else {
                i += 1;
            }
        }
        self.complete_parked_where(p, true, |_| true, out);
    }

    fn truncate(&mut self, p: Pidx, offset: u64, why: &'static str, out: &mut Out) {
        let log = self.log_mut(p);
        let removed = log.truncate_to(offset);
        let leo = log.end_offset();
        self.disk.epochs[p as usize].truncate_from_end(leo);
        let hw = &mut self.high_watermark[p as usize];
        *hw = (*hw).min(leo);
        if !removed.is_empty() {
            if !self.info.is_internal(p) {
                self.producers
                    .rebuild(p, self.disk.logs[p as usize].as_ref().expect("a replica"));
            }
            out.observe(Obs::Truncated {
                partition: p,
                from: removed.start,
                to: removed.end,
                why,
            });
        }
    }

    /// A follower's fetch loop: one request per leader in flight, carrying every partition
    /// that follows it.
    fn fetch_from(&mut self, leader: u32, out: &mut Out) {
        let f = self.fetchers.entry(leader).or_default();
        if f.in_flight.is_some() || f.backing_off {
            return;
        }
        let mut needs_epoch = Vec::new();
        let mut partitions = Vec::new();
        for p in 0..self.info.partitions.len() as Pidx {
            let Role::Follower(fs) = &self.roles[p as usize] else {
                continue;
            };
            if fs.leader != leader {
                continue;
            }
            match fs.phase {
                FollowerPhase::NeedsEpochEnd => needs_epoch.push((p, self.disk.epochs[p as usize].latest_epoch())),
                FollowerPhase::Fetching => {
                    let last_fetched_epoch = match self.info.config.truncation {
                        TruncationMode::LeaderEpoch => self.disk.epochs[p as usize].latest_epoch(),
                        _ => None,
                    };
                    partitions.push(FetchPartition {
                        partition: p,
                        offset: self.leo(p),
                        current_leader_epoch: Some(fs.epoch),
                        last_fetched_epoch,
                    });
                }
            }
        }
        let id = self.id();
        let to = self.info.broker_node(leader);
        let c = &self.info.config;
        let msg = if !needs_epoch.is_empty() {
            Msg::OffsetsForLeaderEpochRequest {
                id,
                partitions: needs_epoch,
            }
        } else if !partitions.is_empty() {
            Msg::FetchRequest {
                id,
                replica: Some(self.id),
                partitions,
                max_wait_ms: c.replica_fetch_wait_max.as_millis(),
                min_bytes: c.replica_fetch_min_bytes,
                max_partition_bytes: c.replica_fetch_max_bytes,
            }
        } else {
            return;
        };
        out.send(to, msg);
        let timeout = out.set_timer(
            REPLICA_SOCKET_TIMEOUT + c.replica_fetch_wait_max,
            Timer::Broker(BrokerTimer::FetcherTimeout { leader, request: id }),
        );
        let f = self.fetchers.entry(leader).or_default();
        f.in_flight = Some(id);
        f.timeout = Some(timeout);
    }

    /// `AbstractFetcherThread.processFetchRequest`: append, learn the HW, or truncate.
    fn on_fetch_response(&mut self, now: Time, leader: u32, id: u64, partitions: Vec<FetchedPartition>, out: &mut Out) {
        let f = self.fetchers.entry(leader).or_default();
        if f.in_flight != Some(id) {
            return;
        }
        f.done(out);
        let mut error = false;
        for fp in partitions {
            let p = fp.partition;
            let following = matches!(&self.roles[p as usize], Role::Follower(fs) if fs.leader == leader && fs.phase == FollowerPhase::Fetching);
            if !following || self.leo(p) != fp.fetch_offset {
                continue;
            }
            if let Some(end) = fp.diverging {
                let leo = self.leo(p);
                let t = truncation_offset(end, &self.disk.epochs[p as usize], leo, self.high_watermark(p));
                self.truncate(p, t.offset, "diverging epoch", out);
                continue;
            }
            match fp.result {
                Ok(ranges) => {
                    let topic_flush = self.info.topic_of(p).flush_messages;
                    // `AbstractFetcherThread.processFetchRequest` takes a response whose fetch
                    // offset is still the log end, even one to a request sent in an older
                    // epoch (the partition was removed and added again meanwhile): its
                    // records are that epoch's, and the next fetch truncates what diverges.
                    let source = match &self.roles[p as usize] {
                        Role::Follower(fs) => Some((fs.leader, fp.request_epoch.unwrap_or(fs.epoch))),
                        _ => None,
                    };
                    for r in &ranges {
                        let log = self.log_mut(p);
                        let base = log.append_range(r, now);
                        if topic_flush.is_some_and(|n| log.unflushed_records() >= n) {
                            log.flush();
                        }
                        self.disk.epochs[p as usize].assign(r.leader_epoch, base);
                        let appended = RecordRange {
                            base_offset: base,
                            ..*r
                        };
                        self.producers.record(p, &appended);
                        out.observe(Obs::Replicated {
                            partition: p,
                            range: appended,
                            source,
                        });
                    }
                    // `UnifiedLog.updateHighWatermark`: the leader's HW, bounded by the log end.
                    self.high_watermark[p as usize] = fp.high_watermark.min(self.leo(p));
                }
                Err(ErrorCode::OffsetOutOfRange) => {
                    // The leader's log is shorter (after an unclean election): truncate to
                    // its end ("a potential for a mismatch … we don't fix this").
                    self.truncate(p, fp.log_end_offset, "the leader's log is shorter", out);
                }
                Err(_) => error = true,
            }
        }
        if error {
            self.back_off(leader, out);
        } else {
            self.fetch_from(leader, out);
        }
    }

    /// The leader's side of a follower fetch, before it is answered: the follower's
    /// progress (`updateFollowerFetchState`), ISR expansion, the high watermark.
    fn note_follower_fetch(&mut self, now: Time, fp: &FetchPartition, follower: u32, out: &mut Out) {
        let p = fp.partition;
        let leo = self.leo(p);
        let Role::Leader(l) = &mut self.roles[p as usize] else {
            return;
        };
        if fp.current_leader_epoch != Some(l.epoch) || fp.offset > leo {
            return;
        }
        if self.info.config.truncation == TruncationMode::LeaderEpoch
            && diverges(&self.disk.epochs[p as usize], fp, leo)
        {
            return;
        }
        let Some(r) = l.followers.get_mut(&follower) else {
            return;
        };
        r.update_fetch_state(fp.offset, leo, now);
        // Partition.maybeExpandIsr: caught up to the HW and to the start of this epoch.
        let hw = self.high_watermark[p as usize];
        let eligible = !self.image.as_ref().is_some_and(|i| i.ineligible(follower));
        if !l.isr.contains(&follower)
            && l.pending.is_none()
            && eligible
            && fp.offset >= hw
            && fp.offset >= l.epoch_start
        {
            let mut isr = l.isr.clone();
            isr.push(follower);
            self.alter_isr(p, isr, out);
        }
        self.maybe_increment_hw(now, p, out);
    }

    fn alter_isr(&mut self, p: Pidx, isr: Vec<u32>, out: &mut Out) {
        let request = self.id();
        let Role::Leader(l) = &mut self.roles[p as usize] else {
            return;
        };
        settle_pending(&mut l.pending, out);
        let timeout = out.set_timer(
            REPLICA_SOCKET_TIMEOUT,
            Timer::Broker(BrokerTimer::AlterPartitionTimeout { partition: p, request }),
        );
        l.pending = Some(PendingIsr {
            request,
            isr: isr.clone(),
            timeout,
        });
        let msg = Msg::AlterPartitionRequest {
            id: request,
            partition: p,
            leader_epoch: l.epoch,
            partition_epoch: l.partition_epoch,
            isr,
        };
        out.send(self.controller, msg);
    }

    /// The `isr-expiration` task: followers not caught up for `replica.lag.time.max.ms`
    /// leave the ISR.
    fn maybe_shrink_isr(&mut self, now: Time, out: &mut Out) {
        let max_lag = self.info.config.replica_lag_time_max;
        for p in 0..self.info.partitions.len() as Pidx {
            let leo = self.leo(p);
            let Role::Leader(l) = &self.roles[p as usize] else {
                continue;
            };
            if l.pending.is_some() {
                continue;
            }
            let out_of_sync: Vec<u32> = l
                .isr
                .iter()
                .copied()
                .filter(|b| *b != self.id)
                .filter(|b| l.followers.get(b).is_some_and(|r| !r.is_caught_up(leo, now, max_lag)))
                .collect();
            if !out_of_sync.is_empty() {
                let isr: Vec<u32> = l.isr.iter().copied().filter(|b| !out_of_sync.contains(b)).collect();
                self.alter_isr(p, isr, out);
            }
        }
    }

    /// `Partition.maybeIncrementLeaderHW` (KAFKA.md §1.2).
    fn maybe_increment_hw(&mut self, now: Time, p: Pidx, out: &mut Out) {
        let leo = self.leo(p);
        let Role::Leader(l) = &self.roles[p as usize] else {
            return;
        };
        let topic = self.info.topic_of(p);
        // KAFKA-15583 (3.7): no advance while the ISR is below min.insync.replicas.
        if (l.isr.len() as u32) < topic.min_insync_replicas.min(topic.replication_factor) {
            return;
        }
        let max_lag = self.info.config.replica_lag_time_max;
        let fenced = |b: u32| self.image.as_ref().is_some_and(|i| i.ineligible(b));
        let mut new_hw = leo;
        for (b, r) in &l.followers {
            // `isReplicaIsrEligible`: a fenced broker's replica does not hold the HW back.
            let caught_up = r.is_caught_up(leo, now, max_lag) && !fenced(*b);
            if !(l.in_maximal_isr(*b) || caught_up) {
                continue;
            }
            match r.log_end_offset {
                Some(f) if f >= new_hw => {}
                Some(f) => new_hw = f,
                // Not fetched in this epoch yet: the HW waits for it.
                None => return,
            }
        }
        let epoch = l.epoch;
        if new_hw > self.high_watermark[p as usize] {
            self.high_watermark[p as usize] = new_hw;
            out.observe(Obs::HighWatermark {
                partition: p,
                epoch,
                high_watermark: new_hw,
            });
            self.complete_produces(p, out);
            self.complete_parked(p, false, out);
            self.shard_complete(p, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn produce(
        &mut self,
        now: Time,
        from: NodeId,
        request: u64,
        acks: AcksMode,
        idempotent: bool,
        timeout_ms: u64,
        batches: Vec<(Pidx, Batch)>,
        out: &mut Out,
    ) {
        let mut parts = Vec::with_capacity(batches.len());
        for (p, batch) in batches {
            match self.append(now, p, &batch, acks, idempotent, out) {
                Ok(base) => {
                    let required = base + u64::from(batch.count);
                    let done = (acks != AcksMode::All).then_some(Ok(base));
                    parts.push((p, required, base, done));
                    self.complete_parked_followers(p, out);
                    self.maybe_increment_hw(now, p, out);
                }
                Err(e) => parts.push((p, 0, 0, Some(Err(e)))),
            }
        }
        if acks == AcksMode::Zero {
            return;
        }
        let id = self.id();
        let mut pp = PendingProduce {
            id,
            from,
            request,
            acks,
            parts,
            expire: None,
        };
        self.settle(&mut pp);
        if pp.parts.iter().all(|part| part.3.is_some()) {
            self.respond_produce(pp, out);
        } else {
            pp.expire = Some(out.set_timer(
                Duration::from_millis(timeout_ms),
                Timer::Broker(BrokerTimer::ProduceExpire(id)),
            ));
            self.purgatory.push(pp);
        }
    }

    /// `Partition.checkEnoughReplicasReachOffset` for each waiting part of a produce.
    fn settle(&self, pp: &mut PendingProduce) {
        for part in &mut pp.parts {
            if part.3.is_some() {
                continue;
            }
            let (p, required, base) = (part.0, part.1, part.2);
            let Role::Leader(l) = &self.roles[p as usize] else {
                part.3 = Some(Err(ErrorCode::NotLeaderOrFollower));
                continue;
            };
            if self.high_watermark[p as usize] >= required {
                let topic = self.info.topic_of(p);
                let min_isr = topic.min_insync_replicas.min(topic.replication_factor);
                part.3 = Some(if l.maximal_isr_len() as u32 >= min_isr {
                    Ok(base)
                } else {
                    Err(ErrorCode::NotEnoughReplicasAfterAppend)
                });
            }
        }
    }

    fn complete_produces(&mut self, p: Pidx, out: &mut Out) {
        let mut i = 0;
        while i < self.purgatory.len() {
            if !self.purgatory[i].parts.iter().any(|part| part.0 == p) {
                i += 1;
                continue;
            }
            let mut pp = self.purgatory.remove(i);
            self.settle(&mut pp);
            if pp.parts.iter().all(|part| part.3.is_some()) {
                self.respond_produce(pp, out);
            } else {
                self.purgatory.insert(i, pp);
                i += 1;
            }
        }
    }

    fn respond_produce(&mut self, pp: PendingProduce, out: &mut Out) {
        if let Some(expire) = pp.expire {
            out.cancel_timer(expire);
        }
        for &(p, required, _, ref r) in &pp.parts {
            if pp.acks == AcksMode::All
                && matches!(r, Some(Ok(_)))
                && let Role::Leader(l) = &self.roles[p as usize]
            {
                let isr = l.maximal_isr_len() as u32;
                out.observe(Obs::AckedInSync {
                    partition: p,
                    end_offset: required,
                    isr,
                });
            }
        }
        let results = pp
            .parts
            .into_iter()
            .map(|(p, _, _, r)| (p, r.expect("settled")))
            .collect();
        out.send(
            pp.from,
            Msg::ProduceResponse {
                id: pp.request,
                results,
            },
        );
    }

    /// The leader's append path (`Partition.appendRecordsToLeader`, `UnifiedLog.append`).
    fn append(
        &mut self,
        now: Time,
        p: Pidx,
        batch: &Batch,
        acks: AcksMode,
        idempotent: bool,
        out: &mut Out,
    ) -> Result<u64, ErrorCode> {
        let Role::Leader(l) = &self.roles[p as usize] else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let epoch = l.epoch;
        let topic = self.info.topic_of(p);
        // KAFKA-15583 (3.7): the requirement is capped at the replication factor.
        let effective_min_isr = topic.min_insync_replicas.min(topic.replication_factor);
        if acks == AcksMode::All && (l.isr.len() as u32) < effective_min_isr {
            return Err(ErrorCode::NotEnoughReplicas);
        }
        let flush_messages = topic.flush_messages;
        let log = self.disk.logs[p as usize].as_mut().expect("a leader holds a replica");
        if idempotent && let Verdict::Duplicate(base) = self.producers.check(p, batch)? {
            return Ok(base);
        }
        let base = log.append(batch, epoch, now);
        if flush_messages.is_some_and(|n| log.unflushed_records() >= n) {
            log.flush();
        }
        let range = log.ranges().last().expect("just appended");
        self.producers.record(p, &range);
        out.observe(Obs::Replicated {
            partition: p,
            range,
            source: None,
        });
        Ok(base)
    }

    /// Reads a fetch. Consumers read below the high watermark; followers up to the log end
    /// (`FetchIsolation`), after the epoch checks of KIP-320 and the divergence check.
    fn read_fetch(&self, partitions: &[FetchPartition], replica: Option<u32>, max_bytes: u32) -> Vec<FetchedPartition> {
        partitions
            .iter()
            .map(|fp| {
                let p = fp.partition;
                let hw = self.high_watermark[p as usize];
                let leo = self.leo(p);
                let mut diverging = None;
                let result = match &self.roles[p as usize] {
                    Role::Leader(l) => {
                        let cache = &self.disk.epochs[p as usize];
                        match fp.current_leader_epoch {
                            Some(e) if e < l.epoch => Err(ErrorCode::FencedLeaderEpoch),
                            Some(e) if e > l.epoch => Err(ErrorCode::UnknownLeaderEpoch),
                            // The divergence check comes before the range check
                            // (`Partition.readRecords`).
                            _ if replica.is_some()
                                && self.info.config.truncation == TruncationMode::LeaderEpoch
                                && diverges(cache, fp, leo) =>
                            {
                                diverging = Some(cache.end_offset_for(fp.last_fetched_epoch, leo));
                                Ok(Vec::new())
                            }
                            _ if fp.offset > leo => Err(ErrorCode::OffsetOutOfRange),
                            _ => {
                                let until = if replica.is_some() { leo } else { hw };
                                Ok(self
                                    .log(p)
                                    .map(|log| log.read(fp.offset, until, max_bytes))
                                    .unwrap_or_default())
                            }
                        }
                    }
                    _ => Err(ErrorCode::NotLeaderOrFollower),
                };
                FetchedPartition {
                    partition: p,
                    fetch_offset: fp.offset,
                    result,
                    high_watermark: hw,
                    log_end_offset: leo,
                    diverging,
                    request_epoch: fp.current_leader_epoch,
                }
            })
            .collect()
    }

    /// Answers parked fetches that include `p` and now have enough data; with `all`,
    /// answers every parked fetch that includes `p`.
    fn complete_parked(&mut self, p: Pidx, all: bool, out: &mut Out) {
        self.complete_parked_where(p, all, |f| f.replica.is_none(), out);
    }

    /// New data at the leader wakes the followers' parked fetches (not an HW change alone,
    /// KAFKA-9952).
    fn complete_parked_followers(&mut self, p: Pidx, out: &mut Out) {
        self.complete_parked_where(p, false, |f| f.replica.is_some(), out);
    }

    fn complete_parked_where(&mut self, p: Pidx, all: bool, which: impl Fn(&Parked) -> bool, out: &mut Out) {
        let mut i = 0;
        while i < self.parked.len() {
            let f = &self.parked[i];
            if !which(f) || !f.partitions.iter().any(|fp| fp.partition == p) {
                i += 1;
                continue;
            }
            let response = self.read_fetch(&f.partitions, f.replica, f.max_partition_bytes);
            let bytes: u64 = response.iter().map(bytes_of).sum();
            if all || bytes >= u64::from(f.min_bytes) {
                let f = self.parked.remove(i);
                out.cancel_timer(f.expire);
                out.send(
                    f.from,
                    Msg::FetchResponse {
                        id: f.request,
                        partitions: response,
                    },
                );
            } else {
                i += 1;
            }
        }
    }
}

/// Whether a follower's fetch shows its log diverging from the leader's: its last fetched
/// epoch ends, in the leader's log, before its fetch offset or under another epoch.
fn diverges(cache: &EpochCache, fp: &FetchPartition, leo: u64) -> bool {
    let Some(epoch) = fp.last_fetched_epoch else {
        return false;
    };
    let end = cache.end_offset_for(Some(epoch), leo);
    end.epoch != Some(epoch) || end.end_offset.is_none_or(|e| e < fp.offset)
}

fn bytes_of(f: &FetchedPartition) -> u64 {
    match &f.result {
        Ok(ranges) => ranges.iter().map(|r| u64::from(r.bytes)).sum(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `ReplicaTest.testUpdateFetchState` and the `isCaughtUp` tests.
    #[test]
    fn fetch_state_follows_kafkas_replica_test() {
        let lag = Duration::from_millis(30_000);
        let (t1, t2, t3) = (
            Time::from_millis(100_000),
            Time::from_millis(101_000),
            Time::from_millis(102_000),
        );
        let mut r = FollowerProgress::default();
        r.update_fetch_state(5, 10, t1);
        assert_eq!((r.last_caught_up, r.last_fetch_leader_log_end), (None, 10));
        assert!(!r.is_caught_up(10, t1, lag));
        r.update_fetch_state(10, 15, t2);
        assert_eq!(r.last_caught_up, Some(t1));
        assert!(r.is_caught_up(16, t2, lag));
        assert!(!r.is_caught_up(16, t1 + lag + Duration::from_millis(1), lag));
        r.update_fetch_state(15, 15, t3);
        assert_eq!(r.last_caught_up, Some(t3));
        // A follower at the leader's log end stays caught up, however long ago it fetched.
        assert!(r.is_caught_up(15, t3 + lag + lag, lag));
    }
}
