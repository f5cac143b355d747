//! What the Kafka model is built from: the cluster's brokers and their settings, the
//! topics, the producers and the consumer groups, with every default applied. The
//! scenario format resolves a file into these (`scenario::Scenario` holds them); the
//! model reads nothing else.

use crate::sim::Duration;
use serde::Serialize;

/// The name of broker `id`'s node.
pub fn broker_name(id: u32) -> String {
    format!("broker-{id}")
}

/// The cluster, its topics and its clients, as the model is built from them.
#[derive(Clone, Copy)]
pub struct Cluster<'a> {
    pub brokers: u32,
    /// KRaft voters: 1 is the one controller that never fails, more a Raft quorum.
    pub controllers: u32,
    pub broker: &'a BrokerConfig,
    pub topics: &'a [Topic],
    pub producers: &'a [Producer],
    pub groups: &'a [Group],
    /// How long the workload runs (producers stop after it).
    pub duration: Duration,
}

impl Cluster<'_> {
    /// Every node name, in node-id order: brokers, the controller, producer instances,
    /// group members.
    pub fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (1..=self.brokers).map(broker_name).collect();
        names.extend(controller_names(self.controllers));
        for p in self.producers {
            names.extend(p.instance_names());
        }
        for g in self.groups {
            names.extend(g.member_names());
        }
        names
    }
}

/// The controller's node name, and with a quorum the role of the active controller.
pub const CONTROLLER: &str = "controller";

