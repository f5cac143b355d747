//! Throughput and memory of whole runs, against two baselines measured in the same run:
//! a bare event loop (a binary heap of timers, no model) and the engine driving actors
//! that only re-arm timers. Each scenario runs in a process of its own, so the peak
//! memory printed is that run's, and is compared with a bare loop holding as many pending
//! entries as the run's queue held at its fullest. Run with `cargo bench --bench engine`
//! (`scenarios/quickstart.yaml` and `benches/scenarios/keyed-24p.yaml`) or with the
//! scenarios to run after `--`.

mod common;

use common::peak_memory_kb;
use kafkasim::run::{RunOptions, run};
use kafkasim::scenario;
use kafkasim::sim::network::Network;
use kafkasim::sim::{Actor, CrashKind, Duration, Engine, Input, Outbox, Time, rng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// An actor that keeps one timer armed: the engine's own cost per event.
struct Ticker;

impl Actor for Ticker {
    type Msg = ();
    type Timer = ();
    type Obs = ();
    type Role = ();
    fn handle(&mut self, _now: Time, _input: Input<(), ()>, out: &mut Outbox<(), (), ()>) {
        out.set_timer(Duration::from_micros(997), ());
    }
    fn crash(&mut self, _now: Time, _kind: CrashKind, _out: &mut Outbox<(), (), ()>) {}
}

fn per_second(events: u64, secs: f64) -> f64 {
    events as f64 / secs
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(v);
    }
    (last.expect("n > 0"), best)
}

/// Events per second of a bare event loop: a binary heap of `pending` timers of 16
/// bytes, each re-armed when it fires, `target` times.
fn bare_loop(pending: u64, target: u64) -> f64 {
    let (_, secs) = best_of(3, || {
        let mut heap: BinaryHeap<Reverse<(u64, u64)>> = (0..pending).map(|i| Reverse((i, i))).collect();
        let mut seq = pending;
        for _ in 0..target {
            let Reverse((t, _)) = heap.pop().expect("never empty");
            seq += 1;
            heap.push(Reverse((t + pending, seq)));
        }
        heap.len()
    });
    per_second(target, secs)
}

/// One scenario, in this process: runs it (best of three when a run takes under a
/// second) and prints its figures on one line.
fn one(path: &str) {
    let s = scenario::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let go = || {
        run(
            &s,
            RunOptions {
                seed: None,
                trace: None,
                progress: None,
                source: path.to_string(),
                ..Default::default()
            },
        )
        .expect("no I/O")
    };
    let start = Instant::now();
    let first = go();
    let mut secs = start.elapsed().as_secs_f64();
    let report = if secs < 1.0 {
        let (r, best) = best_of(2, go);
        secs = secs.min(best);
        r
    } else {
        first
    };
    let peak_kb = peak_memory_kb();
    let rate = per_second(report.events, secs);
    let bare = bare_loop(report.peak_pending.max(1), report.events.clamp(1_000_000, 20_000_000));
    let records: u64 = report.producers.iter().map(|p| p.sent).sum();
    let batches: u64 = report.producers.iter().map(|p| p.batches).sum();
    println!(
        "{path}: {:.2} s wall · {} events ({} idle), {:.2} per produced batch · {:.0} records/s simulated · {:>10.0} events/s ({:.3} of a bare loop with {} pending) · simulated/wall {:.1}x · peak memory {} MB",
        secs,
        report.events,
        report.idle_events,
        report.events as f64 / batches.max(1) as f64,
        per_second(records, secs),
        rate,
        rate / bare,
        report.peak_pending,
        report.simulated_ms as f64 / 1000.0 / secs,
        peak_kb / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        return one(&args[i + 1]);
    }
    let scenarios: Vec<String> = args.iter().filter(|a| a.ends_with(".yaml")).cloned().collect();
    let scenarios = if scenarios.is_empty() {
        vec![
            "scenarios/quickstart.yaml".to_string(),
            "benches/scenarios/keyed-24p.yaml".to_string(),
        ]
    } else {
        scenarios
    };

    // Baseline 1: a heap of 1,000 pending timers, each re-armed when it fires.
    let heap_rate = bare_loop(1000, 2_000_000);
    // Baseline 2: the engine with 1,000 ticking actors.
    let (events, engine_secs) = best_of(3, || {
        let actors = (0..1000).map(|i| (format!("t{i}"), Ticker)).collect();
        let net = Network::new(1000, Duration::from_millis(1), Duration::ZERO, rng::stream(0, "net"));
        let mut e = Engine::new(actors, net);
        e.run_until(Time::from_millis(2000), &mut |_| {});
        e.events()
    });
    let engine_rate = per_second(events, engine_secs);
    println!(
        "bare event loop (binary heap, 1000 pending):  {:>12.0} events/s",
        heap_rate
    );
    println!(
        "engine, 1000 timer-only actors:              {:>12.0} events/s  ({:.2} of the bare loop)",
        engine_rate,
        engine_rate / heap_rate
    );
    // Each scenario in a process of its own: its peak memory is its own.
    let me = std::env::current_exe().expect("the bench binary");
    for path in scenarios {
        let status = std::process::Command::new(&me)
            .args(["--one", &path])
            .status()
            .expect("runs");
        assert!(status.success(), "{path}: {status}");
    }
}
