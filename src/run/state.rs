//! The state of the cluster at a moment, read from the engine's nodes: each replica's log
//! end and high watermark, the final logs, the groups' committed offsets and positions.

use super::*;

/// The broker that coordinates group `g` now: the leader of its `__consumer_offsets`
/// partition as the controller last published it, or, while it has none, its first
/// replica (whose disk holds the offsets it had).
pub(super) fn coordinator_of(engine: &Engine<Node>, info: &ClusterInfo, g: usize) -> u32 {
    let p = info.offsets_pidx[g];
    controller(engine, info).image.partitions[p as usize]
        .leader
        .unwrap_or_else(|| info.preferred_leader(p))
}

pub(super) fn broker<'e>(engine: &'e Engine<Node>, info: &ClusterInfo, b: u32) -> &'e kafka::broker::Broker {
    match engine.node(info.broker_node(b)) {
        Node::Broker(broker) => broker,
        _ => unreachable!("broker ids map to broker nodes"),
    }
}

/// The controller whose metadata is the cluster's truth now: the active one, or, while
/// there is none, the voter with the newest metadata.
pub(super) fn controller<'e>(engine: &'e Engine<Node>, info: &ClusterInfo) -> &'e kafka::controller::Controller {
    let voters = (1..=info.controllers).map(|v| match engine.node(info.controller_node_of(v)) {
        Node::Controller(c) => &**c,
        _ => unreachable!("the nodes after the brokers are the controllers"),
    });
    let all: Vec<&kafka::controller::Controller> = voters.collect();
    all.iter()
        .copied()
        .filter(|c| c.is_active())
        .max_by_key(|c| c.epoch())
        .or_else(|| all.iter().copied().max_by_key(|c| (c.epoch(), c.image.version)))
        .expect("at least one controller")
}

/// Whether a controller acts as the active one at the end (a lone controller always does).
pub(super) fn active_controller(engine: &Engine<Node>, info: &ClusterInfo) -> bool {
    (1..=info.controllers).any(|v| {
        engine.is_up(info.controller_node_of(v))
            && matches!(engine.node(info.controller_node_of(v)), Node::Controller(c) if c.is_active())
    })
}

/// The replica whose log counts as the partition's final log: the leader the controller
/// last chose, or, with none, the last ISR member (the one it would elect).
pub(super) fn final_replica(engine: &Engine<Node>, info: &ClusterInfo, p: Pidx) -> u32 {
    let state = &controller(engine, info).image.partitions[p as usize];
    state
        .leader
        .or(state.isr.first().copied())
        .unwrap_or_else(|| info.preferred_leader(p))
}

/// A replica's high watermark at the end: its own, or, if it is down, the last one it
/// announced as leader (bounded by its log end) or its checkpoint, whichever is higher.
pub(super) fn replica_high_watermark(
    engine: &Engine<Node>,
    info: &ClusterInfo,
    last_hw: &LastHw,
    b: u32,
    p: Pidx,
) -> u64 {
    let broker = broker(engine, info, b);
    if engine.is_up(info.broker_node(b)) {
        return broker.high_watermark(p);
    }
    let leo = broker.log(p).map_or(0, |l| l.end_offset());
    let announced = last_hw.get(&(p, b)).copied().unwrap_or(0);
    broker.disk.high_watermark_checkpoint[p as usize]
        .max(announced)
        .min(leo)
}

/// A partition's high watermark at the end: its final replica's.
pub(super) fn final_high_watermark(engine: &Engine<Node>, info: &ClusterInfo, last_hw: &LastHw, p: Pidx) -> u64 {
    replica_high_watermark(engine, info, last_hw, final_replica(engine, info, p), p)
}

pub(super) fn final_log(engine: &Engine<Node>, info: &ClusterInfo, p: Pidx) -> Vec<RecordRange> {
    match broker(engine, info, final_replica(engine, info, p)).log(p) {
        Some(log) => log.ranges().collect(),
        None => Vec::new(),
    }
}

