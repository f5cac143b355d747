//! The KRaft controller, as one node that never fails (a documented simplification): it
//! registers brokers, fences those whose heartbeats stop for `broker.session.timeout.ms`,
//! elects leaders (the first live ISR member in replica order; unclean election only where
//! enabled), applies the leaders' AlterPartition requests, and publishes every change to
//! the brokers. KAFKA.md §1.5–1.6.

use crate::kafka::protocol::{ErrorCode, Msg};
use crate::kafka::quorum::{self, QState, Quorum};
use crate::kafka::{
    ClusterInfo, ElectionReason, MetadataImage, Obs, Out, PartitionState, Pidx, Role, Timer, TruncationMode,
};
use crate::sim::{Duration, NodeId, Time, TimerId};
use rand::RngExt;
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerTimer {
    /// Look for brokers whose session expired.
    SessionCheck,
    /// `electPreferred`, every `leader.imbalance.check.interval.seconds`.
    ElectPreferred,
    /// A follower's next fetch from its leader.
    QuorumFetch,
    /// A follower heard nothing from a leader for the fetch timeout.
    FetchTimeout,
    /// A prospective or candidate voter's election timed out.
    Election,
    /// The leader checks that a majority still fetches.
    CheckQuorum,
    /// A parked fetch of this voter reached its maximum wait.
    FetchExpire { voter: u32 },
    /// A parked metadata fetch of this broker reached its maximum wait.
    MetadataFetchExpire { broker: u32 },
}

/// How often the controller looks for expired sessions.
const SESSION_CHECK: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct Registration {
    /// The broker epoch of its current registration.
    epoch: u64,
    /// The metadata version when it registered: once the broker has caught up to it, it
    /// may be unfenced (`BrokerHeartbeatManager`).
    registered_at_version: u64,
    fenced: bool,
    /// In controlled shutdown: no longer an acceptable leader or ISR member.
    in_controlled_shutdown: bool,
    /// The metadata version when it entered controlled shutdown: it may stop once every
    /// active broker has reported at least that (`controlledShutdownOffset`).
    controlled_shutdown_version: u64,
    /// The metadata version its last heartbeat reported (`currentMetadataOffset`).
    metadata_version: u64,
    last_contact: Time,
}

/// How a partition change elects (`PartitionChangeBuilder.Election`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Election {
    /// Keep a valid leader, else the first valid replica.
    #[default]
    Any,
    /// The preferred replica if it is valid.
    Preferred,
}

/// One partition change, as `generateLeaderAndIsrUpdates` builds it.
#[derive(Default)]
struct Change {
    target_isr: Vec<u32>,
    election: Election,
    /// `brokerToRemove`: never an acceptable leader.
    excluded: Option<u32>,
    /// `brokerWithUncleanShutdown`: never a leader, and out of the ELR.
    unclean_shutdown: Option<u32>,
    /// `brokerToAdd`: acceptable although still fenced (it is being unfenced).
    added: Option<u32>,
}

pub struct Controller {
    info: Arc<ClusterInfo>,
    pub image: MetadataImage,
    brokers: Vec<Registration>,
    next_broker_epoch: u64,
    /// With `controllers` > 1: this voter's Raft state; `None` for the one controller
    /// that never fails, which is always active and commits at once.
    pub quorum: Option<Quorum>,
    /// The active controller's answers to brokers and its metadata pushes, held until the
    /// change they follow is committed (`deferredEventQueue`).
    deferred: Vec<(u64, Deferred)>,
    /// Images not yet committed, oldest first; the newest committed one is pushed.
    uncommitted: Vec<MetadataImage>,
    /// The newest image known committed: what brokers are given.
    committed_image: MetadataImage,
    /// This handler changed the image (quorum mode: it is snapshot once, at its end).
    dirty: bool,
    /// Voters whose fetch the leader holds until its log grows, with its expiry.
    parked: Vec<(u32, TimerId)>,
    /// Brokers whose metadata fetch the active controller holds until a newer image is
    /// committed, with its expiry.
    parked_brokers: Vec<(u32, TimerId)>,
    fetch_timer: Option<TimerId>,
    fetch_timeout: Option<TimerId>,
    election_timer: Option<TimerId>,
    /// The active controller's periodic tasks (session check, preferred elections, check
    /// quorum), cancelled when it stops being active.
    tasks: [Option<TimerId>; 3],
}

/// An answer the active controller sends once its change commits.
enum Deferred {
    Send(NodeId, Msg),
    /// What the controller decided, told to checkers and reports once it is committed: a
    /// zombie's decisions, never committed, never happened.
    Observe(Obs),
    /// A heartbeat answer (brokers of a quorum fetch their metadata instead).
    Heartbeat {
        to: NodeId,
        broker_epoch: u64,
        fenced: bool,
        shutdown_now: bool,
    },
}

/// A controller's replicated state, shipped whole to a follower whose log differs.
#[derive(Clone, Debug)]
pub struct Snapshot {
    image: MetadataImage,
    brokers: Vec<Registration>,
    next_broker_epoch: u64,
    log_epoch: u32,
}

/// In the trace a snapshot is its version and epoch.
impl Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("Snapshot", 2)?;
        st.serialize_field("version", &self.image.version)?;
        st.serialize_field("log_epoch", &self.log_epoch)?;
        st.end()
    }
}

impl Controller {
    /// Who plays `role` now, as this controller's metadata says: the leader of a
    /// partition, or the coordinator of a group (the leader of its `__consumer_offsets`
    /// partition).
    pub fn resolve(&self, role: &Role) -> Result<NodeId, String> {
        let leader = |p: Pidx| {
            self.image.partitions[p as usize]
                .leader
                .map(|b| self.info.broker_node(b))
        };
        match *role {
            Role::Controller => Ok(self.info.controller_node_of(self.id())),
            Role::Leader(p) => leader(p).ok_or_else(|| format!("no broker leads {}", self.info.partition_name(p))),
            Role::Coordinator(g) => {
                let p = self.info.offsets_pidx[g as usize];
                leader(p).ok_or_else(|| {
                    format!(
                        "group {} has no coordinator: no broker leads {}",
                        self.info.groups[g as usize],
                        self.info.partition_name(p)
                    )
                })
            }
        }
    }

