//! The classic group coordinator (KAFKA.md §4.2): JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup on the broker that coordinates the group, with generations, the leader, the
//! protocol vote, `group.initial.rebalance.delay.ms`, session timeouts and static
//! membership. Follows `GroupCoordinator` / `ClassicGroup` of the Java coordinator.
//!
//! When a group becomes stable or empty the broker stores its metadata (see
//! [`GroupSnapshot`]) with the replicas of the group's `__consumer_offsets` partition; a
//! coordinator that restarts, or a broker that takes the partition over, loads it.

use crate::kafka::assignor::{Strategy, select_protocol};
use crate::kafka::protocol::{ErrorCode, JoinGroup, JoinResult, Msg, Subscription};
use crate::kafka::{Obs, Out, Pidx, RebalanceCause, Timer};
use crate::sim::rng::SimRng;
use crate::sim::{Duration, NodeId, Time, TimerId};
use rand::RngExt;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupMember {
    /// Unique for the coordinator's lifetime: timers name members by it.
    serial: u64,
    id: String,
    instance: Option<String>,
    /// The member's index in its group (which consumer node it is).
    member: u32,
    node: NodeId,
    protocols: Vec<String>,
    subscription: Subscription,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    last_heartbeat: Time,
    /// A JoinGroup waiting for the rebalance to complete: its request id.
    awaiting_join: Option<u64>,
    awaiting_sync: Option<u64>,
    assignment: Vec<Pidx>,
}

#[derive(Clone, Debug)]
struct ClassicGroup {
    state: GroupState,
    generation: i32,
    protocol: Option<String>,
    leader: Option<String>,
    /// In the order they joined (`ClassicGroup.members`).
    members: Vec<GroupMember>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    /// With the serial of the timer that expires each after the session timeout.
    pending: Vec<(String, u64, TimerId)>,
    /// The current join phase: its token, when it began, and its deadline.
    join: Option<(u64, Time, Time)>,
    /// The timer that ends the join phase, cancelled when it completes sooner.
    join_timer: Option<TimerId>,
    /// The initial delayed join of an empty group (`InitialDelayedJoin`): whether a
    /// member joined during the current delay, and how much of the rebalance timeout is
    /// left for further delays.
    initial: Option<(bool, Duration)>,
}

impl ClassicGroup {
    fn new() -> ClassicGroup {
        ClassicGroup {
            state: GroupState::Empty,
            generation: 0,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: Vec::new(),
            join: None,
            join_timer: None,
            initial: None,
        }
    }
    fn find(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }
}

/// What the coordinator writes to `__consumer_offsets` about a group when it becomes
/// stable or empty (`GroupMetadataManager.storeGroup`), and a new coordinator loads.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSnapshot {
    generation: i32,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<GroupMember>,
}

/// Timers of the coordinator.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupTimer {
    /// The join phase `token` of `group` reached its deadline.
    Join { group: u32, token: u64 },
    /// Member `serial` of `group` may have missed its session timeout.
    Session { group: u32, serial: u64 },
    /// A member id handed out with MEMBER_ID_REQUIRED was never used.
    Pending { group: u32, serial: u64 },
}

pub struct Coordinator {
    groups: BTreeMap<u32, ClassicGroup>,
    /// Groups whose metadata changed and must be stored.
    changed: Vec<u32>,
    rng: SimRng,
    next: u64,
    initial_delay: Duration,
}

impl Coordinator {
    pub fn new(rng: SimRng, initial_delay: Duration) -> Coordinator {
        Coordinator {
            groups: BTreeMap::new(),
            changed: Vec::new(),
            rng,
            next: 0,
            initial_delay,
        }
    }

    /// The process died: group membership is gone.
    pub fn crash(&mut self) {
        self.groups.clear();
        self.changed.clear();
    }

    /// Whether the coordinator holds `group`.
    pub fn has(&self, group: u32) -> bool {
        self.groups.contains_key(&group)
    }

