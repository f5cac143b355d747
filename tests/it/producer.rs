//! The producer's partitioners, through whole runs (KAFKA.md §3.3).

use kafkasim::report::Report;

fn report(partitions: u32, partitioner: &str, extra: &str) -> Report {
    crate::run_yaml(&format!(
        "name: t\nduration: 4s\ndrain: 2s\ncluster: {{ brokers: 1 }}\n\
         topics: [{{ name: t, partitions: {partitions} }}]\n\
         producers: [{{ name: p, topic: t, rate: 100/s, config: {{ acks: 1, partitioner.class: {partitioner}{extra} }} }}]\n"
    ))
}

fn records_per_partition(r: &Report) -> Vec<u64> {
    r.partitions
        .iter()
        .map(|p| p.log_end_offsets.values().copied().max().unwrap_or(0))
        .collect()
}

/// KAFKA-9965, derived in KAFKA.md §3.3: with two partitions the first call of
/// `RoundRobinPartitioner.partition()` always gets an even counter, i.e. partition 0, which
/// never has an open batch, so the append aborts and the second call (odd) picks partition
/// 1. Every record lands on partition 1.
#[test]
fn round_robin_with_two_partitions_sends_everything_to_partition_1() {
    let r = report(2, "round-robin", ", linger.ms: 50");
    assert_eq!(records_per_partition(&r), vec![0, 400]);
}

/// `DefaultPartitioner` ≤ 2.3 with null keys: one counter step per record, so 400 records
/// over 4 partitions are 100 each, whatever the random start.
#[test]
fn default_2_3_spreads_null_keys_evenly() {
    let r = report(4, "default-2.3", "");
    assert_eq!(records_per_partition(&r), vec![100, 100, 100, 100]);
}

/// KIP-480: a null-key record that would open a new batch moves the sticky partition, so
/// two consecutive batches never go to the same partition, and with one partition
/// everything stays on it.
#[test]
fn sticky_2_4_moves_on_every_new_batch() {
    let r = report(1, "sticky-2.4", ", linger.ms: 20");
    assert_eq!(records_per_partition(&r), vec![400]);
    let r = report(3, "sticky-2.4", ", linger.ms: 20");
    let counts = records_per_partition(&r);
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 400);
}

#[test]
fn kafkas_ambiguous_default_partitioner_name_is_refused_with_a_hint() {
    let yaml = "name: t\nduration: 1s\ncluster: { brokers: 1 }\ntopics: [{ name: t }]\n\
                producers: [{ name: p, topic: t, rate: 1/s, config: { partitioner.class: org.apache.kafka.clients.producer.internals.DefaultPartitioner } }]\n";
    let e = kafkasim::scenario::parse("t.yaml", yaml).unwrap_err();
    assert!(e.message.contains("default-2.3"), "{}", e.message);
}

/// Lost answers and lost requests with retries: without idempotence batches are appended
/// twice and out of order; with it, the broker's window of recent sequences recognises
/// the retries and refuses batches that skip ahead.
#[test]
fn idempotence_prevents_the_duplicate_a_retry_would_write() {
    let s = kafkasim::scenario::load(&crate::root().join("scenarios/retries-without-idempotence.yaml")).unwrap();
    let r = crate::run(&s);
    let by_name = |n: &str| r.producers.iter().find(|p| p.name == n).expect("producer");
    assert!(by_name("plain").duplicates_written > 0);
    assert!(by_name("plain").retried_batches > 0);
    assert_eq!(by_name("idem").duplicates_written, 0);
    assert!(by_name("idem").retried_batches > 0);
    // The dropped requests land after later ones without idempotence, and in order with it.
    assert!(by_name("plain").reordered > 0);
    assert_eq!(by_name("idem").reordered, 0);
}

/// `hot-share: 80`: four records in five carry `key-0`, whatever the other keys do, so
/// its partition holds at least 80% of the records (plus its share of the rest).
#[test]
fn a_hot_key_takes_its_share_and_value_sizes_follow_their_range() {
    let r = crate::run_yaml(
        "name: t\nduration: 10s\ndrain: 2s\ncluster: { brokers: 1 }\ntopics: [{ name: t, partitions: 8 }]\n\
         producers: [{ name: p, topic: t, rate: 500/s, keys: { count: 50, hot-share: 80 }, \
         value.bytes: { min: 100, max: 300 }, config: { acks: 1 } }]\n",
    );
    let hot = kafkasim::kafka::partitioner::partition_for_key(b"key-0", 8) as usize;
    let counts: Vec<u64> = r
        .partitions
        .iter()
        .map(|p| p.log_end_offsets.values().copied().max().unwrap_or(0))
        .collect();
    let total: u64 = counts.iter().sum();
    assert_eq!(total, 5000);
    assert!(counts[hot] * 100 >= total * 80, "{counts:?}");
    // Bytes per record: 7 of framing, 5 or 6 of key, 100..=300 of value, plus batch headers.
    let p = &r.producers[0];
    let per_record = p.bytes / p.acked;
    assert!((180..=280).contains(&per_record), "{per_record}");
}

