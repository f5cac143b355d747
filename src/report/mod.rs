//! Reports: the JSON report with DESIGN.md §7's pinned fields, and the text report for
//! people (in `text.rs`). Both are built from one [`Report`] value.

pub mod compare;
pub mod html;
pub mod latency;
pub mod series;
pub mod text;

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// The command that reproduces this run exactly.
    pub reproduce: String,
    pub simulated_ms: u64,
    pub events: u64,
    /// The most events the engine's queue held at once (for benchmarks; not in the
    /// report's text or JSON).
    #[serde(skip)]
    pub peak_pending: u64,
    /// Events whose handler changed nothing: timers that came too late to matter (for
    /// benchmarks and tests; not in the report's text or JSON).
    #[serde(skip)]
    pub idle_events: u64,
    /// Whether the run met its expectations: every check came out as `expect` says.
    pub passed: bool,
    pub checks: Vec<CheckReport>,
    pub producers: Vec<ProducerReport>,
    pub consumer_groups: Vec<GroupReport>,
    pub partitions: Vec<PartitionReport>,
    pub brokers: Vec<BrokerReport>,
    pub faults: Vec<FaultReport>,
    pub availability: Availability,
    pub timeline: Vec<TimelineEntry>,
    /// The partitions drawn at the times the scenario's `pictures` asks for.
    pub pictures: Vec<Picture>,
    /// What this run does not model, in the words the README uses.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    /// Run settings shown in the text report's header.
    pub settings: Settings,
    /// The run over time, in a fixed number of points.
    pub series: series::Series,
}

