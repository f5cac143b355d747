//! The Kafka model: every role a sans-IO state machine driven by the engine through the
//! closed [`Node`] enum. Time arrives as `now`, randomness from an RNG handed in, and
//! effects leave through the outbox.
//!
//! Architecture invariant: nothing in `kafka/` reads the clock, the OS, threads or global
//! state.

pub mod assignor;
pub mod broker;
pub mod config;
pub mod consumer;
pub mod controller;
pub mod epoch;
pub mod group;
pub mod log;
pub mod partitioner;
pub mod placement;
pub mod producer;
pub mod producer_state;
pub mod protocol;
pub mod quorum;

use crate::kafka::broker::{Broker, BrokerTimer};
use crate::kafka::consumer::{Member, MemberTimer};
use crate::kafka::controller::{Controller, ControllerTimer};
use crate::kafka::log::RecordRange;
use crate::kafka::producer::{KeyInfo, ProducerConfig, ProducerNode, ProducerTimer};
use crate::kafka::protocol::{ErrorCode, Msg};
use crate::sim::{Actor, CrashKind, Duration, Input, NodeId, Outbox, Time, rng};
use config::{BrokerConfig, Cluster, OffsetReset, broker_name};
use serde::Serialize;
use std::sync::Arc;

/// A partition in the flat numbering over every topic of the scenario, in topic order.
pub type Pidx = u32;

pub type Out = Outbox<Msg, Timer, Obs>;

/// Which follower truncation protocol the cluster runs (`cluster.truncation`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TruncationMode {
    /// Today's Kafka (2.8+): the follower sends its last fetched epoch, the leader answers
    /// with a DivergingEpoch (KIP-101, KIP-279, KIP-320).
    LeaderEpoch,
    /// Kafka 0.11 to 1.x: OffsetsForLeaderEpoch once, without the KIP-279 loop.
    Kip101,
    /// Kafka before 0.11: truncate to the local high watermark on becoming follower.
    HighWatermark,
}

/// A partition's state as the controller decides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionState {
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub isr: Vec<u32>,
    /// Bumped by every change (the ZooKeeper-era `zkVersion`).
    pub partition_epoch: u32,
    /// Eligible leader replicas (KIP-966): out of the ISR while it was below
    /// `min.insync.replicas`, so they hold every committed record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elr: Vec<u32>,
    /// While the ISR is empty, the partition's last leader (`LastKnownElr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_known_leader: Option<u32>,
}

/// The cluster metadata the controller publishes: every partition's state, versioned.
#[derive(Clone, Debug)]
pub struct MetadataImage {
    pub version: u64,
    pub partitions: Vec<PartitionState>,
    /// Per broker (index = id - 1): fenced by the controller.
    pub fenced: Vec<bool>,
    /// Per broker: in controlled shutdown (neither a leader nor an ISR member to be).
    pub shutting_down: Vec<bool>,
}

/// In the trace an image is its version: the changes it carries are traced as the
/// controller's observations, and a whole image per message would swamp the file.
impl Serialize for MetadataImage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("MetadataImage", 1)?;
        st.serialize_field("version", &self.version)?;
        st.end()
    }
}

impl MetadataImage {
    /// `Partition.isReplicaIsrEligible` is false: the broker is fenced or in controlled
    /// shutdown (KIP-903).
    pub fn ineligible(&self, broker: u32) -> bool {
        self.fenced[broker as usize - 1] || self.shutting_down[broker as usize - 1]
    }

    /// At time zero: every partition led by its first replica, in epoch 0, with every
    /// replica in sync.
    pub fn initial(info: &ClusterInfo) -> MetadataImage {
        let partitions = info
            .partitions
            .iter()
            .map(|p| PartitionState {
                leader: p.replicas.first().copied(),
                leader_epoch: 0,
                isr: p.replicas.clone(),
                partition_epoch: 0,
                elr: Vec::new(),
                last_known_leader: None,
            })
            .collect();
        MetadataImage {
            version: 1,
            partitions,
            fenced: vec![false; info.brokers as usize],
            shutting_down: vec![false; info.brokers as usize],
        }
    }
}

