//! Validation: from the parsed file to a [`Scenario`], or every error with its place.
//!
//! Errors are gathered, not returned at the first: each topic, producer, group, fault and
//! setting is checked on its own, and the errors are reported in file order. A check that
//! depends on something already found wrong (a producer of a topic whose definition has an
//! error, a fault naming a member of a group whose `members` is wrong) stays silent, so
//! that one mistake gives one message.

use super::estimate::Limit;
use super::props::{self, Kind, Scope};
use super::schema::{self, CommitMode, Props, S, Scalar, ScenarioFile};
use super::{
    Acks, BrokerConfig, CONTROLLER, Fault, FaultKind, Group, InputError, KeyDistribution, Keys, Nemesis, NemesisKind,
    OffsetReset, Partitioner, Producer, RoleRef, Scenario, Topic, Vary, VaryScope, Workload, did_you_mean,
    did_you_mean_sentence,
};
use crate::check::CHECKS;
use crate::kafka::TruncationMode;
use crate::sim::Duration;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// An item's check stopped: its error is recorded in the [`Ctx`], or it depends on an
/// item whose error is.
#[derive(Debug)]
struct Stop;

type R<T> = Result<T, Stop>;

struct Ctx<'a> {
    file: &'a str,
    warnings: RefCell<Vec<String>>,
    errors: RefCell<Vec<InputError>>,
}

impl Ctx<'_> {
    /// Records an error at `at`.
    fn report<U>(&self, at: &S<U>, message: impl Into<String>) {
        self.report_at(at.referenced.line(), at.referenced.column(), message);
    }
    fn report_at(&self, line: u64, column: u64, message: impl Into<String>) {
        self.errors
            .borrow_mut()
            .push(InputError::new(self.file, line, column, message));
    }
    /// Records an error at `at` and stops the check that found it.
    fn err<T, U>(&self, at: &S<U>, message: impl Into<String>) -> R<T> {
        self.report(at, message);
        Err(Stop)
    }
    /// How many errors are recorded so far: a mark to compare with later.
    fn mark(&self) -> usize {
        self.errors.borrow().len()
    }
    /// Whether an error was recorded since `mark`.
    fn failed_since(&self, mark: usize) -> bool {
        self.errors.borrow().len() > mark
    }
    fn warn<U>(&self, at: &S<U>, message: impl Into<String>) {
        let (line, column) = (at.referenced.line(), at.referenced.column());
        let place = if line == 0 {
            String::new()
        } else {
            format!("{line}:{column}:")
        };
        self.warnings
            .borrow_mut()
            .push(format!("{}:{place} {}", self.file, message.into()));
    }
}

/// The properties of one `config:` block, checked against the table.
struct Config<'a> {
    values: BTreeMap<&'static str, &'a S<Scalar>>,
    /// Known properties whose value was refused (and reported).
    refused: Vec<&'static str>,
}

impl Config<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        match self.values.get(name).map(|s| &s.value) {
            Some(Scalar::Int(i)) => Some(*i),
            _ => None,
        }
    }
    fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).map(|s| s.value.to_string())
    }
    fn bool(&self, name: &str) -> Option<bool> {
        match self.values.get(name).map(|s| &s.value) {
            Some(Scalar::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    fn ms(&self, name: &str, default_ms: u64) -> Duration {
        Duration::from_millis(self.int(name).map(|v| v.max(0) as u64).unwrap_or(default_ms))
    }
    fn spanned(&self, name: &str) -> Option<&S<Scalar>> {
        self.values.get(name).copied()
    }
    /// Whether none of `names` had its value refused: a check that combines properties
    /// is made only then, so that a wrong value does not make a right one look wrong.
    fn fine(&self, names: &[&str]) -> bool {
        !self.refused.iter().any(|r| names.contains(r))
    }
}

/// Checks every property of `block`; the valid ones are kept.
fn config<'a>(ctx: &Ctx, scope: Scope, block: &'a Props) -> Config<'a> {
    let mut values = BTreeMap::new();
    let mut refused = Vec::new();
    for (key, value) in &block.0 {
        let name = key.value.as_str();
        if let Some(why) = props::removed(scope, name) {
            ctx.report(key, format!("`{name}` was removed in Kafka 4.0: {why}"));
            continue;
        }
        let Some(prop) = props::lookup(scope, name) else {
            let elsewhere = [Scope::Broker, Scope::Topic, Scope::Producer, Scope::Consumer]
                .into_iter()
                .find(|s| *s != scope && props::lookup(*s, name).is_some());
            let hint = match elsewhere {
                Some(s) => format!("; `{name}` belongs under `{}`", s.key()),
                None => did_you_mean(name, props::names(scope)),
            };
            ctx.report(key, format!("unknown {} property `{name}`{hint}", scope_word(scope)));
            continue;
        };
        let ok = match (&prop.kind, &value.value) {
            (Kind::Int { min }, Scalar::Int(i)) => *i >= *min && *i <= i64::from(i32::MAX),
            (Kind::Long { min }, Scalar::Int(i)) => *i >= *min,
            (Kind::Int { .. } | Kind::Long { .. }, _) => false,
            (Kind::Bool, Scalar::Bool(_)) => true,
            (Kind::Bool, _) => false,
            (Kind::Choice(options), v) => options.contains(&v.to_string().as_str()),
            (Kind::Text, _) => true,
        };
        if !ok {
            let wanted = match prop.kind {
                Kind::Int { min } => format!("a whole number from {min} to {}", i32::MAX),
                Kind::Long { min } => format!("a whole number of at least {min}"),
                Kind::Bool => "true or false".to_string(),
                Kind::Choice(options) => format!("one of {}", options.join(", ")),
                Kind::Text => "text".to_string(),
            };
            ctx.report(
                value,
                format!("`{name}` must be {wanted}, not {}", value.value.as_written()),
            );
            refused.push(prop.name);
            continue;
        }
        if !prop.modelled && value.value.to_string() != prop.default {
            ctx.report(
                value,
                format!(
                    "not supported yet: kafkasim knows `{name}` but does not model it yet; remove it (Kafka's default is {})",
                    prop.default
                ),
            );
            refused.push(prop.name);
            continue;
        }
        if values.contains_key(prop.name) {
            ctx.report(key, format!("`{name}` is set twice"));
            continue;
        }
        values.insert(prop.name, value);
    }
    Config { values, refused }
}

fn scope_word(scope: Scope) -> &'static str {
    match scope {
        Scope::Broker => "broker",
        Scope::Topic => "topic",
        Scope::Producer => "producer",
        Scope::Consumer => "consumer",
    }
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Checks a parsed scenario and applies every default; the size limit applies.
pub fn resolve(file: &str, raw: ScenarioFile) -> Result<Scenario, InputError> {
    resolve_limited(file, raw, Limit::Enforced)
}

/// Checks a parsed scenario and applies every default; then, unless `limit` lifts it,
/// refuses a scenario whose estimated size is above kafkasim's limits (only a scenario
/// without errors is estimated).
pub fn resolve_limited(file: &str, raw: ScenarioFile, limit: Limit) -> Result<Scenario, InputError> {
    let ctx = Ctx {
        file,
        warnings: RefCell::new(Vec::new()),
        errors: RefCell::new(Vec::new()),
    };
    let resolved = resolve_in(&ctx, &raw);
    if let Some(e) = InputError::gather(ctx.errors.take()) {
        return Err(e);
    }
    let mut scenario = resolved.expect("a check stops only with an error recorded");
    scenario.warnings = ctx.warnings.take();
    if limit == Limit::Enforced {
        super::estimate::enforce(file, &raw, &scenario)?;
    }
    Ok(scenario)
}

