//! The HTML report: one self-contained file (no script, font, style or image from
//! elsewhere, and a Content-Security-Policy that refuses any), built from a [`Report`]
//! alone. Charts of numbers over time are drawn by `plotters` into SVG; the pictures that
//! are Kafka's own (a partition's replicas as swimlanes, a group's ownership, the logs) are
//! SVG written here, through `maud`, which escapes every name it is given.

use super::series::{PartitionSeries, ProducerSeries, Series};
use super::{CheckReport, GroupReport, PartitionReport, Report};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::collections::BTreeMap;

/// The policy the page declares: nothing loads from anywhere, not even from the file's
/// own folder; the page's one style sheet is inline and SVG is part of the document.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Width of every drawing, in CSS pixels.
const WIDTH: u32 = 960;
/// Left margin of the hand-drawn pictures, for the lanes' names.
const LABEL: f64 = 120.0;
const LANE: f64 = 36.0;
const GAP: f64 = 6.0;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1000px; padding: 0 16px 48px; color: #1d232b; background: #fff; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #dde; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
nav a { margin-right: 12px; } code, pre { font: 12.5px/1.4 ui-monospace, monospace; } pre { white-space: pre-wrap; }
.pass { color: #176d2c; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; }
.badge.pass { background: #1e8a3a; } .badge.fail { background: #b3261e; }
table { border-collapse: collapse; margin: 6px 0; } td, th { border: 1px solid #dde; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f5f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #5b6472; } .sw { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: -1px; border: 1px solid #889; }
.leader { background: #3569c4; } .insync { background: #a9c4ee; } .outsync { background: #f2c46d; } .eligible { background: #b9a2dd; } .down { background: #c8c8c8; }
.grid td { text-align: center; min-width: 28px; } .grid td.L { background: #3569c4; color: #fff; } .grid td.F { background: #a9c4ee; } .grid td.O { background: #f2c46d; }
figure { margin: 8px 0 16px; } figcaption { color: #5b6472; font-size: 12.5px; }
ol.timeline { list-style: none; padding-left: 0; } ol.timeline li { margin: 1px 0; display: grid; grid-template-columns: 84px 1fr; } ol.timeline time { color: #5b6472; font-variant-numeric: tabular-nums; }
";

/// Colours of the members in ownership charts and of lines in charts.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One decimal place: enough for pixels.
fn px(x: f64) -> String {
    format!("{x:.1}")
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// What every drawing over time shares: its time axis, and the faults and violations to
/// mark on it.
struct Axis {
    end_ms: u64,
    /// (from, to, what): a fault that lasted, or an instant one when from == to.
    faults: Vec<(u64, u64, String)>,
    /// (when, check, story).
    violations: Vec<(u64, String, String)>,
}

impl Axis {
    fn new(r: &Report) -> Axis {
        let end_ms = r.series.at_ms.last().copied().unwrap_or(r.simulated_ms).max(1);
        let faults = r
            .faults
            .iter()
            .filter(|f| f.fired)
            .map(|f| {
                let to = f.for_ms.map_or(f.at_ms, |d| (f.at_ms + d).min(end_ms));
                let hit = if f.hit.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", f.hit.join(", "))
                };
                (
                    f.at_ms,
                    to,
                    format!("{} {}{hit} at {}", f.fault, f.target, secs(f.at_ms)),
                )
            })
            .collect();
        let violations = r
            .checks
            .iter()
            .flat_map(|c| {
                c.violations
                    .iter()
                    .map(move |v| (v.at_ms, c.name.clone(), v.message.clone()))
            })
            .collect();
        Axis {
            end_ms,
            faults,
            violations,
        }
    }

    /// The x of `ms` in a hand-drawn picture.
    fn x(&self, ms: f64) -> f64 {
        LABEL + ms / self.end_ms as f64 * (f64::from(WIDTH) - LABEL - 12.0)
    }

    /// Round tick steps in ms, at most about ten ticks.
    fn ticks(&self) -> Vec<u64> {
        let steps = [
            100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        ];
        let step = steps
            .iter()
            .copied()
            .find(|s| self.end_ms / s <= 10)
            .unwrap_or(3_600_000);
        (0..=self.end_ms / step).map(|i| i * step).collect()
    }

    /// Faults shaded and violations drawn across a picture from `top` to `bottom`, and
    /// the time axis under it.
    fn marks(&self, top: f64, bottom: f64) -> Markup {
        html! {
            @for (from, to, what) in &self.faults {
                @let (a, b) = (self.x(*from as f64), self.x(*to as f64));
                @if to > from {
                    rect x=(px(a)) y=(px(top)) width=(px(b - a)) height=(px(bottom - top)) fill="#000" fill-opacity="0.07" { title { (what) } }
                }
                line x1=(px(a)) x2=(px(a)) y1=(px(top)) y2=(px(bottom)) stroke="#555" stroke-width="1.5" { title { (what) } }
            }
            @for (at, check, story) in &self.violations {
                @let x = self.x(*at as f64);
                line x1=(px(x)) x2=(px(x)) y1=(px(top)) y2=(px(bottom)) stroke="#c62828" stroke-width="1.5" stroke-dasharray="4 3" {
                    title { (check) " at " (secs(*at)) ": " (story) }
                }
            }
            @for t in self.ticks() {
                @let x = self.x(t as f64);
                line x1=(px(x)) x2=(px(x)) y1=(px(bottom)) y2=(px(bottom + 4.0)) stroke="#667" {}
                text x=(px(x)) y=(px(bottom + 15.0)) font-size="11" text-anchor="middle" fill="#445" { (t as f64 / 1000.0) "s" }
            }
        }
    }
}

/// A whole page: `body` under the one head every page has (its policy and style sheet).
fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CONTENT_SECURITY_POLICY);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// Renders the whole page.
pub fn render(r: &Report) -> String {
    let axis = Axis::new(r);
    let body = html! {
                (header(r))
                nav {
                    a href="#checks" { "Checks" }
                    a href="#timeline" { "Timeline" }
                    a href="#partitions" { "Partitions" }
                    @if !r.series.producers.is_empty() { a href="#producers" { "Producers" } }
                    @if !r.consumer_groups.is_empty() { a href="#groups" { "Groups" } }
                    a href="#logs" { "Logs" }
                    a href="#brokers" { "Brokers" }
                }
                (checks(r))
                (timeline(r))
                (partitions(r, &axis))
                (producers(r, &axis))
                (groups(r, &axis))
                (logs(r))
                (brokers(r))
    };
    page(&format!("kafkasim: {} (seed {})", r.scenario, r.seed), body)
}

fn header(r: &Report) -> Markup {
    let s = &r.settings;
    html! {
        h1 { (r.scenario) " " span.muted { "seed " (r.seed) } }
        p {
            @if r.passed { span.badge.pass { "as expected" } } @else { span.badge.fail { "NOT as expected" } }
            " " (r.events) " events, " (secs(r.simulated_ms)) " simulated"
        }
        @for para in r.description.split("\n\n").filter(|p| !p.trim().is_empty()) {
            p { (para) }
        }
        p.muted {
            (s.brokers) " broker" @if s.brokers != 1 { "s" } " · network latency " (s.latency) ", jitter " (s.jitter)
            " · workload " (secs(s.duration_ms)) ", then drain " (secs(s.drain_ms))
            @for t in &s.topics {
                br;
                "topic " (t.name) ": " (t.partitions) " partition" @if t.partitions != 1 { "s" }
                ", replication factor " (t.replication_factor) ", min.insync.replicas " (t.min_insync_replicas)
            }
        }
        p { "Reproduce: " code { (r.reproduce) } }
        @for w in &r.warnings { p.fail { "warning: " (w) } }
        @if !r.notes.is_empty() {
            details {
                summary { "Not modelled yet" }
                ul { @for n in &r.notes { li { (n) } } }
            }
        }
    }
}

fn check_row(c: &CheckReport) -> Markup {
    let status = if !c.implemented {
        "not run"
    } else if c.passed {
        "pass"
    } else {
        "FAIL"
    };
    html! {
        tr {
            td { code { (c.name) } }
            td class=(if c.passed || !c.implemented { "pass" } else { "fail" }) { (status) }
            td { @if c.expected_to_fail { "expected to fail: the scenario's lesson" } }
            td.num { (c.count) }
            td { (c.kinds.join(", ")) }
        }
    }
}

fn checks(r: &Report) -> Markup {
    html! {
        h2 #checks { "Checks" }
        table {
            tr { th { "check" } th { "result" } th { "expectation" } th { "violations" } th { "kinds" } }
            @for c in &r.checks { (check_row(c)) }
        }
        @for c in r.checks.iter().filter(|c| !c.violations.is_empty()) {
            h3 { code { (c.name) } ": " (c.count) " violation" @if c.count != 1 { "s" }
                 @if c.count as usize > c.violations.len() { " (the first " (c.violations.len()) ")" } }
            ol.timeline {
                @for v in &c.violations {
                    li { time { (secs(v.at_ms)) } (v.message) " " span.muted { "(" (v.kind) ")" } }
                }
            }
            p.muted { "Each is marked on the charts below by a red dashed line at its time." }
        }
    }
}

fn timeline(r: &Report) -> Markup {
    html! {
        h2 #timeline { "Timeline" }
        @if r.timeline.is_empty() { p { "Nothing notable happened." } }
        ol.timeline {
            @for e in &r.timeline { li { time { (secs(e.at_ms)) } (e.text) } }
        }
    }
}

/// A replica's role over an interval of the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader,
    InSync,
    /// Out of the ISR but an eligible leader replica (KIP-966).
    Eligible,
    OutOfSync,
    Down,
}

impl Role {
    fn fill(self) -> &'static str {
        match self {
            Role::Leader => "#3569c4",
            Role::InSync => "#a9c4ee",
            Role::Eligible => "#b9a2dd",
            Role::OutOfSync => "#f2c46d",
            Role::Down => "#c8c8c8",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::InSync => "follower in the ISR",
            Role::Eligible => "eligible leader replica (out of the ISR, holds every committed record)",
            Role::OutOfSync => "follower out of the ISR",
            Role::Down => "down",
        }
    }
}

/// Per replica of `p`: its roles over the run as (from, to, role), in ms.
fn roles(p: &PartitionSeries, series: &Series, end_ms: u64) -> BTreeMap<u32, Vec<(u64, u64, Role)>> {
    let mut cuts: Vec<u64> = p.changes.iter().map(|c| c.at_us / 1000).collect();
    cuts.extend(series.brokers.iter().map(|b| b.at_us / 1000));
    cuts.push(0);
    cuts.push(end_ms);
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = BTreeMap::new();
    for &b in &p.replicas {
        let mut spans: Vec<(u64, u64, Role)> = Vec::new();
        for w in cuts.windows(2) {
            let (from, to) = (w[0], w[1]);
            // The state in force at `from`: the last change at or before it.
            let state = p.changes.iter().rev().find(|c| c.at_us / 1000 <= from);
            let down = series
                .brokers
                .iter()
                .rev()
                .find(|e| e.broker == b && e.at_us / 1000 <= from && matches!(e.event, "down" | "up"))
                .is_some_and(|e| e.event == "down");
            let role = match state {
                _ if down => Role::Down,
                Some(s) if s.leader == Some(b) => Role::Leader,
                Some(s) if s.isr.contains(&b) => Role::InSync,
                Some(s) if s.elr.contains(&b) => Role::Eligible,
                _ => Role::OutOfSync,
            };
            match spans.last_mut() {
                Some(last) if last.2 == role && last.1 == from => last.1 = to,
                _ => spans.push((from, to, role)),
            }
        }
        out.insert(b, spans);
    }
    out
}

/// A polyline of `values` at the series' points, scaled so `top` reaches the lane's top.
fn lane_line(axis: &Axis, at_ms: &[u64], values: impl Iterator<Item = Option<u64>>, y: f64, top: u64) -> String {
    let mut points = String::new();
    for (at, v) in at_ms.iter().zip(values) {
        let Some(v) = v else { continue };
        let h = (v as f64 / top.max(1) as f64) * (LANE - 4.0);
        points.push_str(&format!("{},{} ", px(axis.x(*at as f64)), px(y + LANE - 2.0 - h)));
    }
    points
}

/// A group reading a partition: its name, and its committed offsets and its member's
/// positions at the series' points.
type Reader<'a> = (&'a str, &'a [Option<u64>], &'a [Option<u64>]);

fn swimlanes(r: &Report, axis: &Axis, p: &PartitionSeries) -> Markup {
    let series = &r.series;
    let readers: Vec<Reader> = series
        .groups
        .iter()
        .filter_map(|g| {
            let committed = g.committed.get(&p.name)?;
            Some((
                g.group.as_str(),
                committed.as_slice(),
                g.positions.get(&p.name)?.as_slice(),
            ))
        })
        .collect();
    let rows = p.replicas.len() + readers.len();
    let top = 8.0;
    let bottom = top + rows as f64 * (LANE + GAP);
    let height = bottom + 22.0;
    let scale = p
        .log_end_offsets
        .values()
        .flat_map(|v| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let roles = roles(p, series, axis.end_ms);
    let lane_y = |i: usize| top + i as f64 * (LANE + GAP);
    let x0 = axis.x(0.0);
    let x1 = axis.x(axis.end_ms as f64);
    html! {
        svg.swimlanes width=(WIDTH) height=(px(height)) viewBox=(format!("0 0 {WIDTH} {}", px(height))) role="img" {
            title { (p.name) ": each replica's role, log end offset (solid) and high watermark (dashed) over the run" }
            @for (i, b) in p.replicas.iter().enumerate() {
                @let y = lane_y(i);
                text x="4" y=(px(y + LANE / 2.0 + 4.0)) font-size="12" fill="#1d232b" { "broker-" (b) }
                @for (from, to, role) in &roles[b] {
                    @let (a, z) = (axis.x(*from as f64), axis.x(*to as f64));
                    rect x=(px(a)) y=(px(y)) width=(px((z - a).max(0.5))) height=(px(LANE)) fill=(role.fill()) {
                        title { "broker-" (b) ": " (role.words()) " from " (secs(*from)) " to " (secs(*to)) }
                    }
                }
                @let leo = lane_line(axis, &series.at_ms, p.log_end_offsets[&b.to_string()].iter().map(|v| Some(*v)), y, scale);
                @let hw = lane_line(axis, &series.at_ms, p.high_watermarks[&b.to_string()].iter().map(|v| Some(*v)), y, scale);
                polyline points=(leo) fill="none" stroke="#10151c" stroke-width="1.5" { title { "broker-" (b) ": log end offset" } }
                polyline points=(hw) fill="none" stroke="#0b6b2f" stroke-width="1.5" stroke-dasharray="5 3" { title { "broker-" (b) ": high watermark" } }
                @for (k, c) in p.changes.iter().enumerate() {
                    @let new_epoch = k == 0 || p.changes[k - 1].leader_epoch != c.leader_epoch || p.changes[k - 1].leader != c.leader;
                    @if c.leader == Some(*b) && new_epoch {
                        @let x = axis.x(c.at_us as f64 / 1000.0);
                        text x=(px(x + 3.0)) y=(px(y + 11.0)) font-size="10" fill="#fff" { "epoch " (c.leader_epoch) }
                    }
                }
                @for e in series.brokers.iter().filter(|e| e.broker == *b && matches!(e.event, "fenced" | "unfenced")) {
                    @let x = axis.x(e.at_us as f64 / 1000.0);
                    path d=(format!("M{} {} l4 -6 l4 6 z", px(x - 4.0), px(y + LANE))) fill="#10151c" {
                        title { "the controller " (if e.event == "fenced" { "fences" } else { "unfences" }) " broker-" (b) " at " (secs(e.at_us / 1000)) }
                    }
                    text x=(px(x + 5.0)) y=(px(y + LANE - 2.0)) font-size="9" fill="#10151c" { (e.event) }
                }
                @for t in p.truncations.iter().filter(|t| t.broker == *b) {
                    @let x = axis.x(t.at_us as f64 / 1000.0);
                    path d=(format!("M{} {} l-5 -8 h10 z", px(x), px(y + 9.0))) fill="#c62828" {
                        title { "broker-" (b) " truncates to offset " (t.from) ", dropping " (crate::check::offsets_text(t.from, t.to)) " at " (secs(t.at_us / 1000)) }
                    }
                }
            }
            @for (k, (group, committed, positions)) in readers.iter().enumerate() {
                @let y = lane_y(p.replicas.len() + k);
                text x="4" y=(px(y + LANE / 2.0 + 4.0)) font-size="12" fill="#5a2d91" { (group) }
                rect x=(px(x0)) y=(px(y)) width=(px(x1 - x0)) height=(px(LANE)) fill="#f6f2fb" stroke="#d9cdea" {}
                polyline points=(lane_line(axis, &series.at_ms, committed.iter().copied(), y, scale)) fill="none" stroke="#5a2d91" stroke-width="1.5" {
                    title { (group) ": committed offset" }
                }
                polyline points=(lane_line(axis, &series.at_ms, positions.iter().copied(), y, scale)) fill="none" stroke="#b07fe0" stroke-width="1.5" stroke-dasharray="2 2" {
                    title { (group) ": position of the member that owns the partition" }
                }
            }
            (axis.marks(top - 4.0, bottom - GAP + 2.0))
        }
    }
}

fn partitions(r: &Report, axis: &Axis) -> Markup {
    let has_elr = r
        .series
        .partitions
        .iter()
        .any(|p| p.changes.iter().any(|c| !c.elr.is_empty()));
    html! {
        h2 #partitions { "Partitions over time" }
        p {
            span.sw.leader {} "leader" span.sw.insync {} "follower in the ISR" span.sw.outsync {} "follower out of the ISR"
            @if has_elr { span.sw.eligible {} "eligible leader replica (KIP-966)" }
            span.sw.down {} "broker down"
            " · black: log end offset · dashed green: high watermark · red triangle: a truncation · black mark: fenced or unfenced by the controller · "
            "purple: a group's committed offset, dotted its member's position · grey: a fault · red dashed: a violation"
        }
        @for p in &r.series.partitions {
            figure {
                figcaption {
                    b { (p.name) } ": replicas " (join(&p.replicas)) "; offsets from 0 to "
                    (p.log_end_offsets.values().flat_map(|v| v.iter().copied()).max().unwrap_or(0)) " from a lane's foot to its top"
                }
                (swimlanes(r, axis, p))
            }
        }
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// A line of a chart: its name, colour and points (x in seconds); `None` breaks it.
struct Line {
    name: String,
    color: RGBColor,
    points: Vec<(f64, Option<f64>)>,
}

/// How a chart draws its values.
#[derive(Clone, Copy)]
struct Look {
    /// A logarithmic y axis (for latencies, which span orders of magnitude).
    log: bool,
    /// A legend with the lines' names, even for one line.
    legend: bool,
}

const PLAIN: Look = Look {
    log: false,
    legend: false,
};

/// A chart of `lines` over the run, with the faults shaded and the violations marked.
fn chart(axis: &Axis, lines: &[Line], y_desc: &str, look: Look) -> Markup {
    let mut svg = String::new();
    let drawn = draw_chart(&mut svg, axis, lines, y_desc, look);
    match drawn {
        Ok(()) => html! { (PreEscaped(svg)) },
        Err(e) => html! { p.fail { "chart not drawn: " (e) } },
    }
}

/// The largest value of `lines`.
fn top(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0f64, f64::max)
}

/// A number as an axis label: no decimals once it is large.
fn tick(v: f64) -> String {
    if v.abs() >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw_chart(
    svg: &mut String,
    axis: &Axis,
    lines: &[Line],
    y_desc: &str,
    look: Look,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = top(lines);
    if look.log {
        // A logarithmic y axis from 0.1.
        let (bottom, top) = (0.1, (top * 2.0).max(1.0));
        draw_on(svg, axis, lines, y_desc, look, (bottom..top).log_scale(), (bottom, top))
    } else {
        let top = if top <= 0.0 { 1.0 } else { top * 1.12 };
        draw_on(svg, axis, lines, y_desc, look, 0.0..top, (0.0, top))
    }
}

/// The chart on a y axis of `y`, which spans `bottom..top`.
fn draw_on<Y>(
    svg: &mut String,
    axis: &Axis,
    lines: &[Line],
    y_desc: &str,
    look: Look,
    y: Y,
    (bottom, top): (f64, f64),
) -> Result<(), Box<dyn std::error::Error>>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let end = axis.end_ms as f64 / 1000.0;
    let root = SVGBackend::with_string(svg, (WIDTH, 180)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, y)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .y_desc(y_desc)
        .x_desc("simulated seconds")
        .x_label_formatter(&|v| format!("{}s", tick(*v)))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 11))
        .axis_desc_style(("sans-serif", 12))
        .draw()?;
    for (from, to, _) in &axis.faults {
        let (a, b) = (*from as f64 / 1000.0, *to as f64 / 1000.0);
        if b > a {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(a, bottom), (b, top)],
                BLACK.mix(0.07).filled(),
            )))?;
        }
        chart.draw_series(LineSeries::new([(a, bottom), (a, top)], BLACK.mix(0.6).stroke_width(1)))?;
    }
    for (at, _, _) in &axis.violations {
        let x = *at as f64 / 1000.0;
        chart.draw_series(LineSeries::new([(x, bottom), (x, top)], RED.mix(0.8).stroke_width(1)))?;
    }
    draw_lines(&mut chart, lines, look)?;
    root.present()?;
    Ok(())
}