/// A part a broker plays, which a fault may name instead of a node: resolved by the
/// controller's metadata when the fault fires. (`controller`, the active controller, is
/// the controller's own name while there is one controller.)
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `leader(orders-0)`: the broker that leads the partition.
    Leader(Pidx),
    /// `coordinator(billing)`: the broker that coordinates the group.
    Coordinator(u32),
    /// `controller` with a quorum: the active controller.
    Controller,
}

/// Why a partition's state changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElectionReason {
    /// A broker's heartbeats stopped for `broker.session.timeout.ms`.
    SessionExpired,
    /// A broker registered again after a restart; its old registration is fenced.
    Restarted,
    /// The leader removed lagging followers from the ISR.
    IsrShrink,
    /// The leader added a caught-up follower to the ISR.
    IsrExpand,
    /// A fenced broker came back and a leaderless partition got a leader.
    BrokerReturned,
    /// No ISR member was available and unclean election chose an out-of-sync replica.
    Unclean,
    /// The ISR was empty and an eligible leader replica (KIP-966) was elected.
    EligibleLeader,
    /// A broker registered again after an unclean shutdown: with ELR on it leaves every
    /// ISR and ELR, since its log may have lost what it acknowledged.
    UncleanShutdown,
    /// A broker asked to shut down: it leaves every ISR and hands over its leaderships
    /// (`handleBrokerInControlledShutdown`).
    ControlledShutdown,
    /// `auto.leader.rebalance.enable`: leadership moved back to the preferred replica.
    Preferred,
}

pub struct TopicInfo {
    pub name: String,
    pub first: Pidx,
    pub partitions: u32,
    pub replication_factor: u32,
    pub min_insync_replicas: u32,
    pub flush_messages: Option<u64>,
    pub unclean_leader_election: bool,
    /// `__consumer_offsets`: replicated like any topic, left out of the reports.
    pub internal: bool,
}

pub struct PartitionInfo {
    pub topic: usize,
    pub partition: u32,
    /// Broker ids; the first is the preferred leader.
    pub replicas: Vec<u32>,
}

/// The cluster's static shape, shared by every node: topics, placement, coordinators.
pub struct ClusterInfo {
    pub brokers: u32,
    /// KRaft voters; more than one is a Raft quorum.
    pub controllers: u32,
    pub topics: Vec<TopicInfo>,
    pub partitions: Vec<PartitionInfo>,
    pub groups: Vec<String>,
    /// Per group: its `__consumer_offsets` partition number, and that partition in the
    /// flat numbering. Its leader is the group's coordinator.
    pub offsets_partitions: Vec<u32>,
    pub offsets_pidx: Vec<Pidx>,
    /// Broker and controller settings every node needs.
    pub config: BrokerConfig,
}

impl ClusterInfo {
    /// The partition's preferred leader: its first replica.
    pub fn preferred_leader(&self, p: Pidx) -> u32 {
        self.partitions[p as usize].replicas[0]
    }
    pub fn topic_of(&self, p: Pidx) -> &TopicInfo {
        &self.topics[self.partitions[p as usize].topic]
    }
    /// Whether `p` belongs to `__consumer_offsets`.
    pub fn is_internal(&self, p: Pidx) -> bool {
        self.topic_of(p).internal
    }
    /// The partitions of the scenario's own topics.
    pub fn user_partitions(&self) -> impl Iterator<Item = Pidx> + '_ {
        (0..self.partitions.len() as Pidx).filter(|&p| !self.is_internal(p))
    }
    pub fn partition_name(&self, p: Pidx) -> String {
        let info = &self.partitions[p as usize];
        format!("{}-{}", self.topics[info.topic].name, info.partition)
    }
    pub fn broker_node(&self, broker: u32) -> NodeId {
        NodeId(broker - 1)
    }
    pub fn broker_of(&self, node: NodeId) -> Option<u32> {
        (node.0 < self.brokers).then_some(node.0 + 1)
    }
    /// The (first) controller is the node right after the brokers.
    pub fn controller_node(&self) -> NodeId {
        NodeId(self.brokers)
    }
    /// Voter `v` (1-based).
    pub fn controller_node_of(&self, v: u32) -> NodeId {
        NodeId(self.brokers + v - 1)
    }
    /// The voter a node is, if it is a controller.
    pub fn controller_of(&self, node: NodeId) -> Option<u32> {
        (node.0 >= self.brokers && node.0 < self.brokers + self.controllers).then(|| node.0 - self.brokers + 1)
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timer {
    Broker(BrokerTimer),
    Controller(ControllerTimer),
    Producer(ProducerTimer),
    Member(MemberTimer),
    /// The group coordinator's timers, on the coordinating broker.
    Group(group::GroupTimer),
}

/// Why a producer gave records up for good.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailReason {
    /// `delivery.timeout.ms` passed.
    DeliveryTimeout,
    /// A non-retriable error, or `retries` used up.
    Error(ErrorCode),
    /// The producer process died with the records still in its accumulator.
    ProducerCrashed,
    /// `send()` waited `max.block.ms` for `buffer.memory` and threw
    /// BufferExhaustedException: the record never entered the accumulator.
    BufferExhausted,
}

