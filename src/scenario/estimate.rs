//! The size of a run, estimated before it starts, and the limits above which a scenario is
//! refused unless `--allow-huge` lifts them.
//!
//! The estimate counts work in engine events, the unit the engine's cost grows with
//! (DESIGN.md §9), and memory in bytes. It is a rough model, made to tell a scenario of
//! seconds from one of days, not to predict a run to the percent: it counts what the
//! model does per batch (a produce request and its answer, the followers' and the groups'
//! fetches), per record (drawing its key and partition: about a thirty-second of an
//! event), per node and per second of simulated time (heartbeats, idle fetches, timers),
//! and what stays in memory (every batch in every replica's log and in the checkers, every
//! replica, every node). Measured on the shipped scenarios and benchmarks, the events it
//! counts are about 1 to 4 times the events a run handles, and its memory 1 to 3 times
//! the peak a run uses. It depends on the scenario alone, never on the machine, so that
//! whether a scenario runs stays a pure function of its text.

use super::schema::CommitMode;
use super::schema::{S, ScenarioFile};
use super::{InputError, Keys, Partitioner, Scenario, Workload};
use crate::sim::Duration;

/// Whether the estimate's limits apply (`--allow-huge` lifts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Limit {
    #[default]
    Enforced,
    Lifted,
}

/// The most work a run may be estimated at: ten billion events, about an hour on one core
/// of a machine that handles three million events a second (the teaching scenarios take
/// tens of thousands to a few million; a 100,000-hour run at one record a second, 15
/// billion).
pub const EVENTS_LIMIT: u128 = 10_000_000_000;

/// The most memory a run may be estimated at: 8 GB (the largest shipped scenario is
/// estimated at tens of megabytes; a sweep holds one run per job).
pub const MEMORY_LIMIT: u128 = 8_000_000_000;

/// A record costs about a thirty-second of an event: drawing its key and partition and
/// adding it to a batch (measured: about 10 ns against 300 ns for an event).
const EVENTS_PER_RECORD_DIVISOR: u128 = 32;
/// A partition named in a fetch costs about a sixteenth of an event.
const EVENTS_PER_PARTITION_VISIT_DIVISOR: u128 = 16;
/// Memory a batch keeps in each replica: its append time while unflushed.
const BYTES_PER_BATCH_REPLICA: u128 = 4;
/// Memory a batch keeps once: in its partition's store of batches (24 bytes, with the
/// slack of a growing vector), in the lost-write checker (about 5), and the group's
/// commit records not yet compacted.
const BYTES_PER_BATCH: u128 = 48;
/// Memory of one replica of one partition: the log, the leader-epoch cache, fetch state.
const BYTES_PER_REPLICA: u128 = 1536;
/// Memory of one node (its state machine, its timers) and of one connection it opens.
const BYTES_PER_NODE: u128 = 16 * 1024;
const BYTES_PER_LINK: u128 = 256;
/// Memory of one key of a keyed producer: its zipf weight (a `keys.count` key is hashed
/// as drawn).
const BYTES_PER_KEY: u128 = 8;
/// Memory of one key of a `keys.list` besides: its partition and size, the scenario's
/// copy and the producer's.
const BYTES_PER_LISTED_KEY: u128 = 136;
/// Memory of the process before the run: the binary, the report's buffers.
const BYTES_BASE: u128 = 16_000_000;

/// What drives a part of the estimate, so that a refusal can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// Brokers, the controller and the replication between them.
    Cluster,
    /// The replicas of topic `i` (in `Scenario::topics`).
    Topic(usize),
    /// The records and batches of producer `i` (in `Scenario::producers`).
    Producer(usize),
    /// The members of group `i` (in `Scenario::groups`).
    Group(usize),
    /// The faults, scheduled and drawn by the nemesis.
    Faults,
}

/// A part of the estimate.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    pub driver: Driver,
    pub events: u128,
    pub memory: u128,
}

/// The estimated size of a run.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// Work, in events (records counted at a thirty-second of an event each).
    pub events: u128,
    /// Peak memory, in bytes.
    pub memory: u128,
    pub records: u128,
    pub batches: u128,
    pub nodes: u128,
    /// Simulated time: the workload and the drain.
    pub simulated: Duration,
    pub parts: Vec<Part>,
}