/// One partition, 1000 records of 1 KB a second (1007 bytes with framing: 16 fit a 16 KB
/// batch), `buffer.memory` of four batches. The broker stalls from 1s to 4s. The batches
/// in flight and queued hold the four allocations within a few tens of milliseconds, so
/// from about 1.02s `send()` blocks. With `max.block.ms` 500 each blocked call gives up
/// after 500ms (1.52, 2.02, 2.52, 3.02, 3.52s), and the call begun at 3.52s gets memory
/// when the broker answers just after 4s: five records refused. Then the application
/// hands over the ~3000 records that fell due during the stall, four batches per round
/// trip, blocking again and again for another ~70ms: about 3.05s blocked in all. With the
/// default `max.block.ms` (60s) nothing is refused and the wait is about the same.
#[test]
fn a_full_buffer_blocks_send_and_max_block_ms_refuses_records() {
    let run = |max_block: &str| {
        crate::run_yaml(&format!(
            "name: t\nduration: 6s\ndrain: 2s\ncluster: {{ brokers: 1 }}\ntopics: [{{ name: t }}]\n\
             producers: [{{ name: p, topic: t, rate: 1000/s, value.bytes: 1000,\n\
               config: {{ acks: 1, buffer.memory: 65536{max_block} }} }}]\n\
             faults: [{{ at: 1s, pause: broker-1, for: 3s }}]\n"
        ))
    };
    let r = run(", max.block.ms: 500");
    let p = &r.producers[0];
    assert_eq!(p.refused, 5, "{p:?}");
    assert_eq!(p.acked + p.refused, 6000);
    assert!((2950.0..3200.0).contains(&p.blocked_ms), "{}", p.blocked_ms);
    let r = run("");
    let p = &r.producers[0];
    assert_eq!((p.refused, p.acked), (0, 6000));
    assert!((2950.0..3200.0).contains(&p.blocked_ms), "{}", p.blocked_ms);
}

/// KIP-794 against KAFKA-10888. Broker 2 leads partition 1 and answers 50ms late each way;
/// with one request in flight it drains one batch per 100ms, less than 5000 records a
/// second need, so batches queue for it. Without adaptive weights the sticky partitioner
/// picks the two partitions alike, and even stays longer on the slow one (its last batch
/// is never full when the switch is due, so the switch waits for twice `batch.size`):
/// most records go to the slow broker. With them, a partition weighs `max queue + 1 -
/// its queue`, and the slow one gets the smaller share.
#[test]
fn adaptive_partitioning_sends_less_to_a_slow_leader() {
    let run = |adaptive: bool| {
        let r = crate::run_yaml(&format!(
            "name: t\nduration: 10s\ndrain: 5s\ncluster: {{ brokers: 2 }}\n\
             topics: [{{ name: t, partitions: 2, replicas: [[1], [2]] }}]\n\
             producers: [{{ name: p, topic: t, rate: 5000/s, config: {{ acks: 1,\n\
               max.in.flight.requests.per.connection: 1, partitioner.adaptive.partitioning.enable: {adaptive} }} }}]\n\
             faults: [{{ at: 0s, slow: {{ nodes: [broker-2], latency: 50ms }} }}]\n"
        ));
        let counts = records_per_partition(&r);
        counts[1] as f64 / (counts[0] + counts[1]) as f64
    };
    let (with, without) = (run(true), run(false));
    assert!(with < 0.4, "adaptive: {with}");
    assert!(without > 0.6, "uniform: {without}");
}

/// `partitioner.availability.timeout.ms`: broker 2 (partition 1) stalls for 6s. Without
/// the timeout, partition 1 still weighs at least 1 in KIP-794's table and keeps being
/// picked now and then, each time collecting records that wait out the stall. With 500ms
/// the partition is left out of the table once its leader has had batches ready and
/// none taken for that long, so it gets clearly fewer records.
#[test]
fn availability_timeout_leaves_out_a_stalled_leader() {
    let run = |timeout: u32| {
        let r = crate::run_yaml(&format!(
            "name: t\nduration: 10s\ndrain: 5s\ncluster: {{ brokers: 2 }}\n\
             topics: [{{ name: t, partitions: 2, replicas: [[1], [2]] }}]\n\
             producers: [{{ name: p, topic: t, rate: 1000/s, config: {{ acks: 1, partitioner.availability.timeout.ms: {timeout} }} }}]\n\
             faults: [{{ at: 2s, pause: broker-2, for: 6s }}]\n"
        ));
        records_per_partition(&r)[1]
    };
    let (with, without) = (run(500), run(0));
    assert!(with + 500 < without, "with the timeout {with}, without {without}");
}