/// Why a group rebalances: the member (by index) that caused it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebalanceCause {
    /// A new member joined.
    Joined(u32),
    /// A known member joined again (after REBALANCE_IN_PROGRESS, with a changed
    /// subscription, or the leader).
    Rejoined(u32),
    /// A member sent LeaveGroup (a clean close, or `max.poll.interval.ms` passed).
    Left(u32),
    /// The coordinator heard nothing from a member for `session.timeout.ms`.
    SessionTimeout(u32),
}

/// Where a member's position came from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositionCause {
    /// The group's committed offset.
    Committed,
    /// `auto.offset.reset`, because the group had no committed offset.
    NoCommittedOffset(OffsetReset),
    /// `auto.offset.reset`, because the position was out of the log's range.
    OutOfRange(OffsetReset),
    /// KIP-320: after a leader change the new leader's log ends below the position in
    /// the position's epoch; the member moves back to where that epoch ends.
    Truncated,
}

/// What nodes report to checkers and reports. Observing never changes the run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "obs", rename_all = "kebab-case")]
pub enum Obs {
    /// A power loss dropped offsets `from..to` of a replica's unflushed tail.
    LogLost {
        partition: Pidx,
        from: u64,
        to: u64,
    },
    /// A produce request left for a broker with `batches` batches, `retried` of them
    /// sent before.
    ProduceSent {
        producer: u32,
        batches: u32,
        retried: u32,
    },
    /// A `send()` call waited `waited` for `buffer.memory` to free up (then returned, or
    /// gave the record up).
    SendBlocked {
        producer: u32,
        waited: Duration,
    },
    /// The coordinator began a rebalance of `group` (still in `generation`).
    RebalanceBegan {
        group: u32,
        generation: i32,
        cause: RebalanceCause,
    },
    /// The leader's assignment reached the coordinator: `group` is stable in
    /// `generation`, with each member's partitions.
    GroupStable {
        group: u32,
        generation: i32,
        protocol: String,
        assignment: Vec<(u32, Vec<Pidx>)>,
    },
    /// A member process starts (at its start time, or after a restart).
    MemberStarted {
        group: u32,
        member: u32,
    },
    /// A fetch response brought a member `records` records.
    Fetched {
        group: u32,
        member: u32,
        records: u64,
    },
    /// A member's poll took longer than `max.poll.interval.ms`: it leaves the group.
    PollTimeout {
        group: u32,
        member: u32,
    },
    /// A member gave up partitions it owned (eager: all, before rejoining; cooperative:
    /// those the new assignment moves).
    Revoked {
        group: u32,
        member: u32,
        partitions: Vec<Pidx>,
    },
    /// The application handed `records` records to `send()`.
    Sent {
        producer: u32,
        records: u64,
    },
    /// An `acks=0` send: complete, with no acknowledgement.
    SentUnacknowledged {
        partition: Pidx,
        producer: u32,
        records: u32,
    },
    Acked {
        partition: Pidx,
        producer: u32,
        broker: u32,
        first_seq: u64,
        count: u32,
        bytes: u32,
        base_offset: u64,
        /// Send-to-acknowledgement time of the batch's oldest and youngest record.
        latency_max: Duration,
        latency_min: Duration,
    },
    ProduceError {
        partition: Pidx,
        producer: u32,
        error: ErrorCode,
        records: u32,
        retrying: bool,
    },
    Failed {
        partition: Pidx,
        producer: u32,
        first_seq: u64,
        count: u32,
        reason: FailReason,
    },
    /// A member's position on a partition was set.
    PositionSet {
        group: u32,
        member: u32,
        partition: Pidx,
        offset: u64,
        cause: PositionCause,
    },
    Processed {
        group: u32,
        member: u32,
        records: Vec<(Pidx, RecordRange)>,
    },
    Committed {
        group: u32,
        member: u32,
        partition: Pidx,
        offset: u64,
    },
    CommitFailed {
        group: u32,
        member: u32,
        error: ErrorCode,
    },
    /// A voter became the active controller of `epoch`.
    ControllerActivated {
        controller: u32,
        epoch: u32,
    },
    /// The active controller stopped acting as one.
    ControllerResigned {
        controller: u32,
        epoch: u32,
        why: &'static str,
    },
    /// A broker began a controlled shutdown (`stop`): it asks the controller to move its
    /// leaderships before it stops.
    ShutdownRequested {
        broker: u32,
    },
    /// A broker stopped cleanly: logs flushed, clean-shutdown file written.
    BrokerStopped {
        broker: u32,
        /// The controller never granted the shutdown within the broker's wait (5 min).
        timed_out: bool,
    },
    /// The controller refused a restarted broker's registration with
    /// DUPLICATE_BROKER_REGISTRATION: its old session is valid until `until`.
    RegistrationRefused {
        broker: u32,
        until: Time,
    },
    /// The controller registered a (re)started broker.
    BrokerRegistered {
        broker: u32,
        epoch: u64,
    },
    BrokerFenced {
        broker: u32,
        reason: ElectionReason,
    },
    BrokerUnfenced {
        broker: u32,
    },
    /// The controller changed a partition's leader or ISR.
    PartitionChanged {
        partition: Pidx,
        state: PartitionState,
        reason: ElectionReason,
    },
    /// A broker took up leadership of a partition in an epoch.
    BecameLeader {
        partition: Pidx,
        epoch: u32,
        log_end_offset: u64,
    },
    /// A replica appended records (a leader's append or a follower's copy).
    /// `source` is the leader and epoch a follower copied them from; `None` for a
    /// leader's own append.
    Replicated {
        partition: Pidx,
        range: RecordRange,
        source: Option<(u32, u32)>,
    },
    /// A replica dropped offsets `from..to` of its log.
    Truncated {
        partition: Pidx,
        from: u64,
        to: u64,
        why: &'static str,
    },
    /// A leader's high watermark rose.
    HighWatermark {
        partition: Pidx,
        epoch: u32,
        high_watermark: u64,
    },
    /// A leader acknowledged an `acks=all` write ending at `end_offset`, counting `isr`
    /// in-sync replicas.
    AckedInSync {
        partition: Pidx,
        end_offset: u64,
        isr: u32,
    },
}

