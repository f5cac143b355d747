//! Kafka 4.1's cluster lifecycle, pinned through whole runs against KAFKA.md §7.5–7.7:
//! the registration window after a crash, eligible leader replicas (KIP-966), controlled
//! shutdown, and preferred-leader balancing.

use kafkasim::report::Report;

/// The timeline's lines that contain `needle`, as `(ms, text)`.
fn lines<'a>(r: &'a Report, needle: &str) -> Vec<(u64, &'a str)> {
    r.timeline
        .iter()
        .filter(|e| e.text.contains(needle))
        .map(|e| (e.at_ms, e.text.as_str()))
        .collect()
}

/// Brokers heartbeat every 2 s from time zero, so a broker that crashes at 10.5s last
/// heartbeated at 10.0s (received at 10.001s, 1 ms away) and its session is valid until
/// 19.001s (`BrokerHeartbeatTracker`: last contact + broker.session.timeout.ms).
/// Restarted at 12s, its registrations (received at 12.001s, 14.001s, 16.001s and
/// 18.001s) are refused with DUPLICATE_BROKER_REGISTRATION (said once); the session check
/// fences it at 19.25s (its 250 ms period), the retry at 20.001s registers it, and its
/// next heartbeat, caught up, unfences it.
#[test]
fn a_restarted_broker_registers_only_once_its_old_session_expired() {
    let r = crate::run_yaml(
        "name: t\nduration: 30s\ndrain: 5s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, replication.factor: 3, replicas: [[1, 2, 3]] }]\n\
         producers: [{ name: p, topic: t, rate: 10/s }]\n\
         faults: [{ at: 10500ms, crash: broker-3, for: 1500ms }]\n",
    );
    let refused = lines(&r, "refuses broker-3's registration (DUPLICATE_BROKER_REGISTRATION)");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, 12_001);
    assert!(refused[0].1.contains("valid until 19.001s"), "{}", refused[0].1);
    let fenced = lines(&r, "controller fences broker-3");
    assert_eq!(fenced.iter().map(|l| l.0).collect::<Vec<_>>(), [19_250], "{fenced:?}");
    let unfenced = lines(&r, "controller unfences broker-3");
    assert_eq!(
        unfenced.iter().map(|l| l.0).collect::<Vec<_>>(),
        [22_001],
        "{unfenced:?}"
    );
    assert!(r.passed);
}

/// Replicas [1, 2, 3], min.insync.replicas 3; broker 3 cut off from brokers 1 and 2 (not
/// from the controller) from 2s to 32s; broker 1 crashes at 10s, broker 2 at 20s, both
/// back at 35s. `features` goes into the cluster block.
fn last_replica_standing(features: &str) -> Report {
    crate::run_yaml(&format!(
        "name: t\nduration: 40s\ndrain: 20s\n\
         cluster: {{ brokers: 3, {features}config: {{ replica.lag.time.max.ms: 4000 }} }}\n\
         topics: [{{ name: t, replication.factor: 3, replicas: [[1, 2, 3]], config: {{ min.insync.replicas: 3 }} }}]\n\
         producers: [{{ name: p, topic: t, rate: 10/s }}]\n\
         faults:\n\
         \x20 - {{ at: 2s, partition: [[broker-1, broker-2], [broker-3]], for: 30s }}\n\
         \x20 - {{ at: 10s, crash: broker-1, for: 25s }}\n\
         \x20 - {{ at: 20s, crash: broker-2, for: 15s }}\n"
    ))
}

/// KIP-966's election order (`PartitionChangeBuilder.electAnyLeader`): with the ISR
/// empty, the first eligible leader replica in assignment order that is active leads,
/// and the ISR becomes it alone. Replicas [1, 2, 3], min.insync.replicas 3. Broker 3 is
/// cut off from brokers 1 and 2 (not from the controller): the ISR shrinks to [1, 2],
/// below min ISR, so 3 becomes eligible (and the high watermark freezes). The leader 1
/// crashes and is fenced: 2 is still in the ISR and leads, ISR [2], ELR [1, 3]. Then 2
/// crashes and is fenced: the ISR empties, the ELR is [1, 2, 3], and its only active
/// member, 3, is elected from it.
#[test]
fn an_empty_isr_elects_the_first_active_eligible_replica() {
    let r = last_replica_standing("");
    let elr = lines(&r, "t-0: eligible leader replicas [] -> [3]");
    assert_eq!(elr.len(), 1, "{:#?}", r.timeline);
    let to_2 = lines(&r, "t-0: leader broker-1 -> broker-2");
    assert_eq!(to_2.len(), 1, "{:#?}", r.timeline);
    assert!(to_2[0].1.contains("isr [2], ELR [1, 3]"), "{}", to_2[0].1);
    let to_3 = lines(&r, "t-0: leader broker-2 -> broker-3");
    assert_eq!(to_3.len(), 1, "{:#?}", r.timeline);
    assert!(
        to_3[0]
            .1
            .contains("isr [3], ELR [1, 2] from the eligible leader replicas"),
        "{}",
        to_3[0].1
    );
    assert!(!r.checks.iter().any(|c| c.name == "lost-write" && !c.passed));
}

