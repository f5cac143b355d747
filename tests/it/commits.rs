//! Offset commits through whole runs (KAFKA.md §4.3, §7.8): a member committing after
//! processing sends a refused or lost commit again, and the coordinator acknowledges a
//! commit only once the replicas it must survive on hold it.

use kafkasim::report::Report;

fn failed(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .flat_map(|c| c.violations.iter().map(move |v| format!("{}: {}", c.name, v.message)))
        .collect()
}

/// A cooperative-sticky member keeps reading what it owns during a rebalance, and the
/// client refuses its commits meanwhile (REBALANCE_IN_PROGRESS: it is not stable). g-1 is
/// stuck in a 20s poll from 20s, so the rebalance g-2 starts at 21s lasts until 40s, and
/// the producer stops at 30s: g-0 reaches the high watermark while every commit it makes
/// is refused. Once stable again it commits what it processed, at its next poll, though
/// it has nothing new to process: the group ends committed at the high watermark.
#[test]
fn a_commit_refused_during_a_rebalance_is_sent_again_after_it() {
    let r = crate::run_yaml(
        "name: t\nduration: 30s\ndrain: 20s\ncluster: { brokers: 1 }\n\
         topics: [{ name: t, partitions: 2 }]\n\
         producers: [{ name: p, topic: t, rate: 200/s }]\n\
         consumers: [{ group: g, members: 3, topics: [t], processing: 1ms, commit: after-processing,\n\
           start-at: { g-2: 21s }, stall: { member: g-1, at: 20s, for: 20s },\n\
           config: { auto.offset.reset: earliest, partition.assignment.strategy: cooperative-sticky } }]\n",
    );
    let g = &r.consumer_groups[0];
    assert!(g.commit_failures > 0, "the rebalance refused commits");
    assert!(failed(&r).is_empty(), "{:#?}", failed(&r));
    assert!(g.lag.values().all(|&l| l == 0), "{:?}", g.lag);
}

/// The coordinator dies at 20s while g-0 is stuck in a poll (17s to 23s) with the last
/// records the producer sent before it crashed at 17s. The commit after that poll fails
/// (NETWORK_EXCEPTION: the coordinator's process is gone), which marks the coordinator
/// unknown; the member looks it up again and sends the commit again, to broker-3 until
/// the controller fences it at about 27s and then to the new leader of the group's
/// `__consumer_offsets` partition. Nothing is left to process, yet the group ends
/// committed at the high watermark.
#[test]
fn a_commit_lost_with_its_coordinator_is_sent_to_the_next_one() {
    let r = crate::run_yaml(
        "name: t\nduration: 60s\ndrain: 20s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, partitions: 1, replication.factor: 3, replicas: [[1, 2, 3]] }]\n\
         producers: [{ name: p, topic: t, rate: 200/s }]\n\
         consumers: [{ group: g, topics: [t], processing: 1ms, commit: after-processing,\n\
           stall: { member: g-0, at: 16995ms, for: 6s }, config: { auto.offset.reset: earliest } }]\n\
         faults: [{ at: 17s, crash: p }, { at: 20s, crash: coordinator(g), for: 20s }]\n",
    );
    let g = &r.consumer_groups[0];
    assert!(g.commit_failures > 0, "the commit after the stalled poll failed");
    assert!(failed(&r).is_empty(), "{:#?}", failed(&r));
    assert_eq!(g.lag["t-0"], 0);
}
