//! Throughput of whole runs, against two baselines measured in the same process:
//! a bare event loop (a binary heap of timers, no model) and the engine driving actors
//! that only re-arm timers. Run with `cargo bench --bench engine`.

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

fn main() {
    let scenarios: Vec<String> = std::env::args().skip(1).filter(|a| a.ends_with(".yaml")).collect();
    let scenarios = if scenarios.is_empty() {
        vec!["scenarios/quickstart.yaml".to_string()]
    } else {
        scenarios
    };

    // Baseline 1: a heap of 1,000 pending timers, each re-armed when it fires.
    let target = 2_000_000u64;
    let (_, heap_secs) = best_of(3, || {
        let mut heap: BinaryHeap<Reverse<(u64, u64)>> = (0..1000).map(|i| Reverse((i, i))).collect();
        let mut seq = 1000;
        for _ in 0..target {
            let Reverse((t, _)) = heap.pop().expect("never empty");
            seq += 1;
            heap.push(Reverse((t + 997, seq)));
        }
        heap.len()
    });
    // Baseline 2: the engine with 1,000 ticking actors.
    let (events, engine_secs) = best_of(3, || {
        let actors = (0..1000).map(|i| (format!("t{i}"), Ticker)).collect();
        let net = Network::new(1000, Duration::from_millis(1), Duration::ZERO, rng::stream(0, "net"));
        let mut e = Engine::new(actors, net);
        e.run_until(Time::from_millis(2000), &mut |_| {});
        e.events()
    });
    let heap_rate = per_second(target, heap_secs);
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

    for path in scenarios {
        let s = scenario::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        let (report, secs) = best_of(5, || {
            run(
                &s,
                RunOptions {
                    seed: None,
                    trace: None,
                    progress: None,
                    source: path.clone(),
                    ..Default::default()
                },
            )
            .expect("no I/O")
        });
        let rate = per_second(report.events, secs);
        let records: u64 = report.producers.iter().map(|p| p.sent).sum();
        println!(
            "{path}: {} events in {:.1} ms: {:>10.0} events/s ({:.2} of the bare loop), {:.0} records/s, simulated/wall {:.0}x",
            report.events,
            secs * 1000.0,
            rate,
            rate / heap_rate,
            per_second(records, secs),
            report.simulated_ms as f64 / 1000.0 / secs
        );
    }
}
