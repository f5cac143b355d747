//! The report, from what the run observed and the state it ended in.

use super::*;

pub(super) fn assemble(
    scenario: &Scenario,
    seed: u64,
    source: &str,
    engine: &Engine<Node>,
    info: &ClusterInfo,
    c: Collector,
) -> Report {
    let names = c.names;
    let all_producers: Vec<&crate::scenario::Producer> = scenario
        .producers
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, p.instances as usize))
        .collect();
    let acks_word = |producer: u32| match all_producers[producer as usize].acks {
        Acks::Zero => "0",
        Acks::One => "1",
        Acks::All => "all",
    };
    let partition_name = |p: Pidx| info.partition_name(p);
    let producer_name = |p: u32| names[(c.first_producer + p) as usize].clone();
    let end = Time((scenario.duration + scenario.drain).0);
    let producer_node = |i: usize| match engine.node(NodeId(c.first_producer + i as u32)) {
        Node::Producer(p) => p,
        _ => unreachable!("producers are numbered from first_producer"),
    };
    let producer_pending: Vec<Vec<(Pidx, u64)>> = (0..c.producers.len()).map(|i| producer_node(i).pending()).collect();
    let producer_offered: Vec<u64> = (0..c.producers.len()).map(|i| producer_node(i).offered()).collect();
    let lost_write = c.lost_write.finish(
        |p| final_log(engine, info, p),
        |p| final_replica(engine, info, p),
        end,
        &Names {
            partition: &partition_name,
            producer: &producer_name,
            acks: &acks_word,
        },
    );
    let group_partitions = group_partitions(scenario, info);
    let committed_log = |p: Pidx| -> Vec<RecordRange> {
        let hw = final_high_watermark(engine, info, &c.last_hw, p);
        final_log(engine, info, p)
            .into_iter()
            .filter(|r| r.base_offset < hw)
            .map(|r| {
                if r.end_offset() > hw {
                    r.head((hw - r.base_offset) as u32)
                } else {
                    r
                }
            })
            .collect()
    };
    let group_name = |g: u32| scenario.groups[g as usize].group.clone();
    let member_name = |g: u32, m: u32| names[(c.group_first_member[g as usize] + m) as usize].clone();
    let lifecycle = |g: u32| -> Vec<(Time, u32, bool)> {
        let first = c.group_first_member[g as usize];
        let n = scenario.groups[g as usize].members;
        c.lifecycle
            .iter()
            .filter(|(_, node, _)| node.0 >= first && node.0 < first + n)
            .map(|(t, node, up)| (*t, node.0 - first, *up))
            .collect()
    };
    let (alo, lost_per_group) = c.at_least_once.finish(
        end,
        &Final {
            group_partitions: group_partitions.clone(),
            committed_log: &committed_log,
            partition_name: &partition_name,
            group_name: &group_name,
            member_name: &member_name,
            member_lifecycle: &lifecycle,
        },
    );
    let mut replication = c.replication;
    let replicas: Vec<Vec<u32>> = info.partitions.iter().map(|p| p.replicas.clone()).collect();
    replication.liveness(end, &replicas);
    let mut results: BTreeMap<&str, Vec<crate::check::Violation>> = std::mem::take(&mut replication.found);
    results.insert("lost-write", lost_write);
    results.insert("single-controller", c.single_controller.found.clone());
    if !active_controller(engine, info) {
        results.entry("liveness").or_default().push(crate::check::Violation {
            at: end,
            message: "no controller is active after the drain: the quorum has no leader".to_string(),
            kind: "no-active-controller",
        });
    }
    results.insert("at-least-once", alo);
    results.insert(
        "nonmonotonic-poll",
        c.nonmonotonic.violations(&partition_name, &member_name),
    );
    // The producer half of liveness: after the drain, no producer still holds records that
    // were neither acknowledged nor given up.
    for (i, pending) in producer_pending.iter().enumerate() {
        for &(p, n) in pending {
            let why = match c.producers[i].stuck.get(&p) {
                Some((error, since)) => format!(", getting {error} since {since}"),
                None => String::new(),
            };
            results.entry("liveness").or_default().push(crate::check::Violation {
                at: end,
                message: format!(
                    "{} still holds {n} record{} for {} after the drain{why}",
                    producer_name(i as u32),
                    if n == 1 { "" } else { "s" },
                    info.partition_name(p)
                ),
                kind: "producer-stuck",
            });
        }
    }
    // The consumer half of liveness: after the drain, every group has committed up to the
    // high watermark of every partition it reads.
    for (g, parts) in group_partitions.iter().enumerate() {
        let coordinator = broker(engine, info, coordinator_of(engine, info, g));
        for &p in parts {
            let hw = final_high_watermark(engine, info, &c.last_hw, p);
            let committed = coordinator.committed(g as u32, p).unwrap_or(0);
            if committed < hw {
                let message = format!(
                    "group {} still lags on {} after the drain: committed {committed}, high watermark {hw}",
                    scenario.groups[g].group,
                    info.partition_name(p)
                );
                results.entry("liveness").or_default().push(crate::check::Violation {
                    at: end,
                    message,
                    kind: "group-lags",
                });
            }
        }
    }
    let checks: Vec<CheckReport> = CHECKS
        .iter()
        .map(|info| {
            let expected_to_fail = scenario.expect_violations.iter().any(|v| v == info.name);
            let mut violations = results.remove(info.name).unwrap_or_default();
            violations.sort_by_key(|v| v.at);
            let count = violations.len() as u64;
            let mut kinds: Vec<String> = violations.iter().map(|v| v.kind.to_string()).collect();
            kinds.sort();
            kinds.dedup();
            let violations = cap(violations);
            let r = CheckResult {
                name: info.name,
                violations,
                expected_to_fail,
            };
            CheckReport {
                name: info.name.to_string(),
                passed: r.passed(),
                expected_to_fail,
                implemented: info.implemented,
                count,
                kinds,
                violations: r
                    .violations
                    .iter()
                    .map(|v| ViolationReport {
                        at_ms: v.at.as_millis(),
                        message: v.message.clone(),
                        kind: v.kind.to_string(),
                    })
                    .collect(),
            }
        })
        .collect();
    let passed = checks.iter().all(|c| c.passed != c.expected_to_fail);

    let log_figures = producer_log_figures(engine, info, c.producers.len());
    let producers = c
        .producers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let spec = all_producers[i];
            ProducerReport {
                name: names[(c.first_producer as usize) + i].clone(),
                topic: info.topics[spec.topic].name.clone(),
                acks: acks_word(i as u32).to_string(),
                idempotence: spec.idempotence,
                sent: s.sent,
                acked: s.acked,
                failed: s.failed,
                unacknowledged: s.unacknowledged,
                refused: s.refused,
                pending: producer_pending[i].iter().map(|(_, n)| n).sum(),
                offered: producer_offered[i],
                errors: s.errors.clone(),
                failed_by_reason: s.failed_by_reason.clone(),
                latency_ms: Latency {
                    p50: ms(s.latencies.percentile(500)),
                    p99: ms(s.latencies.percentile(990)),
                    max: ms(s.latency_max),
                },
                batches: s.batches,
                bytes: s.bytes,
                requests: s.requests,
                retried_batches: s.retried_batches,
                batch_records_max: s.batch_records_max,
                batch_sizes: s
                    .batch_histogram
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| BatchSizes {
                        records_min: 1 << k,
                        records_max: (1 << (k + 1)) - 1,
                        batches: *n,
                    })
                    .collect(),
                blocked_sends: s.blocked_sends,
                blocked_ms: ms(s.blocked),
                throughput_per_s: s.acked * 1000 / scenario.duration.as_millis().max(1),
                duplicates_written: log_figures[i].0,
                reordered: log_figures[i].1,
                key_partitions: key_partitions(spec, info.topics[spec.topic].partitions),
            }
        })
        .collect();

    let end_marks = group_marks(engine, info, scenario, &c.last_hw, &c.group_first_member);
    let consumer_groups = scenario
        .groups
        .iter()
        .enumerate()
        .map(|(g, spec)| {
            let tally = &c.at_least_once.groups[g];
            let unique = tally.unique();
            let coordinator = broker(engine, info, coordinator_of(engine, info, g));
            let mut committed = BTreeMap::new();
            let mut lag = BTreeMap::new();
            for &p in &group_partitions[g] {
                let offset = coordinator.committed(g as u32, p);
                if let Some(o) = offset {
                    committed.insert(info.partition_name(p), o);
                }
                let hw = final_high_watermark(engine, info, &c.last_hw, p);
                lag.insert(info.partition_name(p), hw.saturating_sub(offset.unwrap_or(0)));
            }
            let mut assignment = BTreeMap::new();
            let mut processed_by_member = BTreeMap::new();
            for m in 0..spec.members {
                let node = NodeId(c.group_first_member[g] + m);
                processed_by_member.insert(
                    names[node.index()].clone(),
                    c.processed.get(&(g as u32, m)).copied().unwrap_or(0),
                );
                if let Node::Member(member) = engine.node(node) {
                    assignment.insert(
                        names[node.index()].clone(),
                        member.assignment.iter().map(|&p| info.partition_name(p)).collect(),
                    );
                }
            }
            GroupReport {
                group: spec.group.clone(),
                commit: match spec.commit {
                    crate::scenario::schema::CommitMode::AfterProcessing => "after-processing",
                    crate::scenario::schema::CommitMode::BeforeProcessing => "before-processing",
                    crate::scenario::schema::CommitMode::Auto => "auto",
                }
                .to_string(),
                consumed: tally.consumed,
                unique,
                duplicates: tally.consumed - unique,
                lost: lost_per_group[g],
                committed,
                lag,
                generation: c.groups[g].generation.max(0) as u32,
                protocol: c.groups[g].protocol.clone(),
                rebalances: c.groups[g].rebalances,
                rebalance_ms: ms(c.groups[g].rebalancing),
                partitions_moved: c.groups[g].moved,
                commit_failures: c.groups[g].commit_failures,
                poll_timeouts: c.groups[g].poll_timeouts,
                positions: end_marks[g].positions.clone(),
                duplicates_by_reason: tally
                    .duplicates_by_reason
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                duplicate_offsets: tally
                    .duplicate_offsets
                    .iter()
                    .map(|(why, parts)| {
                        let parts = parts
                            .iter()
                            .map(|(p, set)| (info.partition_name(*p), set.iter().map(|r| (r.start, r.end)).collect()))
                            .collect();
                        (why.to_string(), parts)
                    })
                    .collect(),
                delivery: match (tally.consumed - unique > 0, lost_per_group[g] > 0) {
                    (false, false) => "exactly-once (as observed)",
                    (true, false) => "at-least-once",
                    (false, true) => "at-most-once",
                    (true, true) => "neither (records missed and records duplicated)",
                }
                .to_string(),
                revoked_ms: ms(c.groups[g].paused),
                generations: c.groups[g].history.clone(),
                lag_over_time: Vec::new(),
                fetches: c.groups[g].fetches,
                fetched: c.groups[g].fetched,
                assignment,
                processed_by_member,
            }
        })
        .collect();

    let partitions = partition_reports(engine, info, &c.last_hw, &c.under_replicated, end);
    // Availability: how long writes failed (from an error to the partition's next
    // acknowledgement, or the end of the workload), how long partitions had no leader,
    // and the produce latency every record shared.
    let workload_end = Time(scenario.duration.0);
    let total = |spans: &[(Option<Time>, u64)], until: Time| -> u64 {
        info.user_partitions()
            .map(|p| {
                let (since, done) = spans[p as usize];
                done + since.map_or(0, |t| until.max(t).since(t).0)
            })
            .sum::<u64>()
            / 1000
    };
    let mut all_latencies = Latencies::default();
    c.producers.iter().for_each(|s| all_latencies.add(&s.latencies));
    let availability = Availability {
        writes_refused_ms: total(&c.refused, workload_end),
        offline_ms: total(&c.offline, end),
        produce_p99_ms: ms(all_latencies.percentile(990)),
    };

    let brokers = (1..=info.brokers)
        .map(|b| {
            let mut report = BrokerReport {
                broker: b,
                up: engine.is_up(info.broker_node(b)),
                leads: Vec::new(),
                follows: Vec::new(),
                records: 0,
                follower_records: 0,
                bytes: 0,
                coordinates: Vec::new(),
            };
            let image = &controller(engine, info).image;
            for (p, pi) in info.partitions.iter().enumerate() {
                if info.is_internal(p as Pidx) {
                    continue;
                }
                if image.partitions[p].leader == Some(b) {
                    report.leads.push(info.partition_name(p as Pidx));
                    let log = final_log(engine, info, p as Pidx);
                    report.records += log.iter().map(|r| u64::from(r.count)).sum::<u64>();
                    report.bytes += log.iter().map(|r| u64::from(r.bytes)).sum::<u64>();
                } else if pi.replicas.contains(&b) {
                    report.follows.push(info.partition_name(p as Pidx));
                    report.follower_records += broker(engine, info, b).log(p as Pidx).map_or(0, |l| l.end_offset());
                }
            }
            for g in 0..info.groups.len() {
                if coordinator_of(engine, info, g) == b {
                    report.coordinates.push(info.groups[g].clone());
                }
            }
            report
        })
        .collect();

    let faults = c
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (fault, target) = fault_words(&f.kind);
            let record = c.fault_records.get(&i);
            FaultReport {
                at_ms: f.at.as_millis(),
                fault,
                target,
                fired: record.is_some_and(|r| r.fired),
                for_ms: f.lasts.map(Duration::as_millis),
                hit: record.map_or(Vec::new(), |r| {
                    r.roles.iter().map(|n| names[n.index()].clone()).collect()
                }),
                unresolved: record.and_then(|r| r.unresolved.clone()),
            }
        })
        .collect();

    let notes = if info.controllers > 1 {
        vec![
            "brokers fetch the whole committed image from the active controller, where Kafka's fetch the metadata log's records".to_string(),
            "a voter ships its whole state to a follower whose log differs, where Kafka truncates and replicates records".to_string(),
        ]
    } else {
        vec!["the controller is one node that never fails (it can be cut off from the network)".to_string()]
    };

    Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seed,
        reproduce: format!("kafkasim run {source} --seed {seed}"),
        simulated_ms: engine.now().as_millis(),
        events: engine.events(),
        peak_pending: engine.peak_pending() as u64,
        idle_events: engine.idle_events(),
        passed,
        checks,
        producers,
        consumer_groups,
        partitions,
        brokers,
        faults,
        availability,
        timeline: c.timeline,
        pictures: Vec::new(),
        notes,
        warnings: scenario.warnings.clone(),
        series: Default::default(),
        settings: Settings {
            brokers: scenario.brokers,
            duration_ms: scenario.duration.as_millis(),
            drain_ms: scenario.drain.as_millis(),
            latency: scenario.latency.to_string(),
            jitter: scenario.jitter.to_string(),
            topics: scenario
                .topics
                .iter()
                .map(|t| TopicSummary {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    min_insync_replicas: t.min_insync_replicas,
                })
                .collect(),
        },
    }
}