/// What the checks of the topics leave for the checks after them.
struct Topics {
    valid: Vec<Topic>,
    /// Topics that are defined but whose definition has an error: naming them is no error.
    broken: Vec<String>,
}

impl Topics {
    /// The index of topic `name`; an error when no topic has that name.
    fn index(&self, ctx: &Ctx, name: &S<String>) -> R<usize> {
        if let Some(i) = self.valid.iter().position(|t| t.name == name.value) {
            return Ok(i);
        }
        if self.broken.contains(&name.value) {
            return Err(Stop);
        }
        let known = self
            .valid
            .iter()
            .map(|t| t.name.as_str())
            .chain(self.broken.iter().map(String::as_str));
        ctx.err(
            name,
            format!("unknown topic `{}`{}", name.value, did_you_mean(&name.value, known)),
        )
    }
}

fn resolve_in(ctx: &Ctx, raw: &ScenarioFile) -> R<Scenario> {
    let missing = |key: &str, example: &str| {
        ctx.report_at(1, 1, format!("the scenario has no `{key}`: add one, e.g. `{example}`"));
    };
    let name = raw.name.as_ref();
    match name {
        None => missing("name", "name: my-scenario"),
        Some(name) if !is_kebab(&name.value) => ctx.report(
            name,
            format!(
                "scenario name `{}` must be kebab-case, like `isr-min-insync-2`",
                name.value
            ),
        ),
        Some(_) => {}
    }
    let duration = match &raw.duration {
        None => {
            missing("duration", "duration: 60s");
            None
        }
        Some(d) if d.value.0 == Duration::ZERO => {
            ctx.report(d, "`duration` must be more than zero");
            None
        }
        Some(d) => Some(d.value.0),
    };
    let drain = raw
        .drain
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(Duration::from_millis(30_000));
    // The end of the run, when the duration is known.
    let end = duration.map(|d| d + drain);

    // Cluster.
    let raw_cluster = raw.cluster.as_ref();
    if raw_cluster.is_none() {
        missing("cluster", "cluster: { brokers: 3 }");
    }
    let no_props = Props::default();
    let cluster = raw_cluster.map(|c| &c.value);
    let brokers = match cluster.map(|c| &c.brokers) {
        None => None,
        Some(b) if b.value == 0 || b.value > 1000 => {
            ctx.report(b, format!("`brokers` must be between 1 and 1000, not {}", b.value));
            None
        }
        Some(b) => Some(b.value),
    };
    // KRaft voters: one controller (that never fails) or a Raft quorum.
    let controllers = match cluster.and_then(|c| c.controllers.as_ref()) {
        None => 1,
        Some(c) if c.value == 0 || c.value > 9 => {
            ctx.report(c, format!("`controllers` must be between 1 and 9, not {}", c.value));
            1
        }
        Some(c) => c.value,
    };
    let network = cluster.and_then(|c| c.network.as_ref());
    let latency = network
        .and_then(|n| n.latency.as_ref())
        .map(|d| d.value.0)
        .unwrap_or(Duration::from_millis(1));
    if let Some(l) = network.and_then(|n| n.latency.as_ref())
        && l.value.0 == Duration::ZERO
    {
        ctx.report(
            l,
            "`latency` must be more than zero: a message takes time to cross the network",
        );
    }
    let jitter = network
        .and_then(|n| n.jitter.as_ref())
        .map(|d| d.value.0)
        .unwrap_or(Duration::ZERO);
    let truncation = match cluster.and_then(|c| c.truncation.as_ref()) {
        None => TruncationMode::LeaderEpoch,
        Some(t) => match t.value.as_str() {
            "leader-epoch" => TruncationMode::LeaderEpoch,
            "kip-101" => TruncationMode::Kip101,
            "high-watermark" => TruncationMode::HighWatermark,
            other => {
                const MODES: [&str; 3] = ["leader-epoch", "kip-101", "high-watermark"];
                ctx.report(
                    t,
                    format!(
                        "unknown truncation mode `{other}`{}; one of {}",
                        did_you_mean(other, MODES),
                        MODES.join(", ")
                    ),
                );
                TruncationMode::LeaderEpoch
            }
        },
    };
    // KIP-966 is on for a new Kafka 4.1 cluster; the historical truncation modes replay
    // clusters from before it.
    let elr_version = cluster
        .and_then(|c| c.features.as_ref())
        .and_then(|f| f.eligible_leader_replicas_version.as_ref());
    let eligible_leader_replicas = match elr_version {
        None => truncation == TruncationMode::LeaderEpoch,
        Some(v) if v.value > 1 => {
            ctx.report(
                v,
                format!(
                    "`eligible.leader.replicas.version` must be 0 (off) or 1 (on, Kafka 4.1's default), not {}",
                    v.value
                ),
            );
            false
        }
        Some(v) if v.value == 1 && truncation != TruncationMode::LeaderEpoch => {
            ctx.report(
                v,
                "eligible leader replicas (KIP-966) need Kafka 4's protocol: they cannot be combined with a historical `truncation` mode",
            );
            false
        }
        Some(v) => v.value == 1,
    };
    let bc = config(ctx, Scope::Broker, cluster.map_or(&no_props, |c| &c.config));
    let broker_min_isr = bc.int("min.insync.replicas").unwrap_or(1) as u32;
    let default_rf = bc.int("default.replication.factor").unwrap_or(1) as u32;
    // `None` when `num.partitions` is wrong: then a topic without `partitions` has an
    // unknown count.
    let mut default_partitions = Some(bc.int("num.partitions").unwrap_or(1) as u32);
    if default_partitions > Some(10_000) {
        let at = bc.spanned("num.partitions").expect("set");
        ctx.report(at, "`num.partitions` must be between 1 and 10000 in kafkasim");
        default_partitions = None;
    }
    if let Some(at) = bc.spanned("offsets.topic.num.partitions")
        && bc.int("offsets.topic.num.partitions").unwrap_or(50) > 10_000
    {
        ctx.report(
            at,
            "`offsets.topic.num.partitions` must be between 1 and 10000 in kafkasim",
        );
    }
    let broker_flush_messages = bc.int("log.flush.interval.messages").map(|v| v as u64);
    let broker_unclean = bc.bool("unclean.leader.election.enable").unwrap_or(false);
    let broker = BrokerConfig {
        broker_session_timeout: bc.ms("broker.session.timeout.ms", 9000),
        broker_heartbeat_interval: bc.ms("broker.heartbeat.interval.ms", 2000),
        replica_lag_time_max: bc.ms("replica.lag.time.max.ms", 30_000),
        replica_fetch_wait_max: bc.ms("replica.fetch.wait.max.ms", 500),
        replica_fetch_min_bytes: bc.int("replica.fetch.min.bytes").unwrap_or(1) as u32,
        replica_fetch_max_bytes: bc.int("replica.fetch.max.bytes").unwrap_or(1_048_576) as u32,
        replica_fetch_backoff: bc.ms("replica.fetch.backoff.ms", 1000),
        truncation,
        offsets_topic_num_partitions: bc.int("offsets.topic.num.partitions").unwrap_or(50) as u32,
        offsets_topic_replication_factor: bc.int("offsets.topic.replication.factor").unwrap_or(3) as u32,
        high_watermark_checkpoint_interval: bc.ms("replica.high.watermark.checkpoint.interval.ms", 5000),
        log_flush_interval_messages: broker_flush_messages,
        group_initial_rebalance_delay: bc.ms("group.initial.rebalance.delay.ms", 3000),
        group_min_session_timeout: bc.ms("group.min.session.timeout.ms", 6000),
        group_max_session_timeout: bc.ms("group.max.session.timeout.ms", 1_800_000),
        eligible_leader_replicas,
        controlled_shutdown: bc.bool("controlled.shutdown.enable").unwrap_or(true),
        leader_imbalance_check_interval: bc.bool("auto.leader.rebalance.enable").unwrap_or(true).then(|| {
            Duration::from_millis(1000 * bc.int("leader.imbalance.check.interval.seconds").unwrap_or(300) as u64)
        }),
    };

    // Topics.
    if raw.topics.is_empty() {
        let message = "the scenario has no `topics`: add at least one";
        match name {
            Some(name) => ctx.report(name, message),
            None => ctx.report_at(1, 1, message),
        }
    }
    let mut topics = Topics {
        valid: Vec::new(),
        broken: Vec::new(),
    };
    for t in &raw.topics {
        let spec = &t.value;
        let name = spec.name.value.clone();
        let mark = ctx.mark();
        if !is_identifier(&name) || name.starts_with("__") {
            ctx.report(
                &spec.name,
                format!("`{name}` is not a valid topic name (letters, digits, `.`, `_`, `-`; no leading `__`)"),
            );
        }
        if topics.valid.iter().any(|x| x.name == name) || topics.broken.contains(&name) {
            // The first definition stands; this one is only the repetition.
            ctx.report(&spec.name, format!("topic `{name}` is defined twice"));
            continue;
        }
        let partitions = match &spec.partitions {
            Some(p) if p.value == 0 || p.value > 10_000 => {
                ctx.report(p, format!("`partitions` must be between 1 and 10000, not {}", p.value));
                None
            }
            Some(p) => Some(p.value),
            None => default_partitions,
        };
        let rf = spec.replication_factor.as_ref().map(|r| r.value).unwrap_or(default_rf);
        let mut rf_known = true;
        if rf == 0 {
            let at = spec.replication_factor.as_ref().expect("zero only when written");
            ctx.report(at, "`replication.factor` must be at least 1");
            rf_known = false;
        }
        if let Some(brokers) = brokers
            && rf > brokers
        {
            let message = format!(
                "replication factor {rf} is larger than the number of brokers ({brokers}): Kafka refuses to create topic `{name}` (INVALID_REPLICATION_FACTOR)"
            );
            match (&spec.replication_factor, raw_cluster) {
                (Some(r), _) => ctx.report(r, message),
                (None, Some(c)) => ctx.report(c, message),
                (None, None) => {}
            }
            rf_known = false;
        }
        let replicas = match &spec.replicas {
            None => None,
            Some(list) => {
                if let Some(partitions) = partitions
                    && list.value.len() != partitions as usize
                {
                    ctx.report(
                        list,
                        format!(
                            "`replicas` lists {} partitions but the topic has {partitions}",
                            list.value.len()
                        ),
                    );
                }
                let mut out = Vec::new();
                for brokers_of in &list.value {
                    let ids: Vec<u32> = brokers_of.iter().map(|b| b.value).collect();
                    if rf_known && ids.len() != rf as usize {
                        ctx.report(
                            list,
                            format!(
                                "every partition needs {rf} replicas (the replication factor), but one lists {}",
                                ids.len()
                            ),
                        );
                    }
                    for (i, b) in brokers_of.iter().enumerate() {
                        if let Some(brokers) = brokers
                            && (b.value == 0 || b.value > brokers)
                        {
                            ctx.report(
                                b,
                                format!("broker {} does not exist: brokers are 1..={brokers}", b.value),
                            );
                        }
                        if ids[..i].contains(&b.value) {
                            ctx.report(b, format!("broker {} is listed twice for one partition", b.value));
                        }
                    }
                    out.push(ids);
                }
                Some(out)
            }
        };
        let tc = config(ctx, Scope::Topic, &spec.config);
        let min_isr = tc
            .int("min.insync.replicas")
            .map(|v| v as u32)
            .unwrap_or(broker_min_isr);
        if min_isr > rf && rf_known {
            let message = format!(
                "min.insync.replicas={min_isr} is above the replication factor {rf} of topic `{name}`: Kafka accepts it, and since 3.7 it caps the requirement at the replication factor"
            );
            match tc.spanned("min.insync.replicas") {
                Some(at) => ctx.warn(at, message),
                None => ctx.warn(&spec.name, message),
            }
        }
        match partitions {
            Some(partitions) if !ctx.failed_since(mark) => topics.valid.push(Topic {
                name,
                partitions,
                replication_factor: rf,
                replicas,
                min_insync_replicas: min_isr,
                flush_messages: tc.int("flush.messages").map(|v| v as u64).or(broker_flush_messages),
                unclean_leader_election: tc.bool("unclean.leader.election.enable").unwrap_or(broker_unclean),
            }),
            _ => topics.broken.push(name),
        }
    }

    // Node names must be unique across brokers, producers and group members. They are
    // kept in node order, and in a set to look them up (a large scenario has hundreds of
    // thousands).
    let mut node_names: Vec<String> = (1..=brokers.unwrap_or(0)).map(Scenario::broker_name).collect();
    node_names.extend(crate::kafka::config::controller_names(controllers));
    let mut node_set: BTreeSet<String> = node_names.iter().cloned().collect();
    // Names whose nodes are unknown because of an error: `brokers` is wrong (`broker-N`),
    // or a producer's `instances` or a group's `members` is (`NAME-N`).
    let mut unknown_prefixes: Vec<String> = Vec::new();
    if brokers.is_none() {
        unknown_prefixes.push("broker-".to_string());
    }
    let claim = |(node_names, node_set): (&mut Vec<String>, &mut BTreeSet<String>),
                 at: &S<String>,
                 names: Vec<String>| {
        for n in names {
            if !node_set.insert(n.clone()) {
                ctx.report(at, format!("node name `{n}` is already taken: names must be unique across brokers, producers and group members"));
                return;
            }
            node_names.push(n);
        }
    };

    // Producers.
    let mut producers = Vec::new();
    for p in &raw.producers {
        let spec = &p.value;
        let mark = ctx.mark();
        if !is_kebab(&spec.name.value) {
            ctx.report(
                &spec.name,
                format!("producer name `{}` must be kebab-case", spec.name.value),
            );
        }
        let instances = match &spec.instances {
            Some(i) if i.value == 0 || i.value > 1000 => {
                ctx.report(i, format!("`instances` must be between 1 and 1000, not {}", i.value));
                unknown_prefixes.push(format!("{}-", spec.name.value));
                None
            }
            Some(i) => Some(i.value),
            None => Some(1),
        };
        let names = match instances {
            Some(1) | None => vec![spec.name.value.clone()],
            Some(n) => (0..n).map(|i| format!("{}-{i}", spec.name.value)).collect(),
        };
        claim((&mut node_names, &mut node_set), &spec.name, names);
        let topic = topics.index(ctx, &spec.topic).ok();
        let workload = match (&spec.rate, &spec.messages) {
            (Some(_), Some(m)) => ctx.err(m, "write either `rate` or `messages`, not both"),
            (None, _) if spec.burst.is_some() => {
                ctx.err(spec.burst.as_ref().expect("checked"), "`burst` needs a base `rate`")
            }
            (None, None) => ctx.err(
                p,
                "this producer has no workload: add `rate: 1000/s` or `messages: 5000`",
            ),
            (Some(rate), None) => {
                let base = parse_rate(ctx, rate);
                match &spec.burst {
                    None => base,
                    Some(b) => {
                        let burst = parse_rate(ctx, &b.value.rate);
                        let (every, length) = (b.value.every.value.0, b.value.length.value.0);
                        let mut timing = Ok(());
                        if every == Duration::ZERO {
                            timing = ctx.err(&b.value.every, "`burst.every` must be more than zero");
                        } else if length == Duration::ZERO || length >= every {
                            timing = ctx.err(
                                &b.value.length,
                                "`burst.for` must be more than zero and less than `burst.every`",
                            );
                        }
                        match (base, burst, timing) {
                            (
                                Ok(Workload::Rate {
                                    count: base,
                                    per: base_per,
                                }),
                                Ok(Workload::Rate {
                                    count: burst,
                                    per: burst_per,
                                }),
                                Ok(()),
                            ) => Ok(Workload::Bursts {
                                base,
                                base_per,
                                burst,
                                burst_per,
                                every,
                                length,
                            }),
                            _ => Err(Stop),
                        }
                    }
                }
            }
            (None, Some(m)) => {
                if m.value <= 0 {
                    ctx.err(m, format!("`messages` must be more than zero, not {}", m.value))
                } else {
                    Ok(Workload::Messages(m.value as u64))
                }
            }
        };
        let mut key_distribution = KeyDistribution::Uniform;
        let keys: R<Option<Keys>> = match &spec.keys {
            None => Ok(None),
            Some(k) => {
                let mark = ctx.mark();
                if let Some(d) = &k.value.distribution {
                    match d.value.as_str() {
                        "uniform" => {}
                        "zipf" => {
                            let exponent = k.value.exponent.as_ref().map(|e| e.value).unwrap_or(1.0);
                            key_distribution = KeyDistribution::Zipf { exponent };
                        }
                        other => ctx.report(
                            d,
                            format!(
                                "unknown key distribution `{other}`{}; one of uniform, zipf",
                                did_you_mean(other, ["uniform", "zipf"])
                            ),
                        ),
                    }
                }
                if let Some(e) = &k.value.exponent {
                    let zipf_written = k.value.distribution.as_ref().is_some_and(|d| d.value == "zipf");
                    let distribution_wrong = k
                        .value
                        .distribution
                        .as_ref()
                        .is_some_and(|d| !matches!(d.value.as_str(), "zipf" | "uniform"));
                    if !zipf_written && !distribution_wrong {
                        ctx.report(e, "`exponent` applies to `distribution: zipf` only");
                    } else if !(e.value > 0.0 && e.value <= 10.0) {
                        ctx.report(
                            e,
                            format!(
                                "the zipf `exponent` must be more than 0 and at most 10, not {}",
                                e.value
                            ),
                        );
                    }
                }
                let list = match (&k.value.count, &k.value.list) {
                    (Some(_), Some(list)) => ctx.err(list, "write either `keys.count` or `keys.list`, not both"),
                    (None, None) => ctx.err(
                        k,
                        "`keys` needs `count: N` or `list: [...]` (leave `keys` out for null keys)",
                    ),
                    (Some(count), None) => {
                        if count.value == 0 || count.value > 10_000_000 {
                            ctx.err(
                                count,
                                "`keys.count` must be between 1 and 10000000 (leave `keys` out for null keys)",
                            )
                        } else if key_distribution != KeyDistribution::Uniform && count.value > 1_000_000 {
                            ctx.err(count, "zipf keys: `keys.count` must be at most 1000000")
                        } else {
                            Ok(Keys::Count(count.value))
                        }
                    }
                    (None, Some(list)) => {
                        if list.value.is_empty() {
                            ctx.err(list, "`keys.list` needs at least one key")
                        } else {
                            Ok(Keys::List(list.value.clone()))
                        }
                    }
                };
                match list {
                    Ok(list) if !ctx.failed_since(mark) => Ok(Some(list)),
                    _ => Err(Stop),
                }
            }
        };
        let value_bytes = spec
            .value_bytes
            .as_ref()
            .map(|v| v.value)
            .unwrap_or(schema::ValueBytes { min: 100, max: 100 });
        let hot_share = match spec.keys.as_ref().and_then(|k| k.value.hot_share.as_ref()) {
            Some(h) if h.value > 100 => {
                ctx.report(h, "`hot-share` is a percentage: 0 to 100");
                0
            }
            Some(h) => h.value,
            None => 0,
        };
        let pc = config(ctx, Scope::Producer, &spec.config);
        let acks = match pc.text("acks").as_deref() {
            None | Some("all") | Some("-1") => Acks::All,
            Some("1") => Acks::One,
            Some(_) => Acks::Zero,
        };
        let max_in_flight = pc.int("max.in.flight.requests.per.connection").unwrap_or(5) as u32;
        let idempotence = match pc.bool("enable.idempotence") {
            Some(true) => {
                let at = pc.spanned("enable.idempotence").expect("set");
                // A refused value of one of these is reported already, and could make the
                // others look wrong.
                if pc.fine(&["acks", "retries", "max.in.flight.requests.per.connection"]) {
                    let why = if acks != Acks::All {
                        Some(
                            "Kafka refuses this producer: `enable.idempotence=true` needs `acks=all` (ConfigException)",
                        )
                    } else if pc.int("retries") == Some(0) {
                        Some(
                            "Kafka refuses this producer: `enable.idempotence=true` needs `retries` above 0 (ConfigException)",
                        )
                    } else if max_in_flight > 5 {
                        Some(
                            "Kafka refuses this producer: `enable.idempotence=true` needs `max.in.flight.requests.per.connection` of 5 or less",
                        )
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        ctx.report(at, why);
                    }
                }
                true
            }
            Some(false) => false,
            // Kafka turns idempotence off silently when other settings conflict with it.
            None => acks == Acks::All && max_in_flight <= 5 && pc.int("retries") != Some(0),
        };
        let partitioner = match pc.text("partitioner.class") {
            None => Ok(Partitioner::BuiltIn),
            Some(name) => match Partitioner::from_name(&name) {
                Some(p) => Ok(p),
                None => {
                    let at = pc.spanned("partitioner.class").expect("set");
                    let hint = if name == "org.apache.kafka.clients.producer.internals.DefaultPartitioner" {
                        "; its null-key behaviour depends on the Kafka version: write `default-2.3` (round robin) or `sticky-2.4` (KIP-480)".to_string()
                    } else {
                        did_you_mean(&name, Partitioner::NAMES.iter().copied())
                    };
                    ctx.err(
                        at,
                        format!(
                            "unknown partitioner `{name}`{hint}. Known: {}",
                            Partitioner::NAMES.join(", ")
                        ),
                    )
                }
            },
        };
        let (mut custom_rules, mut custom_otherwise) = (Vec::new(), None);
        let partitioner = match &spec.partitioner {
            None => partitioner,
            Some(custom) => {
                if let Some(at) = pc.spanned("partitioner.class") {
                    ctx.report(
                        at,
                        "write either `partitioner.class` or a custom `partitioner:`, not both",
                    );
                }
                if spec.keys.is_none() {
                    ctx.report(
                        custom,
                        "a custom partitioner places records by key: give this producer `keys`",
                    );
                }
                // The partitions a rule may name are known when the topic is.
                let partitions = topic.map(|t| (topics.valid[t].partitions, topics.valid[t].name.as_str()));
                for rule in &custom.value.rules {
                    let part = &rule.value.partition;
                    if let Some((n, topic_name)) = partitions
                        && part.value >= n
                    {
                        ctx.report(
                            part,
                            format!(
                                "partition {} does not exist: topic `{topic_name}` has {n} (0..{n})",
                                part.value
                            ),
                        );
                    }
                    custom_rules.push((rule.value.prefix.clone(), part.value));
                }
                match custom.value.otherwise.as_ref() {
                    None => {}
                    Some(o) => match (&o.value, partitions) {
                        (Scalar::Text(t), _) if t == "hash" => {}
                        (Scalar::Int(i), Some((n, _))) if *i >= 0 && (*i as u64) < u64::from(n) => {
                            custom_otherwise = Some(*i as u32)
                        }
                        // Which partitions exist is not known: the topic has an error.
                        (Scalar::Int(_), None) => {}
                        (other, Some((n, _))) => ctx.report(
                            o,
                            format!(
                                "`otherwise` is `hash` or a partition of 0..{n}, not {}",
                                other.as_written()
                            ),
                        ),
                        (other, None) => ctx.report(
                            o,
                            format!("`otherwise` is `hash` or a partition, not {}", other.as_written()),
                        ),
                    },
                }
                Ok(Partitioner::Custom)
            }
        };
        let linger = pc.ms("linger.ms", 5);
        let request_timeout = pc.ms("request.timeout.ms", 30_000);
        let mut delivery_timeout = pc.ms("delivery.timeout.ms", 120_000);
        if delivery_timeout < linger + request_timeout {
            if let Some(at) = pc.spanned("delivery.timeout.ms")
                && pc.fine(&["linger.ms", "request.timeout.ms"])
            {
                ctx.report(at, "Kafka refuses this producer: `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms` (ConfigException)");
            }
            delivery_timeout = linger + request_timeout;
        }
        let batch_size = pc.int("batch.size").unwrap_or(16_384) as u32;
        let buffer_memory = pc.int("buffer.memory").unwrap_or(33_554_432) as u64;
        if buffer_memory < u64::from(batch_size) && pc.fine(&["buffer.memory", "batch.size"]) {
            let at = pc
                .spanned("buffer.memory")
                .or(pc.spanned("batch.size"))
                .expect("one is set");
            ctx.report(
                at,
                format!("`buffer.memory` ({buffer_memory}) is below `batch.size` ({batch_size}): Kafka's buffer pool refuses every batch allocation larger than the whole pool"),
            );
        }
        let (Some(instances), Some(topic), Ok(workload), Ok(keys), Ok(partitioner)) =
            (instances, topic, workload, keys, partitioner)
        else {
            continue;
        };
        if ctx.failed_since(mark) {
            continue;
        }
        producers.push(Producer {
            name: spec.name.value.clone(),
            instances,
            topic,
            workload,
            keys,
            key_distribution,
            value_bytes,
            hot_share,
            acks,
            linger,
            batch_size,
            idempotence,
            retries: pc.int("retries").map(|v| v as u64).unwrap_or(2_147_483_647),
            delivery_timeout,
            request_timeout,
            retry_backoff: pc.ms("retry.backoff.ms", 100),
            retry_backoff_max: pc.ms("retry.backoff.max.ms", 1000),
            metadata_max_age: pc.ms("metadata.max.age.ms", 300_000),
            max_request_size: pc.int("max.request.size").unwrap_or(1_048_576) as u32,
            max_in_flight,
            buffer_memory,
            max_block: pc.ms("max.block.ms", 60_000),
            adaptive: pc.bool("partitioner.adaptive.partitioning.enable").unwrap_or(true),
            availability_timeout: pc.ms("partitioner.availability.timeout.ms", 0),
            ignore_keys: pc.bool("partitioner.ignore.keys").unwrap_or(false),
            partitioner,
            custom_rules,
            custom_otherwise,
        });
    }

    // Consumer groups.
    let mut groups: Vec<Group> = Vec::new();
    // Every group defined, with its members' names when `members` is right, whether or
    // not the rest of its definition is: faults may name them.
    let mut declared_groups: Vec<(String, Vec<String>)> = Vec::new();
    for c in &raw.consumers {
        let spec = &c.value;
        let mark = ctx.mark();
        if !is_kebab(&spec.group.value) {
            ctx.report(
                &spec.group,
                format!("group name `{}` must be kebab-case", spec.group.value),
            );
        }
        if declared_groups.iter().any(|(g, _)| *g == spec.group.value) {
            ctx.report(
                &spec.group,
                format!(
                    "group `{}` is defined twice: use `members` for more consumers",
                    spec.group.value
                ),
            );
            continue;
        }
        let members = match &spec.members {
            Some(m) if m.value == 0 || m.value > 1000 => {
                ctx.report(m, format!("`members` must be between 1 and 1000, not {}", m.value));
                unknown_prefixes.push(format!("{}-", spec.group.value));
                None
            }
            Some(m) => Some(m.value),
            None => Some(1),
        };
        let member_names: Vec<String> = (0..members.unwrap_or(0))
            .map(|i| format!("{}-{i}", spec.group.value))
            .collect();
        claim((&mut node_names, &mut node_set), &spec.group, member_names.clone());
        declared_groups.push((spec.group.value.clone(), member_names));
        if spec.topics.value.is_empty() {
            ctx.report(&spec.topics, "a group must read at least one topic");
        }
        let mut group_topics = Vec::new();
        for t in &spec.topics.value {
            if let Ok(i) = topics.index(ctx, t)
                && !group_topics.contains(&i)
            {
                group_topics.push(i);
            }
        }
        let cc = config(ctx, Scope::Consumer, &spec.config);
        let commit = match (&spec.commit, cc.bool("enable.auto.commit")) {
            (Some(mode), Some(auto)) if (mode.value == CommitMode::Auto) != auto => {
                ctx.report(
                    mode,
                    format!(
                        "`commit: {}` contradicts `enable.auto.commit: {auto}`",
                        commit_word(mode.value)
                    ),
                );
                mode.value
            }
            (Some(mode), _) => mode.value,
            (None, Some(false)) => CommitMode::AfterProcessing,
            (None, _) => CommitMode::Auto,
        };
        let auto_offset_reset = match cc.text("auto.offset.reset").as_deref() {
            Some("earliest") => OffsetReset::Earliest,
            Some("none") => {
                let at = cc.spanned("auto.offset.reset").expect("set");
                ctx.report(at, "not supported yet: `auto.offset.reset: none` (the application would have to handle NoOffsetForPartitionException); use earliest or latest");
                OffsetReset::None
            }
            _ => OffsetReset::Latest,
        };
        let mut strategies = Vec::new();
        let mut unknown_strategy = false;
        match cc.spanned("partition.assignment.strategy") {
            None => strategies.extend(["range".to_string(), "cooperative-sticky".to_string()]),
            Some(at) => {
                for name in at.value.to_string().split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match crate::kafka::assignor::Strategy::parse(name) {
                        Some(s) => strategies.push(s.name().to_string()),
                        None => {
                            unknown_strategy = true;
                            let known: Vec<&str> = crate::kafka::assignor::Strategy::spellings().collect();
                            ctx.report(
                                at,
                                format!(
                                    "unknown assignor `{name}`{}; one of range, roundrobin, sticky, cooperative-sticky (or Kafka's class names)",
                                    did_you_mean(name, known)
                                ),
                            );
                        }
                    }
                }
                if strategies.is_empty() && !unknown_strategy {
                    ctx.report(at, "`partition.assignment.strategy` needs at least one assignor");
                }
            }
        }
        let session_timeout = cc.ms("session.timeout.ms", 45_000);
        let (min, max) = (broker.group_min_session_timeout, broker.group_max_session_timeout);
        if (session_timeout < min || session_timeout > max)
            && bc.fine(&["group.min.session.timeout.ms", "group.max.session.timeout.ms"])
        {
            // The default is out of range only when the broker's bounds exclude it.
            let bound = if session_timeout < min {
                "group.min.session.timeout.ms"
            } else {
                "group.max.session.timeout.ms"
            };
            let at = cc
                .spanned("session.timeout.ms")
                .or(bc.spanned(bound))
                .expect("one is set");
            ctx.report(
                at,
                format!("the coordinator refuses `session.timeout.ms` {session_timeout} (INVALID_SESSION_TIMEOUT): it must be between group.min.session.timeout.ms ({min}) and group.max.session.timeout.ms ({max})"),
            );
        }
        let mut start_at = vec![Duration::ZERO; members.unwrap_or(0) as usize];
        if let Some(starts) = &spec.start_at
            && let Some(members) = members
        {
            for (name, at) in &starts.value {
                if let Ok(i) = member_index(ctx, &spec.group.value, members, name, at, "start-at") {
                    start_at[i as usize] = at.value.0;
                }
            }
        }
        let stall = match (&spec.stall, members) {
            (None, _) => None,
            (Some(st), members) => {
                let member = &st.value.member;
                let i = members.and_then(|members| {
                    member_index(ctx, &spec.group.value, members, &member.value, member, "stall").ok()
                });
                if st.value.length.value.0 == Duration::ZERO {
                    ctx.report(&st.value.length, "`stall.for` must be more than zero");
                }
                i.map(|i| (i, st.value.at.value.0, st.value.length.value.0))
            }
        };
        let Some(members) = members else { continue };
        if ctx.failed_since(mark) {
            continue;
        }
        groups.push(Group {
            stall,
            strategies,
            session_timeout,
            heartbeat_interval: cc.ms("heartbeat.interval.ms", 3000),
            max_poll_interval: cc.ms("max.poll.interval.ms", 300_000),
            instance_prefix: cc.text("group.instance.id").filter(|t| t != "null"),
            start_at,
            group: spec.group.value.clone(),
            members,
            topics: group_topics,
            processing: spec.processing.as_ref().map(|p| p.value.0).unwrap_or(Duration::ZERO),
            commit,
            auto_commit_interval: cc.ms("auto.commit.interval.ms", 5000),
            auto_offset_reset,
            max_poll_records: cc.int("max.poll.records").unwrap_or(500) as u32,
            fetch_min_bytes: cc.int("fetch.min.bytes").unwrap_or(1) as u32,
            fetch_max_wait: cc.ms("fetch.max.wait.ms", 500),
            max_partition_fetch_bytes: cc.int("max.partition.fetch.bytes").unwrap_or(1_048_576) as u32,
            request_timeout: cc.ms("request.timeout.ms", 30_000),
            retry_backoff: cc.ms("retry.backoff.ms", 100),
        });
    }

    // Faults.
    let node = |n: &S<String>| -> R<String> {
        let name = n.value.as_str();
        if node_set.contains(name) {
            return Ok(name.to_string());
        }
        if unknown_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            // Which nodes these are is not known: an error elsewhere says why.
            return Err(Stop);
        }
        let is_broker_id = name.strip_prefix("broker-").is_some_and(|id| id.parse::<u32>().is_ok());
        let hint = if is_broker_id {
            format!(": the brokers are broker-1 … broker-{}", brokers.unwrap_or(0))
        } else {
            did_you_mean(name, node_names.iter().map(String::as_str))
        };
        ctx.err(n, format!("no node is named `{name}`{hint}"))
    };
    // A node's name, or a role (`leader(orders-0)`, `coordinator(billing)`) that exists.
    let target = |n: &S<String>| -> R<String> {
        // With a quorum, `controller` is the role of the active one.
        if controllers > 1 && n.value == CONTROLLER {
            return Ok(n.value.clone());
        }
        let Some(role) = RoleRef::parse(&n.value) else {
            return node(n);
        };
        match role {
            Err(message) => ctx.err(n, message),
            Ok(RoleRef::Leader(topic, p)) => match topics.valid.iter().find(|t| t.name == topic) {
                None if topics.broken.iter().any(|t| t == topic) => Err(Stop),
                None => ctx.err(
                    n,
                    format!(
                        "`{}`: there is no topic `{topic}`{}",
                        n.value,
                        did_you_mean(topic, topics.valid.iter().map(|t| t.name.as_str()))
                    ),
                ),
                Some(t) if p >= t.partitions => ctx.err(
                    n,
                    format!(
                        "`{}`: topic `{topic}` has {} partitions, numbered 0 to {}",
                        n.value,
                        t.partitions,
                        t.partitions - 1
                    ),
                ),
                Some(_) => Ok(n.value.clone()),
            },
            Ok(RoleRef::Coordinator(group)) => {
                if declared_groups.iter().any(|(g, _)| g == group) {
                    Ok(n.value.clone())
                } else {
                    ctx.err(
                        n,
                        format!(
                            "`{}`: there is no consumer group `{group}`{}",
                            n.value,
                            did_you_mean(group, declared_groups.iter().map(|(g, _)| g.as_str()))
                        ),
                    )
                }
            }
        }
    };
    let mut faults = Vec::new();
    for f in &raw.faults {
        let spec = &f.value;
        let mark = ctx.mark();
        let at = spec.at.value.0;
        if let Some(end) = end
            && at > end
        {
            ctx.report(
                &spec.at,
                format!(
                    "fault at {} is after the end of the run ({} = duration {} + drain {})",
                    spec.at.value.0,
                    end,
                    duration.expect("known with the end"),
                    drain
                ),
            );
        }
        if let Some((key, why)) = &spec.stray {
            let k = key.value.as_str();
            match why {
                schema::Stray::SecondKind => ctx.report(
                    key,
                    format!("a fault has one kind, but `{k}` is a second one: write two faults"),
                ),
                schema::Stray::Unknown => {
                    let mut known = vec!["at", "for"];
                    known.extend(schema::FAULT_KINDS);
                    ctx.report(
                        key,
                        format!(
                            "unknown fault key `{k}`; a fault is `at:` plus one of {}, and optionally `for:`.{}",
                            schema::FAULT_KINDS.join(", "),
                            did_you_mean_sentence(k, known.iter().copied())
                        ),
                    )
                }
            }
        }
        let Some(kind) = &spec.kind else {
            if spec.stray.is_none() {
                ctx.report(
                    &spec.at,
                    format!("this fault has no kind: add one of {}", schema::FAULT_KINDS.join(", ")),
                );
            }
            continue;
        };
        if let schema::FaultKind::Crash(n)
        | schema::FaultKind::Restart(n)
        | schema::FaultKind::Pause(n)
        | schema::FaultKind::PowerLoss(n)
        | schema::FaultKind::Stop(n) = kind
            && n.value == CONTROLLER
            && controllers == 1
        {
            ctx.report(n, "the controller does not fail in kafkasim (a simplification); cut it off from the network with `isolate`, `partition` or `cut` instead, or run a quorum (`cluster: { controllers: 3 }`) whose controllers can fail");
            continue;
        }
        if let schema::FaultKind::Stop(n) = kind
            && controllers > 1
            && (n.value == CONTROLLER || n.value.starts_with("controller-"))
        {
            ctx.report(
                n,
                "a controller's clean shutdown (graceful resignation) is not modelled yet: use `crash`",
            );
            continue;
        }
        let lasts = match (&spec.length, kind) {
            (Some(l), schema::FaultKind::Restart(_)) => {
                ctx.err(l, "`for:` does not go with `restart`: write it on the crash it ends")
            }
            (Some(l), schema::FaultKind::Heal(_)) => {
                ctx.err(l, "`for:` does not go with `heal`: write it on the fault it ends")
            }
            (Some(l), _) if l.value.0 == Duration::ZERO => ctx.err(l, "`for:` must be more than zero"),
            (None, schema::FaultKind::Pause(n)) => {
                ctx.err(n, "`pause` needs `for:`, e.g. `{at: 10s, pause: broker-2, for: 5s}`")
            }
            (l, _) => Ok(l.as_ref().map(|l| l.value.0)),
        };
        let kind = match kind {
            schema::FaultKind::Crash(n) => target(n).map(FaultKind::Crash),
            schema::FaultKind::Stop(n) => target(n).and_then(|name| {
                let broker = RoleRef::parse(&name).is_some()
                    || (1..=brokers.unwrap_or(0)).any(|b| Scenario::broker_name(b) == name);
                let member = declared_groups.iter().any(|(_, members)| members.contains(&name));
                if broker || member {
                    Ok(FaultKind::Stop(name))
                } else {
                    ctx.err(n, format!("`stop` is a broker's controlled shutdown or a consumer's `close()`; `{name}` is neither: use `crash`"))
                }
            }),
            schema::FaultKind::PowerLoss(n) => target(n).and_then(|name| {
                let broker = RoleRef::parse(&name).is_some()
                    || (1..=brokers.unwrap_or(0)).any(|b| Scenario::broker_name(b) == name);
                if broker {
                    Ok(FaultKind::PowerLoss(name))
                } else {
                    ctx.err(n, format!("`power-loss` applies to brokers (it loses unflushed log data); use `crash: {name}` for a client"))
                }
            }),
            schema::FaultKind::Restart(n) => {
                if RoleRef::parse(&n.value).is_some() {
                    ctx.err(n, "`restart` names a node, not a role: the node that is down")
                } else {
                    node(n).map(FaultKind::Restart)
                }
            }
            schema::FaultKind::Pause(n) => target(n).map(FaultKind::Pause),
            schema::FaultKind::Isolate(n) => target(n).map(FaultKind::Isolate),
            schema::FaultKind::Partition(groups_spec) => {
                if groups_spec.len() < 2 {
                    ctx.report(
                        &spec.at,
                        "`partition` needs at least two groups of nodes, e.g. `[[broker-1], [broker-2, broker-3]]`",
                    );
                }
                let mut seen: Vec<String> = Vec::new();
                let mut out = Vec::new();
                let mut whole = true;
                for g in groups_spec {
                    let mut names = Vec::new();
                    for n in g {
                        let Ok(name) = target(n) else {
                            whole = false;
                            continue;
                        };
                        if seen.contains(&name) {
                            ctx.report(n, format!("`{name}` is in two groups of one partition"));
                        }
                        seen.push(name.clone());
                        names.push(name);
                    }
                    if g.is_empty() {
                        ctx.report(&spec.at, "a partition group is empty");
                    }
                    out.push(names);
                }
                if whole { Ok(FaultKind::Partition(out)) } else { Err(Stop) }
            }
            schema::FaultKind::Cut { from, to } => match (target(from), target(to)) {
                (Ok(a), Ok(b)) if a == b => ctx.err(to, "a cut needs two different nodes"),
                (Ok(a), Ok(b)) => Ok(FaultKind::Cut { from: a, to: b }),
                _ => Err(Stop),
            },
            schema::FaultKind::Slow { nodes, latency } => {
                let names: Vec<R<String>> = nodes.iter().map(target).collect();
                names.into_iter().collect::<R<Vec<_>>>().map(|names| FaultKind::Slow {
                    nodes: names,
                    latency: latency.value.0,
                })
            }
            schema::FaultKind::Heal(what) => {
                if what.value != "all" {
                    ctx.err(
                        what,
                        format!(
                            "`heal` takes `all`, not `{}` (to heal one fault, give it `for:`)",
                            what.value
                        ),
                    )
                } else {
                    Ok(FaultKind::HealAll)
                }
            }
        };
        if let (Ok(kind), Ok(lasts)) = (kind, lasts)
            && !ctx.failed_since(mark)
        {
            faults.push(Fault { at, kind, lasts });
        }
    }
    // Faults at one instant fire in file order; sorting keeps that (the sort is stable).
    faults.sort_by_key(|f| f.at);

    // The nemesis.
    let nemesis = match &raw.nemesis {
        None => None,
        Some(n) => {
            let spec = &n.value;
            let mark = ctx.mark();
            let mut kinds = Vec::new();
            // The kinds as written, next to the kind each names (for the checks below).
            let mut written = Vec::new();
            for k in &spec.faults.value {
                let words = NemesisKind::ALL.map(NemesisKind::word);
                let Some(kind) = NemesisKind::ALL.into_iter().find(|x| x.word() == k.value) else {
                    ctx.report(
                        k,
                        format!(
                            "unknown nemesis fault `{}`{}; one of {}",
                            k.value,
                            did_you_mean(&k.value, words),
                            words.join(", ")
                        ),
                    );
                    continue;
                };
                if kinds.contains(&kind) {
                    ctx.report(k, format!("`{}` is listed twice", k.value));
                    continue;
                }
                kinds.push(kind);
                written.push((k, kind));
            }
            if spec.faults.value.is_empty() {
                ctx.report(&spec.faults, "the nemesis needs at least one kind of fault to draw");
            }
            let broker_names: Vec<String> = (1..=brokers.unwrap_or(0)).map(Scenario::broker_name).collect();
            let clients: Vec<String> = node_names
                .iter()
                .filter(|n| !broker_names.contains(n) && !n.starts_with(CONTROLLER))
                .cloned()
                .collect();
            let targets: R<Vec<String>> = match spec.targets.as_ref().map(|t| (&t.value, t)) {
                None => Ok(broker_names.clone()),
                Some((schema::Targets::Set(set), at)) => match set.as_str() {
                    "brokers" => Ok(broker_names.clone()),
                    "clients" if clients.is_empty() => {
                        ctx.err(at, "`targets: clients`, but the scenario has no producers or consumers")
                    }
                    "clients" => Ok(clients),
                    "all" => {
                        let mut all = broker_names.clone();
                        all.extend(crate::kafka::config::controller_names(controllers));
                        all.extend(clients);
                        Ok(all)
                    }
                    other => ctx.err(
                        at,
                        format!(
                            "unknown targets `{other}`{}; write brokers, clients, all, or a list of nodes and roles",
                            did_you_mean(other, ["brokers", "clients", "all"])
                        ),
                    ),
                },
                Some((schema::Targets::List(list), at)) => {
                    let mut out: Vec<String> = Vec::new();
                    let mut whole = true;
                    for t in list {
                        let Ok(name) = target(t) else {
                            whole = false;
                            continue;
                        };
                        if out.contains(&name) {
                            ctx.report(t, format!("`{name}` is listed twice"));
                        }
                        out.push(name);
                    }
                    if list.is_empty() {
                        ctx.err(at, "the nemesis needs at least one target")
                    } else if whole {
                        Ok(out)
                    } else {
                        Err(Stop)
                    }
                }
            };
            let every = (spec.every.value.min, spec.every.value.max);
            let from = spec.from.as_ref().map_or(Duration::ZERO, |f| f.value.0);
            if every.0 == Duration::ZERO {
                ctx.report(&spec.every, "`every` must be more than zero");
            } else if let Some(duration) = duration {
                // Every fault is drawn before the run: their number must stay sensible.
                const MAX_DRAWN: u64 = 100_000;
                let window = spec.until.as_ref().map_or(duration, |u| u.value.0) - from;
                if window.0 / every.0.0 > MAX_DRAWN {
                    ctx.report(
                        &spec.every,
                        format!(
                            "the nemesis would draw up to {} faults (one every {} over {window}); at most {MAX_DRAWN}: make `every` longer",
                            window.0 / every.0.0,
                            every.0
                        ),
                    );
                }
            }
            let lasts = (spec.lasts.value.min, spec.lasts.value.max);
            if lasts.0 == Duration::ZERO {
                ctx.report(&spec.lasts, "`lasts` must be more than zero");
            }
            let until = spec.until.as_ref().map_or(duration, |u| Some(u.value.0));
            if let (Some(u), Some(until), Some(end)) = (&spec.until, until, end) {
                if until > end {
                    ctx.report(
                        u,
                        format!(
                            "`until` is after the end of the run ({end} = duration {} + drain {drain})",
                            duration.expect("known with the end")
                        ),
                    );
                } else if until < from {
                    ctx.report(u, "`until` is before `from`");
                }
            } else if let (None, Some(f), Some(duration)) = (&spec.until, &spec.from, duration)
                && from > duration
            {
                ctx.report(
                    f,
                    format!("`from` is after the end of the workload ({duration}): add `until`"),
                );
            }
            let max_down = spec.max_down.as_ref().map_or(1, |m| m.value);
            // Whether a kind can be drawn depends on the targets: when they are known.
            if let Ok(targets) = &targets
                && brokers.is_some()
            {
                for (k, kind) in &written {
                    let eligible = targets
                        .iter()
                        .filter(|t| super::nemesis::can_take(*kind, t, &broker_names, controllers > 1))
                        .count();
                    if eligible == 0 || (super::nemesis::needs_two(*kind) && targets.len() < 2) {
                        let why = match kind {
                            NemesisKind::Crash | NemesisKind::Pause => {
                                "the controller does not fail in kafkasim; add brokers or clients to `targets`"
                            }
                            NemesisKind::PowerLoss => "power loss hits brokers; add brokers or roles to `targets`",
                            _ => "it needs two targets or more",
                        };
                        ctx.report(*k, format!("the nemesis cannot draw `{}`: {why}", k.value));
                        continue;
                    }
                    let down = !matches!(kind, NemesisKind::Cut | NemesisKind::Slow);
                    if down && max_down == 0 {
                        let at = spec.max_down.as_ref().expect("0 only when written");
                        ctx.report(
                            at,
                            format!(
                                "with `max-down: 0` the nemesis can draw only cut and slow, not `{}`",
                                k.value
                            ),
                        );
                    }
                }
            }
            let slow_latency = spec
                .slow_latency
                .as_ref()
                .map_or((Duration::from_millis(100), Duration::from_millis(1000)), |s| {
                    (s.value.min, s.value.max)
                });
            match (targets, until) {
                (Ok(targets), Some(until)) if !ctx.failed_since(mark) => Some(Nemesis {
                    kinds,
                    targets,
                    every,
                    lasts,
                    max_down,
                    from,
                    until,
                    slow_latency,
                }),
                _ => None,
            }
        }
    };

    // The settings a sweep varies.
    let mut vary: Vec<Vary> = Vec::new();
    for v in &raw.vary {
        let spec = &v.value;
        let Some(scope) = VaryScope::parse(&spec.scope.value) else {
            ctx.report(&spec.scope, format!("unknown scope `{}`", spec.scope.value));
            continue;
        };
        let key = spec.key.value.as_str();
        if let Err(message) = super::vary::known(scope, key) {
            ctx.report(&spec.key, message);
            continue;
        }
        if vary.iter().any(|x| x.scope == scope && x.key == key) {
            ctx.report(&spec.key, format!("`{}: {key}` is varied twice", scope.word()));
            continue;
        }
        if spec.values.value.is_empty() {
            ctx.report(&spec.values, "`values` needs at least one value");
        }
        vary.push(Vary {
            scope,
            key: key.to_string(),
            values: spec.values.value.iter().map(|x| x.value.clone()).collect(),
        });
    }

    // Expectations.
    let mut expect_violations = Vec::new();
    if let Some(expect) = &raw.expect {
        for v in &expect.violations {
            let name = v.value.as_str();
            match CHECKS.iter().find(|c| c.name == name) {
                None => {
                    let known = CHECKS.iter().map(|c| c.name);
                    ctx.report(v, format!("unknown check `{name}`{}", did_you_mean(name, known)));
                    continue;
                }
                Some(c) if !c.implemented => {
                    ctx.report(v, format!("not supported yet: check `{name}` is not implemented yet"));
                    continue;
                }
                Some(_) => {}
            }
            if expect_violations.iter().any(|x| x == name) {
                ctx.report(v, format!("`{name}` is listed twice"));
                continue;
            }
            expect_violations.push(name.to_string());
        }
    }

    let mut pictures = Vec::new();
    for at in &raw.pictures {
        if let Some(end) = end
            && at.value.0 > end
        {
            ctx.report(
                at,
                format!("a picture at {} is after the end of the run ({end})", at.value.0),
            );
        }
        pictures.push(at.value.0);
    }
    pictures.sort();
    pictures.dedup();

    if ctx.failed_since(0) {
        return Err(Stop);
    }
    let missing = "known when no error is recorded";
    Ok(Scenario {
        name: name.expect(missing).value.clone(),
        description: raw.description.clone().unwrap_or_default().trim().to_string(),
        seed: raw.seed.unwrap_or(0),
        duration: duration.expect(missing),
        drain,
        brokers: brokers.expect(missing),
        controllers,
        latency,
        jitter,
        broker,
        topics: topics.valid,
        producers,
        groups,
        faults,
        nemesis,
        vary,
        expect_violations,
        warnings: Vec::new(),
        pictures,
    })
}