/// Draws `lines` (broken where a value is missing) and their legend.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: &[Line],
    look: Look,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for line in lines {
        let color = line.color;
        let mut labelled = false;
        for run in line.points.split(|p| p.1.is_none()).filter(|r| !r.is_empty()) {
            // A value alone between gaps is a dot: a line of one point draws nothing.
            if let [(x, Some(y))] = run {
                chart
                    .draw_series(std::iter::once(Circle::new((*x, *y), 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            let series = chart
                .draw_series(LineSeries::new(
                    run.iter().map(|&(x, y)| (x, y.unwrap_or_default())),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            if !labelled {
                labelled = true;
                series
                    .label(line.name.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
    }
    if look.legend || lines.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Per point, its length in seconds (the first from zero).
fn point_seconds(at_ms: &[u64]) -> Vec<f64> {
    let mut last = 0;
    at_ms
        .iter()
        .map(|&a| {
            let s = (a - last) as f64 / 1000.0;
            last = a;
            s.max(1e-3)
        })
        .collect()
}

fn per_second(at_ms: &[u64], counts: &[u64]) -> Vec<(f64, Option<f64>)> {
    at_ms
        .iter()
        .zip(point_seconds(at_ms))
        .zip(counts)
        .map(|((&at, s), &c)| (at as f64 / 1000.0, Some(c as f64 / s)))
        .collect()
}

fn producer(r: &Report, axis: &Axis, p: &ProducerSeries) -> Markup {
    let at = &r.series.at_ms;
    let secs_at = |i: usize| at[i] as f64 / 1000.0;
    let mut rate = vec![Line {
        name: "acknowledged".into(),
        color: color(0),
        points: per_second(at, &p.acked),
    }];
    if p.failed.iter().any(|&f| f > 0) {
        rate.push(Line {
            name: "given up".into(),
            color: color(3),
            points: per_second(at, &p.failed),
        });
    }
    let errors: Vec<Line> = p
        .errors
        .iter()
        .enumerate()
        .map(|(i, (name, counts))| Line {
            name: name.clone(),
            color: color(i + 1),
            points: per_second(at, counts),
        })
        .collect();
    let in_flight = [Line {
        name: "requests in flight".into(),
        color: color(4),
        points: (0..at.len())
            .map(|i| (secs_at(i), Some(f64::from(p.in_flight[i]))))
            .collect(),
    }];
    let latency = [
        Line {
            name: "p50".into(),
            color: color(0),
            points: (0..at.len()).map(|i| (secs_at(i), p.latency_p50_ms[i])).collect(),
        },
        Line {
            name: "p99".into(),
            color: color(1),
            points: (0..at.len()).map(|i| (secs_at(i), p.latency_p99_ms[i])).collect(),
        },
    ];
    let report = r.producers.iter().find(|x| x.name == p.name);
    html! {
        h3 #(format!("producer-{}", p.name)) { (p.name) }
        @if let Some(x) = report {
            p.muted {
                "→ " (x.topic) " · acks=" (x.acks) " · idempotence " (if x.idempotence { "on" } else { "off" })
                " · sent " (x.sent) " · acknowledged " (x.acked) " · failed " (x.failed)
                " · latency p50 " (x.latency_ms.p50) " ms, p99 " (x.latency_ms.p99) " ms, max " (x.latency_ms.max) " ms"
            }
        }
        figure { (chart(axis, &rate, "records/s", PLAIN)) figcaption { "Records acknowledged per second" @if rate.len() > 1 { " and given up" } } }
        @if !errors.is_empty() {
            figure { (chart(axis, &errors, "errors/s", Look { log: false, legend: true })) figcaption { "Error responses per second, by Kafka's name (per batch, retried or not)" } }
        }
        figure { (chart(axis, &in_flight, "requests", PLAIN)) figcaption { "Produce requests in flight" } }
        figure { (chart(axis, &latency, "ms (log scale)", Look { log: true, legend: true })) figcaption { "Latency of the records acknowledged in each interval: median and 99th percentile" } }
    }
}

fn producers(r: &Report, axis: &Axis) -> Markup {
    html! {
        @if !r.series.producers.is_empty() {
            h2 #producers { "Producers" }
            @for p in &r.series.producers { (producer(r, axis, p)) }
        }
    }
}

/// Which member owned which partition in each generation, as coloured spans per partition.
fn ownership(axis: &Axis, g: &GroupReport) -> Markup {
    let mut partitions: Vec<&str> = g
        .generations
        .iter()
        .flat_map(|gn| gn.assignment.values().flatten().map(String::as_str))
        .chain(g.lag.keys().map(String::as_str))
        .collect();
    partitions.sort_by_key(|p| {
        p.rsplit_once('-')
            .map(|(t, n)| (t.to_string(), n.parse::<u64>().unwrap_or(0)))
    });
    partitions.dedup();
    let mut members: Vec<&str> = g
        .generations
        .iter()
        .flat_map(|gn| gn.assignment.keys().map(String::as_str))
        .collect();
    members.sort_unstable();
    members.dedup();
    let row = |p: &str| partitions.iter().position(|x| *x == p).unwrap_or(0);
    let top = 22.0;
    let lane = 18.0;
    let bottom = top + partitions.len() as f64 * (lane + 3.0);
    let height = bottom + 22.0;
    html! {
        svg.ownership width=(WIDTH) height=(px(height)) viewBox=(format!("0 0 {WIDTH} {}", px(height))) role="img" {
            title { "group " (g.group) ": which member owned which partition in each generation" }
            @for p in &partitions {
                text x="4" y=(px(top + row(p) as f64 * (lane + 3.0) + 13.0)) font-size="12" fill="#1d232b" { (p) }
            }
            @for (k, gn) in g.generations.iter().enumerate() {
                @let from = gn.at_ms;
                @let to = g.generations.get(k + 1).map_or(axis.end_ms, |n| n.at_ms);
                @let (a, b) = (axis.x(from as f64), axis.x(to as f64));
                line x1=(px(a)) x2=(px(a)) y1="4" y2=(px(bottom)) stroke="#445" stroke-width="1" {}
                text x=(px(a + 2.0)) y="14" font-size="10" fill="#445" { "gen " (gn.generation) }
                @for (member, parts) in &gn.assignment {
                    @let m = members.iter().position(|x| x == member).unwrap_or(0);
                    @for p in parts {
                        @let y = top + row(p) as f64 * (lane + 3.0);
                        rect x=(px(a)) y=(px(y)) width=(px((b - a).max(0.5))) height=(px(lane)) fill=(hex(PALETTE[m % PALETTE.len()])) fill-opacity="0.85" {
                            title { (p) ": " (member) " in generation " (gn.generation) " (" (gn.protocol) "), from " (secs(from)) " to " (secs(to)) }
                        }
                        @if b - a > 70.0 {
                            text x=(px(a + 4.0)) y=(px(y + 13.0)) font-size="11" fill="#fff" { (member) }
                        }
                    }
                }
            }
            (axis.marks(4.0, bottom))
        }
    }
}

fn groups(r: &Report, axis: &Axis) -> Markup {
    html! {
        @if !r.consumer_groups.is_empty() {
            h2 #groups { "Consumer groups" }
            @for (i, g) in r.consumer_groups.iter().enumerate() {
                h3 #(format!("group-{}", g.group)) { (g.group) }
                p.muted {
                    "commit " (g.commit) " · processed " (g.consumed) " (" (g.unique) " unique, " (g.duplicates) " duplicates, "
                    (g.lost) " never processed) · " (g.rebalances) " rebalances · delivery: " (g.delivery)
                }
                @if let Some(s) = r.series.groups.get(i) {
                    @let lag = [Line {
                        name: "lag".into(),
                        color: color(4),
                        points: r.series.at_ms.iter().zip(&s.lag).map(|(&a, &l)| (a as f64 / 1000.0, Some(l as f64))).collect(),
                    }];
                    figure { (chart(axis, &lag, "records", PLAIN)) figcaption { "Lag: the high watermark minus the committed offset, summed over the group's partitions" } }
                }
                @if !g.generations.is_empty() {
                    figure { (ownership(axis, g)) figcaption { "Which member owned which partition, generation by generation" } }
                }
                @if !g.duplicates_by_reason.is_empty() {
                    table {
                        tr { th { "duplicates" } th { "why the member read them again" } th { "offsets" } }
                        @for (why, n) in &g.duplicates_by_reason {
                            tr {
                                td.num { (n) }
                                td { (why) }
                                td {
                                    @if let Some(parts) = g.duplicate_offsets.get(why) {
                                        @for (p, ranges) in parts {
                                            (p) " " (ranges.iter().map(|&(a, b)| crate::check::span_text(a, b)).collect::<Vec<_>>().join(", ")) " "
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One moment's logs: per partition, each replica's log as a bar (committed part dark,
/// the rest light) on the topic's one scale, and the groups' committed offsets (▲) and
/// positions (▶) under it.
fn log_bars(r: &Report, partitions: &[PartitionReport], marks: &[super::GroupMarks], scales: &[(&str, u64)]) -> Markup {
    let bar = 560.0;
    let x = |offset: u64, scale: u64| LABEL + offset as f64 / scale.max(1) as f64 * bar;
    html! {
        @for &(topic, scale) in scales {
            @for p in partitions.iter().filter(|p| p.topic == topic) {
                @let name = format!("{}-{}", p.topic, p.partition);
                @let readers: Vec<&super::GroupMarks> = marks.iter().filter(|g| g.lag.contains_key(&name)).collect();
                @let height = 18.0 + p.replicas.len() as f64 * 16.0 + readers.len() as f64 * 16.0 + 4.0;
                svg.logs width=(WIDTH) height=(px(height)) viewBox=(format!("0 0 {WIDTH} {}", px(height))) role="img" {
                    title { (name) "'s logs" }
                    text x="4" y="13" font-size="12" font-weight="600" fill="#1d232b" {
                        (name) " · leader " (p.leader.map_or("none".to_string(), |l| format!("broker-{l}")))
                        " · epoch " (p.leader_epoch) " · isr [" (join(&p.isr)) "]"
                    }
                    @for (i, b) in p.replicas.iter().enumerate() {
                        @let y = 18.0 + i as f64 * 16.0;
                        @let leo = p.log_end_offsets.get(&b.to_string()).copied().unwrap_or(0);
                        @let hw = p.high_watermarks.get(&b.to_string()).copied().unwrap_or(0).min(leo);
                        text x="4" y=(px(y + 11.0)) font-size="11" fill="#1d232b" { "broker-" (b) }
                        rect x=(px(LABEL)) y=(px(y)) width=(px(bar)) height="12" fill="#f4f5f8" stroke="#ccd" {}
                        rect x=(px(LABEL)) y=(px(y)) width=(px(x(hw, scale) - LABEL)) height="12" fill="#3569c4" {
                            title { "broker-" (b) ": offsets below the high watermark " (hw) }
                        }
                        rect x=(px(x(hw, scale))) y=(px(y)) width=(px(x(leo, scale) - x(hw, scale))) height="12" fill="#a9c4ee" {
                            title { "broker-" (b) ": written above the high watermark, up to the log end offset " (leo) }
                        }
                        text x=(px(LABEL + bar + 14.0)) y=(px(y + 10.0)) font-size="11" fill="#445" {
                            "leo " (leo) " · hw " (hw)
                            @if p.leader == Some(*b) { " (leader)" } @else if p.isr.contains(b) { " (in sync)" } @else { " (out of sync)" }
                        }
                    }
                    @for (k, g) in readers.iter().enumerate() {
                        @let y = 18.0 + p.replicas.len() as f64 * 16.0 + k as f64 * 16.0;
                        @let committed = g.committed.get(&name).copied();
                        text x="4" y=(px(y + 11.0)) font-size="11" fill="#5a2d91" { (g.group) }
                        @if let Some((member, at)) = g.positions.get(&name) {
                            path d=(format!("M{} {} l8 5 l-8 5 z", px(x(*at, scale) - 8.0), px(y + 1.0))) fill="#b07fe0" {
                                title { (member) "'s position: " (at) }
                            }
                        }
                        path d=(format!("M{} {} l5 10 h-10 z", px(x(committed.unwrap_or(0), scale)), px(y + 1.0))) fill="#5a2d91" {
                            title { (g.group) ": committed " (committed.map_or("nothing".to_string(), |c| c.to_string())) }
                        }
                        text x=(px(LABEL + bar + 14.0)) y=(px(y + 10.0)) font-size="11" fill="#5a2d91" {
                            (committed.map_or("nothing committed".to_string(), |c| format!("committed {c}")))
                            @if let Some((member, at)) = g.positions.get(&name) { " · " (member) " at " (at) }
                            " · lag " (g.lag.get(&name).copied().unwrap_or(0))
                        }
                    }
                }
            }
        }
        @if r.settings.topics.is_empty() { p { "No topics." } }
    }
}

fn end_marks(r: &Report) -> Vec<super::GroupMarks> {
    r.consumer_groups
        .iter()
        .map(|g| super::GroupMarks {
            group: g.group.clone(),
            committed: g.committed.clone(),
            lag: g.lag.clone(),
            positions: g.positions.clone(),
        })
        .collect()
}

fn logs(r: &Report) -> Markup {
    let scales = super::text::scales(r);
    let end = end_marks(r);
    html! {
        h2 #logs { "Logs" }
        p.muted {
            "Each replica's log on one scale per topic: dark below the high watermark, light above it; "
            "under it, ▲ a group's committed offset and ▶ the position of the member that reads it."
        }
        @for picture in &r.pictures {
            h3 { "At " (secs(picture.at_ms)) }
            (log_bars(r, &picture.partitions, &picture.groups, &scales))
        }
        h3 { "At the end" }
        (log_bars(r, &r.partitions, &end, &scales))
    }
}

/// Who leads and who follows which partition: a broker × partition grid.
fn grid(brokers: u32, partitions: &[PartitionReport], up: &dyn Fn(u32) -> bool) -> Markup {
    html! {
        table.grid {
            tr {
                th { "broker" }
                @for p in partitions { th { (p.topic) "-" (p.partition) } }
            }
            @for b in 1..=brokers {
                tr {
                    th { "broker-" (b) @if !up(b) { " (down)" } }
                    @for p in partitions {
                        @if p.leader == Some(b) {
                            td.L title=(format!("leader, epoch {}", p.leader_epoch)) { "L" }
                        } @else if p.isr.contains(&b) {
                            td.F title="follower in the ISR" { "F" }
                        } @else if p.replicas.contains(&b) {
                            td.O title="follower out of the ISR" { "f" }
                        } @else {
                            td {}
                        }
                    }
                }
            }
        }
    }
}

/// Who leads and follows what, per partition: what a grid shows.
type Layout<'a> = Vec<(Option<u32>, &'a [u32])>;

fn layout(partitions: &[PartitionReport]) -> Layout<'_> {
    partitions.iter().map(|p| (p.leader, p.isr.as_slice())).collect()
}

/// The grid at each picture moment where leadership or an ISR differs from the moment
/// before (the first always), then at the end.
fn picture_grids(r: &Report) -> Markup {
    let mut last: Option<(u64, Layout)> = None;
    html! {
        @for picture in &r.pictures {
            @let now = layout(&picture.partitions);
            @if let Some((at, _)) = last.as_ref().filter(|(_, before)| *before == now) {
                p.muted { "At " (secs(picture.at_ms)) ": as at " (secs(*at)) "." }
            } @else {
                h3 { "At " (secs(picture.at_ms)) }
                (grid(r.settings.brokers, &picture.partitions, &|_| true))
                @let _ = last.replace((picture.at_ms, now));
            }
        }
    }
}

fn brokers(r: &Report) -> Markup {
    let up = |b: u32| r.brokers.iter().find(|x| x.broker == b).is_none_or(|x| x.up);
    html! {
        h2 #brokers { "Brokers and partitions" }
        p.muted { "L: leader · F: follower in the ISR · f: follower out of the ISR" }
        (picture_grids(r))
        h3 { "At the end" }
        (grid(r.settings.brokers, &r.partitions, &up))
        table {
            tr { th { "broker" } th { "leads" } th { "records led" } th { "follows" } th { "coordinates" } }
            @for b in &r.brokers {
                tr {
                    td { "broker-" (b.broker) @if !b.up { " (down)" } }
                    td { (b.leads.join(", ")) }
                    td.num { (b.records) }
                    td { (b.follows.join(", ")) }
                    td { (b.coordinates.join(", ")) }
                }
            }
        }
    }
}

/// The page of `kafkasim compare`: the table, then charts with a line per run.
pub fn render_comparison(columns: &[super::compare::Column]) -> String {
    let rows = super::compare::table(columns);
    let end_ms = columns
        .iter()
        .filter_map(|c| c.report.series.at_ms.last().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let axis = Axis {
        end_ms,
        faults: Vec::new(),
        violations: Vec::new(),
    };
    // Per run, a line of `value` per second over its points.
    let lines = |value: &dyn Fn(&Report, usize) -> u64| -> Vec<Line> {
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let s = &c.report.series;
                let counts: Vec<u64> = (0..s.at_ms.len()).map(|k| value(&c.report, k)).collect();
                Line {
                    name: c.name.clone(),
                    color: color(i),
                    points: per_second(&s.at_ms, &counts),
                }
            })
            .collect()
    };
    let acked = lines(&|r, k| r.series.producers.iter().map(|p| p.acked[k]).sum());
    let errors = lines(&|r, k| {
        r.series
            .producers
            .iter()
            .flat_map(|p| p.errors.values())
            .map(|v| v[k])
            .sum()
    });
    // Per run, a line of a level (not a count) at each point.
    let levels = |value: &dyn Fn(&super::series::Series, usize) -> Option<f64>| -> Vec<Line> {
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let s = &c.report.series;
                Line {
                    name: c.name.clone(),
                    color: color(i),
                    points: (0..s.at_ms.len())
                        .map(|k| (s.at_ms[k] as f64 / 1000.0, value(s, k)))
                        .collect(),
                }
            })
            .collect()
    };
    let lag = levels(&|s, k| Some(s.groups.iter().map(|g| g.lag[k]).sum::<u64>() as f64));
    // The slowest producer's.
    let latency = levels(&|s, k| s.producers.iter().filter_map(|p| p.latency_p99_ms[k]).reduce(f64::max));
    let legend = Look {
        log: false,
        legend: true,
    };
    let body = html! {
                h1 #comparison { "Comparison" }
                ul {
                    @for c in columns { li { b { (c.name) } ": " code { (c.report.reproduce) } } }
                }
                table {
                    tr { th {} @for c in columns { th { (c.name) } } }
                    @for (k, r) in rows.iter().enumerate() {
                        @if k == 0 || rows[k - 1].section != r.section {
                            tr { th colspan=(columns.len() + 1) { (r.section) } }
                        }
                        tr {
                            td { (r.label) }
                            @for cell in &r.cells { td.num { (cell) } }
                        }
                    }
                }
                h2 #charts { "Over time" }
                figure { (chart(&axis, &acked, "records/s", legend)) figcaption { "Records acknowledged per second, all producers" } }
                @if latency.iter().any(|l| l.points.iter().any(|p| p.1.is_some())) {
                    figure { (chart(&axis, &latency, "ms (log scale)", Look { log: true, legend: true })) figcaption { "99th percentile latency of the records acknowledged in each interval, the slowest producer's" } }
                }
                @if errors.iter().any(|l| l.points.iter().any(|p| p.1.unwrap_or(0.0) > 0.0)) {
                    figure { (chart(&axis, &errors, "errors/s", legend)) figcaption { "Produce error responses per second, all producers" } }
                }
                @if columns.iter().any(|c| !c.report.series.groups.is_empty()) {
                    figure { (chart(&axis, &lag, "records", legend)) figcaption { "Lag of all groups, summed" } }
                }
    };
    page("kafkasim compare", body)
}
