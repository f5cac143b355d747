//! The README documents everything a scenario can say: every Kafka property kafkasim
//! knows, every fault kind, every check name, every shipped scenario.

use kafkasim::check::CHECKS;
use kafkasim::scenario::props::PROPS;
use kafkasim::scenario::schema::FAULT_KINDS;

#[test]
fn readme_documents_the_scenario_format() {
    let readme = std::fs::read_to_string(crate::root().join("README.md")).expect("README.md");
    let mut missing = Vec::new();
    for p in PROPS {
        if !readme.contains(&format!("`{}`", p.name)) {
            missing.push(format!("property {}", p.name));
        }
    }
    for kind in FAULT_KINDS {
        if !readme.contains(&format!("`{kind}:")) {
            missing.push(format!("fault {kind}"));
        }
    }
    for c in CHECKS {
        if !readme.contains(&format!("`{}`", c.name)) {
            missing.push(format!("check {}", c.name));
        }
    }
    for s in crate::scenario_files() {
        let stem = s.file_stem().unwrap().to_string_lossy().into_owned();
        if !readme.contains(&format!("`{stem}`")) {
            missing.push(format!("scenario {stem}"));
        }
    }
    assert!(missing.is_empty(), "README.md does not mention: {missing:?}");
}

#[test]
fn readme_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(crate::root().join("README.md")).expect("README.md");
    let block = readme
        .split("```sh")
        .nth(1)
        .expect("a sh block")
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(
        commands,
        ["cargo run --release -- run scenarios/quickstart.yaml", "cargo test"]
    );
    let ci = std::fs::read_to_string(crate::root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run the README's test command"
    );
}
