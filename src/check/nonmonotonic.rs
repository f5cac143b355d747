//! `nonmonotonic-poll`: within one assignment of a partition to one member process, the
//! offsets `poll()` hands out only go forward. A member that restarts, or gives the
//! partition up and gets it back, starts a new assignment; a position reset
//! (OFFSET_OUT_OF_RANGE with `auto.offset.reset`) within an assignment is what this
//! check catches, as Jepsen's Kafka tests do.

use crate::check::Violation;
use crate::kafka::{Obs, Pidx, PositionCause};
use crate::sim::Time;
use std::collections::BTreeMap;

/// A position change: when, to which offset, and why.
type Reset = Option<(Time, u64, PositionCause)>;

/// One backward step: when, group, member, partition, the end of what it had been
/// handed, the offset it got, and the last position change.
type Found = (Time, u32, u32, Pidx, u64, u64, Reset);

#[derive(Default)]
pub struct NonmonotonicPoll {
    /// Per (group, member, partition): the end of the last records handed out, and the
    /// last position change within the assignment.
    seen: BTreeMap<(u32, u32, Pidx), (u64, Reset)>,
    pub found: Vec<Found>,
}

impl NonmonotonicPoll {
    pub fn observe(&mut self, at: Time, obs: &Obs) {
        match obs {
            Obs::MemberStarted { group, member } => {
                self.seen.retain(|(g, m, _), _| (g, m) != (group, member));
            }
            Obs::Revoked {
                group,
                member,
                partitions,
            } => {
                for p in partitions {
                    self.seen.remove(&(*group, *member, *p));
                }
            }
            Obs::PositionSet {
                group,
                member,
                partition,
                offset,
                cause,
            } => {
                if let Some(entry) = self.seen.get_mut(&(*group, *member, *partition)) {
                    entry.1 = Some((at, *offset, *cause));
                }
            }
            Obs::Processed { group, member, records } => {
                for (p, r) in records {
                    let key = (*group, *member, *p);
                    match self.seen.get_mut(&key) {
                        Some((end, reset)) => {
                            if r.base_offset < *end {
                                // Reported once: the member reads on from where it was put.
                                self.found.push((at, *group, *member, *p, *end, r.base_offset, *reset));
                            }
                            *end = r.end_offset();
                        }
                        None => {
                            self.seen.insert(key, (r.end_offset(), None));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    pub fn violations(
        &self,
        partition_name: &dyn Fn(Pidx) -> String,
        member_name: &dyn Fn(u32, u32) -> String,
    ) -> Vec<Violation> {
        self.found
            .iter()
            .map(|&(at, g, m, p, end, offset, reset)| {
                let (why, kind) = match reset {
                    Some((t, o, PositionCause::OutOfRange(policy))) => (
                        format!(
                            ": at {t} its position was out of range and auto.offset.reset={} moved it to offset {o}",
                            policy.word()
                        ),
                        "position-reset",
                    ),
                    Some((t, o, PositionCause::Truncated)) => (
                        format!(
                            ": at {t} the new leader's log ended below its position (truncation detected, KIP-320) and it moved back to offset {o}"
                        ),
                        "position-truncated",
                    ),
                    Some((t, o, _)) => (format!(": its position was set to {o} at {t}"), "position-set"),
                    None => (String::new(), "offset-went-back"),
                };
                Violation {
                    at,
                    kind,
                    message: format!(
                        "{} had been handed {} up to offset {} and then got offset {offset} in the same assignment{why}",
                        member_name(g, m),
                        partition_name(p),
                        end.saturating_sub(1)
                    ),
                }
            })
            .collect()
    }
}
