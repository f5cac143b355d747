//! The simulated network: one FIFO link per ordered pair of nodes, with latency and
//! jitter, and a directed graph of live links on which partitions, one-way cuts and heals
//! are computed.
//!
//! A cut drops what is sent on the link and what is already in flight on it: every link
//! carries an epoch that a cut bumps, and a message stamped with an older epoch is dropped
//! on arrival. Senders learn of a cut only through their own timeouts, as over TCP.
//!
//! Every cut and slowdown belongs to the fault that made it (its owner), so that one fault
//! can be undone while another one that cut the same link stays in force: a link is live
//! while no fault owns a cut of it.

use crate::sim::NodeId;
use crate::sim::rng::SimRng;
use crate::sim::time::{Duration, Time};
use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use rand::RngExt;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default)]
struct Link {
    /// Bumped by every cut of this link; in-flight messages of older epochs are dropped.
    epoch: u32,
    /// The latest delivery time scheduled on this link, to keep it FIFO under jitter.
    last_delivery: Time,
}

pub struct Network {
    nodes: usize,
    /// Edge a→b exists while a can send to b.
    live: DiGraphMap<u32, ()>,
    links: Vec<Link>,
    latency: Duration,
    jitter: Duration,
    /// Extra one-way latency added to every link touching a node: the largest of the
    /// `slow` faults in force on it, each with its owner.
    slow: Vec<Duration>,
    slowed_by: BTreeMap<u32, Vec<(u32, Duration)>>,
    /// The faults that cut each cut link (from, to).
    cut_by: BTreeMap<(u32, u32), Vec<u32>>,
    rng: SimRng,
}

impl Network {
    pub fn new(nodes: usize, latency: Duration, jitter: Duration, rng: SimRng) -> Network {
        let mut net = Network {
            nodes,
            live: DiGraphMap::new(),
            links: vec![Link::default(); nodes * nodes],
            latency,
            jitter,
            slow: vec![Duration::ZERO; nodes],
            slowed_by: BTreeMap::new(),
            cut_by: BTreeMap::new(),
            rng,
        };
        net.heal();
        net
    }

    fn link(&mut self, from: NodeId, to: NodeId) -> &mut Link {
        &mut self.links[from.index() * self.nodes + to.index()]
    }

    /// Schedules a message from `from` to `to` sent at `now`: its delivery time and the
    /// link epoch it travels under, or `None` when the link is cut.
    pub fn send(&mut self, now: Time, from: NodeId, to: NodeId) -> Option<(Time, u32)> {
        if from != to && !self.live.contains_edge(from.0, to.0) {
            return None;
        }
        let jitter = if self.jitter.0 == 0 {
            0
        } else {
            self.rng.random_range(0..=self.jitter.0)
        };
        let delay = self.latency + Duration(jitter) + self.slow[from.index()] + self.slow[to.index()];
        let link = self.link(from, to);
        let at = (now + delay).max(link.last_delivery);
        link.last_delivery = at;
        Some((at, link.epoch))
    }

    /// The one-way latency of a link as configured, without jitter.
    pub fn base_latency(&self, from: NodeId, to: NodeId) -> Duration {
        self.latency + self.slow[from.index()] + self.slow[to.index()]
    }

    /// Whether a message sent under `epoch` may still be delivered.
    pub fn still_open(&self, from: NodeId, to: NodeId, epoch: u32) -> bool {
        self.links[from.index() * self.nodes + to.index()].epoch == epoch
    }

    pub fn can_send(&self, from: NodeId, to: NodeId) -> bool {
        from == to || self.live.contains_edge(from.0, to.0)
    }

    /// Cuts the one-way link `from → to` on behalf of fault `owner`. Returns whether the
    /// fault took hold of it: it stays cut until that fault is undone, even where another
    /// fault had cut it already.
    pub fn cut(&mut self, from: NodeId, to: NodeId, owner: u32) -> bool {
        if from == to {
            return false;
        }
        let owners = self.cut_by.entry((from.0, to.0)).or_default();
        if owners.contains(&owner) {
            return false;
        }
        owners.push(owner);
        if self.live.remove_edge(from.0, to.0).is_some() {
            self.link(from, to).epoch += 1;
        }
        true
    }