    /// Whether this controller acts as the active one.
    pub fn is_active(&self) -> bool {
        self.quorum.as_ref().is_none_or(Quorum::is_leader)
    }

    /// The epoch of the active controller's leadership (0 for a lone controller).
    pub fn epoch(&self) -> u32 {
        self.quorum.as_ref().map_or(0, |q| q.epoch)
    }

    pub fn new(info: Arc<ClusterInfo>, index: u32, rng: crate::sim::rng::SimRng) -> Controller {
        let image = MetadataImage::initial(&info);
        // At time zero every broker is registered (epochs 1..=n) and unfenced.
        let brokers = (1..=info.brokers)
            .map(|b| Registration {
                epoch: u64::from(b),
                registered_at_version: 0,
                fenced: false,
                in_controlled_shutdown: false,
                controlled_shutdown_version: 0,
                metadata_version: 0,
                last_contact: Time::ZERO,
            })
            .collect();
        let quorum = (info.controllers > 1).then(|| Quorum::new(index, info.controllers, rng));
        Controller {
            next_broker_epoch: u64::from(info.brokers) + 1,
            committed_image: image.clone(),
            info,
            image,
            brokers,
            quorum,
            deferred: Vec::new(),
            uncommitted: Vec::new(),
            dirty: false,
            parked: Vec::new(),
            parked_brokers: Vec::new(),
            fetch_timer: None,
            fetch_timeout: None,
            election_timer: None,
            tasks: [None; 3],
        }
    }

    fn reg(&mut self, broker: u32) -> &mut Registration {
        &mut self.brokers[broker as usize - 1]
    }

    fn live(&self, broker: u32) -> bool {
        !self.brokers[broker as usize - 1].fenced
    }

    /// At time zero the controller (with a quorum, `controller-1`) is active and its
    /// periodic tasks start (`PeriodicTaskControlManager.activate`); the other voters
    /// follow it. A voter that restarts after a crash follows nobody until it hears from a
    /// leader or its fetch timeout makes it seek election.
    pub fn start(&mut self, now: Time, out: &mut Out) {
        let Some(q) = &self.quorum else {
            self.start_tasks(out);
            return;
        };
        if q.is_leader() {
            self.start_tasks(out);
            self.leader_progress_reset(now);
        } else {
            self.follow(now, out);
        }
    }

    /// The active controller's periodic tasks start (again).
    fn start_tasks(&mut self, out: &mut Out) {
        self.stop_tasks(out);
        self.rearm(SESSION_CHECK, ControllerTimer::SessionCheck, out);
        if let Some(every) = self.info.config.leader_imbalance_check_interval {
            self.rearm(every, ControllerTimer::ElectPreferred, out);
        }
        if self.quorum.is_some() {
            self.rearm(quorum::MAX_FETCH_WAIT, ControllerTimer::CheckQuorum, out);
        }
    }

    fn stop_tasks(&mut self, out: &mut Out) {
        for t in self.tasks.iter_mut() {
            if let Some(t) = t.take() {
                out.cancel_timer(t);
            }
        }
    }

    /// A process crash or power loss: KRaft flushes its log before it counts an entry, so
    /// the log, the epoch and the vote survive; the rest is soft state.
    pub fn crash(&mut self) {
        if let Some(q) = &mut self.quorum {
            q.state = QState::Follower;
            q.leader = None;
            q.last_leader_contact = None;
        }
        self.deferred.clear();
        self.uncommitted.clear();
        self.parked.clear();
        self.parked_brokers.clear();
        self.tasks = [None; 3];
        self.fetch_timer = None;
        self.fetch_timeout = None;
        self.election_timer = None;
        self.dirty = false;
    }

    pub fn on_timer(&mut self, now: Time, timer: ControllerTimer, out: &mut Out) {
        let task = matches!(
            timer,
            ControllerTimer::SessionCheck | ControllerTimer::ElectPreferred | ControllerTimer::CheckQuorum
        );
        if task && !self.is_active() {
            // A task of a leadership that ended (it fired while the node was paused, say).
            return out.idle();
        }
        match timer {
            ControllerTimer::SessionCheck => {
                let timeout = self.info.config.broker_session_timeout;
                for b in 1..=self.info.brokers {
                    let r = &self.brokers[b as usize - 1];
                    if !r.fenced && now.since(r.last_contact) > timeout {
                        self.fence(b, ElectionReason::SessionExpired, out);
                    }
                }
                self.rearm(SESSION_CHECK, timer, out);
            }
            ControllerTimer::ElectPreferred => {
                self.balance_leaders(out);
                if let Some(every) = self.info.config.leader_imbalance_check_interval {
                    self.rearm(every, timer, out);
                }
            }
            ControllerTimer::QuorumFetch => {
                self.fetch_timer = None;
                self.send_fetch(out);
            }
            ControllerTimer::FetchTimeout => {
                self.fetch_timeout = None;
                self.start_prospective(now, out);
            }
            ControllerTimer::Election => {
                self.election_timer = None;
                // Lost, or nobody answered: try again, with a fresh random timeout.
                let electing = self
                    .quorum
                    .as_ref()
                    .is_some_and(|q| matches!(q.state, QState::Prospective { .. } | QState::Candidate { .. }));
                if electing {
                    self.start_prospective(now, out);
                }
            }
            ControllerTimer::CheckQuorum => {
                let q = self.quorum.as_ref().expect("a quorum timer");
                if q.is_leader() && !q.quorum_heard(now) {
                    self.resign(now, None, "check-quorum", out);
                } else {
                    self.rearm(quorum::MAX_FETCH_WAIT, timer, out);
                }
            }
            ControllerTimer::MetadataFetchExpire { broker } => {
                if let Some(i) = self.parked_brokers.iter().position(|(b, _)| *b == broker) {
                    self.parked_brokers.remove(i);
                    let msg = Msg::MetadataUpdate {
                        image: self.committed_image.clone(),
                    };
                    out.send(self.info.broker_node(broker), msg);
                }
            }
            ControllerTimer::FetchExpire { voter } => {
                if let Some(i) = self.parked.iter().position(|(v, _)| *v == voter) {
                    self.parked.remove(i);
                    self.answer_fetch(voter, false, out);
                }
            }
        }
        self.after(now, out);
    }

