//! Checks: named observers of a run. Safety checks watch the run as it goes; every check
//! gives its verdict at the end, with violations that tell their causal story.
//!
//! Architecture invariant: checkers observe; they never change the run.

pub mod at_least_once;
pub mod controller;
pub mod lost_write;
pub mod nonmonotonic;
pub mod replication;

use crate::sim::Time;
use serde::Serialize;

/// A check DESIGN.md §8 names, and whether kafkasim runs it yet.
pub struct CheckInfo {
    pub name: &'static str,
    pub implemented: bool,
    pub fails_when: &'static str,
}

/// Every pinned check name, in report order.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo {
        name: "lost-write",
        implemented: true,
        fails_when: "a record acknowledged to its producer is missing from the partition's final log",
    },
    CheckInfo {
        name: "at-least-once",
        implemented: true,
        fails_when: "a record in a partition's final committed log was never processed by some group that reads the topic",
    },
    CheckInfo {
        name: "log-divergence",
        implemented: true,
        fails_when: "two replicas hold different records at the same offset below the leader's HW",
    },
    CheckInfo {
        name: "strong-isr",
        implemented: true,
        fails_when: "a replica in the ISR lacks a record below the leader's high watermark",
    },
    CheckInfo {
        name: "leader-in-isr",
        implemented: true,
        fails_when: "a partition's leader is not a member of its ISR",
    },
    CheckInfo {
        name: "hw-monotonic",
        implemented: true,
        fails_when: "a leader's high watermark moves backwards within one leader epoch",
    },
    CheckInfo {
        name: "single-leader",
        implemented: true,
        fails_when: "two brokers act as leader of one partition in the same epoch",
    },
    CheckInfo {
        name: "min-isr-ack",
        implemented: true,
        fails_when: "an acks=all write is acknowledged while the ISR was smaller than min.insync.replicas",
    },
    CheckInfo {
        name: "nonmonotonic-poll",
        implemented: true,
        fails_when: "a member receives offsets of one partition out of order within one assignment",
    },
    CheckInfo {
        name: "single-controller",
        implemented: true,
        fails_when: "two controllers act as active in the same epoch",
    },
    CheckInfo {
        name: "liveness",
        implemented: true,
        fails_when: "after faults heal and the drain ends, a partition has no leader, the ISR has not recovered, a group still lags, a producer still holds records, or there is no active controller",
    },
];

#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub at: Time,
    pub message: String,
    /// How the check failed, in a word that does not depend on names or numbers
    /// (`power-loss`, `isr-not-recovered`): two failures of one check with the same
    /// kind failed the same way.
    pub kind: &'static str,
}

/// A check's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub violations: Vec<Violation>,
    /// Whether the scenario's `expect.violations` lists it.
    pub expected_to_fail: bool,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
    /// Whether the check came out as the scenario expects.
    pub fn as_expected(&self) -> bool {
        self.passed() != self.expected_to_fail
    }
}

/// At most this many violations are listed per check; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// Offsets (or sequences) `from..to` as people count them: `5` for one, `6–7` for two
/// (the last one included).
pub fn span_text(from: u64, to: u64) -> String {
    if to <= from + 1 {
        from.to_string()
    } else {
        format!("{from}–{}", to - 1)
    }
}

/// `offset 5 (1 record)`, `offsets 6–7 (2 records)`.
pub fn offsets_text(from: u64, to: u64) -> String {
    let n = to.saturating_sub(from);
    if n == 1 {
        format!("offset {from} (1 record)")
    } else {
        format!("offsets {} ({n} records)", span_text(from, to))
    }
}

/// Keeps the first [`MAX_LISTED`] violations and adds one line counting the rest.
pub fn cap(mut violations: Vec<Violation>) -> Vec<Violation> {
    if violations.len() > MAX_LISTED {
        let rest = violations.len() - MAX_LISTED;
        let at = violations[MAX_LISTED].at;
        violations.truncate(MAX_LISTED);
        violations.push(Violation {
            at,
            message: format!("… and {rest} more violations of this check"),
            kind: "more",
        });
    }
    violations
}
