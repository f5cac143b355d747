//! Validation: from the parsed file to a [`Scenario`], or the first error with its place.

use super::props::{self, Kind, Scope};
use super::schema::{self, CommitMode, Props, S, Scalar, ScenarioFile};
use super::{
    Acks, BrokerConfig, CONTROLLER, Fault, FaultKind, Group, InputError, KeyDistribution, Nemesis, NemesisKind,
    OffsetReset, Partitioner, Producer, RoleRef, Scenario, Topic, Vary, VaryScope, Workload, did_you_mean,
    did_you_mean_sentence,
};
use crate::check::CHECKS;
use crate::kafka::TruncationMode;
use crate::sim::Duration;
use std::collections::BTreeMap;

type R<T> = Result<T, InputError>;

struct Ctx<'a> {
    file: &'a str,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn err<T, U>(&self, at: &S<U>, message: impl Into<String>) -> R<T> {
        Err(InputError {
            file: self.file.to_string(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        })
    }
    fn warn<U>(&mut self, at: &S<U>, message: impl Into<String>) {
        let (line, column) = (at.referenced.line(), at.referenced.column());
        let place = if line == 0 {
            String::new()
        } else {
            format!("{line}:{column}:")
        };
        self.warnings.push(format!("{}:{place} {}", self.file, message.into()));
    }
}

/// The properties of one `config:` block, checked against the table.
struct Config<'a> {
    values: BTreeMap<&'static str, &'a S<Scalar>>,
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
}

fn config<'a>(ctx: &Ctx, scope: Scope, block: &'a Props) -> R<Config<'a>> {
    let mut values = BTreeMap::new();
    for (key, value) in &block.0 {
        let name = key.value.as_str();
        let Some(prop) = props::lookup(scope, name) else {
            let elsewhere = [Scope::Broker, Scope::Topic, Scope::Producer, Scope::Consumer]
                .into_iter()
                .find(|s| *s != scope && props::lookup(*s, name).is_some());
            let hint = match elsewhere {
                Some(s) => format!("; `{name}` belongs under `{}`", s.key()),
                None => did_you_mean(name, props::names(scope)),
            };
            return ctx.err(key, format!("unknown {} property `{name}`{hint}", scope_word(scope)));
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
            return ctx.err(
                value,
                format!("`{name}` must be {wanted}, not {}", value.value.as_written()),
            );
        }
        if !prop.modelled && value.value.to_string() != prop.default {
            return ctx.err(
                value,
                format!(
                    "not supported yet: kafkasim knows `{name}` but does not model it yet; remove it (Kafka's default is {})",
                    prop.default
                ),
            );
        }
        if values.insert(prop.name, value).is_some() {
            return ctx.err(key, format!("`{name}` is set twice"));
        }
    }
    Ok(Config { values })
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

