//! The classic group protocol through whole runs (KAFKA.md §4.2–4.3): generations, the
//! initial delay, session timeouts, static members and poll timeouts.

use kafkasim::report::Report;

fn run(name: &str) -> Report {
    let path = crate::root().join("scenarios").join(format!("{name}.yaml"));
    crate::run(&kafkasim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

/// When the timeline says `text` first, in milliseconds.
fn first(r: &Report, text: &str) -> u64 {
    r.timeline
        .iter()
        .find(|e| e.text.contains(text))
        .unwrap_or_else(|| panic!("no timeline entry with {text:?}"))
        .at_ms
}

/// consumer-group-basics: the new group waits group.initial.rebalance.delay.ms (3s) from
/// the first JoinGroup; billing-1 joined meanwhile, so it waits another 3s
/// (`InitialDelayedJoin`), and generation 1 is stable just after 6s. billing-2 joins at
/// 20s: generation 2. Range over 4 partitions gives 2 members two each, then 3 members
/// 2, 1 and 1 in member-id order (billing-0, billing-1, billing-2): orders-0 and orders-1
/// stay with billing-0, orders-2 with billing-1, and only orders-3 changes owner.
/// billing-1's clean shutdown at 30s sends LeaveGroup: generation 3 is stable within
/// milliseconds (no session timeout), billing-2 taking orders-2 as well (one more move);
/// billing-1 back at 40s makes generation 4, as generation 2 was (one more move).
#[test]
fn a_new_member_makes_a_new_generation() {
    let r = run("consumer-group-basics");
    let stable = first(&r, "is stable in generation 1");
    assert!((6000..6100).contains(&stable), "{stable}");
    let left = first(&r, "is stable in generation 3");
    assert!((30_000..30_100).contains(&left), "{left}");
    let g = &r.consumer_groups[0];
    assert_eq!((g.generation, g.rebalances, g.partitions_moved), (4, 4, 3));
    assert_eq!(g.protocol, "range");
    let second = &g.generations[1].assignment;
    assert_eq!(second["billing-0"], vec!["orders-0", "orders-1"]);
    assert_eq!(second["billing-1"], vec!["orders-2"]);
    assert_eq!(second["billing-2"], vec!["orders-3"]);
    assert_eq!(g.generations[2].assignment["billing-2"], vec!["orders-2", "orders-3"]);
    assert_eq!(&g.generations[3].assignment, second);
}

/// consumer-rollback: a static member restarted within session.timeout.ms takes its
/// partition back with no rebalance (one rebalance in all: the first), and reads 6..8
/// again from the committed offset 6, after processing 6 and 7 before its crash: two
/// duplicates, both from the restart.
#[test]
fn a_static_member_comes_back_without_a_rebalance() {
    let g = &run("consumer-rollback").consumer_groups[0];
    assert_eq!(g.rebalances, 1);
    assert_eq!((g.unique, g.duplicates, g.lost), (9, 2, 0));
    assert_eq!(
        g.duplicates_by_reason
            .get("consumer restart: rollback to the committed offset"),
        Some(&2)
    );
    assert_eq!(g.delivery, "at-least-once");
}

/// commit-before-processing: the member heartbeats every 2s from its join at about 5s, so
/// its last heartbeat before the crash at 7.25s is at about 7s. Restarted at 10s it joins
/// as a new member; the coordinator waits for the old member to miss session.timeout.ms
/// (6s), so generation 2 is stable at about 13s, not at once.
#[test]
fn a_restarted_dynamic_member_waits_for_the_old_session_to_expire() {
    let r = run("commit-before-processing");
    let stable = first(&r, "is stable in generation 2");
    assert!((12_900..13_300).contains(&stable), "{stable}");
    assert_eq!(r.consumer_groups[0].delivery, "at-most-once");
}

/// slow-consumer: reports-1's poll from just before 10s hangs until 40s; after
/// max.poll.interval.ms (10s) it leaves and forgets its generation, so its commit at 40s
/// fails in the client (CommitFailedException), and the records it was stuck on were
/// also processed by reports-0.
#[test]
fn a_poll_longer_than_max_poll_interval_costs_the_membership() {
    let r = run("slow-consumer");
    let timeout = first(&r, "took longer than max.poll.interval.ms");
    assert!((19_000..20_100).contains(&timeout), "{timeout}");
    assert!(first(&r, "CommitFailedException") >= 40_000);
    let g = &r.consumer_groups[0];
    assert_eq!((g.poll_timeouts, g.commit_failures, g.lost), (1, 1, 0));
    assert!(g.duplicates_by_reason["slow consumer (max.poll.interval.ms)"] > 0);
    assert_eq!(g.generation, 3);
}

/// The coordinator is the leader of the group's `__consumer_offsets` partition, so it
/// moves when that broker dies. The new leader loads the group from what the old one
/// stored there (stable, generation 1, the same members), so the members find it, go on
/// heartbeating and committing (commits are copied to the partition's replicas) without
/// a rebalance. Nothing is missed and the committed offsets reach the high watermark.
#[test]
fn the_coordinator_moves_with_the_offsets_partition() {
    let yaml = |faults: &str| {
        format!(
            "name: t\nduration: 30s\ndrain: 20s\ncluster: {{ brokers: 3 }}\n\
             topics: [{{ name: t, partitions: 3, replication.factor: 3 }}]\n\
             producers: [{{ name: p, topic: t, rate: 100/s }}]\n\
             consumers: [{{ group: g, members: 2, topics: [t], commit: after-processing,\n\
               config: {{ auto.offset.reset: earliest, session.timeout.ms: 6000 }} }}]\n{faults}"
        )
    };
    let before = crate::run_yaml(&yaml(""));
    let first = before
        .brokers
        .iter()
        .find(|b| b.coordinates.contains(&"g".to_string()))
        .unwrap()
        .broker;
    let r = crate::run_yaml(&yaml(&format!(
        "faults: [{{ at: 10s, crash: broker-{first} }}, {{ at: 30s, restart: broker-{first} }}]\n"
    )));
    let now = r
        .brokers
        .iter()
        .find(|b| b.coordinates.contains(&"g".to_string()))
        .unwrap()
        .broker;
    assert_ne!(now, first, "the coordinator moved");
    assert!(
        r.timeline
            .iter()
            .any(|e| e.text.contains("__consumer_offsets-") && e.text.contains("leader broker-"))
    );
    let g = &r.consumer_groups[0];
    assert_eq!(g.lost, 0);
    assert!(
        r.checks.iter().all(|c| c.passed),
        "{:?}",
        r.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
    );
    assert_eq!(
        (g.rebalances, g.generation),
        (1, 1),
        "the new coordinator loaded the group"
    );
}

/// A member cut off from every broker for 20s stops heartbeating: after
/// session.timeout.ms (10s) the coordinator removes it and gives its partitions to the
/// other member (a rebalance caused by the session timeout). When the network heals, its
/// next heartbeat gets UNKNOWN_MEMBER_ID and it joins again: a third generation. Its
/// partitions were read meanwhile, from the committed offsets: nothing is missed.
#[test]
fn a_member_cut_off_from_the_coordinator_is_replaced_and_comes_back() {
    let r = crate::run_yaml(
        "name: t\nduration: 60s\ndrain: 20s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, partitions: 4, replication.factor: 3 }]\n\
         producers: [{ name: p, topic: t, rate: 100/s }]\n\
         consumers: [{ group: g, members: 2, topics: [t], commit: after-processing,\n\
           config: { auto.offset.reset: earliest, session.timeout.ms: 10000 } }]\n\
         faults:\n\
           - { at: 20s, partition: [[g-0], [broker-1, broker-2, broker-3, p, g-1]] }\n\
           - { at: 40s, heal: all }\n",
    );
    let timeout = r
        .timeline
        .iter()
        .find(|e| e.text.contains("g-0 sent no heartbeat for session.timeout.ms"))
        .expect("the coordinator expired g-0")
        .at_ms;
    assert!((27_000..31_000).contains(&timeout), "{timeout}");
    let g = &r.consumer_groups[0];
    assert!(g.generation >= 3, "{}", g.generation);
    assert_eq!(g.lost, 0);
    assert!(
        g.assignment["g-0"].len() == 2 && g.assignment["g-1"].len() == 2,
        "{:?}",
        g.assignment
    );
}

/// Heartbeats every 5ms keep one in flight almost always, so one sent in the old
/// generation is often answered after the member has joined the new one. The answer
/// (ILLEGAL_GENERATION) is about a generation the member has left, and is ignored: no
/// member keeps reading partitions the group gave to another, so nothing is read twice.
#[test]
fn a_stale_heartbeat_answer_does_not_strand_a_member() {
    let r = crate::run_yaml(
        "name: t\nseed: 1\nduration: 60s\ndrain: 5s\ncluster: { brokers: 1, network: { latency: 2ms, jitter: 2ms } }\n\
         topics: [{ name: orders, partitions: 4 }]\n\
         producers: [{ name: shop, topic: orders, rate: 100/s }]\n\
         consumers: [{ group: billing, members: 3, topics: [orders], processing: 1ms, commit: after-processing,\n\
           start-at: { billing-1: 10s, billing-2: 20s },\n\
           config: { auto.offset.reset: earliest, heartbeat.interval.ms: 5, session.timeout.ms: 6000 } }]\n",
    );
    let g = &r.consumer_groups[0];
    assert_eq!((g.duplicates, g.lost, g.generation), (0, 0, 3));
}

/// The coordinator's broker is cut off from the controller while billing-1's JoinGroup
/// waits in its join phase (billing-0 is stuck in a long poll). The controller moves the
/// group's `__consumer_offsets` partition; the old coordinator learns it lost the
/// partition and answers the parked JoinGroup with NOT_COORDINATOR, so billing-1 joins
/// at the new coordinator instead of waiting out its request timeout (about 305s, longer
/// than the run). It gets its partitions once billing-0 comes out of its poll at about
/// 49s and joins the rebalance: about half the records of the last 46s.
#[test]
fn a_coordinator_that_loses_the_group_answers_parked_joins() {
    let r = crate::run_yaml(
        "name: t\nseed: 3\nduration: 90s\ndrain: 5s\ncluster: { brokers: 3 }\n\
         topics: [{ name: orders, partitions: 4, replication.factor: 3 }]\n\
         producers: [{ name: shop, topic: orders, rate: 100/s }]\n\
         consumers: [{ group: billing, members: 2, topics: [orders], processing: 1ms, commit: after-processing,\n\
           start-at: { billing-1: 20s }, stall: { member: billing-0, at: 19s, for: 30s },\n\
           config: { auto.offset.reset: earliest } }]\n\
         faults: [{ at: 21s, cut: { from: broker-2, to: controller } }]\n",
    );
    let g = &r.consumer_groups[0];
    assert_eq!(g.lost, 0);
    assert!(g.processed_by_member["billing-1"] > 2000, "{:?}", g.processed_by_member);
}
