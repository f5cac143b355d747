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