/// Without ELR (`eligible.leader.replicas.version: 0`) the same run keeps the last ISR
/// member, 2, in the ISR and leaves the partition offline until it returns.
#[test]
fn without_elr_the_last_isr_member_stays_and_the_partition_waits_for_it() {
    let r = last_replica_standing("features: { eligible.leader.replicas.version: 0 }, ");
    assert!(lines(&r, "eligible leader replicas").is_empty());
    let offline = lines(&r, "t-0: leader broker-2 -> none");
    assert_eq!(offline.len(), 1, "{:#?}", r.timeline);
    assert!(offline[0].1.contains("isr [2]"), "{}", offline[0].1);
    assert!(lines(&r, "-> broker-3").is_empty(), "{:#?}", r.timeline);
}

/// Controlled shutdown (§7.5): the broker asks at once; the controller moves its
/// leaderships and takes it out of every ISR in one step, at once; it lets the broker
/// stop only when every other active broker has reported that metadata in a heartbeat,
/// and only then fences it. Every broker heartbeats at 2 s multiples and broker-1's
/// arrives first at 12.001s, before the others have reported, so the leave comes with its
/// heartbeat at 14.001s. No produce
/// error but NOT_LEADER_OR_FOLLOWER, nothing lost.
#[test]
fn controlled_shutdown_moves_leadership_before_the_broker_stops() {
    let r = crate::run_yaml(
        "name: t\nduration: 20s\ndrain: 10s\ncluster: { brokers: 3 }\n\
         topics: [{ name: t, partitions: 3, replication.factor: 3, replicas: [[1, 2, 3], [2, 3, 1], [3, 1, 2]], config: { min.insync.replicas: 2 } }]\n\
         producers: [{ name: p, topic: t, rate: 100/s }]\n\
         faults: [{ at: 10500ms, stop: broker-1, for: 5s }]\n",
    );
    let at = |needle: &str| -> u64 {
        let l = lines(&r, needle);
        assert!(!l.is_empty(), "no line with {needle:?}: {:#?}", r.timeline);
        l[0].0
    };
    assert_eq!(at("broker-1 begins a controlled shutdown"), 10_500);
    let moved = at("t-0: leader broker-1 -> broker-2");
    assert!(
        lines(&r, "t-0: leader broker-1 -> broker-2")[0]
            .1
            .contains("shutting down cleanly")
    );
    let out_of_isr = at("without broker-1 (its broker is shutting down cleanly)");
    let fenced = at("controller fences broker-1: its controlled shutdown is complete");
    let stopped = at("broker-1 stops cleanly");
    assert!(moved <= 10_502 && out_of_isr == moved, "{moved} {out_of_isr}");
    assert_eq!(fenced, 14_001);
    assert!(stopped >= fenced && stopped <= fenced + 2, "{fenced} {stopped}");
    // Restarted at 15.5s: its last heartbeat (the one that let it stop) reached the
    // controller at 14.001s, so its registration is refused until 23.001s.
    let refused = lines(&r, "refuses broker-1's registration");
    assert_eq!(refused[0].0, 15_501);
    assert!(refused[0].1.contains("valid until 23.001s"), "{}", refused[0].1);
    let p = &r.producers[0];
    assert!(
        p.errors
            .keys()
            .all(|e| e == "NOT_LEADER_OR_FOLLOWER" || e == "NETWORK_EXCEPTION"),
        "{:?}",
        p.errors
    );
    assert_eq!(p.failed, 0);
    assert!(r.passed, "{:#?}", r.checks);
}

