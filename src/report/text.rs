//! The text report, for people: what was run, what happened when, each partition's log
//! drawn with its log end offset, high watermark and committed offsets, the figures of
//! every client, and one line per check.

use super::series::{Fold, sparkline};
use super::{GroupMarks, PartitionReport, Report};
use std::collections::BTreeMap;
use std::fmt::Write;

const BAR: u64 = 40;
const WRAP: usize = 92;

fn wrap(text: &str, indent: &str, out: &mut String) {
    wrap_to(text, indent, WRAP, out)
}

fn wrap_to(text: &str, indent: &str, width: usize, out: &mut String) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// Offset ranges per partition, the first few: `t-0 offsets 6–7, 12–14; t-1 offset 3`
/// (each range as people count it: its last offset included).
fn offset_ranges(parts: &BTreeMap<String, Vec<(u64, u64)>>) -> String {
    const SHOWN: usize = 4;
    let total: usize = parts.values().map(Vec::len).sum();
    let mut shown = 0;
    let mut texts = Vec::new();
    for (partition, ranges) in parts {
        if shown == SHOWN {
            break;
        }
        let take = ranges.len().min(SHOWN - shown);
        shown += take;
        let words: Vec<String> = ranges[..take]
            .iter()
            .map(|&(from, to)| crate::check::span_text(from, to))
            .collect();
        let noun = if take == 1 && ranges[0].1 - ranges[0].0 == 1 {
            "offset"
        } else {
            "offsets"
        };
        texts.push(format!("{partition} {noun} {}", words.join(", ")));
    }
    if total > shown {
        texts.push(format!("and {} more", count((total - shown) as u64, "range")));
    }
    texts.join("; ")
}

/// `1 batch`, `2 batches`.
fn count(n: u64, word: &str) -> String {
    let plural = if word.ends_with("ch") {
        format!("{word}es")
    } else {
        format!("{word}s")
    };
    format!("{n} {}", if n == 1 { word } else { &plural })
}

/// `12.345s` from milliseconds.
fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn cells(value: u64, scale: u64) -> u64 {
    if value == 0 {
        0
    } else {
        (value * BAR / scale).clamp(1, BAR)
    }
}

fn bar(leo: u64, hw: u64, scale: u64) -> String {
    let committed = cells(hw.min(leo), scale);
    let written = cells(leo, scale).max(committed);
    let mut s = String::with_capacity(BAR as usize + 2);
    s.push('|');
    (0..committed).for_each(|_| s.push('#'));
    (committed..written).for_each(|_| s.push('+'));
    (written..BAR).for_each(|_| s.push(' '));
    s.push('|');
    s
}