/// The reproduction of stale producer state. Broker 1 leads and is cut off at
/// 10s: it appends the producer's batches but cannot replicate them, broker 2 takes over,
/// and at 20s broker 1 truncates them away as a follower. At 30s broker 2 crashes and
/// broker 1 leads again. The producer's retries of batches broker 1 once held must be
/// appended anew (its producer state was rebuilt from the truncated log), and the
/// batches broker 2 took in the meantime are known to broker 1, which replicated them:
/// every record is acknowledged, none twice, and nothing acknowledged is lost.
#[test]
fn leadership_returns_to_a_broker_that_truncated_the_producers_batches() {
    let r = crate::run_yaml(
        "name: leadership-returns\nduration: 80s\ndrain: 30s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, partitions: 1, replication.factor: 3, replicas: [[1, 2, 3]] }]\n\
         producers: [{ name: app, topic: t, rate: 50/s, config: { acks: all, request.timeout.ms: 5000 } }]\n\
         faults:\n  - { at: 10s, isolate: broker-1 }\n  - { at: 20s, heal: all }\n  - { at: 30s, crash: broker-2 }\n",
    );
    let p = &r.producers[0];
    assert_eq!((p.sent, p.acked, p.failed), (4000, 4000, 0), "{p:?}");
    assert_eq!((p.duplicates_written, p.reordered), (0, 0));
    assert!(r.passed, "{}", kafkasim::report::text::render(&r));
    assert_eq!(r.partitions[0].log_end_offsets.values().max(), Some(&4000));
}

/// KIP-360: after an unclean election the new leader's log ends before sequences the
/// producer saw acknowledged, so its next batch is out of order. The producer bumps its
/// epoch locally and starts the partition's sequences at 0, and goes on writing: the
/// records acknowledged before are lost (unclean election), but none after.
#[test]
fn an_out_of_order_sequence_after_a_gap_bumps_the_epoch() {
    let s = kafkasim::scenario::load(&crate::root().join("scenarios/unclean-leader-election.yaml")).unwrap();
    let r = crate::run(&s);
    let p = &r.producers[0];
    assert_eq!(p.errors.get("OUT_OF_ORDER_SEQUENCE_NUMBER"), Some(&1), "{p:?}");
    assert_eq!((p.acked, p.failed), (p.sent, 0));
    let leo = *r.partitions[0].log_end_offsets.values().max().expect("replicas");
    assert!(leo < p.acked, "the unclean election loses acknowledged records");
}

/// `RecordAccumulator.drain` (KAFKA.md §7.2): once one partition's batch has lingered, the
/// head batch of every partition the same broker leads goes in the same request. Four
/// partitions on one broker, 800 records a second spread one by one (`DefaultPartitioner`
/// ≤ 2.3): about one request per linger, carrying all four partitions' batches, not one
/// request per batch.
#[test]
fn a_ready_broker_takes_the_head_batch_of_every_partition_it_leads() {
    let r = crate::run_yaml(
        "name: t\nduration: 4s\ndrain: 2s\ncluster: { brokers: 1 }\ntopics: [{ name: t, partitions: 4 }]\n\
         producers: [{ name: p, topic: t, rate: 800/s, config: { acks: 1, partitioner.class: default-2.3, linger.ms: 20 } }]\n",
    );
    let p = &r.producers[0];
    assert_eq!(p.acked, 3200);
    assert!(
        p.batches >= 3 * p.requests,
        "{} batches in {} requests",
        p.batches,
        p.requests
    );
}

/// Every record handed to `send()` is acknowledged, failed, sent unacknowledged (acks=0),
/// refused by `send()`, or still pending when the run ends: the figures add up, here
/// for a workload far beyond what one broker takes (10⁹ records a second). The
/// application falls behind and keeps handing over its backlog during the drain, so
/// records are still queued at the end: `liveness` names the producer and partition.
#[test]
fn a_producers_figures_add_up_and_records_it_still_holds_fail_liveness() {
    let r = crate::run_yaml(
        "name: t\nduration: 1s\ndrain: 5s\ncluster: { brokers: 1 }\ntopics: [{ name: t }]\n\
         producers: [{ name: p, topic: t, rate: 1000000000/s, config: { acks: 1 } }]\n",
    );
    let p = &r.producers[0];
    assert_eq!(
        p.sent,
        p.acked + p.failed + p.unacknowledged + p.refused + p.pending,
        "{p:?}"
    );
    assert_eq!(p.offered, 1_000_000_000);
    assert!(p.pending > 0 && p.sent < p.offered, "{p:?}");
    let liveness = r.checks.iter().find(|c| c.name == "liveness").expect("a check");
    assert!(!liveness.passed);
    assert!(
        liveness.violations[0].message.starts_with("p still holds ")
            && liveness.violations[0].message.contains("for t-0 after the drain"),
        "{:?}",
        liveness.violations
    );
    // With buffer.memory full for max.block.ms, send() refuses records: counted apart
    // from the failures, and the figures still add up.
    let r = crate::run_yaml(
        "name: t\nduration: 6s\ndrain: 2s\ncluster: { brokers: 1 }\ntopics: [{ name: t }]\n\
         producers: [{ name: p, topic: t, rate: 1000/s, value.bytes: 1000,\n\
           config: { acks: 1, buffer.memory: 65536, max.block.ms: 500 } }]\n\
         faults: [{ at: 1s, pause: broker-1, for: 3s }]\n",
    );
    let p = &r.producers[0];
    assert_eq!((p.refused, p.failed, p.pending), (5, 0, 0), "{p:?}");
    assert_eq!(p.sent, p.acked + p.refused);
    assert!(r.passed, "{}", kafkasim::report::text::render(&r));
}
