//! The leader epoch cache (`LeaderEpochFileCache`): for each leader epoch, the first
//! offset written in it. Followers use it to find where their log diverges from the
//! leader's (KIP-101, KIP-279, KIP-320; KAFKA.md §1.7).

use serde::Serialize;

/// `(epoch, end offset)` as answered to OffsetsForLeaderEpoch or put in a DivergingEpoch;
/// `None` is Kafka's UNDEFINED (-1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct EpochEnd {
    pub epoch: Option<u32>,
    pub end_offset: Option<u64>,
}

impl EpochEnd {
    pub const UNDEFINED: EpochEnd = EpochEnd {
        epoch: None,
        end_offset: None,
    };
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    /// (epoch, start offset), increasing in both.
    entries: Vec<(u32, u64)>,
}

impl EpochCache {
    pub fn latest_epoch(&self) -> Option<u32> {
        self.entries.last().map(|e| e.0)
    }

    pub fn entries(&self) -> &[(u32, u64)] {
        &self.entries
    }

    /// Records that `epoch` starts at `start_offset` (`LeaderEpochFileCache.assign`):
    /// nothing changes when the latest entry is this epoch at or before this offset;
    /// otherwise every entry with an epoch at or above `epoch`, or starting at or after
    /// `start_offset`, is removed first, so both stay increasing.
    pub fn assign(&mut self, epoch: u32, start_offset: u64) {
        if self
            .entries
            .last()
            .is_some_and(|&(e, s)| e == epoch && start_offset >= s)
        {
            return;
        }
        self.entries.retain(|&(e, start)| e < epoch && start < start_offset);
        self.entries.push((epoch, start_offset));
    }

    /// Drops the epochs that start at or after `offset` (`truncateFromEnd`).
    pub fn truncate_from_end(&mut self, offset: u64) {
        self.entries.retain(|&(_, start)| start < offset);
    }

    /// The start offset of `epoch`, if it is in the cache.
    pub fn start_of(&self, epoch: u32) -> Option<u64> {
        self.entries.iter().find(|e| e.0 == epoch).map(|e| e.1)
    }

    /// `endOffsetFor(requested, LEO)`, post-KIP-279 (KAFKA.md §1.7): the largest epoch
    /// at or below `requested` and the offset where the next epoch starts.
    pub fn end_offset_for(&self, requested: Option<u32>, log_end_offset: u64) -> EpochEnd {
        let Some(requested) = requested else {
            return EpochEnd::UNDEFINED;
        };
        if self.latest_epoch() == Some(requested) {
            return EpochEnd {
                epoch: Some(requested),
                end_offset: Some(log_end_offset),
            };
        }
        let Some(&(_, higher_start)) = self.entries.iter().find(|e| e.0 > requested) else {
            return EpochEnd::UNDEFINED;
        };
        match self.entries.iter().rev().find(|e| e.0 <= requested) {
            None => EpochEnd {
                epoch: Some(requested),
                end_offset: Some(higher_start),
            },
            Some(&(floor, _)) => EpochEnd {
                epoch: Some(floor),
                end_offset: Some(higher_start),
            },
        }
    }

    /// The KIP-101 leader's answer (Kafka 0.11 to 1.x, before KIP-279): the start of the
    /// first epoch above `requested`, or the LEO when `requested` is the latest; no epoch.
    pub fn end_offset_for_kip101(&self, requested: Option<u32>, log_end_offset: u64) -> EpochEnd {
        let Some(requested) = requested else {
            return EpochEnd::UNDEFINED;
        };
        // An epoch older than any the leader knows: no answer (0.11's cache).
        if self.entries.first().is_some_and(|&(e, _)| requested < e) {
            return EpochEnd::UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return EpochEnd {
                epoch: None,
                end_offset: Some(log_end_offset),
            };
        }
        match self.entries.iter().find(|e| e.0 > requested) {
            Some(&(_, start)) => EpochEnd {
                epoch: None,
                end_offset: Some(start),
            },
            None => EpochEnd::UNDEFINED,
        }
    }
}

/// What a follower does with the leader's answer (`AbstractFetcherThread.getOffsetTruncationState`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Truncation {
    pub offset: u64,
    /// False when the follower must ask again with its new latest epoch (the KIP-279 loop).
    pub completed: bool,
}

