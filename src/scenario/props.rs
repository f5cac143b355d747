//! The Kafka properties kafkasim knows, with Kafka's names and defaults (KAFKA.md §1–5),
//! and which of them the model acts on today.
//!
//! A property that is known but not modelled yet is accepted only at its default value, so
//! a scenario never silently means something kafkasim does not simulate.

/// Where a property may be written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Broker,
    Topic,
    Producer,
    Consumer,
}

impl Scope {
    pub fn key(self) -> &'static str {
        match self {
            Scope::Broker => "cluster.config",
            Scope::Topic => "topics[].config",
            Scope::Producer => "producers[].config",
            Scope::Consumer => "consumers[].config",
        }
    }
}

/// The type of a property's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A whole number no smaller than `min`, at most `Integer.MAX_VALUE` (a Java `int`).
    Int {
        min: i64,
    },
    /// A whole number no smaller than `min` (a Java `long`).
    Long {
        min: i64,
    },
    Bool,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text (class names, ids, lists).
    Text,
}

pub struct Prop {
    pub name: &'static str,
    pub scope: Scope,
    pub kind: Kind,
    /// Kafka's default, as Kafka writes it.
    pub default: &'static str,
    /// Whether the model acts on the value today.
    pub modelled: bool,
}

const fn p(name: &'static str, scope: Scope, kind: Kind, default: &'static str, modelled: bool) -> Prop {
    Prop {
        name,
        scope,
        kind,
        default,
        modelled,
    }
}

const MS: Kind = Kind::Int { min: 0 };
const POS: Kind = Kind::Int { min: 1 };
const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";

use Kind::{Bool, Choice, Text};
use Scope::{Broker, Consumer, Producer, Topic};

