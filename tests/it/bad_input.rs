//! The bad-input corpus: every `tests/bad/*.yaml` holds one defect, or several, and its first
//! lines `# expect: LINE:COL: SUBSTRING`, one for each defect in file order, say where each
//! error must point and what it must say.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `tests/bad/`, sorted.
fn bad_files() -> Vec<PathBuf> {
    crate::yaml_files("tests/bad")
}

/// Where an error must point and a piece of its message.
struct Expect {
    line: u64,
    column: u64,
    substring: String,
}

impl Expect {
    fn met_by(&self, e: &kafkasim::scenario::InputError) -> bool {
        e.line == self.line && e.column == self.column && e.message.contains(&self.substring)
    }
}

/// Reads the `# expect: LINE:COL: SUBSTRING` lines at the top of `path`.
fn expectations(path: &Path) -> Vec<Expect> {
    let text = std::fs::read_to_string(path).expect("readable");
    let parsed: Vec<Expect> = text
        .lines()
        .map_while(|line| line.strip_prefix("# expect: "))
        .map(|rest| {
            let parse = || {
                let (line, rest) = rest.split_once(':')?;
                let (column, substring) = rest.split_once(": ")?;
                Some(Expect {
                    line: line.trim().parse().ok()?,
                    column: column.trim().parse().ok()?,
                    substring: substring.trim().to_string(),
                })
            };
            parse().unwrap_or_else(|| panic!("{}: malformed `# expect:` line: {rest}", path.display()))
        })
        .collect();
    assert!(
        !parsed.is_empty(),
        "{}: first line must be `# expect: LINE:COL: SUBSTRING`",
        path.display()
    );
    parsed
}

/// `None` when loading `path` fails as `expect` says, else what went wrong.
fn check(path: &Path, expect: &[Expect]) -> Option<String> {
    let want: Vec<String> = expect
        .iter()
        .map(|x| format!("{}:{}: …{}…", x.line, x.column, x.substring))
        .collect();
    match kafkasim::scenario::load(path) {
        Ok(_) => Some(format!("accepted; expected {}", want.join(" | "))),
        Err(e) => {
            let got: Vec<&kafkasim::scenario::InputError> = e.all().collect();
            if got.len() == expect.len() && expect.iter().zip(&got).all(|(x, e)| x.met_by(e)) {
                None
            } else {
                let got: Vec<String> = got
                    .iter()
                    .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                    .collect();
                Some(format!("got {}; expected {}", got.join(" | "), want.join(" | ")))
            }
        }
    }
}

#[test]
fn every_bad_scenario_is_rejected_with_its_location() {
    let files = bad_files();
    assert!(files.len() >= 20, "only {} files in tests/bad/", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| check(path, &expectations(path)).map(|why| format!("{}: {why}", crate::relative(path))))
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
fn check_command_exits_2_with_one_line_per_error() {
    let mut failures = Vec::new();
    for path in bad_files() {
        let file = crate::relative(&path);
        let expect = expectations(&path);
        let out = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
            .args(["check", &file])
            .current_dir(crate::root())
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let places: Vec<String> = expect
            .iter()
            .map(|x| format!("error: {file}:{}:{}:", x.line, x.column))
            .collect();
        let ok = out.status.code() == Some(2)
            && stdout.is_empty()
            && stderr.lines().count() == expect.len()
            && stderr
                .lines()
                .zip(&places)
                .all(|(line, place)| line.starts_with(place.as_str()))
            && !stderr.contains("panicked");
        if !ok {
            failures.push(format!(
                "{file}: exit {:?}, stdout {stdout:?}, stderr {stderr:?}; expected exit 2 and the lines {places:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bytes that are not UTF-8 are refused at their line and column, by the library, by
/// `check`, `run` and `sweep`. The file is written here: the corpus reads its files as text.
#[test]
fn invalid_utf8_names_its_line_and_column() {
    let dir = std::env::temp_dir().join(format!("kafkasim-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("latin-1.yaml");
    // `café` saved as Latin-1: the `é` is the single byte 0xE9.
    let mut bytes = b"name: bad-input\nduration: 30s\ncluster: { brokers: 3 }\ntopics:\n  - name: caf".to_vec();
    bytes.push(0xE9);
    bytes.extend(b"\n    partitions: 3\n");
    std::fs::write(&path, &bytes).expect("written");
    let e = kafkasim::scenario::load(&path).expect_err("not UTF-8");
    assert_eq!((e.line, e.column), (5, 14), "{e}");
    assert!(e.message.contains("0xE9") && e.message.contains("not UTF-8"), "{e}");
    let file = path.to_str().expect("UTF-8 path");
    for args in [
        vec!["check", file],
        vec!["run", file],
        vec!["sweep", file, "--seeds", "1"],
    ] {
        let out = crate::kafkasim(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {file}:5:14: the file is not UTF-8")),
            "{args:?}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
