//! The one integration-test binary: every topic is a module.

mod bad_input;
mod browser;
mod checks;
mod cli;
mod commits;
mod determinism;
mod docs;
mod duplicates;
mod groups;
mod html;
mod lifecycle;
mod producer;
mod replication;
mod research;
mod scenarios;
mod tidy;

use std::path::{Path, PathBuf};

/// The crate's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` file in the crate's folder `dir`, sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}/: {e}"))
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every scenario under `scenarios/`, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    yaml_files("scenarios")
}

/// Runs a scenario with its own seed, no trace, no progress.
pub fn run(s: &kafkasim::scenario::Scenario) -> kafkasim::report::Report {
    let opts = kafkasim::run::RunOptions {
        seed: None,
        trace: None,
        progress: None,
        source: String::new(),
        ..Default::default()
    };
    kafkasim::run::run(s, opts).expect("no trace, no I/O")
}

/// Parses scenario text (panicking on bad input) and runs it.
pub fn run_yaml(yaml: &str) -> kafkasim::report::Report {
    run(&kafkasim::scenario::parse("test.yaml", yaml).unwrap_or_else(|e| panic!("{e}")))
}

/// Runs the `kafkasim` binary from the crate root, as a user would.
pub fn kafkasim(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("runs")
}

/// `scenarios/NAME.yaml`, as a user would type it from the crate root.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}
