//! The event loop. Events are ordered by (time, insertion sequence), so ties are FIFO and a
//! run is a pure function of its inputs and seed.
//!
//! Actors are sans-IO state machines: a handler gets `now`, one [`Input`] and a write-only
//! [`Outbox`]; the engine turns what it wrote into future events. A crash discards the
//! actor's volatile state (the actor decides what is durable) and every timer and message
//! of the old incarnation; a pause holds the node's events back until it resumes.

use crate::sim::NodeId;
use crate::sim::network::{Arrival, LinkKey, Network, Stamp};
use crate::sim::time::{Duration, Time};
use crate::sim::timers::{Due, TimerId, Timers};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;

/// What a node is handed.
pub enum Input<M, T> {
    /// The node (re)starts: first boot, or restart after a crash.
    Start,
    Message {
        from: NodeId,
        msg: M,
    },
    Timer(T),
    /// The process at `peer` died and its TCP connections were closed by its host: what
    /// the node had in flight to it is gone. Sent when a process crashes, when a
    /// connection to a dead process is refused, and when a powered-off host boots again;
    /// never for network faults, where only timeouts tell.
    PeerDown(NodeId),
}

/// How a node dies.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashKind {
    /// The process dies; the host (and its page cache) survives.
    Process,
    /// The host loses power: whatever was not flushed to disk is gone too.
    PowerLoss,
    /// The process shuts down cleanly: what it sends on the way out still goes.
    Stop,
}

/// Where a handler writes its effects. Nothing else of the world is reachable from it.
pub struct Outbox<M, T, O> {
    sends: Vec<(NodeId, M)>,
    closes: Vec<NodeId>,
    /// Every node's timers: the handler sets and cancels them in place.
    timers: Timers<T>,
    observations: Vec<O>,
    /// The node whose handler runs, and its time.
    node: NodeId,
    now: Time,
    /// Whether the handler said its input changed nothing.
    idle: bool,
    /// The node finished a clean shutdown it began in [`Actor::begin_stop`].
    exit: bool,
}

impl<M, T, O> Outbox<M, T, O> {
    fn new() -> Self {
        Outbox {
            sends: Vec::new(),
            closes: Vec::new(),
            timers: Timers::new(),
            observations: Vec::new(),
            node: NodeId(0),
            now: Time::ZERO,
            idle: false,
            exit: false,
        }
    }
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.sends.push((to, msg));
    }
    /// Closes the connection to `to` before this handler's sends go out: what is in flight
    /// on it, either way, is discarded (a client whose request timed out).
    pub fn close(&mut self, to: NodeId) {
        self.closes.push(to);
    }
    /// Fires `timer` after `after`, unless cancelled first.
    pub fn set_timer(&mut self, after: Duration, timer: T) -> TimerId {
        self.timers.set(self.node, self.now, after, timer)
    }
    /// Cancels a timer of this node; one that already fired, or was cancelled, stays so.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.timers.cancel(id);
    }
    /// Says that the input being handled changed nothing (a timer that came too late to
    /// matter): the engine counts these, and a model should cancel such timers instead.
    pub fn idle(&mut self) {
        self.idle = true;
    }
    /// Ends the clean shutdown this node began: once the handler's effects are out, the
    /// engine stops it as a `stop` fault would have at once.
    pub fn exit(&mut self) {
        self.exit = true;
    }
    /// Reports something checkers and reports care about; it never changes the run.
    pub fn observe(&mut self, obs: O) {
        self.observations.push(obs);
    }
}

/// A node of the simulation.
pub trait Actor {
    type Msg: Serialize;
    type Timer: Serialize;
    type Obs: Serialize;
    /// A part a node can play that faults may name (the leader of something), resolved
    /// to a node when the fault fires.
    type Role: Clone + std::fmt::Debug;
    fn handle(
        &mut self,
        now: Time,
        input: Input<Self::Msg, Self::Timer>,
        out: &mut Outbox<Self::Msg, Self::Timer, Self::Obs>,
    );
    /// A clean shutdown (`stop`) begins: `true` to stop at once, `false` when the node
    /// takes its time and ends it with [`Outbox::exit`] (a broker's controlled shutdown).
    fn begin_stop(&mut self, _now: Time, _out: &mut Outbox<Self::Msg, Self::Timer, Self::Obs>) -> bool {
        true
    }
    /// Drops volatile state. Only observations written here are kept.
    fn crash(&mut self, now: Time, kind: CrashKind, out: &mut Outbox<Self::Msg, Self::Timer, Self::Obs>);
    /// Who plays `role` now, as this node knows it with authority: `None` when this
    /// node is not the one to ask, `Some(Err(why))` when nobody plays it.
    fn resolve(&self, _role: &Self::Role) -> Option<Result<NodeId, String>> {
        None
    }
    /// Whether a message answers one the receiver sent: it travels on the connection the
    /// receiver opened. Anything else opens (or uses) the sender's own connection.
    fn is_reply(_msg: &Self::Msg) -> bool {
        false
    }
}

/// Who a fault acts on: a node, or a role that the nodes resolve when the fault fires.
#[derive(Clone, Debug)]
pub enum Target<R> {
    Node(NodeId),
    Role(R),
}

impl<R> From<NodeId> for Target<R> {
    fn from(n: NodeId) -> Self {
        Target::Node(n)
    }
}

/// A fault, as the engine understands it: over node ids once it fires (`N = NodeId`),
/// over [`Target`]s while it waits.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultOp<N = NodeId> {
    Crash(N),
    PowerLoss(N),
    /// A clean shutdown.
    Stop(N),
    Restart(N),
    Pause(N, Duration),
    Isolate(N),
    Partition(Vec<Vec<N>>),
    Cut(N, N),
    Slow(Vec<N>, Duration),
    HealAll,
    /// The start of the drain phase: heal the network, resume paused nodes, restart
    /// crashed ones.
    Drain,
    /// Undoes the cuts and slowdowns of the fault with this index (its `for` ran out).
    Undo(usize),
}

impl<N> FaultOp<N> {
    /// The same fault over other node handles; the first error stops it.
    pub fn try_map<M, E>(&self, mut f: impl FnMut(&N) -> Result<M, E>) -> Result<FaultOp<M>, E> {
        Ok(match self {
            FaultOp::Crash(n) => FaultOp::Crash(f(n)?),
            FaultOp::PowerLoss(n) => FaultOp::PowerLoss(f(n)?),
            FaultOp::Stop(n) => FaultOp::Stop(f(n)?),
            FaultOp::Restart(n) => FaultOp::Restart(f(n)?),
            FaultOp::Pause(n, d) => FaultOp::Pause(f(n)?, *d),
            FaultOp::Isolate(n) => FaultOp::Isolate(f(n)?),
            FaultOp::Partition(groups) => FaultOp::Partition(
                groups
                    .iter()
                    .map(|g| g.iter().map(&mut f).collect::<Result<Vec<M>, E>>())
                    .collect::<Result<_, E>>()?,
            ),
            FaultOp::Cut(a, b) => FaultOp::Cut(f(a)?, f(b)?),
            FaultOp::Slow(nodes, d) => FaultOp::Slow(nodes.iter().map(f).collect::<Result<_, E>>()?, *d),
            FaultOp::HealAll => FaultOp::HealAll,
            FaultOp::Drain => FaultOp::Drain,
            FaultOp::Undo(i) => FaultOp::Undo(*i),
        })
    }
}