/// Every node of a Kafka simulation.
pub enum Node {
    Broker(Box<Broker>),
    Controller(Box<Controller>),
    Producer(Box<ProducerNode>),
    Member(Box<Member>),
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;
    type Role = Role;

    fn handle(&mut self, now: Time, input: Input<Msg, Timer>, out: &mut Out) {
        match (self, input) {
            (Node::Broker(b), Input::Start) => b.start(now, out),
            (Node::Broker(b), Input::Message { from, msg }) => {
                b.on_message(now, from, msg, out);
                b.store_groups(out);
            }
            (Node::Broker(b), Input::Timer(Timer::Broker(t))) => b.on_timer(now, t, out),
            (Node::Broker(b), Input::Timer(Timer::Group(t))) => b.on_group_timer(now, t, out),
            (Node::Broker(b), Input::PeerDown(node)) => b.on_peer_down(node, out),
            (Node::Controller(c), Input::Start) => c.start(now, out),
            (Node::Controller(c), Input::Message { from, msg }) => c.on_message(now, from, msg, out),
            (Node::Controller(c), Input::Timer(Timer::Controller(t))) => c.on_timer(now, t, out),
            (Node::Producer(p), Input::Start) => p.start(now, out),
            (Node::Producer(p), Input::Message { msg, .. }) => p.on_message(now, msg, out),
            (Node::Producer(p), Input::Timer(Timer::Producer(t))) => p.on_timer(now, t, out),
            (Node::Producer(p), Input::PeerDown(node)) => {
                if let Some(b) = p.peer(node) {
                    p.on_peer_down(now, b, out)
                }
            }
            (Node::Member(m), Input::Start) => m.start(now, out),
            (Node::Member(m), Input::Message { msg, .. }) => m.on_message(now, msg, out),
            (Node::Member(m), Input::Timer(Timer::Member(t))) => m.on_timer(now, t, out),
            (Node::Member(m), Input::PeerDown(node)) => {
                if node.0 < m.brokers() {
                    m.on_peer_down(now, node.0 + 1, out)
                }
            }
            // Brokers talk to no broker yet; timers always reach their own kind of node.
            (_, Input::PeerDown(_)) | (_, Input::Timer(_)) => {}
        }
    }

