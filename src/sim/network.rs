//! The simulated network: links between nodes with latency and jitter, behaving like TCP
//! connections (KAFKA.md §7.3).
//!
//! - **Cuts lose nothing.** A segment sent on a cut link, or in flight when a cut falls, is
//!   retransmitted: Linux's retransmission timer starts at 200 ms and doubles (capped at
//!   120 s), so after the link heals the segment arrives at the first retransmission that
//!   falls after the heal (if the link is cut again at that moment, at the first one after
//!   the next heal; a cut that came and went in between does not matter). A link delivers
//!   in order: a segment that overtakes a lost one waits in the receiver's buffer for it.
//!   Every segment carries its link's sequence number and the count of cuts the link had
//!   when it was (re)transmitted; the engine holds lost segments and puts them on the wire
//!   again when their retransmission is due ([`Network::retransmit_at`],
//!   [`Network::resend`]).
//! - **Connections belong to their client.** Node a's requests to b and b's answers
//!   travel on the connection a opened; b's own requests to a on another, so one cannot
//!   hold the other up.
//! - **A connection ends when a side closes it.** A client closes its connection when a
//!   request times out; what was in flight on it either way is discarded (the
//!   connection's generation moves on). A restarted process resets its connections (the
//!   engine drops what was addressed to the old incarnation). After about 15 minutes of
//!   retransmissions (`tcp_retries2` = 15) the kernel gives up on the connection.
//! - **Links exist once used.** Only links that carried a segment, or were cut, take
//!   memory: a thousand consumers do not cost a million links.
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

/// Linux's `TCP_RTO_MIN`: the first retransmission comes this long after the send.
pub const RTO_MIN: Duration = Duration::from_millis(200);
/// Linux's `TCP_RTO_MAX`: the retransmission timer doubles up to this.
pub const RTO_MAX: Duration = Duration::from_millis(120_000);
/// `net.ipv4.tcp_retries2`: retransmissions before the kernel gives the connection up.
pub const RETRIES: u32 = 15;

/// One direction of a connection, from the first time it is used.
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    /// The latest delivery time scheduled on this link, to keep it FIFO under jitter.
    last_delivery: Time,
    /// The sequence number of the next segment sent, and of the next one the receiver
    /// takes in order.
    next_seq: u64,
    expected: u64,
}

/// What a segment carries besides its message: see [`Network::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The connection generation it was sent on.
    pub conn: u32,
    /// The link's cut count when it was (re)transmitted.
    pub cuts: u32,
    /// Its place in the link's order.
    pub seq: u64,
    /// The node that opened the connection it travels on (the requester).
    pub client: NodeId,
    /// When it was first sent: retransmissions are timed from here.
    pub sent: Time,
}

/// What becomes of a segment that reaches the receiver's side of the link.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Sent on a connection that has been closed since: discarded.
    Closed,
    /// Lost on the wire by a cut: to be retransmitted.
    Lost,
    /// Next in order: deliver it.
    InOrder,
    /// Ahead of a lost segment: wait in the receive buffer.
    Early,
}

/// A direction of a connection: (from, to, the connection's client).
pub type LinkKey = (u32, u32, u32);

pub struct Network {
    nodes: usize,
    links: BTreeMap<LinkKey, Link>,
    /// Connection generations by (client, server); absent means 0.
    conns: BTreeMap<(u32, u32), u32>,
    latency: Duration,
    jitter: Duration,
    /// Extra one-way latency added to every link touching a node: the largest of the
    /// `slow` faults in force on it, each with its owner.
    slow: Vec<Duration>,
    slowed_by: BTreeMap<u32, Vec<(u32, Duration)>>,
    /// The faults that cut each cut link (from, to); a link is live while absent here.
    cut_by: BTreeMap<(u32, u32), Vec<u32>>,
    /// Cuts each link (from, to) has seen: a segment sent under an older count was lost
    /// on the wire.
    cuts: BTreeMap<(u32, u32), u32>,
    rng: SimRng,
}