    /// Sets a periodic task's next run.
    fn rearm(&mut self, after: Duration, timer: ControllerTimer, out: &mut Out) {
        let slot = match timer {
            ControllerTimer::SessionCheck => 0,
            ControllerTimer::ElectPreferred => 1,
            _ => 2,
        };
        self.tasks[slot] = Some(out.set_timer(after, Timer::Controller(timer)));
    }

    /// This voter's id (1 for a lone controller).
    fn id(&self) -> u32 {
        self.quorum.as_ref().map_or(1, |q| q.id)
    }

    fn voter_node(&self, v: u32) -> NodeId {
        self.info.controller_node_of(v)
    }

    pub fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        if let Some(voter) = self.info.controller_of(from) {
            self.on_quorum_message(now, voter, msg, out);
            self.after(now, out);
            return;
        }
        let Some(broker) = self.info.broker_of(from) else {
            return;
        };
        if !self.is_active() {
            // `NOT_CONTROLLER`, with the leader this voter knows of.
            let hint = self.quorum.as_ref().and_then(|q| q.leader);
            match msg {
                Msg::BrokerHeartbeat { .. } => out.send(
                    from,
                    Msg::BrokerHeartbeatResponse {
                        broker_epoch: None,
                        fenced: true,
                        image: None,
                        error: Some(ErrorCode::NotController),
                        shutdown_now: false,
                        controller: hint,
                    },
                ),
                Msg::AlterPartitionRequest { id, partition, .. } => out.send(
                    from,
                    Msg::AlterPartitionResponse {
                        id,
                        partition,
                        result: Err(ErrorCode::NotController),
                    },
                ),
                _ => {}
            }
            return;
        }
        self.on_broker_message(now, from, broker, msg, out);
        self.after(now, out);
    }

    fn on_broker_message(&mut self, now: Time, from: NodeId, broker: u32, msg: Msg, out: &mut Out) {
        match msg {
            Msg::MetadataFetch { version } => {
                if self.committed_image.version > version {
                    let msg = Msg::MetadataUpdate {
                        image: self.committed_image.clone(),
                    };
                    out.send(from, msg);
                } else if !self.parked_brokers.iter().any(|(b, _)| *b == broker) {
                    let t = out.set_timer(
                        quorum::MAX_FETCH_WAIT,
                        Timer::Controller(ControllerTimer::MetadataFetchExpire { broker }),
                    );
                    self.parked_brokers.push((broker, t));
                }
            }
            Msg::BrokerHeartbeat {
                broker_epoch,
                metadata_version,
                clean_shutdown,
                want_shutdown,
            } => {
                let refuse = |this: &mut Self, error: ErrorCode, out: &mut Out| {
                    let msg = Msg::BrokerHeartbeatResponse {
                        broker_epoch: None,
                        fenced: true,
                        image: None,
                        error: Some(error),
                        shutdown_now: false,
                        controller: None,
                    };
                    this.reply(from, msg, out);
                };
                let epoch = match broker_epoch {
                    // A (re)starting broker registers with a new epoch.
                    None => match self.register(now, broker, clean_shutdown, out) {
                        Ok(epoch) => epoch,
                        Err(error) => return refuse(self, error, out),
                    },
                    Some(e) if e == self.brokers[broker as usize - 1].epoch => e,
                    // A stale epoch: an old incarnation; tell it to register again.
                    Some(_) => return refuse(self, ErrorCode::StaleBrokerEpoch, out),
                };
                let shutdown_now = self.process_heartbeat(now, broker, metadata_version, want_shutdown, out);
                let fenced = self.brokers[broker as usize - 1].fenced;
                if self.quorum.is_some() {
                    let answer = Deferred::Heartbeat {
                        to: from,
                        broker_epoch: epoch,
                        fenced,
                        shutdown_now,
                    };
                    self.deferred.push((self.image.version, answer));
                    return;
                }
                let image = (metadata_version < self.image.version).then(|| self.image.clone());
                out.send(
                    from,
                    Msg::BrokerHeartbeatResponse {
                        broker_epoch: Some(epoch),
                        fenced,
                        image,
                        error: None,
                        shutdown_now,
                        controller: None,
                    },
                );
            }
            Msg::AlterPartitionRequest {
                id,
                partition,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let result = self.alter_partition(broker, partition, leader_epoch, partition_epoch, isr, out);
                self.reply(from, Msg::AlterPartitionResponse { id, partition, result }, out);
            }
            _ => {}
        }
    }

    /// `ReplicationControlManager.processBrokerHeartbeat` and
    /// `BrokerHeartbeatManager.calculateNextBrokerState`: contact, then the broker's next
    /// state. Returns whether a broker in controlled shutdown may stop now.
    fn process_heartbeat(
        &mut self,
        now: Time,
        broker: u32,
        metadata_version: u64,
        want_shutdown: bool,
        out: &mut Out,
    ) -> bool {
        let r = self.reg(broker);
        r.last_contact = now;
        r.metadata_version = metadata_version;
        let r = self.brokers[broker as usize - 1].clone();
        if r.fenced {
            // A fenced broker may stop at once; one that has caught up with the metadata
            // as of its registration is unfenced.
            if want_shutdown {
                return true;
            }
            if metadata_version >= r.registered_at_version {
                self.unfence(broker, out);
            }
            return false;
        }
        if !want_shutdown {
            return false;
        }
        if !r.in_controlled_shutdown {
            if !self.leads_any(broker) {
                self.fence(broker, ElectionReason::ControlledShutdown, out);
                return true;
            }
            self.enter_controlled_shutdown(broker, out);
            return false;
        }
        // Every active broker has seen the change (`lowestActiveOffset`).
        let seen = (1..=self.info.brokers)
            .filter(|&b| b != broker && self.live(b) && !self.brokers[b as usize - 1].in_controlled_shutdown)
            .all(|b| self.brokers[b as usize - 1].metadata_version >= r.controlled_shutdown_version);
        if self.leads_any(broker) || !seen {
            return false;
        }
        self.fence(broker, ElectionReason::ControlledShutdown, out);
        true
    }

    fn leads_any(&self, broker: u32) -> bool {
        self.image.partitions.iter().any(|p| p.leader == Some(broker))
    }

    /// `handleBrokerInControlledShutdown`: the broker is no longer an acceptable leader or
    /// ISR member; it leaves every ISR and its leaderships move, in one step.
    fn enter_controlled_shutdown(&mut self, broker: u32, out: &mut Out) {
        self.reg(broker).in_controlled_shutdown = true;
        self.image.shutting_down[broker as usize - 1] = true;
        self.image.version += 1;
        self.remove_everywhere(broker, false, ElectionReason::ControlledShutdown, out);
        let version = self.image.version;
        self.reg(broker).controlled_shutdown_version = version;
        self.broadcast(out);
    }

    /// `ReplicationControlManager.maybeBalancePartitionLeaders`: every partition not led by
    /// its preferred replica gets a preferred election; the preferred replica wins if it is
    /// in the ISR (or the ELR, when the ISR is empty) and active (KAFKA.md §7.7). Kafka runs
    /// at most 1000 elections a pass and then another pass 10 ms later; kafkasim's
    /// partitions are fewer, so one pass does all.
    fn balance_leaders(&mut self, out: &mut Out) {
        let mut changed = false;
        for p in 0..self.image.partitions.len() as Pidx {
            let state = &self.image.partitions[p as usize];
            if state.leader == Some(self.info.preferred_leader(p)) {
                continue;
            }
            let change = Change {
                target_isr: state.isr.clone(),
                election: Election::Preferred,
                ..Default::default()
            };
            changed |= self.apply(p, change, ElectionReason::Preferred, out);
        }
        if changed {
            self.broadcast(out);
        }
    }

    /// `ClusterControlManager.registerBroker` (4.1): a new incarnation is refused with
    /// DUPLICATE_BROKER_REGISTRATION while the old one's session is valid (its last
    /// heartbeat less than `broker.session.timeout.ms` ago, `BrokerHeartbeatTracker`);
    /// otherwise it gets a new epoch, fenced, and `handleBrokerShutdown` cleans up after the
    /// old one: out of every ISR, and after an unclean shutdown with ELR on, out of every
    /// ELR too. The historical truncation modes model ZooKeeper-era clusters, where a
    /// broker that came back within its session kept its place in the ISR: the window
    /// KIP-101 describes.
    fn register(&mut self, now: Time, broker: u32, clean_shutdown: bool, out: &mut Out) -> Result<u64, ErrorCode> {
        let kraft = self.info.config.truncation == TruncationMode::LeaderEpoch;
        if kraft {
            let r = &self.brokers[broker as usize - 1];
            if now.since(r.last_contact) <= self.info.config.broker_session_timeout {
                let until = r.last_contact + self.info.config.broker_session_timeout;
                self.observe(out, Obs::RegistrationRefused { broker, until });
                return Err(ErrorCode::DuplicateBrokerRegistration);
            }
            if !clean_shutdown && self.info.config.eligible_leader_replicas {
                self.unclean_shutdown(broker, out);
            } else if self.live(broker) {
                self.fence(broker, ElectionReason::Restarted, out);
            }
        }
        let epoch = self.next_broker_epoch;
        self.next_broker_epoch += 1;
        let version = self.image.version;
        let r = self.reg(broker);
        r.epoch = epoch;
        r.registered_at_version = version;
        r.last_contact = now;
        r.in_controlled_shutdown = false;
        self.image.shutting_down[broker as usize - 1] = false;
        self.observe(out, Obs::BrokerRegistered { broker, epoch });
        Ok(epoch)
    }

    /// `ReplicationControlManager.alterPartition`: only the current leader, in the current
    /// leader and partition epochs, may change the ISR; it must keep itself in it, and may
    /// add only unfenced replicas (KIP-903).
    fn alter_partition(
        &mut self,
        broker: u32,
        p: Pidx,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: Vec<u32>,
        out: &mut Out,
    ) -> Result<PartitionState, ErrorCode> {
        let state = &self.image.partitions[p as usize];
        if state.leader != Some(broker) {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if leader_epoch != state.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if partition_epoch != state.partition_epoch {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        let eligible = |b: u32| self.live(b) && !self.brokers[b as usize - 1].in_controlled_shutdown;
        if !isr.contains(&broker) || isr.iter().any(|b| !state.isr.contains(b) && !eligible(*b)) {
            return Err(ErrorCode::IneligibleReplica);
        }
        let reason = if isr.len() < state.isr.len() {
            ElectionReason::IsrShrink
        } else {
            ElectionReason::IsrExpand
        };
        let change = Change {
            target_isr: isr,
            ..Default::default()
        };
        self.apply(p, change, reason, out);
        let next = self.image.partitions[p as usize].clone();
        self.broadcast(out);
        Ok(next)
    }

    fn fence(&mut self, broker: u32, reason: ElectionReason, out: &mut Out) {
        self.reg(broker).fenced = true;
        self.image.fenced[broker as usize - 1] = true;
        self.image.version += 1;
        self.observe(out, Obs::BrokerFenced { broker, reason });
        // `ReplicationControlManager.handleBrokerFenced`: out of every ISR, and never a
        // leader; it stays in the ELRs it is in.
        self.remove_everywhere(broker, false, reason, out);
        self.broadcast(out);
    }

    /// A new registration after an unclean shutdown with ELR on
    /// (`handleBrokerUncleanShutdown`): out of every ISR and ELR, in one change per
    /// partition; the new registration is fenced.
    fn unclean_shutdown(&mut self, broker: u32, out: &mut Out) {
        let fencing = self.live(broker);
        if fencing {
            self.reg(broker).fenced = true;
            self.image.fenced[broker as usize - 1] = true;
            self.image.version += 1;
            self.observe(
                out,
                Obs::BrokerFenced {
                    broker,
                    reason: ElectionReason::UncleanShutdown,
                },
            );
        }
        if self.remove_everywhere(broker, true, ElectionReason::UncleanShutdown, out) || fencing {
            self.broadcast(out);
        }
    }

    /// `generateLeaderAndIsrUpdates` with `brokerToRemove` (or, `unclean`, with
    /// `brokerWithUncleanShutdown`, which leaves the ELRs too): every partition whose ISR
    /// (or ELR) holds the broker, or that it leads, changes.
    /// Returns whether any partition changed.
    fn remove_everywhere(&mut self, broker: u32, unclean: bool, reason: ElectionReason, out: &mut Out) -> bool {
        let mut changed = false;
        for p in 0..self.image.partitions.len() as Pidx {
            let state = &self.image.partitions[p as usize];
            let touched =
                state.isr.contains(&broker) || state.leader == Some(broker) || (unclean && state.elr.contains(&broker));
            if !touched {
                continue;
            }
            let target_isr: Vec<u32> = state.isr.iter().copied().filter(|b| *b != broker).collect();
            let change = Change {
                target_isr,
                election: Election::Any,
                excluded: Some(broker),
                unclean_shutdown: unclean.then_some(broker),
                added: None,
            };
            changed |= self.apply(p, change, reason, out);
        }
        changed
    }

    fn unfence(&mut self, broker: u32, out: &mut Out) {
        self.reg(broker).fenced = false;
        self.image.fenced[broker as usize - 1] = false;
        self.image.version += 1;
        self.observe(out, Obs::BrokerUnfenced { broker });
        // `handleBrokerUnfenced`: elections only for the partitions without a leader.
        for p in 0..self.image.partitions.len() as Pidx {
            let state = &self.image.partitions[p as usize];
            if state.leader.is_some() || !self.info.partitions[p as usize].replicas.contains(&broker) {
                continue;
            }
            let change = Change {
                target_isr: state.isr.clone(),
                added: Some(broker),
                ..Default::default()
            };
            self.apply(p, change, ElectionReason::BrokerReturned, out);
        }
        self.broadcast(out);
    }

    /// Whether `b` may lead: unfenced and not in controlled shutdown
    /// (`ClusterControlManager.isActive`), `excluded` never, `added` even while fenced.
    fn acceptable(&self, b: u32, change: &Change) -> bool {
        if change.excluded == Some(b) || change.unclean_shutdown == Some(b) {
            return false;
        }
        change.added == Some(b) || (self.live(b) && !self.brokers[b as usize - 1].in_controlled_shutdown)
    }

    /// `PartitionChangeBuilder.build`: the ELR follows the target ISR
    /// (`maybePopulateTargetElr`), a leader is elected if the current one is no longer
    /// valid (`electAnyLeader`, `electPreferredLeader`), and the last known leader is kept
    /// while the ISR is empty (`maybeUpdateLastKnownLeader`). Publishes the change, if
    /// there is one, and returns whether there was.
    fn apply(&mut self, p: Pidx, change: Change, reason: ElectionReason, out: &mut Out) -> bool {
        let state = &self.image.partitions[p as usize];
        let topic = self.info.topic_of(p);
        let elr_on = self.info.config.eligible_leader_replicas;
        let min_isr = topic.min_insync_replicas.min(topic.replication_factor) as usize;
        let replicas = &self.info.partitions[p as usize].replicas;
        let mut target_isr = change.target_isr.clone();
        let mut target_elr = state.elr.clone();
        if elr_on {
            if target_isr.len() >= min_isr {
                target_elr.clear();
            } else {
                // (ELR ∪ ISR) − target ISR − unclean shutdowns, in replica order.
                target_elr = replicas
                    .iter()
                    .copied()
                    .filter(|b| (state.elr.contains(b) || state.isr.contains(b)) && !target_isr.contains(b))
                    .filter(|b| change.unclean_shutdown != Some(*b))
                    .collect();
            }
        }
        let valid = |b: u32, isr: &[u32], elr: &[u32]| {
            (isr.contains(&b) || (isr.is_empty() && elr.contains(&b))) && self.acceptable(b, &change)
        };
        // (leader, unclean)
        let elected: (Option<u32>, bool) = match change.election {
            Election::Preferred => {
                let preferred = replicas[0];
                if valid(preferred, &target_isr, &target_elr) {
                    (Some(preferred), false)
                } else {
                    self.elect_any(p, state, &target_isr, &target_elr, &change, valid)
                }
            }
            Election::Any => self.elect_any(p, state, &target_isr, &target_elr, &change, valid),
        };
        let mut next = state.clone();
        let mut why = reason;
        let mut unclean_isr = None;
        if elected.0 != state.leader {
            if let Some(b) = elected.0
                && target_elr.contains(&b)
            {
                target_isr = vec![b];
                target_elr.retain(|r| *r != b);
                why = ElectionReason::EligibleLeader;
            }
            if elected.1 {
                unclean_isr = elected.0.map(|b| vec![b]);
                why = ElectionReason::Unclean;
            }
            next.leader = elected.0;
            next.leader_epoch += 1;
        }
        // `maybeUpdateRecordElr`: an unclean election, or ELR off, clears it.
        if unclean_isr.is_some() || !elr_on {
            target_elr.clear();
        }
        next.elr = target_elr;
        match unclean_isr {
            Some(isr) => next.isr = isr,
            // Without ELR the ISR is never emptied: the last member stays (KAFKA.md §1.6).
            None if !target_isr.is_empty() || elr_on => next.isr = target_isr,
            None => {}
        }
        if !elr_on {
            next.last_known_leader = None;
        } else if next.isr.is_empty() && next.isr != state.isr && state.leader.is_some() {
            // The partition has just become leaderless: remember who led it last.
            next.last_known_leader = state.leader;
        } else if next.leader.is_some() {
            next.last_known_leader = None;
        }
        if next == *state {
            return false;
        }
        next.partition_epoch += 1;
        self.publish(p, next, why, out);
        true
    }

    /// `electAnyLeader`: the current leader if still valid, else the first valid replica
    /// in assignment order (an ISR member, or an ELR member when the ISR is empty), else
    /// the last known leader (4.1: only if it may lead, KAFKA-19522), else, where the topic
    /// allows it, the first acceptable replica, uncleanly.
    fn elect_any(
        &self,
        p: Pidx,
        state: &PartitionState,
        isr: &[u32],
        elr: &[u32],
        change: &Change,
        valid: impl Fn(u32, &[u32], &[u32]) -> bool,
    ) -> (Option<u32>, bool) {
        if let Some(l) = state.leader
            && valid(l, isr, elr)
        {
            return (Some(l), false);
        }
        let replicas = &self.info.partitions[p as usize].replicas;
        if let Some(b) = replicas.iter().copied().find(|b| valid(*b, isr, elr)) {
            return (Some(b), false);
        }
        if self.info.config.eligible_leader_replicas
            && isr.is_empty()
            && elr.is_empty()
            && let Some(l) = state.last_known_leader
            && self.acceptable(l, change)
        {
            return (Some(l), true);
        }
        if self.info.topic_of(p).unclean_leader_election
            && let Some(b) = replicas.iter().copied().find(|b| self.acceptable(*b, change))
        {
            return (Some(b), true);
        }
        (None, false)
    }

    /// Records a partition change; `broadcast` sends it.
    fn publish(&mut self, p: Pidx, next: PartitionState, reason: ElectionReason, out: &mut Out) {
        self.image.version += 1;
        self.image.partitions[p as usize] = next.clone();
        self.observe(
            out,
            Obs::PartitionChanged {
                partition: p,
                state: next,
                reason,
            },
        );
    }

    /// An observation of the controller's own decisions: at once for a lone controller,
    /// once committed for a quorum's.
    fn observe(&mut self, out: &mut Out, obs: Obs) {
        if self.quorum.is_some() {
            self.deferred.push((self.image.version, Deferred::Observe(obs)));
        } else {
            out.observe(obs);
        }
    }

    /// An answer to a broker: at once for a lone controller, once the change it follows is
    /// committed for a quorum's active controller.
    fn reply(&mut self, to: NodeId, msg: Msg, out: &mut Out) {
        if self.quorum.is_some() {
            self.deferred.push((self.image.version, Deferred::Send(to, msg)));
        } else {
            out.send(to, msg);
        }
    }

    /// The end of every handler: with a quorum, the leader snapshots a changed image,
    /// answers the fetches it parked (its log grew), and releases what is committed.
    fn after(&mut self, now: Time, out: &mut Out) {
        let Some(q) = &self.quorum else { return };
        if !q.is_leader() {
            return;
        }
        if std::mem::take(&mut self.dirty) && self.uncommitted.last().is_none_or(|i| i.version < self.image.version) {
            self.uncommitted.push(self.image.clone());
        }
        let grown = self
            .uncommitted
            .last()
            .is_some_and(|i| i.version > self.committed_image.version);
        if grown {
            for (voter, timer) in std::mem::take(&mut self.parked) {
                out.cancel_timer(timer);
                self.answer_fetch(voter, true, out);
            }
        }
        self.advance_commit(now, out);
    }

    /// The leader's commit: the version a majority holds in its epoch. What it covers is
    /// sent: the newest committed image to every broker, and the held answers.
    fn advance_commit(&mut self, _now: Time, out: &mut Out) {
        let Some(q) = &mut self.quorum else { return };
        let committed = q.majority_version(self.image.version).max(q.committed);
        q.committed = committed;
        let mut newest = None;
        while self.uncommitted.first().is_some_and(|i| i.version <= committed) {
            newest = Some(self.uncommitted.remove(0));
        }
        if let Some(image) = newest {
            // The brokers' parked metadata fetches get the newly committed image.
            self.committed_image = image;
            for (b, t) in std::mem::take(&mut self.parked_brokers) {
                out.cancel_timer(t);
                let msg = Msg::MetadataUpdate {
                    image: self.committed_image.clone(),
                };
                out.send(self.info.broker_node(b), msg);
            }
        }
        let ready = self.deferred.iter().take_while(|(v, _)| *v <= committed).count();
        for (_, d) in self.deferred.drain(..ready) {
            match d {
                Deferred::Send(to, msg) => out.send(to, msg),
                Deferred::Observe(obs) => out.observe(obs),
                Deferred::Heartbeat {
                    to,
                    broker_epoch,
                    fenced,
                    shutdown_now,
                } => {
                    let msg = Msg::BrokerHeartbeatResponse {
                        broker_epoch: Some(broker_epoch),
                        fenced,
                        image: None,
                        error: None,
                        shutdown_now,
                        controller: None,
                    };
                    out.send(to, msg);
                }
            }
        }
    }

    /// Raft among the voters.
    fn on_quorum_message(&mut self, now: Time, voter: u32, msg: Msg, out: &mut Out) {
        let version = self.image.version;
        let Some(q) = &mut self.quorum else { return };
        match msg {
            Msg::QuorumFetch {
                epoch,
                version: fetched,
                last_epoch,
            } => {
                if epoch > q.epoch {
                    let was_leader = q.is_leader();
                    q.adopt(epoch, None);
                    if was_leader {
                        self.resign(now, None, "higher-epoch", out);
                    }
                    self.follow(now, out);
                    return;
                }
                if !q.is_leader() {
                    // Not the leader: it names the one it knows, never itself.
                    let msg = Msg::QuorumFetchResponse {
                        epoch: q.epoch,
                        leader: q.leader.filter(|&l| l != q.id),
                        snapshot: None,
                        committed: 0,
                    };
                    out.send(self.voter_node(voter), msg);
                    return;
                }
                let p = &mut q.progress[voter as usize - 1];
                p.last_fetch = Some(now);
                if epoch == q.epoch {
                    p.version = fetched;
                    p.epoch = last_epoch;
                }
                let behind = (last_epoch, fetched) != (q.log_epoch, version) || epoch < q.epoch;
                if behind {
                    self.answer_fetch(voter, true, out);
                } else if !self.parked.iter().any(|(v, _)| *v == voter) {
                    // Up to date: the fetch waits for the log to grow, at most 500 ms.
                    let t = out.set_timer(
                        quorum::MAX_FETCH_WAIT,
                        Timer::Controller(ControllerTimer::FetchExpire { voter }),
                    );
                    self.parked.push((voter, t));
                }
            }
            Msg::QuorumFetchResponse {
                epoch,
                leader,
                snapshot,
                committed,
            } => {
                if epoch > q.epoch || (epoch == q.epoch && leader.is_some() && q.leader != leader) {
                    q.adopt(epoch, leader);
                }
                if epoch < q.epoch || q.is_leader() {
                    return;
                }
                if leader == Some(voter) {
                    q.leader = leader;
                    q.state = QState::Follower;
                    q.last_leader_contact = Some(now);
                    q.committed = q.committed.max(committed);
                    if let Some(s) = snapshot {
                        q.log_epoch = s.log_epoch;
                        self.image = s.image;
                        self.brokers = s.brokers;
                        self.next_broker_epoch = s.next_broker_epoch;
                    }
                    if self.quorum.as_ref().is_some_and(|q| q.committed >= self.image.version) {
                        self.committed_image = self.image.clone();
                    }
                    // The leader answers: any election of this voter is over.
                    if let Some(t) = self.election_timer.take() {
                        out.cancel_timer(t);
                    }
                    self.reset_fetch_timeout(out);
                    self.send_fetch(out);
                } else {
                    // Not the leader: try the one it names, or wait for the timeout.
                    self.schedule_fetch(quorum::MAX_FETCH_WAIT, out);
                }
            }
            Msg::Vote {
                epoch,
                pre,
                last_epoch,
                version: candidate_version,
            } => {
                let granted = if pre {
                    q.grants_pre_vote(now, epoch, last_epoch, candidate_version, version)
                } else {
                    if epoch > q.epoch {
                        let was_leader = q.is_leader();
                        q.adopt(epoch, None);
                        if was_leader {
                            self.resign(now, None, "higher-epoch", out);
                        }
                    }
                    let q = self.quorum.as_mut().expect("a quorum");
                    let ok = epoch == q.epoch
                        && q.voted_for.is_none_or(|v| v == voter)
                        && q.log_ok(last_epoch, candidate_version, version);
                    if ok {
                        q.voted_for = Some(voter);
                        q.state = QState::Follower;
                        if let Some(t) = self.election_timer.take() {
                            out.cancel_timer(t);
                        }
                        self.reset_fetch_timeout(out);
                    }
                    ok
                };
                let q = self.quorum.as_ref().expect("a quorum");
                let msg = Msg::VoteResponse {
                    epoch: if pre { epoch } else { q.epoch },
                    pre,
                    granted,
                };
                out.send(self.voter_node(voter), msg);
            }
            Msg::VoteResponse { epoch, pre, granted } => {
                if !pre && epoch > q.epoch {
                    q.adopt(epoch, None);
                    self.follow(now, out);
                    return;
                }
                let majority = q.majority();
                let won = match &mut q.state {
                    QState::Prospective { granted: g } if pre && granted && epoch == q.epoch => {
                        if !g.contains(&voter) {
                            g.push(voter);
                        }
                        g.len() >= majority
                    }
                    QState::Candidate { granted: g } if !pre && granted && epoch == q.epoch => {
                        if !g.contains(&voter) {
                            g.push(voter);
                        }
                        g.len() >= majority
                    }
                    _ => false,
                };
                if won {
                    match q.state {
                        QState::Prospective { .. } => self.start_candidate(now, out),
                        _ => self.activate(now, out),
                    }
                }
            }
            Msg::BeginQuorumEpoch { epoch } if epoch >= q.epoch => {
                let was_leader = q.is_leader() && epoch > q.epoch;
                q.adopt(epoch, Some(voter));
                q.last_leader_contact = Some(now);
                if was_leader {
                    self.resign(now, Some(voter), "higher-epoch", out);
                }
                self.follow(now, out);
            }
            _ => {}
        }
    }

    /// Answers a voter's fetch: the whole state when its log differs from the leader's.
    fn answer_fetch(&mut self, voter: u32, with_state: bool, out: &mut Out) {
        let q = self.quorum.as_ref().expect("a quorum");
        let snapshot = with_state.then(|| {
            Box::new(Snapshot {
                image: self.image.clone(),
                brokers: self.brokers.clone(),
                next_broker_epoch: self.next_broker_epoch,
                log_epoch: q.log_epoch,
            })
        });
        let msg = Msg::QuorumFetchResponse {
            epoch: q.epoch,
            leader: Some(q.id),
            snapshot,
            committed: q.committed,
        };
        out.send(self.voter_node(voter), msg);
    }

    /// Follows the leader it knows (or waits to learn of one): fetches, and watches the
    /// fetch timeout.
    fn follow(&mut self, _now: Time, out: &mut Out) {
        if let Some(t) = self.election_timer.take() {
            out.cancel_timer(t);
        }
        self.reset_fetch_timeout(out);
        self.send_fetch(out);
    }

    fn reset_fetch_timeout(&mut self, out: &mut Out) {
        if let Some(t) = self.fetch_timeout.take() {
            out.cancel_timer(t);
        }
        let t = out.set_timer(quorum::FETCH_TIMEOUT, Timer::Controller(ControllerTimer::FetchTimeout));
        self.fetch_timeout = Some(t);
    }

    fn schedule_fetch(&mut self, after: Duration, out: &mut Out) {
        if self.fetch_timer.is_none() {
            let t = out.set_timer(after, Timer::Controller(ControllerTimer::QuorumFetch));
            self.fetch_timer = Some(t);
        }
    }

    /// A follower fetches from its leader; knowing none, it asks another voter in turn.
    fn send_fetch(&mut self, out: &mut Out) {
        let version = self.image.version;
        let Some(q) = &mut self.quorum else { return };
        if q.is_leader() || matches!(q.state, QState::Candidate { .. }) {
            return;
        }
        if let Some(t) = self.fetch_timer.take() {
            out.cancel_timer(t);
        }
        let to = match q.leader {
            Some(l) if l != q.id => l,
            _ => {
                // `maybeSendAnyVoterFetch`: any other voter, which names the leader.
                let k = q.rng.random_range(1..q.voters);
                (q.id + k - 1) % q.voters + 1
            }
        };
        let msg = Msg::QuorumFetch {
            epoch: q.epoch,
            version,
            last_epoch: q.log_epoch,
        };
        out.send(self.info.controller_node_of(to), msg);
        // Unanswered (the leader is gone or cut off), the next one goes out anyway.
        let t = out.set_timer(
            quorum::MAX_FETCH_WAIT + quorum::MAX_FETCH_WAIT,
            Timer::Controller(ControllerTimer::QuorumFetch),
        );
        self.fetch_timer = Some(t);
    }

    /// KIP-996: a voter whose leader went quiet asks for pre-votes, in its current epoch.
    fn start_prospective(&mut self, _now: Time, out: &mut Out) {
        let Some(q) = &mut self.quorum else { return };
        if q.is_leader() {
            return;
        }
        q.state = QState::Prospective { granted: vec![q.id] };
        self.request_votes(true, out);
        // Keep fetching meanwhile: a live leader's answer ends the election.
        self.send_fetch(out);
    }

    /// A majority pre-voted: a new epoch, a vote for itself, and Vote requests.
    fn start_candidate(&mut self, _now: Time, out: &mut Out) {
        let q = self.quorum.as_mut().expect("a quorum");
        q.epoch += 1;
        q.voted_for = Some(q.id);
        q.leader = None;
        q.state = QState::Candidate { granted: vec![q.id] };
        self.request_votes(false, out);
    }

    /// Asks every other voter for a (pre-)vote and arms a fresh random election timeout.
    fn request_votes(&mut self, pre: bool, out: &mut Out) {
        let version = self.image.version;
        let q = self.quorum.as_mut().expect("a quorum");
        let (epoch, last_epoch, id, voters) = (q.epoch, q.log_epoch, q.id, q.voters);
        let timeout = q.election_timeout();
        for v in (1..=voters).filter(|&v| v != id) {
            let msg = Msg::Vote {
                epoch,
                pre,
                last_epoch,
                version,
            };
            out.send(self.voter_node(v), msg);
        }
        if let Some(t) = self.election_timer.take() {
            out.cancel_timer(t);
        }
        self.election_timer = Some(out.set_timer(timeout, Timer::Controller(ControllerTimer::Election)));
    }

    /// Won the election: the new active controller (`QuorumController.claim`). It writes
    /// its epoch's first entry, starts every broker's session afresh (4.1: the unfenced
    /// ones, KAFKA-19130), restarts its periodic tasks, and tells the other voters.
    fn activate(&mut self, now: Time, out: &mut Out) {
        let q = self.quorum.as_mut().expect("a quorum");
        q.state = QState::Leader;
        q.leader = Some(q.id);
        q.log_epoch = q.epoch;
        let (epoch, id, voters) = (q.epoch, q.id, q.voters);
        for t in [
            self.election_timer.take(),
            self.fetch_timeout.take(),
            self.fetch_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            out.cancel_timer(t);
        }
        self.image.version += 1;
        for r in &mut self.brokers {
            if !r.fenced {
                r.last_contact = now;
            }
            r.metadata_version = 0;
        }
        self.leader_progress_reset(now);
        self.uncommitted = vec![self.image.clone()];
        self.start_tasks(out);
        for v in (1..=voters).filter(|&v| v != id) {
            out.send(self.voter_node(v), Msg::BeginQuorumEpoch { epoch });
        }
        out.observe(Obs::ControllerActivated { controller: id, epoch });
    }

    fn leader_progress_reset(&mut self, now: Time) {
        let q = self.quorum.as_mut().expect("a quorum");
        for p in &mut q.progress {
            *p = quorum::Progress {
                last_fetch: Some(now),
                ..Default::default()
            };
        }
    }

    /// Stops acting as the active controller: its tasks stop, and what it held back for
    /// commit is dropped (the brokers time out and ask the new one).
    fn resign(&mut self, now: Time, leader: Option<u32>, why: &'static str, out: &mut Out) {
        let (controller, epoch) = (self.id(), self.epoch());
        out.observe(Obs::ControllerResigned { controller, epoch, why });
        self.stop_tasks(out);
        for (_, t) in std::mem::take(&mut self.parked)
            .into_iter()
            .chain(std::mem::take(&mut self.parked_brokers))
        {
            out.cancel_timer(t);
        }
        self.deferred.clear();
        self.uncommitted.clear();
        let q = self.quorum.as_mut().expect("a quorum");
        q.state = QState::Follower;
        q.leader = leader;
        self.follow(now, out);
    }

    /// Sends the current image to every broker; with a quorum, once it is committed.
    fn broadcast(&mut self, out: &mut Out) {
        if self.quorum.is_some() {
            self.dirty = true;
            return;
        }
        for b in 1..=self.info.brokers {
            out.send(
                self.info.broker_node(b),
                Msg::MetadataUpdate {
                    image: self.image.clone(),
                },
            );
        }
    }
}
