//! Every implemented check fails in one scenario and passes in another, and the
//! scenario's `expect.violations` decides whether the run met its expectations.

use kafkasim::report::Report;
use kafkasim::scenario::{self, Scenario};

fn load(name: &str) -> Scenario {
    scenario::load(&crate::root().join("scenarios").join(format!("{name}.yaml"))).unwrap_or_else(|e| panic!("{e}"))
}

fn report(s: &Scenario) -> Report {
    crate::run(s)
}

fn violations(r: &Report, check: &str) -> usize {
    r.checks
        .iter()
        .find(|c| c.name == check)
        .expect("pinned check")
        .violations
        .len()
}

#[test]
fn lost_write_fails_after_power_loss_of_an_acks_1_leader() {
    let r = report(&load("power-loss-acks-1"));
    assert!(violations(&r, "lost-write") > 0);
    let v = &r.checks[0].violations[0];
    assert!(v.message.contains("power loss"), "{}", v.message);
    // The records lost were acknowledged: the producer counted them as acked.
    assert_eq!(r.producers[0].failed, 0);
}

#[test]
fn lost_write_passes_when_every_write_is_flushed_or_the_machine_survives() {
    assert_eq!(
        violations(&report(&load("power-loss-flush-every-message")), "lost-write"),
        0
    );
    assert_eq!(violations(&report(&load("quickstart")), "lost-write"), 0);
}

#[test]
fn at_least_once_fails_when_offsets_are_committed_before_processing() {
    let r = report(&load("commit-before-processing"));
    assert!(violations(&r, "at-least-once") > 0);
    assert!(r.consumer_groups[0].lost > 0);
    assert_eq!(
        r.consumer_groups[0].lost + r.consumer_groups[0].unique,
        r.producers[0].acked
    );
}

#[test]
fn at_least_once_passes_when_offsets_are_committed_after_processing() {
    let mut s = load("commit-before-processing");
    s.groups[0].commit = scenario::schema::CommitMode::AfterProcessing;
    s.expect_violations.clear();
    let r = report(&s);
    assert_eq!(violations(&r, "at-least-once"), 0);
    // The records of the interrupted poll are processed again after the restart.
    assert!(r.consumer_groups[0].duplicates > 0);
    assert!(r.passed);
}

#[test]
fn an_expected_violation_that_does_not_happen_fails_the_run() {
    let mut s = load("quickstart");
    s.expect_violations = vec!["lost-write".to_string()];
    assert!(!report(&s).passed);
}

#[test]
fn an_unexpected_violation_fails_the_run() {
    let mut s = load("power-loss-acks-1");
    s.expect_violations.clear();
    assert!(!report(&s).passed);
}

#[test]
fn liveness_fails_when_a_broker_stays_down_after_the_drain_and_passes_otherwise() {
    let yaml = |faults: &str| {
        format!(
            "name: t\nduration: 10s\ndrain: 10s\ncluster: {{ brokers: 3 }}\n\
             topics: [{{ name: t, replication.factor: 3 }}]\n\
             producers: [{{ name: p, topic: t, rate: 10/s, config: {{ acks: all }} }}]\n\
             consumers: [{{ group: g, topics: [t], config: {{ auto.offset.reset: earliest }} }}]\n\
             faults: {faults}\n"
        )
    };
    let run_yaml = |text: String| {
        let s = scenario::parse("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        report(&s)
    };
    // A crash during the drain, after the faults healed: the broker is fenced and its
    // replica leaves the ISR for good.
    let r = run_yaml(yaml("[{ at: 12s, crash: broker-2 }]"));
    assert!(violations(&r, "liveness") > 0);
    assert!(
        r.checks.iter().find(|c| c.name == "liveness").unwrap().violations[0]
            .message
            .contains("ISR")
    );
    let r = run_yaml(yaml("[{ at: 2s, crash: broker-2 }]"));
    assert_eq!(violations(&r, "liveness"), 0);
}

/// power-loss-acks-1: the consumer had been handed offsets up to 7999 when the log came
/// back with 3432 records in a new leader epoch; validating its position (KIP-320) it
/// finds epoch 0 ending at 3432 and moves back there, within the same assignment.
#[test]
fn nonmonotonic_poll_fails_when_a_position_is_reset_backwards() {
    let r = report(&load("power-loss-acks-1"));
    assert_eq!(violations(&r, "nonmonotonic-poll"), 1);
    let c = r.checks.iter().find(|c| c.name == "nonmonotonic-poll").unwrap();
    assert!(
        c.violations[0].message.contains("got offset 3432"),
        "{}",
        c.violations[0].message
    );
}

/// A member that gives a partition up and gets it back starts a new assignment: no
/// violation in assignors-compared, where partitions come and go, nor in the rollback of
/// a restarted member.
#[test]
fn nonmonotonic_poll_passes_across_rebalances_and_restarts() {
    assert_eq!(violations(&report(&load("assignors-compared")), "nonmonotonic-poll"), 0);
    assert_eq!(violations(&report(&load("consumer-rollback")), "nonmonotonic-poll"), 0);
}
