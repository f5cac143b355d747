//! Shrinking: from a failing seed to a small scenario that fails the same way. The run is
//! frozen into an explicit scenario (the nemesis replaced by the faults it drew, the same
//! seed), then made smaller one edit at a time, keeping an edit only while the run still
//! fails exactly as before: faults dropped, shortened and moved earlier, the workload and
//! drain cut, rates lowered, producers, members and partitions removed. Every attempt is
//! a whole run.

use super::{Ended, Outcome, Plan, RunRecord, run_guarded};
use crate::scenario::doc::Yaml;
use crate::scenario::{self, freeze};
use crate::sim::Duration;

/// At most this many runs go into one shrink.
const MAX_RUNS: u64 = 400;

/// A scenario's `drain` when it does not say.
const DEFAULT_DRAIN: Duration = Duration::from_millis(30_000);

/// A minimal reproduction.
pub struct Shrunk {
    /// `NAME.seed-S.min.yaml`.
    pub file_name: String,
    pub text: String,
    /// Faults and simulated seconds (duration + drain), before and after.
    pub faults: (usize, usize),
    pub seconds: (u64, u64),
    /// Runs it took, the first (the frozen run) included.
    pub runs: u64,
}

/// Shrinks the run `record` of `plan`. `step` hears of every run. Fails when the run
/// does not fail in a way a scenario can expect (an expected violation that did not
/// happen), or when its frozen form does not fail the same way (a bug).
pub fn shrink(plan: &Plan, record: &RunRecord, max_events: u64, step: &mut dyn FnMut(u64)) -> Result<Shrunk, String> {
    let target = record.failure().ok_or("this run passed: nothing to shrink")?;
    if target.contains("did not fail as expected") {
        return Err(format!(
            "not shrunk: `{target}` is the absence of a violation, which every smaller scenario has too"
        ));
    }
    let combination = &plan.combinations[record.variant_index];
    let scenario = combination.scenario.as_ref().map_err(|e| e.to_string())?;
    let seed = record.seed;
    let original = freeze::freeze(&plan.text, &combination.settings, scenario, seed)?;
    let runs = std::cell::Cell::new(0u64);
    // How a scenario's run fails: the checks, and how each failed (its violations'
    // kinds), so that a smaller scenario must fail the same way, not just the same check.
    let mut failure = |tree: &Yaml| -> Option<String> {
        let s = scenario::parse_with_limit(&plan.file, &tree.to_text(), &[], plan.limit).ok()?;
        runs.set(runs.get() + 1);
        step(runs.get());
        let ended = run_guarded(&s, seed, max_events, &plan.file);
        let kinds: Vec<String> = match &ended {
            Ended::Report(r) => r
                .checks
                .iter()
                .filter(|c| c.count > 0 && c.passed == c.expected_to_fail)
                .map(|c| format!("{}: {}", c.name, c.kinds.join(", ")))
                .collect(),
            _ => Vec::new(),
        };
        let r = RunRecord::of_ended(plan, record.variant_index, seed, ended, max_events);
        Some(format!("{} [{}]", r.failure()?, kinds.join("; ")))
    };
    let signature = failure(&original)
        .filter(|f| f.starts_with(&format!("{target} [")))
        .ok_or_else(|| {
            format!(
                "the frozen run of seed {seed} does not fail as the sweep's did ({target}): please report this as a kafkasim bug"
            )
        })?;
    // A check judged at the end of the run (liveness, at-least-once) fails trivially
    // when the drain is too short to recover in: the drain is kept.
    let keep_drain = target.contains("liveness") || target.contains("at-least-once");
    let mut current = original.clone();
    loop {
        let mut changed = false;
        for candidate in edits(&current, keep_drain) {
            if runs.get() >= MAX_RUNS {
                break;
            }
            let Some(candidate) = candidate(&current) else { continue };
            if candidate != current && failure(&candidate).as_ref() == Some(&signature) {
                current = candidate;
                changed = true;
            }
        }
        if !changed || runs.get() >= MAX_RUNS {
            break;
        }
    }
    let faults = (fault_list(&original).len(), fault_list(&current).len());
    let seconds = (
        simulated(&original).as_millis() / 1000,
        simulated(&current).as_millis() / 1000,
    );
    let name = current
        .get("name")
        .and_then(Yaml::as_str)
        .unwrap_or("scenario")
        .to_string();
    let removed = changes(&original, &current);
    let description = format!(
        "Shrunk by `kafkasim sweep --shrink` from seed {seed} of {}{}: {target}. {} {}",
        plan.file,
        record.variant.flags(),
        if removed.is_empty() {
            "Nothing could be removed.".to_string()
        } else {
            format!("Removed or cut: {}.", removed.join("; "))
        },
        match record.outcome {
            Some(Outcome::Budget) => format!("`kafkasim run --max-events {max_events}` on it runs out of events too."),
            Some(_) => "`kafkasim run` on it panics the same way: a kafkasim bug to report.".to_string(),
            None => "`kafkasim run` on it exits 0: its `expect` names what fails.".to_string(),
        }
    );
    current.set("name", Yaml::Str(format!("{name}-seed-{seed}-min")));
    current.set_after("description", "name", Yaml::Str(description));
    expect_failure(&mut current, record);
    Ok(Shrunk {
        file_name: format!("{name}.seed-{seed}.min.yaml"),
        text: current.to_text(),
        faults,
        seconds,
        runs: runs.get(),
    })
}

