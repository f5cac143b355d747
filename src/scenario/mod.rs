//! Scenario files: parsing (serde-saphyr), validation with file/line/column errors, and
//! resolution into a [`Scenario`] with every default applied.

pub mod doc;
pub mod estimate;
pub mod freeze;
pub mod nemesis;
pub mod props;
pub mod schema;
mod validate;
pub mod vary;

pub use estimate::Limit;
pub use validate::{resolve, resolve_limited};

use crate::sim::Duration;
use schema::CommitMode;
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Bad input: a message and, where it applies, the place in the file. When validation
/// finds several mistakes, this is the first in file order and `more` holds the others,
/// in file order too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    /// 1-based line and column; 0 when the error is about the file as a whole.
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The file's other mistakes, after this one.
    pub more: Vec<InputError>,
}

impl InputError {
    pub fn new(file: &str, line: u64, column: u64, message: impl Into<String>) -> InputError {
        InputError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            more: Vec::new(),
        }
    }

    /// Several errors as one: sorted by place (errors about the whole file first; ties keep
    /// the order they were found in), repeats dropped. `None` when there are none.
    pub fn gather(mut errors: Vec<InputError>) -> Option<InputError> {
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.message == b.message);
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.more = errors.collect();
        Some(first)
    }

    /// This error and the ones after it, in file order.
    pub fn all(&self) -> impl Iterator<Item = &InputError> {
        std::iter::once(self).chain(&self.more)
    }

    /// `FILE:LINE:COLUMN: MESSAGE` for this error alone.
    pub fn headline(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!("{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

/// One line per error, in file order.
impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.all().map(InputError::headline).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for InputError {}

/// The known word closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, k)| (*d, *k))
        .map(|(_, k)| k)
}

/// `; did you mean `x`?` when a known word is close to `word`, else nothing.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// ` Did you mean `x`?` (a sentence of its own) when a known word is close, else nothing.
pub fn did_you_mean_sentence<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known)
        .map(|k| format!(" Did you mean `{k}`?"))
        .unwrap_or_default()
}

/// A scenario with every default applied, ready to run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub duration: Duration,
    pub drain: Duration,
    pub brokers: u32,
    pub latency: Duration,
    pub jitter: Duration,
    pub broker: BrokerConfig,
    pub topics: Vec<Topic>,
    pub producers: Vec<Producer>,
    pub groups: Vec<Group>,
    pub faults: Vec<Fault>,
    /// Faults drawn from the seed, added to `faults` when the run starts.
    pub nemesis: Option<Nemesis>,
    /// The settings a sweep varies (a run ignores them).
    pub vary: Vec<Vary>,
    /// The checks that must fail; every other check must pass.
    pub expect_violations: Vec<String>,
    /// Legal but noteworthy settings, shown by `check` and at the top of the report.
    pub warnings: Vec<String>,
    /// Moments at which the report also draws every partition.
    pub pictures: Vec<Duration>,
}

/// The controller's node name.
pub const CONTROLLER: &str = "controller";

#[derive(Debug, Clone, Serialize)]
pub struct BrokerConfig {
    pub broker_session_timeout: Duration,
    pub broker_heartbeat_interval: Duration,
    pub replica_lag_time_max: Duration,
    pub replica_fetch_wait_max: Duration,
    pub replica_fetch_min_bytes: u32,
    pub replica_fetch_max_bytes: u32,
    pub replica_fetch_backoff: Duration,
    pub truncation: crate::kafka::TruncationMode,
    pub offsets_topic_num_partitions: u32,
    pub offsets_topic_replication_factor: u32,
    pub high_watermark_checkpoint_interval: Duration,
    /// `log.flush.interval.messages`; `None` = never (Kafka's default, `Long.MAX_VALUE`).
    pub log_flush_interval_messages: Option<u64>,
    pub group_initial_rebalance_delay: Duration,
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
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
    pub value_bytes: schema::ValueBytes,
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
        let hash = || crate::kafka::partitioner::partition_for_key(key.as_bytes(), partitions);
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

/// A fault with node names checked to exist. A target is a node's name or a role
/// (`leader(orders-0)`, `coordinator(billing)`), resolved when the fault fires.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub at: Duration,
    pub kind: FaultKind,
    /// `for:`: the fault heals after this long (a pause always has it).
    pub lasts: Option<Duration>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Crash(String),
    /// A consumer's clean shutdown: `close()`.
    Stop(String),
    PowerLoss(String),
    Restart(String),
    Pause(String),
    Isolate(String),
    Partition(Vec<Vec<String>>),
    Cut {
        from: String,
        to: String,
    },
    Slow {
        nodes: Vec<String>,
        latency: Duration,
    },
    HealAll,
}