impl Network {
    pub fn new(nodes: usize, latency: Duration, jitter: Duration, rng: SimRng) -> Network {
        Network {
            nodes,
            links: BTreeMap::new(),
            conns: BTreeMap::new(),
            latency,
            jitter,
            slow: vec![Duration::ZERO; nodes],
            slowed_by: BTreeMap::new(),
            cut_by: BTreeMap::new(),
            cuts: BTreeMap::new(),
            rng,
        }
    }

    fn link(&mut self, from: NodeId, to: NodeId, client: NodeId) -> &mut Link {
        self.links.entry((from.0, to.0, client.0)).or_default()
    }

    /// The connection a segment from `from` to `to` travels on, as (client, server).
    fn pair(from: NodeId, to: NodeId, client: NodeId) -> (u32, u32) {
        if client == from { (from.0, to.0) } else { (to.0, from.0) }
    }

    fn conn(&self, from: NodeId, to: NodeId, client: NodeId) -> u32 {
        self.conns.get(&Self::pair(from, to, client)).copied().unwrap_or(0)
    }

    /// A one-way delay drawn for a segment: latency, jitter and slowdowns.
    fn delay(&mut self, from: NodeId, to: NodeId) -> Duration {
        let jitter = if self.jitter.0 == 0 {
            0
        } else {
            self.rng.random_range(0..=self.jitter.0)
        };
        self.latency + Duration(jitter) + self.slow[from.index()] + self.slow[to.index()]
    }

    /// Sends a segment from `from` to `to` at `now` on the connection `client` opened
    /// (`from` for a request, `to` for an answer): its stamp, and when it arrives if the
    /// link is live (`None` when it is cut: the segment waits for a retransmission).
    pub fn send(&mut self, now: Time, from: NodeId, to: NodeId, client: NodeId) -> (Stamp, Option<Time>) {
        let conn = self.conn(from, to, client);
        let live = self.can_send(from, to);
        let delay = self.delay(from, to);
        let cuts = self.cuts.get(&(from.0, to.0)).copied().unwrap_or(0);
        let link = self.link(from, to, client);
        let stamp = Stamp {
            conn,
            cuts,
            seq: link.next_seq,
            sent: now,
            client,
        };
        link.next_seq += 1;
        if !live {
            return (stamp, None);
        }
        let at = (now + delay).max(link.last_delivery);
        link.last_delivery = at;
        (stamp, Some(at))
    }

    /// What happens to a segment arriving now with `stamp`.
    pub fn arrive(&mut self, from: NodeId, to: NodeId, stamp: &Stamp) -> Arrival {
        if stamp.conn != self.conn(from, to, stamp.client) {
            return Arrival::Closed;
        }
        if stamp.cuts != self.cuts.get(&(from.0, to.0)).copied().unwrap_or(0) {
            return Arrival::Lost;
        }
        let link = self.link(from, to, stamp.client);
        if stamp.seq == link.expected {
            link.expected += 1;
            Arrival::InOrder
        } else {
            Arrival::Early
        }
    }

    /// The next segment the receiver of a link takes in order.
    pub fn expected(&self, key: LinkKey) -> u64 {
        self.links.get(&key).map_or(0, |l| l.expected)
    }

    /// Takes a segment out of the receive buffer in order (see [`Arrival::Early`]).
    pub fn take_in_order(&mut self, key: LinkKey) {
        self.links.entry(key).or_default().expected += 1;
    }

    /// A segment lost on the wire goes on it again at `now`, its retransmission time
    /// (see [`Network::retransmit_at`]): its new stamp, and when it arrives if the link is
    /// live now, after what the link already carries (`None` when it is cut: lost again,
    /// the segment waits for the next heal).
    pub fn resend(&mut self, now: Time, from: NodeId, to: NodeId, stamp: &Stamp) -> (Stamp, Option<Time>) {
        let live = self.can_send(from, to);
        let delay = self.delay(from, to);
        let cuts = self.cuts.get(&(from.0, to.0)).copied().unwrap_or(0);
        let stamp = Stamp { cuts, ..*stamp };
        if !live {
            return (stamp, None);
        }
        let link = self.link(from, to, stamp.client);
        let arrive = (now + delay).max(link.last_delivery);
        link.last_delivery = arrive;
        (stamp, Some(arrive))
    }

