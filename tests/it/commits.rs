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
/// A one-partition topic on broker 1 alone, a producer at 200 records/s, and a group of
/// one committing after processing, under `faults` (YAML list items).
fn one_member_run(faults: &str) -> Report {
    crate::run_yaml(&format!(
        "name: t\nduration: 60s\ndrain: 20s\ncluster: {{ brokers: 3 }}\n\
         topics: [{{ name: t, partitions: 1, replication.factor: 1, replicas: [[1]] }}]\n\
         producers: [{{ name: p, topic: t, rate: 200/s }}]\n\
         consumers: [{{ group: g, topics: [t], processing: 1ms, commit: after-processing,\n\
           config: {{ auto.offset.reset: earliest }} }}]\n\
         faults:\n{faults}"
    ))
}

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

/// broker-3 coordinates g (it leads the group's `__consumer_offsets` partition) and is
/// cut off from the partition's other replicas from 19.9s; the member still reaches it,
/// and commits the last records the producer sent before it crashed at 20s. Kafka answers
/// a commit once the partition's high watermark covers it, that is once every in-sync
/// replica holds it, so these commits wait and time out (COORDINATOR_NOT_AVAILABLE); the
/// member keeps sending them. broker-3 dies at 25s and broker-2 takes the partition over
/// at about 33s with what it holds: had broker-3 acknowledged the commits it could not
/// copy, they would be lost with it and the member, believing them done, would never
/// commit again. It commits to broker-2 instead, and the group ends at the high watermark.
#[test]
fn a_commit_is_acknowledged_only_once_the_in_sync_replicas_hold_it() {
    let r = one_member_run(
        "- { at: 19900ms, partition: [[broker-3], [broker-1, broker-2]], for: 10s }\n\
           - { at: 20s, crash: p }\n\
           - { at: 25s, crash: broker-3, for: 20s }\n",
    );
    let coordinator = |b: u32| r.brokers.iter().find(|x| x.broker == b).unwrap().coordinates.clone();
    assert_eq!(coordinator(2), vec!["g".to_string()], "broker-2 took the group over");
    assert!(
        r.timeline
            .iter()
            .any(|e| e.text.contains("g-0") && e.text.contains("COORDINATOR_NOT_AVAILABLE")),
        "the commits broker-3 could not copy timed out"
    );
    assert!(failed(&r).is_empty(), "{:#?}", failed(&r));
    assert_eq!(r.consumer_groups[0].lag["t-0"], 0);
}

/// broker-2, a follower of the group's `__consumer_offsets` partition, is down from 10s
/// to 25s and misses every commit made meanwhile (acknowledged by broker-3 and broker-1
/// once the controller fenced broker-2 out of the ISR). Kafka lets a follower back into
/// the ISR only once its log reaches the high watermark: broker-2 copies the commit
/// records it missed by fetching, as it would any records. broker-3, the coordinator, dies at 35s and broker-2, first in the
/// partition's replica order, takes over: it must hold the commits the member made while
/// it was down, since the member, its records all processed by 20s, commits nothing new.
#[test]
fn a_follower_that_missed_commits_catches_up_before_it_rejoins_the_isr() {
    let r = one_member_run(
        "- { at: 10s, crash: broker-2, for: 15s }\n\
           - { at: 20s, crash: p }\n\
           - { at: 35s, crash: broker-3 }\n",
    );
    assert!(
        r.timeline
            .iter()
            .any(|e| e.text.contains("__consumer_offsets-") && e.text.contains("leader broker-3 -> broker-2")),
        "broker-2 took the group over"
    );
    assert!(failed(&r).is_empty(), "{:#?}", failed(&r));
    assert_eq!(r.consumer_groups[0].lag["t-0"], 0);
}

/// `nemesis-safe-network` at seed 46: broker-3 leads the group's `__consumer_offsets`
/// partition in epoch 1, is cut off from the controller, which fences it at 55.25s
/// (epoch 2, no leader), and is elected again at 56.2s (epoch 3) without ever having
/// learnt of epoch 2. As far as it knows it stayed leader: Kafka's coordinator keeps its
/// shard and only raises the epoch (`CoordinatorRuntime.scheduleLoadOperation` on an
/// active context), so the commits it holds are answered, not failed with
/// NOT_COORDINATOR as an unloaded shard would fail them.
#[test]
fn a_coordinator_that_stays_leader_in_a_new_epoch_keeps_its_pending_commits() {
    let path = crate::root().join("scenarios/nemesis-safe-network.yaml");
    let s = kafkasim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = kafkasim::run::RunOptions {
        seed: Some(46),
        ..Default::default()
    };
    let r = kafkasim::run::run(&s, opts).expect("no trace");
    let at = |text: &str| r.timeline.iter().find(|e| e.text.contains(text)).map(|e| e.at_ms);
    let reelected = at("__consumer_offsets-9: leader none -> broker-3, epoch 3");
    assert_eq!(
        reelected,
        Some(56_201),
        "the seed still re-elects broker-3 with no leader between"
    );
    let failed_after: Vec<&str> = r
        .timeline
        .iter()
        .filter(|e| e.at_ms >= 56_000 && e.text.contains("NOT_COORDINATOR"))
        .map(|e| e.text.as_str())
        .collect();
    assert!(failed_after.is_empty(), "{failed_after:#?}");
    assert!(failed(&r).is_empty(), "{:#?}", failed(&r));
}