fn commit_word(mode: CommitMode) -> &'static str {
    match mode {
        CommitMode::AfterProcessing => "after-processing",
        CommitMode::BeforeProcessing => "before-processing",
        CommitMode::Auto => "auto",
    }
}

/// The index of member `name` of `group` (which has `members`), named at `at` by `key`.
fn member_index<T>(ctx: &Ctx, group: &str, members: u32, name: &str, at: &S<T>, key: &str) -> R<u32> {
    let names: Vec<String> = (0..members).map(|i| format!("{group}-{i}")).collect();
    match names.iter().position(|n| n == name) {
        Some(i) => Ok(i as u32),
        None => ctx.err(
            at,
            format!(
                "`{key}` names `{name}`, which is not a member of this group{}",
                did_you_mean(name, names.iter().map(String::as_str))
            ),
        ),
    }
}
/// `1000/s`, `50/ms`, `600/m`: a whole number of records per unit of time.
fn parse_rate(ctx: &Ctx, rate: &S<String>) -> R<Workload> {
    let text = rate.value.trim();
    let bad = || format!("malformed rate `{text}`: write records per unit, like `1000/s`, `5/ms` or `600/m`");
    let Some((count, unit)) = text.split_once('/') else {
        return ctx.err(rate, bad());
    };
    let count: i64 = match count.trim().parse() {
        Ok(c) => c,
        Err(_) => return ctx.err(rate, bad()),
    };
    if count <= 0 {
        return ctx.err(rate, format!("rate `{text}` must be more than zero records"));
    }
    if count > 1_000_000_000 {
        return ctx.err(rate, format!("rate `{text}` is more than 1000000000 records per unit"));
    }
    let per = match unit.trim() {
        "s" => Duration::from_millis(1000),
        "ms" => Duration::from_millis(1),
        "m" | "min" => Duration::from_millis(60_000),
        _ => return ctx.err(rate, bad()),
    };
    Ok(Workload::Rate {
        count: count as u64,
        per,
    })
}
