//! The YAML scenario format as serde types (DESIGN.md §5). Values that later validation
//! must point at are wrapped in `Spanned` so errors can name their line and column.
//!
//! Every struct denies unknown keys; the loader turns serde's "unknown field" message into
//! one with a "did you mean" hint.

pub use crate::kafka::config::{CommitMode, ValueBytes};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

pub type S<T> = Spanned<T>;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub name: Option<S<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub duration: Option<S<DurationValue>>,
    #[serde(default)]
    pub drain: Option<S<DurationValue>>,
    #[serde(default)]
    pub cluster: Option<S<ClusterSpec>>,
    #[serde(default)]
    pub topics: Vec<S<TopicSpec>>,
    #[serde(default)]
    pub producers: Vec<S<ProducerSpec>>,
    #[serde(default)]
    pub consumers: Vec<S<ConsumerSpec>>,
    #[serde(default)]
    pub faults: Vec<S<FaultSpec>>,
    /// Faults drawn at random from the seed.
    #[serde(default)]
    pub nemesis: Option<S<NemesisSpec>>,
    /// Settings a sweep varies: every combination is run over the same seeds.
    #[serde(default)]
    pub vary: Vec<S<VarySpec>>,
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
    /// Moments at which the report also draws every partition.
    #[serde(default)]
    pub pictures: Vec<S<DurationValue>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub brokers: S<u32>,
    /// KRaft voters.
    #[serde(default)]
    pub controllers: Option<S<u32>>,
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    #[serde(default)]
    pub config: Props,
    #[serde(default)]
    pub truncation: Option<S<String>>,
    /// Kafka's feature levels, by Kafka's feature names.
    #[serde(default)]
    pub features: Option<FeaturesSpec>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSpec {
    /// KIP-966: 0 off, 1 on (the default for a new Kafka 4.1 cluster).
    #[serde(default, rename = "eligible.leader.replicas.version")]
    pub eligible_leader_replicas_version: Option<S<u32>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(default)]
    pub latency: Option<S<DurationValue>>,
    #[serde(default)]
    pub jitter: Option<S<DurationValue>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: S<String>,
    #[serde(default)]
    pub partitions: Option<S<u32>>,
    #[serde(default, rename = "replication.factor")]
    pub replication_factor: Option<S<u32>>,
    #[serde(default)]
    pub replicas: Option<S<Vec<Vec<S<u32>>>>>,
    #[serde(default)]
    pub config: Props,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    pub name: S<String>,
    #[serde(default)]
    pub instances: Option<S<u32>>,
    pub topic: S<String>,
    #[serde(default)]
    pub rate: Option<S<String>>,
    #[serde(default)]
    pub messages: Option<S<i64>>,
    /// Periodic bursts on top of `rate`.
    #[serde(default)]
    pub burst: Option<S<BurstSpec>>,
    #[serde(default)]
    pub keys: Option<S<KeysSpec>>,
    #[serde(default, rename = "value.bytes")]
    pub value_bytes: Option<S<ValueBytes>>,
    /// A custom partitioner, standing in for an implementation of Kafka's `Partitioner`.
    #[serde(default)]
    pub partitioner: Option<S<CustomPartitionerSpec>>,
    #[serde(default)]
    pub config: Props,
}

/// A member whose processing hangs (a slow database call): the poll it is processing at
/// `at`, or begins before `at + for`, takes until `at + for` longer.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct StallSpec {
    pub member: S<String>,
    pub at: S<DurationValue>,
    #[serde(rename = "for")]
    pub length: S<DurationValue>,
}

