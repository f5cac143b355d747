//! The Kafka-agnostic discrete-event engine: virtual time, the event queue, seeded random
//! streams, the network, and the lifecycle of nodes (crash, power loss, restart, pause).
//!
//! Architecture invariant: nothing in `sim/` knows about Kafka. It moves opaque messages
//! between node ids and hands each actor its inputs through [`Actor::handle`].

pub mod engine;
pub mod network;
pub mod rng;
pub mod time;
pub mod timers;

pub use engine::{Actor, CrashKind, Engine, FaultOp, FaultRecord, Input, Outbox, Target};
pub use time::{Duration, Time};
pub use timers::TimerId;

use serde::Serialize;

/// A node's index in the engine: dense, from 0, in the order nodes were added.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