    /// Whether the connection a segment was sent on is still open.
    pub fn is_open(&self, from: NodeId, to: NodeId, stamp: &Stamp) -> bool {
        stamp.conn == self.conn(from, to, stamp.client)
    }

    /// The first retransmission of a segment sent at `sent` that comes at or after `now`,
    /// if the kernel has not given up by then.
    pub fn retransmit_at(sent: Time, now: Time) -> Option<Time> {
        let mut at = sent;
        let mut rto = RTO_MIN;
        for _ in 0..RETRIES {
            at += rto;
            if at >= now {
                return Some(at);
            }
            rto = Duration(rto.0.saturating_mul(2)).min(RTO_MAX);
        }
        None
    }

    /// Closes the connection `client` opened to `server`: whatever was in flight on it,
    /// either way, is discarded (the receivers' sequence numbers move past everything
    /// sent), and the next request opens a new one.
    pub fn close(&mut self, client: NodeId, server: NodeId) {
        *self.conns.entry((client.0, server.0)).or_insert(0) += 1;
        for key in [(client.0, server.0, client.0), (server.0, client.0, client.0)] {
            if let Some(link) = self.links.get_mut(&key) {
                link.expected = link.next_seq;
                // A new connection's segments do not queue behind the old one's.
                link.last_delivery = Time::ZERO;
            }
        }
    }

    /// The one-way latency of a link as configured, without jitter.
    pub fn base_latency(&self, from: NodeId, to: NodeId) -> Duration {
        self.latency + self.slow[from.index()] + self.slow[to.index()]
    }

