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
    last_contact: Time,
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

    pub fn start(&mut self, out: &mut Out) {
        out.set_timer(SESSION_CHECK, Timer::Controller(ControllerTimer::SessionCheck));
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
            } => {
                let epoch = match broker_epoch {
                    // A (re)starting broker registers with a new epoch. In KRaft a
                    // registration that replaces a live one fences the old one first (its
                    // process is gone). The historical truncation modes model ZooKeeper-era
                    // clusters, where a broker that came back within its session kept its
                    // place in the ISR: the window KIP-101 describes.
                    None => {
                        if self.live(broker) && self.info.config.truncation == TruncationMode::LeaderEpoch {
                            self.fence(broker, ElectionReason::Restarted, out);
                        }
                        let epoch = self.next_broker_epoch;
                        self.next_broker_epoch += 1;
                        let version = self.image.version;
                        let r = self.reg(broker);
                        r.epoch = epoch;
                        r.registered_at_version = version;
                        r.last_contact = now;
                        out.observe(Obs::BrokerRegistered { broker, epoch });
                        epoch
                    }
                    Some(e) if e == self.brokers[broker as usize - 1].epoch => {
                        self.reg(broker).last_contact = now;
                        // A fenced broker that has caught up with the metadata as of its
                        // registration is unfenced.
                        let r = &self.brokers[broker as usize - 1];
                        if r.fenced && metadata_version >= r.registered_at_version {
                            self.unfence(broker, out);
                        }
                        e
                    }
                    // A stale epoch: an old incarnation; tell it to register again.
                    Some(_) => {
                        out.send(
                            from,
                            Msg::BrokerHeartbeatResponse {
                                broker_epoch: None,
                                fenced: true,
                                image: None,
                            },
                        );
                        return;
                    }
                };
                let fenced = self.brokers[broker as usize - 1].fenced;
                let image = (metadata_version < self.image.version).then(|| self.image.clone());
                out.send(
                    from,
                    Msg::BrokerHeartbeatResponse {
                        broker_epoch: Some(epoch),
                        fenced,
                        image,
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
        if !isr.contains(&broker) || isr.iter().any(|b| !state.isr.contains(b) && !self.live(*b)) {
            return Err(ErrorCode::IneligibleReplica);
        }
        let reason = if isr.len() < state.isr.len() {
            ElectionReason::IsrShrink
        } else {
            ElectionReason::IsrExpand
        };
        let mut next = state.clone();
        next.isr = isr;
        next.partition_epoch += 1;
        self.publish(p, next.clone(), reason, out);
        self.broadcast(out);
        Ok(next)
    }

    fn fence(&mut self, broker: u32, reason: ElectionReason, out: &mut Out) {
        self.reg(broker).fenced = true;
        self.image.fenced[broker as usize - 1] = true;
        self.image.version += 1;
        out.observe(Obs::BrokerFenced { broker, reason });
        for p in 0..self.image.partitions.len() as Pidx {
            let state = &self.image.partitions[p as usize];
            if !state.isr.contains(&broker) && state.leader != Some(broker) {
                continue;
            }
            let mut next = state.clone();
            // The ISR is never emptied: the last member stays (KAFKA.md §1.6).
            if next.isr.len() > 1 {
                next.isr.retain(|b| *b != broker);
            }
            let mut why = reason;
            if next.leader == Some(broker) {
                // Losing the leader is a leader change even when nobody can take over.
                next.leader = None;
                next.leader_epoch += 1;
                if self.elect(p, &mut next) == Some(true) {
                    why = ElectionReason::Unclean;
                }
            }
            next.partition_epoch += 1;
            self.publish(p, next, why, out);
        }
        self.broadcast(out);
    }

    fn unfence(&mut self, broker: u32, out: &mut Out) {
        self.reg(broker).fenced = false;
        self.image.fenced[broker as usize - 1] = false;
        self.image.version += 1;
        out.observe(Obs::BrokerUnfenced { broker });
        for p in 0..self.image.partitions.len() as Pidx {
            let state = &self.image.partitions[p as usize];
            if state.leader.is_some() || !self.info.partitions[p as usize].replicas.contains(&broker) {
                continue;
            }
            let mut next = state.clone();
            if let Some(unclean) = self.elect(p, &mut next) {
                next.leader_epoch += 1;
                next.partition_epoch += 1;
                let why = if unclean {
                    ElectionReason::Unclean
                } else {
                    ElectionReason::BrokerReturned
                };
                self.publish(p, next, why, out);
            }
        }
        self.broadcast(out);
    }

    /// Picks a leader for a partition that has none (`PartitionChangeBuilder.electAnyLeader`):
    /// the first replica in assignment order that is in the ISR and unfenced; failing that,
    /// with unclean election enabled, the first unfenced replica, whose ISR becomes itself.
    /// Returns whether it was unclean, or `None` when nobody can lead. The caller bumps
    /// the leader epoch.
    fn elect(&self, p: Pidx, next: &mut PartitionState) -> Option<bool> {
        let replicas = &self.info.partitions[p as usize].replicas;
        if let Some(b) = replicas.iter().copied().find(|b| next.isr.contains(b) && self.live(*b)) {
            next.leader = Some(b);
            return Some(false);
        }
        if !self.info.topic_of(p).unclean_leader_election {
            return None;
        }
        let b = replicas.iter().copied().find(|b| self.live(*b))?;
        next.leader = Some(b);
        next.isr = vec![b];
        Some(true)
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
