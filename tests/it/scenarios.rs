//! Every scenario under `scenarios/` runs, meets its own `expect`, and its text report
//! matches the reviewed snapshot in `snapshots/`.

use kafkasim::run::RunOptions;
use kafkasim::scenario;

fn report_of(path: &std::path::Path) -> kafkasim::report::Report {
    let s = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let source = crate::relative(path);
    kafkasim::run::run(
        &s,
        RunOptions {
            seed: None,
            trace: None,
            progress: None,
            source,
            ..Default::default()
        },
    )
    .expect("no trace, no I/O")
}

#[test]
fn scenario_reports_match_their_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::glob!("../../scenarios", "*.yaml", |path| {
            let report = report_of(path);
            assert!(
                report.passed,
                "{}: the scenario's expectations do not hold:\n{}",
                path.display(),
                kafkasim::report::text::render(&report)
            );
            // Idempotence (KAFKA.md §2.2): whatever the faults and retries, an idempotent
            // producer's records are in the logs once each and in order.
            for p in report.producers.iter().filter(|p| p.idempotence) {
                assert_eq!(
                    (p.duplicates_written, p.reordered),
                    (0, 0),
                    "{}: idempotent producer {}",
                    path.display(),
                    p.name
                );
            }
            // The brief report keeps the whole description, whatever word a wrapped line
            // starts with, and says once that every check passed when they all did.
            let full = kafkasim::report::text::render(&report);
            let brief = kafkasim::report::text::render_brief(&report);
            let head = full.split("\nSetup\n").next().expect("a head");
            assert!(brief.starts_with(head), "{}:\n{brief}", path.display());
            assert!(!brief.contains("\n\n\n"), "{}", path.display());
            let all_pass = report.checks.iter().all(|c| c.passed && !c.expected_to_fail);
            assert_eq!(brief.matches("every check passed").count(), usize::from(all_pass));
            let html = kafkasim::report::html::render(&report);
            crate::html::check(&html, &report).unwrap_or_else(|e| panic!("{}: HTML report: {e}", path.display()));
            insta::assert_snapshot!("report", kafkasim::report::text::render(&report));
        });
    });
}

/// Every snapshot belongs to a scenario: a renamed or deleted scenario leaves none behind.
#[test]
fn no_stale_snapshots() {
    let scenarios: Vec<String> = crate::scenario_files()
        .iter()
        .map(|p| p.file_stem().expect("named").to_string_lossy().into_owned())
        .collect();
    for entry in std::fs::read_dir(crate::root().join("snapshots")).expect("snapshots/ exists") {
        let name = entry.expect("readable").file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".yaml.snap") else {
            continue;
        };
        let stem = stem.strip_prefix("report@").unwrap_or(stem);
        assert!(scenarios.iter().any(|s| s == stem), "snapshots/{name} has no scenario");
    }
}

/// Every failing run of `file` over `seeds` seeds from `from` (the scenario's own seed when
/// `None`), as `seed: what went wrong`; a matrix's runs fail only by panicking or running
/// out of events.
fn failing_seeds(file: &std::path::Path, from: Option<u64>, seeds: u64) -> Vec<String> {
    let bytes = std::fs::read(file).expect("readable");
    let plan = kafkasim::sweep::Plan::new(&crate::relative(file), &bytes, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let opts = kafkasim::sweep::Options {
        from: from.unwrap_or(plan.seed),
        seeds,
        jobs: None,
        shard: None,
        max_events: kafkasim::sweep::DEFAULT_MAX_EVENTS,
    };
    kafkasim::sweep::sweep(&plan, &opts, &|_| {})
        .iter()
        .filter(|r| !(r.matrix && r.outcome.is_none()))
        .filter_map(|r| r.failure().map(|f| format!("{} seed {}: {f}", plan.name, r.seed)))
        .collect()
}

/// A lesson must not hang on a lucky seed: every scenario meets its `expect` for the 20
/// seeds from its own, with the network jitter it has.
#[test]
fn every_scenario_meets_its_expect_over_20_seeds() {
    let failures: Vec<String> = crate::scenario_files()
        .iter()
        .flat_map(|f| failing_seeds(f, None, 20))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The durable settings hold under random faults of each kind: 40 more seeds of each
/// safe-settings nemesis scenario (beyond the 20 above; `kafkasim sweep` runs thousands).
#[test]
fn safe_settings_hold_under_the_nemesis_over_40_more_seeds() {
    let safe: Vec<_> = crate::scenario_files()
        .into_iter()
        .filter(|f| {
            f.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with("nemesis-safe-"))
        })
        .collect();
    assert_eq!(
        safe.len(),
        6,
        "crashes, mix, network, pauses, quorum, settings: {safe:?}"
    );
    let failures: Vec<String> = safe.iter().flat_map(|f| failing_seeds(f, Some(1000), 40)).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Timers that no longer matter are cancelled, not handed to a handler that then does
/// nothing: over these runs (producers, consumer groups, replication, commits; a broker
/// crash and restart, member crashes, a member's pause), no event is idle. Before
/// cancellation, `quickstart` alone had 6,151 idle offset-commit timeouts.
#[test]
fn fault_free_runs_hand_no_stale_timer_to_a_handler() {
    for name in [
        "quickstart",
        "assignors-compared",
        "partitions-across-brokers",
        "producer-batching",
        "commit-before-processing",
    ] {
        let path = crate::root().join("scenarios").join(format!("{name}.yaml"));
        let report = report_of(&path);
        assert!(report.events > 1000, "{name} ran");
        assert_eq!(report.idle_events, 0, "{name}: events that did nothing");
    }
}
