//! Kafka's replication rules, pinned through whole runs: who is elected, and how long an
//! acks=all write waits for the high watermark.

use kafkasim::report::Report;

fn report(yaml: &str) -> Report {
    crate::run_yaml(yaml)
}

/// The controller elects the first replica in assignment order that is alive and in the
/// ISR (`PartitionChangeBuilder.electAnyLeader`), not the lowest id, and the epoch moves
/// on; no preferred-leader rebalance moves it back.
#[test]
fn election_takes_the_first_live_isr_replica_in_assignment_order() {
    let r = report(
        "name: t\nduration: 15s\ndrain: 5s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, replication.factor: 3, replicas: [[3, 2, 1]] }]\n\
         producers: [{ name: p, topic: t, rate: 10/s, config: { acks: all } }]\n\
         faults: [{ at: 1s, crash: broker-3 }]\n",
    );
    let p = &r.partitions[0];
    assert_eq!(p.leader, Some(2));
    assert_eq!(p.leader_epoch, 1);
    assert_eq!(p.isr.len(), 3, "broker 3 rejoined in the drain: {:?}", p.isr);
    assert!(r.passed);
}

/// With a fixed 10ms one-way latency and no other load, an acks=1 write is answered one
/// round trip after it is sent; an acks=all write needs one more, because the follower
/// must fetch again before the leader learns it has the records (KAFKA.md §1.1): the
/// parked fetch returns the batch (one leg), the follower's next fetch carries the new
/// offset (another leg), and only then does the high watermark move.
#[test]
fn acks_all_waits_one_follower_round_trip_more_than_acks_1() {
    let run_with = |acks: &str| {
        report(&format!(
            "name: t\nduration: 5s\ndrain: 2s\ncluster: {{ brokers: 3, network: {{ latency: 10ms }} }}\n\
             topics: [{{ name: t, replication.factor: 3 }}]\n\
             producers: [{{ name: p, topic: t, rate: 2/s, config: {{ acks: {acks}, linger.ms: 0 }} }}]\n"
        ))
    };
    // The median record; the first one also waits for the producer's first metadata
    // round trip.
    assert_eq!(run_with("1").producers[0].latency_ms.p50, 20.0);
    assert_eq!(run_with("all").producers[0].latency_ms.p50, 40.0);
}