impl Estimate {
    pub fn within_limits(&self) -> bool {
        self.events <= EVENTS_LIMIT && self.memory <= MEMORY_LIMIT
    }
}

/// How many times something that happens every `every` happens in `span`.
fn times(span: Duration, every: Duration) -> u128 {
    u128::from(span.0) / u128::from(every.0.max(1))
}

/// Records one instance of a producer sends in a workload of `duration`.
fn records(workload: Workload, duration: Duration) -> u128 {
    let d = u128::from(duration.0);
    match workload {
        Workload::Rate { count, per } => d * u128::from(count) / u128::from(per.0.max(1)),
        Workload::Messages(n) => u128::from(n),
        Workload::Bursts {
            base,
            base_per,
            burst,
            burst_per,
            every,
            length,
        } => {
            // Bursts start at every multiple of `every` after zero.
            let bursts = d.saturating_sub(1) / u128::from(every.0.max(1));
            let in_bursts = (bursts * u128::from(length.0)).min(d);
            (d - in_bursts) * u128::from(base) / u128::from(base_per.0.max(1))
                + in_bursts * u128::from(burst) / u128::from(burst_per.0.max(1))
        }
    }
}

/// Estimates the run of `s` as written.
pub fn estimate(s: &Scenario) -> Estimate {
    estimate_over(s, s.duration, s.drain)
}

