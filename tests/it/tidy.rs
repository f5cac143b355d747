//! What style should never let into `src/`: sources of nondeterminism and panics on input.

fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![crate::root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("readable").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((crate::relative(&path), std::fs::read_to_string(&path).expect("utf-8")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_nondeterminism_in_src() {
    // Iteration order of hashed collections, the wall clock, and unseeded randomness
    // would each make two runs of one seed differ.
    let banned = [
        "HashMap",
        "HashSet",
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "rand::random",
        "rand::rng()",
        "StdRng",
        "SmallRng",
    ];
    let mut found = Vec::new();
    for (file, text) in sources() {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for b in banned {
                if code.contains(b) {
                    found.push(format!("{file}:{}: {b}", i + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "nondeterminism in src/:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    for (file, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "{file} does not open with a `//!` line on its role"
        );
    }
}

#[test]
fn the_model_never_reads_the_os() {
    // kafka/ and sim/ are pure: no files, no environment, no threads, no printing.
    let banned = [
        "std::fs",
        "std::env",
        "std::thread",
        "println!",
        "eprintln!",
        "std::process",
    ];
    for (file, text) in sources() {
        if !(file.contains("src/kafka/") || file.contains("src/sim/") || file.contains("src/check/")) {
            continue;
        }
        for b in banned {
            assert!(!text.contains(b), "{file} uses {b}");
        }
    }
}
