//! The `kafkasim` command line: parse arguments, call the library, print, exit with
//! 0 (expectations met), 1 (not met) or 2 (bad input or usage).

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kafkasim::kafka::partitioner::{KeyType, partition_for_key, serialize_key};
use kafkasim::run::{RunOptions, run};
use kafkasim::scenario::{self, InputError};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod sweep_cli;

/// A deterministic simulator of Apache Kafka.
///
/// Write a scenario in YAML (brokers, topics, producers, consumer groups, faults, with
/// Kafka's own property names), run it, and read what a failure did to your data. The
/// same scenario and seed give the same run, byte for byte.
///
/// Start with: kafkasim run scenarios/quickstart.yaml
#[derive(Parser)]
#[command(name = "kafkasim", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and print its report.
    ///
    /// Exits 0 when every check came out as the scenario's `expect` says, 1 when not,
    /// 2 on bad input.
    Run {
        /// The scenario file (YAML).
        scenario: PathBuf,
        /// Run with this seed instead of the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Report format: `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print a short text report: the description, the timeline, the charts over time
        /// and the checks that did not pass.
        #[arg(long)]
        brief: bool,
        /// Also write every event of the run to FILE, one JSON object per line.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Write only some trace lines: kind=K1,K2 (start, msg, timer, peer_down, obs, drop,
        /// fault, unresolved_fault; `msg:fetch_request`, `obs:acked` for one API or
        /// observation), node=N1,N2 or partition=P1,P2. Repeatable; a line is kept when
        /// it matches each one given.
        #[arg(long, value_name = "DIMENSION=V1,V2", requires = "trace")]
        trace_filter: Vec<String>,
        /// Also write the report as one self-contained HTML page to FILE: charts over time,
        /// each partition's replicas as swimlanes, the logs at the pictures, and the checks.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Set one setting for this run, as a `vary` entry would: SCOPE:KEY=VALUE, with
        /// SCOPE producer, topic, broker, group or cluster (`--set producer:acks=1`).
        /// Repeatable.
        #[arg(long, value_name = "SCOPE:KEY=VALUE")]
        set: Vec<String>,
        /// Also write this run as an explicit scenario to FILE: the nemesis replaced by
        /// the faults it drew, the seed and the `--set` settings written in.
        #[arg(long, value_name = "FILE")]
        freeze: Option<PathBuf>,
        /// Stop the run after this many events (it is then an error).
        #[arg(long, value_name = "N")]
        max_events: Option<u64>,
        /// Run a scenario even when its estimated size is above kafkasim's limits (ten
        /// billion events or 8 GB of memory).
        #[arg(long)]
        allow_huge: bool,
    },
    /// Run several scenarios, or one scenario's variants, and print one table with a
    /// column per run: producers, groups, partitions and checks side by side.
    ///
    /// `--vary producer:linger.ms=0,5,50,200` runs each scenario once per value (several
    /// --vary multiply); the scopes are those of `vary` and `--set`. Exits 0 once every
    /// run is done, whatever their checks, 2 on bad input.
    Compare {
        /// Scenario files (YAML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Run each scenario once per value: SCOPE:KEY=V1,V2,… Repeatable.
        #[arg(long, value_name = "SCOPE:KEY=V1,V2,…")]
        vary: Vec<String>,
        /// Set one setting for every run, as `run --set` does. Repeatable.
        #[arg(long, value_name = "SCOPE:KEY=VALUE")]
        set: Vec<String>,
        /// Run every scenario with this seed instead of its own.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the comparison as one self-contained HTML page to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Output format: `text` for people, `json` for scripts (each run's name and report).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Run scenarios even when their estimated size is above kafkasim's limits.
        #[arg(long)]
        allow_huge: bool,
    },
    /// Parse and validate scenarios without running them, and print their estimated size.
    Check {
        /// Scenario files (YAML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Accept scenarios whose estimated size is above kafkasim's limits (ten billion
        /// events or 8 GB of memory).
        #[arg(long)]
        allow_huge: bool,
    },
    /// Print the partition Kafka's Java producer picks for each key (murmur2).
    ///
    /// Keys come from the arguments, or one per line from standard input.
    Partition {
        /// The topic's partition count.
        #[arg(long)]
        partitions: u32,
        /// How keys are serialized before hashing: UTF-8 string, 4-byte int, 8-byte long.
        #[arg(long, value_enum, default_value_t = KeyKind::String)]
        key_type: KeyKind,
        /// After the keys, print how many keys each partition got and the skew
        /// (largest count / mean), as `#` lines.
        #[arg(long)]
        stats: bool,
        /// Keys to place; read from standard input when none are given.
        keys: Vec<String>,
    },
    /// Print the partitions Kafka's consumer-group assignor gives each member of a group.
    ///
    /// The group is JSON: {"strategy": "range", "topics": {"t1": 3}, "members": [{"id": "c1",
    /// "topics": ["t1"]}]}; members may also have "instance", "owned" (["t1-0"]),
    /// "generation" and "strategies" (then the coordinator's vote picks the strategy).
    /// Strategies: range, roundrobin, sticky, cooperative-sticky, or Kafka's class names.
    Assign {
        /// A JSON file describing the group, or `-` for standard input.
        file: String,
    },
    /// Run a scenario over many seeds, in parallel, and group the failing seeds.
    ///
    /// Runs seeds S, S+1, …, S+N-1 (S is the scenario's `seed` unless --from says) and
    /// prints how many passed and the failing seeds grouped by what went wrong, each
    /// group with the command that replays its first seed. With a `vary` block it runs
    /// every combination of settings over the same seeds and prints the matrix instead.
    /// Exits 1 if a seed missed its expectations (never with `vary`: there violations
    /// are the data), 2 on bad input.
    Sweep(sweep_cli::SweepArgs),
    /// Merge the --out files of sharded sweeps: prints what one sweep would have printed.
    Merge {
        /// The shards' JSONL files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the merged JSONL to FILE: the same bytes one sweep would have written.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format: `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyKind {
    String,
    Int,
    Long,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(message) => {
            // A file with several mistakes gives one line for each.
            for line in message.split('\n') {
                eprintln!("error: {line}");
            }
            ExitCode::from(2)
        }
    }
}