    /// The groups whose metadata changed since the last call, with what to store.
    pub fn take_changes(&mut self) -> Vec<(u32, GroupSnapshot)> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .filter_map(|g| {
                let c = self.groups.get(&g)?;
                Some((
                    g,
                    GroupSnapshot {
                        generation: c.generation,
                        protocol: c.protocol.clone(),
                        leader: c.leader.clone(),
                        members: c.members.clone(),
                    },
                ))
            })
            .collect()
    }

    /// Loads a group from its stored metadata (`GroupMetadataManager.loadGroup`), as the
    /// broker that takes over its `__consumer_offsets` partition does: stable with its
    /// members, whose sessions start again now.
    pub fn load(&mut self, now: Time, group: u32, snapshot: &GroupSnapshot, out: &mut Out) {
        let mut g = ClassicGroup::new();
        g.generation = snapshot.generation;
        g.protocol = snapshot.protocol.clone();
        g.leader = snapshot.leader.clone();
        g.members = snapshot.members.clone();
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        for m in &mut g.members {
            self.next += 1;
            m.serial = self.next;
            m.last_heartbeat = now;
            m.awaiting_join = None;
            m.awaiting_sync = None;
            out.set_timer(
                m.session_timeout,
                Timer::Group(GroupTimer::Session {
                    group,
                    serial: m.serial,
                }),
            );
        }
        self.groups.insert(group, g);
    }

    /// This broker no longer coordinates `group` (it lost the leadership of the group's
    /// `__consumer_offsets` partition): its state goes.
    pub fn forget(&mut self, group: u32, out: &mut Out) {
        let Some(mut g) = self.groups.remove(&group) else {
            return;
        };
        // `onGroupUnloaded`: parked joins and syncs are told to find the new coordinator.
        for m in &g.members {
            if let Some(req) = m.awaiting_join {
                join_error(out, m.node, req, ErrorCode::NotCoordinator);
            }
        }
        answer_syncs(&mut g.members, out, |_| Err(ErrorCode::NotCoordinator));
    }

    fn token(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// A member id as the Java coordinator makes it: the client id, a dash, a random UUID
    /// (here its first 8 hex digits, drawn from the broker's seeded stream).
    fn member_id(&mut self, client: &str) -> String {
        format!("{client}-{:08x}", self.rng.random::<u32>())
    }

    pub fn join(&mut self, now: Time, from: NodeId, client: &str, msg: Msg, out: &mut Out) {
        let Msg::JoinGroupRequest { id, join } = msg else {
            return;
        };
        let JoinGroup {
            group,
            member,
            member_id,
            instance,
            protocols,
            subscription,
            session_timeout_ms,
            rebalance_timeout_ms,
        } = *join;
        let new_member = |this: &mut Coordinator, id: String| GroupMember {
            serial: this.token(),
            id,
            instance: instance.clone(),
            member,
            node: from,
            protocols: protocols.clone(),
            subscription: subscription.clone(),
            session_timeout: Duration::from_millis(session_timeout_ms),
            rebalance_timeout: Duration::from_millis(rebalance_timeout_ms),
            last_heartbeat: now,
            awaiting_join: None,
            awaiting_sync: None,
            assignment: Vec::new(),
        };
        let g = self.groups.entry(group).or_insert_with(ClassicGroup::new);
        // A member that supports none of the protocols every member supports is refused
        // (`supportsProtocols`).
        if g.state != GroupState::Empty && !g.members.is_empty() {
            let shared = protocols
                .iter()
                .any(|p| g.members.iter().all(|m| m.protocols.contains(p)));
            if !shared {
                return join_error(out, from, id, ErrorCode::InconsistentGroupProtocol);
            }
        }
        if member_id.is_empty() {
            if let Some(instance) = &instance {
                // A static member: it takes over its instance's entry, or joins at once.
                let existing = g.members.iter().position(|m| m.instance.as_ref() == Some(instance));
                let fresh = self.member_id(client);
                let g = self.groups.get_mut(&group).expect("exists");
                if let Some(k) = existing {
                    let old = g.members[k].id.clone();
                    let m = &mut g.members[k];
                    m.id = fresh.clone();
                    m.node = from;
                    m.last_heartbeat = now;
                    m.awaiting_sync = None;
                    if g.leader.as_ref() == Some(&old) {
                        g.leader = Some(fresh.clone());
                    }
                    let changed = m.subscription.topics != subscription.topics || m.protocols != protocols;
                    m.protocols = protocols;
                    m.subscription = subscription;
                    m.awaiting_join = Some(id);
                    let serial = m.serial;
                    out.set_timer(m.session_timeout, Timer::Group(GroupTimer::Session { group, serial }));
                    match g.state {
                        GroupState::Stable if !changed => {
                            // KIP-345: a static member coming back with the same
                            // subscription gets its assignment without a rebalance.
                            g.members[k].awaiting_join = None;
                            let result = self.join_result(group, &fresh, false);
                            out.send(from, Msg::JoinGroupResponse { id, result: Ok(result) });
                        }
                        GroupState::PreparingRebalance => self.maybe_complete_join(now, group, out),
                        _ => self.prepare_rebalance(now, group, RebalanceCause::Joined(member), out),
                    }
                    return;
                }
                let mut m = new_member(self, fresh);
                m.awaiting_join = Some(id);
                return self.add_member(now, group, m, out);
            }
            // KIP-394: a new dynamic member first gets its id, and joins again with it.
            let fresh = self.member_id(client);
            let serial = self.token();
            let g = self.groups.get_mut(&group).expect("exists");
            // A pending member that never joins again expires like a silent member.
            let session = Duration::from_millis(session_timeout_ms);
            let expire = out.set_timer(session, Timer::Group(GroupTimer::Pending { group, serial }));
            g.pending.push((fresh.clone(), serial, expire));
            out.send(
                from,
                Msg::JoinGroupResponse {
                    id,
                    result: Err((ErrorCode::MemberIdRequired, fresh)),
                },
            );
            return;
        }
        if let Some(k) = g.pending.iter().position(|p| p.0 == member_id) {
            out.cancel_timer(g.pending.remove(k).2);
            let mut m = new_member(self, member_id);
            m.awaiting_join = Some(id);
            return self.add_member(now, group, m, out);
        }
        let Some(k) = g.find(&member_id) else {
            return join_error(out, from, id, ErrorCode::UnknownMemberId);
        };
        let is_leader = g.leader.as_ref() == Some(&member_id);
        let m = &mut g.members[k];
        let changed = m.subscription != subscription || m.protocols != protocols;
        m.node = from;
        m.last_heartbeat = now;
        m.protocols = protocols;
        m.subscription = subscription;
        match g.state {
            GroupState::PreparingRebalance => {
                m.awaiting_join = Some(id);
                self.maybe_complete_join(now, group, out);
            }
            // Nothing changed: the member gets the current generation again (the leader
            // with the members, while they wait for its assignment); in a stable group
            // a leader's JoinGroup starts a rebalance (`classicGroupJoinExistingMember`).
            GroupState::CompletingRebalance if !changed => {
                let result = self.join_result(group, &member_id, true);
                out.send(from, Msg::JoinGroupResponse { id, result: Ok(result) });
            }
            GroupState::Stable if !changed && !is_leader => {
                let result = self.join_result(group, &member_id, false);
                out.send(from, Msg::JoinGroupResponse { id, result: Ok(result) });
            }
            _ => {
                m.awaiting_join = Some(id);
                self.prepare_rebalance(now, group, RebalanceCause::Rejoined(member), out);
            }
        }
    }

    /// A new member joins: the first one leads; its session timer starts; the group
    /// rebalances, or waits longer in its initial delay.
    fn add_member(&mut self, now: Time, group: u32, m: GroupMember, out: &mut Out) {
        let (member, serial, timeout) = (m.member, m.serial, m.session_timeout);
        let g = self.groups.get_mut(&group).expect("exists");
        g.members.push(m);
        if g.leader.is_none() {
            g.leader = Some(g.members[0].id.clone());
        }
        out.set_timer(timeout, Timer::Group(GroupTimer::Session { group, serial }));
        match g.state {
            GroupState::PreparingRebalance => {
                // `newMemberAdded` counts only in a group's very first join phase.
                if let Some((added, _)) = g.initial.as_mut()
                    && g.generation == 0
                {
                    *added = true;
                }
                self.maybe_complete_join(now, group, out);
            }
            _ => self.prepare_rebalance(now, group, RebalanceCause::Joined(member), out),
        }
    }

    /// `prepareRebalance`: a new join phase. An empty group waits
    /// `group.initial.rebalance.delay.ms` for more members; otherwise the phase ends when
    /// every member has rejoined or the longest rebalance timeout passes.
    fn prepare_rebalance(&mut self, now: Time, group: u32, cause: RebalanceCause, out: &mut Out) {
        let token = self.token();
        let delay = self.initial_delay;
        let g = self.groups.get_mut(&group).expect("exists");
        // Members waiting for their assignment must join again.
        answer_syncs(&mut g.members, out, |_| Err(ErrorCode::RebalanceInProgress));
        let was_empty = g.state == GroupState::Empty;
        g.state = GroupState::PreparingRebalance;
        let timeout = max_rebalance_timeout(g);
        g.initial = was_empty.then(|| (false, Duration(timeout.0.saturating_sub(delay.0))));
        let wait = if was_empty { delay } else { timeout };
        g.join = Some((token, now, now + wait));
        out.observe(Obs::RebalanceBegan {
            group,
            generation: g.generation,
            cause,
        });
        let timer = out.set_timer(wait, Timer::Group(GroupTimer::Join { group, token }));
        if let Some(stale) = self.groups.get_mut(&group).expect("exists").join_timer.replace(timer) {
            out.cancel_timer(stale);
        }
        if !was_empty {
            self.maybe_complete_join(now, group, out);
        }
    }

    /// Completes the join phase once every member has rejoined (not during the initial
    /// delay, which runs its course).
    fn maybe_complete_join(&mut self, now: Time, group: u32, out: &mut Out) {
        let g = &self.groups[&group];
        if g.state == GroupState::PreparingRebalance
            && g.initial.is_none()
            && g.members.iter().all(|m| m.awaiting_join.is_some())
            && g.pending.is_empty()
        {
            self.complete_join(now, group, out);
        }
    }

    /// `onCompleteJoin`: members that did not rejoin are removed, the generation goes up,
    /// the protocol is voted, and every member gets its JoinGroup response (the leader
    /// with the members' subscriptions).
    fn complete_join(&mut self, now: Time, group: u32, out: &mut Out) {
        let g = self.groups.get_mut(&group).expect("exists");
        g.join = None;
        if let Some(timer) = g.join_timer.take() {
            out.cancel_timer(timer);
        }
        g.initial = None;
        for (_, _, expire) in g.pending.drain(..) {
            out.cancel_timer(expire);
        }
        // Dynamic members that did not join again are gone; static ones stay until their
        // session times out (KIP-345). The leader is one that joined.
        if g.members.iter().all(|m| m.awaiting_join.is_none()) {
            g.members.clear();
        }
        g.members.retain(|m| m.awaiting_join.is_some() || m.instance.is_some());
        let joined = |id: &String| g.members.iter().any(|m| &m.id == id && m.awaiting_join.is_some());
        if !g.leader.as_ref().is_some_and(joined) {
            g.leader = g
                .members
                .iter()
                .find(|m| m.awaiting_join.is_some())
                .map(|m| m.id.clone());
        }
        // `rescheduleClassicGroupMemberHeartbeat`: every session starts again now.
        for m in &mut g.members {
            m.last_heartbeat = now;
        }
        g.generation += 1;
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.protocol = None;
            self.changed.push(group);
            return;
        }
        let votes: Vec<(String, Vec<Strategy>)> = g
            .members
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    m.protocols.iter().filter_map(|p| Strategy::parse(p)).collect(),
                )
            })
            .collect();
        let ballot: Vec<(&str, &[Strategy])> = votes.iter().map(|(id, s)| (id.as_str(), s.as_slice())).collect();
        g.protocol = Some(
            select_protocol(&ballot)
                .map(|s| s.name().to_string())
                .unwrap_or_else(|_| g.members[0].protocols[0].clone()),
        );
        g.state = GroupState::CompletingRebalance;
        let waiting: Vec<(NodeId, u64, String)> = g
            .members
            .iter_mut()
            .filter_map(|m| m.awaiting_join.take().map(|req| (m.node, req, m.id.clone())))
            .collect();
        for (node, req, id) in waiting {
            let result = self.join_result(group, &id, true);
            out.send(
                node,
                Msg::JoinGroupResponse {
                    id: req,
                    result: Ok(result),
                },
            );
        }
    }

    fn join_result(&self, group: u32, member_id: &str, with_members: bool) -> Box<JoinResult> {
        let g = &self.groups[&group];
        let leader = g.leader.clone().unwrap_or_default();
        let members = if with_members && leader == member_id {
            g.members
                .iter()
                .map(|m| (m.id.clone(), m.instance.clone(), m.subscription.clone()))
                .collect()
        } else {
            Vec::new()
        };
        Box::new(JoinResult {
            generation: g.generation,
            protocol: g.protocol.clone().unwrap_or_default(),
            leader,
            member_id: member_id.to_string(),
            members,
        })
    }

    pub fn sync(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Out) {
        let Msg::SyncGroupRequest {
            id,
            group,
            generation,
            member_id,
            assignments,
        } = msg
        else {
            return;
        };
        let reply = |out: &mut Out, result| out.send(from, Msg::SyncGroupResponse { id, result });
        let Some(g) = self.groups.get_mut(&group) else {
            return reply(out, Err(ErrorCode::UnknownMemberId));
        };
        let Some(k) = g.find(&member_id) else {
            return reply(out, Err(ErrorCode::UnknownMemberId));
        };
        if generation != g.generation {
            return reply(out, Err(ErrorCode::IllegalGeneration));
        }
        g.members[k].last_heartbeat = now;
        match g.state {
            GroupState::Empty => reply(out, Err(ErrorCode::UnknownMemberId)),
            GroupState::PreparingRebalance => reply(out, Err(ErrorCode::RebalanceInProgress)),
            GroupState::Stable => reply(out, Ok(g.members[k].assignment.clone())),
            GroupState::CompletingRebalance => {
                g.members[k].awaiting_sync = Some(id);
                if g.leader.as_ref() != Some(&member_id) {
                    return;
                }
                for m in &mut g.members {
                    m.assignment = assignments
                        .iter()
                        .find(|(mid, _)| *mid == m.id)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                }
                g.state = GroupState::Stable;
                self.changed.push(group);
                out.observe(Obs::GroupStable {
                    group,
                    generation: g.generation,
                    protocol: g.protocol.clone().unwrap_or_default(),
                    assignment: g.members.iter().map(|m| (m.member, m.assignment.clone())).collect(),
                });
                answer_syncs(&mut g.members, out, |m| Ok(m.assignment.clone()));
            }
        }
    }

    pub fn heartbeat(&mut self, now: Time, group: u32, generation: i32, member_id: &str) -> Option<ErrorCode> {
        let Some(g) = self.groups.get_mut(&group) else {
            return Some(ErrorCode::UnknownMemberId);
        };
        let Some(k) = g.find(member_id) else {
            return Some(ErrorCode::UnknownMemberId);
        };
        if generation != g.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        g.members[k].last_heartbeat = now;
        match g.state {
            GroupState::PreparingRebalance => Some(ErrorCode::RebalanceInProgress),
            GroupState::Empty => Some(ErrorCode::UnknownMemberId),
            _ => None,
        }
    }

    pub fn leave(&mut self, now: Time, group: u32, member_id: &str, out: &mut Out) {
        let Some(g) = self.groups.get_mut(&group) else { return };
        let Some(k) = g.find(member_id) else { return };
        let m = g.members.remove(k);
        self.member_gone(now, group, m, RebalanceCause::Left(0), out);
    }

    fn member_gone(&mut self, now: Time, group: u32, m: GroupMember, cause: RebalanceCause, out: &mut Out) {
        let cause = match cause {
            RebalanceCause::Left(_) => RebalanceCause::Left(m.member),
            RebalanceCause::SessionTimeout(_) => RebalanceCause::SessionTimeout(m.member),
            other => other,
        };
        let g = self.groups.get_mut(&group).expect("exists");
        if g.leader.as_ref() == Some(&m.id) {
            g.leader = g.members.first().map(|m| m.id.clone());
        }
        if let Some(req) = m.awaiting_join {
            join_error(out, m.node, req, ErrorCode::UnknownMemberId);
        }
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, group, cause, out),
            GroupState::PreparingRebalance => self.maybe_complete_join(now, group, out),
            GroupState::Empty => {}
        }
    }

    /// Validates an offset commit (`handleCommitOffsets`): `None` lets it through.
    pub fn check_commit(&self, group: u32, generation: i32, member_id: &str) -> Option<ErrorCode> {
        let Some(g) = self.groups.get(&group) else {
            return (generation >= 0).then_some(ErrorCode::IllegalGeneration);
        };
        if generation < 0 && g.state == GroupState::Empty {
            return None;
        }
        if g.find(member_id).is_none() {
            return Some(ErrorCode::UnknownMemberId);
        }
        if generation != g.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        (g.state == GroupState::CompletingRebalance).then_some(ErrorCode::RebalanceInProgress)
    }

    pub fn on_timer(&mut self, now: Time, timer: GroupTimer, out: &mut Out) {
        match timer {
            GroupTimer::Join { group, token } => {
                let delay = self.initial_delay;
                let Some(g) = self.groups.get_mut(&group) else {
                    return out.idle();
                };
                let Some((t, began, deadline)) = g.join else {
                    return out.idle();
                };
                if t != token || deadline > now {
                    return out.idle();
                }
                // `InitialDelayedJoin.onComplete`: a member joined during the delay and
                // the rebalance timeout allows more: wait another delay.
                if let Some((true, remaining)) = g.initial
                    && remaining > Duration::ZERO
                {
                    let wait = delay.min(remaining);
                    g.initial = Some((false, Duration(remaining.0.saturating_sub(delay.0))));
                    g.join = Some((t, began, now + wait));
                    g.join_timer = Some(out.set_timer(wait, Timer::Group(GroupTimer::Join { group, token })));
                    return;
                }
                self.complete_join(now, group, out);
            }
            GroupTimer::Pending { group, serial } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return out.idle();
                };
                let Some(k) = g.pending.iter().position(|p| p.1 == serial) else {
                    return out.idle();
                };
                g.pending.remove(k);
                self.maybe_complete_join(now, group, out);
            }
            GroupTimer::Session { group, serial } => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return out.idle();
                };
                let Some(k) = g.members.iter().position(|m| m.serial == serial) else {
                    return out.idle();
                };
                let m = &g.members[k];
                // A member waiting in a join phase is not expired meanwhile.
                let expiry = if m.awaiting_join.is_some() {
                    now + m.session_timeout
                } else {
                    m.last_heartbeat + m.session_timeout
                };
                if now < expiry {
                    out.set_timer(expiry.since(now), Timer::Group(GroupTimer::Session { group, serial }));
                    return;
                }
                let m = g.members.remove(k);
                self.member_gone(now, group, m, RebalanceCause::SessionTimeout(0), out);
            }
        }
    }
}

/// Answers every member's parked SyncGroup with what `result` gives it.
fn answer_syncs(
    members: &mut [GroupMember],
    out: &mut Out,
    result: impl Fn(&GroupMember) -> Result<Vec<Pidx>, ErrorCode>,
) {
    for m in members {
        if let Some(req) = m.awaiting_sync.take() {
            let result = result(m);
            out.send(m.node, Msg::SyncGroupResponse { id: req, result });
        }
    }
}

/// Answers JoinGroup request `id` of `to` with `error`.
fn join_error(out: &mut Out, to: NodeId, id: u64, error: ErrorCode) {
    let result = Err((error, String::new()));
    out.send(to, Msg::JoinGroupResponse { id, result });
}

fn max_rebalance_timeout(g: &ClassicGroup) -> Duration {
    g.members
        .iter()
        .map(|m| m.rebalance_timeout)
        .max()
        .unwrap_or(Duration::ZERO)
}
