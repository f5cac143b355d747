//! Sweeps: one scenario over many seeds (and, with `vary`, over every combination of
//! settings), in parallel over runs, each run single-threaded. Every run becomes one
//! [`RunRecord`], a line of the JSONL file; the summary and the matrix are computed from
//! the records alone, so sharded sweeps merge into exactly what one sweep prints.

pub mod matrix;
pub mod shrink;

use crate::report::Report;
use crate::run::{RunError, RunOptions, run};
use crate::scenario::vary::{self, Setting};
use crate::scenario::{self, InputError, Limit, Scenario};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// kafkasim's version, as the JSONL records it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default event budget of one run: generous (a minute or so of work), so that only
/// a runaway run meets it.
pub const DEFAULT_MAX_EVENTS: u64 = 100_000_000;

/// What a sweep runs: a scenario parsed once and validated for every combination.
pub struct Plan {
    /// The scenario file as named on the command line.
    pub file: String,
    pub text: String,
    /// SHA-256 of the file's bytes, in hex (as `sha256sum` prints it).
    pub hash: String,
    pub name: String,
    /// The scenario's own seed: where the seeds start by default.
    pub seed: u64,
    /// Whether a `vary` block is in effect: the sweep is a matrix.
    pub matrix: bool,
    pub combinations: Vec<Combination>,
    /// Whether the size limit applies (`--allow-huge` lifts it).
    pub limit: Limit,
}

/// One combination of varied settings and the scenario it gives, or the validator's
/// refusal.
pub struct Combination {
    pub settings: Vec<Setting>,
    pub scenario: Result<Scenario, InputError>,
}

impl Plan {
    /// Parses the scenario and validates every combination. `set` pins settings
    /// (`--set`): then the sweep runs that one combination and `vary` is ignored. The
    /// size limit applies.
    pub fn new(file: &str, bytes: &[u8], set: Vec<Setting>) -> Result<Plan, InputError> {
        Plan::with_limit(file, bytes, set, Limit::Enforced)
    }

