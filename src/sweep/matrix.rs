//! What a sweep prints, from its records alone: the summary of a sweep over seeds (runs,
//! passed, failing seeds grouped by what went wrong) and the durability matrix of a
//! sweep over combinations (violating seeds per check, availability per combination).

use super::{Outcome, RunRecord, Variant};
use crate::check::CHECKS;
use serde::Serialize;
use std::fmt::Write;

/// The seeds listed per group before the list is cut short.
const LISTED: usize = 10;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub runs: u64,
    pub passed: u64,
    pub failed: u64,
    /// The lowest and highest seed run.
    pub seeds: (u64, u64),
    /// Failing seeds, grouped by what went wrong, the largest group first.
    pub groups: Vec<FailureGroup>,
}

#[derive(Debug, Serialize)]
pub struct FailureGroup {
    /// `lost-write failed unexpectedly`, `panic: …`, `budget: …`.
    pub what: String,
    pub seeds: Vec<u64>,
    /// The command that replays the group's first seed.
    pub replay: String,
}

pub fn summary(records: &[RunRecord]) -> Summary {
    let mut groups: Vec<FailureGroup> = Vec::new();
    for r in records {
        let Some(what) = r.failure() else { continue };
        match groups.iter_mut().find(|g| g.what == what) {
            Some(g) => g.seeds.push(r.seed),
            None => groups.push(FailureGroup {
                what,
                seeds: vec![r.seed],
                replay: r.replay(),
            }),
        }
    }
    // The largest group first; among equals, the one seen first.
    groups.sort_by_key(|g| std::cmp::Reverse(g.seeds.len()));
    let failed = groups.iter().map(|g| g.seeds.len() as u64).sum::<u64>();
    Summary {
        scenario: records.first().map(|r| r.scenario.clone()).unwrap_or_default(),
        runs: records.len() as u64,
        passed: records.len() as u64 - failed,
        failed,
        seeds: (
            records.iter().map(|r| r.seed).min().unwrap_or(0),
            records.iter().map(|r| r.seed).max().unwrap_or(0),
        ),
        groups,
    }
}

pub fn render_summary(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} runs (seeds {}..={}) · passed {} · failed {}",
        s.scenario, s.runs, s.seeds.0, s.seeds.1, s.passed, s.failed
    );
    for g in &s.groups {
        let mut seeds: Vec<String> = g.seeds.iter().take(LISTED).map(u64::to_string).collect();
        if g.seeds.len() > LISTED {
            seeds.push("…".to_string());
        }
        let n = g.seeds.len();
        let _ = writeln!(
            out,
            "  {}: {n} seed{} ({})",
            g.what,
            if n == 1 { "" } else { "s" },
            seeds.join(", ")
        );
        let _ = writeln!(out, "    replay: {}", g.replay);
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Matrix {
    pub scenario: String,
    /// The settings varied, in the order written.
    pub settings: Vec<String>,
    /// The checks that failed somewhere (and `panic` or `budget` if a run ended so), in
    /// report order.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub variant: Variant,
    /// The validator's refusal: the combination was not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    pub runs: u64,
    pub cells: Vec<Cell>,
    /// Medians over the row's runs.
    pub writes_refused_ms: u64,
    pub offline_ms: u64,
    pub produce_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub column: String,
    /// Runs in which the check failed (or the run ended so).
    pub violating: u64,
    pub runs: u64,
    /// The first such seed, and the command that replays it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
}

/// Whether a run counts against a column.
fn hits(r: &RunRecord, column: &str) -> bool {
    match &r.outcome {
        Some(Outcome::Panic) => column == "panic",
        Some(Outcome::Budget) => column == "budget",
        Some(Outcome::Invalid) => false,
        None => r.violations.contains_key(column),
    }
}

/// The lower median.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

pub fn matrix(records: &[RunRecord]) -> Matrix {
    let mut columns: Vec<String> = CHECKS
        .iter()
        .map(|c| c.name.to_string())
        .chain(["panic".to_string(), "budget".to_string()])
        .collect();
    columns.retain(|c| records.iter().any(|r| hits(r, c)));
    let mut rows: Vec<Row> = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let index = records[start].variant_index;
        let end = start + records[start..].iter().take_while(|r| r.variant_index == index).count();
        let group = &records[start..end];
        start = end;
        let first = &group[0];
        if first.outcome == Some(Outcome::Invalid) {
            rows.push(Row {
                variant: first.variant.clone(),
                invalid: first.message.clone(),
                runs: 0,
                cells: Vec::new(),
                writes_refused_ms: 0,
                offline_ms: 0,
                produce_p99_ms: 0.0,
            });
            continue;
        }
        let ran: Vec<&RunRecord> = group.iter().filter(|r| r.outcome.is_none()).collect();
        let cells = columns
            .iter()
            .map(|c| {
                let witness = group.iter().find(|r| hits(r, c));
                Cell {
                    column: c.clone(),
                    violating: group.iter().filter(|r| hits(r, c)).count() as u64,
                    runs: group.len() as u64,
                    witness: witness.map(|r| r.seed),
                    replay: witness.map(RunRecord::replay),
                }
            })
            .collect();
        rows.push(Row {
            variant: first.variant.clone(),
            invalid: None,
            runs: group.len() as u64,
            cells,
            writes_refused_ms: median(ran.iter().map(|r| r.writes_refused_ms).collect()),
            offline_ms: median(ran.iter().map(|r| r.offline_ms).collect()),
            produce_p99_ms: median(ran.iter().map(|r| r.produce_p99_us).collect()) as f64 / 1000.0,
        });
    }
    Matrix {
        scenario: records.first().map(|r| r.scenario.clone()).unwrap_or_default(),
        settings: records
            .first()
            .map(|r| r.variant.0.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default(),
        columns,
        rows,
    }
}

/// Milliseconds as seconds with one decimal: `12.3s`.
fn secs(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, ms % 1000 / 100)
}

pub fn render_matrix(m: &Matrix) -> String {
    let runs = m.rows.iter().map(|r| r.runs).max().unwrap_or(0);
    let mut header: Vec<String> = vec!["#".to_string()];
    header.extend(m.settings.iter().cloned());
    header.extend(m.columns.iter().cloned());
    header.extend(["writes refused".into(), "offline".into(), "p99 latency".into()]);
    let mut table: Vec<Vec<String>> = vec![header];
    let mut notes = Vec::new();
    for (i, row) in m.rows.iter().enumerate() {
        let mut line = vec![(i + 1).to_string()];
        line.extend(row.variant.0.iter().map(|(_, v)| v.clone()));
        if let Some(why) = &row.invalid {
            line.push("invalid (not run)".to_string());
            notes.push(format!("  {}: invalid: {why}", i + 1));
            table.push(line);
            continue;
        }
        for cell in &row.cells {
            line.push(match cell.witness {
                Some(seed) => format!("{}/{} (seed {seed})", cell.violating, cell.runs),
                None => format!("0/{}", cell.runs),
            });
            if let Some(replay) = &cell.replay {
                notes.push(format!("  {} {}: {replay}", i + 1, cell.column));
            }
        }
        line.push(secs(row.writes_refused_ms));
        line.push(secs(row.offline_ms));
        line.push(format!("{:.1}ms", row.produce_p99_ms));
        table.push(line);
    }
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} combinations × {runs} seeds · each cell: runs that failed the check / runs (the first such seed); availability columns are medians over seeds",
        m.scenario,
        m.rows.len()
    );
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<width$}", width = widths[c]))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nReplay the first failing seed of each cell:");
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
    }
    out
}
