//! Freezing a run: the scenario file as written, with one variant's settings written
//! into it, the nemesis replaced by the faults it drew for the seed, and the seed fixed.
//! The frozen file replays the same run, and a person can read and edit it.

use super::doc::Yaml;
use super::schema::Scalar;
use super::vary::Setting;
use super::{Fault, FaultKind, Scenario, VaryScope, nemesis};

/// The frozen text of the run of `scenario` (parsed from `text` with `settings`) with
/// `seed`.
pub fn freeze(text: &str, settings: &[Setting], scenario: &Scenario, seed: u64) -> Result<Yaml, String> {
    let mut tree = Yaml::parse(text)?;
    apply(&mut tree, settings);
    tree.remove("vary");
    tree.remove("nemesis");
    // A description written `>` ends with a newline that would come back as a blank line.
    if let Some(Yaml::Str(d)) = tree.get_mut("description") {
        d.truncate(d.trim_end().len());
    }
    let after = if tree.get("description").is_some() {
        "description"
    } else {
        "name"
    };
    tree.set_after("seed", after, Yaml::from_u64(seed));
    let faults = nemesis::schedule(scenario, seed);
    set_faults(&mut tree, &faults);
    Ok(tree)
}

/// Replaces the tree's `faults` with `faults` (in place, or before `expect` and
/// `pictures` when the file has none); no key at all when there are none.
pub fn set_faults(tree: &mut Yaml, faults: &[Fault]) {
    if faults.is_empty() {
        tree.remove("faults");
        return;
    }
    let list = Yaml::Seq(faults.iter().map(fault).collect());
    if tree.get("faults").is_some() {
        return tree.set("faults", list);
    }
    let after = ["consumers", "producers", "topics", "cluster", "drain", "duration"]
        .into_iter()
        .find(|k| tree.get(k).is_some())
        .unwrap_or("name");
    tree.set_after("faults", after, list);
}

/// A fault as a scenario writes it: `{at: 10s, crash: broker-2, for: 5s}`.
pub fn fault(f: &Fault) -> Yaml {
    let s = |t: &String| Yaml::Str(t.clone());
    let names = |ns: &[String]| Yaml::Seq(ns.iter().map(s).collect());
    let mut m = vec![("at".to_string(), Yaml::from_duration(f.at))];
    let (kind, target) = match &f.kind {
        FaultKind::Crash(n) => ("crash", s(n)),
        FaultKind::Stop(n) => ("stop", s(n)),
        FaultKind::PowerLoss(n) => ("power-loss", s(n)),
        FaultKind::Restart(n) => ("restart", s(n)),
        FaultKind::Pause(n) => ("pause", s(n)),
        FaultKind::Isolate(n) => ("isolate", s(n)),
        FaultKind::Partition(groups) => ("partition", Yaml::Seq(groups.iter().map(|g| names(g)).collect())),
        FaultKind::Cut { from, to } => ("cut", Yaml::Map(vec![("from".into(), s(from)), ("to".into(), s(to))])),
        FaultKind::Slow { nodes, latency } => (
            "slow",
            Yaml::Map(vec![
                ("nodes".into(), names(nodes)),
                ("latency".into(), Yaml::from_duration(*latency)),
            ]),
        ),
        FaultKind::HealAll => ("heal", Yaml::Str("all".into())),
    };
    m.push((kind.to_string(), target));
    if let Some(l) = f.lasts {
        m.push(("for".to_string(), Yaml::from_duration(l)));
    }
    Yaml::Map(m)
}

/// Writes `settings` into the tree as `vary::apply` does into a parsed file.
fn apply(tree: &mut Yaml, settings: &[Setting]) {
    for setting in settings {
        let value = match &setting.value {
            Scalar::Int(i) => Yaml::Int(*i),
            Scalar::Bool(b) => Yaml::Bool(*b),
            Scalar::Text(t) => Yaml::Str(t.clone()),
        };
        let set_config = |item: &mut Yaml| {
            if item.get("config").is_none_or(|c| !matches!(c, Yaml::Map(_))) {
                item.set("config", Yaml::Map(Vec::new()));
            }
            item.get_mut("config")
                .expect("just set")
                .set(&setting.key, value.clone());
        };
        let each = |tree: &mut Yaml, list: &str, f: &dyn Fn(&mut Yaml)| {
            if let Some(items) = tree.get_mut(list).and_then(Yaml::as_seq_mut) {
                items.iter_mut().for_each(f);
            }
        };
        match setting.scope {
            VaryScope::Producer => each(tree, "producers", &set_config),
            VaryScope::Topic => each(tree, "topics", &set_config),
            VaryScope::Group => each(tree, "consumers", &set_config),
            VaryScope::Broker => {
                if let Some(c) = tree.get_mut("cluster") {
                    set_config(c);
                }
            }
            VaryScope::Cluster => {
                let Some(c) = tree.get_mut("cluster") else { continue };
                match setting.key.split_once('.') {
                    Some((outer, inner)) => {
                        if c.get(outer).is_none_or(|n| !matches!(n, Yaml::Map(_))) {
                            c.set(outer, Yaml::Map(Vec::new()));
                        }
                        c.get_mut(outer).expect("just set").set(inner, value.clone());
                    }
                    None => c.set(&setting.key, value.clone()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: t\nduration: 20s\ncluster: { brokers: 3 }\ntopics: [{ name: orders, replication.factor: 3 }]\nproducers: [{ name: app, topic: orders, rate: 10/s }]\nfaults:\n  - { at: 15s, crash: broker-1, for: 2s }\nnemesis: { faults: [crash, partition], every: 3s..6s, lasts: 1s..2s }\nvary:\n  - { producer: acks, values: [1, all] }\nexpect: { violations: [] }\n";

    #[test]
    fn a_frozen_scenario_names_every_fault_and_no_nemesis() {
        let settings = vec![Setting::parse("producer:acks=1").unwrap()];
        let s = crate::scenario::parse_with("t.yaml", TEXT, &settings).unwrap();
        let tree = freeze(TEXT, &settings, &s, 9).unwrap();
        let text = tree.to_text();
        assert!(!text.contains("nemesis") && !text.contains("vary"), "{text}");
        assert!(text.contains("seed: 9"), "{text}");
        assert!(text.contains("acks: 1"), "{text}");
        let frozen = crate::scenario::parse("frozen.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let drawn = nemesis::schedule(&s, 9);
        assert!(drawn.len() > 1, "{text}");
        assert_eq!(frozen.faults.len(), drawn.len());
        assert!(frozen.nemesis.is_none());
        // Faults stay in schedule order: the explicit crash at 15s among the drawn ones.
        let at: Vec<u64> = frozen.faults.iter().map(|f| f.at.as_millis()).collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
        assert!(at.contains(&15_000));
    }
}
