//! The research loop: the nemesis, faults that name roles, sweeps over seeds and
//! combinations, shards, freezing and shrinking.

use crate::kafkasim;
use kafkasim::report::Report;
use kafkasim::scenario::vary::Setting;
use kafkasim::scenario::{self, FaultKind, Scenario};
use kafkasim::sweep::{self, Options, Plan, RunRecord};
use std::process::Output;

fn plan(path: &str, set: &[&str]) -> Plan {
    let bytes = std::fs::read(crate::root().join(path)).expect("readable");
    let set = set.iter().map(|s| Setting::parse(s).expect("a setting")).collect();
    Plan::new(path, &bytes, set).unwrap_or_else(|e| panic!("{e}"))
}

fn options(from: u64, seeds: u64) -> Options {
    Options {
        from,
        seeds,
        jobs: Some(1),
        shard: None,
        max_events: sweep::DEFAULT_MAX_EVENTS,
    }
}

fn run_seed(s: &Scenario, seed: u64) -> Report {
    kafkasim::run::run(
        s,
        kafkasim::run::RunOptions {
            seed: Some(seed),
            ..Default::default()
        },
    )
    .expect("no trace")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kafkasim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn one_job_two_jobs_and_three_merged_shards_write_the_same_bytes() {
    let dir = temp_dir("shards");
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let scenario = "scenarios/nemesis-safe-settings.yaml";
    let one = kafkasim(&[
        "sweep",
        scenario,
        "--seeds",
        "9",
        "--jobs",
        "1",
        "--out",
        &out("one.jsonl"),
    ]);
    let two = kafkasim(&[
        "sweep",
        scenario,
        "--seeds",
        "9",
        "--jobs",
        "2",
        "--out",
        &out("two.jsonl"),
    ]);
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let o = kafkasim(&[
            "sweep",
            scenario,
            "--seeds",
            "9",
            "--shard",
            &shard,
            "--out",
            &out(&format!("s{k}.jsonl")),
        ]);
        assert!(
            o.status.code().is_some_and(|c| c < 2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let merged = kafkasim(&[
        "merge",
        &out("s3.jsonl"),
        &out("s1.jsonl"),
        &out("s2.jsonl"),
        "--out",
        &out("merged.jsonl"),
    ]);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(read("one.jsonl").iter().filter(|b| **b == b'\n').count(), 9);
    assert!(read("one.jsonl") == read("two.jsonl"), "1 job and 2 jobs differ");
    assert!(read("one.jsonl") == read("merged.jsonl"), "the merged shards differ");
    // The merge prints what the sweep printed, and exits as it did.
    assert_eq!(one.stdout, merged.stdout);
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(one.status.code(), merged.status.code());
    // Each shard holds its share: run indices k-1 modulo 3.
    let seeds: Vec<u64> = String::from_utf8(read("s2.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<RunRecord>(l).unwrap().seed)
        .collect();
    assert_eq!(seeds, [1, 4, 7]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn merge_refuses_files_of_another_scenario_or_version() {
    let p = plan("scenarios/nemesis-acks-1.yaml", &[]);
    let records = sweep::sweep(&p, &options(0, 2), &|_| {});
    let mut other = records[1].clone();
    other.scenario_hash = "0".repeat(64);
    let a = ("a.jsonl".to_string(), sweep::jsonl(&records[..1]));
    let b = ("b.jsonl".to_string(), sweep::jsonl(&[other]));
    let err = sweep::merge(&[a.clone(), b]).unwrap_err();
    assert!(err.contains("b.jsonl:1: this record is of another scenario"), "{err}");
    let mut newer = records[1].clone();
    newer.version = "9.9.9".to_string();
    let err = sweep::merge(&[a.clone(), ("c.jsonl".to_string(), sweep::jsonl(&[newer]))]).unwrap_err();
    assert!(err.contains("made by kafkasim 9.9.9"), "{err}");
    let err = sweep::merge(&[a.clone(), a]).unwrap_err();
    assert!(err.contains("is in two files"), "{err}");
}

#[test]
fn a_run_past_its_event_budget_is_a_group_of_its_own_and_the_sweep_goes_on() {
    let p = plan("scenarios/nemesis-acks-1.yaml", &[]);
    let full = sweep::sweep(&p, &options(0, 6), &|_| {});
    let mut events: Vec<u64> = full.iter().map(|r| r.events).collect();
    events.sort_unstable();
    let budget = events[2];
    let capped = sweep::sweep(
        &p,
        &Options {
            max_events: budget,
            ..options(0, 6)
        },
        &|_| {},
    );
    let over: Vec<u64> = full.iter().filter(|r| r.events > budget).map(|r| r.seed).collect();
    assert!(!over.is_empty() && over.len() < 6, "{over:?}");
    let summary = sweep::matrix::summary(&capped);
    let budget_group = summary
        .groups
        .iter()
        .find(|g| g.what.starts_with("budget"))
        .expect("a budget group");
    assert_eq!(budget_group.seeds, over);
    // The other seeds ran to the end as before.
    for (a, b) in full.iter().zip(&capped) {
        if !over.contains(&a.seed) {
            assert_eq!(a, b);
        }
    }
    assert!(sweep::matrix::render_summary(&summary).contains(&format!("budget: more than {budget} events")));
}

/// Where each drawn fault takes nodes down: (from, until, nodes).
fn down_spans(s: &Scenario, report: &Report) -> Vec<(u64, u64, Vec<String>)> {
    let drawn = scenario::nemesis::draw(s, report.seed);
    let mut spans = Vec::new();
    for f in &drawn {
        let listed = report
            .faults
            .iter()
            .find(|r| r.at_ms == f.at.as_millis() && r.for_ms == f.lasts.map(|l| l.as_millis()))
            .expect("every drawn fault is listed");
        if !listed.fired {
            continue;
        }
        let resolve = |t: &String| -> String {
            if t.contains('(') {
                listed.hit.first().cloned().expect("a fired role fault names its node")
            } else {
                t.clone()
            }
        };
        let nodes = match &f.kind {
            FaultKind::Crash(n) | FaultKind::PowerLoss(n) | FaultKind::Pause(n) | FaultKind::Isolate(n) => {
                vec![resolve(n)]
            }
            // The nemesis writes the minority (or the leader cut off) first.
            FaultKind::Partition(groups) => groups[0].iter().map(resolve).collect(),
            _ => Vec::new(),
        };
        let at = f.at.as_millis();
        spans.push((at, at + f.lasts.unwrap().as_millis(), nodes));
    }
    spans
}

#[test]
fn the_nemesis_keeps_to_max_down_and_its_window_and_lists_every_fault() {
    let text = std::fs::read_to_string(crate::root().join("scenarios/nemesis-safe-settings.yaml")).unwrap();
    let text = text
        .replace(
            "faults: [crash, pause, partition]",
            "faults: [crash, power-loss, pause, partition, isolate, cut, slow]",
        )
        .replace("max-down: 1", "max-down: 2")
        .replace("from: 5s", "from: 5s\n  until: 40s")
        .replace("every: 5s..15s", "every: 1s..4s");
    let s = scenario::parse("wide.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..12 {
        let report = run_seed(&s, seed);
        let drawn = scenario::nemesis::draw(&s, seed);
        assert!(drawn.len() >= 5, "seed {seed}: {} faults", drawn.len());
        assert_eq!(report.faults.len(), drawn.len(), "seed {seed}");
        for (f, r) in drawn.iter().zip(&report.faults) {
            assert!(
                f.at.as_millis() >= 5000 && f.at.as_millis() <= 40_000,
                "seed {seed}: {f:?}"
            );
            assert_eq!(r.at_ms, f.at.as_millis());
            kinds.insert(r.fault.clone());
        }
        let spans = down_spans(&s, &report);
        for (at, _, _) in &spans {
            let mut down: Vec<&String> = spans
                .iter()
                .filter(|(from, until, _)| from <= at && at < until)
                .flat_map(|(_, _, nodes)| nodes)
                .collect();
            down.sort();
            down.dedup();
            assert!(down.len() <= 2, "seed {seed} at {at}ms: {down:?} down at once");
        }
    }
    // Twelve seeds draw every kind.
    assert_eq!(kinds.len(), 7, "{kinds:?}");
}

#[test]
fn a_role_resolves_to_the_broker_that_holds_it_when_the_fault_fires() {
    let yaml = "name: roles\nduration: 40s\ndrain: 20s\ncluster: { brokers: 3 }\ntopics:\n  - { name: orders, partitions: 1, replication.factor: 3, replicas: [[1, 2, 3]] }\n  - { name: solo, partitions: 1, replication.factor: 1, replicas: [[3]] }\nproducers: [{ name: app, topic: orders, rate: 50/s }]\nconsumers: [{ group: billing, topics: [orders] }]\nfaults:\n  - { at: 5s, crash: leader(orders-0), for: 2s }\n  - { at: 15s, crash: leader(orders-0), for: 2s }\n  - { at: 20s, isolate: coordinator(billing), for: 1s }\n  - { at: 25s, crash: broker-3 }\n  - { at: 36s, crash: leader(solo-0) }\n";
    let report = crate::run_yaml(yaml);
    let f = &report.faults;
    // Broker 1 leads first; the restart at 7s fences it and broker 2 takes over.
    assert_eq!((f[0].hit.as_slice(), f[0].fired), (&["broker-1".to_string()][..], true));
    assert_eq!((f[1].hit.as_slice(), f[1].fired), (&["broker-2".to_string()][..], true));
    assert_eq!(f[0].for_ms, Some(2000));
    let timeline: Vec<&str> = report.timeline.iter().map(|e| e.text.as_str()).collect();
    assert!(
        timeline
            .iter()
            .any(|t| t.starts_with("broker-2 crashes") && t.ends_with("[leader(orders-0) = broker-2]")),
        "{timeline:#?}"
    );
    assert!(
        timeline
            .iter()
            .any(|t| t.starts_with("broker-2 restarts (its crash lasted 2s)")),
        "{timeline:#?}"
    );
    // The coordinator is whoever leads the group's __consumer_offsets partition.
    let coordinator = &f[2].hit[0];
    assert!(
        timeline
            .iter()
            .any(|t| t.starts_with(&format!("{coordinator} is cut off"))),
        "{timeline:#?}"
    );
    // Broker 3 alone holds solo-0: once fenced, nobody leads it, and the crash of its
    // leader does not fire.
    assert!(!f[4].fired);
    assert_eq!(f[4].unresolved.as_deref(), Some("no broker leads solo-0"));
    assert!(
        timeline.contains(&"crash leader(solo-0) does not fire: no broker leads solo-0"),
        "{timeline:#?}"
    );
}

#[test]
fn a_frozen_run_replays_to_the_same_report() {
    let dir = temp_dir("freeze");
    let frozen = dir.join("frozen.yaml");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "scenarios/durability-matrix.yaml",
            "--seed",
            "22",
            "--set",
            "producer:acks=1",
            "--format",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| kafkasim(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let original = run(args(&["--freeze", frozen.to_str().unwrap()]));
    let replay = kafkasim(&["run", frozen.to_str().unwrap(), "--format", "json"]);
    assert_eq!(original.status.code(), replay.status.code());
    let json = |o: &Output| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
        v.as_object_mut().unwrap().remove("reproduce");
        v
    };
    let (a, b) = (json(&original), json(&replay));
    assert!(a["faults"].as_array().unwrap().len() >= 5);
    assert_eq!(a, b, "the frozen scenario replays differently");
    let text = std::fs::read_to_string(&frozen).unwrap();
    assert!(
        !text.contains("nemesis:") && !text.contains("vary:") && text.contains("seed: 22"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_shrunk_nemesis_acks_1_loses_writes_with_two_faults_at_most() {
    let p = plan("scenarios/nemesis-acks-1.yaml", &[]);
    let records = sweep::sweep(&p, &options(0, 1), &|_| {});
    assert_eq!(records[0].failure(), None, "every seed loses writes, as expected");
    // Expect nothing, so that the lost writes are the failure to shrink.
    let text = p.text.replace("violations: [lost-write]", "violations: []");
    let p = Plan::new(&p.file, text.as_bytes(), Vec::new()).unwrap();
    let record = sweep::run_one(&p, 0, 0, sweep::DEFAULT_MAX_EVENTS);
    assert_eq!(record.failure().as_deref(), Some("lost-write failed unexpectedly"));
    let shrunk = sweep::shrink::shrink(&p, &record, sweep::DEFAULT_MAX_EVENTS, &mut |_| {}).unwrap();
    assert!(
        shrunk.faults.1 <= 2 && shrunk.faults.1 < shrunk.faults.0,
        "{:?}",
        shrunk.faults
    );
    assert!(shrunk.seconds.1 < shrunk.seconds.0);
    assert_eq!(shrunk.file_name, "nemesis-acks-1.seed-0.min.yaml");
    let s = scenario::parse("min.yaml", &shrunk.text).unwrap_or_else(|e| panic!("{e}\n{}", shrunk.text));
    assert!(s.nemesis.is_none());
    assert_eq!(s.expect_violations, ["lost-write"]);
    let report = run_seed(&s, s.seed);
    assert!(report.passed, "{}", shrunk.text);
    let lost = report.checks.iter().find(|c| c.name == "lost-write").unwrap();
    assert!(!lost.passed);
    assert!(s.description.contains("lost-write failed unexpectedly") && s.description.contains("seed 0"));
}

#[test]
fn a_matrix_shows_a_refused_combination_as_invalid() {
    let text = std::fs::read_to_string(crate::root().join("scenarios/durability-matrix.yaml")).unwrap();
    let text = text.replace(
        "config: { acks: all }",
        "config: { acks: all, enable.idempotence: true }",
    );
    let p = Plan::new("m.yaml", text.as_bytes(), Vec::new()).unwrap();
    assert_eq!(p.combinations.len(), 8);
    let records = sweep::sweep(&p, &options(0, 2), &|_| {});
    let m = sweep::matrix::matrix(&records);
    let invalid: Vec<&str> = m.rows.iter().filter_map(|r| r.invalid.as_deref()).collect();
    assert_eq!(invalid.len(), 4, "acks=1 with idempotence: {invalid:?}");
    assert!(invalid[0].contains("needs `acks=all`"), "{}", invalid[0]);
    assert!(m.rows[4].invalid.is_none() && m.rows[4].runs == 2);
}

#[test]
fn the_durability_matrix_of_a_few_seeds() {
    let p = plan("scenarios/durability-matrix.yaml", &[]);
    // Seeds 20 to 23: acks=1 loses writes, and so does unclean election where the safe
    // settings (row 7) keep them.
    let records = sweep::sweep(&p, &options(20, 4), &|_| {});
    assert_eq!(records.len(), 32);
    insta::assert_snapshot!(
        "durability-matrix-seeds-20-23",
        sweep::matrix::render_matrix(&sweep::matrix::matrix(&records))
    );
}

#[test]
fn sweep_and_run_refuse_bad_arguments_with_exit_2() {
    for (args, message) in [
        (
            &[
                "sweep",
                "scenarios/nemesis-acks-1.yaml",
                "--seeds",
                "2",
                "--shard",
                "4/3",
            ][..],
            "--shard 4/3",
        ),
        (
            &["sweep", "scenarios/nemesis-acks-1.yaml", "--seeds", "0"],
            "--seeds must be at least 1",
        ),
        (
            &[
                "sweep",
                "scenarios/durability-matrix.yaml",
                "--seeds",
                "2",
                "--shrink",
                "x",
            ],
            "pick one with --set",
        ),
        (
            &["run", "scenarios/nemesis-acks-1.yaml", "--set", "producer:ack=1"],
            "did you mean `acks`",
        ),
        (
            &["run", "scenarios/nemesis-acks-1.yaml", "--set", "producer:acks=2"],
            "`acks` must be one of",
        ),
        (&["merge", "README.md"], "README.md:1: not a sweep record"),
    ] {
        let o = kafkasim(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn a_sweep_exits_1_when_a_seed_misses_its_expectations() {
    let o = kafkasim(&[
        "sweep",
        "scenarios/nemesis-acks-1.yaml",
        "--seeds",
        "3",
        "--set",
        "producer:acks=all",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("lost-write did not fail as expected: 3 seeds (0, 1, 2)"),
        "{out}"
    );
    assert!(
        out.contains("replay: kafkasim run scenarios/nemesis-acks-1.yaml --seed 0 --set producer:acks=all"),
        "{out}"
    );
}

#[test]
fn merge_refuses_shards_run_with_other_settings_and_a_shard_may_hold_nothing() {
    let dir = temp_dir("merge-settings");
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let scenario = "scenarios/nemesis-acks-1.yaml";
    kafkasim(&[
        "sweep",
        scenario,
        "--seeds",
        "2",
        "--shard",
        "1/2",
        "--out",
        &out("a.jsonl"),
    ]);
    kafkasim(&[
        "sweep",
        scenario,
        "--seeds",
        "2",
        "--shard",
        "2/2",
        "--set",
        "producer:acks=all",
        "--out",
        &out("b.jsonl"),
    ]);
    let o = kafkasim(&["merge", &out("a.jsonl"), &out("b.jsonl")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("every shard must have the same --set settings"));
    // Three runs over five shards: shards 4 and 5 hold none, and merge takes their files.
    for k in 1..=5 {
        let o = kafkasim(&[
            "sweep",
            scenario,
            "--seeds",
            "3",
            "--shard",
            &format!("{k}/5"),
            "--out",
            &out(&format!("s{k}.jsonl")),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(dir.join("s5.jsonl")).unwrap(), b"");
    let files: Vec<String> = (1..=5).map(|k| out(&format!("s{k}.jsonl"))).collect();
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let merged = kafkasim(&args);
    let whole = kafkasim(&["sweep", scenario, "--seeds", "3"]);
    assert_eq!(merged.stdout, whole.stdout);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_shrunk_failure_fails_the_same_way_not_just_the_same_check() {
    // A group that cannot keep up: liveness fails because the group lags, and
    // at-least-once because the run ended first. Removing the group, or cutting the drain
    // the group needs, would fail liveness another way; shrinking keeps both.
    let yaml = "name: slow\nduration: 20s\ndrain: 10s\ncluster: { brokers: 1 }\ntopics: [{ name: t, partitions: 2 }]\nproducers: [{ name: app, topic: t, rate: 100/s }]\nconsumers: [{ group: g, topics: [t], processing: 20ms, commit: after-processing, config: { auto.offset.reset: earliest } }]\nfaults:\n  - { at: 2s, slow: { nodes: [app], latency: 5ms }, for: 1s }\n  - { at: 5s, pause: broker-1, for: 1s }\n";
    let p = Plan::new("slow.yaml", yaml.as_bytes(), Vec::new()).unwrap();
    let record = sweep::run_one(&p, 0, 0, sweep::DEFAULT_MAX_EVENTS);
    assert_eq!(
        record.failure().as_deref(),
        Some("at-least-once, liveness failed unexpectedly")
    );
    let shrunk = sweep::shrink::shrink(&p, &record, sweep::DEFAULT_MAX_EVENTS, &mut |_| {}).unwrap();
    let s = scenario::parse("min.yaml", &shrunk.text).unwrap();
    assert_eq!(s.groups.len(), 1, "{}", shrunk.text);
    assert_eq!(s.drain.as_millis(), 10_000, "{}", shrunk.text);
    assert!(s.faults.is_empty(), "{}", shrunk.text);
    let report = run_seed(&s, 0);
    let liveness = report.checks.iter().find(|c| c.name == "liveness").unwrap();
    assert_eq!(liveness.kinds, ["group-lags"]);
}

#[test]
fn a_seed_above_i64_max_freezes_and_replays() {
    let dir = temp_dir("big-seed");
    let frozen = dir.join("f.yaml");
    let seed = u64::MAX.to_string();
    let a = kafkasim(&[
        "run",
        "scenarios/nemesis-acks-1.yaml",
        "--seed",
        &seed,
        "--freeze",
        frozen.to_str().unwrap(),
    ]);
    let b = kafkasim(&["run", frozen.to_str().unwrap()]);
    assert_eq!(
        a.status.code(),
        b.status.code(),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(
        std::fs::read_to_string(&frozen)
            .unwrap()
            .contains(&format!("seed: {seed}\n"))
    );
    std::fs::remove_dir_all(&dir).ok();
}
