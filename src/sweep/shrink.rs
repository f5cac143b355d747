//! Shrinking: from a failing seed to a small scenario that fails the same way. The run is
//! frozen into an explicit scenario (the nemesis replaced by the faults it drew, the same
//! seed), then made smaller one edit at a time, keeping an edit only while the run still
//! fails exactly as before: faults dropped, shortened and moved earlier, the workload and
//! drain cut, rates lowered, producers, members and partitions removed. Every attempt is
//! a whole run.

use super::{Plan, RunRecord, run_guarded};
use crate::scenario::doc::Yaml;
use crate::scenario::{self, freeze};
use crate::sim::Duration;

/// At most this many runs go into one shrink.
const MAX_RUNS: u64 = 400;

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
    let mut fails_same = |tree: &Yaml| -> bool {
        let Ok(s) = scenario::parse(&plan.file, &tree.to_text()) else {
            return false;
        };
        runs.set(runs.get() + 1);
        step(runs.get());
        let ended = run_guarded(&s, seed, max_events, &plan.file);
        let r = RunRecord::of_ended(plan, record.variant_index, seed, ended, max_events);
        r.failure().as_deref() == Some(target.as_str())
    };
    if !fails_same(&original) {
        return Err(format!(
            "the frozen run of seed {seed} does not fail as the sweep's did ({target}): please report this as a kafkasim bug"
        ));
    }
    let mut current = original.clone();
    loop {
        let mut changed = false;
        for candidate in edits(&current) {
            if runs.get() >= MAX_RUNS {
                break;
            }
            let Some(candidate) = candidate(&current) else { continue };
            if candidate != current && fails_same(&candidate) {
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
        "Shrunk by `kafkasim sweep --shrink` from seed {seed} of {}{}: {target}. {} Replays with `kafkasim run` and exits 0: its `expect` names what fails.",
        plan.file,
        record.variant.flags(),
        if removed.is_empty() {
            "Nothing could be removed.".to_string()
        } else {
            format!("Removed or cut: {}.", removed.join("; "))
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
    duration_of(tree, "duration", Duration::ZERO) + duration_of(tree, "drain", Duration::from_millis(30_000))
}

/// Half a duration, in whole milliseconds.
fn half(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() / 2)
}

/// An edit of the current scenario: `None` when it does not apply.
type Edit = Box<dyn Fn(&Yaml) -> Option<Yaml>>;

/// The edits of one pass over a scenario, biggest first.
fn edits(tree: &Yaml) -> Vec<Edit> {
    let mut edits: Vec<Edit> = Vec::new();
    let n = fault_list(tree).len();
    // Drop faults in chunks, halving the chunk (delta debugging). Indices are taken
    // from the end so that a dropped chunk does not shift the ones still to try.
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
    for key in ["duration", "drain"] {
        edits.push(Box::new(move |t: &Yaml| {
            let d = duration_of(t, key, Duration::from_millis(30_000));
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
    for (key, default) in [("duration", Duration::ZERO), ("drain", Duration::from_millis(30_000))] {
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