/// What the faults cost the clients, summed over the scenario's partitions.
#[derive(Clone, Debug, Serialize)]
pub struct Availability {
    /// Time writes failed: from a produce error (refused, timed out) on a partition to
    /// its next acknowledgement, or the end of the workload.
    pub writes_refused_ms: u64,
    /// Time partitions had no leader.
    pub offline_ms: u64,
    /// The 99th percentile of produce latency over every producer's records.
    pub produce_p99_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub brokers: u32,
    pub duration_ms: u64,
    pub drain_ms: u64,
    pub latency: String,
    pub jitter: String,
    pub topics: Vec<TopicSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    pub min_insync_replicas: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub passed: bool,
    /// Whether the scenario expects this check to fail.
    pub expected_to_fail: bool,
    /// False for checks kafkasim does not run yet (they neither pass nor fail).
    pub implemented: bool,
    /// How many violations there were (`violations` lists the first of them).
    pub count: u64,
    /// The kinds of violation among them all (see `ViolationReport::kind`).
    pub kinds: Vec<String>,
    pub violations: Vec<ViolationReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ViolationReport {
    pub at_ms: u64,
    pub message: String,
    /// How the check failed, in a word free of names and numbers: `power-loss`,
    /// `truncated`, `isr-not-recovered`, `group-lags`, `run-ended-first`, ….
    pub kind: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProducerReport {
    pub name: String,
    pub topic: String,
    pub acks: String,
    pub idempotence: bool,
    /// Records handed to `send()`.
    pub sent: u64,
    /// Records acknowledged by a broker.
    pub acked: u64,
    /// Records given up for good.
    pub failed: u64,
    /// `acks=0` records: sent with no acknowledgement to wait for.
    pub unacknowledged: u64,
    /// Records `send()` refused: `buffer.memory` stayed full for `max.block.ms`
    /// (BufferExhaustedException). Not counted in `failed`.
    pub refused: u64,
    /// Records still in the producer when the run ended: neither acknowledged nor given up.
    /// `sent` = `acked` + `failed` + `unacknowledged` + `refused` + `pending`.
    pub pending: u64,
    /// Records the workload would have handed to `send()` had the producer been up and
    /// unblocked throughout; `offered - sent` fell due while it was down, or were still
    /// waiting for a blocked `send()` when the workload stopped.
    pub offered: u64,
    /// Error responses by Kafka error name, retried or not (counted per batch).
    pub errors: BTreeMap<String, u64>,
    pub failed_by_reason: BTreeMap<String, u64>,
    pub latency_ms: Latency,
    /// Batches acknowledged, and the records and bytes in them.
    pub batches: u64,
    pub bytes: u64,
    /// Produce requests sent, retries included, and batches sent again.
    pub requests: u64,
    pub retried_batches: u64,
    /// The most records in one acknowledged batch.
    pub batch_records_max: u64,
    /// Acknowledged batches by the records in them, in power-of-two ranges.
    pub batch_sizes: Vec<BatchSizes>,
    /// `send()` calls that waited for `buffer.memory`, and their total wait.
    pub blocked_sends: u64,
    pub blocked_ms: f64,
    /// Records acknowledged per second of the workload's `duration`.
    pub throughput_per_s: u64,
    /// Records in the final logs more than once.
    pub duplicates_written: u64,
    /// Records in the final logs after a record of theirs with a higher sequence.
    pub reordered: u64,
    /// For a producer with at most ten keys placed by their hash: each key and its
    /// partition.
    pub key_partitions: Vec<(String, u32)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GenerationReport {
    pub generation: i32,
    pub at_ms: u64,
    pub protocol: String,
    pub assignment: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LagSample {
    pub at_ms: u64,
    pub lag: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BatchSizes {
    pub records_min: u64,
    pub records_max: u64,
    pub batches: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub commit: String,
    /// Records processed, duplicates included.
    pub consumed: u64,
    pub unique: u64,
    pub duplicates: u64,
    /// Records of the final committed log the group never processed.
    pub lost: u64,
    pub committed: BTreeMap<String, u64>,
    /// Per partition: the final high watermark minus the committed offset.
    pub lag: BTreeMap<String, u64>,
    pub generation: u32,
    /// The assignor the group voted for, the rebalances that completed, their total
    /// time (from the coordinator's first reason to the leader's assignment), and how
    /// many times a partition changed owner.
    pub protocol: String,
    pub rebalances: u64,
    pub rebalance_ms: f64,
    pub partitions_moved: u64,
    pub commit_failures: u64,
    /// Polls that outlasted `max.poll.interval.ms`.
    pub poll_timeouts: u64,
    /// Every generation that became stable, with its assignment.
    pub generations: Vec<GenerationReport>,
    /// The group's lag (high watermark minus committed offset, summed over its
    /// partitions), sampled 40 times over the run.
    pub lag_over_time: Vec<LagSample>,
    /// The time partitions spent revoked, waiting for the rebalance to give them out
    /// again, summed over partitions (eager assignors revoke everything).
    pub revoked_ms: f64,
    /// Duplicates by why the member read the records again.
    pub duplicates_by_reason: BTreeMap<String, u64>,
    /// The offsets of those duplicates, by the same reasons: per partition, the ranges
    /// `[from, to)` processed again.
    pub duplicate_offsets: BTreeMap<String, BTreeMap<String, Vec<(u64, u64)>>>,
    /// The delivery the group showed: `exactly-once (as observed)` with neither
    /// duplicates nor records never processed, `at-least-once` with duplicates only,
    /// `at-most-once` with missed records only, `neither` with both.
    pub delivery: String,
    /// Fetch requests answered, and the records they brought.
    pub fetches: u64,
    pub fetched: u64,
    /// Per partition: the member that owns it at the end and its position.
    pub positions: BTreeMap<String, (String, u64)>,
    pub assignment: BTreeMap<String, Vec<String>>,
    /// Records each member processed, duplicates included.
    pub processed_by_member: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: u32,
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub replicas: Vec<u32>,
    pub isr: Vec<u32>,
    /// Eligible leader replicas (KIP-966); left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub elr: Vec<u32>,
    pub high_watermark: u64,
    /// Per broker id.
    pub log_end_offsets: BTreeMap<String, u64>,
    /// Each replica's own high watermark (a follower's lags the leader's).
    pub high_watermarks: BTreeMap<String, u64>,
    /// How long the ISR lacked at least one replica, in all.
    pub under_replicated_ms: u64,
    pub bytes: u64,
}

/// The partitions' state at one moment of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Picture {
    pub at_ms: u64,
    pub partitions: Vec<PartitionReport>,
    pub groups: Vec<GroupMarks>,
}

/// A group's committed offsets and lag per partition, for drawing.
#[derive(Clone, Debug, Serialize)]
pub struct GroupMarks {
    pub group: String,
    pub committed: BTreeMap<String, u64>,
    pub lag: BTreeMap<String, u64>,
    /// Per partition: the member that owns it and its position (the next offset its
    /// `poll()` hands out).
    pub positions: BTreeMap<String, (String, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokerReport {
    pub broker: u32,
    pub up: bool,
    pub leads: Vec<String>,
    pub follows: Vec<String>,
    /// Records and bytes in the logs of the partitions it leads.
    pub records: u64,
    /// Records in its follower replicas' logs.
    pub follower_records: u64,
    pub bytes: u64,
    pub coordinates: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FaultReport {
    pub at_ms: u64,
    pub fault: String,
    /// The target as written: a node, nodes, or a role such as `leader(orders-0)`.
    pub target: String,
    pub fired: bool,
    /// `for:`: how long it lasted before it healed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// The nodes the roles it names resolved to when it fired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hit: Vec<String>,
    /// Why a role it names had nobody to play it (the fault did not fire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub at_ms: u64,
    /// `at_ms` with microseconds, for ordering and display.
    #[serde(skip)]
    pub at_us: u64,
    /// Faults come first among entries of one instant: they cause the rest.
    #[serde(skip)]
    pub rank: u8,
    pub text: String,
}