/// The follower's truncation offset given the leader's `(epoch, end offset)` answer, its
/// own cache, LEO and high watermark.
pub fn truncation_offset(
    leader: EpochEnd,
    follower: &EpochCache,
    log_end_offset: u64,
    high_watermark: u64,
) -> Truncation {
    let Some(leader_end) = leader.end_offset else {
        // No answer to go by: fall back to the high watermark.
        return Truncation {
            offset: high_watermark.min(log_end_offset),
            completed: true,
        };
    };
    let Some(leader_epoch) = leader.epoch else {
        // A pre-KIP-279 leader gives no epoch.
        return Truncation {
            offset: leader_end.min(log_end_offset),
            completed: true,
        };
    };
    let mine = follower.end_offset_for(Some(leader_epoch), log_end_offset);
    match (mine.epoch, mine.end_offset) {
        (Some(e), Some(end)) if e != leader_epoch => Truncation {
            offset: end.min(log_end_offset),
            completed: false,
        },
        (Some(_), Some(end)) => Truncation {
            offset: end.min(leader_end).min(log_end_offset),
            completed: true,
        },
        _ => Truncation {
            offset: leader_end.min(log_end_offset),
            completed: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(u32, u64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        c
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(0, 0), (2, 5)]);
        c.assign(2, 7); // the latest epoch again, later: nothing changes
        assert_eq!(c.entries(), &[(0, 0), (2, 5)]);
        c.assign(4, 5); // same start as epoch 2: epoch 2 is replaced
        assert_eq!(c.entries(), &[(0, 0), (4, 5)]);
        c.assign(3, 3); // an older epoch earlier in the log removes what conflicts with it
        assert_eq!(c.entries(), &[(0, 0), (3, 3)]);
        c.truncate_from_end(3);
        assert_eq!(c.entries(), &[(0, 0)]);
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(0, 0), (2, 1), (4, 4)]);
        let at = |e| c.end_offset_for(Some(e), 6);
        assert_eq!(
            at(4),
            EpochEnd {
                epoch: Some(4),
                end_offset: Some(6)
            }
        );
        assert_eq!(
            at(3),
            EpochEnd {
                epoch: Some(2),
                end_offset: Some(4)
            }
        );
        assert_eq!(
            at(1),
            EpochEnd {
                epoch: Some(0),
                end_offset: Some(1)
            }
        );
        assert_eq!(at(5), EpochEnd::UNDEFINED);
        assert_eq!(c.end_offset_for(None, 6), EpochEnd::UNDEFINED);
        let late = cache(&[(3, 10)]);
        assert_eq!(
            late.end_offset_for(Some(1), 12),
            EpochEnd {
                epoch: Some(1),
                end_offset: Some(10)
            }
        );
    }

    /// KAFKA.md §1.8, KIP-279: leader 100 has `0:0, 1:2, 2:2, 3:2, 4:4, 5:4` (cache
    /// {0:0, 2:1, 4:4}); follower 101 has `0:0, 1:1, 2:3` (cache {0:0, 1:1, 3:2}, LEO 3).
    #[test]
    fn kip_279_loop_converges_where_kip_101_diverges() {
        let leader = cache(&[(0, 0), (2, 1), (4, 4)]);
        let mut follower = cache(&[(0, 0), (1, 1), (3, 2)]);
        // KIP-101 leader: asked for epoch 3, answers the start of epoch 4, i.e. 4; the
        // follower truncates to min(4, 3) = 3: nothing, and offsets 1..3 diverge.
        let answer = leader.end_offset_for_kip101(follower.latest_epoch(), 6);
        assert_eq!(
            truncation_offset(answer, &follower, 3, 0),
            Truncation {
                offset: 3,
                completed: true
            }
        );
        // KIP-279: the leader answers (2, 4); the follower does not know epoch 2, its
        // largest epoch at or below 2 is 1, ending at 2: truncate to 2 and ask again.
        let answer = leader.end_offset_for(follower.latest_epoch(), 6);
        assert_eq!(
            answer,
            EpochEnd {
                epoch: Some(2),
                end_offset: Some(4)
            }
        );
        let t = truncation_offset(answer, &follower, 3, 0);
        assert_eq!(
            t,
            Truncation {
                offset: 2,
                completed: false
            }
        );
        follower.truncate_from_end(2);
        // Asked for epoch 1, the leader answers (0, 1): truncate to 1, done.
        let answer = leader.end_offset_for(follower.latest_epoch(), 6);
        assert_eq!(
            answer,
            EpochEnd {
                epoch: Some(0),
                end_offset: Some(1)
            }
        );
        assert_eq!(
            truncation_offset(answer, &follower, 2, 0),
            Truncation {
                offset: 1,
                completed: true
            }
        );
    }

    /// KIP-101 scenario 2 (shouldNotAllowDivergentLogs): leader `0..4:E0, 5..13:E1`,
    /// follower `0..9:E0`. Asked for epoch 0, the leader answers 5: truncate to 5.
    #[test]
    fn kip_101_truncates_to_the_start_of_the_next_epoch() {
        let leader = cache(&[(0, 0), (1, 5)]);
        let follower = cache(&[(0, 0)]);
        let answer = leader.end_offset_for_kip101(Some(0), 14);
        assert_eq!(
            truncation_offset(answer, &follower, 10, 10),
            Truncation {
                offset: 5,
                completed: true
            }
        );
        let answer = leader.end_offset_for(Some(0), 14);
        assert_eq!(
            truncation_offset(answer, &follower, 10, 10),
            Truncation {
                offset: 5,
                completed: true
            }
        );
    }
}
