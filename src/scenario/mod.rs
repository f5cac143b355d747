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
    /// `cluster.controllers`: KRaft voters (1: one controller that never fails).
    pub controllers: u32,
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

pub use crate::kafka::config::{
    Acks, BrokerConfig, CONTROLLER, Group, KeyDistribution, Keys, OffsetReset, Partitioner, Producer, Topic, Workload,
};

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
        crate::kafka::config::broker_name(id)
    }

    pub fn producer_instance_names(&self, p: &Producer) -> Vec<String> {
        p.instance_names()
    }

    pub fn member_names(g: &Group) -> Vec<String> {
        g.member_names()
    }

    /// Every node name, in node-id order: brokers, the controller, producer instances,
    /// group members.
    pub fn node_names(&self) -> Vec<String> {
        self.cluster().node_names()
    }

    /// What the Kafka model is built from.
    pub fn cluster(&self) -> crate::kafka::config::Cluster<'_> {
        crate::kafka::config::Cluster {
            brokers: self.brokers,
            controllers: self.controllers,
            broker: &self.broker,
            topics: &self.topics,
            producers: &self.producers,
            groups: &self.groups,
            duration: self.duration,
        }
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