/// `burst: {rate: 20000/s, every: 10s, for: 1s}`: from `every`, then every `every`, the
/// producer sends at the burst rate for `for`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub rate: S<String>,
    pub every: S<DurationValue>,
    #[serde(rename = "for")]
    pub length: S<DurationValue>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CustomPartitionerSpec {
    /// Tried in order: a key starting with `prefix` goes to `partition`.
    pub rules: Vec<S<PrefixRule>>,
    /// Keys no rule matches: `hash` (murmur2, as the built-in partitioner) or a partition.
    #[serde(default)]
    pub otherwise: Option<S<Scalar>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PrefixRule {
    pub prefix: String,
    pub partition: S<u32>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct KeysSpec {
    /// Keys `key-0` … `key-{count-1}`.
    #[serde(default)]
    pub count: Option<S<u32>>,
    /// These keys, as UTF-8 strings.
    #[serde(default)]
    pub list: Option<S<Vec<String>>>,
    /// `uniform` (the default) or `zipf`.
    #[serde(default)]
    pub distribution: Option<S<String>>,
    /// The zipf exponent `s`: key `k` (from 1) is drawn with weight `1 / k^s`. Default 1.
    #[serde(default)]
    pub exponent: Option<S<f64>>,
    /// The percentage of records that carry the first key (a hot key); the rest are
    /// spread over all keys.
    #[serde(default, rename = "hot-share")]
    pub hot_share: Option<S<u32>>,
}

impl<'de> Deserialize<'de> for ValueBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, or `{min: 50, max: 500}`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueBytes, E> {
                let v = u32::try_from(v).map_err(|_| E::custom("value size too large"))?;
                Ok(ValueBytes { min: v, max: v })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueBytes, E> {
                if v < 0 {
                    return Err(E::custom("a value size is zero or more bytes"));
                }
                self.visit_u64(v as u64)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ValueBytes, A::Error> {
                let (mut min, mut max) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "min" => min = Some(map.next_value::<u32>()?),
                        "max" => max = Some(map.next_value::<u32>()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in `value.bytes`: write `min` and `max`"
                            )));
                        }
                    }
                }
                match (min, max) {
                    (Some(min), Some(max)) if min <= max => Ok(ValueBytes { min, max }),
                    (Some(_), Some(_)) => Err(de::Error::custom("`value.bytes.min` is larger than `max`")),
                    _ => Err(de::Error::custom("`value.bytes` as a range needs both `min` and `max`")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub group: S<String>,
    #[serde(default)]
    pub members: Option<S<u32>>,
    pub topics: S<Vec<S<String>>>,
    #[serde(default)]
    pub processing: Option<S<DurationValue>>,
    #[serde(default)]
    pub commit: Option<S<CommitMode>>,
    /// One member's processing stalls: `{member: reports-1, at: 10s, for: 30s}`.
    #[serde(default)]
    pub stall: Option<S<StallSpec>>,
    /// Members that start late: `{billing-2: 20s}`.
    #[serde(default, rename = "start-at")]
    pub start_at: Option<S<BTreeMap<String, S<DurationValue>>>>,
    #[serde(default)]
    pub config: Props,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    #[serde(default)]
    pub violations: Vec<S<String>>,
}

/// `nemesis:`: faults drawn from the seed.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// The kinds to draw from.
    pub faults: S<Vec<S<String>>>,
    /// `brokers` (the default), `clients`, `all`, or a list of node names and roles.
    #[serde(default)]
    pub targets: Option<S<Targets>>,
    /// The time between the starts of two faults.
    pub every: S<DurationRange>,
    /// How long a fault lasts before it heals.
    pub lasts: S<DurationRange>,
    /// At most this many nodes down at once (default 1).
    #[serde(default, rename = "max-down")]
    pub max_down: Option<S<u32>>,
    /// No fault starts earlier (default 0).
    #[serde(default)]
    pub from: Option<S<DurationValue>>,
    /// No fault starts later (default: the end of the workload).
    #[serde(default)]
    pub until: Option<S<DurationValue>>,
    /// The extra one-way latency of a `slow` fault (default 100ms..1s).
    #[serde(default, rename = "slow-latency")]
    pub slow_latency: Option<S<DurationRange>>,
}

