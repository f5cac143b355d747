//! The KRaft controller, as one node that never fails (a documented simplification): it
//! registers brokers, fences those whose heartbeats stop for `broker.session.timeout.ms`,
//! elects leaders (the first live ISR member in replica order; unclean election only where
//! enabled), applies the leaders' AlterPartition requests, and publishes every change to
//! the brokers. KAFKA.md §1.5–1.6.

use crate::kafka::protocol::{ErrorCode, Msg};
use crate::kafka::{
    ClusterInfo, ElectionReason, MetadataImage, Obs, Out, PartitionState, Pidx, Role, Timer, TruncationMode,
};
use crate::sim::{Duration, NodeId, Time};
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerTimer {
    /// Look for brokers whose session expired.
    SessionCheck,
    /// `electPreferred`, every `leader.imbalance.check.interval.seconds`.
    ElectPreferred,
}

/// How often the controller looks for expired sessions.
const SESSION_CHECK: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
struct Registration {
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

    pub fn new(info: Arc<ClusterInfo>) -> Controller {
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
        Controller {
            next_broker_epoch: u64::from(info.brokers) + 1,
            info,
            image,
            brokers,
        }
    }

    fn reg(&mut self, broker: u32) -> &mut Registration {
        &mut self.brokers[broker as usize - 1]
    }

    fn live(&self, broker: u32) -> bool {
        !self.brokers[broker as usize - 1].fenced
    }

    /// The controller becomes active at time zero: its periodic tasks start
    /// (`PeriodicTaskControlManager.activate`).
    pub fn start(&mut self, out: &mut Out) {
        out.set_timer(SESSION_CHECK, Timer::Controller(ControllerTimer::SessionCheck));
        if let Some(every) = self.info.config.leader_imbalance_check_interval {
            out.set_timer(every, Timer::Controller(ControllerTimer::ElectPreferred));
        }
    }

    pub fn on_timer(&mut self, now: Time, timer: ControllerTimer, out: &mut Out) {
        match timer {
            ControllerTimer::SessionCheck => {
                let timeout = self.info.config.broker_session_timeout;
                for b in 1..=self.info.brokers {
                    let r = &self.brokers[b as usize - 1];
                    if !r.fenced && now.since(r.last_contact) > timeout {
                        self.fence(b, ElectionReason::SessionExpired, out);
                    }
                }
                out.set_timer(SESSION_CHECK, Timer::Controller(timer));
            }
            ControllerTimer::ElectPreferred => {
                self.balance_leaders(out);
                if let Some(every) = self.info.config.leader_imbalance_check_interval {
                    out.set_timer(every, Timer::Controller(timer));
                }
            }
        }
    }

    pub fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        let Some(broker) = self.info.broker_of(from) else {
            return;
        };
        match msg {
            Msg::BrokerHeartbeat {
                broker_epoch,
                metadata_version,
                clean_shutdown,
                want_shutdown,
            } => {
                let refuse = |error: ErrorCode, out: &mut Out| {
                    let msg = Msg::BrokerHeartbeatResponse {
                        broker_epoch: None,
                        fenced: true,
                        image: None,
                        error: Some(error),
                        shutdown_now: false,
                    };
                    out.send(from, msg);
                };
                let epoch = match broker_epoch {
                    // A (re)starting broker registers with a new epoch.
                    None => match self.register(now, broker, clean_shutdown, out) {
                        Ok(epoch) => epoch,
                        Err(error) => return refuse(error, out),
                    },
                    Some(e) if e == self.brokers[broker as usize - 1].epoch => e,
                    // A stale epoch: an old incarnation; tell it to register again.
                    Some(_) => return refuse(ErrorCode::StaleBrokerEpoch, out),
                };
                let shutdown_now = self.process_heartbeat(now, broker, metadata_version, want_shutdown, out);
                let fenced = self.brokers[broker as usize - 1].fenced;
                let image = (metadata_version < self.image.version).then(|| self.image.clone());
                out.send(
                    from,
                    Msg::BrokerHeartbeatResponse {
                        broker_epoch: Some(epoch),
                        fenced,
                        image,
                        error: None,
                        shutdown_now,
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
                out.send(from, Msg::AlterPartitionResponse { id, partition, result });
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
                out.observe(Obs::RegistrationRefused { broker, until });
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
        out.observe(Obs::BrokerRegistered { broker, epoch });
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
        out.observe(Obs::BrokerFenced { broker, reason });
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
            out.observe(Obs::BrokerFenced {
                broker,
                reason: ElectionReason::UncleanShutdown,
            });
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
        out.observe(Obs::BrokerUnfenced { broker });
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
        out.observe(Obs::PartitionChanged {
            partition: p,
            state: next,
            reason,
        });
    }

    /// Sends the current image to every broker.
    fn broadcast(&mut self, out: &mut Out) {
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