/// A fault waiting in the queue.
struct Scheduled<R> {
    op: FaultOp<Target<R>>,
    /// Heal it this long after it fires (`for:`).
    heal_after: Option<Duration>,
    /// The fault this one heals.
    heal_of: Option<usize>,
}

/// What became of a scheduled fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// The fault's index in the order faults were scheduled.
    pub index: usize,
    /// When this is the heal of an earlier fault (its `for` ran out): that fault's index.
    pub heal_of: Option<usize>,
    pub at: Time,
    /// The fault with its roles resolved; `None` when a role it names had nobody to play
    /// it (see `unresolved`).
    pub op: Option<FaultOp>,
    /// The node each role it names resolved to, in the order written.
    pub roles: Vec<NodeId>,
    /// Why a role could not be resolved: the fault did not fire.
    pub unresolved: Option<String>,
    /// Whether it changed anything (crashing a node that is already down does not).
    pub fired: bool,
    /// Nodes that the fault crashed, restarted, paused or resumed (for the timeline).
    pub affected: Vec<NodeId>,
    /// Links the drain restored.
    pub healed: usize,
}

/// Something that happened, for the observer: an actor's observation or a fault.
pub enum Happening<'a, O> {
    Observed { at: Time, node: NodeId, obs: &'a O },
    Fault(&'a FaultRecord),
}

enum Event<M, T> {
    Start {
        node: NodeId,
        inc: u32,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        to_inc: u32,
        stamp: Stamp,
        /// A retransmission: a receiver that is gone answers it with a reset.
        again: bool,
        msg: Box<M>,
    },
    /// A segment lost on the wire is retransmitted now: it goes on the wire if the link
    /// is live, and waits for the next heal otherwise.
    Resend {
        from: NodeId,
        to: NodeId,
        to_inc: u32,
        stamp: Stamp,
        msg: Box<M>,
    },
    /// A message that reached a paused node: already past the network.
    Arrived {
        from: NodeId,
        to: NodeId,
        to_inc: u32,
        msg: Box<M>,
    },
    Timer {
        node: NodeId,
        inc: u32,
        timer: T,
    },
    PeerDown {
        node: NodeId,
        inc: u32,
        peer: NodeId,
    },
    Fault(usize),
    Resume {
        node: NodeId,
        inc: u32,
        pause: u32,
    },
}

impl<M, T> Event<M, T> {
    /// The node whose handler this event runs, when it is tied to a live incarnation.
    fn target(&self) -> Option<(NodeId, u32)> {
        match self {
            Event::Start { node, inc } | Event::Timer { node, inc, .. } | Event::PeerDown { node, inc, .. } => {
                Some((*node, *inc))
            }
            Event::Deliver { to, to_inc, .. } | Event::Arrived { to, to_inc, .. } => Some((*to, *to_inc)),
            Event::Fault(_) | Event::Resume { .. } | Event::Resend { .. } => None,
        }
    }
}

/// A queue entry: when, in what order, and what: an event in the slab beside the queue
/// (`key < LANE`) or a lane of timers (`key - LANE`). Small, so the heap moves little.
#[derive(PartialEq, Eq)]
struct Entry {
    at: Time,
    seq: u64,
    key: u32,
}

/// Keys from here on name timer lanes.
const LANE: u32 = 1 << 31;

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
/// Reversed, so the max-heap pops the earliest (time, sequence) first.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A segment the network holds: lost to a cut and waiting for its retransmission, or
/// arrived ahead of a lost one and waiting in the receive buffer.
struct Segment<M> {
    to_inc: u32,
    stamp: Stamp,
    /// Boxed, as in the events that carry it: the event queue's entries stay small
    /// (messages are the largest thing an event holds), which keeps its memory and the
    /// heap's moves small.
    msg: Box<M>,
}

struct Slot<A: Actor> {
    actor: A,
    name: String,
    up: bool,
    /// Bumped at every crash: events addressed to an older incarnation are dropped.
    incarnation: u32,
    /// After a process crash the host still runs and refuses connections; after a power
    /// loss it is silent.
    host_alive: bool,
    paused: bool,
    pauses: u32,
    /// Events that arrived while paused, in arrival order.
    held: Vec<Event<A::Msg, A::Timer>>,
    /// A clean shutdown has begun and the node has not exited yet.
    stopping: bool,
    /// A restart came while it was stopping: it restarts as soon as it exits.
    restart_on_exit: bool,
}

/// Sequence numbers below this go to events that come first among those of their instant
/// (the heals of faults), the rest count up from it.
const FIRST: u64 = 1 << 62;

pub struct Engine<A: Actor> {
    now: Time,
    seq: u64,
    first_seq: u64,
    queue: BinaryHeap<Entry>,
    /// The events the queue's entries stand for, by key; free places are reused.
    slab: Vec<Option<Event<A::Msg, A::Timer>>>,
    free: Vec<u32>,
    /// Lanes to queue after a handler set timers (reused buffer).
    arm: Vec<(u32, Time, u64)>,
    slots: Vec<Slot<A>>,
    pub network: Network,
    /// Per link (from, to, client): segments lost to a cut, in order, until the link is
    /// live.
    lost: BTreeMap<LinkKey, Vec<Segment<A::Msg>>>,
    /// Per link: segments that arrived ahead of a lost one, by sequence number.
    early: BTreeMap<LinkKey, BTreeMap<u64, Segment<A::Msg>>>,
    faults: Vec<Scheduled<A::Role>>,
    pub fault_records: Vec<FaultRecord>,
    events: u64,
    /// Events whose handler said they changed nothing.
    idle: u64,
    /// The most entries the queue held at once.
    peak_pending: usize,
    /// The run stops once it has handled this many events.
    max_events: u64,
    over_budget: bool,
    trace: Option<TraceSink>,
    trace_error: Option<std::io::Error>,
    outbox: Outbox<A::Msg, A::Timer, A::Obs>,
}

impl<A: Actor> Engine<A> {
    /// An engine over `actors` (node i is `actors[i]`), all started at time zero in order.
    pub fn new(actors: Vec<(String, A)>, network: Network) -> Engine<A> {
        let mut engine = Engine {
            now: Time::ZERO,
            seq: FIRST,
            first_seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            arm: Vec::new(),
            slots: Vec::new(),
            network,
            lost: BTreeMap::new(),
            early: BTreeMap::new(),
            faults: Vec::new(),
            fault_records: Vec::new(),
            events: 0,
            idle: 0,
            peak_pending: 0,
            max_events: u64::MAX,
            over_budget: false,
            trace: None,
            trace_error: None,
            outbox: Outbox::new(),
        };
        for (i, (name, actor)) in actors.into_iter().enumerate() {
            engine.slots.push(Slot {
                actor,
                name,
                up: true,
                incarnation: 0,
                host_alive: true,
                paused: false,
                pauses: 0,
                stopping: false,
                restart_on_exit: false,
                held: Vec::new(),
            });
            engine.push(
                Time::ZERO,
                Event::Start {
                    node: NodeId(i as u32),
                    inc: 0,
                },
            );
        }
        engine
    }

    /// Writes every event as one JSON object per line to `sink`.
    pub fn set_trace(&mut self, sink: Box<dyn Write>) {
        self.trace = Some(TraceSink { out: sink, shape: None });
    }

    /// Passes every trace line through `shape` before it is written: it may rewrite the
    /// line, and the line is written only if it returns true. Call after `set_trace`.
    pub fn set_trace_shape(&mut self, shape: TraceShape) {
        if let Some(t) = self.trace.as_mut() {
            t.shape = Some(shape);
        }
    }

    /// Schedules a fault, healed `heal_after` after it fires when that is set (a crash,
    /// power loss or stop by a restart, a network fault by undoing its cuts and
    /// slowdowns). Faults at the same time fire in the order they were scheduled.
    /// Returns the fault's index.
    pub fn schedule_fault(&mut self, at: Time, op: FaultOp<Target<A::Role>>, heal_after: Option<Duration>) -> usize {
        self.faults.push(Scheduled {
            op,
            heal_after,
            heal_of: None,
        });
        let index = self.faults.len() - 1;
        self.push(at, Event::Fault(index));
        index
    }

    /// Stops the run once it has handled `n` events (see [`Engine::over_budget`]).
    pub fn set_max_events(&mut self, n: u64) {
        self.max_events = n;
    }

    /// Whether the run stopped because it reached its event budget.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    pub fn now(&self) -> Time {
        self.now
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    /// Events whose handler said they changed nothing (stale timers that were not
    /// cancelled).
    pub fn idle_events(&self) -> u64 {
        self.idle
    }
    /// The most events the queue held at once: the shape of a bare event loop that
    /// stands for this run in a benchmark.
    pub fn peak_pending(&self) -> usize {
        self.peak_pending
    }
    pub fn node(&self, id: NodeId) -> &A {
        &self.slots[id.index()].actor
    }
    pub fn name(&self, id: NodeId) -> &str {
        &self.slots[id.index()].name
    }
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id.index()].up
    }
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Ends the trace, reporting the first write error, if any.
    pub fn finish_trace(&mut self) -> std::io::Result<()> {
        if let Some(err) = self.trace_error.take() {
            return Err(err);
        }
        if let Some(mut sink) = self.trace.take() {
            sink.out.flush()?;
        }
        Ok(())
    }

    fn push(&mut self, at: Time, event: Event<A::Msg, A::Timer>) {
        self.seq += 1;
        debug_assert!(self.seq > FIRST);
        let seq = self.seq;
        self.enqueue(at, seq, event);
    }

    /// Schedules an event before every event at `at` that [`Engine::push`] scheduled: a
    /// fault that lasts until `at` has healed by the time another fault fires at `at`.
    fn push_first(&mut self, at: Time, event: Event<A::Msg, A::Timer>) {
        self.first_seq += 1;
        debug_assert!(self.first_seq < FIRST);
        let seq = self.first_seq;
        self.enqueue(at, seq, event);
    }

    fn enqueue(&mut self, at: Time, seq: u64, event: Event<A::Msg, A::Timer>) {
        let key = match self.free.pop() {
            Some(key) => {
                self.slab[key as usize] = Some(event);
                key
            }
            None => {
                self.slab.push(Some(event));
                let key = (self.slab.len() - 1) as u32;
                assert!(key < LANE, "too many events pending");
                key
            }
        };
        self.queue.push(Entry { at, seq, key });
        self.peak_pending = self.peak_pending.max(self.queue.len());
    }

    /// Queues a lane of timers for its front timer.
    fn arm_lane(&mut self, lane: u32, at: Time, seq: u64) {
        self.queue.push(Entry {
            at,
            seq,
            key: LANE + lane,
        });
        self.peak_pending = self.peak_pending.max(self.queue.len());
    }

    /// Runs every event up to and including `until`, handing observations and faults to
    /// `observer`. Leaves the clock at `until`.
    pub fn run_until(&mut self, until: Time, observer: &mut impl FnMut(Happening<'_, A::Obs>)) {
        while let Some(entry) = self.queue.peek() {
            if entry.at > until {
                break;
            }
            if self.events >= self.max_events {
                self.over_budget = true;
                return;
            }
            let entry = self.queue.pop().expect("peeked");
            self.now = entry.at;
            if entry.key >= LANE {
                let lane = entry.key - LANE;
                match self.outbox.timers.due(lane, entry.seq) {
                    Due::Fire { node, timer, next } => {
                        if let Some((at, seq)) = next {
                            self.arm_lane(lane, at, seq);
                        }
                        let inc = self.slots[node.index()].incarnation;
                        self.receive(Event::Timer { node, inc, timer }, observer);
                    }
                    Due::Rearm(at, seq) => self.arm_lane(lane, at, seq),
                    Due::Empty => {}
                }
                continue;
            }
            let event = self.slab[entry.key as usize].take().expect("queued");
            self.free.push(entry.key);
            self.dispatch(event, observer);
        }
        self.now = self.now.max(until);
    }

    fn dispatch(&mut self, event: Event<A::Msg, A::Timer>, observer: &mut impl FnMut(Happening<'_, A::Obs>)) {
        if let Event::Fault(index) = event {
            self.events += 1;
            self.apply_fault(index, observer);
            return;
        }
        if let Event::Resume { node, inc, pause } = event {
            let slot = &mut self.slots[node.index()];
            if slot.incarnation == inc && slot.paused && slot.pauses == pause {
                self.resume(node);
            }
            return;
        }
        if let Event::Deliver {
            from,
            to,
            to_inc,
            stamp,
            again,
            msg,
        } = event
        {
            self.arrive(from, to, Segment { to_inc, stamp, msg }, again, observer);
            return;
        }
        if let Event::Resend {
            from,
            to,
            to_inc,
            stamp,
            msg,
        } = event
        {
            self.resend(from, to, Segment { to_inc, stamp, msg });
            return;
        }
        self.receive(event, observer);
    }

    /// A segment reaches the receiving end of its link: discarded if its connection was
    /// closed, held for retransmission if a cut lost it, kept in the receive buffer if it
    /// overtook a lost one, otherwise handed over with whatever it was holding up.
    fn arrive(
        &mut self,
        from: NodeId,
        to: NodeId,
        seg: Segment<A::Msg>,
        again: bool,
        observer: &mut impl FnMut(Happening<'_, A::Obs>),
    ) {
        let key = (from.0, to.0, seg.stamp.client.0);
        match self.network.arrive(from, to, &seg.stamp) {
            Arrival::Closed => self.trace_drop(from, to, "connection-closed"),
            Arrival::Lost => {
                self.trace_drop(from, to, "lost-retransmitting");
                if self.network.can_send(from, to) {
                    self.retransmit(from, to, vec![seg]);
                } else {
                    let held = self.lost.entry(key).or_default();
                    let at = held.partition_point(|h| h.stamp.seq < seg.stamp.seq);
                    held.insert(at, seg);
                }
            }
            Arrival::Early => {
                self.early.entry(key).or_default().insert(seg.stamp.seq, seg);
            }
            Arrival::InOrder => {
                self.hand_over(from, to, seg, again, observer);
                loop {
                    let next = self.network.expected(key);
                    let Some(buffer) = self.early.get_mut(&key) else { break };
                    let Some(seg) = buffer.remove(&next) else { break };
                    if buffer.is_empty() {
                        self.early.remove(&key);
                    }
                    self.network.take_in_order(key);
                    self.hand_over(from, to, seg, true, observer);
                }
            }
        }
    }

    /// Schedules the retransmission of segments lost on a link that is live again, at the
    /// first retransmission due now or later; if the kernel has given up on them, the
    /// connection is reset and the sender hears of it.
    fn retransmit(&mut self, from: NodeId, to: NodeId, segs: Vec<Segment<A::Msg>>) {
        for seg in segs {
            match Network::retransmit_at(seg.stamp.sent, self.now) {
                Some(at) => self.push(
                    at,
                    Event::Resend {
                        from,
                        to,
                        to_inc: seg.to_inc,
                        stamp: seg.stamp,
                        msg: seg.msg,
                    },
                ),
                None => {
                    self.trace_drop(from, to, "retransmissions-exhausted");
                    let client = seg.stamp.client;
                    self.close(client, if client == from { to } else { from });
                    if self.slots[from.index()].up {
                        let inc = self.slots[from.index()].incarnation;
                        self.push(
                            self.now,
                            Event::PeerDown {
                                node: from,
                                inc,
                                peer: to,
                            },
                        );
                    }
                    return;
                }
            }
        }
    }

    /// A retransmission is due: the segment goes on the wire if the link is live now (a
    /// cut that came and went since it was lost does not matter), and is held for the next
    /// heal otherwise.
    fn resend(&mut self, from: NodeId, to: NodeId, seg: Segment<A::Msg>) {
        if !self.network.is_open(from, to, &seg.stamp) {
            self.trace_drop(from, to, "connection-closed");
            return;
        }
        let (stamp, at) = self.network.resend(self.now, from, to, &seg.stamp);
        let seg = Segment { stamp, ..seg };
        match at {
            Some(at) => self.push(
                at,
                Event::Deliver {
                    from,
                    to,
                    to_inc: seg.to_inc,
                    stamp: seg.stamp,
                    again: true,
                    msg: seg.msg,
                },
            ),
            None => {
                self.trace_drop(from, to, "cut-retransmitting");
                let held = self.lost.entry((from.0, to.0, seg.stamp.client.0)).or_default();
                let i = held.partition_point(|h| h.stamp.seq < seg.stamp.seq);
                held.insert(i, seg);
            }
        }
    }

    /// After a heal: every link that is live again retransmits what it lost.
    fn retransmit_healed(&mut self) {
        let healed: Vec<LinkKey> = self
            .lost
            .keys()
            .filter(|(a, b, _)| self.network.can_send(NodeId(*a), NodeId(*b)))
            .copied()
            .collect();
        for key in healed {
            let segs = self.lost.remove(&key).expect("listed");
            self.retransmit(NodeId(key.0), NodeId(key.1), segs);
        }
    }

    /// Closes the connection `client` opened to `server`: nothing in flight on it
    /// arrives.
    fn close(&mut self, client: NodeId, server: NodeId) {
        self.network.close(client, server);
        for key in [(client.0, server.0, client.0), (server.0, client.0, client.0)] {
            self.lost.remove(&key);
            self.early.remove(&key);
        }
    }

    /// A segment taken in order by the receiving host, for the process there.
    fn hand_over(
        &mut self,
        from: NodeId,
        to: NodeId,
        seg: Segment<A::Msg>,
        again: bool,
        observer: &mut impl FnMut(Happening<'_, A::Obs>),
    ) {
        let slot = &self.slots[to.index()];
        if (!slot.up || slot.incarnation != seg.to_inc) && again && slot.host_alive && self.slots[from.index()].up {
            // A retransmission reaches a host whose process is gone: it answers with a
            // reset, and the sender learns the connection is closed.
            let inc = self.slots[from.index()].incarnation;
            let back = self.network.base_latency(to, from);
            self.push(
                self.now + back,
                Event::PeerDown {
                    node: from,
                    inc,
                    peer: to,
                },
            );
        }
        let event = Event::Arrived {
            from,
            to,
            to_inc: seg.to_inc,
            msg: seg.msg,
        };
        self.receive(event, observer);
    }

    /// Runs an event for its node, unless the node is down (or another incarnation) or
    /// paused (then it waits in the node's socket buffer).
    fn receive(&mut self, event: Event<A::Msg, A::Timer>, observer: &mut impl FnMut(Happening<'_, A::Obs>)) {
        let Some((node, inc)) = event.target() else { return };
        let slot = &mut self.slots[node.index()];
        if !slot.up || slot.incarnation != inc {
            if let Event::Arrived { from, to, .. } = &event {
                self.trace_drop(*from, *to, "receiver-down");
            }
            return;
        }
        if slot.paused {
            // A message that arrives while its receiver stalls sits in the receiver's
            // socket buffer: a later cut cannot take it back.
            slot.held.push(event);
            return;
        }
        let input = match event {
            Event::Start { .. } => Input::Start,
            Event::Timer { timer, .. } => Input::Timer(timer),
            Event::PeerDown { peer, .. } => Input::PeerDown(peer),
            // What a sender put on the wire arrives even if the sender died since: its
            // host had already transmitted it.
            Event::Arrived { from, msg, .. } => Input::Message { from, msg: *msg },
            Event::Deliver { .. } | Event::Resend { .. } | Event::Fault(_) | Event::Resume { .. } => {
                unreachable!("handled above")
            }
        };
        self.events += 1;
        self.trace_input(node, &input);
        // One outbox is reused for every event, so handlers allocate nothing for it.
        let mut out = self.take_outbox(node);
        self.slots[node.index()].actor.handle(self.now, input, &mut out);
        if std::mem::take(&mut out.idle) {
            self.idle += 1;
        }
        self.apply_outbox(node, &mut out, observer);
        let exit = std::mem::take(&mut out.exit);
        self.outbox = out;
        if exit && self.slots[node.index()].stopping {
            self.crash(node, CrashKind::Stop, observer);
            if std::mem::take(&mut self.slots[node.index()].restart_on_exit) {
                self.restart(node);
            }
        }
    }

    /// A clean shutdown begins: the node stops now, or later through [`Outbox::exit`].
    fn begin_stop(&mut self, node: NodeId, observer: &mut impl FnMut(Happening<'_, A::Obs>)) -> bool {
        let slot = &self.slots[node.index()];
        if !slot.up || slot.stopping {
            return false;
        }
        let mut out = self.take_outbox(node);
        let now = self.slots[node.index()].actor.begin_stop(self.now, &mut out);
        out.exit = false;
        self.apply_outbox(node, &mut out, observer);
        self.outbox = out;
        if now {
            self.crash(node, CrashKind::Stop, observer)
        } else {
            self.slots[node.index()].stopping = true;
            true
        }
    }

    /// The outbox, with the timers, for a handler of `node` at the current time.
    fn take_outbox(&mut self, node: NodeId) -> Outbox<A::Msg, A::Timer, A::Obs> {
        let mut out = std::mem::replace(&mut self.outbox, Outbox::new());
        out.node = node;
        out.now = self.now;
        out
    }

    fn apply_outbox(
        &mut self,
        node: NodeId,
        out: &mut Outbox<A::Msg, A::Timer, A::Obs>,
        observer: &mut impl FnMut(Happening<'_, A::Obs>),
    ) {
        let inc = self.slots[node.index()].incarnation;
        for obs in out.observations.drain(..) {
            self.trace_obs(node, &obs);
            observer(Happening::Observed {
                at: self.now,
                node,
                obs: &obs,
            });
        }
        let mut arm = std::mem::take(&mut self.arm);
        let seq = &mut self.seq;
        out.timers.take_fresh(
            || {
                *seq += 1;
                *seq
            },
            &mut arm,
        );
        for (lane, at, seq) in arm.drain(..) {
            self.arm_lane(lane, at, seq);
        }
        self.arm = arm;
        for to in out.closes.drain(..) {
            self.close(node, to);
        }
        for (to, msg) in out.sends.drain(..) {
            let to_slot = &self.slots[to.index()];
            let to_inc = to_slot.incarnation;
            let (receiver_up, host_alive) = (to_slot.up, to_slot.host_alive);
            if !receiver_up && self.network.can_send(node, to) {
                // Nothing reaches a dead process. A live host refuses the connection for
                // it; a powered-off one stays silent.
                if host_alive {
                    let back = self.network.base_latency(node, to) + self.network.base_latency(to, node);
                    self.push(self.now + back, Event::PeerDown { node, inc, peer: to });
                }
                self.trace_drop(node, to, "receiver-down");
                continue;
            }
            let client = if A::is_reply(&msg) { to } else { node };
            let (stamp, at) = self.network.send(self.now, node, to, client);
            let seg = Segment {
                to_inc,
                stamp,
                msg: Box::new(msg),
            };
            match at {
                Some(at) => self.push(
                    at,
                    Event::Deliver {
                        from: node,
                        to,
                        to_inc,
                        stamp: seg.stamp,
                        again: false,
                        msg: seg.msg,
                    },
                ),
                None => {
                    self.trace_drop(node, to, "cut-retransmitting");
                    self.lost.entry((node.0, to.0, client.0)).or_default().push(seg);
                }
            }
        }
    }

    /// The node that plays `role` now, by the first node that answers for it.
    fn resolve_target(&self, target: &Target<A::Role>) -> Result<NodeId, String> {
        match target {
            Target::Node(n) => Ok(*n),
            Target::Role(role) => self
                .slots
                .iter()
                .find_map(|s| s.actor.resolve(role))
                .unwrap_or_else(|| Err(format!("no node answers for {role:?}"))),
        }
    }

    /// A fault with its roles resolved, and the node each role resolved to, in the order
    /// written. In a partition, a node that a role resolves to leaves the other groups
    /// that name it: "the leader, cut off from the rest".
    fn resolve_op(&self, op: &FaultOp<Target<A::Role>>) -> Result<(FaultOp, Vec<NodeId>), String> {
        let name = |n: NodeId| self.slots[n.index()].name.clone();
        let mut roles = Vec::new();
        let mut resolve = |t: &Target<A::Role>| -> Result<NodeId, String> {
            let n = self.resolve_target(t)?;
            if matches!(t, Target::Role(_)) {
                roles.push(n);
            }
            Ok(n)
        };
        let op = match op {
            FaultOp::Partition(groups) => {
                let mut resolved: Vec<Vec<(NodeId, bool)>> = Vec::new();
                for g in groups {
                    let mut out = Vec::new();
                    for t in g {
                        out.push((resolve(t)?, matches!(t, Target::Role(_))));
                    }
                    resolved.push(out);
                }
                let by_role: Vec<(NodeId, usize)> = resolved
                    .iter()
                    .enumerate()
                    .flat_map(|(i, g)| g.iter().filter(|(_, r)| *r).map(move |(n, _)| (*n, i)))
                    .collect();
                let mut out: Vec<Vec<NodeId>> = Vec::new();
                for (i, g) in resolved.iter().enumerate() {
                    let mut nodes = Vec::new();
                    for &(n, by) in g {
                        if nodes.contains(&n) || (!by && by_role.iter().any(|&(m, j)| m == n && j != i)) {
                            continue;
                        }
                        if out.iter().any(|o| o.contains(&n)) {
                            return Err(format!("{} would be on both sides of the partition", name(n)));
                        }
                        nodes.push(n);
                    }
                    out.push(nodes);
                }
                FaultOp::Partition(out)
            }
            _ => match op.try_map(&mut resolve)? {
                FaultOp::Cut(a, b) if a == b => return Err(format!("both ends of the cut are {}", name(a))),
                FaultOp::Slow(nodes, d) => {
                    let mut unique: Vec<NodeId> = Vec::new();
                    for n in nodes {
                        if !unique.contains(&n) {
                            unique.push(n);
                        }
                    }
                    FaultOp::Slow(unique, d)
                }
                op => op,
            },
        };
        Ok((op, roles))
    }

    fn apply_fault(&mut self, index: usize, observer: &mut impl FnMut(Happening<'_, A::Obs>)) {
        let (heal_after, heal_of) = (self.faults[index].heal_after, self.faults[index].heal_of);
        let (op, roles) = match self.resolve_op(&self.faults[index].op) {
            Ok(resolved) => resolved,
            Err(why) => {
                let record = FaultRecord {
                    index,
                    heal_of,
                    at: self.now,
                    op: None,
                    roles: Vec::new(),
                    unresolved: Some(why),
                    fired: false,
                    affected: Vec::new(),
                    healed: 0,
                };
                if let Some(sink) = self.trace.as_mut() {
                    let line = serde_json::json!({"t": self.now, "unresolved_fault": index, "why": &record.unresolved});
                    write_line(sink, line, &mut self.trace_error);
                }
                observer(Happening::Fault(&record));
                self.fault_records.push(record);
                return;
            }
        };
        let owner = index as u32;
        // A crash heals only what it took down: a power loss of a node whose process had
        // already crashed fires (the page cache goes) but leaves its restart to the crash.
        let was_up = match &op {
            FaultOp::Crash(n) | FaultOp::PowerLoss(n) | FaultOp::Stop(n) => self.slots[n.index()].up,
            _ => false,
        };
        let mut affected = Vec::new();
        let mut healed = 0;
        let fired = match &op {
            FaultOp::Crash(n) => self.crash(*n, CrashKind::Process, observer),
            FaultOp::PowerLoss(n) => self.crash(*n, CrashKind::PowerLoss, observer),
            FaultOp::Stop(n) => self.begin_stop(*n, observer),
            FaultOp::Restart(n) => self.restart(*n),
            FaultOp::Pause(n, d) => self.pause(*n, *d),
            FaultOp::Isolate(n) => self.network.isolate(*n, owner) > 0,
            FaultOp::Partition(groups) => self.network.partition(groups, owner) > 0,
            FaultOp::Cut(a, b) => self.network.cut(*a, *b, owner),
            FaultOp::Slow(nodes, d) => {
                nodes.iter().for_each(|n| self.network.slow(*n, *d, owner));
                !nodes.is_empty()
            }
            FaultOp::HealAll => self.network.heal() > 0,
            FaultOp::Undo(of) => self.network.undo(*of as u32) > 0,
            FaultOp::Drain => {
                healed = self.network.heal();
                let mut changed = healed > 0;
                for i in 0..self.slots.len() {
                    let n = NodeId(i as u32);
                    if self.slots[i].paused {
                        self.resume(n);
                        affected.push(n);
                        changed = true;
                    }
                    if !self.slots[i].up || self.slots[i].stopping {
                        self.restart(n);
                        affected.push(n);
                        changed = true;
                    }
                }
                changed
            }
        };
        if matches!(op, FaultOp::HealAll | FaultOp::Undo(_) | FaultOp::Drain) {
            self.retransmit_healed();
        }
        if affected.is_empty() {
            match &op {
                FaultOp::Crash(n)
                | FaultOp::PowerLoss(n)
                | FaultOp::Stop(n)
                | FaultOp::Restart(n)
                | FaultOp::Pause(n, _) => affected.push(*n),
                _ => {}
            }
        }
        // The heal of a fault with `for:`. A crash that hit a node already down heals
        // nothing (restarting would cut another fault short); a network fault is undone
        // whatever it changed, since its cuts are in force until then.
        let heal = match (&op, heal_after) {
            (FaultOp::Crash(n) | FaultOp::PowerLoss(n) | FaultOp::Stop(n), Some(d)) if fired && was_up => {
                Some((FaultOp::Restart(Target::Node(*n)), d))
            }
            (FaultOp::Isolate(_) | FaultOp::Partition(_) | FaultOp::Cut(..) | FaultOp::Slow(..), Some(d)) => {
                Some((FaultOp::Undo(index), d))
            }
            _ => None,
        };
        if let Some((heal_op, after)) = heal {
            self.faults.push(Scheduled {
                op: heal_op,
                heal_after: None,
                heal_of: Some(index),
            });
            let heal_index = self.faults.len() - 1;
            self.push_first(self.now + after, Event::Fault(heal_index));
        }
        let record = FaultRecord {
            index,
            heal_of,
            at: self.now,
            op: Some(op),
            roles,
            unresolved: None,
            fired,
            affected,
            healed,
        };
        if let Some(sink) = self.trace.as_mut() {
            let line = serde_json::json!({"t": self.now, "fault": &record.op, "fired": fired});
            write_line(sink, line, &mut self.trace_error);
        }
        observer(Happening::Fault(&record));
        self.fault_records.push(record);
    }

    fn crash(&mut self, node: NodeId, kind: CrashKind, observer: &mut impl FnMut(Happening<'_, A::Obs>)) -> bool {
        let slot = &mut self.slots[node.index()];
        if !slot.up {
            // A host whose process already died can still lose power: what was not
            // flushed goes too.
            if kind == CrashKind::PowerLoss && slot.host_alive {
                slot.host_alive = false;
                let mut out = self.take_outbox(node);
                self.slots[node.index()].actor.crash(self.now, kind, &mut out);
                out.sends.clear();
                out.timers.clear_node(node);
                self.apply_outbox(node, &mut out, observer);
                self.outbox = out;
                return true;
            }
            return false;
        }
        slot.up = false;
        slot.paused = false;
        slot.stopping = false;
        slot.restart_on_exit = false;
        slot.held.clear();
        slot.incarnation += 1;
        slot.host_alive = kind != CrashKind::PowerLoss;
        // The host resets the dead process's connections (or, losing power, takes them
        // with it): nothing still in flight on them arrives, and whatever the node sends
        // next, a clean shutdown's last words or a restarted process's first, opens new
        // ones.
        self.close_all(node);
        let mut out = self.take_outbox(node);
        self.slots[node.index()].actor.crash(self.now, kind, &mut out);
        if kind != CrashKind::Stop {
            out.sends.clear();
        }
        out.timers.clear_node(node);
        self.apply_outbox(node, &mut out, observer);
        self.outbox = out;
        if kind != CrashKind::PowerLoss {
            // Peers hear of the reset one link latency later, if the link is up.
            self.notify_peers(node);
        }
        true
    }

    fn close_all(&mut self, node: NodeId) {
        for i in 0..self.slots.len() as u32 {
            if i != node.0 {
                self.close(node, NodeId(i));
                self.close(NodeId(i), node);
            }
        }
    }

    fn restart(&mut self, node: NodeId) -> bool {
        let slot = &mut self.slots[node.index()];
        if slot.stopping {
            slot.restart_on_exit = true;
            return true;
        }
        if slot.up {
            return false;
        }
        slot.up = true;
        let was_powered_off = !slot.host_alive;
        slot.host_alive = true;
        let inc = slot.incarnation;
        self.push(self.now, Event::Start { node, inc });
        if was_powered_off {
            // The rebooted host answers its peers' retransmissions on connections it no
            // longer knows with a reset: they learn the old process is gone.
            self.notify_peers(node);
        }
        true
    }

    /// Tells every live peer, one link latency later, that `node`'s old connections are
    /// closed.
    fn notify_peers(&mut self, node: NodeId) {
        for i in 0..self.slots.len() {
            let peer = NodeId(i as u32);
            if peer != node && self.slots[i].up && self.network.can_send(node, peer) {
                let inc = self.slots[i].incarnation;
                let at = self.now + self.network.base_latency(node, peer);
                self.push(
                    at,
                    Event::PeerDown {
                        node: peer,
                        inc,
                        peer: node,
                    },
                );
            }
        }
    }

    fn pause(&mut self, node: NodeId, length: Duration) -> bool {
        let slot = &mut self.slots[node.index()];
        if !slot.up || slot.paused {
            return false;
        }
        slot.paused = true;
        slot.pauses += 1;
        let (inc, pause) = (slot.incarnation, slot.pauses);
        self.push(self.now + length, Event::Resume { node, inc, pause });
        true
    }

    /// Resumes a paused node: what it missed is handed to it now, in arrival order.
    fn resume(&mut self, node: NodeId) {
        let slot = &mut self.slots[node.index()];
        slot.paused = false;
        let held = std::mem::take(&mut slot.held);
        for event in held {
            self.push(self.now, event);
        }
    }

    fn trace_input(&mut self, node: NodeId, input: &Input<A::Msg, A::Timer>) {
        let Some(sink) = self.trace.as_mut() else { return };
        let name = &self.slots[node.index()].name;
        let line = match input {
            Input::Start => serde_json::json!({"t": self.now, "node": name, "start": true}),
            Input::Message { from, msg } => {
                serde_json::json!({"t": self.now, "node": name, "from": &self.slots[from.index()].name, "msg": msg})
            }
            Input::Timer(timer) => serde_json::json!({"t": self.now, "node": name, "timer": timer}),
            Input::PeerDown(peer) => {
                serde_json::json!({"t": self.now, "node": name, "peer_down": &self.slots[peer.index()].name})
            }
        };
        write_line(sink, line, &mut self.trace_error);
    }

    fn trace_obs(&mut self, node: NodeId, obs: &A::Obs) {
        let Some(sink) = self.trace.as_mut() else { return };
        let line = serde_json::json!({"t": self.now, "node": &self.slots[node.index()].name, "obs": obs});
        write_line(sink, line, &mut self.trace_error);
    }

    fn trace_drop(&mut self, from: NodeId, to: NodeId, why: &str) {
        let Some(sink) = self.trace.as_mut() else { return };
        let line = serde_json::json!({
            "t": self.now,
            "drop": why,
            "from": &self.slots[from.index()].name,
            "to": &self.slots[to.index()].name,
        });
        write_line(sink, line, &mut self.trace_error);
    }
}

/// Where the trace goes, and what is done to each line first.
struct TraceSink {
    out: Box<dyn Write>,
    /// Rewrites a line (names for numbers) and says whether to keep it.
    shape: Option<TraceShape>,
}

/// A trace line's rewriting and filter: see [`Engine::set_trace_shape`].
pub type TraceShape = Box<dyn FnMut(&mut serde_json::Value) -> bool>;

fn write_line(sink: &mut TraceSink, mut line: serde_json::Value, error: &mut Option<std::io::Error>) {
    if error.is_some() {
        return;
    }
    if let Some(shape) = sink.shape.as_mut()
        && !shape(&mut line)
    {
        return;
    }
    let out = &mut sink.out;
    let result = serde_json::to_writer(&mut *out, &line)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"));
    if let Err(e) = result {
        *error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::stream;

    /// A toy actor that records what it is handed and follows simple scripts.
    #[derive(Default)]
    struct Echo {
        seen: Vec<String>,
        /// Sends `Ping(1)` here when it starts.
        ping: Option<NodeId>,
    }

    #[derive(Serialize, Clone)]
    enum M {
        Ping(u32),
    }

    impl Actor for Echo {
        type Msg = M;
        type Timer = u32;
        type Obs = String;
        type Role = u32;
        fn handle(&mut self, now: Time, input: Input<M, u32>, out: &mut Outbox<M, u32, String>) {
            let text = match input {
                Input::Start => {
                    if let Some(to) = self.ping {
                        out.send(to, M::Ping(1));
                    }
                    out.set_timer(Duration::from_millis(10), 1);
                    out.set_timer(Duration::from_millis(10), 2);
                    "start".to_string()
                }
                Input::Timer(t) => format!("timer {t}"),
                Input::Message { from, msg: M::Ping(n) } => format!("ping {n} from {}", from.0),
                Input::PeerDown(p) => format!("peer-down {}", p.0),
            };
            out.observe(text.clone());
            self.seen.push(format!("{}ms {text}", now.as_millis()));
        }
        fn crash(&mut self, _now: Time, _kind: CrashKind, _out: &mut Outbox<M, u32, String>) {
            self.seen.push("crash".to_string());
        }
        /// Role `r` is played by node `r`, and role 9 by nobody.
        fn resolve(&self, role: &u32) -> Option<Result<NodeId, String>> {
            Some(if *role == 9 {
                Err("nobody plays 9".to_string())
            } else {
                Ok(NodeId(*role))
            })
        }
    }

    fn engine(n: usize) -> Engine<Echo> {
        let actors = (0..n).map(|i| (format!("n{i}"), Echo::default())).collect();
        Engine::new(
            actors,
            Network::new(n, Duration::from_millis(1), Duration::ZERO, stream(0, "net")),
        )
    }

    /// Two nodes; node 0 pings node 1 when it starts.
    fn pinging() -> Engine<Echo> {
        let mut actors: Vec<(String, Echo)> = (0..2).map(|i| (format!("n{i}"), Echo::default())).collect();
        actors[0].1.ping = Some(NodeId(1));
        let net = Network::new(2, Duration::from_millis(1), Duration::ZERO, stream(0, "net"));
        Engine::new(actors, net)
    }

    fn seen(e: &Engine<Echo>, n: u32) -> Vec<String> {
        e.node(NodeId(n)).seen.clone()
    }

    #[test]
    fn ties_fire_in_insertion_order() {
        let mut e = engine(1);
        e.run_until(Time::from_millis(20), &mut |_| {});
        assert_eq!(seen(&e, 0), ["0ms start", "10ms timer 1", "10ms timer 2"]);
    }

    #[test]
    fn a_crash_kills_the_old_incarnations_timers_and_restart_starts_anew() {
        let mut e = engine(2);
        e.schedule_fault(Time::from_millis(5), FaultOp::Crash(NodeId(0).into()), None);
        e.schedule_fault(Time::from_millis(12), FaultOp::Restart(NodeId(0).into()), None);
        e.run_until(Time::from_millis(30), &mut |_| {});
        assert_eq!(
            seen(&e, 0),
            ["0ms start", "crash", "12ms start", "22ms timer 1", "22ms timer 2"]
        );
        // The peer hears of the process crash one link latency later.
        assert!(seen(&e, 1).contains(&"6ms peer-down 0".to_string()));
    }

    #[test]
    fn power_loss_is_silent_until_the_host_boots_again() {
        let mut e = engine(2);
        e.schedule_fault(Time::from_millis(5), FaultOp::PowerLoss(NodeId(0).into()), None);
        e.schedule_fault(Time::from_millis(12), FaultOp::Restart(NodeId(0).into()), None);
        e.run_until(Time::from_millis(30), &mut |_| {});
        let peer = seen(&e, 1);
        assert!(!peer.iter().any(|s| s.starts_with("6ms peer-down")), "{peer:?}");
        assert!(peer.contains(&"13ms peer-down 0".to_string()), "{peer:?}");
    }

    #[test]
    fn a_pause_holds_events_and_hands_them_over_in_order() {
        let mut e = engine(1);
        e.schedule_fault(
            Time::from_millis(5),
            FaultOp::Pause(NodeId(0).into(), Duration::from_millis(20)),
            None,
        );
        e.run_until(Time::from_millis(30), &mut |_| {});
        assert_eq!(seen(&e, 0), ["0ms start", "25ms timer 1", "25ms timer 2"]);
    }

    #[test]
    fn a_cut_loses_what_is_in_flight_until_a_retransmission_after_the_heal() {
        let run = |cut: Option<(u64, u64)>| {
            let mut e = pinging();
            if let Some((at, heal)) = cut {
                e.schedule_fault(Time(at), FaultOp::Cut(NodeId(0).into(), NodeId(1).into()), None);
                e.schedule_fault(Time(heal), FaultOp::HealAll, None);
            }
            e.run_until(Time::from_millis(2_000), &mut |_| {});
            seen(&e, 1)
                .into_iter()
                .filter(|s| s.contains("ping"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(None), ["1ms ping 1 from 0"]);
        // Sent at 0, lost at 0.5 ms: retransmitted 200 ms after the send, one trip later.
        assert_eq!(run(Some((500, 700))), ["201ms ping 1 from 0"]);
        // Healed at 300 ms: the retransmission at 200 ms was lost too, the one at 600 ms
        // gets through.
        assert_eq!(run(Some((500, 300_000))), ["601ms ping 1 from 0"]);
    }

    #[test]
    fn a_retransmission_gets_through_a_link_that_was_cut_and_healed_again_before_it() {
        let mut e = pinging();
        // Sent at 0 and lost at 0.5 ms; the link heals at 100 ms, is cut again from 120
        // to 150 ms: the retransmission at 200 ms goes on a live link.
        let cut = |e: &mut Engine<Echo>, at: u64| {
            e.schedule_fault(Time(at), FaultOp::Cut(NodeId(0).into(), NodeId(1).into()), None);
        };
        cut(&mut e, 500);
        e.schedule_fault(Time::from_millis(100), FaultOp::HealAll, None);
        cut(&mut e, 120_000);
        e.schedule_fault(Time::from_millis(150), FaultOp::HealAll, None);
        e.run_until(Time::from_millis(2_000), &mut |_| {});
        let pings: Vec<String> = seen(&e, 1).into_iter().filter(|s| s.contains("ping")).collect();
        assert_eq!(pings, ["201ms ping 1 from 0"]);
    }

    #[test]
    fn a_paused_node_keeps_what_arrived_before_a_cut() {
        let mut e = pinging();
        e.schedule_fault(
            Time(500),
            FaultOp::Pause(NodeId(1).into(), Duration::from_millis(5)),
            None,
        );
        e.schedule_fault(
            Time::from_millis(2),
            FaultOp::Cut(NodeId(0).into(), NodeId(1).into()),
            None,
        );
        e.run_until(Time::from_millis(10), &mut |_| {});
        assert!(
            seen(&e, 1).contains(&"5ms ping 1 from 0".to_string()),
            "{:?}",
            seen(&e, 1)
        );
    }

    #[test]
    fn nothing_sent_to_a_dead_process_is_delivered_after_it_restarts() {
        let mut e = pinging();
        // Node 1 is down when node 0 sends at 0ms and back before the message would land.
        e.schedule_fault(Time::ZERO, FaultOp::Crash(NodeId(1).into()), None);
        e.schedule_fault(Time(500), FaultOp::Restart(NodeId(1).into()), None);
        e.run_until(Time::from_millis(10), &mut |_| {});
        assert!(!seen(&e, 1).iter().any(|s| s.contains("ping")), "{:?}", seen(&e, 1));
        assert!(
            seen(&e, 0).iter().any(|s| s.contains("peer-down 1")),
            "{:?}",
            seen(&e, 0)
        );
    }

    #[test]
    fn a_fault_with_for_heals_itself_and_only_itself() {
        let mut e = engine(3);
        // A crash for 5ms restarts the node; an isolation for 5ms ends while a partition
        // that cut the same links stays.
        e.schedule_fault(
            Time::from_millis(1),
            FaultOp::Crash(NodeId(0).into()),
            Some(Duration::from_millis(5)),
        );
        e.schedule_fault(
            Time::from_millis(1),
            FaultOp::Isolate(NodeId(2).into()),
            Some(Duration::from_millis(5)),
        );
        e.schedule_fault(
            Time::from_millis(2),
            FaultOp::Partition(vec![vec![NodeId(1).into()], vec![NodeId(2).into()]]),
            Some(Duration::from_millis(10)),
        );
        e.run_until(Time::from_millis(7), &mut |_| {});
        assert!(seen(&e, 0).contains(&"6ms start".to_string()), "{:?}", seen(&e, 0));
        assert!(e.network.can_send(NodeId(0), NodeId(2)));
        assert!(!e.network.can_send(NodeId(1), NodeId(2)));
        e.run_until(Time::from_millis(13), &mut |_| {});
        assert!(e.network.is_whole());
        let heals: Vec<(u64, Option<usize>)> = e
            .fault_records
            .iter()
            .filter(|r| r.heal_of.is_some())
            .map(|r| (r.at.as_millis(), r.heal_of))
            .collect();
        assert_eq!(heals, [(6, Some(0)), (6, Some(1)), (12, Some(2))]);
    }

    #[test]
    fn roles_resolve_when_the_fault_fires() {
        let mut e = engine(3);
        e.schedule_fault(Time::from_millis(1), FaultOp::Crash(Target::Role(2)), None);
        e.schedule_fault(Time::from_millis(2), FaultOp::Crash(Target::Role(9)), None);
        // The role's node leaves the other side of a partition.
        e.schedule_fault(
            Time::from_millis(3),
            FaultOp::Partition(vec![vec![Target::Role(1)], vec![NodeId(1).into(), NodeId(0).into()]]),
            None,
        );
        e.run_until(Time::from_millis(5), &mut |_| {});
        let r = &e.fault_records;
        assert!(matches!(r[0].op, Some(FaultOp::Crash(NodeId(2)))) && r[0].fired);
        assert_eq!(
            (r[1].fired, r[1].unresolved.as_deref()),
            (false, Some("nobody plays 9"))
        );
        assert!(
            matches!(&r[2].op, Some(FaultOp::Partition(g)) if *g == vec![vec![NodeId(1)], vec![NodeId(0)]]),
            "{:?}",
            r[2].op
        );
        assert!(!e.network.can_send(NodeId(0), NodeId(1)));
    }

    #[test]
    fn a_heal_comes_before_a_new_fault_at_its_instant() {
        let mut e = engine(3);
        e.schedule_fault(
            Time::from_millis(1),
            FaultOp::Crash(NodeId(0).into()),
            Some(Duration::from_millis(1)),
        );
        e.schedule_fault(Time::from_millis(2), FaultOp::Crash(NodeId(0).into()), None);
        // A partition naming a role and the node it resolves to on one side fires.
        e.schedule_fault(
            Time::from_millis(3),
            FaultOp::Partition(vec![vec![Target::Role(1), NodeId(1).into()], vec![NodeId(2).into()]]),
            None,
        );
        // A cut that another fault already holds still takes hold of the link.
        e.schedule_fault(
            Time::from_millis(4),
            FaultOp::Cut(NodeId(1).into(), NodeId(2).into()),
            None,
        );
        e.run_until(Time::from_millis(5), &mut |_| {});
        let fired: Vec<(u64, bool)> = e.fault_records.iter().map(|r| (r.at.as_millis(), r.fired)).collect();
        assert_eq!(fired, [(1, true), (2, true), (2, true), (3, true), (4, true)]);
        assert_eq!(e.fault_records[1].heal_of, Some(0), "the restart comes first");
        assert!(!e.is_up(NodeId(0)));
    }

    #[test]
    fn a_run_stops_at_its_event_budget() {
        let mut e = engine(2);
        e.set_max_events(5);
        e.run_until(Time::from_millis(100), &mut |_| {});
        assert!(e.over_budget());
        assert_eq!(e.events(), 5);
    }

    #[test]
    fn faults_are_reported_with_whether_they_fired() {
        let mut e = engine(2);
        e.schedule_fault(Time::from_millis(1), FaultOp::Crash(NodeId(1).into()), None);
        e.schedule_fault(Time::from_millis(2), FaultOp::Crash(NodeId(1).into()), None);
        e.schedule_fault(Time::from_millis(3), FaultOp::Isolate(NodeId(0).into()), None);
        let mut faults = Vec::new();
        e.run_until(Time::from_millis(5), &mut |h| {
            if let Happening::Fault(r) = h {
                faults.push((r.at.as_millis(), r.fired));
            }
        });
        assert_eq!(faults, [(1, true), (2, false), (3, true)]);
        assert!(!e.network.can_send(NodeId(0), NodeId(1)));
    }
}