/// The nodes a nemesis picks from: a named set, or a list of nodes and roles.
#[derive(Debug)]
pub enum Targets {
    Set(String),
    List(Vec<S<String>>),
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`brokers`, `clients`, `all`, or a list of node names and roles")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Targets, E> {
                Ok(Targets::Set(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<S<String>>()? {
                    items.push(item);
                }
                Ok(Targets::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A span of durations, `5s..20s`, drawn from uniformly; a single duration is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: crate::sim::Duration,
    pub max: crate::sim::Duration,
}

impl<'de> Deserialize<'de> for DurationRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a range of durations such as `5s..20s`, or one duration")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationRange, E> {
                let d = DurationValue::deserialize(de::value::U64Deserializer::<E>::new(v))?.0;
                Ok(DurationRange { min: d, max: d })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationRange, E> {
                let d = DurationValue::deserialize(de::value::I64Deserializer::<E>::new(v))?.0;
                Ok(DurationRange { min: d, max: d })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationRange, E> {
                let (a, b) = v.split_once("..").unwrap_or((v, v));
                let min = parse_duration(a).map_err(E::custom)?;
                let max = parse_duration(b).map_err(E::custom)?;
                if min > max {
                    return Err(E::custom(format!(
                        "`{v}`: the first duration is larger than the second"
                    )));
                }
                Ok(DurationRange { min, max })
            }
        }
        d.deserialize_any(V)
    }
}

/// One `vary:` entry: `{ producer: acks, values: [1, all] }`.
#[derive(Debug)]
pub struct VarySpec {
    /// The scope as written (`producer`, `topic`, `broker`, `group`, `cluster`).
    pub scope: S<String>,
    /// The property or cluster key.
    pub key: S<String>,
    pub values: S<Vec<S<Scalar>>>,
}

/// The scopes a `vary:` entry may name.
pub const VARY_SCOPES: &[&str] = &["producer", "topic", "broker", "group", "cluster"];

impl<'de> Deserialize<'de> for VarySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VarySpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a setting to vary such as `{ producer: acks, values: [1, all] }`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VarySpec, A::Error> {
                let mut target: Option<(S<String>, S<String>)> = None;
                let mut values = None;
                while let Some(key) = map.next_key::<S<String>>()? {
                    match key.value.as_str() {
                        "values" => values = Some(map.next_value()?),
                        k if VARY_SCOPES.contains(&k) => {
                            if target.is_some() {
                                return Err(de::Error::custom(
                                    "a `vary` entry names one setting: write one entry per setting",
                                ));
                            }
                            target = Some((key, map.next_value()?));
                        }
                        other => {
                            let mut known = VARY_SCOPES.to_vec();
                            known.push("values");
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in a `vary` entry; write one of {} and `values`{}",
                                VARY_SCOPES.join(", "),
                                crate::scenario::did_you_mean(other, known)
                            )));
                        }
                    }
                }
                let (scope, key) = target.ok_or_else(|| {
                    de::Error::custom(format!(
                        "a `vary` entry names a setting: `{{ producer: acks, values: [1, all] }}` (scopes: {})",
                        VARY_SCOPES.join(", ")
                    ))
                })?;
                let values = values.ok_or_else(|| de::Error::custom("a `vary` entry needs `values: [...]`"))?;
                Ok(VarySpec { scope, key, values })
            }
        }
        d.deserialize_map(V)
    }
}

/// A duration: `250ms`, `10s`, `2m`, `500us`, or an integer number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub crate::sim::Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `250ms`, `10s`, `2m`, or a whole number of milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                v.checked_mul(1000)
                    .map(|us| DurationValue(crate::sim::Duration(us)))
                    .ok_or_else(|| E::custom("duration too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "negative duration `{v}`: durations are zero or more"
                    )));
                }
                self.visit_u64(v as u64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `250ms`, `10s`, `2m`, `1h`, `500us` or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<crate::sim::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        format!(
            "malformed duration `{text}`: write a whole number with a unit (`500us`, `250ms`, `10s`, `2m`, `1h`) or a number of milliseconds"
        )
    };
    if digits.is_empty() {
        if t.starts_with('-') {
            return Err(format!("negative duration `{text}`: durations are zero or more"));
        }
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "" | "ms" => 1000,
        "us" | "µs" => 1,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(crate::sim::Duration)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// A scalar property value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Text(s) => write!(f, "{s}"),
        }
    }
}

impl serde::Serialize for Scalar {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        match self {
            Scalar::Int(i) => s.serialize_i64(*i),
            Scalar::Bool(b) => s.serialize_bool(*b),
            Scalar::Text(t) => s.serialize_str(t),
        }
    }
}