    /// Cuts both directions between every pair of nodes that lie in different groups.
    /// Nodes named in no group keep all their links.
    pub fn partition(&mut self, groups: &[Vec<NodeId>], owner: u32) -> usize {
        let mut cut = 0;
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                for &x in a {
                    for &y in b {
                        cut += usize::from(self.cut(x, y, owner));
                        cut += usize::from(self.cut(y, x, owner));
                    }
                }
            }
        }
        cut
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&mut self, node: NodeId, owner: u32) -> usize {
        let mut cut = 0;
        for other in 0..self.nodes as u32 {
            cut += usize::from(self.cut(node, NodeId(other), owner));
            cut += usize::from(self.cut(NodeId(other), node, owner));
        }
        cut
    }

    /// Adds `extra` one-way latency to every link touching `node`, on behalf of fault
    /// `owner`. With several slowdowns on one node, the largest counts.
    pub fn slow(&mut self, node: NodeId, extra: Duration, owner: u32) {
        let entries = self.slowed_by.entry(node.0).or_default();
        entries.retain(|(o, _)| *o != owner);
        entries.push((owner, extra));
        self.slow[node.index()] = entries.iter().map(|e| e.1).max().unwrap_or(Duration::ZERO);
    }

    /// Undoes what fault `owner` did: its cuts (a link comes back once no other fault
    /// holds it cut) and its slowdowns. Returns how many links came back or sped up.
    pub fn undo(&mut self, owner: u32) -> usize {
        let mut restored = 0;
        let mut live_again = Vec::new();
        self.cut_by.retain(|link, owners| {
            let before = owners.len();
            owners.retain(|o| *o != owner);
            if owners.is_empty() && before > 0 {
                live_again.push(*link);
                return false;
            }
            true
        });
        for (a, b) in live_again {
            self.live.add_edge(a, b, ());
            restored += 1;
        }
        let slow = &mut self.slow;
        self.slowed_by.retain(|node, entries| {
            let before = entries.len();
            entries.retain(|(o, _)| *o != owner);
            if entries.len() < before {
                restored += 1;
                slow[*node as usize] = entries.iter().map(|e| e.1).max().unwrap_or(Duration::ZERO);
            }
            !entries.is_empty()
        });
        restored
    }

    /// Restores every link and removes every slowdown. Returns how many links came back.
    pub fn heal(&mut self) -> usize {
        let mut healed = 0;
        for a in 0..self.nodes as u32 {
            self.live.add_node(a);
            for b in 0..self.nodes as u32 {
                if a != b && !self.live.contains_edge(a, b) {
                    self.live.add_edge(a, b, ());
                    healed += 1;
                }
            }
        }
        self.slow.iter_mut().for_each(|s| *s = Duration::ZERO);
        self.slowed_by.clear();
        self.cut_by.clear();
        healed
    }

    /// Groups of nodes that can all reach one another (strongly connected components of
    /// the live graph), each sorted, the list sorted by first member. One group means the
    /// network is whole.
    pub fn components(&self) -> Vec<Vec<NodeId>> {
        let mut groups: Vec<Vec<NodeId>> = tarjan_scc(&self.live)
            .into_iter()
            .map(|mut g| {
                g.sort_unstable();
                g.into_iter().map(NodeId).collect()
            })
            .collect();
        groups.sort();
        groups
    }

    pub fn is_whole(&self) -> bool {
        self.live.edge_count() == self.nodes * self.nodes.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::stream;

    fn net(n: usize) -> Network {
        Network::new(n, Duration::from_millis(1), Duration(500), stream(1, "net"))
    }

    #[test]
    fn links_are_fifo_under_jitter() {
        let mut n = net(2);
        let mut last = Time::ZERO;
        for i in 0..100 {
            let (at, _) = n.send(Time(i), NodeId(0), NodeId(1)).unwrap();
            assert!(at >= last);
            assert!(at >= Time(i) + Duration::from_millis(1));
            last = at;
        }
    }

    #[test]
    fn partition_cuts_only_across_groups() {
        let mut n = net(4);
        n.partition(&[vec![NodeId(0), NodeId(1)], vec![NodeId(2)]], 0);
        assert!(n.can_send(NodeId(0), NodeId(1)));
        assert!(!n.can_send(NodeId(0), NodeId(2)));
        assert!(!n.can_send(NodeId(2), NodeId(1)));
        assert!(n.can_send(NodeId(3), NodeId(2)));
        // Node 3 still bridges everyone, so the reachability graph stays one component.
        assert_eq!(n.components().len(), 1);
        n.isolate(NodeId(3), 1);
        assert_eq!(n.components().len(), 3);
        n.heal();
        assert!(n.is_whole());
    }

    #[test]
    fn a_cut_drops_messages_in_flight_and_is_one_way() {
        let mut n = net(2);
        let (_, epoch) = n.send(Time::ZERO, NodeId(0), NodeId(1)).unwrap();
        assert!(n.cut(NodeId(0), NodeId(1), 0));
        // Another fault takes hold of the same cut; the first one's again does not.
        assert!(n.cut(NodeId(0), NodeId(1), 1));
        assert!(!n.cut(NodeId(0), NodeId(1), 0));
        assert!(!n.still_open(NodeId(0), NodeId(1), epoch));
        assert!(n.send(Time::ZERO, NodeId(0), NodeId(1)).is_none());
        assert!(n.send(Time::ZERO, NodeId(1), NodeId(0)).is_some());
        n.heal();
        let (_, epoch2) = n.send(Time::ZERO, NodeId(0), NodeId(1)).unwrap();
        assert!(n.still_open(NodeId(0), NodeId(1), epoch2));
    }

    #[test]
    fn undoing_one_fault_keeps_the_cuts_and_slowdowns_of_another() {
        let mut n = net(3);
        n.isolate(NodeId(2), 0);
        n.partition(&[vec![NodeId(0)], vec![NodeId(1), NodeId(2)]], 1);
        n.slow(NodeId(1), Duration::from_millis(50), 2);
        n.slow(NodeId(1), Duration::from_millis(20), 3);
        assert_eq!(n.base_latency(NodeId(0), NodeId(1)), Duration::from_millis(51));
        // The isolation heals: node 2 talks to node 1 again, not to node 0 (partitioned).
        assert_eq!(n.undo(0), 2);
        assert!(n.can_send(NodeId(2), NodeId(1)));
        assert!(!n.can_send(NodeId(2), NodeId(0)));
        n.undo(1);
        assert!(n.is_whole());
        n.undo(2);
        assert_eq!(n.base_latency(NodeId(0), NodeId(1)), Duration::from_millis(21));
        n.undo(3);
        assert_eq!(n.base_latency(NodeId(0), NodeId(1)), Duration::from_millis(1));
    }
}