    /// As [`Plan::new`], with `limit` saying whether the size limit applies (to the
    /// scenario, each combination, and the scenarios shrinking tries).
    pub fn with_limit(file: &str, bytes: &[u8], set: Vec<Setting>, limit: Limit) -> Result<Plan, InputError> {
        let text = scenario::decode(file, bytes.to_vec())?;
        let base = scenario::parse_with_limit(file, &text, &[], limit)?;
        let matrix = set.is_empty() && !base.vary.is_empty();
        let combinations = if matrix {
            let raw = scenario::parse_raw(file, &text)?;
            vary::combinations(&raw, &base.vary)
                .into_iter()
                .map(|settings| Combination {
                    scenario: scenario::parse_with_limit(file, &text, &settings, limit),
                    settings,
                })
                .collect()
        } else {
            // Without a matrix, bad settings are bad input.
            let scenario = scenario::parse_with_limit(file, &text, &set, limit)?;
            vec![Combination {
                settings: set,
                scenario: Ok(scenario),
            }]
        };
        Ok(Plan {
            file: file.to_string(),
            hash: sha256(bytes),
            name: base.name.clone(),
            seed: base.seed,
            matrix,
            combinations,
            text,
            limit,
        })
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A variant as the JSONL writes it: `{"producer:acks": "1", …}`, in the order the
/// settings are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variant(pub Vec<(String, String)>);

impl Variant {
    pub fn of(settings: &[Setting]) -> Variant {
        Variant(settings.iter().map(|s| (s.name(), s.value.to_string())).collect())
    }
    /// `--set producer:acks=1 --set …`, or nothing.
    pub fn flags(&self) -> String {
        self.0.iter().map(|(k, v)| format!(" --set {k}={v}")).collect()
    }
}

impl Serialize for Variant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Variant, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Variant;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of settings to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Variant, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(Variant(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Why a run gave no report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// kafkasim panicked: a bug in kafkasim.
    Panic,
    /// The run used up its event budget.
    Budget,
    /// The validator refused this combination of settings; it was not run.
    Invalid,
}

/// One run of a sweep: a line of the JSONL file. No wall-clock figure goes in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The scenario's name, the file as named on the command line, its SHA-256, and
    /// kafkasim's version.
    pub scenario: String,
    pub file: String,
    pub scenario_hash: String,
    pub version: String,
    pub seed: u64,
    /// The combination's index in the order combinations are enumerated, and its
    /// settings (`{}` when none).
    pub variant_index: usize,
    pub variant: Variant,
    /// Whether the sweep is a matrix (`vary`): then violations are data.
    pub matrix: bool,
    /// Whether every check came out as `expect` says.
    pub passed: bool,
    /// The checks that came out differently from `expect`.
    pub unexpected: Vec<String>,
    /// Violations by check, for the checks that had any.
    pub violations: BTreeMap<String, u64>,
    /// Records processed more than once, summed over groups.
    pub duplicates: u64,
    pub faults_fired: u64,
    pub events: u64,
    pub simulated_ms: u64,
    /// What the faults cost: time writes failed, time partitions were offline, and the
    /// 99th percentile of produce latency in microseconds.
    pub writes_refused_ms: u64,
    pub offline_ms: u64,
    pub produce_p99_us: u64,
    /// Set when the run gave no report: why, and what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunRecord {
    /// How this run went wrong, as the summary groups runs; `None` when it met its
    /// expectations (or, in a matrix, when it ran).
    pub fn failure(&self) -> Option<String> {
        if let Some(outcome) = &self.outcome {
            let message = self.message.as_deref().unwrap_or("");
            return Some(match outcome {
                Outcome::Panic => format!("panic: {message}"),
                Outcome::Budget => format!("budget: {message}"),
                Outcome::Invalid => format!("invalid: {message}"),
            });
        }
        if self.passed {
            return None;
        }
        let failed: Vec<&str> = self
            .unexpected
            .iter()
            .filter(|c| self.violations.contains_key(*c))
            .map(String::as_str)
            .collect();
        let missed: Vec<&str> = self
            .unexpected
            .iter()
            .filter(|c| !self.violations.contains_key(*c))
            .map(String::as_str)
            .collect();
        let mut parts = Vec::new();
        if !failed.is_empty() {
            parts.push(format!("{} failed unexpectedly", failed.join(", ")));
        }
        if !missed.is_empty() {
            parts.push(format!("{} did not fail as expected", missed.join(", ")));
        }
        Some(parts.join("; "))
    }

    /// The command that replays this run.
    pub fn replay(&self) -> String {
        // A run that ran out of events replays with the same budget.
        let budget = match (&self.outcome, &self.message) {
            (Some(Outcome::Budget), Some(m)) => m
                .strip_prefix("more than ")
                .and_then(|m| m.strip_suffix(" events"))
                .map(|n| format!(" --max-events {n}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        format!(
            "kafkasim run {} --seed {}{}{budget}",
            self.file,
            self.seed,
            self.variant.flags()
        )
    }

    fn base(plan: &Plan, index: usize, seed: u64) -> RunRecord {
        RunRecord {
            scenario: plan.name.clone(),
            file: plan.file.clone(),
            scenario_hash: plan.hash.clone(),
            version: VERSION.to_string(),
            seed,
            variant_index: index,
            variant: Variant::of(&plan.combinations[index].settings),
            matrix: plan.matrix,
            passed: false,
            unexpected: Vec::new(),
            violations: BTreeMap::new(),
            duplicates: 0,
            faults_fired: 0,
            events: 0,
            simulated_ms: 0,
            writes_refused_ms: 0,
            offline_ms: 0,
            produce_p99_us: 0,
            outcome: None,
            message: None,
        }
    }

    /// The record of a run that gave `report`.
    pub fn of_report(plan: &Plan, index: usize, seed: u64, report: &Report) -> RunRecord {
        RunRecord {
            passed: report.passed,
            unexpected: report
                .checks
                .iter()
                .filter(|c| c.implemented && c.passed == c.expected_to_fail)
                .map(|c| c.name.clone())
                .collect(),
            violations: report
                .checks
                .iter()
                .filter(|c| c.count > 0)
                .map(|c| (c.name.clone(), c.count))
                .collect(),
            duplicates: report.consumer_groups.iter().map(|g| g.duplicates).sum(),
            faults_fired: report.faults.iter().filter(|f| f.fired).count() as u64,
            events: report.events,
            simulated_ms: report.simulated_ms,
            writes_refused_ms: report.availability.writes_refused_ms,
            offline_ms: report.availability.offline_ms,
            produce_p99_us: (report.availability.produce_p99_ms * 1000.0).round() as u64,
            ..RunRecord::base(plan, index, seed)
        }
    }
}

/// How a sweep runs.
pub struct Options {
    /// The seeds: `from`, `from + 1`, …, `from + seeds - 1`.
    pub from: u64,
    pub seeds: u64,
    /// Threads; `None`: one per core.
    pub jobs: Option<usize>,
    /// `(k, n)`: run only the runs whose index is `k - 1` modulo `n`.
    pub shard: Option<(u64, u64)>,
    pub max_events: u64,
}

thread_local! {
    /// The last panic's message and place, kept by the hook [`quiet_panics`] installs.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread is inside a guarded run.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes panics inside guarded runs silent (a sweep reports them itself) and keeps each
/// one's message and place for the run's record; other panics go to the hook that was
/// there before.
pub fn quiet_panics() {
    let before = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(std::cell::Cell::get) {
            return before(info);
        }
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = panic_message(info.payload());
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{place}")));
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// How a run ended.
pub enum Ended {
    Report(Box<Report>),
    Budget { events: u64, simulated_ms: u64 },
    Panic(String),
}

/// Runs `scenario` with `seed`, catching a panic and stopping at `max_events`.
pub fn run_guarded(scenario: &Scenario, seed: u64, max_events: u64, source: &str) -> Ended {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    GUARDED.with(|g| g.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(
            scenario,
            RunOptions {
                seed: Some(seed),
                max_events: Some(max_events),
                source: source.to_string(),
                ..Default::default()
            },
        )
    }));
    GUARDED.with(|g| g.set(false));
    match result {
        Ok(Ok(report)) => Ended::Report(Box::new(report)),
        Ok(Err(RunError::Budget { events, simulated_ms })) => Ended::Budget { events, simulated_ms },
        Ok(Err(RunError::Trace(e))) => unreachable!("a guarded run writes no trace: {e}"),
        Ok(Err(RunError::TraceFilter(e))) => unreachable!("a guarded run filters no trace: {e}"),
        Err(payload) => Ended::Panic(
            LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| panic_message(&*payload)),
        ),
    }
}

impl RunRecord {
    /// The record of run (combination `index`, `seed`) of `plan`, which ended so.
    pub fn of_ended(plan: &Plan, index: usize, seed: u64, ended: Ended, max_events: u64) -> RunRecord {
        match ended {
            Ended::Report(report) => RunRecord::of_report(plan, index, seed, &report),
            Ended::Budget { events, simulated_ms } => RunRecord {
                outcome: Some(Outcome::Budget),
                message: Some(format!("more than {max_events} events")),
                events,
                simulated_ms,
                ..RunRecord::base(plan, index, seed)
            },
            Ended::Panic(message) => RunRecord {
                outcome: Some(Outcome::Panic),
                message: Some(message),
                ..RunRecord::base(plan, index, seed)
            },
        }
    }
}

/// Runs one (combination, seed) and records it; a panic, a run past its budget and a
/// combination the validator refused are records too.
pub fn run_one(plan: &Plan, index: usize, seed: u64, max_events: u64) -> RunRecord {
    match &plan.combinations[index].scenario {
        Ok(s) => RunRecord::of_ended(
            plan,
            index,
            seed,
            run_guarded(s, seed, max_events, &plan.file),
            max_events,
        ),
        Err(e) => RunRecord {
            outcome: Some(Outcome::Invalid),
            message: Some(e.to_string().replace('\n', "; ")),
            ..RunRecord::base(plan, index, seed)
        },
    }
}

/// The most runs one process takes on: their records are kept in memory (a few hundred
/// bytes each) until the sweep ends.
pub const MAX_RUNS: u64 = 10_000_000;

/// How many runs the sweep (its shard, with one) has: combinations × seeds, or its share.
/// More than [`MAX_RUNS`] is an error that says how to split the sweep.
pub fn count_runs(plan: &Plan, opts: &Options) -> Result<u64, String> {
    let total = (plan.combinations.len() as u64)
        .checked_mul(opts.seeds)
        .ok_or("--seeds times the combinations is more than any count")?;
    let mine = match opts.shard {
        Some((k, n)) => total / n + u64::from(k - 1 < total % n),
        None => total,
    };
    if mine > MAX_RUNS {
        let shards = total.div_ceil(MAX_RUNS);
        return Err(format!(
            "this sweep has {mine} runs for one process, more than {MAX_RUNS}: split it into {shards} or more with --shard K/N and `kafkasim merge`"
        ));
    }
    Ok(mine)
}

/// Runs the sweep; `progress` hears of every run as it ends (from any thread). The runs
/// are the (combination, seed) pairs in order, combination by combination (with a shard,
/// those whose index is K−1 modulo N), and the records come back in that order whatever
/// the number of jobs.
pub fn sweep(plan: &Plan, opts: &Options, progress: &(dyn Fn(&RunRecord) + Sync)) -> Vec<RunRecord> {
    let per = opts.seeds;
    let total = plan.combinations.len() as u64 * per;
    let work = || {
        (0..total)
            .into_par_iter()
            .filter(|i| opts.shard.is_none_or(|(k, n)| i % n == k - 1))
            .map(|i| {
                let record = run_one(plan, (i / per) as usize, opts.from + i % per, opts.max_events);
                progress(&record);
                record
            })
            .collect()
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(j) = opts.jobs {
        pool = pool.num_threads(j);
    }
    match pool.build() {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

/// The JSONL text of `records`: one object per line.
pub fn jsonl(records: &[RunRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).expect("records serialize"));
        out.push('\n');
    }
    out
}

/// Reads the records of JSONL files, refusing lines that are not records and files
/// from another scenario or kafkasim version than the first file's. Sorted in run
/// order, duplicates (the same run twice) refused.
pub fn merge(files: &[(String, String)]) -> Result<Vec<RunRecord>, String> {
    let mut records: Vec<RunRecord> = Vec::new();
    for (name, text) in files {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: RunRecord =
                serde_json::from_str(line).map_err(|e| format!("{name}:{}: not a sweep record: {e}", i + 1))?;
            if let Some(first) = records.first() {
                if r.file != first.file || r.matrix != first.matrix {
                    return Err(format!(
                        "{name}:{}: this record is of a sweep of {}{}, the first file's of {}{}: run every shard with the same scenario path and the same kind of sweep",
                        i + 1,
                        r.file,
                        if r.matrix { " (a matrix)" } else { "" },
                        first.file,
                        if first.matrix { " (a matrix)" } else { "" }
                    ));
                }
                if let Some(other) = records
                    .iter()
                    .find(|o| o.variant_index == r.variant_index && o.variant != r.variant)
                {
                    return Err(format!(
                        "{name}:{}: combination {} ran with `{}` here and with `{}` elsewhere: every shard must have the same --set settings",
                        i + 1,
                        r.variant_index,
                        r.variant.flags().trim(),
                        other.variant.flags().trim()
                    ));
                }
                if r.scenario_hash != first.scenario_hash || r.scenario != first.scenario {
                    return Err(format!(
                        "{name}:{}: this record is of another scenario (hash {}) than the first file's ({} {})",
                        i + 1,
                        r.scenario_hash,
                        first.scenario,
                        first.scenario_hash
                    ));
                }
                if r.version != first.version {
                    return Err(format!(
                        "{name}:{}: this record was made by kafkasim {}, the first file's by {}: runs of two versions do not compare",
                        i + 1,
                        r.version,
                        first.version
                    ));
                }
            }
            records.push(r);
        }
    }
    records.sort_by_key(|r| (r.variant_index, r.seed));
    if let Some(w) = records
        .windows(2)
        .find(|w| (w[0].variant_index, w[0].seed) == (w[1].variant_index, w[1].seed))
    {
        return Err(format!(
            "seed {} of variant {} is in two files: were two shards given the same number?",
            w[0].seed, w[0].variant_index
        ));
    }
    Ok(records)
}