/// Checks a parsed scenario and applies every default.
pub fn resolve(file: &str, raw: ScenarioFile) -> R<Scenario> {
    let mut ctx = Ctx {
        file,
        warnings: Vec::new(),
    };
    let missing = |key: &str, example: &str| InputError {
        file: file.to_string(),
        line: 1,
        column: 1,
        message: format!("the scenario has no `{key}`: add one, e.g. `{example}`"),
    };
    let name = raw.name.as_ref().ok_or_else(|| missing("name", "name: my-scenario"))?;
    let raw_duration = raw
        .duration
        .as_ref()
        .ok_or_else(|| missing("duration", "duration: 60s"))?;
    let raw_cluster = raw
        .cluster
        .as_ref()
        .ok_or_else(|| missing("cluster", "cluster: { brokers: 3 }"))?;
    if !is_kebab(&name.value) {
        return ctx.err(
            name,
            format!(
                "scenario name `{}` must be kebab-case, like `isr-min-insync-2`",
                name.value
            ),
        );
    }
    let duration = raw_duration.value.0;
    if duration == Duration::ZERO {
        return ctx.err(raw_duration, "`duration` must be more than zero");
    }
    let drain = raw
        .drain
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(Duration::from_millis(30_000));

    // Cluster.
    let cluster = &raw_cluster.value;
    let brokers = cluster.brokers.value;
    if brokers == 0 || brokers > 1000 {
        return ctx.err(
            &cluster.brokers,
            format!("`brokers` must be between 1 and 1000, not {brokers}"),
        );
    }
    let network = cluster.network.as_ref();
    let latency = network
        .and_then(|n| n.latency.as_ref())
        .map(|d| d.value.0)
        .unwrap_or(Duration::from_millis(1));
    if let Some(l) = network.and_then(|n| n.latency.as_ref())
        && l.value.0 == Duration::ZERO
    {
        return ctx.err(
            l,
            "`latency` must be more than zero: a message takes time to cross the network",
        );
    }
    let jitter = network
        .and_then(|n| n.jitter.as_ref())
        .map(|d| d.value.0)
        .unwrap_or(Duration::ZERO);
    let truncation = match &cluster.truncation {
        None => TruncationMode::LeaderEpoch,
        Some(t) => match t.value.as_str() {
            "leader-epoch" => TruncationMode::LeaderEpoch,
            "kip-101" => TruncationMode::Kip101,
            "high-watermark" => TruncationMode::HighWatermark,
            other => {
                const MODES: [&str; 3] = ["leader-epoch", "kip-101", "high-watermark"];
                return ctx.err(
                    t,
                    format!(
                        "unknown truncation mode `{other}`{}; one of {}",
                        did_you_mean(other, MODES),
                        MODES.join(", ")
                    ),
                );
            }
        },
    };
    let bc = config(&ctx, Scope::Broker, &cluster.config)?;
    let broker_min_isr = bc.int("min.insync.replicas").unwrap_or(1) as u32;
    let default_rf = bc.int("default.replication.factor").unwrap_or(1) as u32;
    let default_partitions = bc.int("num.partitions").unwrap_or(1) as u32;
    if default_partitions > 10_000 {
        let at = bc.spanned("num.partitions").expect("set");
        return ctx.err(at, "`num.partitions` must be between 1 and 10000 in kafkasim");
    }
    if let Some(at) = bc.spanned("offsets.topic.num.partitions")
        && bc.int("offsets.topic.num.partitions").unwrap_or(50) > 10_000
    {
        return ctx.err(
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
    };

    // Topics.
    if raw.topics.is_empty() {
        return ctx.err(name, "the scenario has no `topics`: add at least one");
    }
    let mut topics: Vec<Topic> = Vec::new();
    for t in &raw.topics {
        let spec = &t.value;
        let name = spec.name.value.clone();
        if !is_identifier(&name) || name.starts_with("__") {
            return ctx.err(
                &spec.name,
                format!("`{name}` is not a valid topic name (letters, digits, `.`, `_`, `-`; no leading `__`)"),
            );
        }
        if topics.iter().any(|x| x.name == name) {
            return ctx.err(&spec.name, format!("topic `{name}` is defined twice"));
        }
        let partitions = spec.partitions.as_ref().map(|p| p.value).unwrap_or(default_partitions);
        if let Some(p) = &spec.partitions
            && (p.value == 0 || p.value > 10_000)
        {
            return ctx.err(p, format!("`partitions` must be between 1 and 10000, not {}", p.value));
        }
        let rf = spec.replication_factor.as_ref().map(|r| r.value).unwrap_or(default_rf);
        let rf_at = spec
            .replication_factor
            .as_ref()
            .map(|r| (r.referenced.line(), r.referenced.column()));
        if rf == 0 {
            let at = spec.replication_factor.as_ref().expect("zero only when written");
            return ctx.err(at, "`replication.factor` must be at least 1");
        }
        if rf > brokers {
            let message = format!(
                "replication factor {rf} is larger than the number of brokers ({brokers}): Kafka refuses to create topic `{name}` (INVALID_REPLICATION_FACTOR)"
            );
            return match &spec.replication_factor {
                Some(r) => ctx.err(r, message),
                None => ctx.err(raw_cluster, message),
            };
        }
        let _ = rf_at;
        let replicas = match &spec.replicas {
            None => None,
            Some(list) => {
                if list.value.len() != partitions as usize {
                    return ctx.err(
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
                    if ids.len() != rf as usize {
                        return ctx.err(
                            list,
                            format!(
                                "every partition needs {rf} replicas (the replication factor), but one lists {}",
                                ids.len()
                            ),
                        );
                    }
                    for b in brokers_of {
                        if b.value == 0 || b.value > brokers {
                            return ctx.err(
                                b,
                                format!("broker {} does not exist: brokers are 1..={brokers}", b.value),
                            );
                        }
                        if ids.iter().filter(|x| **x == b.value).count() > 1 {
                            return ctx.err(b, format!("broker {} is listed twice for one partition", b.value));
                        }
                    }
                    out.push(ids);
                }
                Some(out)
            }
        };
        let tc = config(&ctx, Scope::Topic, &spec.config)?;
        let min_isr = tc
            .int("min.insync.replicas")
            .map(|v| v as u32)
            .unwrap_or(broker_min_isr);
        if min_isr > rf {
            let message = format!(
                "min.insync.replicas={min_isr} is above the replication factor {rf} of topic `{name}`: Kafka accepts it, and since 3.7 it caps the requirement at the replication factor"
            );
            match tc.spanned("min.insync.replicas") {
                Some(at) => ctx.warn(at, message),
                None => ctx.warn(&spec.name, message),
            }
        }
        topics.push(Topic {
            name,
            partitions,
            replication_factor: rf,
            replicas,
            min_insync_replicas: min_isr,
            flush_messages: tc.int("flush.messages").map(|v| v as u64).or(broker_flush_messages),
            unclean_leader_election: tc.bool("unclean.leader.election.enable").unwrap_or(broker_unclean),
        });
    }
    let topic_index = |ctx: &Ctx, name: &S<String>| -> R<usize> {
        match topics.iter().position(|t| t.name == name.value) {
            Some(i) => Ok(i),
            None => ctx.err(
                name,
                format!(
                    "unknown topic `{}`{}",
                    name.value,
                    did_you_mean(&name.value, topics.iter().map(|t| t.name.as_str()))
                ),
            ),
        }
    };

    // Node names must be unique across brokers, producers and group members.
    let mut node_names: Vec<String> = (1..=brokers).map(Scenario::broker_name).collect();
    node_names.push(CONTROLLER.to_string());
    let mut claim = |ctx: &Ctx, at: &S<String>, names: Vec<String>| -> R<()> {
        for n in names {
            if node_names.contains(&n) {
                return ctx.err(at, format!("node name `{n}` is already taken: names must be unique across brokers, producers and group members"));
            }
            node_names.push(n);
        }
        Ok(())
    };

    // Producers.
    let mut producers = Vec::new();
    for p in &raw.producers {
        let spec = &p.value;
        if !is_kebab(&spec.name.value) {
            return ctx.err(
                &spec.name,
                format!("producer name `{}` must be kebab-case", spec.name.value),
            );
        }
        let instances = spec.instances.as_ref().map(|i| i.value).unwrap_or(1);
        if let Some(i) = &spec.instances
            && (i.value == 0 || i.value > 1000)
        {
            return ctx.err(i, format!("`instances` must be between 1 and 1000, not {}", i.value));
        }
        let names = if instances == 1 {
            vec![spec.name.value.clone()]
        } else {
            (0..instances).map(|i| format!("{}-{i}", spec.name.value)).collect()
        };
        claim(&ctx, &spec.name, names)?;
        let topic = topic_index(&ctx, &spec.topic)?;
        let workload = match (&spec.rate, &spec.messages) {
            (Some(_), Some(m)) => return ctx.err(m, "write either `rate` or `messages`, not both"),
            (None, _) if spec.burst.is_some() => {
                return ctx.err(spec.burst.as_ref().expect("checked"), "`burst` needs a base `rate`");
            }
            (None, None) => {
                return ctx.err(
                    p,
                    "this producer has no workload: add `rate: 1000/s` or `messages: 5000`",
                );
            }
            (Some(rate), None) => {
                let base = parse_rate(&ctx, rate)?;
                match &spec.burst {
                    None => base,
                    Some(b) => {
                        let Workload::Rate {
                            count: base,
                            per: base_per,
                        } = base
                        else {
                            unreachable!("parse_rate gives a rate")
                        };
                        let Workload::Rate {
                            count: burst,
                            per: burst_per,
                        } = parse_rate(&ctx, &b.value.rate)?
                        else {
                            unreachable!("parse_rate gives a rate")
                        };
                        let (every, length) = (b.value.every.value.0, b.value.length.value.0);
                        if every == Duration::ZERO {
                            return ctx.err(&b.value.every, "`burst.every` must be more than zero");
                        }
                        if length == Duration::ZERO || length >= every {
                            return ctx.err(
                                &b.value.length,
                                "`burst.for` must be more than zero and less than `burst.every`",
                            );
                        }
                        Workload::Bursts {
                            base,
                            base_per,
                            burst,
                            burst_per,
                            every,
                            length,
                        }
                    }
                }
            }
            (None, Some(m)) => {
                if m.value <= 0 {
                    return ctx.err(m, format!("`messages` must be more than zero, not {}", m.value));
                }
                Workload::Messages(m.value as u64)
            }
        };
        let mut key_distribution = KeyDistribution::Uniform;
        let keys = match &spec.keys {
            None => None,
            Some(k) => {
                if let Some(d) = &k.value.distribution {
                    match d.value.as_str() {
                        "uniform" => {}
                        "zipf" => {
                            let exponent = k.value.exponent.as_ref().map(|e| e.value).unwrap_or(1.0);
                            key_distribution = KeyDistribution::Zipf { exponent };
                        }
                        other => {
                            return ctx.err(
                                d,
                                format!(
                                    "unknown key distribution `{other}`{}; one of uniform, zipf",
                                    did_you_mean(other, ["uniform", "zipf"])
                                ),
                            );
                        }
                    }
                }
                if let Some(e) = &k.value.exponent {
                    if !matches!(key_distribution, KeyDistribution::Zipf { .. }) {
                        return ctx.err(e, "`exponent` applies to `distribution: zipf` only");
                    }
                    if !(e.value > 0.0 && e.value <= 10.0) {
                        return ctx.err(
                            e,
                            format!(
                                "the zipf `exponent` must be more than 0 and at most 10, not {}",
                                e.value
                            ),
                        );
                    }
                }
                match (&k.value.count, &k.value.list) {
                    (Some(_), Some(list)) => {
                        return ctx.err(list, "write either `keys.count` or `keys.list`, not both");
                    }
                    (None, None) => {
                        return ctx.err(
                            k,
                            "`keys` needs `count: N` or `list: [...]` (leave `keys` out for null keys)",
                        );
                    }
                    (Some(count), None) => {
                        if count.value == 0 || count.value > 10_000_000 {
                            return ctx.err(
                                count,
                                "`keys.count` must be between 1 and 10000000 (leave `keys` out for null keys)",
                            );
                        }
                        if key_distribution != KeyDistribution::Uniform && count.value > 1_000_000 {
                            return ctx.err(count, "zipf keys: `keys.count` must be at most 1000000");
                        }
                        Some((0..count.value).map(|i| format!("key-{i}")).collect::<Vec<_>>())
                    }
                    (None, Some(list)) => {
                        if list.value.is_empty() {
                            return ctx.err(list, "`keys.list` needs at least one key");
                        }
                        Some(list.value.clone())
                    }
                }
            }
        };
        let value_bytes = spec
            .value_bytes
            .as_ref()
            .map(|v| v.value)
            .unwrap_or(schema::ValueBytes { min: 100, max: 100 });
        let hot_share = match spec.keys.as_ref().and_then(|k| k.value.hot_share.as_ref()) {
            Some(h) if h.value > 100 => return ctx.err(h, "`hot-share` is a percentage: 0 to 100"),
            Some(h) => h.value,
            None => 0,
        };
        let pc = config(&ctx, Scope::Producer, &spec.config)?;
        let acks = match pc.text("acks").as_deref() {
            None | Some("all") | Some("-1") => Acks::All,
            Some("1") => Acks::One,
            Some(_) => Acks::Zero,
        };
        let max_in_flight = pc.int("max.in.flight.requests.per.connection").unwrap_or(5) as u32;
        let idempotence = match pc.bool("enable.idempotence") {
            Some(true) => {
                let at = pc.spanned("enable.idempotence").expect("set");
                if acks != Acks::All {
                    return ctx.err(
                        at,
                        "Kafka refuses this producer: `enable.idempotence=true` needs `acks=all` (ConfigException)",
                    );
                }
                if pc.int("retries") == Some(0) {
                    return ctx.err(at, "Kafka refuses this producer: `enable.idempotence=true` needs `retries` above 0 (ConfigException)");
                }
                if max_in_flight > 5 {
                    return ctx.err(at, "Kafka refuses this producer: `enable.idempotence=true` needs `max.in.flight.requests.per.connection` of 5 or less");
                }
                true
            }
            Some(false) => false,
            // Kafka turns idempotence off silently when other settings conflict with it.
            None => acks == Acks::All && max_in_flight <= 5 && pc.int("retries") != Some(0),
        };
        let partitioner = match pc.text("partitioner.class") {
            None => Partitioner::BuiltIn,
            Some(name) => match Partitioner::from_name(&name) {
                Some(p) => p,
                None => {
                    let at = pc.spanned("partitioner.class").expect("set");
                    let hint = if name == "org.apache.kafka.clients.producer.internals.DefaultPartitioner" {
                        "; its null-key behaviour depends on the Kafka version: write `default-2.3` (round robin) or `sticky-2.4` (KIP-480)".to_string()
                    } else {
                        did_you_mean(&name, Partitioner::NAMES.iter().copied())
                    };
                    return ctx.err(
                        at,
                        format!(
                            "unknown partitioner `{name}`{hint}. Known: {}",
                            Partitioner::NAMES.join(", ")
                        ),
                    );
                }
            },
        };
        let (mut custom_rules, mut custom_otherwise) = (Vec::new(), None);
        let partitioner = match &spec.partitioner {
            None => partitioner,
            Some(custom) => {
                if let Some(at) = pc.spanned("partitioner.class") {
                    return ctx.err(
                        at,
                        "write either `partitioner.class` or a custom `partitioner:`, not both",
                    );
                }
                if keys.is_none() {
                    return ctx.err(
                        custom,
                        "a custom partitioner places records by key: give this producer `keys`",
                    );
                }
                let n = topics[topic].partitions;
                for rule in &custom.value.rules {
                    let part = &rule.value.partition;
                    if part.value >= n {
                        return ctx.err(
                            part,
                            format!(
                                "partition {} does not exist: topic `{}` has {n} (0..{n})",
                                part.value, topics[topic].name
                            ),
                        );
                    }
                    custom_rules.push((rule.value.prefix.clone(), part.value));
                }
                match custom.value.otherwise.as_ref() {
                    None => {}
                    Some(o) => match &o.value {
                        Scalar::Text(t) if t == "hash" => {}
                        Scalar::Int(i) if *i >= 0 && (*i as u64) < u64::from(n) => custom_otherwise = Some(*i as u32),
                        other => {
                            return ctx.err(
                                o,
                                format!(
                                    "`otherwise` is `hash` or a partition of 0..{n}, not {}",
                                    other.as_written()
                                ),
                            );
                        }
                    },
                }
                Partitioner::Custom
            }
        };
        let linger = pc.ms("linger.ms", 5);
        let request_timeout = pc.ms("request.timeout.ms", 30_000);
        let mut delivery_timeout = pc.ms("delivery.timeout.ms", 120_000);
        if delivery_timeout < linger + request_timeout {
            if let Some(at) = pc.spanned("delivery.timeout.ms") {
                return ctx.err(at, "Kafka refuses this producer: `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms` (ConfigException)");
            }
            delivery_timeout = linger + request_timeout;
        }
        let batch_size = pc.int("batch.size").unwrap_or(16_384) as u32;
        let buffer_memory = pc.int("buffer.memory").unwrap_or(33_554_432) as u64;
        if buffer_memory < u64::from(batch_size) {
            let at = pc
                .spanned("buffer.memory")
                .or(pc.spanned("batch.size"))
                .expect("one is set");
            return ctx.err(
                at,
                format!("`buffer.memory` ({buffer_memory}) is below `batch.size` ({batch_size}): Kafka's buffer pool refuses every batch allocation larger than the whole pool"),
            );
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
    for c in &raw.consumers {
        let spec = &c.value;
        if !is_kebab(&spec.group.value) {
            return ctx.err(
                &spec.group,
                format!("group name `{}` must be kebab-case", spec.group.value),
            );
        }
        if groups.iter().any(|g| g.group == spec.group.value) {
            return ctx.err(
                &spec.group,
                format!(
                    "group `{}` is defined twice: use `members` for more consumers",
                    spec.group.value
                ),
            );
        }
        let members = spec.members.as_ref().map(|m| m.value).unwrap_or(1);
        if let Some(m) = &spec.members
            && (m.value == 0 || m.value > 1000)
        {
            return ctx.err(m, format!("`members` must be between 1 and 1000, not {}", m.value));
        }
        claim(
            &ctx,
            &spec.group,
            (0..members).map(|i| format!("{}-{i}", spec.group.value)).collect(),
        )?;
        if spec.topics.value.is_empty() {
            return ctx.err(&spec.topics, "a group must read at least one topic");
        }
        let mut group_topics = Vec::new();
        for t in &spec.topics.value {
            let i = topic_index(&ctx, t)?;
            if !group_topics.contains(&i) {
                group_topics.push(i);
            }
        }
        let cc = config(&ctx, Scope::Consumer, &spec.config)?;
        let commit = match (&spec.commit, cc.bool("enable.auto.commit")) {
            (Some(mode), Some(auto)) if (mode.value == CommitMode::Auto) != auto => {
                return ctx.err(
                    mode,
                    format!(
                        "`commit: {}` contradicts `enable.auto.commit: {auto}`",
                        commit_word(mode.value)
                    ),
                );
            }
            (Some(mode), _) => mode.value,
            (None, Some(false)) => CommitMode::AfterProcessing,
            (None, _) => CommitMode::Auto,
        };
        let auto_offset_reset = match cc.text("auto.offset.reset").as_deref() {
            Some("earliest") => OffsetReset::Earliest,
            Some("none") => {
                let at = cc.spanned("auto.offset.reset").expect("set");
                return ctx.err(at, "not supported yet: `auto.offset.reset: none` (the application would have to handle NoOffsetForPartitionException); use earliest or latest");
            }
            _ => OffsetReset::Latest,
        };
        let mut strategies = Vec::new();
        match cc.spanned("partition.assignment.strategy") {
            None => strategies.extend(["range".to_string(), "cooperative-sticky".to_string()]),
            Some(at) => {
                for name in at.value.to_string().split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match crate::kafka::assignor::Strategy::parse(name) {
                        Some(s) => strategies.push(s.name().to_string()),
                        None => {
                            let known: Vec<&str> = crate::kafka::assignor::Strategy::spellings().collect();
                            return ctx.err(
                                at,
                                format!(
                                    "unknown assignor `{name}`{}; one of range, roundrobin, sticky, cooperative-sticky (or Kafka's class names)",
                                    did_you_mean(name, known)
                                ),
                            );
                        }
                    }
                }
                if strategies.is_empty() {
                    return ctx.err(at, "`partition.assignment.strategy` needs at least one assignor");
                }
            }
        }
        let session_timeout = cc.ms("session.timeout.ms", 45_000);
        let (min, max) = (broker.group_min_session_timeout, broker.group_max_session_timeout);
        if session_timeout < min || session_timeout > max {
            let at = cc
                .spanned("session.timeout.ms")
                .expect("only a set value can be out of range");
            return ctx.err(
                at,
                format!("the coordinator refuses `session.timeout.ms` {session_timeout} (INVALID_SESSION_TIMEOUT): it must be between group.min.session.timeout.ms ({min}) and group.max.session.timeout.ms ({max})"),
            );
        }
        let mut start_at = vec![Duration::ZERO; members as usize];
        if let Some(starts) = &spec.start_at {
            for (name, at) in &starts.value {
                let i = member_index(&ctx, &spec.group.value, members, name, at, "start-at")?;
                start_at[i as usize] = at.value.0;
            }
        }
        let stall = match &spec.stall {
            None => None,
            Some(st) => {
                let member = &st.value.member;
                let i = member_index(&ctx, &spec.group.value, members, &member.value, member, "stall")?;
                if st.value.length.value.0 == Duration::ZERO {
                    return ctx.err(&st.value.length, "`stall.for` must be more than zero");
                }
                Some((i, st.value.at.value.0, st.value.length.value.0))
            }
        };
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
    let end = duration + drain;
    let node = |n: &S<String>| -> R<String> {
        let name = n.value.as_str();
        if node_names.iter().any(|x| x == name) {
            return Ok(name.to_string());
        }
        let is_broker_id = name.strip_prefix("broker-").is_some_and(|id| id.parse::<u32>().is_ok());
        let hint = if is_broker_id {
            format!(": the brokers are broker-1 … broker-{brokers}")
        } else {
            did_you_mean(name, node_names.iter().map(String::as_str))
        };
        ctx.err(n, format!("no node is named `{name}`{hint}"))
    };
    // A node's name, or a role (`leader(orders-0)`, `coordinator(billing)`) that exists.
    let target = |n: &S<String>| -> R<String> {
        let Some(role) = RoleRef::parse(&n.value) else {
            return node(n);
        };
        match role {
            Err(message) => ctx.err(n, message),
            Ok(RoleRef::Leader(topic, p)) => match topics.iter().find(|t| t.name == topic) {
                None => ctx.err(
                    n,
                    format!(
                        "`{}`: there is no topic `{topic}`{}",
                        n.value,
                        did_you_mean(topic, topics.iter().map(|t| t.name.as_str()))
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
                if groups.iter().any(|g| g.group == group) {
                    Ok(n.value.clone())
                } else {
                    ctx.err(
                        n,
                        format!(
                            "`{}`: there is no consumer group `{group}`{}",
                            n.value,
                            did_you_mean(group, groups.iter().map(|g| g.group.as_str()))
                        ),
                    )
                }
            }
        }
    };
    let mut faults = Vec::new();
    for f in &raw.faults {
        let spec = &f.value;
        let at = spec.at.value.0;
        if at > end {
            return ctx.err(
                &spec.at,
                format!(
                    "fault at {} is after the end of the run ({} = duration {} + drain {})",
                    spec.at.value.0, end, duration, drain
                ),
            );
        }
        if let Some((key, why)) = &spec.stray {
            let k = key.value.as_str();
            return match why {
                schema::Stray::SecondKind => ctx.err(
                    key,
                    format!("a fault has one kind, but `{k}` is a second one: write two faults"),
                ),
                schema::Stray::Unknown => {
                    let mut known = vec!["at", "for"];
                    known.extend(schema::FAULT_KINDS);
                    ctx.err(
                        key,
                        format!(
                            "unknown fault key `{k}`; a fault is `at:` plus one of {}, and optionally `for:`.{}",
                            schema::FAULT_KINDS.join(", "),
                            did_you_mean_sentence(k, known.iter().copied())
                        ),
                    )
                }
            };
        }
        let Some(kind) = &spec.kind else {
            return ctx.err(
                &spec.at,
                format!("this fault has no kind: add one of {}", schema::FAULT_KINDS.join(", ")),
            );
        };
        if let schema::FaultKind::Crash(n)
        | schema::FaultKind::Restart(n)
        | schema::FaultKind::Pause(n)
        | schema::FaultKind::PowerLoss(n) = kind
            && n.value == CONTROLLER
        {
            return ctx.err(n, "the controller does not fail in kafkasim (a simplification); cut it off from the network with `isolate`, `partition` or `cut` instead");
        }
        let lasts = match (&spec.length, kind) {
            (Some(l), schema::FaultKind::Restart(_)) => {
                return ctx.err(l, "`for:` does not go with `restart`: write it on the crash it ends");
            }
            (Some(l), schema::FaultKind::Heal(_)) => {
                return ctx.err(l, "`for:` does not go with `heal`: write it on the fault it ends");
            }
            (Some(l), _) if l.value.0 == Duration::ZERO => {
                return ctx.err(l, "`for:` must be more than zero");
            }
            (None, schema::FaultKind::Pause(n)) => {
                return ctx.err(n, "`pause` needs `for:`, e.g. `{at: 10s, pause: broker-2, for: 5s}`");
            }
            (l, _) => l.as_ref().map(|l| l.value.0),
        };
        let kind = match kind {
            schema::FaultKind::Crash(n) => FaultKind::Crash(target(n)?),
            schema::FaultKind::Stop(n) => {
                if RoleRef::parse(&n.value).is_some() {
                    return ctx.err(n, "`stop` is a consumer's clean shutdown: name the member");
                }
                let name = node(n)?;
                if !groups.iter().any(|g| Scenario::member_names(g).contains(&name)) {
                    return ctx.err(n, format!("`stop` is a consumer's clean shutdown (`close()`); `{name}` is not a consumer: use `crash` (controlled shutdown of brokers is not modelled)"));
                }
                FaultKind::Stop(name)
            }
            schema::FaultKind::PowerLoss(n) => {
                let name = target(n)?;
                let broker = RoleRef::parse(&name).is_some() || (1..=brokers).any(|b| Scenario::broker_name(b) == name);
                if !broker {
                    return ctx.err(n, format!("`power-loss` applies to brokers (it loses unflushed log data); use `crash: {name}` for a client"));
                }
                FaultKind::PowerLoss(name)
            }
            schema::FaultKind::Restart(n) => {
                if RoleRef::parse(&n.value).is_some() {
                    return ctx.err(n, "`restart` names a node, not a role: the node that is down");
                }
                FaultKind::Restart(node(n)?)
            }
            schema::FaultKind::Pause(n) => FaultKind::Pause(target(n)?),
            schema::FaultKind::Isolate(n) => FaultKind::Isolate(target(n)?),
            schema::FaultKind::Partition(groups_spec) => {
                if groups_spec.len() < 2 {
                    return ctx.err(
                        &spec.at,
                        "`partition` needs at least two groups of nodes, e.g. `[[broker-1], [broker-2, broker-3]]`",
                    );
                }
                let mut seen: Vec<String> = Vec::new();
                let mut out = Vec::new();
                for g in groups_spec {
                    let mut names = Vec::new();
                    for n in g {
                        let name = target(n)?;
                        if seen.contains(&name) {
                            return ctx.err(n, format!("`{name}` is in two groups of one partition"));
                        }
                        seen.push(name.clone());
                        names.push(name);
                    }
                    if names.is_empty() {
                        return ctx.err(&spec.at, "a partition group is empty");
                    }
                    out.push(names);
                }
                FaultKind::Partition(out)
            }
            schema::FaultKind::Cut { from, to } => {
                let (a, b) = (target(from)?, target(to)?);
                if a == b {
                    return ctx.err(to, "a cut needs two different nodes");
                }
                FaultKind::Cut { from: a, to: b }
            }
            schema::FaultKind::Slow { nodes, latency } => {
                let names = nodes.iter().map(target).collect::<R<Vec<_>>>()?;
                FaultKind::Slow {
                    nodes: names,
                    latency: latency.value.0,
                }
            }
            schema::FaultKind::Heal(what) => {
                if what.value != "all" {
                    return ctx.err(
                        what,
                        format!(
                            "`heal` takes `all`, not `{}` (to heal one fault, give it `for:`)",
                            what.value
                        ),
                    );
                }
                FaultKind::HealAll
            }
        };
        faults.push(Fault { at, kind, lasts });
    }
    // Faults at one instant fire in file order; sorting keeps that (the sort is stable).
    faults.sort_by_key(|f| f.at);

    // The nemesis.
    let nemesis = match &raw.nemesis {
        None => None,
        Some(n) => {
            let spec = &n.value;
            let mut kinds = Vec::new();
            for k in &spec.faults.value {
                let words = NemesisKind::ALL.map(NemesisKind::word);
                let Some(kind) = NemesisKind::ALL.into_iter().find(|x| x.word() == k.value) else {
                    return ctx.err(
                        k,
                        format!(
                            "unknown nemesis fault `{}`{}; one of {}",
                            k.value,
                            did_you_mean(&k.value, words),
                            words.join(", ")
                        ),
                    );
                };
                if kinds.contains(&kind) {
                    return ctx.err(k, format!("`{}` is listed twice", k.value));
                }
                kinds.push(kind);
            }
            if kinds.is_empty() {
                return ctx.err(&spec.faults, "the nemesis needs at least one kind of fault to draw");
            }
            let broker_names: Vec<String> = (1..=brokers).map(Scenario::broker_name).collect();
            let clients: Vec<String> = node_names
                .iter()
                .filter(|n| !broker_names.contains(n) && *n != CONTROLLER)
                .cloned()
                .collect();
            let targets: Vec<String> = match spec.targets.as_ref().map(|t| (&t.value, t)) {
                None => broker_names.clone(),
                Some((schema::Targets::Set(set), at)) => match set.as_str() {
                    "brokers" => broker_names.clone(),
                    "clients" if clients.is_empty() => {
                        return ctx.err(at, "`targets: clients`, but the scenario has no producers or consumers");
                    }
                    "clients" => clients,
                    "all" => {
                        let mut all = broker_names.clone();
                        all.push(CONTROLLER.to_string());
                        all.extend(clients);
                        all
                    }
                    other => {
                        return ctx.err(
                            at,
                            format!(
                                "unknown targets `{other}`{}; write brokers, clients, all, or a list of nodes and roles",
                                did_you_mean(other, ["brokers", "clients", "all"])
                            ),
                        );
                    }
                },
                Some((schema::Targets::List(list), at)) => {
                    let mut out: Vec<String> = Vec::new();
                    for t in list {
                        let name = target(t)?;
                        if out.contains(&name) {
                            return ctx.err(t, format!("`{name}` is listed twice"));
                        }
                        out.push(name);
                    }
                    if out.is_empty() {
                        return ctx.err(at, "the nemesis needs at least one target");
                    }
                    out
                }
            };
            let every = (spec.every.value.min, spec.every.value.max);
            if every.0 == Duration::ZERO {
                return ctx.err(&spec.every, "`every` must be more than zero");
            }
            // Every fault is drawn before the run: their number must stay sensible.
            const MAX_DRAWN: u64 = 100_000;
            let window = spec.until.as_ref().map_or(duration, |u| u.value.0)
                - spec.from.as_ref().map_or(Duration::ZERO, |f| f.value.0);
            if window.0 / every.0.0 > MAX_DRAWN {
                return ctx.err(
                    &spec.every,
                    format!(
                        "the nemesis would draw up to {} faults (one every {} over {window}); at most {MAX_DRAWN}: make `every` longer",
                        window.0 / every.0.0,
                        every.0
                    ),
                );
            }
            let lasts = (spec.lasts.value.min, spec.lasts.value.max);
            if lasts.0 == Duration::ZERO {
                return ctx.err(&spec.lasts, "`lasts` must be more than zero");
            }
            let from = spec.from.as_ref().map_or(Duration::ZERO, |f| f.value.0);
            let until = spec.until.as_ref().map_or(duration, |u| u.value.0);
            if let Some(u) = &spec.until {
                if until > end {
                    return ctx.err(
                        u,
                        format!("`until` is after the end of the run ({end} = duration {duration} + drain {drain})"),
                    );
                }
                if until < from {
                    return ctx.err(u, "`until` is before `from`");
                }
            } else if let Some(f) = spec.from.as_ref().filter(|_| from > until) {
                return ctx.err(
                    f,
                    format!("`from` is after the end of the workload ({duration}): add `until`"),
                );
            }
            let max_down = spec.max_down.as_ref().map_or(1, |m| m.value);
            for (k, kind) in spec.faults.value.iter().zip(&kinds) {
                let eligible = targets
                    .iter()
                    .filter(|t| super::nemesis::can_take(*kind, t, &broker_names))
                    .count();
                if eligible == 0 || (super::nemesis::needs_two(*kind) && targets.len() < 2) {
                    let why = match kind {
                        NemesisKind::Crash | NemesisKind::Pause => {
                            "the controller does not fail in kafkasim; add brokers or clients to `targets`"
                        }
                        NemesisKind::PowerLoss => "power loss hits brokers; add brokers or roles to `targets`",
                        _ => "it needs two targets or more",
                    };
                    return ctx.err(k, format!("the nemesis cannot draw `{}`: {why}", k.value));
                }
                let down = !matches!(kind, NemesisKind::Cut | NemesisKind::Slow);
                if down && max_down == 0 {
                    let at = spec.max_down.as_ref().expect("0 only when written");
                    return ctx.err(
                        at,
                        format!(
                            "with `max-down: 0` the nemesis can draw only cut and slow, not `{}`",
                            k.value
                        ),
                    );
                }
            }
            let slow_latency = spec
                .slow_latency
                .as_ref()
                .map_or((Duration::from_millis(100), Duration::from_millis(1000)), |s| {
                    (s.value.min, s.value.max)
                });
            Some(Nemesis {
                kinds,
                targets,
                every,
                lasts,
                max_down,
                from,
                until,
                slow_latency,
            })
        }
    };

    // The settings a sweep varies.
    let mut vary: Vec<Vary> = Vec::new();
    for v in &raw.vary {
        let spec = &v.value;
        let Some(scope) = VaryScope::parse(&spec.scope.value) else {
            return ctx.err(&spec.scope, format!("unknown scope `{}`", spec.scope.value));
        };
        let key = spec.key.value.as_str();
        if let Err(message) = super::vary::known(scope, key) {
            return ctx.err(&spec.key, message);
        }
        if vary.iter().any(|x| x.scope == scope && x.key == key) {
            return ctx.err(&spec.key, format!("`{}: {key}` is varied twice", scope.word()));
        }
        if spec.values.value.is_empty() {
            return ctx.err(&spec.values, "`values` needs at least one value");
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
                    return ctx.err(v, format!("unknown check `{name}`{}", did_you_mean(name, known)));
                }
                Some(c) if !c.implemented => {
                    return ctx.err(v, format!("not supported yet: check `{name}` is not implemented yet"));
                }
                Some(_) => {}
            }
            if expect_violations.iter().any(|x| x == name) {
                return ctx.err(v, format!("`{name}` is listed twice"));
            }
            expect_violations.push(name.to_string());
        }
    }

    let mut pictures = Vec::new();
    for at in &raw.pictures {
        if at.value.0 > end {
            return ctx.err(
                at,
                format!("a picture at {} is after the end of the run ({end})", at.value.0),
            );
        }
        pictures.push(at.value.0);
    }
    pictures.sort();
    pictures.dedup();

    Ok(Scenario {
        name: name.value.clone(),
        description: raw.description.clone().unwrap_or_default().trim().to_string(),
        seed: raw.seed.unwrap_or(0),
        duration,
        drain,
        brokers,
        latency,
        jitter,
        broker,
        topics,
        producers,
        groups,
        faults,
        nemesis,
        vary,
        expect_violations,
        warnings: ctx.warnings,
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
