//! `kafkasim sweep` and `kafkasim merge` on the command line: arguments, progress bars,
//! files, exit codes. The work itself is the library's `sweep` module.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kafkasim::sweep::matrix::{matrix, render_matrix, render_summary, summary};
use kafkasim::sweep::{self, Options, Plan, RunRecord, shrink};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// The arguments of `kafkasim sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// The scenario file (YAML).
    scenario: PathBuf,
    /// How many seeds to run.
    #[arg(long, value_name = "N")]
    seeds: u64,
    /// The first seed (default: the scenario's `seed`).
    #[arg(long, value_name = "S")]
    from: Option<u64>,
    /// Runs at once (default: one per core). Each run is single-threaded.
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Run only shard K of N: the runs whose index is K-1 modulo N. Merge the shards' --out
    /// files with `kafkasim merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Write one JSON line per run to FILE, sorted by (combination, seed).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Shrink the first seed of each group of failures to a minimal scenario in DIR.
    #[arg(long, value_name = "DIR")]
    shrink: Option<PathBuf>,
    /// Pin a setting (SCOPE:KEY=VALUE), as `run --set` does; the `vary` block is then
    /// ignored. Repeatable.
    #[arg(long, value_name = "SCOPE:KEY=VALUE")]
    set: Vec<String>,
    /// A run that handles more events than this is stopped and counted as `budget`.
    #[arg(long, value_name = "N", default_value_t = kafkasim::sweep::DEFAULT_MAX_EVENTS)]
    max_events: u64,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = crate::Format::Text)]
    format: crate::Format,
    /// Sweep a scenario even when the estimated size of one run is above kafkasim's limits
    /// (ten billion events or 8 GB of memory); --max-events still bounds each run.
    #[arg(long)]
    allow_huge: bool,
}

/// `K/N` with 1 <= K <= N.
fn shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {text}: write K/N with 1 <= K <= N, like `--shard 3/8`");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// A bar on standard error when it is a terminal; nothing otherwise.
fn bar(len: u64, template: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

pub fn command(a: SweepArgs) -> Result<ExitCode, String> {
    let file = a.scenario.display().to_string();
    let bytes = std::fs::read(&a.scenario).map_err(|e| format!("{file}: cannot read the scenario: {e}"))?;
    let plan = Plan::with_limit(&file, &bytes, crate::settings(&a.set)?, crate::limit(a.allow_huge))
        .map_err(|e| e.to_string())?;
    if a.seeds == 0 {
        return Err("--seeds must be at least 1".to_string());
    }
    if a.jobs == Some(0) {
        return Err("--jobs must be at least 1".to_string());
    }
    if a.shrink.is_some() && plan.matrix {
        return Err(format!(
            "{file}: --shrink works on one combination of settings: pick one with --set (for example {})",
            plan.combinations[0]
                .settings
                .iter()
                .map(|s| format!("--set {s}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let opts = Options {
        from: a.from.unwrap_or(plan.seed),
        seeds: a.seeds,
        jobs: a.jobs,
        shard: a.shard.as_deref().map(shard).transpose()?,
        max_events: a.max_events,
    };
    if opts.from.checked_add(opts.seeds - 1).is_none() {
        return Err("--from plus --seeds passes the largest seed".to_string());
    }
    if plan.combinations.iter().all(|c| c.scenario.is_err()) {
        let errors: Vec<String> = plan
            .combinations
            .iter()
            .filter_map(|c| c.scenario.as_ref().err().map(|e| e.to_string()))
            .collect();
        return Err(format!("every combination is refused: {}", errors.join("; ")));
    }
    let total = sweep::count_runs(&plan, &opts)?;
    // Find out now, not after hours of runs, that the results cannot be written.
    if let Some(out) = &a.out {
        crate::writable(out)?;
    }
    if total == 0 {
        // A shard of a small sweep may hold no run: its file is empty, merge takes it.
        if let Some(out) = &a.out {
            crate::write_whole(out, b"")?;
        }
        eprintln!("this shard holds none of the sweep's runs");
        return Ok(ExitCode::SUCCESS);
    }
    sweep::quiet_panics();
    let progress = bar(
        total,
        "{spinner} {pos}/{len} runs · {msg} · {per_sec} · {eta} left [{bar:30}]",
    );
    let failing = AtomicU64::new(0);
    progress.set_message("0 failing");
    let records = sweep::sweep(&plan, &opts, &|r: &RunRecord| {
        if r.failure().is_some() && !(r.matrix && r.outcome.is_none()) {
            let n = failing.fetch_add(1, Ordering::Relaxed) + 1;
            progress.set_message(format!("{n} failing"));
        }
        progress.inc(1);
    });
    // Wall-clock time goes to standard error only, never into results.
    let seconds = progress.elapsed().as_secs_f64();
    progress.finish_and_clear();
    eprintln!(
        "{} runs in {seconds:.1}s ({:.1} runs/s)",
        records.len(),
        records.len() as f64 / seconds.max(1e-9)
    );
    if let Some(out) = &a.out {
        crate::write_whole(out, sweep::jsonl(&records).as_bytes())?;
    }
    let code = print(&records, matches!(a.format, crate::Format::Json));
    if let Some(dir) = &a.shrink {
        shrink_groups(&plan, &records, dir, a.max_events)?;
    }
    Ok(code)
}

/// Prints the summary or the matrix; the exit code it calls for.
fn print(records: &[RunRecord], json: bool) -> ExitCode {
    let is_matrix = records.first().is_some_and(|r| r.matrix);
    let text = match (is_matrix, json) {
        (true, false) => render_matrix(&matrix(records)),
        (true, true) => serde_json::to_string_pretty(&matrix(records)).expect("serializes") + "\n",
        (false, false) => render_summary(&summary(records)),
        (false, true) => serde_json::to_string_pretty(&summary(records)).expect("serializes") + "\n",
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if !is_matrix && records.iter().any(|r| r.failure().is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn shrink_groups(plan: &Plan, records: &[RunRecord], dir: &Path, max_events: u64) -> Result<(), String> {
    let groups = summary(records).groups;
    if groups.is_empty() {
        eprintln!("nothing to shrink: every seed passed");
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    for g in groups {
        let record = records
            .iter()
            .find(|r| r.failure().as_deref() == Some(g.what.as_str()))
            .expect("a group has a first record");
        let spinner = bar(0, "{spinner} shrinking seed {msg}: {pos} runs");
        spinner.set_message(format!("{} ({})", record.seed, g.what));
        let result = shrink::shrink(plan, record, max_events, &mut |n| spinner.set_position(n));
        spinner.finish_and_clear();
        match result {
            Ok(s) => {
                let path = dir.join(&s.file_name);
                crate::write_whole(&path, s.text.as_bytes())?;
                println!(
                    "shrunk seed {} ({}): faults {} -> {}, simulated {}s -> {}s, in {} runs: {}",
                    record.seed,
                    g.what,
                    s.faults.0,
                    s.faults.1,
                    s.seconds.0,
                    s.seconds.1,
                    s.runs,
                    path.display()
                );
            }
            Err(why) => println!("seed {} ({}): {why}", record.seed, g.what),
        }
    }
    Ok(())
}

pub fn merge(files: &[PathBuf], out: Option<&Path>, json: bool) -> Result<ExitCode, String> {
    let mut texts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
        texts.push((f.display().to_string(), text));
    }
    let records = sweep::merge(&texts)?;
    if records.is_empty() {
        return Err("the files hold no sweep records".to_string());
    }
    if let Some(out) = out {
        crate::write_whole(out, sweep::jsonl(&records).as_bytes())?;
    }
    Ok(print(&records, json))
}