/// Estimates the run of `s` with the workload lasting `duration` and the drain `drain`.
fn estimate_over(s: &Scenario, duration: Duration, drain: Duration) -> Estimate {
    let span = duration + drain;
    let brokers = u128::from(s.brokers);
    let b = &s.broker;
    let mut parts = Vec::new();

    // The internal topic's partitions: one per group at most.
    let offsets_partitions = (s.groups.len() as u128).min(u128::from(b.offsets_topic_num_partitions));
    let offsets_rf = u128::from(b.offsets_topic_replication_factor.min(s.brokers));
    let follower_replicas: u128 = s
        .topics
        .iter()
        .map(|t| u128::from(t.partitions) * u128::from(t.replication_factor - 1))
        .sum::<u128>()
        + offsets_partitions * offsets_rf.saturating_sub(1);
    // A follower fetches from each leader it follows in one request for all partitions.
    let pairs = (brokers * brokers.saturating_sub(1)).min(follower_replicas);
    // An idle fetch waits `*.fetch.wait.max.ms`, and at least a round trip.
    let round_trip = s.latency + s.latency;
    let idle_fetches = times(span, b.replica_fetch_wait_max.max(round_trip));

    // The cluster: the controller's session checks, each broker's heartbeats (timer,
    // request, answer), checkpoints and ISR checks, the followers' idle fetches (request,
    // answer, timeout).
    let per_broker = 3 * times(span, b.broker_heartbeat_interval)
        + 2 * times(span, b.high_watermark_checkpoint_interval)
        + times(span, Duration(b.replica_lag_time_max.0 / 2));
    let offsets_replicas = offsets_partitions * offsets_rf;
    parts.push(Part {
        driver: Driver::Cluster,
        events: times(span, Duration::from_millis(250)) + brokers * per_broker + 3 * pairs * idle_fetches,
        memory: BYTES_BASE
            + (brokers + 1) * BYTES_PER_NODE
            + brokers * brokers * BYTES_PER_LINK
            + offsets_replicas * BYTES_PER_REPLICA,
    });

    // Topics: each replica's state, and the partitions every fetch names.
    for (i, t) in s.topics.iter().enumerate() {
        let replicas = u128::from(t.partitions) * u128::from(t.replication_factor);
        let visits = 3 * idle_fetches * u128::from(t.partitions) * u128::from(t.replication_factor - 1);
        parts.push(Part {
            driver: Driver::Topic(i),
            events: visits / EVENTS_PER_PARTITION_VISIT_DIVISOR,
            memory: replicas * BYTES_PER_REPLICA,
        });
    }

    // Producers: per record, the draw of its key and partition; per batch, the wake that
    // sends it, the request and its answer, each follower's fetch (answer, next request,
    // timeout) and what each group does with it; per millisecond with records due, a wake.
    let mut total_records = 0u128;
    let mut total_batches = 0u128;
    for (i, p) in s.producers.iter().enumerate() {
        let topic = &s.topics[p.topic];
        let instances = u128::from(p.instances);
        let per_instance = records(p.workload, duration);
        let value = (u128::from(p.value_bytes.min) + u128::from(p.value_bytes.max)) / 2;
        let key = p.keys.as_ref().map_or(0, |k| k.name(0).len() as u128);
        let record_bytes = value + key + u128::from(crate::kafka::producer::RECORD_OVERHEAD);
        let per_batch = (u128::from(p.batch_size) / record_bytes.max(1)).max(1);
        // Partitions that hold an open batch at once: every partition a key reaches, or
        // all of them for round robin; one for the sticky partitioners.
        let partitions = u128::from(topic.partitions);
        let open = match (p.partitioner, &p.keys) {
            (Partitioner::RoundRobin | Partitioner::Default23, None) => partitions,
            (Partitioner::RoundRobin, Some(_)) => partitions,
            (Partitioner::UniformSticky, _) => 1,
            (Partitioner::BuiltIn, Some(_)) if p.ignore_keys => 1,
            (_, Some(keys)) => partitions.min(keys.len() as u128),
            (_, None) => 1,
        };
        // A batch closes when full or when it has lingered (at least the 1 ms tick).
        let window = p.linger.max(crate::kafka::producer::SEND_TICK);
        let batches = per_instance.min((per_instance.div_ceil(per_batch)).max(open * times(duration, window)));
        let ticks = per_instance.min(times(duration, crate::kafka::producer::SEND_TICK));
        // Each group reading the topic: the fetch's answer and the next fetch, the
        // processing timer, and a commit after each poll (request, answer, and the
        // offsets partition's replication).
        let reading: u128 = s
            .groups
            .iter()
            .filter(|g| g.topics.contains(&p.topic))
            .map(|g| {
                let processing = u128::from(g.processing > Duration::ZERO);
                let commit = match g.commit {
                    CommitMode::Auto => 0,
                    CommitMode::AfterProcessing | CommitMode::BeforeProcessing => 3 + offsets_rf.saturating_sub(1),
                };
                2 + processing + commit
            })
            .sum();
        let rf = u128::from(topic.replication_factor);
        let events_per_batch = 3 + 3 * (rf - 1) + reading;
        let keys_memory = match &p.keys {
            None => 0,
            Some(k @ Keys::Count(_)) => k.len() as u128 * BYTES_PER_KEY,
            Some(k @ Keys::List(_)) => k.len() as u128 * (BYTES_PER_KEY + BYTES_PER_LISTED_KEY),
        };
        parts.push(Part {
            driver: Driver::Producer(i),
            events: instances * (per_instance / EVENTS_PER_RECORD_DIVISOR + ticks + batches * events_per_batch),
            memory: keys_memory
                + instances
                    * (BYTES_PER_NODE
                        + (brokers + 1) * BYTES_PER_LINK
                        + batches * (rf * BYTES_PER_BATCH_REPLICA + BYTES_PER_BATCH)),
        });
        total_records += instances * per_instance;
        total_batches += instances * batches;
    }

    // Faults: each one may move leaders (every replica changes state, every node learns
    // the new metadata) and rebalance groups (counted with the groups). The nemesis draws at most one per `every` (and heals it).
    let mut faults = s.faults.len() as u128;
    if let Some(n) = &s.nemesis {
        faults += 2 * times(n.until - n.from, n.every.0);
    }
    let replicas: u128 = s
        .topics
        .iter()
        .map(|t| u128::from(t.partitions) * u128::from(t.replication_factor))
        .sum::<u128>()
        + offsets_replicas;
    let members: u128 = s.groups.iter().map(|g| u128::from(g.members)).sum();
    let instances: u128 = s.producers.iter().map(|p| u128::from(p.instances)).sum();
    let nodes = brokers + 1 + instances + members;
    parts.push(Part {
        driver: Driver::Faults,
        events: faults * (replicas + 4 * nodes),
        memory: faults * 512,
    });

    // Groups: each member's heartbeats (timer, request, answer), idle fetches (request,
    // answer) from each broker that leads its partitions, automatic commits, and a
    // rebalance (join, sync, revocation: about 8 events a member) at the start and after
    // every fault.
    for (i, g) in s.groups.iter().enumerate() {
        let m = u128::from(g.members);
        let read: u128 = g.topics.iter().map(|t| u128::from(s.topics[*t].partitions)).sum();
        let sessions = read.min(m * brokers);
        let polls = g.fetch_max_wait.max(round_trip);
        let commits = match g.commit {
            CommitMode::Auto => 4 * m * times(span, g.auto_commit_interval.max(polls)),
            CommitMode::AfterProcessing | CommitMode::BeforeProcessing => 0,
        };
        parts.push(Part {
            driver: Driver::Group(i),
            events: 3 * m * times(span, g.heartbeat_interval)
                + 2 * sessions * times(span, polls)
                + commits
                + 8 * m * (1 + faults)
                + (1 + faults) * m * read / EVENTS_PER_PARTITION_VISIT_DIVISOR,
            memory: m * (BYTES_PER_NODE + (brokers + 1) * BYTES_PER_LINK) + read * 64,
        });
    }

    Estimate {
        events: parts.iter().map(|p| p.events).sum(),
        memory: parts.iter().map(|p| p.memory).sum(),
        records: total_records,
        batches: total_batches,
        nodes,
        simulated: span,
        parts,
    }
}