fn input_error(e: InputError) -> String {
    e.to_string()
}

/// Whether the estimate's limits apply: `--allow-huge` lifts them.
pub(crate) fn limit(allow_huge: bool) -> scenario::Limit {
    if allow_huge {
        scenario::Limit::Lifted
    } else {
        scenario::Limit::Enforced
    }
}

fn execute(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Run {
            scenario,
            seed,
            format,
            brief,
            trace,
            trace_filter,
            html,
            set,
            freeze,
            max_events,
            allow_huge,
        } => {
            let source = scenario.display().to_string();
            let text = scenario::read(&scenario).map_err(input_error)?;
            let settings = settings(&set)?;
            let loaded =
                scenario::parse_with_limit(&source, &text, &settings, limit(allow_huge)).map_err(input_error)?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if let Some(path) = freeze {
                let seed = seed.unwrap_or(loaded.seed);
                let frozen =
                    scenario::freeze::freeze(&text, &settings, &loaded, seed).map_err(|e| format!("{source}: {e}"))?;
                write_whole(&path, frozen.to_text().as_bytes())?;
                eprintln!("froze the run of seed {seed} into {}", path.display());
            }
            let mut source = source;
            for s in &settings {
                source.push_str(&format!(" --set {s}"));
            }
            let trace_filter = kafkasim::trace::TraceFilter::parse(&trace_filter)?;
            let outputs = Outputs {
                trace: trace.as_deref(),
                trace_filter,
                html: html.as_deref(),
                brief,
            };
            run_scenario(&loaded, source, seed, format, outputs, max_events)
        }
        Command::Compare {
            scenarios,
            vary,
            set,
            seed,
            html,
            format,
            allow_huge,
        } => compare(&scenarios, &vary, &set, seed, html.as_deref(), format, allow_huge),
        Command::Check { scenarios, allow_huge } => {
            let mut bad = false;
            for path in &scenarios {
                match scenario::load_limited(path, limit(allow_huge)) {
                    Ok(s) => {
                        for w in &s.warnings {
                            eprintln!("warning: {w}");
                        }
                        let n =
                            |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
                        let mut extra = String::new();
                        if s.nemesis.is_some() {
                            extra.push_str(", a nemesis");
                        }
                        if !s.vary.is_empty() {
                            let combinations: usize = s.vary.iter().map(|v| v.values.len()).product();
                            extra.push_str(&format!(", {}", n(combinations, "combination")));
                        }
                        let size = scenario::estimate::estimate(&s);
                        println!(
                            "ok: {} ({}: {}, {}, {}, {}, {}{extra}; estimated {} events, {})",
                            path.display(),
                            s.name,
                            n(s.brokers as usize, "broker"),
                            n(s.topics.len(), "topic"),
                            n(s.producers.len(), "producer"),
                            n(s.groups.len(), "group"),
                            n(s.faults.len(), "fault"),
                            scenario::estimate::count_words(size.events),
                            scenario::estimate::bytes_words(size.memory),
                        );
                    }
                    Err(e) => {
                        for e in e.all() {
                            eprintln!("error: {}", e.headline());
                        }
                        bad = true;
                    }
                }
            }
            Ok(if bad { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        Command::Partition {
            partitions,
            key_type,
            stats,
            keys,
        } => partition(partitions, key_type, stats, keys),
        Command::Assign { file } => assign(&file),
        Command::Sweep(args) => sweep_cli::command(args),
        Command::Merge { files, out, format } => {
            sweep_cli::merge(&files, out.as_deref(), matches!(format, Format::Json))
        }
    }
}

pub(crate) fn settings(set: &[String]) -> Result<Vec<kafkasim::scenario::vary::Setting>, String> {
    set.iter()
        .map(|s| kafkasim::scenario::vary::Setting::parse(s))
        .collect()
}

/// Where a file is written before it is renamed into place.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// Whether `path` can be written, checked without leaving anything behind.
pub(crate) fn writable(path: &Path) -> Result<(), String> {
    let partial = partial(path);
    std::fs::write(&partial, b"")
        .and_then(|()| std::fs::remove_file(&partial))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Writes a file whole or not at all: beside its destination, then renamed.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let partial = partial(path);
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            format!("{}: cannot write: {e}", path.display())
        })
}