/// The partition of each of a producer's keys, when it has ten or fewer and its
/// partitioner places records by key.
pub(super) fn key_partitions(spec: &crate::scenario::Producer, partitions: u32) -> Vec<(String, u32)> {
    match &spec.keys {
        Some(keys) if keys.len() <= 10 => (0..keys.len())
            .filter_map(|i| {
                let k = keys.name(i);
                let p = spec.partition_of_key(&k, partitions)?;
                Some((k.into_owned(), p))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Per producer instance, from the partitions' final logs: records written more than
/// once (a retry after a lost response, without idempotence) and records that landed
/// after a record of a higher sequence (reordered by a retry).
pub(super) fn producer_log_figures(engine: &Engine<Node>, info: &ClusterInfo, producers: usize) -> Vec<(u64, u64)> {
    let mut figures = vec![(0u64, 0u64); producers];
    for p in (0..info.partitions.len() as Pidx).filter(|&p| !info.is_internal(p)) {
        let mut seen: BTreeMap<u32, (rangemap::RangeSet<u64>, u64)> = BTreeMap::new();
        for r in final_log(engine, info, p) {
            let (set, next) = seen.entry(r.producer).or_insert_with(|| (rangemap::RangeSet::new(), 0));
            let seqs = r.first_seq..r.first_seq + u64::from(r.count);
            let fresh: Vec<std::ops::Range<u64>> = set.gaps(&seqs).collect();
            let fresh_count: u64 = fresh.iter().map(|g| g.end - g.start).sum();
            let f = &mut figures[r.producer as usize];
            f.0 += u64::from(r.count) - fresh_count;
            f.1 += fresh
                .iter()
                .map(|g| g.end.min(*next).saturating_sub(g.start))
                .sum::<u64>();
            set.insert(seqs.clone());
            *next = (*next).max(seqs.end);
        }
    }
    figures
}

/// Every partition as it stands at `now`: leader, epoch, ISR, each replica's LEO and HW.
pub(super) fn partition_reports(
    engine: &Engine<Node>,
    info: &ClusterInfo,
    last_hw: &LastHw,
    under_replicated: &[(Option<Time>, u64)],
    now: Time,
) -> Vec<PartitionReport> {
    info.user_partitions()
        .map(|p| {
            let pi = &info.partitions[p as usize];
            let state = &controller(engine, info).image.partitions[p as usize];
            let mut log_end_offsets = BTreeMap::new();
            let mut high_watermarks = BTreeMap::new();
            for &r in &pi.replicas {
                let leo = broker(engine, info, r).log(p).map_or(0, |l| l.end_offset());
                log_end_offsets.insert(r.to_string(), leo);
                high_watermarks.insert(r.to_string(), replica_high_watermark(engine, info, last_hw, r, p));
            }
            let (since, total) = under_replicated[p as usize];
            PartitionReport {
                topic: info.topics[pi.topic].name.clone(),
                partition: pi.partition,
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                replicas: pi.replicas.clone(),
                isr: state.isr.clone(),
                elr: state.elr.clone(),
                high_watermark: final_high_watermark(engine, info, last_hw, p),
                log_end_offsets,
                high_watermarks,
                under_replicated_ms: (total + since.map_or(0, |t| now.since(t).0)) / 1000,
                bytes: final_log(engine, info, p).iter().map(|r| u64::from(r.bytes)).sum(),
            }
        })
        .collect()
}

/// The partitions each group reads.
pub(super) fn group_partitions(scenario: &Scenario, info: &ClusterInfo) -> Vec<Vec<Pidx>> {
    scenario
        .groups
        .iter()
        .map(|g| {
            g.topics
                .iter()
                .flat_map(|&t| info.topics[t].first..info.topics[t].first + info.topics[t].partitions)
                .collect()
        })
        .collect()
}

/// Each group's committed offset, lag and owning member's position on each of its
/// partitions, as they stand now. `first_member`: each group's first member node.
pub(super) fn group_marks(
    engine: &Engine<Node>,
    info: &ClusterInfo,
    scenario: &Scenario,
    last_hw: &LastHw,
    first_member: &[u32],
) -> Vec<GroupMarks> {
    group_partitions(scenario, info)
        .iter()
        .enumerate()
        .map(|(g, parts)| {
            let coordinator = broker(engine, info, coordinator_of(engine, info, g));
            let mut committed = BTreeMap::new();
            let mut lag = BTreeMap::new();
            let mut positions = BTreeMap::new();
            for &p in parts {
                let offset = coordinator.committed(g as u32, p);
                if let Some(o) = offset {
                    committed.insert(info.partition_name(p), o);
                }
                let hw = final_high_watermark(engine, info, last_hw, p);
                lag.insert(info.partition_name(p), hw.saturating_sub(offset.unwrap_or(0)));
                for m in 0..scenario.groups[g].members {
                    let node = NodeId(first_member[g] + m);
                    if engine.is_up(node)
                        && let Node::Member(member) = engine.node(node)
                        && let Some(at) = member.position(p)
                    {
                        positions.insert(info.partition_name(p), (engine.name(node).to_string(), at));
                    }
                }
            }
            GroupMarks {
                group: scenario.groups[g].group.clone(),
                committed,
                lag,
                positions,
            }
        })
        .collect()
}
