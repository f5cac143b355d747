//! The KRaft quorum's Raft state of one controller (KAFKA.md §7.4): epochs and votes,
//! PreVote (KIP-996), the fetch and election timeouts, check-quorum resignation, and the
//! leader's view of what the voters have replicated. The replicated state itself (the
//! metadata image and the broker registrations) lives in [`super::controller::Controller`],
//! which ships it whole to a follower whose log differs from the leader's.

use crate::sim::rng::SimRng;
use crate::sim::{Duration, Time};
use rand::RngExt;

/// `controller.quorum.fetch.timeout.ms`: a follower that has heard nothing from its leader
/// this long tries to become leader.
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(2000);
/// `controller.quorum.election.timeout.ms`, randomised to `T + rand(T)`.
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);
/// `KafkaRaftClient.MAX_FETCH_WAIT_MS`: the leader parks a fetch this long at most.
pub const MAX_FETCH_WAIT: Duration = Duration::from_millis(500);
/// Check quorum (`LeaderState`): the leader resigns when a majority has not fetched for
/// 1.5 × the fetch timeout.
pub const CHECK_QUORUM: Duration = Duration::from_millis(3000);

/// What one voter has replicated, as the leader knows from its fetches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// The version (log end) and the epoch of its last entry, as it last fetched.
    pub version: u64,
    pub epoch: u32,
    pub last_fetch: Option<Time>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QState {
    /// Follows `leader` (or looks for one, when it is `None`).
    Follower,
    /// KIP-996: asks for pre-votes without bumping the epoch.
    Prospective {
        granted: Vec<u32>,
    },
    /// Asks for votes in a new epoch.
    Candidate {
        granted: Vec<u32>,
    },
    Leader,
}

pub struct Quorum {
    /// This voter's id, 1-based (`controller-1` is 1).
    pub id: u32,
    pub voters: u32,
    /// Persistent: the epoch and the vote cast in it (`quorum-state`).
    pub epoch: u32,
    pub voted_for: Option<u32>,
    /// Persistent: the epoch of the last entry of the log.
    pub log_epoch: u32,
    pub leader: Option<u32>,
    pub state: QState,
    /// Per voter (index id - 1), while leader.
    pub progress: Vec<Progress>,
    /// The highest version known to be on a majority of voters.
    pub committed: u64,
    /// When this voter last heard from its leader (a fetch answered): it refuses pre-votes
    /// while that is recent (KIP-996).
    pub last_leader_contact: Option<Time>,
    pub rng: SimRng,
}

impl Quorum {
    /// At time zero, `controller-1` leads epoch 1 and the others follow it.
    pub fn new(id: u32, voters: u32, rng: SimRng) -> Quorum {
        Quorum {
            id,
            voters,
            epoch: 1,
            voted_for: Some(1),
            log_epoch: 1,
            leader: Some(1),
            state: if id == 1 { QState::Leader } else { QState::Follower },
            progress: vec![Progress::default(); voters as usize],
            committed: 0,
            last_leader_contact: Some(Time::ZERO),
            rng,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.state == QState::Leader
    }

    pub fn majority(&self) -> usize {
        self.voters as usize / 2 + 1
    }

    /// `T + rand(T)` for the election timeout.
    pub fn election_timeout(&mut self) -> Duration {
        let t = ELECTION_TIMEOUT.as_millis();
        Duration::from_millis(t + self.rng.random_range(0..t))
    }

    /// Whether a candidate whose log ends at (`epoch`, `version`) is at least as up to
    /// date as this voter's log, which ends at `version_here`.
    pub fn log_ok(&self, epoch: u32, version: u64, version_here: u64) -> bool {
        (epoch, version) >= (self.log_epoch, version_here)
    }

    /// Adopts a newer epoch: no vote cast in it yet, no leader known, and a leader or
    /// candidate of an older one steps down.
    pub fn adopt(&mut self, epoch: u32, leader: Option<u32>) {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.voted_for = None;
        }
        // Only a leader's own word makes it leader: a voter never follows itself.
        self.leader = leader.filter(|&l| l != self.id);
        self.state = QState::Follower;
    }

    /// Whether a pre-vote may be granted: the candidate's log is up to date and this voter
    /// has not heard from a leader within the fetch timeout (KIP-996).
    pub fn grants_pre_vote(&self, now: Time, epoch: u32, last_epoch: u32, version: u64, version_here: u64) -> bool {
        let recent_leader = self.is_leader()
            || (self.leader.is_some() && self.last_leader_contact.is_some_and(|t| now.since(t) < FETCH_TIMEOUT));
        epoch >= self.epoch && !recent_leader && self.log_ok(last_epoch, version, version_here)
    }

    /// The version a majority holds in this leader's epoch, counting this voter at
    /// `version_here`.
    pub fn majority_version(&self, version_here: u64) -> u64 {
        let mut held: Vec<u64> = (1..=self.voters)
            .map(|v| {
                if v == self.id {
                    version_here
                } else {
                    let p = &self.progress[v as usize - 1];
                    if p.epoch == self.epoch { p.version } else { 0 }
                }
            })
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        held[self.majority() - 1]
    }

    /// Whether a majority of voters (this one included) fetched within the check-quorum
    /// window.
    pub fn quorum_heard(&self, now: Time) -> bool {
        let heard = (1..=self.voters)
            .filter(|&v| {
                v == self.id
                    || self.progress[v as usize - 1]
                        .last_fetch
                        .is_some_and(|t| now.since(t) < CHECK_QUORUM)
            })
            .count();
        heard >= self.majority()
    }
}