/// The files a run writes besides its report on standard output.
struct Outputs<'a> {
    trace: Option<&'a Path>,
    trace_filter: kafkasim::trace::TraceFilter,
    html: Option<&'a Path>,
    /// The text report is the brief one.
    brief: bool,
}

fn run_scenario(
    s: &scenario::Scenario,
    source: String,
    seed: Option<u64>,
    format: Format,
    outputs: Outputs,
    max_events: Option<u64>,
) -> Result<ExitCode, String> {
    let trace = outputs.trace;
    let trace_filter = outputs.trace_filter.clone();
    // A page that could not be written is said before the run, not after it.
    if let Some(path) = outputs.html {
        writable(path)?;
    }
    // The trace is written beside its destination and renamed at the end, so a failed
    // run never leaves a partial file.
    let staged = trace.map(partial);
    let sink: Option<Box<dyn Write>> = match &staged {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| format!("{}: cannot write the trace: {e}", p.display()))?;
            Some(Box::new(std::io::BufWriter::new(f)))
        }
        None => None,
    };
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulating {msg} [{bar:30}] {percent}%").expect("valid template"),
    );
    let show = std::io::stderr().is_terminal();
    let mut shown = false;
    let mut progress = |done: u64, total: u64| {
        // Only runs that take longer than a second get a bar.
        if show && !shown && bar.elapsed().as_millis() > 1000 {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            shown = true;
        }
        bar.set_position(done * 1000 / total.max(1));
    };
    let result = run(
        s,
        RunOptions {
            seed,
            max_events,
            trace: sink,
            trace_filter,
            progress: Some(&mut progress),
            source,
        },
    );
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(p) = &staged {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.to_string());
        }
    };
    if let (Some(p), Some(t)) = (&staged, trace) {
        std::fs::rename(p, t).map_err(|e| format!("{}: cannot write the trace: {e}", t.display()))?;
    }
    if let Some(path) = outputs.html {
        write_whole(path, kafkasim::report::html::render(&report).as_bytes())?;
    }
    let text = match format {
        Format::Text if outputs.brief => kafkasim::report::text::render_brief(&report),
        Format::Text => kafkasim::report::text::render(&report),
        Format::Json => serde_json::to_string_pretty(&report).expect("reports serialize") + "\n",
    };
    // A closed pipe (`kafkasim run … | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `kafkasim compare`: every scenario once per combination of `--vary` values, then the
