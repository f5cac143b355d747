//! `at-least-once`: every record in a partition's final committed log (below its final
//! high watermark) was processed by every group that reads the topic. Also counts what
//! each group processed, its duplicates (by why a member read them again, with their
//! offsets), and the records it never processed.

use crate::check::Violation;
use crate::kafka::log::RecordRange;
use crate::kafka::{Obs, Pidx, PositionCause, RebalanceCause};
use crate::sim::Time;
use rangemap::RangeSet;
use std::collections::BTreeMap;

/// What one group did, for the checker and the report.
#[derive(Default)]
pub struct GroupTally {
    /// Records handed to the application and processed, duplicates included.
    pub consumed: u64,
    /// Sequences processed, per (partition, producer).
    processed: BTreeMap<(Pidx, u32), RangeSet<u64>>,
    /// Per partition: the end of the highest offset range processed.
    reached: BTreeMap<Pidx, u64>,
    /// Position events per partition: (time, member, offset, cause).
    positions: BTreeMap<Pidx, Vec<(Time, u32, u64, PositionCause)>>,
    /// Records processed again, by why the member was reading them again.
    pub duplicates_by_reason: BTreeMap<&'static str, u64>,
    /// The offsets of those records, by the same reasons, per partition.
    pub duplicate_offsets: BTreeMap<&'static str, BTreeMap<Pidx, RangeSet<u64>>>,
    /// Why each (member, partition) position was set, for the duplicates read from it.
    reason: BTreeMap<(u32, Pidx), &'static str>,
    /// The group's latest disruption: when, and what it was.
    disruption: Option<(Time, &'static str)>,
    /// Per member: when its process last started, and when it last got a position.
    started: BTreeMap<u32, Time>,
    positioned: BTreeMap<u32, Time>,
    /// Members whose process went down (`crash` or `shutdown`) and whose old membership
    /// the coordinator may still expire: a session timeout of theirs is that, not a
    /// live member's silence.
    down: BTreeMap<u32, &'static str>,
}

/// A member removed from its group after `session.timeout.ms` without a heartbeat while
/// it was alive (paused or cut off) still processes what it polled, and what it fetched
/// before it learns: records the group gave to another member.
const REMOVED_MEMBER_WENT_ON: &str = "session timeout: a removed member went on processing";

impl GroupTally {
    /// Distinct records processed.
    pub fn unique(&self) -> u64 {
        self.processed
            .values()
            .flat_map(|s| s.iter())
            .map(|r| r.end - r.start)
            .sum()
    }
}

#[derive(Default)]
pub struct AtLeastOnce {
    pub groups: Vec<GroupTally>,
}

/// What the checker needs to know about the cluster at the end.
pub struct Final<'a> {
    /// The partitions each group reads.
    pub group_partitions: Vec<Vec<Pidx>>,
    /// The committed part (below the high watermark) of a partition's final log.
    pub committed_log: &'a dyn Fn(Pidx) -> Vec<RecordRange>,
    pub partition_name: &'a dyn Fn(Pidx) -> String,
    pub group_name: &'a dyn Fn(u32) -> String,
    pub member_name: &'a dyn Fn(u32, u32) -> String,
    /// Crashes and restarts of each member: (time, member, crashed).
    pub member_lifecycle: &'a dyn Fn(u32) -> Vec<(Time, u32, bool)>,
}

impl AtLeastOnce {
    pub fn new(groups: usize) -> AtLeastOnce {
        AtLeastOnce {
            groups: (0..groups).map(|_| GroupTally::default()).collect(),
        }
    }

    /// A member's process went down: `crashed`, or shut down cleanly.
    pub fn member_down(&mut self, group: u32, member: u32, crashed: bool) {
        let kind = if crashed { "crash" } else { "shutdown" };
        self.groups[group as usize].down.insert(member, kind);
    }

