//! Why records were processed twice: each duplicate is counted under the cause that made a
//! member read it again, and the report names the offsets read again.

use kafkasim::report::Report;

const ZOMBIE: &str = "session timeout: a removed member went on processing";
const LIVE_TIMEOUT: &str = "rebalance after a session timeout (member paused or cut off)";
const CRASH: &str = "rebalance after a consumer crash";

/// Two members on two partitions of one broker; `commit` and `faults` vary.
fn group_run(commit: &str, faults: &str) -> Report {
    group_run_processing("2ms", commit, faults)
}

fn group_run_processing(processing: &str, commit: &str, faults: &str) -> Report {
    crate::run_yaml(&format!(
        "name: t\nduration: 60s\ndrain: 20s\ncluster: {{ brokers: 1 }}\n\
         topics: [{{ name: t, partitions: 2 }}]\n\
         producers: [{{ name: p, topic: t, rate: 200/s }}]\n\
         consumers: [{{ group: g, members: 2, topics: [t], processing: {processing}, commit: {commit},\n\
           config: {{ auto.offset.reset: earliest, session.timeout.ms: 10000 }} }}]\n\
         faults: {faults}\n"
    ))
}

fn reasons(r: &Report) -> Vec<(String, u64)> {
    r.consumer_groups[0]
        .duplicates_by_reason
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// g-0 pauses at 20s for 15s in the middle of a poll, and is removed after
/// session.timeout.ms (10s); g-1 takes t-0 over from the committed offset, which covers
/// everything g-0 finished, and reads on. At 35s g-0 resumes, finishes its poll of records
/// g-1 has processed since, and only then learns it is out. Those are the duplicates:
/// not a consumer that started with no committed offset, as they were labelled when the
/// reason was the one g-0's first position had at 6s.
#[test]
fn a_member_paused_past_its_session_finishes_its_poll_as_a_removed_member() {
    let r = group_run("after-processing", "[{ at: 20s, pause: g-0, for: 15s }]");
    let g = &r.consumer_groups[0];
    assert!(g.duplicates > 0);
    assert_eq!(reasons(&r), vec![(ZOMBIE.to_string(), g.duplicates)]);
}

/// The same with g-0 cut off from every node for 20s while it is busy (8ms a record, 80%
/// of its time): it finishes what it polled, its commits held back by the cut, and is
/// removed after session.timeout.ms; g-1 reads those records again from the committed
/// offset. The member was alive and cut off, not crashed.
#[test]
fn a_member_cut_off_past_its_session_is_not_a_crash() {
    let r = group_run_processing("8ms", "after-processing", "[{ at: 20s, isolate: g-0, for: 20s }]");
    let g = &r.consumer_groups[0];
    assert!(g.duplicates > 0);
    assert_eq!(reasons(&r), vec![(LIVE_TIMEOUT.to_string(), g.duplicates)]);
}

/// Under auto-commit the committed offset trails what g-0 processed by up to 5s. g-0 is
/// paused, not crashed: g-1 reads those records again after a session timeout of a live
/// member, which the report must not call a crash.
#[test]
fn a_session_timeout_of_a_paused_member_is_not_a_crash() {
    let r = group_run("auto", "[{ at: 20s, pause: g-0, for: 15s }]");
    let why = reasons(&r);
    assert!(why.iter().any(|(k, _)| k == LIVE_TIMEOUT), "{why:?}");
    assert!(why.iter().all(|(k, _)| k != CRASH), "{why:?}");
}

/// A crashed member is a crash. Left down, g-0 is removed after session.timeout.ms and
/// g-1 reads again what it had processed but not committed. Restarted at 22s, g-0 joins
/// as a new member while the coordinator still waits for its old id to expire (at about
/// 30s), and reads its own records again from the committed offset: the rollback of a
/// restart. In neither case is the timeout a live member's, nor g-0 a removed member
/// still processing.
#[test]
fn a_session_timeout_after_a_crash_is_a_crash() {
    let restart = "consumer restart: rollback to the committed offset";
    for (faults, expected) in [
        ("[{ at: 20s, crash: g-0 }]", CRASH),
        ("[{ at: 20s, crash: g-0, for: 2s }]", restart),
    ] {
        let r = group_run("auto", faults);
        let why = reasons(&r);
        assert!(why.iter().any(|(k, _)| k == expected), "{faults}: {why:?}");
        assert!(
            why.iter().all(|(k, _)| k != LIVE_TIMEOUT && k != ZOMBIE),
            "{faults}: {why:?}"
        );
    }
}

/// consumer-rollback: the report names the offsets read again, 6 and 7, not only their
/// number.
#[test]
fn the_rollback_names_the_offsets_it_read_again() {
    let path = crate::root().join("scenarios/consumer-rollback.yaml");
    let r = crate::run(&kafkasim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let why = "consumer restart: rollback to the committed offset";
    let g = &r.consumer_groups[0];
    assert_eq!(g.duplicate_offsets[why]["payments-0"], vec![(6, 8)]);
    // The text report wraps its lines: compare words.
    let text = kafkasim::report::text::render(&r);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("duplicates: 2 after {why} (payments-0 offsets 6–7)")),
        "{text}"
    );
}
