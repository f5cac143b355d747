//! The comparison table of `kafkasim compare`, from the runs' reports: a row per figure,
//! a column per run.

use crate::report::Report;

/// One run of the comparison.
pub struct Column {
    /// The scenario's name, or the variant's settings, or both.
    pub name: String,
    pub report: Report,
}

/// One row of the table: its section, its label, and a cell per column (empty where the
/// column has no such thing, a producer another scenario lacks).
#[derive(Debug, PartialEq)]
pub struct Row {
    pub section: &'static str,
    pub label: String,
    pub cells: Vec<String>,
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// The names of `items` in every report, in the order they first appear.
fn union<'a>(columns: &'a [Column], items: impl Fn(&'a Report) -> Vec<&'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for c in columns {
        for n in items(&c.report) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// Partitions are listed one by one up to this many; beyond, per topic.
const PARTITION_ROWS: usize = 8;

/// The comparison table.
pub fn table(columns: &[Column]) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |section: &'static str, label: String, cell: &dyn Fn(&Report) -> Option<String>| {
        rows.push(Row {
            section,
            label,
            cells: columns.iter().map(|c| cell(&c.report).unwrap_or_default()).collect(),
        });
    };
    for name in union(columns, |r| r.producers.iter().map(|p| p.name.as_str()).collect()) {
        let p = |r: &Report| r.producers.iter().find(|p| p.name == name).cloned();
        row("Producers", format!("{name} acknowledged / sent"), &|r| {
            p(r).map(|p| format!("{} / {}", p.acked, p.sent))
        });
        row("Producers", format!("{name} failed"), &|r| {
            p(r).map(|p| p.failed.to_string())
        });
        row("Producers", format!("{name} errors"), &|r| {
            p(r).map(|p| {
                if p.errors.is_empty() {
                    "none".to_string()
                } else {
                    p.errors
                        .iter()
                        .map(|(e, n)| format!("{e} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            })
        });
        row("Producers", format!("{name} requests"), &|r| {
            p(r).map(|p| p.requests.to_string())
        });
        row("Producers", format!("{name} records per request"), &|r| {
            // acks=0 records are sent without an acknowledgement: they count too.
            p(r).map(|p| format!("{:.1}", (p.acked + p.unacknowledged) as f64 / p.requests.max(1) as f64))
        });
        row("Producers", format!("{name} latency p50 / p99 / max ms"), &|r| {
            p(r).map(|p| {
                let l = &p.latency_ms;
                format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max))
            })
        });
    }
    row("Producers", "writes refused (all partitions)".to_string(), &|r| {
        Some(secs(r.availability.writes_refused_ms))
    });
    for name in union(columns, |r| {
        r.consumer_groups.iter().map(|g| g.group.as_str()).collect()
    }) {
        let g = |r: &Report| r.consumer_groups.iter().find(|g| g.group == name).cloned();
        row("Groups", format!("{name} processed"), &|r| {
            g(r).map(|g| g.consumed.to_string())
        });
        row("Groups", format!("{name} duplicates"), &|r| {
            g(r).map(|g| g.duplicates.to_string())
        });
        row("Groups", format!("{name} never processed"), &|r| {
            g(r).map(|g| g.lost.to_string())
        });
        row("Groups", format!("{name} lag at the end"), &|r| {
            g(r).map(|g| g.lag.values().sum::<u64>().to_string())
        });
        row("Groups", format!("{name} rebalances"), &|r| {
            g(r).map(|g| g.rebalances.to_string())
        });
    }
    let partitions = union(columns, |r| {
        r.series.partitions.iter().map(|p| p.name.as_str()).collect()
    });
    let leader_changes = |r: &Report, name: &str| -> Option<u64> {
        let p = r.series.partitions.iter().find(|p| p.name == name)?;
        Some(p.changes.windows(2).filter(|w| w[0].leader != w[1].leader).count() as u64)
    };
    let under = |r: &Report, name: &str| -> Option<u64> {
        r.partitions
            .iter()
            .find(|p| format!("{}-{}", p.topic, p.partition) == name)
            .map(|p| p.under_replicated_ms)
    };
    if partitions.len() <= PARTITION_ROWS {
        for name in &partitions {
            row("Partitions", format!("{name} under-replicated"), &|r| {
                under(r, name).map(secs)
            });
            row("Partitions", format!("{name} leader changes"), &|r| {
                leader_changes(r, name).map(|n| n.to_string())
            });
        }
    } else {
        let topics = union(columns, |r| r.settings.topics.iter().map(|t| t.name.as_str()).collect());
        for topic in topics {
            let of = |r: &Report| -> Vec<String> {
                r.partitions
                    .iter()
                    .filter(|p| p.topic == topic)
                    .map(|p| format!("{}-{}", p.topic, p.partition))
                    .collect()
            };
            row("Partitions", format!("{topic} under-replicated, summed"), &|r| {
                let names = of(r);
                (!names.is_empty()).then(|| secs(names.iter().filter_map(|n| under(r, n)).sum()))
            });
            row("Partitions", format!("{topic} leader changes, summed"), &|r| {
                let names = of(r);
                (!names.is_empty()).then(|| {
                    names
                        .iter()
                        .filter_map(|n| leader_changes(r, n))
                        .sum::<u64>()
                        .to_string()
                })
            });
        }
    }
    for name in union(columns, |r| r.checks.iter().map(|c| c.name.as_str()).collect()) {
        row("Checks", name.to_string(), &|r| {
            r.checks
                .iter()
                .find(|c| c.name == name)
                .map(|c| match (c.implemented, c.passed, c.expected_to_fail) {
                    (false, _, _) => "not run".to_string(),
                    (true, true, _) => "pass".to_string(),
                    (true, false, true) => format!("FAIL ({}, expected)", c.count),
                    (true, false, false) => format!("FAIL ({})", c.count),
                })
        });
    }
    row("Checks", "as the scenario expects".to_string(), &|r| {
        Some(if r.passed { "yes" } else { "no" }.to_string())
    });
    rows
}

/// The table as text: a column per run, the labels on the left, numbers to the right.
pub fn render_text(columns: &[Column]) -> String {
    use std::fmt::Write;
    let rows = table(columns);
    let label = rows.iter().map(|r| r.label.chars().count() + 2).max().unwrap_or(0);
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r.cells[i].chars().count())
                .chain([c.name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for c in columns {
        let _ = writeln!(out, "{}: {}", c.name, c.report.reproduce);
    }
    let _ = write!(out, "\n{:label$}", "");
    for (c, w) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {:>w$}", c.name);
    }
    out.push('\n');
    let mut section = "";
    for r in &rows {
        if r.section != section {
            section = r.section;
            let _ = writeln!(out, "{section}");
        }
        let _ = write!(out, "  {:width$}", r.label, width = label - 2);
        for (cell, w) in r.cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>w$}");
        }
        let line_end = out.trim_end_matches(' ').len();
        out.truncate(line_end);
        out.push('\n');
    }
    out
}