fn draw_partition(groups: &[GroupMarks], p: &PartitionReport, scale: u64, out: &mut String) {
    let name = format!("{}-{}", p.topic, p.partition);
    let leader = p.leader.map_or("none (offline)".to_string(), |l| format!("broker-{l}"));
    let isr: Vec<String> = p.isr.iter().map(u32::to_string).collect();
    let replicas: Vec<String> = p.replicas.iter().map(u32::to_string).collect();
    let under = if p.under_replicated_ms > 0 && p.replicas.len() > 1 {
        format!(" · under-replicated for {} in all", secs(p.under_replicated_ms))
    } else {
        String::new()
    };
    let elr = if p.elr.is_empty() {
        String::new()
    } else {
        let elr: Vec<String> = p.elr.iter().map(u32::to_string).collect();
        format!(" · elr [{}]", elr.join(", "))
    };
    let _ = writeln!(
        out,
        "  {name}  leader {leader} · epoch {} · replicas [{}] · isr [{}]{elr}{under}",
        p.leader_epoch,
        replicas.join(", "),
        isr.join(", ")
    );
    // Wide enough for `broker-N` and every group's name, so the bars line up.
    let label_width = groups.iter().map(|g| g.group.len() + 1).max().unwrap_or(0).max(12);
    for b in &p.replicas {
        let leo = p.log_end_offsets.get(&b.to_string()).copied().unwrap_or(0);
        let hw = p.high_watermarks.get(&b.to_string()).copied().unwrap_or(0);
        let role = if p.leader == Some(*b) {
            "leader"
        } else if p.isr.contains(b) {
            "follower, in sync"
        } else if p.elr.contains(b) {
            "out of sync, eligible leader"
        } else {
            "follower, out of sync"
        };
        let _ = writeln!(
            out,
            "    {:<label_width$}{}  leo {leo}  hw {hw}  ({role})",
            format!("broker-{b}"),
            bar(leo, hw, scale)
        );
    }
    for g in groups {
        let Some(lag) = g.lag.get(&name) else { continue };
        let committed = g.committed.get(&name).copied();
        // Under the bar: `>` where the owning member's position is, `^` where the
        // committed offset is (each at the first cell past the offsets before it).
        let mut marks = vec![' '; BAR as usize + 2];
        let cell = |offset: u64| if offset == 0 { 0 } else { cells(offset, scale) } as usize;
        let mut text = match committed {
            Some(c) => format!("committed {c}"),
            None => "nothing committed".to_string(),
        };
        if let Some((member, at)) = g.positions.get(&name) {
            marks[cell(*at)] = '>';
            text.push_str(&format!(" · {member} at {at}"));
        }
        marks[cell(committed.unwrap_or(0))] = '^';
        text.push_str(&format!(" · lag {lag}"));
        let marks: String = marks.into_iter().collect();
        let _ = writeln!(out, "    {:<label_width$} {}  {text}", g.group, marks.trim_end());
    }
}

/// Draws `partitions` topic by topic, in the scenario's order; `scales` has each topic's
/// offset at a full bar.
fn draw_partitions(
    title: &str,
    scales: &[(&str, u64)],
    partitions: &[PartitionReport],
    groups: &[GroupMarks],
    out: &mut String,
) {
    let _ = writeln!(
        out,
        "\n{title}  (# below the high watermark, + written above it; under a log, ^ a group's committed offset and > the position of the member that reads it)"
    );
    for &(topic, scale) in scales {
        for p in partitions.iter().filter(|p| p.topic == *topic) {
            draw_partition(groups, p, scale, out);
        }
    }
}

/// Per topic, the largest log end offset in any picture or at the end: every drawing of
/// a topic's logs uses that one scale, so pictures compare at a glance.
pub(crate) fn scales(r: &Report) -> Vec<(&str, u64)> {
    let drawn = || r.pictures.iter().flat_map(|p| &p.partitions).chain(&r.partitions);
    r.settings
        .topics
        .iter()
        .map(|t| {
            let largest = drawn()
                .filter(|p| p.topic == t.name)
                .flat_map(|p| p.log_end_offsets.values().copied())
                .fold(1, u64::max);
            (t.name.as_str(), largest)
        })
        .collect()
}

/// Columns of the one-line charts.
const CHART: usize = 50;

