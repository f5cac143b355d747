//! A run is a pure function of (scenario, seed): the same inputs give the same trace,
//! byte for byte; another seed gives another, equally valid run.

use kafkasim::run::{RunOptions, run};
use kafkasim::scenario;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A trace sink the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn traced(path: &std::path::Path, seed: Option<u64>) -> (Vec<u8>, kafkasim::report::Report) {
    let s = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let sink = Shared::default();
    let report = run(
        &s,
        RunOptions {
            seed,
            trace: Some(Box::new(sink.clone())),
            progress: None,
            source: String::new(),
            ..Default::default()
        },
    )
    .expect("in-memory trace");
    let bytes = sink.0.lock().expect("not poisoned").clone();
    (bytes, report)
}

#[test]
fn every_scenario_twice_gives_the_same_trace() {
    for path in crate::scenario_files() {
        let (a, ra) = traced(&path, None);
        let (b, rb) = traced(&path, None);
        assert!(!a.is_empty(), "{}: empty trace", path.display());
        assert!(a == b, "{}: two runs with one seed differ", path.display());
        assert_eq!(serde_json::to_string(&ra).unwrap(), serde_json::to_string(&rb).unwrap());
    }
}

#[test]
fn another_seed_gives_another_valid_run() {
    let path = crate::root().join("scenarios/quickstart.yaml");
    let (a, ra) = traced(&path, Some(1));
    let (b, rb) = traced(&path, Some(2));
    assert!(a != b, "seeds 1 and 2 gave the same trace");
    assert!(ra.passed && rb.passed);
    assert_eq!(ra.seed, 1);
    assert_eq!(rb.seed, 2);
}

#[test]
fn every_trace_line_is_a_json_object() {
    let (bytes, _) = traced(&crate::root().join("scenarios/quickstart.yaml"), None);
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("t").is_some(), "no time: {line}");
        lines += 1;
    }
    assert!(lines > 1000);
}
