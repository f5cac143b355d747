//! The `kafkasim` binary as a user runs it: exit codes, output formats, the trace file.

use crate::kafkasim;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

#[test]
fn run_prints_the_same_report_twice_and_exits_0() {
    let a = kafkasim(&["run", "scenarios/quickstart.yaml"]);
    let b = kafkasim(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert!(stdout(&a).contains("Result: as expected"));
    assert!(stdout(&a).contains("Reproduce: kafkasim run scenarios/quickstart.yaml --seed 7"));
}

#[test]
fn json_report_has_the_pinned_fields() {
    let o = kafkasim(&["run", "scenarios/quickstart.yaml", "--format", "json", "--seed", "3"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    for key in [
        "scenario",
        "seed",
        "simulated_ms",
        "events",
        "passed",
        "checks",
        "producers",
        "consumer_groups",
        "partitions",
        "faults",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["seed"], 3);
    let has = |item: &serde_json::Value, keys: &[&str]| {
        for k in keys {
            assert!(item.get(k).is_some(), "missing {k} in {item}");
        }
    };
    has(&v["checks"][0], &["name", "passed", "violations"]);
    has(
        &v["producers"][0],
        &["name", "sent", "acked", "failed", "errors", "latency_ms"],
    );
    has(&v["producers"][0]["latency_ms"], &["p50", "p99", "max"]);
    has(
        &v["consumer_groups"][0],
        &[
            "group",
            "consumed",
            "unique",
            "duplicates",
            "lost",
            "committed",
            "generation",
            "assignment",
        ],
    );
    has(
        &v["partitions"][0],
        &[
            "topic",
            "partition",
            "leader",
            "leader_epoch",
            "replicas",
            "isr",
            "high_watermark",
            "log_end_offsets",
        ],
    );
    has(&v["faults"][0], &["at_ms", "fault", "target", "fired"]);
    assert_eq!(v["faults"][0]["fault"], "crash");
    assert_eq!(v["faults"][0]["target"], "broker-2");
}

#[test]
fn unmet_expectations_exit_1_with_the_command_that_reproduces_the_run() {
    let dir = std::env::temp_dir().join(format!("kafkasim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("expects-loss.yaml");
    let text = std::fs::read_to_string(crate::root().join("scenarios/quickstart.yaml")).unwrap();
    std::fs::write(&path, format!("{text}expect:\n  violations: [lost-write]\n")).unwrap();
    let o = kafkasim(&["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("NOT as expected"));
    assert!(out.contains(&format!("Reproduce: kafkasim run {} --seed 7", path.display())));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn trace_is_written_whole_as_json_lines() {
    let dir = std::env::temp_dir().join(format!("kafkasim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("run.jsonl");
    let o = kafkasim(&[
        "run",
        "scenarios/commit-before-processing.yaml",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&trace).expect("trace written");
    assert!(text.lines().count() > 100);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn html_is_written_whole_and_a_missing_folder_is_refused_before_the_run() {
    let dir = std::env::temp_dir().join(format!("kafkasim-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let o = kafkasim(&["run", "scenarios/quickstart.yaml", "--html", page.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).expect("page written");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(html.ends_with("</html>"));
    // The text report still goes to standard output.
    assert!(stdout(&o).contains("Reproduce: kafkasim run scenarios/quickstart.yaml"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no partial file left");
    let missing = dir.join("no-such-folder").join("report.html");
    let o = kafkasim(&["run", "scenarios/quickstart.yaml", "--html", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("report.html: cannot write"), "{err}");
    assert!(stdout(&o).is_empty(), "no run, no report");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_2_and_writes_no_trace() {
    let dir = std::env::temp_dir().join(format!("kafkasim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    let o = kafkasim(&["run", "no-such-file.yaml", "--trace", trace.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: no-such-file.yaml: cannot read"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(kafkasim(&["run"]).status.code(), Some(2));
    assert_eq!(
        kafkasim(&["run", "scenarios/quickstart.yaml", "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_accepts_every_shipped_scenario() {
    let files: Vec<String> = crate::scenario_files().iter().map(|p| crate::relative(p)).collect();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let o = kafkasim(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("ok: ")).count(),
        files.len()
    );
}

#[test]
fn help_teaches_the_commands() {
    let o = kafkasim(&["--help"]);
    let text = stdout(&o);
    for word in ["run", "check", "partition", "quickstart"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    let run_help = stdout(&kafkasim(&["run", "--help"]));
    for word in ["--seed", "--format", "--trace", "Exits 0"] {
        assert!(run_help.contains(word), "run --help lacks {word}");
    }
}

#[test]
fn partition_matches_kafkas_murmur2() {
    // "kafka" hashes to 0xd067cf64 (librdkafka's Java-murmur2 vectors); with the sign bit
    // cleared that is 1348980580, and 1348980580 % 3 = 1.
    let o = kafkasim(&["partition", "--partitions", "3", "kafka"]);
    assert_eq!(stdout(&o), "kafka\t1\n");
    // Int keys hash their 4 big-endian bytes, not the text.
    let o = kafkasim(&["partition", "--partitions", "3", "--key-type", "int", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn partition_stats_count_keys_per_partition() {
    // "kafka" → 1 (see above); "" hashes to 275646681, and 275646681 % 3 = 0 (digit sum 45).
    let o = kafkasim(&["partition", "--partitions", "3", "--stats", "kafka", "kafka", ""]);
    assert_eq!(
        stdout(&o),
        "kafka\t1\nkafka\t1\n\t0\n# partition\tkeys\n# 0\t1\n# 1\t2\n# 2\t0\n# skew (largest / mean): 2.00\n"
    );
}

/// `kafkasim assign` with `input` on standard input.
fn assign_stdin(input: &str) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(["assign", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writes");
    child.wait_with_output().expect("finishes")
}

/// Writes `text` to a fresh file named `name` (in a folder of its own) and returns its path.
fn group_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kafkasim-assign-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const DESIGN_EXAMPLE: &str = r#"{"strategy": "range", "topics": {"t1": 3}, "members": [{"id": "c1", "topics": ["t1"], "instance": null, "owned": [], "generation": -1}]}"#;

#[test]
fn assign_prints_the_design_example() {
    let path = group_file("design.json", DESIGN_EXAMPLE);
    let o = kafkasim(&["assign", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o),
        "{\"assignment\": {\"c1\": [\"t1-0\", \"t1-1\", \"t1-2\"]}}\n"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn assign_reads_standard_input() {
    let o = assign_stdin(DESIGN_EXAMPLE);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "{\"assignment\": {\"c1\": [\"t1-0\", \"t1-1\", \"t1-2\"]}}\n"
    );
    // Kafka's testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers, cooperatively:
    // consumer2 keeps two partitions (Java's HashMap visits it before consumer1), and
    // topic2-0 waits for consumer1 to revoke it.
    let o = assign_stdin(
        r#"{"strategy": "cooperative-sticky", "topics": {"topic1": 2, "topic2": 2}, "members": [
            {"id": "consumer1", "topics": ["topic1", "topic2"], "owned": ["topic1-0", "topic2-0"], "generation": 1},
            {"id": "consumer2", "topics": ["topic1", "topic2"], "owned": ["topic1-1", "topic2-1"], "generation": 1},
            {"id": "consumer3", "topics": ["topic1", "topic2"], "generation": 1}]}"#,
    );
    assert_eq!(
        stdout(&o),
        "{\"assignment\": {\"consumer1\": [\"topic1-0\"], \"consumer2\": [\"topic1-1\", \"topic2-1\"], \
         \"consumer3\": []}, \"transferring\": {\"topic2-0\": \"consumer3\"}, \"revoked\": {\"consumer1\": [\"topic2-0\"]}}\n"
    );
}

#[test]
fn assign_bad_input_exits_2_with_the_place() {
    let path = group_file(
        "broken.json",
        "{\"strategy\": \"range\",\n  \"topics\": {\"t1\": 3,}}\n",
    );
    let o = kafkasim(&["assign", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("error: {}:2:22: trailing comma\n", path.display())
    );
    let o = assign_stdin(&DESIGN_EXAMPLE.replace("\"range\"", "\"rnage\""));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: <stdin>:1:20: unknown strategy `rnage`; did you mean `range`?"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let o = assign_stdin(&DESIGN_EXAMPLE.replace("[\"t1\"]", "[\"t2\"]"));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: <stdin>: member `c1` subscribes to unknown topic `t2`; did you mean `t1`?\n"
    );
    assert_eq!(kafkasim(&["assign", "no-such-group.json"]).status.code(), Some(2));
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// A scenario estimated above the size limits is refused at the key that drives its cost,
/// by `check`, `run` and `sweep`; `--allow-huge` lifts the refusal for each (the runs here
/// then stop at `--max-events`).
#[test]
fn allow_huge_lifts_the_size_limit_for_check_run_and_sweep() {
    let huge = "tests/bad/duration-too-long-to-simulate.yaml";
    let place = format!("error: {huge}:4:11: ");
    for args in [
        vec!["check", huge],
        vec!["run", huge],
        vec!["sweep", huge, "--seeds", "1"],
    ] {
        let o = kafkasim(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&place) && stderr.contains("--allow-huge"),
            "{args:?}: {stderr}"
        );
    }
    let o = kafkasim(&["check", "--allow-huge", huge]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o).contains("estimated 18 billion events, 21 GB"),
        "{}",
        stdout(&o)
    );
    let o = kafkasim(&["run", huge, "--allow-huge", "--max-events", "1000"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1000 events") && !stderr.contains("too large"),
        "{stderr}"
    );
    let o = kafkasim(&["sweep", huge, "--seeds", "1", "--allow-huge", "--max-events", "1000"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("budget: more than 1000 events"), "{}", stdout(&o));
}

/// Every shipped scenario and benchmark is estimated far below the size limits: a
/// fiftieth of them at most, except the production-like load, which is made to be heavy
/// (a quarter of them at most).
#[test]
fn shipped_scenarios_are_far_below_the_size_limits() {
    use kafkasim::scenario::estimate::{EVENTS_LIMIT, MEMORY_LIMIT, estimate};
    let mut files = crate::scenario_files();
    files.extend(crate::yaml_files("benches"));
    files.extend(crate::yaml_files("benches/scenarios"));
    for path in files {
        let s = kafkasim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let e = estimate(&s);
        let share = if path.ends_with("benches/scenarios/keyed-24p.yaml") {
            4
        } else {
            50
        };
        assert!(
            e.events < EVENTS_LIMIT / share && e.memory < MEMORY_LIMIT / share,
            "{}: {e:?}",
            path.display()
        );
    }
}

#[test]
fn compare_puts_runs_side_by_side() {
    let dir = std::env::temp_dir().join(format!("kafkasim-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("compare.html");
    let o = kafkasim(&[
        "compare",
        "scenarios/batching-linger.yaml",
        "--vary",
        "producer:linger.ms=0,50",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let header = text
        .lines()
        .find(|l| l.contains("linger.ms=0 "))
        .expect("a header line");
    assert!(header.trim_start().starts_with("linger.ms=0"), "{header}");
    // Each column is the run `run --set` gives: the same figures.
    let alone = kafkasim(&[
        "run",
        "scenarios/batching-linger.yaml",
        "--set",
        "producer:linger.ms=50",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&alone.stdout).expect("JSON");
    let requests = report["producers"][0]["requests"].as_u64().expect("requests");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("app requests"))
        .expect("a requests row");
    assert!(row.trim_end().ends_with(&format!(" {requests}")), "{row}");
    assert!(text.contains("linger.ms=50: kafkasim run scenarios/batching-linger.yaml --set producer:linger.ms=50"));
    let html = std::fs::read_to_string(&page).expect("page written");
    crate::html::well_formed(&html).unwrap_or_else(|e| panic!("{e}"));
    crate::html::self_contained(&html).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).ok();
    // Two scenarios: a column each, named after them.
    let o = kafkasim(&[
        "compare",
        "scenarios/isr-min-insync-3.yaml",
        "scenarios/isr-min-insync-2.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("isr-min-insync-3  "), "{}", stdout(&o));
}

#[test]
fn compare_refuses_every_bad_input_before_running() {
    let o = kafkasim(&[
        "compare",
        "scenarios/batching-linger.yaml",
        "--vary",
        "producer:lingr.ms=0,5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--vary producer:lingr.ms=0") && err.contains("linger.ms"),
        "{err}"
    );
    // A value Kafka would refuse is named with its variant, the others' errors too.
    let o = kafkasim(&[
        "compare",
        "scenarios/batching-linger.yaml",
        "no-such.yaml",
        "--vary",
        "producer:acks=1,2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not 2 (given by --vary producer:acks=2)"), "{err}");
    assert!(err.contains("no-such.yaml: cannot read"), "{err}");
    assert!(stdout(&o).is_empty());
    // A mistake in the file itself is said once, not once per variant.
    let o = kafkasim(&[
        "compare",
        "scenarios/batching-linger.yaml",
        "--set",
        "producer:linger.ms=-4",
        "--vary",
        "producer:acks=1,all",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("linger.ms").count(), 2, "one line naming it twice: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn brief_keeps_the_story_and_the_failing_checks() {
    let o = kafkasim(&["run", "scenarios/kip-279-divergence.yaml", "--brief"]);
    assert_eq!(o.status.code(), Some(0));
    let brief = stdout(&o);
    let full = stdout(&kafkasim(&["run", "scenarios/kip-279-divergence.yaml"]));
    for kept in [
        "== kip-279-divergence",
        "The log divergence",
        "\nTimeline\n",
        "\nOver time",
        "FAIL  lost-write",
        "FAIL  log-divergence",
        "Reproduce: ",
    ] {
        assert!(brief.contains(kept), "{kept:?} missing:\n{brief}");
    }
    for left in [
        "\nSetup\n",
        "Partitions at the end",
        "\nProducers\n",
        "\nBrokers\n",
        "pass  strong-isr",
    ] {
        assert!(!brief.contains(left), "{left:?} kept:\n{brief}");
        assert!(full.contains(left), "{left:?} not in the full report");
    }
    assert!(!brief.contains("\n\n\n"));
    // The timeline is the full report's, line for line.
    let timeline = |r: &str| {
        r.split("\nTimeline\n")
            .nth(1)
            .and_then(|t| t.split("\n\n").next())
            .map(str::to_string)
    };
    assert_eq!(timeline(&brief), timeline(&full));
    let o = kafkasim(&["run", "scenarios/quickstart.yaml", "--brief"]);
    assert!(stdout(&o).contains("Checks\n  every check passed\n"), "{}", stdout(&o));
}

#[test]
fn trace_names_partitions_and_filters_lines() {
    let dir = std::env::temp_dir().join(format!("kafkasim-trace-filter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    let o = kafkasim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--trace",
        trace.to_str().unwrap(),
        "--trace-filter",
        "kind=obs:acked",
        "--trace-filter",
        "partition=orders-1",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&trace).expect("trace written");
    assert!(text.lines().count() > 10);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["obs"]["obs"], "acked", "{line}");
        assert_eq!(v["obs"]["partition"], "orders-1", "{line}");
        assert!(v["obs"]["producer"].is_string(), "{line}");
    }
    let o = kafkasim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--trace",
        trace.to_str().unwrap(),
        "--trace-filter",
        "partition=order-1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such partition; did you mean `orders-1`?"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The trace uses only the observation, API and timer names `--trace-filter` accepts, and
/// names every partition it mentions.
#[test]
fn trace_kinds_are_the_known_ones_and_partitions_are_named() {
    use kafkasim::trace::{APIS, OBSERVATIONS, TIMERS, kind_of};
    fn numbered_partition(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .any(|(k, x)| (k == "partition" && x.is_u64()) || numbered_partition(x)),
            serde_json::Value::Array(a) => a.iter().any(numbered_partition),
            _ => false,
        }
    }
    let dir = std::env::temp_dir().join(format!("kafkasim-trace-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    // slow-consumer's observations only: its whole trace is 75 MB.
    for (scenario, kinds) in [
        (
            "nemesis-safe-mix",
            "kind=start,msg,timer,peer_down,obs,drop,fault,unresolved_fault",
        ),
        (
            "kip-101-epoch-truncation",
            "kind=start,msg,timer,peer_down,obs,drop,fault,unresolved_fault",
        ),
        ("slow-consumer", "kind=obs"),
        (
            "producer-backpressure",
            "kind=start,msg,timer,peer_down,obs,drop,fault,unresolved_fault",
        ),
    ] {
        let trace = dir.join(format!("{scenario}.jsonl"));
        let o = kafkasim(&[
            "run",
            &format!("scenarios/{scenario}.yaml"),
            "--trace",
            trace.to_str().unwrap(),
            "--trace-filter",
            kinds,
        ]);
        assert!(o.status.code().is_some_and(|c| c < 2), "{scenario}");
        for line in std::fs::read_to_string(&trace).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (kind, sub) = kind_of(&v);
            let known: &[&str] = match kind {
                "obs" => &OBSERVATIONS,
                "msg" => &APIS,
                "timer" => &TIMERS,
                _ => &[],
            };
            if let Some(sub) = &sub {
                assert!(known.contains(&sub.as_str()), "{scenario}: unknown {kind} {sub}");
                seen.insert(format!("{kind}:{sub}"));
            }
            assert!(!numbered_partition(&v), "{scenario}: a partition by number: {line}");
        }
    }
    // The scenarios cover most of each list, so a renamed kind is noticed.
    assert!(seen.len() > 50, "{seen:?}");
    std::fs::remove_dir_all(&dir).ok();
}
