//! Timers, kept out of the global event queue until they matter.
//!
//! Most timers a Kafka node sets are timeouts of a fixed length per kind (a request
//! timeout, a session timeout), and almost none of them fire: the answer comes first and
//! the timer is cancelled. The timers of one node with one length fall due in the order
//! they were set, so they wait in a first-in-first-out *lane* per (node, length), and the
//! event queue holds one entry per lane: its earliest timer. Cancelling a timer marks it;
//! cancelled timers at a lane's front are dropped at once, so a lane whose timers are
//! cancelled in the order they were set (answers that come back in order) stays as short
//! as the number of requests in flight.
//!
//! Every timer keeps the (time, sequence) it would have had in a single queue, so events
//! run in the same order as if every timer were queued.

use crate::sim::NodeId;
use crate::sim::time::{Duration, Time};
use std::collections::VecDeque;

/// A timer's handle, to cancel it. Handles are never reused: cancelling one that fired,
/// was cancelled, or belonged to a crashed incarnation does nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimerId {
    lane: u32,
    serial: u64,
}

struct Pending<T> {
    at: Time,
    /// Given when the handler that set it returns (see [`Timers::take_fresh`]).
    seq: u64,
    /// `None` once cancelled.
    timer: Option<T>,
}

struct Lane<T> {
    node: NodeId,
    after: Duration,
    /// The serial of `pending[0]`; serials count up for the lane's whole life.
    base: u64,
    pending: VecDeque<Pending<T>>,
    /// Whether the event queue holds an entry for this lane (for the front it had then).
    armed: bool,
}

impl<T> Lane<T> {
    fn drop_cancelled_front(&mut self) {
        while self.pending.front().is_some_and(|p| p.timer.is_none()) {
            self.pending.pop_front();
            self.base += 1;
        }
    }
}

/// What the engine should do for a lane whose queue entry came up.
pub(crate) enum Due<T> {
    /// The timer fires now for `node`; re-arm the lane if it returns `Some`.
    Fire {
        node: NodeId,
        timer: T,
        next: Option<(Time, u64)>,
    },
    /// The entry stood for a timer since cancelled: queue the lane's new front.
    Rearm(Time, u64),
    /// Nothing is left in the lane.
    Empty,
}

/// Every node's lanes.
pub(crate) struct Timers<T> {
    lanes: Vec<Lane<T>>,
    /// Lanes with nothing pending and no queue entry, for reuse.
    free: Vec<u32>,
    /// Per node: (length, lane) of its lanes.
    by_node: Vec<Vec<(Duration, u32)>>,
    /// Timers set by the handler running now, in the order set.
    fresh: Vec<TimerId>,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Timers<T> {
        Timers {
            lanes: Vec::new(),
            free: Vec::new(),
            by_node: Vec::new(),
            fresh: Vec::new(),
        }
    }

    /// Sets a timer for `node` at `now + after`.
    pub(crate) fn set(&mut self, node: NodeId, now: Time, after: Duration, timer: T) -> TimerId {
        if self.by_node.len() <= node.index() {
            self.by_node.resize_with(node.index() + 1, Vec::new);
        }
        let lane = match self.by_node[node.index()].iter().find(|(a, _)| *a == after) {
            Some(&(_, lane)) => lane,
            None => {
                let lane = match self.free.pop() {
                    Some(lane) => {
                        let l = &mut self.lanes[lane as usize];
                        l.node = node;
                        l.after = after;
                        lane
                    }
                    None => {
                        self.lanes.push(Lane {
                            node,
                            after,
                            base: 0,
                            pending: VecDeque::new(),
                            armed: false,
                        });
                        (self.lanes.len() - 1) as u32
                    }
                };
                self.by_node[node.index()].push((after, lane));
                lane
            }
        };
        let l = &mut self.lanes[lane as usize];
        l.pending.push_back(Pending {
            at: now + after,
            seq: 0,
            timer: Some(timer),
        });
        let id = TimerId {
            lane,
            serial: l.base + l.pending.len() as u64 - 1,
        };
        self.fresh.push(id);
        id
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        let Some(l) = self.lanes.get_mut(id.lane as usize) else {
            return;
        };
        let Some(i) = id.serial.checked_sub(l.base) else { return };
        if let Some(p) = l.pending.get_mut(i as usize) {
            p.timer = None;
            l.drop_cancelled_front();
        }
    }