    pub fn observe(&mut self, at: Time, obs: &Obs) {
        match obs {
            Obs::Processed { group, member, records } => {
                let tally = &mut self.groups[*group as usize];
                for (p, r) in records {
                    tally.consumed += u64::from(r.count);
                    let reached = tally.reached.entry(*p).or_insert(0);
                    *reached = (*reached).max(r.end_offset());
                    let seqs = r.first_seq..r.first_seq + u64::from(r.count);
                    let set = tally.processed.entry((*p, r.producer)).or_default();
                    // The sequences processed before, as offsets of this range.
                    let again: Vec<std::ops::Range<u64>> = set
                        .overlapping(&seqs)
                        .map(|o| {
                            let (start, end) = (o.start.max(seqs.start), o.end.min(seqs.end));
                            r.base_offset + (start - r.first_seq)..r.base_offset + (end - r.first_seq)
                        })
                        .collect();
                    set.insert(seqs);
                    if !again.is_empty() {
                        let why = tally.reason.get(&(*member, *p)).copied().unwrap_or("rebalance");
                        let n: u64 = again.iter().map(|o| o.end - o.start).sum();
                        *tally.duplicates_by_reason.entry(why).or_default() += n;
                        let offsets = tally.duplicate_offsets.entry(why).or_default().entry(*p).or_default();
                        for o in again {
                            offsets.insert(o);
                        }
                    }
                }
            }
            Obs::MemberStarted { group, member } => {
                self.groups[*group as usize].started.insert(*member, at);
            }
            Obs::RebalanceBegan { group, cause, .. } => {
                let tally = &mut self.groups[*group as usize];
                let why = match cause {
                    RebalanceCause::SessionTimeout(m) => match tally.down.remove(m) {
                        Some("crash") => "rebalance after a consumer crash",
                        Some(_) => "rebalance after a consumer shutdown",
                        None => {
                            // Alive, it goes on processing what it holds until it learns.
                            for (key, reason) in tally.reason.iter_mut() {
                                if key.0 == *m {
                                    *reason = REMOVED_MEMBER_WENT_ON;
                                }
                            }
                            "rebalance after a session timeout (member paused or cut off)"
                        }
                    },
                    _ => "rebalance",
                };
                tally.disruption = Some((at, why));
            }
            Obs::PollTimeout { group, member } => {
                let tally = &mut self.groups[*group as usize];
                let why = "slow consumer (max.poll.interval.ms)";
                tally.disruption = Some((at, why));
                // The records it is still processing will be read by another member too.
                for (key, reason) in tally.reason.iter_mut() {
                    if key.0 == *member {
                        *reason = why;
                    }
                }
            }
            Obs::CommitFailed { group, .. } => {
                self.groups[*group as usize].disruption = Some((at, "failed commit"));
            }
            Obs::PositionSet {
                group,
                member,
                partition,
                offset,
                cause,
            } => {
                let tally = &mut self.groups[*group as usize];
                let restarted = match (tally.started.get(member), tally.positioned.get(member)) {
                    (Some(s), Some(p)) => s > p,
                    _ => false,
                };
                let why = match cause {
                    PositionCause::OutOfRange(_) => "offset reset (auto.offset.reset)",
                    PositionCause::Truncated => "log truncation (KIP-320)",
                    PositionCause::NoCommittedOffset(_) => "no committed offset (auto.offset.reset)",
                    PositionCause::Committed if restarted => "consumer restart: rollback to the committed offset",
                    PositionCause::Committed => tally.disruption.map(|d| d.1).unwrap_or("rebalance"),
                };
                tally.reason.insert((*member, *partition), why);
                tally.positioned.insert(*member, at);
                // Back in the group: a later session timeout is about this membership.
                tally.down.remove(member);
                self.groups[*group as usize]
                    .positions
                    .entry(*partition)
                    .or_default()
                    .push((at, *member, *offset, *cause));
            }
            _ => {}
        }
    }