/// The one-line charts: acknowledged records and errors per second per producer, the
/// ISR of each partition whose ISR changed, and each group's lag, on one time axis with
/// the faults marked.
fn over_time(r: &Report, out: &mut String) {
    let series = &r.series;
    let Some(&end_ms) = series.at_ms.last() else { return };
    let width = CHART.min(series.at_ms.len());
    let column_ms = end_ms as f64 / width as f64;
    let per_second = |v: u64| (v as f64 * 1000.0 / column_ms).round() as u64;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut marks = vec![' '; width];
    let column = |at_ms: u64| ((at_ms * width as u64) / end_ms.max(1)).min(width as u64 - 1) as usize;
    for f in r.faults.iter().filter(|f| f.fired) {
        marks[column(f.at_ms)] = 'x';
    }
    if r.settings.drain_ms > 0 && r.settings.duration_ms < end_ms {
        let c = column(r.settings.duration_ms);
        if marks[c] == ' ' {
            marks[c] = 'd';
        }
    }
    rows.push(("faults".to_string(), marks.into_iter().collect(), String::new()));
    for p in &series.producers {
        let (line, peak) = sparkline(&p.acked, width, Fold::Sum, None);
        rows.push((
            format!("acked/s {}", p.name),
            line,
            format!("peak {}/s", per_second(peak)),
        ));
        let mut errors = vec![0u64; series.at_ms.len()];
        for counts in p.errors.values() {
            errors.iter_mut().zip(counts).for_each(|(e, c)| *e += c);
        }
        if errors.iter().any(|&e| e > 0) {
            let (line, peak) = sparkline(&errors, width, Fold::Sum, None);
            let names: Vec<String> = p
                .errors
                .iter()
                .map(|(name, v)| format!("{name} {}", v.iter().sum::<u64>()))
                .collect();
            rows.push((
                format!("errors/s {}", p.name),
                line,
                format!("peak {}/s · {}", per_second(peak), names.join(", ")),
            ));
        }
    }
    let steady = series.partitions.iter().filter(|p| p.changes.len() <= 1).count();
    for p in series.partitions.iter().filter(|p| p.changes.len() > 1) {
        let sizes: Vec<u64> = p.isr_min.iter().map(|&s| u64::from(s)).collect();
        let top = p.replicas.len() as u64;
        let (line, _) = sparkline(&sizes, width, Fold::Min, Some(top));
        let fewest = sizes.iter().min().copied().unwrap_or(0);
        let tail = if fewest == 0 {
            format!("of {top}; empty at times")
        } else {
            format!("of {top}; fewest {fewest}")
        };
        rows.push((format!("isr {}", p.name), line, tail));
    }
    for g in &series.groups {
        let (line, peak) = sparkline(&g.lag, width, Fold::Max, None);
        let last = g.lag.last().copied().unwrap_or(0);
        rows.push((format!("lag {}", g.group), line, format!("peak {peak} · end {last}")));
    }
    let label = rows.iter().map(|(l, _, _)| l.chars().count()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nOver time  ({} a column · x a fault · d the drain begins · each chart up to its peak)",
        secs(column_ms.round() as u64)
    );
    let axis_end = secs(end_ms);
    let _ = writeln!(out, "  {:label$}  0s{:>w$}", "", axis_end, w = width.saturating_sub(2));
    for (l, line, tail) in rows {
        let row = format!("  {l:label$} |{line}| {tail}");
        let _ = writeln!(out, "{}", row.trim_end());
    }
    if steady > 0 && series.partitions.len() > steady {
        let _ = writeln!(out, "  isr of the {steady} other partitions: unchanged throughout");
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {} (seed {}) ==", r.scenario, r.seed);
    if !r.description.is_empty() {
        for para in r.description.split("\n\n") {
            wrap(para, "", &mut out);
        }
    }

    let s = &r.settings;
    let _ = writeln!(out, "\nSetup");
    let _ = writeln!(
        out,
        "  {} broker{} · network latency {}, jitter {} · workload {}, then drain {}",
        s.brokers,
        if s.brokers == 1 { "" } else { "s" },
        s.latency,
        s.jitter,
        secs(s.duration_ms),
        secs(s.drain_ms)
    );
    for t in &s.topics {
        let _ = writeln!(
            out,
            "  topic {}: {} partition{}, replication factor {}, min.insync.replicas {}",
            t.name,
            t.partitions,
            if t.partitions == 1 { "" } else { "s" },
            t.replication_factor,
            t.min_insync_replicas
        );
    }
    for w in &r.warnings {
        wrap(&format!("warning: {w}"), "  ", &mut out);
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "\nNot modelled yet");
        for n in &r.notes {
            let mut text = String::new();
            wrap_to(n, "", WRAP - 4, &mut text);
            for (i, line) in text.lines().enumerate() {
                let _ = writeln!(out, "  {} {line}", if i == 0 { "-" } else { " " });
            }
        }
    }

    let _ = writeln!(out, "\nTimeline");
    if r.timeline.is_empty() {
        let _ = writeln!(out, "  nothing notable happened");
    }
    for e in &r.timeline {
        let when = format!("{:>9}", secs(e.at_ms));
        let mut first = String::new();
        wrap_to(&e.text, "", WRAP - 13, &mut first);
        for (i, line) in first.lines().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "  {when}  {line}");
            } else {
                let _ = writeln!(out, "  {:>9}    {line}", "");
            }
        }
    }

    over_time(r, &mut out);

    let end_marks: Vec<GroupMarks> = r
        .consumer_groups
        .iter()
        .map(|g| GroupMarks {
            group: g.group.clone(),
            committed: g.committed.clone(),
            lag: g.lag.clone(),
            positions: g.positions.clone(),
        })
        .collect();
    let scales = scales(r);
    for picture in &r.pictures {
        let title = format!("Partitions at {}", secs(picture.at_ms));
        draw_partitions(&title, &scales, &picture.partitions, &picture.groups, &mut out);
    }
    draw_partitions("Partitions at the end", &scales, &r.partitions, &end_marks, &mut out);

    let _ = writeln!(out, "\nTopics");
    for t in &s.topics {
        let counts: Vec<u64> = r
            .partitions
            .iter()
            .filter(|p| p.topic == t.name)
            .map(|p| p.log_end_offsets.values().copied().max().unwrap_or(0))
            .collect();
        let total: u64 = counts.iter().sum();
        let list: Vec<String> = counts.iter().map(u64::to_string).collect();
        let skew = match (counts.iter().max(), counts.len() > 1) {
            (Some(&max), true) => match (max * counts.len() as u64 * 100).checked_div(total) {
                Some(h) => format!(" · skew {}.{:02} (largest over mean)", h / 100, h % 100),
                None => String::new(),
            },
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}: {total} records; per partition {}{skew}",
            t.name,
            list.join(" · ")
        );
    }

    let _ = writeln!(out, "\nBrokers");
    let all_records: u64 = r.brokers.iter().map(|b| b.records).sum();
    for b in &r.brokers {
        let share = (b.records * 100).checked_div(all_records).unwrap_or(0);
        let mut line = format!(
            "  broker-{}{}  leads {} · {} records ({share}%), {} bytes",
            b.broker,
            if b.up { "" } else { " (down)" },
            if b.leads.is_empty() {
                "nothing".to_string()
            } else {
                b.leads.join(", ")
            },
            b.records,
            b.bytes
        );
        if !b.follows.is_empty() {
            let _ = write!(
                line,
                " · follows {} ({} records copied)",
                b.follows.join(", "),
                b.follower_records
            );
        }
        if !b.coordinates.is_empty() {
            let _ = write!(line, " · coordinator of {}", b.coordinates.join(", "));
        }
        let _ = writeln!(out, "{line}");
    }

    if !r.producers.is_empty() {
        let _ = writeln!(out, "\nProducers");
    }
    for p in &r.producers {
        let per_batch = match (p.acked * 10).checked_div(p.batches) {
            Some(tenths) => format!("{}.{}", tenths / 10, tenths % 10),
            None => "0".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} -> {} (acks={}, idempotence {}): sent {} · acked {} · failed {}{}",
            p.name,
            p.topic,
            p.acks,
            if p.idempotence { "on" } else { "off" },
            p.sent,
            p.acked,
            p.failed,
            [
                (p.unacknowledged, "unacknowledged (acks=0)"),
                (p.refused, "refused by send()"),
                (p.pending, "still pending"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(" · {what} {n}"))
            .collect::<String>()
        );
        if p.offered > p.sent {
            let _ = writeln!(
                out,
                "    {} more fell due while the producer was down or blocked in send()",
                count(p.offered - p.sent, "record")
            );
        }
        if p.batches > 0 {
            let _ = writeln!(
                out,
                "    {} ({} resent) · {}, {per_batch} records/batch (max {}), {} bytes ({} per record) · {} records/s",
                count(p.requests, "request"),
                count(p.retried_batches, "batch"),
                count(p.batches, "batch"),
                p.batch_records_max,
                p.bytes,
                p.bytes / p.acked.max(1),
                p.throughput_per_s
            );
            let sizes: Vec<String> = p
                .batch_sizes
                .iter()
                .map(|b| match b.records_max.min(p.batch_records_max) {
                    max if max == b.records_min => format!("{max}×{}", b.batches),
                    max => format!("{}-{max}×{}", b.records_min, b.batches),
                })
                .collect();
            wrap(&format!("records per batch: {}", sizes.join(" · ")), "    ", &mut out);
            let _ = writeln!(
                out,
                "    latency p50 {:.1}ms · p99 {:.1}ms · max {:.1}ms",
                p.latency_ms.p50, p.latency_ms.p99, p.latency_ms.max
            );
            if !p.key_partitions.is_empty() {
                let keys: Vec<String> = p
                    .key_partitions
                    .iter()
                    .map(|(k, part)| format!("{k} -> {}-{part}", p.topic))
                    .collect();
                wrap(&format!("keys: {}", keys.join(" · ")), "    ", &mut out);
            }
            if p.duplicates_written > 0 || p.reordered > 0 {
                let _ = writeln!(
                    out,
                    "    in the final logs: {} written twice, {} out of order",
                    count(p.duplicates_written, "record"),
                    count(p.reordered, "record")
                );
            }
        }
        if p.blocked_sends > 0 {
            let _ = writeln!(
                out,
                "    send() blocked {} on a full buffer.memory, {:.1}ms in all",
                count(p.blocked_sends, "time"),
                p.blocked_ms
            );
        }
        if !p.errors.is_empty() {
            let e: Vec<String> = p.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "    errors (per batch, retried or not): {}", e.join(" · "));
        }
        if !p.failed_by_reason.is_empty() {
            let e: Vec<String> = p.failed_by_reason.iter().map(|(k, v)| format!("{v} ({k})")).collect();
            let _ = writeln!(out, "    records given up: {}", e.join(" · "));
        }
    }

    if !r.consumer_groups.is_empty() {
        let _ = writeln!(out, "\nConsumer groups");
    }
    for g in &r.consumer_groups {
        let _ = writeln!(
            out,
            "  {} (commit {}): processed {} · unique {} · duplicates {} · never processed {}",
            g.group, g.commit, g.consumed, g.unique, g.duplicates, g.lost
        );
        let _ = writeln!(out, "    delivery as observed: {}", g.delivery);
        if !g.duplicates_by_reason.is_empty() {
            let why: Vec<String> = g
                .duplicates_by_reason
                .iter()
                .map(|(k, v)| match g.duplicate_offsets.get(k) {
                    Some(offsets) => format!("{v} after {k} ({})", offset_ranges(offsets)),
                    None => format!("{v} after {k}"),
                })
                .collect();
            wrap(&format!("duplicates: {}", why.join(" · ")), "    ", &mut out);
        }
        if g.rebalances > 0 {
            let mut line = format!(
                "generation {} ({}) · {} · {:.0}ms rebalancing · {}",
                g.generation,
                g.protocol,
                count(g.rebalances, "rebalance"),
                g.rebalance_ms,
                count(g.partitions_moved, "partition move")
            );
            if g.revoked_ms > 0.0 {
                line.push_str(&format!(" · partitions revoked {:.1}s in all", g.revoked_ms / 1000.0));
            }
            if g.commit_failures > 0 {
                line.push_str(&format!(" · {}", count(g.commit_failures, "failed commit")));
            }
            if g.poll_timeouts > 0 {
                line.push_str(&format!(" · {}", count(g.poll_timeouts, "poll timeout")));
            }
            wrap(&line, "    ", &mut out);
        }
        if let Some(max) = g
            .lag_over_time
            .iter()
            .max_by_key(|s| (s.lag, std::cmp::Reverse(s.at_ms)))
            && max.lag > 0
        {
            let _ = writeln!(
                out,
                "    lag (high watermark minus committed offset): at most {} (at {}), {} at the end",
                max.lag,
                secs(max.at_ms),
                g.lag_over_time.last().map_or(0, |s| s.lag)
            );
        }
        if let Some(per) = (g.fetched * 10).checked_div(g.fetches) {
            let _ = writeln!(
                out,
                "    {} answered, {}.{} records each on average",
                count(g.fetches, "fetch"),
                per / 10,
                per % 10
            );
        }
        let members: Vec<String> = g
            .assignment
            .iter()
            .map(|(m, ps)| {
                let parts = if ps.is_empty() {
                    "nothing".to_string()
                } else {
                    ps.join(", ")
                };
                let n = g.processed_by_member.get(m).copied().unwrap_or(0);
                format!("{m}: {parts} ({n} processed)")
            })
            .collect();
        wrap(&members.join(" · "), "    ", &mut out);
    }

    let _ = writeln!(out, "\nChecks");
    for c in &r.checks {
        if !c.implemented {
            let _ = writeln!(out, "  -     {}  (not implemented yet)", c.name);
            continue;
        }
        let verdict = if c.passed { "pass " } else { "FAIL " };
        let note = match (c.passed, c.expected_to_fail) {
            (true, true) => "  (UNEXPECTED: the scenario expects it to fail)",
            (false, true) => "  (expected: the scenario's lesson)",
            (false, false) => "  (UNEXPECTED)",
            (true, false) => "",
        };
        let _ = writeln!(out, "  {verdict} {}{note}", c.name);
        for v in &c.violations {
            let mut text = String::new();
            wrap_to(&v.message, "", WRAP - 19, &mut text);
            for (i, line) in text.lines().enumerate() {
                if i == 0 {
                    let _ = writeln!(out, "        {:>9}  {line}", secs(v.at_ms));
                } else {
                    let _ = writeln!(out, "        {:>9}  {line}", "");
                }
            }
        }
    }

    let _ = writeln!(out);
    if r.passed {
        let _ = writeln!(
            out,
            "Result: as expected ({} events, {} simulated)",
            r.events,
            secs(r.simulated_ms)
        );
    } else {
        let _ = writeln!(
            out,
            "Result: NOT as expected ({} events, {} simulated)",
            r.events,
            secs(r.simulated_ms)
        );
    }
    let _ = writeln!(out, "Reproduce: {}", r.reproduce);
    out
}