/// A role a fault may name instead of a node, as written: `leader(TOPIC-P)`,
/// `coordinator(GROUP)`. (`controller` is the controller's node name as well.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRef<'a> {
    /// The leader of a partition: topic and partition number.
    Leader(&'a str, u32),
    Coordinator(&'a str),
}

impl<'a> RoleRef<'a> {
    /// The role `text` names, if it is written as one (whether or not it exists).
    pub fn parse(text: &'a str) -> Option<Result<RoleRef<'a>, String>> {
        let (kind, rest) = text.split_once('(')?;
        let Some(arg) = rest.strip_suffix(')') else {
            return Some(Err(format!("`{text}` is missing its closing `)`")));
        };
        Some(match kind {
            "leader" => match arg.rsplit_once('-').map(|(t, p)| (t, p.parse::<u32>())) {
                Some((topic, Ok(p))) => Ok(RoleRef::Leader(topic, p)),
                _ => Err(format!(
                    "`{text}`: write the partition as TOPIC-N, like `leader(orders-0)`"
                )),
            },
            "coordinator" => Ok(RoleRef::Coordinator(arg)),
            other => Err(format!(
                "unknown role `{other}(…)`{}; roles are leader(TOPIC-N), coordinator(GROUP) and controller",
                did_you_mean(other, ["leader", "coordinator"])
            )),
        })
    }
}

/// `nemesis:` with every default applied.
#[derive(Debug, Clone, Serialize)]
pub struct Nemesis {
    pub kinds: Vec<NemesisKind>,
    /// Node names and roles, in the order written (or brokers, then the controller,
    /// then clients, for a named set).
    pub targets: Vec<String>,
    pub every: (Duration, Duration),
    pub lasts: (Duration, Duration),
    pub max_down: u32,
    pub from: Duration,
    pub until: Duration,
    pub slow_latency: (Duration, Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    Crash,
    PowerLoss,
    Pause,
    Partition,
    Isolate,
    Cut,
    Slow,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 7] = [
        NemesisKind::Crash,
        NemesisKind::PowerLoss,
        NemesisKind::Pause,
        NemesisKind::Partition,
        NemesisKind::Isolate,
        NemesisKind::Cut,
        NemesisKind::Slow,
    ];
    pub fn word(self) -> &'static str {
        match self {
            NemesisKind::Crash => "crash",
            NemesisKind::PowerLoss => "power-loss",
            NemesisKind::Pause => "pause",
            NemesisKind::Partition => "partition",
            NemesisKind::Isolate => "isolate",
            NemesisKind::Cut => "cut",
            NemesisKind::Slow => "slow",
        }
    }
}

/// Where a varied setting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaryScope {
    /// Every producer's `config`.
    Producer,
    /// Every topic's `config`.
    Topic,
    /// The cluster's broker `config` (a topic's own value still wins, as in Kafka).
    Broker,
    /// Every consumer group's `config`.
    Group,
    /// A key of `cluster:` itself (`truncation`, `brokers`, `network.latency`, …).
    Cluster,
}

impl VaryScope {
    pub fn parse(word: &str) -> Option<VaryScope> {
        Some(match word {
            "producer" => VaryScope::Producer,
            "topic" => VaryScope::Topic,
            "broker" => VaryScope::Broker,
            "group" => VaryScope::Group,
            "cluster" => VaryScope::Cluster,
            _ => return None,
        })
    }
    pub fn word(self) -> &'static str {
        match self {
            VaryScope::Producer => "producer",
            VaryScope::Topic => "topic",
            VaryScope::Broker => "broker",
            VaryScope::Group => "group",
            VaryScope::Cluster => "cluster",
        }
    }
}

/// The keys of `cluster:` that `vary` and `--set` may change.
pub const CLUSTER_KEYS: &[&str] = &["brokers", "truncation", "network.latency", "network.jitter"];

/// One setting to vary and its values, as written.
#[derive(Debug, Clone, Serialize)]
pub struct Vary {
    pub scope: VaryScope,
    pub key: String,
    pub values: Vec<schema::Scalar>,
}

impl Scenario {
    pub fn broker_name(id: u32) -> String {
        format!("broker-{id}")
    }