impl Scalar {
    /// The value as it was written: text in quotes, so `"true"` is not mistaken for `true`.
    pub fn as_written(&self) -> String {
        match self {
            Scalar::Text(s) => format!("\"{s}\""),
            other => other.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, true/false, or a word")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                // Kafka writes lists as comma-separated strings; accept a YAML list too.
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(Scalar::Text(items.join(",")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `config:` block: Kafka property names to values, in the order written.
#[derive(Debug, Default)]
pub struct Props(pub Vec<(S<String>, S<Scalar>)>);

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Props;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of Kafka property names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Props, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<S<String>>()? {
                    let value = map.next_value::<S<Scalar>>()?;
                    entries.push((key, value));
                }
                Ok(Props(entries))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Props, E> {
                Ok(Props::default())
            }
        }
        d.deserialize_map(V)
    }
}

/// The fault kinds, as written in a fault's key.
pub const FAULT_KINDS: &[&str] = &[
    "crash",
    "stop",
    "power-loss",
    "restart",
    "pause",
    "isolate",
    "partition",
    "cut",
    "slow",
    "heal",
];

/// One scheduled fault: `{at: 10s, crash: broker-2}`.
#[derive(Debug)]
pub struct FaultSpec {
    pub at: S<DurationValue>,
    /// `None` when no kind was written.
    pub kind: Option<FaultKind>,
    /// `for:`: the fault heals after this long.
    pub length: Option<S<DurationValue>>,
    /// A key that is no fault kind, or a second kind: validation reports it at its place.
    pub stray: Option<(S<String>, Stray)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    Unknown,
    SecondKind,
}

#[derive(Debug)]
pub enum FaultKind {
    Crash(S<String>),
    Stop(S<String>),
    PowerLoss(S<String>),
    Restart(S<String>),
    Pause(S<String>),
    Isolate(S<String>),
    Partition(Vec<Vec<S<String>>>),
    Cut {
        from: S<String>,
        to: S<String>,
    },
    Slow {
        nodes: Vec<S<String>>,
        latency: S<DurationValue>,
    },
    Heal(S<String>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CutSpec {
    from: S<String>,
    to: S<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SlowSpec {
    nodes: Vec<S<String>>,
    latency: S<DurationValue>,
}

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FaultSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a fault such as `{at: 10s, crash: broker-2}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FaultSpec, A::Error> {
                let mut at = None;
                let mut length = None;
                let mut kind = None;
                let mut stray = None;
                while let Some(key) = map.next_key::<S<String>>()? {
                    let k = key.value.as_str();
                    if k == "at" {
                        at = Some(map.next_value()?);
                        continue;
                    }
                    if k == "for" {
                        length = Some(map.next_value()?);
                        continue;
                    }
                    if !FAULT_KINDS.contains(&k) || kind.is_some() {
                        map.next_value::<de::IgnoredAny>()?;
                        let why = if FAULT_KINDS.contains(&k) {
                            Stray::SecondKind
                        } else {
                            Stray::Unknown
                        };
                        stray.get_or_insert((key, why));
                        continue;
                    }
                    kind = Some(match k {
                        "crash" => FaultKind::Crash(map.next_value()?),
                        "stop" => FaultKind::Stop(map.next_value()?),
                        "power-loss" => FaultKind::PowerLoss(map.next_value()?),
                        "restart" => FaultKind::Restart(map.next_value()?),
                        "pause" => FaultKind::Pause(map.next_value()?),
                        "isolate" => FaultKind::Isolate(map.next_value()?),
                        "partition" => FaultKind::Partition(map.next_value()?),
                        "cut" => {
                            let c: CutSpec = map.next_value()?;
                            FaultKind::Cut { from: c.from, to: c.to }
                        }
                        "slow" => {
                            let s: SlowSpec = map.next_value()?;
                            FaultKind::Slow {
                                nodes: s.nodes,
                                latency: s.latency,
                            }
                        }
                        _ => FaultKind::Heal(map.next_value()?),
                    });
                }
                let at = at.ok_or_else(|| de::Error::custom("this fault has no `at:` time"))?;
                Ok(FaultSpec {
                    at,
                    kind,
                    length,
                    stray,
                })
            }
        }
        d.deserialize_map(V)
    }
}