    pub fn can_send(&self, from: NodeId, to: NodeId) -> bool {
        from == to || !self.cut_by.contains_key(&(from.0, to.0))
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
        if owners.len() == 1 {
            *self.cuts.entry((from.0, to.0)).or_insert(0) += 1;
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
        self.cut_by.retain(|_, owners| {
            let before = owners.len();
            owners.retain(|o| *o != owner);
            if owners.is_empty() && before > 0 {
                restored += 1;
                return false;
            }
            true
        });
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
        let healed = self.cut_by.len();
        self.slow.iter_mut().for_each(|s| *s = Duration::ZERO);
        self.slowed_by.clear();
        self.cut_by.clear();
        healed
    }

    /// Groups of nodes that can all reach one another (strongly connected components of
    /// the live links), each sorted, the list sorted by first member. One group means the
    /// network is whole. Builds the whole graph: for tests and small clusters.
    pub fn components(&self) -> Vec<Vec<NodeId>> {
        let mut live: DiGraphMap<u32, ()> = DiGraphMap::new();
        for a in 0..self.nodes as u32 {
            live.add_node(a);
            for b in 0..self.nodes as u32 {
                if a != b && self.can_send(NodeId(a), NodeId(b)) {
                    live.add_edge(a, b, ());
                }
            }
        }
        let mut groups: Vec<Vec<NodeId>> = tarjan_scc(&live)
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
        self.cut_by.is_empty()
    }

    /// Links that exist (were used or cut), for memory accounting.
    pub fn links_in_use(&self) -> usize {
        self.links.len() + self.cuts.len()
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
            let (stamp, at) = n.send(Time(i), NodeId(0), NodeId(1), NodeId(0));
            let at = at.expect("live");
            assert!(at >= last);
            assert!(at >= Time(i) + Duration::from_millis(1));
            assert_eq!(stamp.seq, i);
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
    fn a_cut_loses_segments_in_flight_for_retransmission_and_is_one_way() {
        let mut n = Network::new(2, Duration::from_millis(1), Duration::ZERO, stream(1, "net"));
        let (in_flight, _) = n.send(Time::ZERO, NodeId(0), NodeId(1), NodeId(0));
        assert!(n.cut(NodeId(0), NodeId(1), 0));
        // Another fault takes hold of the same cut; the first one's again does not.
        assert!(n.cut(NodeId(0), NodeId(1), 1));
        assert!(!n.cut(NodeId(0), NodeId(1), 0));
        assert_eq!(n.arrive(NodeId(0), NodeId(1), &in_flight), Arrival::Lost);
        let (sent_while_cut, at) = n.send(Time(100), NodeId(0), NodeId(1), NodeId(0));
        assert_eq!(at, None);
        assert!(n.send(Time::ZERO, NodeId(1), NodeId(0), NodeId(0)).1.is_some());
        n.heal();
        // Healed at 1 s: the retransmissions due then come at 0.2, 0.6, 1.4 s after each
        // send, and the segments arrive in order, one trip later.
        let due1 = Network::retransmit_at(in_flight.sent, Time(1_000_000)).expect("in time");
        let (first, at1) = n.resend(due1, NodeId(0), NodeId(1), &in_flight);
        assert_eq!(at1, Some(Time(1_401_000)));
        let due2 = Network::retransmit_at(sent_while_cut.sent, Time(1_000_000)).expect("in time");
        let (second, at2) = n.resend(due2, NodeId(0), NodeId(1), &sent_while_cut);
        assert_eq!(at2, Some(Time(1_401_100)));
        assert_eq!(n.arrive(NodeId(0), NodeId(1), &second), Arrival::Early);
        assert_eq!(n.arrive(NodeId(0), NodeId(1), &first), Arrival::InOrder);
        assert_eq!(n.expected((0, 1, 0)), 1);
        n.take_in_order((0, 1, 0));
        assert_eq!(n.expected((0, 1, 0)), 2);
    }

    #[test]
    fn the_kernel_gives_up_after_fifteen_retransmissions() {
        // 0.2 + 0.4 + … + 102.4 s, then five times 120 s: the fifteenth and last
        // retransmission is at 804.6 s (the kernel declares the connection dead 120 s
        // later, at the 924.6 s Linux documents).
        assert_eq!(
            Network::retransmit_at(Time::ZERO, Time(804_600_000)),
            Some(Time(804_600_000))
        );
        assert_eq!(Network::retransmit_at(Time::ZERO, Time(804_600_001)), None);
        assert_eq!(Network::retransmit_at(Time(5), Time(5)), Some(Time(200_005)));
    }

    #[test]
    fn closing_a_connection_discards_what_is_in_flight_both_ways() {
        let mut n = net(2);
        let (a, _) = n.send(Time::ZERO, NodeId(0), NodeId(1), NodeId(0));
        let (b, _) = n.send(Time::ZERO, NodeId(1), NodeId(0), NodeId(0));
        // Node 1's own connection to node 0 is another one, and stays open.
        let (other, _) = n.send(Time::ZERO, NodeId(1), NodeId(0), NodeId(1));
        n.close(NodeId(0), NodeId(1));
        assert_eq!(n.arrive(NodeId(1), NodeId(0), &other), Arrival::InOrder);
        assert_eq!(n.arrive(NodeId(0), NodeId(1), &a), Arrival::Closed);
        assert_eq!(n.arrive(NodeId(1), NodeId(0), &b), Arrival::Closed);
        // The next segment opens a new connection and is taken in order.
        let (c, _) = n.send(Time(10), NodeId(0), NodeId(1), NodeId(0));
        assert_eq!(n.arrive(NodeId(0), NodeId(1), &c), Arrival::InOrder);
    }

    #[test]
    fn a_new_connection_does_not_queue_behind_the_old_one() {
        let mut n = net(2);
        n.slow(NodeId(1), Duration::from_millis(10_000), 0);
        let (_, slow) = n.send(Time::ZERO, NodeId(0), NodeId(1), NodeId(0));
        assert!(slow.expect("live") > Time(10_000_000));
        n.undo(0);
        n.close(NodeId(0), NodeId(1));
        let (_, at) = n.send(Time(1_000), NodeId(0), NodeId(1), NodeId(0));
        assert!(at.expect("live") < Time(3_000));
    }

    #[test]
    fn links_take_memory_only_once_used() {
        let mut n = net(10_000);
        assert_eq!(n.links_in_use(), 0);
        n.send(Time::ZERO, NodeId(3), NodeId(4), NodeId(3));
        n.isolate(NodeId(7), 0);
        assert_eq!(n.links_in_use(), 1 + 2 * 9_999);
        n.heal();
        assert!(n.is_whole());
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