    /// The active controller answers for every role: its metadata is the cluster's truth.
    fn resolve(&self, role: &Role) -> Option<Result<NodeId, String>> {
        match self {
            Node::Controller(c) if c.is_active() => Some(c.resolve(role)),
            _ => None,
        }
    }

    fn is_reply(msg: &Msg) -> bool {
        msg.is_reply()
    }

    fn begin_stop(&mut self, now: Time, out: &mut Out) -> bool {
        match self {
            Node::Broker(b) => b.begin_stop(now, out),
            _ => true,
        }
    }

    fn crash(&mut self, now: Time, kind: CrashKind, out: &mut Out) {
        match self {
            Node::Broker(b) => b.crash(kind, out),
            // Validation refuses faults that would crash a lone controller.
            Node::Controller(c) => c.crash(),
            Node::Producer(p) => p.crash(out),
            Node::Member(m) => m.crash(now, kind, out),
        }
    }
}

/// Builds the cluster's shape and every node, in node-id order: brokers, the controller,
/// producer instances, group members (the order of [`Cluster::node_names`]).
pub fn build(s: Cluster<'_>, seed: u64) -> (Vec<(String, Node)>, Arc<ClusterInfo>) {
    let broker_ids: Vec<u32> = (1..=s.brokers).collect();
    let mut placement_rng = rng::stream(seed, "placement");
    let mut topics = Vec::new();
    let mut partitions = Vec::new();
    for (ti, t) in s.topics.iter().enumerate() {
        let replicas = match &t.replicas {
            Some(explicit) => explicit.clone(),
            None => placement::assign_replicas(&broker_ids, t.partitions, t.replication_factor, &mut placement_rng),
        };
        topics.push(TopicInfo {
            name: t.name.clone(),
            first: partitions.len() as Pidx,
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            min_insync_replicas: t.min_insync_replicas,
            flush_messages: t.flush_messages,
            unclean_leader_election: t.unclean_leader_election,
            internal: false,
        });
        for (p, r) in replicas.into_iter().enumerate() {
            partitions.push(PartitionInfo {
                topic: ti,
                partition: p as u32,
                replicas: r,
            });
        }
    }
    // `__consumer_offsets`, placed like any topic; its replication factor is capped at the
    // broker count so that small clusters work.
    let n_offsets = s.broker.offsets_topic_num_partitions;
    let offsets_rf = s.broker.offsets_topic_replication_factor.min(s.brokers);
    let offsets_replicas = placement::assign_replicas(&broker_ids, n_offsets, offsets_rf, &mut placement_rng);
    let groups: Vec<String> = s.groups.iter().map(|g| g.group.clone()).collect();
    let offsets_partitions: Vec<u32> = groups
        .iter()
        .map(|g| partitioner::offsets_partition_for(g, n_offsets))
        .collect();
    // The partitions of `__consumer_offsets` that groups use are simulated like any other
    // (the rest would stay empty).
    let mut used: Vec<u32> = offsets_partitions.clone();
    used.sort_unstable();
    used.dedup();
    let first = partitions.len() as Pidx;
    if !used.is_empty() {
        topics.push(TopicInfo {
            name: "__consumer_offsets".to_string(),
            first,
            partitions: used.len() as u32,
            replication_factor: offsets_rf,
            min_insync_replicas: 1,
            flush_messages: s.broker.log_flush_interval_messages,
            unclean_leader_election: false,
            internal: true,
        });
        for &n in &used {
            partitions.push(PartitionInfo {
                topic: topics.len() - 1,
                partition: n,
                replicas: offsets_replicas[n as usize].clone(),
            });
        }
    }
    let offsets_pidx = offsets_partitions
        .iter()
        .map(|n| first + used.iter().position(|u| u == n).expect("listed") as Pidx)
        .collect();
    let info = Arc::new(ClusterInfo {
        brokers: s.brokers,
        controllers: s.controllers,
        topics,
        partitions,
        groups,
        offsets_partitions,
        offsets_pidx,
        config: s.broker.clone(),
    });

    let mut nodes: Vec<(String, Node)> = Vec::new();
    // Truncating to the high watermark (before 0.11, and KIP-101's fallback without an
    // answer) can go below a checkpointed high watermark: only with leader epochs may the
    // stores forget superseded commit records.
    let compacting = info.config.truncation == TruncationMode::LeaderEpoch;
    let stores: Vec<log::SharedStore> = info
        .partitions
        .iter()
        .map(|_| {
            if compacting {
                log::Store::compacting()
            } else {
                log::SharedStore::default()
            }
        })
        .collect();
    for b in 1..=s.brokers {
        nodes.push((
            broker_name(b),
            Node::Broker(Box::new(Broker::new(
                b,
                info.clone(),
                &stores,
                rng::stream(seed, &format!("broker-{b}/disk")),
                rng::stream(seed, &format!("broker-{b}/groups")),
            ))),
        ));
    }
    for (i, name) in config::controller_names(s.controllers).into_iter().enumerate() {
        let rng = rng::stream(seed, &format!("{name}/raft"));
        let controller = Controller::new(info.clone(), i as u32 + 1, rng);
        nodes.push((name, Node::Controller(Box::new(controller))));
    }
    let mut producer_index = 0;
    for p in s.producers {
        let topic = &info.topics[p.topic];
        let keys = p.keys.as_ref();
        let n_keys = keys.map_or(0, |k| k.len());
        let mut key_table = Vec::new();
        match keys {
            // Hashed as drawn (`ProducerConfig::key_info`).
            Some(config::Keys::Count(_)) if p.partitioner != config::Partitioner::Custom => {}
            Some(keys) => keys.for_each(|_, k| {
                key_table.push(KeyInfo {
                    partition: p
                        .partition_of_key(k, topic.partitions)
                        .unwrap_or_else(|| partitioner::partition_for_key(k.as_bytes(), topic.partitions)),
                    bytes: k.len() as u32,
                })
            }),
            None => {}
        }
        let cfg = Arc::new(ProducerConfig {
            spec: p.clone(),
            first: topic.first,
            count: topic.partitions,
            key_table,
            key_cdf: match p.key_distribution {
                config::KeyDistribution::Uniform => Vec::new(),
                config::KeyDistribution::Zipf { exponent } => producer::zipf_cdf(n_keys, exponent),
            },
            stop: Time(s.duration.0),
        });
        for name in p.instance_names() {
            let rng = rng::stream(seed, &format!("producer/{name}"));
            nodes.push((
                name,
                Node::Producer(Box::new(ProducerNode::new(
                    producer_index,
                    cfg.clone(),
                    info.clone(),
                    rng,
                ))),
            ));
            producer_index += 1;
        }
    }
    for (gi, g) in s.groups.iter().enumerate() {
        let names = g.member_names();
        let cfg = Arc::new(g.clone());
        for (i, name) in names.into_iter().enumerate() {
            let member = Member::new(gi as u32, i as u32, cfg.clone(), info.clone());
            nodes.push((name, Node::Member(Box::new(member))));
        }
    }
    (nodes, info)
}