/// The controllers' node names: `controller` alone, or `controller-1` … `controller-N`.
pub fn controller_names(n: u32) -> Vec<String> {
    if n == 1 {
        vec![CONTROLLER.to_string()]
    } else {
        (1..=n).map(|i| format!("{CONTROLLER}-{i}")).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokerConfig {
    pub broker_session_timeout: Duration,
    pub broker_heartbeat_interval: Duration,
    pub replica_lag_time_max: Duration,
    pub replica_fetch_wait_max: Duration,
    pub replica_fetch_min_bytes: u32,
    pub replica_fetch_max_bytes: u32,
    pub replica_fetch_backoff: Duration,
    pub truncation: super::TruncationMode,
    pub offsets_topic_num_partitions: u32,
    pub offsets_topic_replication_factor: u32,
    pub high_watermark_checkpoint_interval: Duration,
    /// `log.flush.interval.messages`; `None` = never (Kafka's default, `Long.MAX_VALUE`).
    pub log_flush_interval_messages: Option<u64>,
    pub group_initial_rebalance_delay: Duration,
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
    /// `eligible.leader.replicas.version` 1: KIP-966 (on for a new Kafka 4.1 cluster).
    pub eligible_leader_replicas: bool,
    /// `controlled.shutdown.enable`: `stop` moves a broker's leaderships first.
    pub controlled_shutdown: bool,
    /// `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds`,
    /// leadership goes back to preferred replicas; `None` when off.
    pub leader_imbalance_check_interval: Option<Duration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    /// Explicit placement, one broker-id list per partition; else Kafka's placement.
    pub replicas: Option<Vec<Vec<u32>>>,
    pub min_insync_replicas: u32,
    /// Flush the log after this many records (`flush.messages`); `None` = never.
    pub flush_messages: Option<u64>,
    pub unclean_leader_election: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    Zero,
    One,
    All,
}

/// A producer's keys: `key-0` … `key-{n-1}` for `keys.count` (named when asked, since a
/// count can be ten million), or the `keys.list` as written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keys {
    Count(u32),
    List(Vec<String>),
}

impl Keys {
    pub fn len(&self) -> usize {
        match self {
            Keys::Count(n) => *n as usize,
            Keys::List(list) => list.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `i`th key.
    pub fn name(&self, i: usize) -> std::borrow::Cow<'_, str> {
        match self {
            Keys::Count(_) => Keys::counted(i, &mut [0; Keys::COUNTED_MAX]).to_string().into(),
            Keys::List(list) => list[i].as_str().into(),
        }
    }
    /// Each key in order, through one reused buffer: `f(i, key)`.
    pub fn for_each(&self, mut f: impl FnMut(usize, &str)) {
        match self {
            Keys::Count(n) => {
                let mut buf = [0; Keys::COUNTED_MAX];
                (0..*n as usize).for_each(|i| f(i, Keys::counted(i, &mut buf)));
            }
            Keys::List(list) => list.iter().enumerate().for_each(|(i, k)| f(i, k)),
        }
    }

    /// The longest name `counted` writes: `key-` and a 64-bit number.
    pub const COUNTED_MAX: usize = 24;

    /// Key `i` of a `keys.count`, `key-{i}`, written into `buf` (cheap enough to do per
    /// record).
    pub fn counted(i: usize, buf: &mut [u8; Keys::COUNTED_MAX]) -> &str {
        buf[..4].copy_from_slice(b"key-");
        let digits = i.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut n = i;
        for d in buf[4..4 + digits].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        std::str::from_utf8(&buf[..4 + digits]).expect("ASCII digits")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Producer {
    /// The name as written; instances are `name` (one) or `name-0`, `name-1`, ….
    pub name: String,
    pub instances: u32,
    pub topic: usize,
    pub workload: Workload,
    /// The keys, drawn for each record by `key_distribution`; `None` = null keys.
    pub keys: Option<Keys>,
    pub key_distribution: KeyDistribution,
    /// Value sizes, drawn uniformly from `min..=max` for each record.
    pub value_bytes: ValueBytes,
    /// The percentage of records that carry the first key.
    pub hot_share: u32,
    pub acks: Acks,
    pub linger: Duration,
    pub batch_size: u32,
    pub idempotence: bool,
    pub retries: u64,
    pub delivery_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub metadata_max_age: Duration,
    pub max_request_size: u32,
    pub max_in_flight: u32,
    pub buffer_memory: u64,
    pub max_block: Duration,
    /// KIP-794's adaptive weights for the built-in partitioner.
    pub adaptive: bool,
    /// `partitioner.availability.timeout.ms` (zero: never exclude a partition).
    pub availability_timeout: Duration,
    pub ignore_keys: bool,
    pub partitioner: Partitioner,
    /// With `Partitioner::Custom`: (key prefix, partition) rules in order, and the
    /// partition for other keys (`None`: murmur2).
    pub custom_rules: Vec<(String, u32)>,
    pub custom_otherwise: Option<u32>,
}

impl Producer {
    /// The partition this producer's partitioner gives a non-null key, when the key
    /// alone decides it.
    pub fn partition_of_key(&self, key: &str, partitions: u32) -> Option<u32> {
        let hash = || super::partitioner::partition_for_key(key.as_bytes(), partitions);
        match self.partitioner {
            Partitioner::BuiltIn if !self.ignore_keys => Some(hash()),
            Partitioner::Default23 | Partitioner::Sticky24 => Some(hash()),
            Partitioner::Custom => Some(
                self.custom_rules
                    .iter()
                    .find(|(prefix, _)| key.starts_with(prefix.as_str()))
                    .map(|(_, p)| *p)
                    .or(self.custom_otherwise)
                    .unwrap_or_else(hash),
            ),
            _ => None,
        }
    }
}

/// Which partitioner places records (`partitioner.class`; KAFKA.md §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partitioner {
    /// Kafka 3.3+ (no `partitioner.class`): keys by murmur2, null keys with the uniform
    /// sticky partitioner of KIP-794.
    BuiltIn,
    /// `DefaultPartitioner` up to 2.3: keys by murmur2, null keys round robin over the
    /// available partitions from a random start.
    Default23,
    /// `DefaultPartitioner` 2.4 to 3.2 (KIP-480): keys by murmur2, null keys stick to one
    /// partition until a new batch is needed, then move to another at random.
    Sticky24,
    /// `UniformStickyPartitioner`: the 2.4 sticky behaviour for every record, keys ignored.
    UniformSticky,
    /// A custom partitioner written in the scenario: prefix rules over the key.
    Custom,
    /// `RoundRobinPartitioner` (KIP-369): keys ignored, partitions in turn from 0, with the
    /// double call of KAFKA-9965 when a record would open a new batch.
    RoundRobin,
}

impl Partitioner {
    /// The names a scenario may give `partitioner.class`.
    pub const NAMES: &'static [&'static str] = &[
        "round-robin",
        "default-2.3",
        "sticky-2.4",
        "uniform-sticky",
        "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        "org.apache.kafka.clients.producer.UniformStickyPartitioner",
    ];

    pub fn from_name(name: &str) -> Option<Partitioner> {
        Some(match name {
            "null" => Partitioner::BuiltIn,
            "round-robin" | "org.apache.kafka.clients.producer.RoundRobinPartitioner" => Partitioner::RoundRobin,
            "default-2.3" => Partitioner::Default23,
            "sticky-2.4" => Partitioner::Sticky24,
            "uniform-sticky" | "org.apache.kafka.clients.producer.UniformStickyPartitioner" => {
                Partitioner::UniformSticky
            }
            _ => return None,
        })
    }
}

/// How a keyed producer draws the key of each record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    Uniform,
    /// Key `k` (counting from 1, in the order of the key list) has weight `1 / k^exponent`.
    Zipf {
        exponent: f64,
    },
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `count` records every `per`, evenly spaced, for the whole `duration`.
    Rate { count: u64, per: Duration },
    /// This many records, evenly spread over `duration`.
    Messages(u64),
    /// `base` records per `base_per`, except from `every`, then every `every`, for
    /// `length`: `burst` records per `burst_per`.
    Bursts {
        base: u64,
        base_per: Duration,
        burst: u64,
        burst_per: Duration,
        every: Duration,
        length: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    Latest,
    Earliest,
    None,
}

impl OffsetReset {
    pub fn word(self) -> &'static str {
        match self {
            OffsetReset::Latest => "latest",
            OffsetReset::Earliest => "earliest",
            OffsetReset::None => "none",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub group: String,
    pub members: u32,
    pub topics: Vec<usize>,
    pub processing: Duration,
    pub commit: CommitMode,
    pub auto_commit_interval: Duration,
    pub auto_offset_reset: OffsetReset,
    pub max_poll_records: u32,
    pub fetch_min_bytes: u32,
    pub fetch_max_wait: Duration,
    pub max_partition_fetch_bytes: u32,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    /// `partition.assignment.strategy`, by protocol name, in preference order.
    pub strategies: Vec<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_poll_interval: Duration,
    /// `group.instance.id`: member `i` is the static member `{this}-{i}`.
    pub instance_prefix: Option<String>,
    /// When each member starts (most at zero).
    pub start_at: Vec<Duration>,
    /// A member whose processing stalls: (member, from, for).
    pub stall: Option<(u32, Duration, Duration)>,
}

/// `value.bytes`: a size, or `{min: 50, max: 500}` for sizes drawn uniformly.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ValueBytes {
    pub min: u32,
    pub max: u32,
}

#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// Commit the position after the records of a poll are processed (at-least-once).
    AfterProcessing,
    /// Commit the position before processing the records of a poll (at-most-once).
    BeforeProcessing,
    /// `enable.auto.commit=true`: commit consumed positions at poll time every
    /// `auto.commit.interval.ms`.
    Auto,
}

impl Producer {
    /// Its instances' node names: `name` for one, `name-0`, `name-1`, … for more.
    pub fn instance_names(&self) -> Vec<String> {
        if self.instances == 1 {
            vec![self.name.clone()]
        } else {
            (0..self.instances).map(|i| format!("{}-{i}", self.name)).collect()
        }
    }
}

impl Group {
    /// Its members' node names: `group-0`, `group-1`, ….
    pub fn member_names(&self) -> Vec<String> {
        (0..self.members).map(|i| format!("{}-{i}", self.group)).collect()
    }
}