/// A count in words: `950`, `12 thousand`, `1.5 million`, `15 billion`.
pub fn count_words(n: u128) -> String {
    const UNITS: [(u128, &str); 4] = [
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    for (size, word) in UNITS {
        if n >= size {
            return format!("{} {word}", one_decimal(n, size));
        }
    }
    n.to_string()
}

/// Bytes in words: `950 kB`, `1.5 GB`, `322 GB` (decimal units).
pub fn bytes_words(n: u128) -> String {
    const UNITS: [(u128, &str); 5] = [
        (1_000_000_000_000_000, "PB"),
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    for (size, word) in UNITS {
        if n >= size {
            return format!("{} {word}", one_decimal(n, size));
        }
    }
    format!("{n} bytes")
}

/// `n / unit` with one decimal below ten, none above (integer arithmetic: the same text
/// on every platform).
fn one_decimal(n: u128, unit: u128) -> String {
    let tenths = n * 10 / unit;
    if tenths < 100 && !tenths.is_multiple_of(10) {
        format!("{}.{}", tenths / 10, tenths % 10)
    } else {
        (n / unit).to_string()
    }
}

/// Simulated time in words: `45s`, `3 hours`.
fn time_words(d: Duration) -> String {
    const HOUR: u64 = 3_600_000_000;
    if d.0 >= 2 * HOUR {
        format!("{} hours", d.0 / HOUR)
    } else {
        d.to_string()
    }
}

/// Refuses `s` when its estimate is above a limit, pointing at the key that drives the
/// cost: the duration when the scenario would fit in an hour of simulated time, else the
/// largest part's key (a producer's rate, a group's members, a topic's partitions …).
pub fn enforce(file: &str, raw: &ScenarioFile, s: &Scenario) -> Result<(), InputError> {
    let e = estimate(s);
    if e.within_limits() {
        return Ok(());
    }
    const HOUR: u64 = 3_600_000_000;
    let span = (s.duration + s.drain).0;
    // Scaled to one hour of simulated time, in the proportions written.
    let in_an_hour = span > HOUR && {
        let scale = |d: Duration| Duration((u128::from(d.0) * u128::from(HOUR) / u128::from(span)) as u64);
        estimate_over(s, scale(s.duration), scale(s.drain)).within_limits()
    };
    let score = |p: &Part| (p.events.saturating_mul(MEMORY_LIMIT)).max(p.memory.saturating_mul(EVENTS_LIMIT));
    // The largest part, the first in file order among equals.
    let largest = e
        .parts
        .iter()
        .rev()
        .max_by_key(|p| score(p))
        .expect("the cluster is always a part")
        .driver;
    let (place, advice) = blame(raw, s, if in_an_hour { None } else { Some(largest) });
    let mut over = Vec::new();
    if e.events > EVENTS_LIMIT {
        over.push(format!("{} events", count_words(EVENTS_LIMIT)));
    }
    if e.memory > MEMORY_LIMIT {
        over.push(format!("{} of memory", bytes_words(MEMORY_LIMIT)));
    }
    let message = format!(
        "this run is too large: estimated {} events of work and {} of memory ({} records in {} batches, {} nodes, {} simulated), above kafkasim's limit of {}; {advice}, or pass --allow-huge to run it anyway",
        count_words(e.events),
        bytes_words(e.memory),
        count_words(e.records),
        count_words(e.batches),
        e.nodes,
        time_words(e.simulated),
        over.join(" and "),
    );
    Err(match place {
        Some((line, column)) => InputError::new(file, line, column, message),
        None => InputError::new(file, 0, 0, message),
    })
}

fn at<T>(s: &S<T>) -> Option<(u64, u64)> {
    Some((s.referenced.line(), s.referenced.column()))
}

/// Where the cost comes from, and what to change: `None` blames the duration.
fn blame(raw: &ScenarioFile, s: &Scenario, driver: Option<Driver>) -> (Option<(u64, u64)>, String) {
    let duration = || (raw.duration.as_ref().and_then(at), "shorten `duration`".to_string());
    match driver {
        None => match &raw.drain {
            Some(d) if s.drain > s.duration => (at(d), "shorten `drain`".to_string()),
            _ => duration(),
        },
        // Validation kept every entry (it found no error), so the indices match the file's.
        Some(Driver::Producer(i)) => {
            let spec = &raw.producers[i].value;
            match (&spec.rate, &spec.messages, &spec.burst) {
                (_, Some(m), _) => (at(m), "send fewer `messages`".to_string()),
                (Some(r), _, None) => (at(r), "lower this producer's `rate`".to_string()),
                (_, _, Some(b)) => (at(&b.value.rate), "lower this producer's burst `rate`".to_string()),
                _ => (at(&spec.name), "make this producer's workload smaller".to_string()),
            }
        }
        Some(Driver::Group(i)) => {
            let spec = &raw.consumers[i].value;
            match &spec.members {
                Some(m) => (at(m), "give the group fewer `members`".to_string()),
                None => (at(&spec.group), "make this group smaller".to_string()),
            }
        }
        Some(Driver::Topic(i)) => {
            let spec = &raw.topics[i].value;
            match &spec.partitions {
                Some(p) => (at(p), "give the topic fewer `partitions`".to_string()),
                None => (at(&spec.name), "give the topic fewer partitions".to_string()),
            }
        }
        Some(Driver::Cluster) => match &raw.cluster {
            Some(c) => (at(&c.value.brokers), "use fewer `brokers`".to_string()),
            None => duration(),
        },
        Some(Driver::Faults) => match (&raw.nemesis, raw.faults.first()) {
            (Some(n), _) => (at(&n.value.every), "make the nemesis's `every` longer".to_string()),
            (None, Some(f)) => (at(&f.value.at), "schedule fewer faults".to_string()),
            (None, None) => duration(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name: huge\nduration: 60s\ncluster: { brokers: 3 }\n";

    /// The refusal of `yaml`: its place and message. Lifting the limit accepts it.
    fn refusal(yaml: &str) -> (u64, u64, String) {
        crate::scenario::parse_with_limit("huge.yaml", yaml, &[], Limit::Lifted).expect("valid but for its size");
        let e = crate::scenario::parse("huge.yaml", yaml).expect_err("too large");
        assert!(e.more.is_empty(), "{e}");
        assert!(e.message.contains("pass --allow-huge to run it anyway"), "{e}");
        (e.line, e.column, e.message)
    }

    #[test]
    fn a_long_run_is_refused_at_its_duration() {
        let yaml = "name: huge\nduration: 100000h\ncluster: { brokers: 3 }\ntopics: [{ name: t, replication.factor: 3 }]\nproducers: [{ name: app, topic: t, rate: 1/s }]\n";
        let (line, column, message) = refusal(yaml);
        assert_eq!((line, column), (2, 11), "{message}");
        assert!(
            message.contains("360 million records in 360 million batches"),
            "{message}"
        );
        assert!(message.contains("shorten `duration`"), "{message}");
    }

    #[test]
    fn a_long_drain_is_refused_at_the_drain() {
        let yaml = "name: huge\nduration: 1h\ndrain: 200000h\ncluster: { brokers: 3 }\ntopics: [{ name: t, replication.factor: 3 }]\n";
        let (line, column, message) = refusal(yaml);
        assert_eq!((line, column), (3, 8), "{message}");
        assert!(message.contains("shorten `drain`"), "{message}");
    }

    #[test]
    fn a_high_rate_is_refused_at_the_rate() {
        let yaml =
            format!("{HEAD}topics: [{{ name: t }}]\nproducers: [{{ name: app, topic: t, rate: 1000000000/s }}]\n");
        let (line, column, message) = refusal(&yaml);
        assert_eq!((line, column), (5, 42), "{message}");
        assert!(message.contains("lower this producer's `rate`"), "{message}");
        assert!(
            message.contains("above kafkasim's limit of 8 GB of memory"),
            "{message}"
        );
    }

    #[test]
    fn many_messages_are_refused_at_messages() {
        let yaml =
            format!("{HEAD}topics: [{{ name: t }}]\nproducers: [{{ name: app, topic: t, messages: 1000000000000 }}]\n");
        let (line, column, message) = refusal(&yaml);
        assert_eq!((line, column), (5, 46), "{message}");
        assert!(message.contains("1 trillion records"), "{message}");
    }

    #[test]
    fn busy_members_are_refused_at_the_first_group_s_members() {
        let mut yaml = format!("{HEAD}topics: [{{ name: t }}]\nconsumers:\n");
        for g in 0..40 {
            yaml.push_str(&format!(
                "  - {{ group: g{g}, members: 1000, topics: [t], config: {{ heartbeat.interval.ms: 1 }} }}\n"
            ));
        }
        let (line, column, message) = refusal(&yaml);
        assert_eq!((line, column), (6, 27), "{message}");
        assert!(message.contains("give the group fewer `members`"), "{message}");
        assert!(message.contains("40004 nodes"), "{message}");
    }

    #[test]
    fn many_replicas_are_refused_at_the_partitions() {
        let yaml = "name: huge\nduration: 60s\ncluster: { brokers: 1000 }\ntopics: [{ name: t, partitions: 10000, replication.factor: 1000 }]\n";
        let (line, column, message) = refusal(yaml);
        assert_eq!((line, column), (4, 33), "{message}");
        assert!(message.contains("give the topic fewer `partitions`"), "{message}");
    }

    #[test]
    fn a_small_scenario_is_far_below_the_limits() {
        let yaml = format!("{HEAD}topics: [{{ name: t }}]\nproducers: [{{ name: app, topic: t, rate: 1000/s }}]\n");
        let e = estimate(&crate::scenario::parse("small.yaml", &yaml).expect("valid"));
        assert_eq!(e.records, 60_000);
        assert!(
            e.events < EVENTS_LIMIT / 10_000 && e.memory < MEMORY_LIMIT / 100,
            "{e:?}"
        );
    }

    #[test]
    fn words_are_integer_exact() {
        assert_eq!(count_words(950), "950");
        assert_eq!(count_words(12_345), "12 thousand");
        assert_eq!(count_words(1_500_000), "1.5 million");
        assert_eq!(count_words(15_218_251_000), "15 billion");
        assert_eq!(bytes_words(322_000_000_000), "322 GB");
        assert_eq!(bytes_words(8_000_000_000), "8 GB");
        assert_eq!(bytes_words(1_250_000), "1.2 MB");
    }
}