/// Makes the scenario's `expect` name the checks that failed unexpectedly, so the
/// reproduction exits 0.
fn expect_failure(tree: &mut Yaml, record: &RunRecord) {
    if record.outcome.is_some() {
        return;
    }
    let mut expected: Vec<String> = tree
        .get("expect")
        .and_then(|e| e.get("violations"))
        .and_then(|v| match v {
            Yaml::Seq(items) => Some(items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()),
            _ => None,
        })
        .unwrap_or_default();
    for check in &record.unexpected {
        if record.violations.contains_key(check) && !expected.contains(check) {
            expected.push(check.clone());
        }
    }
    let list = Yaml::Seq(expected.into_iter().map(Yaml::Str).collect());
    tree.set("expect", Yaml::Map(vec![("violations".into(), list)]));
}

fn fault_list(tree: &Yaml) -> Vec<Yaml> {
    match tree.get("faults") {
        Some(Yaml::Seq(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn with_faults(tree: &Yaml, faults: Vec<Yaml>) -> Yaml {
    let mut t = tree.clone();
    if faults.is_empty() {
        t.remove("faults");
    } else {
        t.set("faults", Yaml::Seq(faults));
    }
    t
}

fn duration_of(tree: &Yaml, key: &str, default: Duration) -> Duration {
    tree.get(key).and_then(Yaml::duration).unwrap_or(default)
}

/// Duration plus drain.
fn simulated(tree: &Yaml) -> Duration {
    duration_of(tree, "duration", Duration::ZERO) + duration_of(tree, "drain", DEFAULT_DRAIN)
}

/// Half a duration, in whole milliseconds.
fn half(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() / 2)
}

/// An edit of the current scenario: `None` when it does not apply.
type Edit = Box<dyn Fn(&Yaml) -> Option<Yaml>>;

/// The edits of one pass over a scenario, biggest first.
fn edits(tree: &Yaml, keep_drain: bool) -> Vec<Edit> {
    let mut edits: Vec<Edit> = Vec::new();
    let n = fault_list(tree).len();
    // Drop faults in chunks, halving the chunk (delta debugging). Within one chunk size,
    // chunks are tried from the end, so a dropped chunk does not shift the ones still
    // to try; after a drop, the smaller chunks' indices are off (some no longer apply),
    // which the next pass, computed afresh, makes up for.
    let mut chunk = n.div_ceil(2);
    while chunk > 0 {
        let mut start = n;
        while start > 0 {
            let from = start.saturating_sub(chunk);
            let to = start;
            edits.push(Box::new(move |t: &Yaml| {
                let mut faults = fault_list(t);
                if to > faults.len() {
                    return None;
                }
                faults.drain(from..to);
                Some(with_faults(t, faults))
            }));
            start = from;
        }
        chunk = if chunk == 1 { 0 } else { chunk.div_ceil(2) };
    }
    for i in 0..n {
        // Shorten what a fault lasts.
        edits.push(Box::new(move |t: &Yaml| {
            let mut faults = fault_list(t);
            let f = faults.get_mut(i)?;
            let lasts = f.get("for")?.duration()?;
            if lasts <= Duration::from_millis(1) {
                return None;
            }
            f.set("for", Yaml::from_duration(half(lasts)));
            Some(with_faults(t, faults))
        }));
        // Move a fault earlier: halfway to the one before it (order kept).
        edits.push(Box::new(move |t: &Yaml| {
            let mut faults = fault_list(t);
            let before = match i {
                0 => Duration::ZERO,
                _ => faults.get(i - 1)?.get("at")?.duration()?,
            };
            let f = faults.get_mut(i)?;
            let at = f.get("at")?.duration()?;
            let moved = before + half(at - before);
            if moved >= at {
                return None;
            }
            f.set("at", Yaml::from_duration(moved));
            Some(with_faults(t, faults))
        }));
    }
    // Cut the workload: to just after the last fault heals, or by half; then the drain.
    edits.push(Box::new(|t: &Yaml| {
        let end = fault_list(t)
            .iter()
            .filter_map(|f| {
                let at = f.get("at")?.duration()?;
                Some(at + f.get("for").and_then(Yaml::duration).unwrap_or_default())
            })
            .max()?;
        let d = Duration::from_millis((end.as_millis() / 1000 + 1) * 1000);
        let mut t = t.clone();
        (d < duration_of(&t, "duration", Duration::ZERO)).then(|| {
            t.set("duration", Yaml::from_duration(d));
            t
        })
    }));
    let keys: &[&'static str] = if keep_drain {
        &["duration"]
    } else {
        &["duration", "drain"]
    };
    for &key in keys {
        edits.push(Box::new(move |t: &Yaml| {
            let d = duration_of(t, key, DEFAULT_DRAIN);
            if d < Duration::from_millis(2) {
                return None;
            }
            let mut t = t.clone();
            t.set(key, Yaml::from_duration(half(d)));
            Some(t)
        }));
    }
    // Fewer and slower clients, fewer partitions.
    let count = |list: &str| match tree.get(list) {
        Some(Yaml::Seq(items)) => items.len(),
        _ => 0,
    };
    for i in 0..count("producers") {
        edits.push(remove_item("producers", i));
        edits.push(edit_item("producers", i, |p| {
            let (n, unit) = p.get("rate")?.as_str()?.split_once('/')?;
            let (n, unit): (u64, String) = (n.trim().parse().ok()?, unit.trim().to_string());
            (n > 1).then(|| p.set("rate", Yaml::Str(format!("{}/{unit}", n / 2))))
        }));
        edits.push(edit_item("producers", i, |p| match p.get("messages")? {
            Yaml::Int(m) if *m > 1 => {
                let m = *m;
                p.set("messages", Yaml::Int(m / 2));
                Some(())
            }
            _ => None,
        }));
        edits.push(edit_item("producers", i, |p| match p.get("instances")? {
            Yaml::Int(m) if *m > 1 => {
                p.remove("instances");
                Some(())
            }
            _ => None,
        }));
    }
    for i in 0..count("consumers") {
        edits.push(remove_item("consumers", i));
        edits.push(edit_item("consumers", i, |g| match g.get("members")? {
            Yaml::Int(m) if *m > 1 => {
                let m = *m;
                g.set("members", Yaml::Int(m / 2));
                Some(())
            }
            _ => None,
        }));
    }
    for i in 0..count("topics") {
        edits.push(edit_item("topics", i, |t| match t.get("partitions")? {
            Yaml::Int(p) if *p > 1 => {
                let p = *p;
                t.set("partitions", Yaml::Int(p - 1));
                if let Some(Yaml::Seq(replicas)) = t.get_mut("replicas") {
                    replicas.pop();
                }
                Some(())
            }
            _ => None,
        }));
    }
    edits
}

/// An edit that removes item `i` of the list `list` (never the last one).
fn remove_item(list: &'static str, i: usize) -> Edit {
    Box::new(move |t: &Yaml| {
        let mut t = t.clone();
        let items = t.get_mut(list)?.as_seq_mut()?;
        if i >= items.len() || (items.len() == 1 && list != "consumers") {
            return None;
        }
        items.remove(i);
        if items.is_empty() {
            t.remove(list);
        }
        Some(t)
    })
}

/// An edit of item `i` of the list `list`.
fn edit_item(list: &'static str, i: usize, f: fn(&mut Yaml) -> Option<()>) -> Edit {
    Box::new(move |t: &Yaml| {
        let mut t = t.clone();
        f(t.get_mut(list)?.as_seq_mut()?.get_mut(i)?)?;
        Some(t)
    })
}

/// What shrinking removed, in words.
fn changes(before: &Yaml, after: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    let (fb, fa) = (fault_list(before).len(), fault_list(after).len());
    if fa < fb {
        out.push(format!("{} of {fb} faults", fb - fa));
    }
    for (key, default) in [("duration", Duration::ZERO), ("drain", DEFAULT_DRAIN)] {
        let (b, a) = (duration_of(before, key, default), duration_of(after, key, default));
        if a < b {
            out.push(format!("{key} {b} -> {a}"));
        }
    }
    let named = |tree: &Yaml, list: &str, key: &str| -> Vec<(String, Yaml)> {
        match tree.get(list) {
            Some(Yaml::Seq(items)) => items
                .iter()
                .map(|i| (i.get(key).and_then(Yaml::as_str).unwrap_or("").to_string(), i.clone()))
                .collect(),
            _ => Vec::new(),
        }
    };
    let show = |y: Option<&Yaml>| match y {
        Some(Yaml::Str(s)) => s.clone(),
        Some(Yaml::Int(i)) => i.to_string(),
        _ => "1".to_string(),
    };
    for (list, key, fields) in [
        ("producers", "name", &["rate", "messages", "instances"][..]),
        ("consumers", "group", &["members"][..]),
        ("topics", "name", &["partitions"][..]),
    ] {
        let now = named(after, list, key);
        for (name, item) in named(before, list, key) {
            match now.iter().find(|(n, _)| *n == name) {
                None => out.push(format!("{} `{name}`", &list[..list.len() - 1])),
                Some((_, shrunk)) => {
                    for field in fields {
                        if item.get(field) != shrunk.get(field) && item.get(field).is_some() {
                            out.push(format!(
                                "`{name}` {field} {} -> {}",
                                show(item.get(field)),
                                show(shrunk.get(field))
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}
