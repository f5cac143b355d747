//! kafkasim: a deterministic simulator of Apache Kafka.
//!
//! A discrete-event engine runs brokers, producers and consumer-group members as sans-IO
//! actors on a seeded virtual clock and network, injects faults on schedule, and checks
//! that acknowledged writes survive and that every group processes every committed record.
//! The same scenario and seed always give the same run, byte for byte.
//!
//! Codemap (see ARCHITECTURE.md):
//! - [`sim`]: the Kafka-agnostic engine: time, event queue, RNG streams, network, lifecycle.
//! - [`kafka`]: the Kafka model, one role per file: broker, producer, consumer, log,
//!   protocol, partitioner, placement, assignor.
//! - [`scenario`]: the YAML format, validation with file/line/column errors, defaults,
//!   the nemesis, variants, and writing a run back out as a scenario (freezing).
//! - [`check`]: named checks (`lost-write`, `at-least-once`, …).
//! - [`report`]: the JSON and text reports.
//! - [`run`]: one run of a scenario, from file to report.
//! - [`sweep`]: many runs: seeds, combinations of settings, shards, shrinking.
//! - [`assign`]: the `kafkasim assign` format: a group in JSON, Kafka's assignment out.

pub mod assign;
pub mod check;
pub mod compare;
pub mod kafka;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod trace;