/// `controlled.shutdown.enable: false`: the broker stops at once, and its leaderships
/// move only when its session expires.
#[test]
fn without_controlled_shutdown_a_stop_is_a_clean_crash() {
    let r = crate::run_yaml(
        "name: t\nduration: 20s\ndrain: 10s\ncluster: { brokers: 3, config: { controlled.shutdown.enable: false } }\n\
         topics: [{ name: t, replication.factor: 3, replicas: [[1, 2, 3]] }]\n\
         producers: [{ name: p, topic: t, rate: 100/s }]\n\
         faults: [{ at: 10500ms, stop: broker-1, for: 5s }]\n",
    );
    assert_eq!(lines(&r, "broker-1 stops cleanly")[0].0, 10_500);
    let moved = lines(&r, "t-0: leader broker-1 -> broker-2");
    assert_eq!(moved[0].0, 19_250, "session expiry, not the stop: {moved:?}");
}

/// Preferred-leader balancing (§7.7): every leader.imbalance.check.interval.seconds from
/// the controller's activation, a partition led by another replica moves back to its
/// first replica once that one is in the ISR; with auto.leader.rebalance.enable false it
/// never does.
#[test]
fn leadership_returns_to_the_preferred_replica_at_the_imbalance_check() {
    let yaml = |auto: bool| {
        format!(
            "name: t\nduration: 40s\ndrain: 5s\n\
             cluster: {{ brokers: 3, config: {{ auto.leader.rebalance.enable: {auto}, leader.imbalance.check.interval.seconds: 30 }} }}\n\
             topics: [{{ name: t, replication.factor: 3, replicas: [[1, 2, 3]] }}]\n\
             producers: [{{ name: p, topic: t, rate: 10/s }}]\n\
             faults: [{{ at: 2s, stop: broker-1, for: 5s }}]\n"
        )
    };
    let r = crate::run_yaml(&yaml(true));
    let back = lines(&r, "t-0: leader broker-2 -> broker-1");
    assert_eq!(back.len(), 1, "{:#?}", r.timeline);
    assert_eq!(back[0].0, 30_000);
    assert!(back[0].1.contains("back to the preferred replica"));
    assert_eq!(r.partitions[0].leader, Some(1));
    let r = crate::run_yaml(&yaml(false));
    assert!(lines(&r, "back to the preferred replica").is_empty());
    assert_eq!(r.partitions[0].leader, Some(2));
}

/// The KRaft quorum (§7.4): the active controller, controller-1, crashes at 12s. Its
/// followers last heard from it at most 500 ms earlier (a parked fetch is answered within
/// MAX_FETCH_WAIT), so their fetch timeout (2 s) ends between 13.5s and 14s; a pre-vote and
/// a vote take a few milliseconds, and a split vote costs an election timeout of 1–2 s,
/// so a new controller is active after 13.5s and, with at most two split votes, before
/// 18s. It gives every unfenced broker a fresh session: broker-3, dead since 10s, is
/// fenced at the first session check more than 9 s after the activation: the checks run
/// every 250 ms from it, so at 9.25 s after it, and the timeline tells it once the fence
/// is committed, a follower's fetch round trip later (a few ms). A lone controller would
/// fence it at 19.25s, 9 s after its last heartbeat.
#[test]
fn a_controller_failover_elects_a_new_leader_and_restarts_the_sessions() {
    let r = crate::run_yaml(
        "name: t\nduration: 30s\ndrain: 10s\ncluster: { brokers: 3, controllers: 3 }\n\
         topics: [{ name: t, replication.factor: 3, replicas: [[3, 1, 2]] }]\n\
         producers: [{ name: p, topic: t, rate: 10/s }]\n\
         faults:\n\
         \x20 - { at: 10500ms, crash: broker-3, for: 15s }\n\
         \x20 - { at: 12s, crash: controller, for: 10s }\n",
    );
    let crash = lines(&r, "controller-1 crashes");
    assert_eq!(crash.len(), 1, "{:#?}", r.timeline);
    let active = lines(&r, "becomes the active controller");
    assert_eq!(active.len(), 1, "{:#?}", r.timeline);
    let at = active[0].0;
    assert!((13_500..18_000).contains(&at), "activated at {at}");
    let fenced = lines(&r, "controller fences broker-3");
    assert_eq!(fenced.len(), 1, "{:#?}", r.timeline);
    assert!(
        (9_249..9_260).contains(&(fenced[0].0 - at)),
        "activated at {at}, fenced at {}",
        fenced[0].0
    );
    assert!(r.passed, "{:#?}", r.checks);
}