    pub fn producer_instance_names(&self, p: &Producer) -> Vec<String> {
        if p.instances == 1 {
            vec![p.name.clone()]
        } else {
            (0..p.instances).map(|i| format!("{}-{i}", p.name)).collect()
        }
    }

    pub fn member_names(g: &Group) -> Vec<String> {
        (0..g.members).map(|i| format!("{}-{i}", g.group)).collect()
    }

    /// Every node name, in node-id order: brokers, the controller, producer instances,
    /// group members.
    pub fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (1..=self.brokers).map(Scenario::broker_name).collect();
        names.push(CONTROLLER.to_string());
        for p in &self.producers {
            names.extend(self.producer_instance_names(p));
        }
        for g in &self.groups {
            names.extend(Scenario::member_names(g));
        }
        names
    }
}

/// Reads, parses and validates a scenario file; the size limit applies.
pub fn load(path: &Path) -> Result<Scenario, InputError> {
    load_limited(path, Limit::Enforced)
}

/// Reads, parses and validates a scenario file; `limit` says whether the size limit
/// applies (`--allow-huge` lifts it).
pub fn load_limited(path: &Path, limit: Limit) -> Result<Scenario, InputError> {
    let file = path.display().to_string();
    parse_with_limit(&file, &read(path)?, &[], limit)
}

/// Reads a scenario file's text.
pub fn read(path: &Path) -> Result<String, InputError> {
    let file = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| InputError::new(&file, 0, 0, format!("cannot read the scenario: {e}")))?;
    decode(&file, bytes)
}

/// A scenario file's bytes as text; bytes that are not UTF-8 are an error at their place.
pub fn decode(file: &str, bytes: Vec<u8>) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // Everything before `at` is valid, so lines and columns count characters there.
        let before = std::str::from_utf8(&bytes[..at]).expect("valid up to here");
        let line = before.matches('\n').count() as u64 + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
        let bad = e.utf8_error().error_len().unwrap_or(bytes.len() - at);
        let shown: Vec<String> = bytes[at..at + bad].iter().map(|b| format!("0x{b:02X}")).collect();
        InputError::new(
            file,
            line,
            column,
            format!(
                "the file is not UTF-8 text: {} here {} not UTF-8; save the file as UTF-8",
                shown.join(" "),
                if bad == 1 { "is" } else { "are" }
            ),
        )
    })
}

/// Parses and validates scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, InputError> {
    parse_with(file, text, &[])
}

/// Parses scenario text without validating it.
pub fn parse_raw(file: &str, text: &str) -> Result<schema::ScenarioFile, InputError> {
    serde_saphyr::from_str(text).map_err(|e| yaml_error(file, text, &e))
}

/// Parses scenario text, writes `settings` into it (one variant), and validates it; the
/// size limit applies.
pub fn parse_with(file: &str, text: &str, settings: &[vary::Setting]) -> Result<Scenario, InputError> {
    parse_with_limit(file, text, settings, Limit::Enforced)
}

/// Parses scenario text, writes `settings` into it (one variant), and validates it;
/// `limit` says whether the size limit applies.
pub fn parse_with_limit(
    file: &str,
    text: &str,
    settings: &[vary::Setting],
    limit: Limit,
) -> Result<Scenario, InputError> {
    let mut raw = parse_raw(file, text)?;
    vary::apply(file, &mut raw, settings)?;
    resolve_limited(file, raw, limit).map_err(|mut e| {
        // Only a `--set` value has no place in the file.
        let given: Vec<String> = settings.iter().map(|s| format!("--set {s}")).collect();
        let mark = |e: &mut InputError| {
            if e.line == 0 && !settings.is_empty() {
                e.message.push_str(&format!(" (given by {})", given.join(" ")));
            }
        };
        mark(&mut e);
        e.more.iter_mut().for_each(mark);
        e
    })
}

fn yaml_error(file: &str, text: &str, err: &serde_saphyr::Error) -> InputError {
    let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    InputError::new(file, line, column, yaml_message(err, &found_at(text, line, column)))
}

/// What the YAML at `line:column` of `text` is, in words: "a list", "a mapping", or
/// the value itself.
fn found_at(text: &str, line: u64, column: u64) -> String {
    let Some(l) = text.lines().nth((line as usize).wrapping_sub(1)) else {
        return "nothing".to_string();
    };
    let rest: String = l.chars().skip((column as usize).saturating_sub(1)).collect();
    let rest = rest.trim();
    let plain = !rest.starts_with(['"', '\'']);
    if rest.starts_with('[') || rest == "-" || rest.starts_with("- ") {
        "a list".to_string()
    } else if rest.starts_with('{') || (plain && (rest.contains(": ") || rest.ends_with(':'))) {
        "a mapping".to_string()
    } else if rest.is_empty() || rest.starts_with('#') {
        "nothing".to_string()
    } else {
        let value: String = rest
            .chars()
            .take_while(|c| !matches!(c, ',' | ']' | '}' | '#'))
            .collect();
        format!("`{}`", value.trim())
    }
}

