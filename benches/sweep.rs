//! The sweep benchmark: runs per second of `kafkasim sweep` with one job and with two,
//! per core, on `benches/sweep.yaml` (or the scenario named after `--`), and
//! peak memory. Run with `cargo bench --bench sweep [-- SCENARIO.yaml] [--seeds N]`.

mod common;

use common::peak_memory_kb;
use kafkasim::sweep::{self, Options, Plan};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .iter()
        .find(|a| a.ends_with(".yaml"))
        .cloned()
        .unwrap_or_else(|| "benches/sweep.yaml".to_string());
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(200);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let plan = Plan::new(&path, &bytes, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    println!("{path}: {seeds} seeds per measurement, each a whole run");
    let mut first = None;
    for jobs in [1usize, 2] {
        let opts = Options {
            from: 0,
            seeds,
            jobs: Some(jobs),
            shard: None,
            max_events: sweep::DEFAULT_MAX_EVENTS,
        };
        let start = Instant::now();
        let records = sweep::sweep(&plan, &opts, &|_| {});
        let secs = start.elapsed().as_secs_f64();
        let rate = records.len() as f64 / secs;
        let events: u64 = records.iter().map(|r| r.events).sum();
        let failed = records.iter().filter(|r| r.failure().is_some()).count();
        let base = *first.get_or_insert(rate);
        println!(
            "{jobs} job{}: {:>7.1} runs/s, {:>6.1} runs/s per core, {:>5.2}x one job · {:.0} events/s · {} events per run · {failed} failing",
            if jobs == 1 { " " } else { "s" },
            rate,
            rate / jobs as f64,
            rate / base,
            events as f64 / secs,
            events / records.len() as u64,
        );
    }
    println!("peak memory: {} MB", peak_memory_kb() / 1024);
}