/// The brief report (`run --brief`): the title and description, the timeline, the charts
/// over time, the checks that did not pass with their stories, and the result and the
/// command that reproduces the run. Sections are the full report's, left out whole.
pub fn render_brief(r: &Report) -> String {
    let full = render(r);
    // The title and description come before `Setup`; after it, every unindented line
    // begins a section.
    let (head, rest) = full.split_once("\nSetup\n").unwrap_or((&full, ""));
    let mut out = head.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let mut keep = false;
    let mut checks = false;
    // Within the checks: whether the current check's lines are kept.
    let mut failing = false;
    for line in rest.lines() {
        if line.is_empty() {
            continue;
        }
        let header = !line.starts_with(' ');
        if header {
            checks = line == "Checks";
            keep = checks
                || line == "Timeline"
                || line.starts_with("Over time")
                || line.starts_with("Result:")
                || line.starts_with("Reproduce:");
            if !keep {
                continue;
            }
            // A blank line before each section, as in the full report.
            if !line.starts_with("Reproduce:") {
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
            if checks && r.checks.iter().all(|c| c.passed && !c.expected_to_fail) {
                out.push_str("  every check passed\n");
            }
            continue;
        }
        if !keep {
            continue;
        }
        if checks {
            // A check's own line is indented by two; its violations by more.
            if let Some(rest) = line.strip_prefix("  ")
                && !rest.starts_with(' ')
            {
                failing = rest.starts_with("FAIL") || rest.contains("UNEXPECTED");
            }
            if !failing {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