/// The parser's messages, reworded for people: unknown keys and values get a "did you
/// mean", type names become words, and what was found is named. `found` describes what
/// stands at the error's place.
fn yaml_message(err: &serde_saphyr::Error, found: &str) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    // An alias bomb ("billion laughs"): a few lines whose aliases expand to gigabytes.
    let expands = |what: &str| {
        format!(
            "the file expands to {what}: its aliases (`*name`) repeat anchored values (`&name`) too many times; a scenario needs no such repetition"
        )
    };
    // The error itself, out of the wrappers that add a snippet or an alias's places.
    let mut inner = err;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = inner {
        inner = error;
    }
    match inner {
        E::Unexpected { expected, .. } => {
            let wanted = match *expected {
                "mapping start" => "a mapping (`key: value` pairs)",
                "sequence start" => "a list (`- item` lines, or `[a, b]`)",
                "string scalar" | "scalar" => "a single value",
                other => other,
            };
            format!("expected {wanted} here, found {found}")
        }
        E::ExternallyTaggedEnumExpectedScalarOrMapping { .. } => {
            format!("expected a single word here, found {found}")
        }
        E::SerdeInvalidType {
            unexpected, expected, ..
        } => {
            let what = match unexpected.as_str() {
                "sequence" => "a list".to_string(),
                "map" => "a mapping".to_string(),
                "unit value" => "nothing".to_string(),
                other => format!("the {other}"),
            };
            format!("expected {expected} here, found {what}")
        }
        E::MultipleDocuments { .. } => {
            "a `---` line starts a second YAML document here; a scenario file holds one".to_string()
        }
        E::Eof { .. } => "the file ends in the middle of a value".to_string(),
        E::UnknownAnchor { .. } => "this alias (`*name`) names no anchor (`&name`) written before it".to_string(),
        E::Budget { breach, .. } => match breach {
            B::ScalarBytes { total_scalar_bytes } => {
                expands(&format!("more than {} MB of text", total_scalar_bytes / 1_000_000))
            }
            B::Nodes { nodes } => expands(&format!("more than {} values", nodes.saturating_sub(1))),
            B::Aliases { aliases } => expands(&format!("more than {} aliases", aliases.saturating_sub(1))),
            B::AliasAnchorRatio { aliases, anchors } => expands(&format!("{aliases} aliases for {anchors} anchors")),
            B::RecordedAnchorEvents { .. } | B::RecordedAnchorBytes { .. } => expands("too much anchored content"),
            B::Depth { depth } => {
                format!("lists and mappings are nested {depth} deep here; a scenario needs a few levels")
            }
            _ => "the file is too large to read as a scenario".to_string(),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => expands("too much content"),
        E::SerdeUnknownField { field, expected, .. } => format!(
            "unknown key `{field}`; known keys here: {}.{}",
            expected.join(", "),
            did_you_mean_sentence(field, expected.iter().copied())
        ),
        E::SerdeUnknownVariant { variant, expected, .. } => format!(
            "unknown value `{variant}`; write one of {}.{}",
            expected.join(", "),
            did_you_mean_sentence(variant, expected.iter().copied())
        ),
        E::SerdeMissingField { field, .. } => format!("missing required key `{field}` in this mapping"),
        E::InvalidScalar { ty, .. } => {
            let wanted = match *ty {
                "bool" => "true or false".to_string(),
                t if t.starts_with('u') => "a whole number, 0 or more".to_string(),
                t if t.starts_with('i') => "a whole number".to_string(),
                t => format!("a valid {t}"),
            };
            format!("expected {wanted} here")
        }
        E::DuplicateMappingKey { key: Some(k), .. } => format!("`{k}` is written twice in one mapping"),
        E::DuplicateMappingKey { key: None, .. } => "a key is written twice in one mapping".to_string(),
        _ => {
            let rendered = err.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
            });
            let mut msg = rendered.lines().next().unwrap_or("").trim().to_string();
            if let Some(i) = msg.rfind(" at line ") {
                msg.truncate(i);
            }
            msg
        }
    }
}