/// table. Every input is checked before the first run.
fn compare(
    paths: &[PathBuf],
    vary: &[String],
    set: &[String],
    seed: Option<u64>,
    html: Option<&Path>,
    format: Format,
    allow_huge: bool,
) -> Result<ExitCode, String> {
    use kafkasim::compare::{Column, combinations, parse_vary, variant_name};
    let varies = vary.iter().map(|v| parse_vary(v)).collect::<Result<Vec<_>, _>>()?;
    let fixed = settings(set)?;
    if let Some(path) = html {
        writable(path)?;
    }
    let combos = combinations(&varies);
    // Parse every run first: a mistake in the last variant is said before any run.
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let source = path.display().to_string();
        let text = match scenario::read(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(input_error(e));
                continue;
            }
        };
        // A mistake in the file itself is said once, not once per variant.
        if !combos[0].is_empty()
            && let Err(e) = scenario::parse_with_limit(&source, &text, &fixed, limit(allow_huge))
        {
            errors.push(input_error(e));
            continue;
        }
        for combo in &combos {
            let mut all = fixed.clone();
            all.extend(combo.iter().cloned());
            match scenario::parse_with_limit(&source, &text, &all, limit(allow_huge)) {
                Ok(loaded) => {
                    let name = match (paths.len(), combo.is_empty()) {
                        (_, true) => loaded.name.clone(),
                        (1, false) => variant_name(combo),
                        _ => format!("{} {}", loaded.name, variant_name(combo)),
                    };
                    let mut command = source.clone();
                    for s in &all {
                        command.push_str(&format!(" --set {s}"));
                    }
                    runs.push((name, loaded, command));
                }
                Err(e) => {
                    // A variant's value is named as its `--vary` gave it; a mistake the
                    // variant only brings out is named with the variant.
                    let mut text = input_error(e);
                    for s in combo {
                        text = text.replace(&format!("(given by --set {s})"), &format!("(given by --vary {s})"));
                    }
                    if !combo.is_empty() && !text.contains("(given by --vary ") {
                        text.push_str(&format!(" (with {})", variant_name(combo)));
                    }
                    errors.push(text);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let mut columns = Vec::new();
    for (name, loaded, source) in runs {
        for w in &loaded.warnings {
            eprintln!("warning: {name}: {w}");
        }
        let report = run(
            &loaded,
            RunOptions {
                seed,
                source,
                ..Default::default()
            },
        )
        .map_err(|e| format!("{name}: {e}"))?;
        columns.push(Column { name, report });
    }
    if let Some(path) = html {
        write_whole(path, kafkasim::report::html::render_comparison(&columns).as_bytes())?;
    }
    let text = match format {
        Format::Text => kafkasim::compare::render_text(&columns),
        Format::Json => {
            let runs: Vec<serde_json::Value> = columns
                .iter()
                .map(|c| serde_json::json!({ "name": c.name, "report": c.report }))
                .collect();
            serde_json::to_string_pretty(&runs).expect("reports serialize") + "\n"
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn assign(file: &str) -> Result<ExitCode, String> {
    let (name, text) = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("<stdin>: cannot read the group: {e}"))?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot read the group: {e}"))?;
        (file.to_string(), text)
    };
    let out = kafkasim::assign::run(&name, &text).map_err(input_error)?;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn partition(partitions: u32, key_type: KeyKind, stats: bool, keys: Vec<String>) -> Result<ExitCode, String> {
    if partitions == 0 {
        return Err("--partitions must be at least 1".to_string());
    }
    let kind = match key_type {
        KeyKind::String => KeyType::String,
        KeyKind::Int => KeyType::Int,
        KeyKind::Long => KeyType::Long,
    };
    let keys: Vec<String> = if keys.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read keys: {e}"))?
    } else {
        keys
    };
    let mut out = String::new();
    let mut counts = vec![0u64; partitions as usize];
    for key in &keys {
        let bytes = serialize_key(key, kind)?;
        let p = partition_for_key(&bytes, partitions);
        counts[p as usize] += 1;
        out.push_str(&format!("{key}\t{p}\n"));
    }
    if stats {
        out.push_str("# partition\tkeys\n");
        for (p, n) in counts.iter().enumerate() {
            out.push_str(&format!("# {p}\t{n}\n"));
        }
        // Integer arithmetic, two decimals: max * partitions / keys.
        let max = counts.iter().copied().max().unwrap_or(0);
        let hundredths = (max * u64::from(partitions) * 100)
            .checked_div(keys.len() as u64)
            .unwrap_or(0);
        out.push_str(&format!(
            "# skew (largest / mean): {}.{:02}\n",
            hundredths / 100,
            hundredths % 100
        ));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}