    /// Returns the violations and, per group, how many records it never processed.
    pub fn finish(&self, end: Time, f: &Final) -> (Vec<Violation>, Vec<u64>) {
        let mut violations = Vec::new();
        let mut lost = vec![0u64; self.groups.len()];
        for (g, tally) in self.groups.iter().enumerate() {
            for &p in &f.group_partitions[g] {
                // Missing offsets of this partition, as merged runs.
                let mut missing: Vec<(u64, u64)> = Vec::new();
                let empty = RangeSet::new();
                for r in (f.committed_log)(p) {
                    let have = tally.processed.get(&(p, r.producer)).unwrap_or(&empty);
                    for gap in have.gaps(&(r.first_seq..r.first_seq + u64::from(r.count))) {
                        let start = r.base_offset + (gap.start - r.first_seq);
                        let end = start + (gap.end - gap.start);
                        match missing.last_mut() {
                            Some(last) if last.1 == start => last.1 = end,
                            _ => missing.push((start, end)),
                        }
                    }
                }
                for (start, stop) in missing {
                    lost[g] += stop - start;
                    let (story, kind) = self.story(g as u32, p, start, f);
                    violations.push(Violation {
                        at: end,
                        kind,
                        message: format!(
                            "group {} never processed {} offset{} {} ({} record{}){}",
                            (f.group_name)(g as u32),
                            (f.partition_name)(p),
                            if stop - start == 1 { "" } else { "s" },
                            super::span_text(start, stop),
                            stop - start,
                            if stop - start == 1 { "" } else { "s" },
                            story,
                        ),
                    });
                }
            }
        }
        (violations, lost)
    }

    /// Why a group may have skipped offsets from `start`: how its positions were set,
    /// and what happened to the member that read the partition; and the kind of failure
    /// (`run-ended-first`, `never-positioned`, `skipped`).
    fn story(&self, g: u32, p: Pidx, start: u64, f: &Final) -> (String, &'static str) {
        let mut events: Vec<(Time, String)> = Vec::new();
        let positions = self.groups[g as usize]
            .positions
            .get(&p)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &(at, m, offset, cause) in positions {
            let who = (f.member_name)(g, m);
            events.push((
                at,
                match cause {
                    PositionCause::NoCommittedOffset(policy) => format!(
                        "{who} had no committed offset at {at} and auto.offset.reset={} put it at offset {offset}",
                        policy.word()
                    ),
                    PositionCause::OutOfRange(policy) => format!(
                        "{who}'s position was out of range at {at} and auto.offset.reset={} put it at offset {offset}",
                        policy.word()
                    ),
                    PositionCause::Committed => format!("{who} resumed from committed offset {offset} at {at}"),
                    PositionCause::Truncated => {
                        format!("{who} found the log truncated at {at} and moved back to offset {offset}")
                    }
                },
            ));
        }
        let readers: Vec<u32> = positions.iter().map(|e| e.1).collect();
        for (at, m, crashed) in (f.member_lifecycle)(g) {
            if readers.contains(&m) && crashed {
                events.push((at, format!("{} crashed at {at}", (f.member_name)(g, m))));
            }
        }
        // Stable sort: events at one instant keep the order above.
        events.sort_by_key(|e| e.0);
        let reached = self.groups[g as usize].reached.get(&p).copied().unwrap_or(0);
        if start >= reached && !positions.is_empty() {
            return (
                format!(
                    ": the run ended before the group got there (it had processed up to offset {reached}); a longer drain would show whether it catches up"
                ),
                "run-ended-first",
            );
        }
        if events.is_empty() {
            return (
                String::from("; no member ever got a position on it"),
                "never-positioned",
            );
        }
        let texts: Vec<String> = events.into_iter().map(|e| e.1).collect();
        let mut story = format!(": {}", texts.join("; "));
        if positions.iter().all(|e| e.2 > start) {
            story.push_str(&format!(
                "; no position of the group was ever at or below offset {start}"
            ));
        }
        (story, "skipped")
    }
}