    /// Gives the timers set by the last handler their sequence numbers, in the order set,
    /// from `next_seq`; returns the lanes to queue, with their front's (time, sequence).
    pub(crate) fn take_fresh(&mut self, mut next_seq: impl FnMut() -> u64, arm: &mut Vec<(u32, Time, u64)>) {
        for id in self.fresh.drain(..) {
            let l = &mut self.lanes[id.lane as usize];
            let Some(i) = id.serial.checked_sub(l.base) else {
                continue;
            };
            let Some(p) = l.pending.get_mut(i as usize) else {
                continue;
            };
            p.seq = next_seq();
            if !l.armed && i == 0 && p.timer.is_some() {
                l.armed = true;
                arm.push((id.lane, p.at, p.seq));
            }
        }
    }

    /// The lane's queue entry (for the timer with sequence `seq`) came up.
    pub(crate) fn due(&mut self, lane: u32, seq: u64) -> Due<T> {
        let l = &mut self.lanes[lane as usize];
        l.armed = false;
        l.drop_cancelled_front();
        let Some(front) = l.pending.front() else {
            self.release(lane);
            return Due::Empty;
        };
        if front.seq != seq {
            l.armed = true;
            return Due::Rearm(front.at, front.seq);
        }
        let p = l.pending.pop_front().expect("front");
        l.base += 1;
        l.drop_cancelled_front();
        let next = l.pending.front().map(|f| (f.at, f.seq));
        l.armed = next.is_some();
        let node = l.node;
        if next.is_none() {
            self.release(lane);
        }
        Due::Fire {
            node,
            timer: p.timer.expect("the front is live"),
            next,
        }
    }

    /// Drops every timer of `node` (it crashed). Lanes with a queue entry stay until it
    /// comes up.
    pub(crate) fn clear_node(&mut self, node: NodeId) {
        let count = self.by_node.get(node.index()).map_or(0, Vec::len);
        // Releasing a lane swaps the list's last one into its place: walk from the end,
        // so every lane is seen once.
        for k in (0..count).rev() {
            let lane = self.by_node[node.index()][k].1;
            let l = &mut self.lanes[lane as usize];
            l.base += l.pending.len() as u64;
            l.pending.clear();
            if !l.armed {
                self.release(lane);
            }
        }
    }

    /// Timers pending, cancelled ones that still hold their place included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lanes.iter().map(|l| l.pending.len()).sum()
    }

    /// An empty lane without a queue entry goes back to the free list.
    fn release(&mut self, lane: u32) {
        let l = &self.lanes[lane as usize];
        debug_assert!(l.pending.is_empty() && !l.armed);
        let node = l.node;
        let list = &mut self.by_node[node.index()];
        if let Some(i) = list.iter().position(|&(_, x)| x == lane) {
            list.swap_remove(i);
            self.free.push(lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(t: &mut Timers<u32>, seq: &mut u64) -> Vec<(u32, Time, u64)> {
        let mut arm = Vec::new();
        t.take_fresh(
            || {
                *seq += 1;
                *seq
            },
            &mut arm,
        );
        arm
    }

    #[test]
    fn a_lane_fires_in_order_and_skips_what_was_cancelled() {
        let mut t = Timers::new();
        let mut seq = 0;
        let n = NodeId(0);
        let a = t.set(n, Time(0), Duration(10), 1);
        let b = t.set(n, Time(1), Duration(10), 2);
        let _c = t.set(n, Time(2), Duration(10), 3);
        let arm = fresh(&mut t, &mut seq);
        assert_eq!(arm, vec![(0, Time(10), 1)]);
        // Cancelled in order: the lane's front moves on, the queue entry is now stale.
        t.cancel(a);
        t.cancel(b);
        t.cancel(b);
        assert_eq!(t.len(), 1);
        assert!(matches!(t.due(0, 1), Due::Rearm(Time(12), 3)));
        match t.due(0, 3) {
            Due::Fire { node, timer, next } => assert_eq!((node, timer, next), (n, 3, None)),
            _ => panic!("fires"),
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_crash_clears_a_nodes_lanes_and_old_handles_do_nothing() {
        let mut t = Timers::new();
        let mut seq = 0;
        let old = t.set(NodeId(1), Time(0), Duration(5), 7);
        fresh(&mut t, &mut seq);
        t.clear_node(NodeId(1));
        let new = t.set(NodeId(1), Time(3), Duration(5), 8);
        assert!(fresh(&mut t, &mut seq).is_empty(), "the lane's old entry still stands");
        t.cancel(old);
        assert_eq!(t.len(), 1);
        assert!(matches!(t.due(0, 1), Due::Rearm(Time(8), 2)));
        t.cancel(new);
        assert!(matches!(t.due(0, 2), Due::Empty));
    }
}