/// Every property kafkasim knows. Defaults are Kafka 4.x's.
pub const PROPS: &[Prop] = &[
    // Broker and controller (ReplicationConfigs, ServerLogConfigs, KRaftConfigs, GroupCoordinatorConfig).
    p("min.insync.replicas", Broker, POS, "1", true),
    p("default.replication.factor", Broker, POS, "1", true),
    p("num.partitions", Broker, POS, "1", true),
    p(
        "log.flush.interval.messages",
        Broker,
        Kind::Long { min: 1 },
        LONG_MAX,
        true,
    ),
    p("log.flush.interval.ms", Broker, Kind::Long { min: 0 }, "null", false),
    p(
        "replica.high.watermark.checkpoint.interval.ms",
        Broker,
        POS,
        "5000",
        true,
    ),
    p("offsets.topic.num.partitions", Broker, POS, "50", true),
    p("offsets.topic.replication.factor", Broker, POS, "3", true),
    p("unclean.leader.election.enable", Broker, Bool, "false", true),
    p("replica.lag.time.max.ms", Broker, POS, "30000", true),
    p("replica.fetch.wait.max.ms", Broker, MS, "500", true),
    p("replica.fetch.min.bytes", Broker, POS, "1", true),
    p("replica.fetch.max.bytes", Broker, POS, "1048576", true),
    p("replica.fetch.backoff.ms", Broker, MS, "1000", true),
    p("broker.heartbeat.interval.ms", Broker, POS, "2000", true),
    p("broker.session.timeout.ms", Broker, POS, "9000", true),
    p("controlled.shutdown.enable", Broker, Bool, "true", true),
    p("auto.leader.rebalance.enable", Broker, Bool, "true", true),
    p("leader.imbalance.check.interval.seconds", Broker, POS, "300", true),
    p("group.initial.rebalance.delay.ms", Broker, MS, "3000", true),
    p("group.min.session.timeout.ms", Broker, POS, "6000", true),
    p("group.max.session.timeout.ms", Broker, POS, "1800000", true),
    // Topic (LogConfig); a topic setting overrides the broker's.
    p("min.insync.replicas", Topic, POS, "1", true),
    p("flush.messages", Topic, Kind::Long { min: 1 }, LONG_MAX, true),
    p("flush.ms", Topic, Kind::Long { min: 0 }, LONG_MAX, false),
    p("unclean.leader.election.enable", Topic, Bool, "false", true),
    p("retention.ms", Topic, Kind::Long { min: -1 }, "604800000", false),
    p("retention.bytes", Topic, Kind::Long { min: -1 }, "-1", false),
    p("segment.bytes", Topic, POS, "1073741824", false),
    p("cleanup.policy", Topic, Choice(&["delete", "compact"]), "delete", false),
    p("max.message.bytes", Topic, POS, "1048588", false),
    p(
        "compression.type",
        Topic,
        Choice(&["producer", "none", "gzip", "snappy", "lz4", "zstd"]),
        "producer",
        false,
    ),
    // Producer (ProducerConfig).
    p("acks", Producer, Choice(&["all", "-1", "0", "1"]), "all", true),
    p("linger.ms", Producer, MS, "5", true),
    p("batch.size", Producer, POS, "16384", true),
    p("enable.idempotence", Producer, Bool, "true", true),
    p("retries", Producer, MS, INT_MAX, true),
    p("delivery.timeout.ms", Producer, POS, "120000", true),
    p("request.timeout.ms", Producer, POS, "30000", true),
    p("retry.backoff.ms", Producer, MS, "100", true),
    p("retry.backoff.max.ms", Producer, MS, "1000", true),
    p("metadata.max.age.ms", Producer, POS, "300000", true),
    p("max.request.size", Producer, POS, "1048576", true),
    p("max.in.flight.requests.per.connection", Producer, POS, "5", true),
    p("client.id", Producer, Text, "", true),
    p("buffer.memory", Producer, POS, "33554432", true),
    p("max.block.ms", Producer, MS, "60000", true),
    p(
        "compression.type",
        Producer,
        Choice(&["none", "gzip", "snappy", "lz4", "zstd"]),
        "none",
        false,
    ),
    p("partitioner.class", Producer, Text, "null", true),
    p("partitioner.ignore.keys", Producer, Bool, "false", true),
    p("partitioner.adaptive.partitioning.enable", Producer, Bool, "true", true),
    p("partitioner.availability.timeout.ms", Producer, MS, "0", true),
    p("transactional.id", Producer, Text, "null", false),
    // Consumer (ConsumerConfig).
    p("enable.auto.commit", Consumer, Bool, "true", true),
    p("auto.commit.interval.ms", Consumer, MS, "5000", true),
    p(
        "auto.offset.reset",
        Consumer,
        Choice(&["latest", "earliest", "none"]),
        "latest",
        true,
    ),
    p("max.poll.records", Consumer, POS, "500", true),
    p("fetch.min.bytes", Consumer, POS, "1", true),
    p("fetch.max.wait.ms", Consumer, MS, "500", true),
    p("max.partition.fetch.bytes", Consumer, POS, "1048576", true),
    p("request.timeout.ms", Consumer, POS, "30000", true),
    p("retry.backoff.ms", Consumer, MS, "100", true),
    p("client.id", Consumer, Text, "", true),
    p(
        "partition.assignment.strategy",
        Consumer,
        Text,
        "range,cooperative-sticky",
        true,
    ),
    p("fetch.max.bytes", Consumer, POS, "52428800", false),
    p("session.timeout.ms", Consumer, POS, "45000", true),
    p("heartbeat.interval.ms", Consumer, POS, "3000", true),
    p("max.poll.interval.ms", Consumer, POS, "300000", true),
    p("group.instance.id", Consumer, Text, "null", true),
    p(
        "group.protocol",
        Consumer,
        Choice(&["classic", "consumer"]),
        "classic",
        false,
    ),
    p(
        "isolation.level",
        Consumer,
        Choice(&["read_uncommitted", "read_committed"]),
        "read_uncommitted",
        false,
    ),
];

pub fn lookup(scope: Scope, name: &str) -> Option<&'static Prop> {
    PROPS.iter().find(|p| p.scope == scope && p.name == name)
}

pub fn names(scope: Scope) -> impl Iterator<Item = &'static str> {
    PROPS.iter().filter(move |p| p.scope == scope).map(|p| p.name)
}

/// Properties Kafka 4 no longer has, with what to do instead.
const REMOVED: &[(Scope, &str, &str)] = &[(
    Scope::Broker,
    "leader.imbalance.per.broker.percentage",
    "it was read only by the ZooKeeper-mode controller; the KRaft controller moves leadership back to the preferred replica of every imbalanced partition at each `leader.imbalance.check.interval.seconds`, with no threshold. Remove it",
)];

/// Why `name` is refused, when Kafka 4 removed it.
pub fn removed(scope: Scope, name: &str) -> Option<&'static str> {
    REMOVED
        .iter()
        .find(|(s, n, _)| *s == scope && *n == name)
        .map(|(_, _, why)| *why)
}
