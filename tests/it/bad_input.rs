//! The bad-input corpus: every `tests/bad/*.yaml` holds one defect, and its first line
//! `# expect: LINE:COL: SUBSTRING` says where the error must point and what it must say.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `tests/bad/`, sorted.
fn bad_files() -> Vec<PathBuf> {
    crate::yaml_files("tests/bad")
}

/// Where the error must point and a piece of its message.
struct Expect {
    line: u64,
    column: u64,
    substring: String,
}

/// Reads the `# expect: LINE:COL: SUBSTRING` first line of `path`.
fn expectation(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).expect("readable");
    let first = text.lines().next().unwrap_or("");
    let parsed = first.strip_prefix("# expect: ").and_then(|rest| {
        let (line, rest) = rest.split_once(':')?;
        let (column, substring) = rest.split_once(": ")?;
        Some(Expect {
            line: line.trim().parse().ok()?,
            column: column.trim().parse().ok()?,
            substring: substring.trim().to_string(),
        })
    });
    parsed.unwrap_or_else(|| panic!("{}: first line must be `# expect: LINE:COL: SUBSTRING`", path.display()))
}

/// `None` when loading `path` fails as `expect` says, else what went wrong.
fn check(path: &Path, expect: &Expect) -> Option<String> {
    let want = format!("{}:{}: …{}…", expect.line, expect.column, expect.substring);
    match kafkasim::scenario::load(path) {
        Ok(_) => Some(format!("accepted; expected {want}")),
        Err(e) if e.line == expect.line && e.column == expect.column && e.message.contains(&expect.substring) => None,
        Err(e) => Some(format!("got {}:{}: {}; expected {want}", e.line, e.column, e.message)),
    }
}

#[test]
fn every_bad_scenario_is_rejected_with_its_location() {
    let files = bad_files();
    assert!(files.len() >= 20, "only {} files in tests/bad/", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| check(path, &expectation(path)).map(|why| format!("{}: {why}", crate::relative(path))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad scenarios:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn check_command_exits_2_with_one_line() {
    let mut failures = Vec::new();
    for path in bad_files() {
        let file = crate::relative(&path);
        let expect = expectation(&path);
        let out = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
            .args(["check", &file])
            .current_dir(crate::root())
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let place = format!("{file}:{}:{}:", expect.line, expect.column);
        let ok = out.status.code() == Some(2)
            && stdout.is_empty()
            && stderr.lines().count() == 1
            && stderr.starts_with("error: ")
            && stderr.contains(&place)
            && !stderr.contains("panicked");
        if !ok {
            failures.push(format!(
                "{file}: exit {:?}, stdout {stdout:?}, stderr {stderr:?}; expected exit 2 and one line with `{place}`",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
