//! Kafka's consumer-group assignors for the classic protocol, bit-exact with the Java client:
//! `RangeAssignor`, `RoundRobinAssignor`, `StickyAssignor` and `CooperativeStickyAssignor`
//! (a port of `AbstractStickyAssignor`), and the coordinator's protocol vote
//! (`ClassicGroup.selectProtocol`). KAFKA.md §4.4.
//!
//! Several of Kafka's results depend on the iteration order of a `java.util.HashMap`: which
//! member keeps the larger share of its old partitions, the order of partitions in a member's
//! list, the tie-break of the protocol vote. [`JavaHashTable`] reproduces that order (see its
//! documentation for exactly what is emulated); nothing here iterates a hashed collection of
//! Rust's own. Rack-aware assignment is not modelled: members carry no rack.

use crate::kafka::partitioner::java_string_hash;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Java emulation: String order, hash codes, HashMap iteration order.

/// Java's `String.compareTo`: lexicographic over UTF-16 code units (which differs from Rust's
/// `str` order only for characters above U+FFFF against U+E000..=U+FFFF).
pub fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `TopicPartition.hashCode`: `31 * (31 + partition) + topic.hashCode()`, in Java `int` arithmetic.
pub fn topic_partition_hash(topic_hash: i32, partition: i32) -> i32 {
    31i32
        .wrapping_mul(31i32.wrapping_add(partition))
        .wrapping_add(topic_hash)
}

/// `HashMap.hash`: the key's hash code with its high half folded into the low half.
pub fn spread(hash: i32) -> u32 {
    let h = hash as u32;
    h ^ (h >> 16)
}

/// The bucket table of a `java.util.HashMap` (or `HashSet`, which is one) created with the
/// default capacity and load factor, kept only as far as iteration order needs: keys, their
/// spread hashes, and which bucket holds them in which order.
///
/// What is emulated (OpenJDK 8 to 25 `HashMap.putVal`, `resize`, `treeifyBin`, `removeNode`):
/// capacity 16; a put that takes the size past 0.75 of the capacity doubles it; iteration
/// walks the buckets by index (`spread(hash) & (capacity - 1)`) and each bucket in insertion
/// order; a resize splits every bucket in two keeping that relative order; a removal unlinks
/// without reordering. A bucket that reaches 9 entries makes `treeifyBin` double the capacity
/// instead while the capacity is below 64. At 64 and above Java turns such a bucket into a
/// red-black tree whose iteration order is no longer insertion order (the root moves to the
/// front, new nodes go after their tree parent); that is not emulated: the insertion
/// reports [`TreeBin`] so callers can refuse the input rather than guess.
#[derive(Clone, Debug)]
pub struct JavaHashTable<K> {
    buckets: Vec<Vec<(u32, K)>>,
    len: usize,
}

/// A bucket would become a red-black tree in Java (9 entries, capacity 64 or more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeBin;

impl<K: PartialEq> Default for JavaHashTable<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: PartialEq> JavaHashTable<K> {
    /// An empty table of the default capacity (16).
    pub fn new() -> Self {
        JavaHashTable {
            buckets: (0..16).map(|_| Vec::new()).collect(),
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buckets.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn index(&self, spread: u32) -> usize {
        spread as usize & (self.buckets.len() - 1)
    }

    /// Adds `key` (whose Java `hashCode` is `hash`) unless an equal key is present; says
    /// whether it was added.
    pub fn insert(&mut self, hash: i32, key: K) -> Result<bool, TreeBin> {
        let h = spread(hash);
        let i = self.index(h);
        if self.buckets[i].iter().any(|(eh, ek)| *eh == h && *ek == key) {
            return Ok(false);
        }
        let before = self.buckets[i].len();
        self.buckets[i].push((h, key));
        // `putVal` calls `treeifyBin` once the bucket held 8 entries before this one.
        if before >= 8 {
            if self.buckets.len() < 64 {
                self.resize();
            } else {
                return Err(TreeBin);
            }
        }
        self.len += 1;
        if self.len > self.buckets.len() * 3 / 4 {
            self.resize();
        }
        Ok(true)
    }

    /// Removes `key`; says whether it was present.
    pub fn remove(&mut self, hash: i32, key: &K) -> bool {
        let h = spread(hash);
        let i = self.index(h);
        match self.buckets[i].iter().position(|(eh, ek)| *eh == h && ek == key) {
            Some(at) => {
                self.buckets[i].remove(at);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Doubles the capacity. Every entry of bucket `j` goes to `j` or `j + old capacity`;
    /// walking the old buckets in order keeps each new bucket's relative order, as Java's
    /// lo/hi split does.
    fn resize(&mut self) {
        let capacity = self.buckets.len() * 2;
        let old = std::mem::replace(&mut self.buckets, (0..capacity).map(|_| Vec::new()).collect());
        for (h, k) in old.into_iter().flatten() {
            let i = h as usize & (capacity - 1);
            self.buckets[i].push((h, k));
        }
    }

    /// The keys in Java's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.buckets.iter().flatten().map(|(_, k)| k)
    }

    /// The first key Java's iterator would return.
    pub fn first(&self) -> Option<&K> {
        self.iter().next()
    }
}

/// The order in which Java iterates a `HashMap<String, _>` (default capacity) whose keys were
/// put in the order given: indices into `keys`. Repeated keys keep their first place.
pub fn java_hashmap_order<S: AsRef<str>>(keys: &[S]) -> Result<Vec<usize>, TreeBin> {
    let mut table = JavaHashTable::new();
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_ref();
        // Equal strings are equal keys: compare by text, remember the first index.
        if !keys[..i].iter().any(|e| e.as_ref() == k) {
            table.insert(java_string_hash(k), i)?;
        }
    }
    Ok(table.iter().copied().collect())
}

fn tree_bin_error(what: &str) -> String {
    format!(
        "{what} would put 9 or more keys in one bucket of a large Java hash map, which Java \
         turns into a tree; kafkasim does not reproduce that iteration order"
    )
}

// ---------------------------------------------------------------------------------------------
// Public types.

/// A partition assignment strategy (`partition.assignment.strategy`), by its protocol name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Strategy {
    /// `RangeAssignor`, eager.
    Range,
    /// `RoundRobinAssignor`, eager.
    RoundRobin,
    /// `StickyAssignor`, eager (since 0.11, KIP-54).
    Sticky,
    /// `CooperativeStickyAssignor`, cooperative (since 2.4, KIP-429).
    CooperativeSticky,
}

/// The Java consumer's default `partition.assignment.strategy` since 3.0.
pub const DEFAULT_STRATEGIES: [Strategy; 2] = [Strategy::Range, Strategy::CooperativeSticky];

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Range,
        Strategy::RoundRobin,
        Strategy::Sticky,
        Strategy::CooperativeSticky,
    ];

    /// The protocol name the assignor registers (`ConsumerPartitionAssignor.name()`).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "roundrobin",
            Strategy::Sticky => "sticky",
            Strategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The class name that `partition.assignment.strategy` accepts.
    pub fn class_name(self) -> &'static str {
        match self {
            Strategy::Range => "org.apache.kafka.clients.consumer.RangeAssignor",
            Strategy::RoundRobin => "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            Strategy::Sticky => "org.apache.kafka.clients.consumer.StickyAssignor",
            Strategy::CooperativeSticky => "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        }
    }

    /// A strategy from its protocol name or its class name.
    pub fn parse(text: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .find(|s| s.name() == text || s.class_name() == text)
    }

    /// Every spelling [`Strategy::parse`] accepts.
    pub fn spellings() -> impl Iterator<Item = &'static str> {
        Strategy::ALL.into_iter().flat_map(|s| [s.name(), s.class_name()])
    }

    fn is_sticky(self) -> bool {
        matches!(self, Strategy::Sticky | Strategy::CooperativeSticky)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A topic partition, written `topic-partition` as Kafka's `TopicPartition.toString` does.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }

    /// Parses `topic-partition`, splitting at the last `-` (topic names may contain `-`).
    pub fn parse(text: &str) -> Option<TopicPartition> {
        let (topic, partition) = text.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let partition: u32 = partition.parse().ok()?;
        (partition <= i32::MAX as u32).then(|| TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One member of the group as the leader sees it in the JoinGroup response.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Member {
    /// `member.id`.
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance: Option<String>,
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// The partitions the member owned before this rebalance: `ownedPartitions` in the
    /// subscription for `cooperative-sticky`, the previous assignment in the `StickyAssignor`
    /// user data for `sticky`; ignored by `range` and `roundrobin`.
    pub owned: Vec<TopicPartition>,
    /// The generation the member last joined (-1: none), sent with the subscription.
    pub generation: i32,
}

impl Member {
    /// A member with no instance id, no owned partitions and no generation.
    pub fn new(id: &str, topics: &[&str]) -> Self {
        Member {
            id: id.to_string(),
            instance: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: Vec::new(),
            generation: -1,
        }
    }
}

/// What an assignor decided.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Outcome {
    /// Every member's partitions, in the order Kafka's assignor lists them.
    pub assignment: BTreeMap<String, Vec<TopicPartition>>,
    /// `cooperative-sticky` only: partitions withheld this round because another member
    /// still owns them, with the member that gets them after the follow-up rebalance.
    pub transferring: BTreeMap<TopicPartition, String>,
    /// Sticky assignors only: each member's previously owned partitions that it does not
    /// keep (members that keep everything are left out).
    pub revoked: BTreeMap<String, Vec<TopicPartition>>,
}

// ---------------------------------------------------------------------------------------------
// Entry points.

/// Runs `strategy` on a group as a newly elected leader's Java client would
/// ([`Assignor::assign`] on a fresh assignor).
pub fn assign(strategy: Strategy, topics: &BTreeMap<String, u32>, members: &[Member]) -> Result<Outcome, String> {
    Assignor::new(strategy).assign(topics, members)
}

/// One assignor instance, as a leader's consumer holds it across rebalances.
#[derive(Clone, Debug)]
pub struct Assignor {
    pub strategy: Strategy,
    /// `AbstractStickyAssignor.maxGeneration`: the largest generation any subscription has
    /// carried into this instance. Kafka never resets it, so it outlives the rebalance that
    /// raised it; it decides which claims count as older in the general path.
    pub max_generation: i32,
}

impl Assignor {
    pub fn new(strategy: Strategy) -> Self {
        Assignor {
            strategy,
            max_generation: -1,
        }
    }

    /// Runs the assignor on a group as the leader's Java client would, modelling the wire:
    /// the consumer sends its subscribed topics and (for `cooperative-sticky`) its owned
    /// partitions sorted (`ConsumerProtocol.serializeSubscription`), and the members arrive
    /// in the given order (the JoinGroup response's). `topics` is the cluster metadata:
    /// partition counts.
    pub fn assign(&mut self, topics: &BTreeMap<String, u32>, members: &[Member]) -> Result<Outcome, String> {
        let on_the_wire: Vec<Member> = members
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.topics.sort_by(|a, b| java_cmp(a, b));
                if self.strategy == Strategy::CooperativeSticky {
                    m.owned
                        .sort_by(|a, b| java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
                }
                m
            })
            .collect();
        self.assign_subscriptions(topics, &on_the_wire)
    }

    /// Runs the assignor on subscriptions exactly as given, the way Kafka's own tests call
    /// `assignPartitions`: topic and owned lists are used in their order.
    pub fn assign_subscriptions(
        &mut self,
        topics: &BTreeMap<String, u32>,
        members: &[Member],
    ) -> Result<Outcome, String> {
        let ctx = Ctx::new(self.strategy, topics, members)?;
        let lists = match self.strategy {
            Strategy::Range => range(&ctx)?,
            Strategy::RoundRobin => round_robin(&ctx)?,
            Strategy::Sticky | Strategy::CooperativeSticky => return sticky(&ctx, &mut self.max_generation),
        };
        Ok(ctx.outcome(lists, BTreeMap::new(), false))
    }
}

/// The coordinator's choice among the members' strategy lists (`ClassicGroup.selectProtocol`):
/// the candidates are the strategies every member supports; each member votes for the first
/// of its own list that is a candidate; the most votes win, and a tie goes to the strategy
/// that comes first in the iteration order of the `HashMap` of votes. Members are given in
/// the order they joined (the insertion order of the coordinator's `HashMap` of members).
pub fn select_protocol(members: &[(&str, &[Strategy])]) -> Result<Strategy, String> {
    if members.is_empty() {
        return Err("a group needs at least one member".to_string());
    }
    let candidates: Vec<Strategy> = Strategy::ALL
        .into_iter()
        .filter(|s| members.iter().all(|(_, list)| list.contains(s)))
        .collect();
    if candidates.is_empty() {
        let lists: Vec<String> = members
            .iter()
            .map(|(id, list)| {
                let names: Vec<&str> = list.iter().map(|s| s.name()).collect();
                format!("{id}: {}", names.join(", "))
            })
            .collect();
        return Err(format!(
            "no strategy is supported by every member ({}); Kafka refuses such a member with \
             INCONSISTENT_GROUP_PROTOCOL",
            lists.join("; ")
        ));
    }
    let ids: Vec<&str> = members.iter().map(|(id, _)| *id).collect();
    let member_order = java_hashmap_order(&ids).map_err(|_| tree_bin_error("the member ids"))?;
    let mut votes: JavaHashTable<Strategy> = JavaHashTable::new();
    let mut counts: BTreeMap<Strategy, usize> = BTreeMap::new();
    for &m in &member_order {
        let vote = members[m]
            .1
            .iter()
            .copied()
            .find(|s| candidates.contains(s))
            .ok_or_else(|| "a member votes for no candidate".to_string())?;
        votes
            .insert(java_string_hash(vote.name()), vote)
            .map_err(|_| tree_bin_error("the strategy names"))?;
        *counts.entry(vote).or_insert(0) += 1;
    }
    // `Stream.max` keeps the first of equal elements.
    let mut best: Option<(Strategy, usize)> = None;
    for &s in votes.iter() {
        let n = counts.get(&s).copied().unwrap_or(0);
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((s, n));
        }
    }
    best.map(|(s, _)| s).ok_or_else(|| "no votes".to_string())
}

// ---------------------------------------------------------------------------------------------
// The group, interned: topics and members by index.

/// A partition: (topic index, partition). Topic indices follow Java's String order, so the
/// tuple order is Kafka's (topic, partition) order.
type Tp = (usize, u32);

/// `partitionsTransferringOwnership`: partition → its new owner.
type Transfers = BTreeMap<Tp, usize>;

struct Ctx<'a> {
    strategy: Strategy,
    members: &'a [Member],
    /// Every topic named anywhere (metadata, subscriptions, owned lists), in Java order.
    names: Vec<String>,
    /// Partition count of the topics in `partitionsPerTopic`: subscribed by some member and
    /// present in the metadata. `None` for every other topic.
    counts: Vec<Option<u32>>,
    hashes: Vec<i32>,
    /// Each member's subscription (topic indices, in the subscription's order).
    subscriptions: Vec<Vec<usize>>,
    /// Each member's owned partitions as the assignor decodes them (`memberData`).
    owned: Vec<Vec<Tp>>,
    /// Each member's rank in Java's String order of member ids.
    rank: Vec<usize>,
    /// The iteration order of the `HashMap<String, Subscription>` of members.
    order: Vec<usize>,
}

impl<'a> Ctx<'a> {
    fn new(strategy: Strategy, metadata: &BTreeMap<String, u32>, members: &'a [Member]) -> Result<Self, String> {
        if members.is_empty() {
            return Err("a group needs at least one member".to_string());
        }
        let mut seen = BTreeSet::new();
        for m in members {
            if !seen.insert(m.id.as_str()) {
                return Err(format!("member id `{}` appears twice", m.id));
            }
        }
        let mut instances = BTreeSet::new();
        for m in members.iter().filter_map(|m| m.instance.as_deref()) {
            if !instances.insert(m) {
                return Err(format!("group.instance.id `{m}` appears twice"));
            }
        }
        let mut all: BTreeSet<&str> = metadata.keys().map(String::as_str).collect();
        for m in members {
            all.extend(m.topics.iter().map(String::as_str));
            all.extend(m.owned.iter().map(|tp| tp.topic.as_str()));
        }
        let mut names: Vec<String> = all.into_iter().map(str::to_string).collect();
        names.sort_by(|a, b| java_cmp(a, b));
        let index = |name: &str| names.iter().position(|n| n == name);
        let subscriptions: Vec<Vec<usize>> = members
            .iter()
            .map(|m| m.topics.iter().filter_map(|t| index(t)).collect())
            .collect();
        for (m, subscription) in members.iter().zip(&subscriptions) {
            let distinct: BTreeSet<usize> = subscription.iter().copied().collect();
            if distinct.len() != subscription.len() {
                return Err(format!("member `{}` subscribes to a topic twice", m.id));
            }
        }
        let subscribed: BTreeSet<usize> = subscriptions.iter().flatten().copied().collect();
        let counts: Vec<Option<u32>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| metadata.get(n).copied().filter(|&c| c > 0 && subscribed.contains(&i)))
            .collect();
        let hashes = names.iter().map(|n| java_string_hash(n)).collect();
        let mut owned = Vec::with_capacity(members.len());
        for m in members {
            let mut list = Vec::with_capacity(m.owned.len());
            for tp in &m.owned {
                let t = index(&tp.topic).ok_or("topic index")?;
                if let Some(&count) = metadata.get(&tp.topic)
                    && tp.partition >= count
                {
                    return Err(format!(
                        "member `{}` owns `{tp}`, which does not exist: `{}` has {count} partitions",
                        m.id, tp.topic
                    ));
                }
                if list.contains(&(t, tp.partition)) {
                    return Err(format!("member `{}` owns `{tp}` twice", m.id));
                }
                list.push((t, tp.partition));
            }
            owned.push(list);
        }
        let mut by_id: Vec<usize> = (0..members.len()).collect();
        by_id.sort_by(|&a, &b| java_cmp(&members[a].id, &members[b].id));
        let mut rank = vec![0; members.len()];
        for (r, &m) in by_id.iter().enumerate() {
            rank[m] = r;
        }
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let order = java_hashmap_order(&ids).map_err(|_| tree_bin_error("the member ids"))?;
        let mut ctx = Ctx {
            strategy,
            members,
            names,
            counts,
            hashes,
            subscriptions,
            owned,
            rank,
            order,
        };
        if strategy == Strategy::Sticky {
            // The StickyAssignor sends its previous assignment in its user data, grouped by
            // topic through a HashMap (`CollectionUtils.groupPartitionsByTopic`).
            for m in 0..members.len() {
                ctx.owned[m] = ctx.grouped_by_topic(&ctx.owned[m])?;
            }
        }
        Ok(ctx)
    }

    fn in_scope(&self, t: usize) -> bool {
        self.counts[t].is_some()
    }

    fn count(&self, t: usize) -> u32 {
        self.counts[t].unwrap_or(0)
    }

    fn tp_hash(&self, tp: Tp) -> i32 {
        topic_partition_hash(self.hashes[tp.0], tp.1 as i32)
    }

    fn to_partition(&self, tp: Tp) -> TopicPartition {
        TopicPartition::new(&self.names[tp.0], tp.1)
    }

    /// `CollectionUtils.groupPartitionsByTopic` then flattened: topics in HashMap order,
    /// partitions of a topic in their original order.
    fn grouped_by_topic(&self, partitions: &[Tp]) -> Result<Vec<Tp>, String> {
        let topics: Vec<&str> = partitions.iter().map(|tp| self.names[tp.0].as_str()).collect();
        let order = java_hashmap_order(&topics).map_err(|_| tree_bin_error("the owned topics"))?;
        Ok(order
            .into_iter()
            .flat_map(|first| {
                let t = partitions[first].0;
                partitions.iter().copied().filter(move |tp| tp.0 == t)
            })
            .collect())
    }

    /// `AbstractPartitionAssignor.MemberInfo` order: static members by instance id, then
    /// dynamic members by member id.
    fn member_info_cmp(&self, a: usize, b: usize) -> Ordering {
        match (&self.members[a].instance, &self.members[b].instance) {
            (Some(x), Some(y)) => java_cmp(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => java_cmp(&self.members[a].id, &self.members[b].id),
        }
    }

    fn subscribes(&self, m: usize, t: usize) -> bool {
        self.subscriptions[m].contains(&t)
    }

    /// The iteration order of `partitionsPerTopic`, a HashMap filled from a HashSet of the
    /// subscribed topics (`AbstractPartitionAssignor.assign`).
    fn partitions_per_topic_order(&self) -> Result<Vec<usize>, String> {
        let mut subscribed: JavaHashTable<usize> = JavaHashTable::new();
        for &m in &self.order {
            for &t in &self.subscriptions[m] {
                subscribed
                    .insert(self.hashes[t], t)
                    .map_err(|_| tree_bin_error("the topic names"))?;
            }
        }
        let mut per_topic: JavaHashTable<usize> = JavaHashTable::new();
        for &t in subscribed.iter() {
            if self.in_scope(t) {
                per_topic
                    .insert(self.hashes[t], t)
                    .map_err(|_| tree_bin_error("the topic names"))?;
            }
        }
        Ok(per_topic.iter().copied().collect())
    }

    fn outcome(&self, lists: Vec<Vec<Tp>>, transferring: BTreeMap<Tp, usize>, sticky: bool) -> Outcome {
        let mut outcome = Outcome::default();
        for (m, list) in lists.iter().enumerate() {
            let id = self.members[m].id.clone();
            if sticky {
                let kept: BTreeSet<Tp> = list.iter().copied().collect();
                let lost: Vec<TopicPartition> = self.owned[m]
                    .iter()
                    .filter(|tp| !kept.contains(tp))
                    .map(|&tp| self.to_partition(tp))
                    .collect();
                if !lost.is_empty() {
                    outcome.revoked.insert(id.clone(), lost);
                }
            }
            outcome
                .assignment
                .insert(id, list.iter().map(|&tp| self.to_partition(tp)).collect());
        }
        outcome.transferring = transferring
            .into_iter()
            .map(|(tp, m)| (self.to_partition(tp), self.members[m].id.clone()))
            .collect();
        outcome
    }
}

// ---------------------------------------------------------------------------------------------
// RangeAssignor and RoundRobinAssignor.

/// `RangeAssignor.assignPartitions` without racks: per topic, in `partitionsPerTopic` order,
/// the subscribed members in MemberInfo order take consecutive ranges; the first
/// `partitions % members` take one more.
fn range(ctx: &Ctx) -> Result<Vec<Vec<Tp>>, String> {
    let mut lists = vec![Vec::new(); ctx.members.len()];
    for t in ctx.partitions_per_topic_order()? {
        let mut consumers: Vec<usize> = ctx.order.iter().copied().filter(|&m| ctx.subscribes(m, t)).collect();
        if consumers.is_empty() {
            continue;
        }
        consumers.sort_by(|&a, &b| ctx.member_info_cmp(a, b));
        let partitions = ctx.count(t);
        let n = consumers.len() as u32;
        let (quota, extra) = (partitions / n, partitions % n);
        let mut next = 0;
        for (i, &m) in consumers.iter().enumerate() {
            let length = quota + u32::from((i as u32) < extra);
            lists[m].extend((next..next + length).map(|p| (t, p)));
            next += length;
        }
    }
    Ok(lists)
}

/// `RoundRobinAssignor.assign`: members in MemberInfo order on a circle; every partition of
/// every subscribed topic (topics in String order) goes to the next member subscribed to it.
fn round_robin(ctx: &Ctx) -> Result<Vec<Vec<Tp>>, String> {
    let n = ctx.members.len();
    let mut circle: Vec<usize> = (0..n).collect();
    circle.sort_by(|&a, &b| ctx.member_info_cmp(a, b));
    let topics: BTreeSet<usize> = ctx.subscriptions.iter().flatten().copied().collect();
    let mut lists = vec![Vec::new(); n];
    let mut at = 0;
    for t in topics.into_iter().filter(|&t| ctx.in_scope(t)) {
        for p in 0..ctx.count(t) {
            let mut skipped = 0;
            while !ctx.subscribes(circle[at], t) {
                at = (at + 1) % n;
                skipped += 1;
                if skipped > n {
                    return Err(format!("no member subscribes to `{}`", ctx.names[t]));
                }
            }
            lists[circle[at]].push((t, p));
            at = (at + 1) % n;
        }
    }
    Ok(lists)
}

// ---------------------------------------------------------------------------------------------
// AbstractStickyAssignor.

/// A Java `List.remove(Object)`: removes the first equal element.
fn remove_first(list: &mut Vec<Tp>, tp: Tp) -> bool {
    match list.iter().position(|&x| x == tp) {
        Some(at) => {
            list.remove(at);
            true
        }
        None => false,
    }
}

/// What `allSubscriptionsEqual` finds out.
struct Validated {
    all_equal: bool,
    /// `consumerToOwnedPartitions`: owned partitions of topics in scope, with conflicts
    /// between members resolved by generation.
    owned: Vec<Vec<Tp>>,
    /// Partitions claimed by two members of the same generation.
    multiply_owned: BTreeSet<Tp>,
    max_generation: i32,
}

/// `AbstractStickyAssignor.allSubscriptionsEqual`, members in `subscriptions` order.
fn validate_owned(ctx: &Ctx, max_generation: i32) -> Validated {
    let mut all_equal = true;
    let mut subscribed: BTreeSet<usize> = BTreeSet::new();
    let mut owned: Vec<Vec<Tp>> = vec![Vec::new(); ctx.members.len()];
    let mut multiply_owned = BTreeSet::new();
    let mut previous_owner: BTreeMap<Tp, usize> = BTreeMap::new();
    let mut max_generation = max_generation;
    for &m in &ctx.order {
        let topics: BTreeSet<usize> = ctx.subscriptions[m].iter().copied().collect();
        // Kafka starts over whenever the set so far is empty, so a member subscribed to
        // nothing does not make the subscriptions unequal when it comes first.
        if subscribed.is_empty() {
            subscribed = topics;
        } else if all_equal && topics != subscribed {
            all_equal = false;
        }
        let generation = ctx.members[m].generation;
        max_generation = max_generation.max(generation);
        for &tp in &ctx.owned[m] {
            if !ctx.in_scope(tp.0) {
                continue;
            }
            match previous_owner.get(&tp).copied() {
                None => {
                    owned[m].push(tp);
                    previous_owner.insert(tp, m);
                }
                Some(other) => {
                    let other_generation = ctx.members[other].generation;
                    if generation == other_generation {
                        multiply_owned.insert(tp);
                        remove_first(&mut owned[other], tp);
                        previous_owner.insert(tp, m);
                    } else if generation > other_generation {
                        owned[m].push(tp);
                        remove_first(&mut owned[other], tp);
                        previous_owner.insert(tp, m);
                    }
                }
            }
        }
    }
    Validated {
        all_equal,
        owned,
        multiply_owned,
        max_generation,
    }
}

fn sticky(ctx: &Ctx, max_generation: &mut i32) -> Result<Outcome, String> {
    let validated = validate_owned(ctx, *max_generation);
    *max_generation = validated.max_generation;
    let (mut lists, transferring) = if validated.all_equal {
        let (lists, transferring) = constrained(ctx, &validated)?;
        (lists, Some(transferring))
    } else {
        (General::new(ctx, validated)?.build()?, None)
    };
    let mut withheld = BTreeMap::new();
    if ctx.strategy == Strategy::CooperativeSticky {
        // CooperativeStickyAssignor.assignPartitions: the general path computes the
        // partitions changing owner afresh; then each leaves its new owner's list.
        let transferring = match transferring {
            Some(t) => t,
            None => transferring_ownership(ctx, &lists),
        };
        for (&tp, &m) in &transferring {
            remove_first(&mut lists[m], tp);
        }
        withheld = transferring;
    }
    Ok(ctx.outcome(lists, withheld, ctx.strategy.is_sticky()))
}

/// `CooperativeStickyAssignor.computePartitionsTransferringOwnership`: partitions assigned
/// to a member that did not own them and that some member owned but does not keep.
fn transferring_ownership(ctx: &Ctx, lists: &[Vec<Tp>]) -> BTreeMap<Tp, usize> {
    let mut added = BTreeMap::new();
    let mut revoked = BTreeSet::new();
    for (m, list) in lists.iter().enumerate() {
        let owned: BTreeSet<Tp> = ctx.owned[m].iter().copied().collect();
        let assigned: BTreeSet<Tp> = list.iter().copied().collect();
        for &tp in list {
            if !owned.contains(&tp) {
                added.insert(tp, m);
            }
        }
        revoked.extend(owned.difference(&assigned).copied());
    }
    added.retain(|tp, _| revoked.contains(tp));
    added
}

/// Every partition in scope in (topic, partition) order.
fn all_partitions(ctx: &Ctx, topics: impl IntoIterator<Item = usize>) -> Vec<Tp> {
    topics
        .into_iter()
        .flat_map(|t| (0..ctx.count(t)).map(move |p| (t, p)))
        .collect()
}

/// `ConstrainedAssignmentBuilder` (identical subscriptions) without racks. Returns the lists
/// and `partitionsTransferringOwnership`.
fn constrained(ctx: &Ctx, v: &Validated) -> Result<(Vec<Vec<Tp>>, Transfers), String> {
    let n = ctx.members.len();
    let topics: Vec<usize> = (0..ctx.names.len()).filter(|&t| ctx.in_scope(t)).collect();
    let total: usize = topics.iter().map(|&t| ctx.count(t) as usize).sum();
    let min_quota = total / n;
    let max_quota = total.div_ceil(n);
    let expected_over_min = total % n;
    let mut over_min = 0;
    let mut assignment: Vec<Vec<Tp>> = vec![Vec::new(); n];
    let mut assigned: BTreeSet<Tp> = BTreeSet::new();
    let mut revoked: BTreeSet<Tp> = BTreeSet::new();
    let mut under_min: Vec<usize> = Vec::new();
    let mut exactly_min: Vec<usize> = Vec::new();
    let mut transferring: BTreeMap<Tp, usize> = BTreeMap::new();

    // consumerToOwnedPartitions is a HashMap filled in `subscriptions` order.
    let ids: Vec<&str> = ctx.order.iter().map(|&m| ctx.members[m].id.as_str()).collect();
    let owned_order = java_hashmap_order(&ids).map_err(|_| tree_bin_error("the member ids"))?;
    for m in owned_order.into_iter().map(|i| ctx.order[i]) {
        let mut owned = v.owned[m].clone();
        owned.sort_by_key(|&(t, p)| (p, t));
        owned.retain(|tp| !v.multiply_owned.contains(tp));
        if owned.len() < min_quota {
            assignment[m].extend(&owned);
            assigned.extend(&owned);
            under_min.push(m);
        } else if owned.len() >= max_quota && over_min < expected_over_min {
            over_min += 1;
            if over_min == expected_over_min {
                exactly_min.clear();
            }
            assignment[m].extend(&owned[..max_quota]);
            assigned.extend(&owned[..max_quota]);
            revoked.extend(&owned[max_quota..]);
        } else {
            assignment[m].extend(&owned[..min_quota]);
            assigned.extend(&owned[..min_quota]);
            revoked.extend(&owned[min_quota..]);
            if over_min < expected_over_min {
                exactly_min.push(m);
            }
        }
    }

    let unassigned: Vec<Tp> = all_partitions(ctx, topics)
        .into_iter()
        .filter(|tp| !assigned.contains(tp))
        .collect();
    let by_id = |&a: &usize, &b: &usize| java_cmp(&ctx.members[a].id, &ctx.members[b].id);
    under_min.sort_by(by_id);
    exactly_min.sort_by(by_id);

    // assignRoundRobin: `cursor` is the position of a Java ListIterator over `under_min`.
    let mut cursor = 0;
    let mut exactly_min_head = 0;
    for &tp in &unassigned {
        let m = if cursor < under_min.len() {
            cursor += 1;
            under_min[cursor - 1]
        } else if under_min.is_empty() && exactly_min_head >= exactly_min.len() {
            return Err(internal("No more unfilled consumers to be assigned."));
        } else if under_min.is_empty() {
            exactly_min_head += 1;
            exactly_min[exactly_min_head - 1]
        } else {
            cursor = 1;
            under_min[0]
        };
        assignment[m].push(tp);
        if revoked.contains(&tp) || v.multiply_owned.contains(&tp) {
            transferring.insert(tp, m);
        }
        let count = assignment[m].len();
        if count == min_quota {
            // `unfilledConsumerIter.remove()`: the element last returned by the iterator.
            if cursor == 0 || under_min.get(cursor - 1) != Some(&m) {
                return Err(internal("IllegalStateException in the unfilled-member iterator"));
            }
            under_min.remove(cursor - 1);
            cursor -= 1;
            exactly_min.push(m);
        } else if count == max_quota {
            // Kafka logs an error if this completes the expected count before the last
            // partition, and goes on.
            over_min += 1;
        }
    }

    // verifyUnfilledMembers.
    if !under_min.is_empty() {
        if over_min != expected_over_min {
            return Err(internal(
                "We haven't reached the expected number of members with more than the minQuota partitions, \
                 but no more partitions to be assigned",
            ));
        }
        if let Some(&m) = under_min.iter().find(|&&m| assignment[m].len() != min_quota) {
            return Err(internal(&format!(
                "Consumer: [{}] doesn't reach minQuota partitions, and no more partitions to be assigned",
                ctx.members[m].id
            )));
        }
    }
    Ok((assignment, transferring))
}

fn internal(java_message: &str) -> String {
    format!("Kafka's assignor would throw IllegalStateException here: {java_message}")
}

/// `PartitionMovements`: which partitions moved between which members during the balance
/// loop, so a partition moving back prefers to undo an earlier move.
struct Movements {
    /// Per topic, per (source, destination): the moved partitions, a Java `HashSet`.
    by_topic: BTreeMap<usize, BTreeMap<(usize, usize), JavaHashTable<Tp>>>,
    /// Partition → (source, destination).
    moves: BTreeMap<Tp, (usize, usize)>,
}

impl Movements {
    fn remove_record(&mut self, ctx: &Ctx, tp: Tp) -> Result<(usize, usize), String> {
        let pair = self.moves.remove(&tp).ok_or("movement record")?;
        let topic = self.by_topic.get_mut(&tp.0).ok_or("movement topic")?;
        let set = topic.get_mut(&pair).ok_or("movement pair")?;
        set.remove(ctx.tp_hash(tp), &tp);
        if set.is_empty() {
            topic.remove(&pair);
        }
        if topic.is_empty() {
            self.by_topic.remove(&tp.0);
        }
        Ok(pair)
    }

    fn add_record(&mut self, ctx: &Ctx, tp: Tp, pair: (usize, usize)) -> Result<(), String> {
        self.moves.insert(tp, pair);
        self.by_topic
            .entry(tp.0)
            .or_default()
            .entry(pair)
            .or_default()
            .insert(ctx.tp_hash(tp), tp)
            .map_err(|_| tree_bin_error("the partitions moved between two members"))?;
        Ok(())
    }

    fn move_partition(&mut self, ctx: &Ctx, tp: Tp, old: usize, new: usize) -> Result<(), String> {
        if self.moves.contains_key(&tp) {
            let (source, _) = self.remove_record(ctx, tp)?;
            if source != new {
                self.add_record(ctx, tp, (source, new))?;
            }
            Ok(())
        } else {
            self.add_record(ctx, tp, (old, new))
        }
    }

    /// `getTheActualPartitionToBeMoved`: if partitions of the same topic moved from `new`
    /// to this partition's original owner, move the first of those back instead.
    fn actual_partition(&self, tp: Tp, old: usize, new: usize) -> Tp {
        let Some(topic) = self.by_topic.get(&tp.0) else {
            return tp;
        };
        let old = self.moves.get(&tp).map_or(old, |&(source, _)| source);
        topic
            .get(&(new, old))
            .and_then(|set| set.first().copied())
            .unwrap_or(tp)
    }
}

/// `GeneralAssignmentBuilder` (different subscriptions) without racks.
struct General<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// `currentAssignment`; `None` while a member sits out the balance loop (fixed).
    current: Vec<Option<Vec<Tp>>>,
    /// `currentPartitionConsumer`.
    owner: BTreeMap<Tp, usize>,
    /// `topic2AllPotentialConsumers`, in `subscriptions` order.
    topic_consumers: Vec<Vec<usize>>,
    /// `consumer2AllPotentialTopics`.
    consumer_topics: Vec<Vec<usize>>,
    sorted_all: Vec<Tp>,
    /// `sortedCurrentSubscriptions`: (assignment size, id rank).
    sorted: BTreeSet<(usize, usize)>,
    by_rank: Vec<usize>,
    movements: Movements,
    revocation_required: bool,
    max_generation: i32,
}

impl<'c, 'a> General<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, v: Validated) -> Result<Self, String> {
        let n = ctx.members.len();
        let mut topic_consumers = vec![Vec::new(); ctx.names.len()];
        let mut consumer_topics = vec![Vec::new(); n];
        for &m in &ctx.order {
            for &t in &ctx.subscriptions[m] {
                if ctx.in_scope(t) {
                    consumer_topics[m].push(t);
                    topic_consumers[t].push(m);
                }
            }
        }
        let mut owner = BTreeMap::new();
        for (m, list) in v.owned.iter().enumerate() {
            for &tp in list {
                owner.insert(tp, m);
            }
        }
        let mut topics: Vec<usize> = (0..ctx.names.len()).filter(|&t| ctx.in_scope(t)).collect();
        topics.sort_by_key(|&t| (topic_consumers[t].len(), t));
        let sorted_all = all_partitions(ctx, topics);
        let mut by_rank = vec![0; n];
        for m in 0..n {
            by_rank[ctx.rank[m]] = m;
        }
        Ok(General {
            ctx,
            current: v.owned.into_iter().map(Some).collect(),
            owner,
            topic_consumers,
            consumer_topics,
            sorted_all,
            sorted: BTreeSet::new(),
            by_rank,
            movements: Movements {
                by_topic: BTreeMap::new(),
                moves: BTreeMap::new(),
            },
            revocation_required: false,
            max_generation: v.max_generation,
        })
    }

    fn size(&self, m: usize) -> Result<usize, String> {
        self.current[m].as_ref().map(Vec::len).ok_or_else(|| {
            format!(
                "Kafka's StickyAssignor would fail here with a NullPointerException: member `{}` sits out \
                 the balance loop but holds an older claim on a partition being balanced",
                self.ctx.members[m].id
            )
        })
    }

    fn key(&self, m: usize) -> Result<(usize, usize), String> {
        Ok((self.size(m)?, self.ctx.rank[m]))
    }

    fn list(&mut self, m: usize) -> Result<&mut Vec<Tp>, String> {
        self.current[m]
            .as_mut()
            .ok_or_else(|| "a member sits out the balance".to_string())
    }

    fn build(mut self) -> Result<Vec<Vec<Tp>>, String> {
        let previous = self.previous_assignment();
        let assigned = self.assign_owned();
        let assigned: BTreeSet<Tp> = assigned.into_iter().collect();
        let unassigned: Vec<Tp> = self
            .sorted_all
            .iter()
            .copied()
            .filter(|tp| !assigned.contains(tp))
            .collect();
        for m in 0..self.ctx.members.len() {
            let key = self.key(m)?;
            self.sorted.insert(key);
        }
        self.balance(&previous, unassigned)?;
        Ok(self.current.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// `prepopulateCurrentAssignments`: for every partition claimed by a member of an older
    /// generation than the newest, the claimant of the highest such generation (first wins
    /// a tie). The claims are raw: any topic, subscribed or not.
    fn previous_assignment(&self) -> BTreeMap<Tp, (usize, i32)> {
        let mut previous: BTreeMap<Tp, (usize, i32)> = BTreeMap::new();
        for &m in &self.ctx.order {
            let generation = self.ctx.members[m].generation;
            if generation < self.max_generation {
                for &tp in &self.ctx.owned[m] {
                    match previous.get(&tp) {
                        Some(&(_, g)) if generation <= g => {}
                        _ => {
                            previous.insert(tp, (m, generation));
                        }
                    }
                }
            }
        }
        previous
    }

    /// `GeneralAssignmentBuilder.assignOwnedPartitions`: keep owned partitions of subscribed
    /// topics; drop the others (a revocation).
    fn assign_owned(&mut self) -> Vec<Tp> {
        let mut assigned = Vec::new();
        for &m in &self.ctx.order {
            let Some(list) = self.current[m].as_mut() else {
                continue;
            };
            let before = list.len();
            let topics = &self.consumer_topics[m];
            list.retain(|tp| topics.contains(&tp.0));
            if list.len() != before {
                self.revocation_required = true;
            }
            assigned.extend(list.iter().copied());
        }
        assigned
    }

    /// `getMaxAssignmentSize`: every partition of the member's topics.
    fn max_assignment_size(&self, m: usize) -> usize {
        self.consumer_topics[m]
            .iter()
            .map(|&t| self.ctx.count(t) as usize)
            .sum()
    }

    fn is_balanced(&self) -> Result<bool, String> {
        let (Some(&(min, _)), Some(&(max, _))) = (self.sorted.first(), self.sorted.last()) else {
            return Err("Kafka's StickyAssignor would throw NoSuchElementException (no member to balance)".into());
        };
        if min + 1 >= max {
            return Ok(true);
        }
        let mut owners: BTreeMap<Tp, usize> = BTreeMap::new();
        for (m, list) in self.current.iter().enumerate() {
            for &tp in list.iter().flatten() {
                owners.insert(tp, m);
            }
        }
        for &(count, rank) in &self.sorted {
            let m = self.by_rank[rank];
            if count == self.max_assignment_size(m) {
                continue;
            }
            let list = self.current[m].as_ref().ok_or("member in the balance set")?;
            for &t in &self.consumer_topics[m] {
                for p in 0..self.ctx.count(t) {
                    if list.contains(&(t, p)) {
                        continue;
                    }
                    let other = *owners
                        .get(&(t, p))
                        .ok_or("Kafka's StickyAssignor would fail here with a NullPointerException")?;
                    if count + 1 < self.size(other)? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// The sum over member pairs of the difference of their assignment sizes.
    fn balance_score(assignment: &[Option<Vec<Tp>>]) -> usize {
        let sizes: Vec<usize> = assignment.iter().flatten().map(Vec::len).collect();
        let mut score = 0;
        for (i, a) in sizes.iter().enumerate() {
            for b in &sizes[i + 1..] {
                score += a.abs_diff(*b);
            }
        }
        score
    }

    fn can_topic_move(&self, t: usize) -> bool {
        self.topic_consumers[t].len() >= 2
    }

    fn can_consumer_move(&self, m: usize) -> Result<bool, String> {
        let size = self.size(m)?;
        if size < self.max_assignment_size(m) {
            return Ok(true);
        }
        let list = self.current[m].as_ref().ok_or("member list")?;
        Ok(list.iter().any(|tp| self.can_topic_move(tp.0)))
    }

    fn balance(&mut self, previous: &BTreeMap<Tp, (usize, i32)>, mut unassigned: Vec<Tp>) -> Result<(), String> {
        let &(largest, _) = self.sorted.last().ok_or("no members")?;
        let initializing = largest == 0;
        for &tp in &unassigned {
            if !self.topic_consumers[tp.0].is_empty() {
                self.assign_to_least_loaded(tp)?;
            }
        }
        let fixed_topics: BTreeSet<usize> = (0..self.ctx.names.len())
            .filter(|&t| self.ctx.in_scope(t) && !self.can_topic_move(t))
            .collect();
        self.sorted_all.retain(|tp| !fixed_topics.contains(&tp.0));
        unassigned.retain(|tp| !fixed_topics.contains(&tp.0));

        let mut fixed: Vec<(usize, Vec<Tp>)> = Vec::new();
        for m in 0..self.ctx.members.len() {
            if !self.can_consumer_move(m)? {
                let key = self.key(m)?;
                self.sorted.remove(&key);
                fixed.push((m, self.current[m].take().unwrap_or_default()));
            }
        }
        let before = self.current.clone();
        let owners_before = self.owner.clone();
        if !self.revocation_required {
            self.perform_reassignments(&unassigned, previous)?;
        }
        let all = self.sorted_all.clone();
        let reassigned = self.perform_reassignments(&all, previous)?;
        if !initializing && reassigned && Self::balance_score(&self.current) >= Self::balance_score(&before) {
            self.current = before;
            self.owner = owners_before;
        }
        for (m, list) in fixed {
            self.current[m] = Some(list);
        }
        Ok(())
    }

    /// `maybeAssignPartition`: to the least loaded member (ties by id) subscribed to its topic.
    fn assign_to_least_loaded(&mut self, tp: Tp) -> Result<(), String> {
        let found = self
            .sorted
            .iter()
            .map(|&(_, rank)| self.by_rank[rank])
            .find(|&m| self.consumer_topics[m].contains(&tp.0));
        if let Some(m) = found {
            let key = self.key(m)?;
            self.sorted.remove(&key);
            self.list(m)?.push(tp);
            self.owner.insert(tp, m);
            let key = self.key(m)?;
            self.sorted.insert(key);
        }
        Ok(())
    }

    fn perform_reassignments(
        &mut self,
        partitions: &[Tp],
        previous: &BTreeMap<Tp, (usize, i32)>,
    ) -> Result<bool, String> {
        let mut performed = false;
        loop {
            let mut modified = false;
            for &tp in partitions {
                if self.is_balanced()? {
                    break;
                }
                let consumer = *self
                    .owner
                    .get(&tp)
                    .ok_or("Kafka's StickyAssignor would fail here: a partition has no current consumer")?;
                if let Some(&(previous_owner, _)) = previous.get(&tp)
                    && self.size(consumer)? > self.size(previous_owner)? + 1
                {
                    self.reassign_to(tp, previous_owner)?;
                    performed = true;
                    modified = true;
                    continue;
                }
                let mut better = false;
                for &other in &self.topic_consumers[tp.0] {
                    if self.size(consumer)? > self.size(other)? + 1 {
                        better = true;
                        break;
                    }
                }
                if better {
                    self.reassign(tp)?;
                    performed = true;
                    modified = true;
                }
            }
            if !modified {
                return Ok(performed);
            }
        }
    }

    /// `reassignPartition(partition)`: to the least loaded member subscribed to its topic.
    fn reassign(&mut self, tp: Tp) -> Result<(), String> {
        let new = self
            .sorted
            .iter()
            .map(|&(_, rank)| self.by_rank[rank])
            .find(|&m| self.consumer_topics[m].contains(&tp.0))
            .ok_or("Kafka's StickyAssignor would fail an assertion: no member can take the partition")?;
        self.reassign_to(tp, new)
    }

    fn reassign_to(&mut self, tp: Tp, new: usize) -> Result<(), String> {
        let consumer = *self.owner.get(&tp).ok_or("partition owner")?;
        let moved = self.movements.actual_partition(tp, consumer, new);
        self.process_movement(moved, new)
    }

    fn process_movement(&mut self, tp: Tp, new: usize) -> Result<(), String> {
        let old = *self.owner.get(&tp).ok_or("partition owner")?;
        let (old_key, new_key) = (self.key(old)?, self.key(new)?);
        self.sorted.remove(&old_key);
        self.sorted.remove(&new_key);
        self.movements.move_partition(self.ctx, tp, old, new)?;
        remove_first(self.list(old)?, tp);
        self.list(new)?.push(tp);
        self.owner.insert(tp, new);
        let (old_key, new_key) = (self.key(old)?, self.key(new)?);
        self.sorted.insert(new_key);
        self.sorted.insert(old_key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy::{CooperativeSticky, Range, RoundRobin, Sticky};
    use super::*;

    fn topics(spec: &[(&str, u32)]) -> BTreeMap<String, u32> {
        spec.iter().map(|&(t, n)| (t.to_string(), n)).collect()
    }

    /// `"t1-0, t1-1"` as partitions.
    fn parts(list: &str) -> Vec<TopicPartition> {
        list.split(", ")
            .filter(|s| !s.is_empty())
            .map(|s| TopicPartition::parse(s).expect("a partition"))
            .collect()
    }

    fn member(id: &str, subscribed: &[&str]) -> Member {
        Member::new(id, subscribed)
    }

    fn owning(id: &str, subscribed: &[&str], owned: &str, generation: i32) -> Member {
        Member {
            owned: parts(owned),
            generation,
            ..Member::new(id, subscribed)
        }
    }

    fn static_member(id: &str, instance: &str, subscribed: &[&str]) -> Member {
        Member {
            instance: Some(instance.to_string()),
            ..Member::new(id, subscribed)
        }
    }

    /// A member's list, in order: `"t1-0, t1-2"`.
    fn list(o: &Outcome, id: &str) -> String {
        let l: Vec<String> = o.assignment[id].iter().map(|tp| tp.to_string()).collect();
        l.join(", ")
    }

    /// A member's partitions as a set (Kafka's tests compare `new HashSet<>(…)`).
    fn set(o: &Outcome, id: &str) -> BTreeSet<TopicPartition> {
        o.assignment[id].iter().cloned().collect()
    }

    fn set_of(list: &str) -> BTreeSet<TopicPartition> {
        parts(list).into_iter().collect()
    }

    fn transferring(o: &Outcome) -> Vec<String> {
        o.transferring.iter().map(|(tp, m)| format!("{tp}->{m}")).collect()
    }

    fn run(strategy: Strategy, t: &BTreeMap<String, u32>, members: &[Member]) -> Outcome {
        Assignor::new(strategy)
            .assign_subscriptions(t, members)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The cooperative half of Kafka's `verifyValidityAndBalance`
    /// (CooperativeStickyAssignorTest): while a round revokes something, the members rejoin
    /// owning what they were given (generation 1) and the same assignor runs again.
    fn settle(a: &mut Assignor, t: &BTreeMap<String, u32>, members: &[Member], first: Outcome) -> Outcome {
        let mut members = members.to_vec();
        let mut outcome = first;
        let mut rounds = 0;
        while a.strategy == CooperativeSticky && !outcome.revoked.is_empty() {
            for m in &mut members {
                m.owned = outcome.assignment[&m.id].clone();
                m.generation = 1;
            }
            outcome = a.assign_subscriptions(t, &members).unwrap();
            rounds += 1;
            assert!(rounds <= 4, "no stable assignment after 4 follow-up rebalances");
        }
        outcome
    }

    fn run_settled(strategy: Strategy, t: &BTreeMap<String, u32>, members: &[Member]) -> (Outcome, Outcome) {
        let mut a = Assignor::new(strategy);
        let first = a.assign_subscriptions(t, members).unwrap();
        let last = settle(&mut a, t, members, first.clone());
        (first, last)
    }

    // ---- Java emulation, against values computed by hand.

    /// `s[0]*31^(n-1) + … + s[n-1]`: "c1" = 99*31 + 49 = 3118; "t1" = 116*31 + 49 = 3645;
    /// "Aa" = 65*31 + 97 = 2112 = "BB" = 66*31 + 66 (the classic collision).
    #[test]
    fn java_string_hash_by_hand() {
        assert_eq!(java_string_hash("c1"), 3118);
        assert_eq!(java_string_hash("t1"), 3645);
        assert_eq!(java_string_hash("Aa"), 2112);
        assert_eq!(java_string_hash("BB"), 2112);
        // TopicPartition("t1", 0): 31 * (31 + 0) + 3645 = 961 + 3645 = 4606.
        assert_eq!(topic_partition_hash(3645, 0), 4606);
        // 0x0001_0000 spreads to 0x0001_0000 ^ 0x0000_0001.
        assert_eq!(spread(0x1_0000), 0x1_0001);
        assert_eq!(spread(-1), 0xffff_0000);
    }

    /// Java compares UTF-16 code units: U+1F600 is the surrogate pair D83D DE00, which sorts
    /// below U+FFFF, the other way round from Rust's `str` order.
    #[test]
    fn java_string_order_is_utf16() {
        assert_eq!(java_cmp("\u{1F600}", "\u{FFFF}"), Ordering::Less);
        assert!("\u{1F600}" > "\u{FFFF}");
        assert_eq!(java_cmp("consumer-a", "consumer-b"), Ordering::Less);
    }

    /// Buckets by hand (capacity 16, bucket = spread & 15): "c1" 3118 = 194*16 + 14 → 14,
    /// "c2" 3119 → 15, "c3" 3120 = 195*16 → 0. Iteration is by bucket: c3, c1, c2, whatever
    /// the insertion order. "Aa" and "BB" share bucket 2112 & 15 = 0 and keep insertion order.
    #[test]
    fn hashmap_order_by_hand() {
        assert_eq!(java_hashmap_order(&["c1", "c2", "c3"]).unwrap(), vec![2, 0, 1]);
        assert_eq!(java_hashmap_order(&["c2", "c3", "c1"]).unwrap(), vec![1, 2, 0]);
        assert_eq!(java_hashmap_order(&["BB", "c1", "Aa"]).unwrap(), vec![0, 2, 1]);
        assert_eq!(java_hashmap_order(&["Aa", "c1", "BB"]).unwrap(), vec![0, 2, 1]);
        assert_eq!(java_hashmap_order(&["Aa", "Aa"]).unwrap(), vec![0]);
    }

    /// With integer hashes below 2^16 (spread leaves them alone): 13 keys pass 0.75 * 16 and
    /// double the table; 9 keys in one bucket double it too while it is below 64, and a
    /// 11th key in one bucket of a 64-table would make Java build a tree.
    #[test]
    fn hashmap_resizes_by_hand() {
        let mut t = JavaHashTable::new();
        for k in 0..12 {
            t.insert(k, k).unwrap();
        }
        assert_eq!(t.capacity(), 16);
        t.insert(100, 100).unwrap();
        assert_eq!(t.capacity(), 32);
        // 100 = 3*32 + 4: bucket 4 of 32, after key 4.
        let order: Vec<i32> = t.iter().copied().collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 100, 5, 6, 7, 8, 9, 10, 11]);

        // Multiples of 16 all land in bucket 0 of 16. The 9th doubles the table: 0, 32, 64,
        // 96, 128 stay in bucket 0 of 32, and 16, 48, 80, 112 move to bucket 16, in order.
        let mut t = JavaHashTable::new();
        for k in 0..9 {
            t.insert(16 * k, 16 * k).unwrap();
        }
        assert_eq!(t.capacity(), 32);
        let order: Vec<i32> = t.iter().copied().collect();
        assert_eq!(order, vec![0, 32, 64, 96, 128, 16, 48, 80, 112]);

        // Multiples of 64 share bucket 0 at 16, 32 and 64: the 9th key doubles to 32, the
        // 10th to 64, the 11th would be a tree.
        let mut t = JavaHashTable::new();
        for k in 0..10 {
            t.insert(64 * k, k).unwrap();
        }
        assert_eq!(t.capacity(), 64);
        assert_eq!(t.insert(640, 10), Err(TreeBin));

        // Removal unlinks without reordering.
        let mut t = JavaHashTable::new();
        for k in [0, 16, 32, 1] {
            t.insert(k, k).unwrap();
        }
        assert!(t.remove(16, &16));
        assert!(!t.remove(16, &16));
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![0, 32, 1]);
        assert_eq!(t.first(), Some(&0));
    }

    /// Orders printed by `java.util.HashMap.keySet()` on OpenJDK 17 for keys put in this order.
    #[test]
    fn hashmap_order_matches_java() {
        let keys = ["consumer1", "consumer2", "consumer3", "consumer4"];
        let order: Vec<&str> = java_hashmap_order(&keys).unwrap().iter().map(|&i| keys[i]).collect();
        assert_eq!(order, ["consumer4", "consumer3", "consumer2", "consumer1"]);
        let keys = ["range", "cooperative-sticky", "roundrobin", "sticky"];
        let order: Vec<&str> = java_hashmap_order(&keys).unwrap().iter().map(|&i| keys[i]).collect();
        assert_eq!(order, ["sticky", "range", "roundrobin", "cooperative-sticky"]);
        let keys = [
            "c7v9mt1", "c84u7r6", "cfevy4b", "cf3k3e2", "cc6d86v", "cftas13", "cbny63z", "c4dneii", "cfrsfs1",
            "cfs3sb8", "ceuktdk", "cqbflr", "c3b9po7", "c75glg9", "c2oyuyr", "cd3iohn", "c431fyl", "cgdpi6x",
            "ca5vb5a", "cxwrtg",
        ];
        let order: Vec<&str> = java_hashmap_order(&keys).unwrap().iter().map(|&i| keys[i]).collect();
        assert_eq!(
            order.join(","),
            "c3b9po7,c431fyl,cxwrtg,cftas13,cfs3sb8,c2oyuyr,ceuktdk,c75glg9,c7v9mt1,c84u7r6,cfevy4b,cqbflr,\
             cf3k3e2,c4dneii,cfrsfs1,cd3iohn,cc6d86v,cbny63z,cgdpi6x,ca5vb5a"
        );
    }

    // ---- RangeAssignor (KAFKA.md §4.4; RangeAssignorTest).

    #[test]
    fn range_one_consumer_one_topic() {
        let o = run(Range, &topics(&[("topic1", 3)]), &[member("consumer1", &["topic1"])]);
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-1, topic1-2");
        // testOnlyAssignsPartitionsFromSubscribedTopics.
        let o = run(
            Range,
            &topics(&[("topic1", 3), ("other", 3)]),
            &[member("consumer1", &["topic1"])],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-1, topic1-2");
        // testOneConsumerMultipleTopics.
        let o = run(
            Range,
            &topics(&[("topic1", 1), ("topic2", 2)]),
            &[member("consumer1", &["topic1", "topic2"])],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic2-0, topic2-1");
    }

    #[test]
    fn range_two_consumers() {
        // testTwoConsumersOneTopicOnePartition.
        let o = run(
            Range,
            &topics(&[("topic1", 1)]),
            &[member("consumer1", &["topic1"]), member("consumer2", &["topic1"])],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0");
        assert_eq!(list(&o, "consumer2"), "");
        // testTwoConsumersTwoTopicsSixPartitions.
        let both = ["topic1", "topic2"];
        let o = run(
            Range,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[member("consumer1", &both), member("consumer2", &both)],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-1, topic2-0, topic2-1");
        assert_eq!(list(&o, "consumer2"), "topic1-2, topic2-2");
    }

    #[test]
    fn range_multiple_consumers_mixed_topics() {
        let o = run(
            Range,
            &topics(&[("topic1", 3), ("topic2", 2)]),
            &[
                member("consumer1", &["topic1"]),
                member("consumer2", &["topic1", "topic2"]),
                member("consumer3", &["topic1"]),
            ],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0");
        assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-0, topic2-1");
        assert_eq!(list(&o, "consumer3"), "topic1-2");
    }

    /// testTwoStaticConsumersTwoTopicsSixPartitions and
    /// testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions: instance ids order
    /// static members, and static members come before dynamic ones.
    #[test]
    fn range_static_members_sort_by_instance_id() {
        let both = ["topic1", "topic2"];
        let t = topics(&[("topic1", 3), ("topic2", 3)]);
        for high in [
            static_member("consumer-a", "instance2", &both),
            member("consumer-a", &both),
        ] {
            let o = run(Range, &t, &[static_member("consumer-b", "instance1", &both), high]);
            assert_eq!(list(&o, "consumer-b"), "topic1-0, topic1-1, topic2-0, topic2-1");
            assert_eq!(list(&o, "consumer-a"), "topic1-2, topic2-2");
        }
    }

    /// testStaticMemberRangeAssignmentPersistent and …AfterMemberIdChanges.
    #[test]
    fn range_static_assignment_survives_new_member_ids() {
        let both = ["topic1", "topic2"];
        let statics = |ids: [&str; 3]| -> Vec<Member> {
            ids.iter()
                .zip(["instance1", "instance2", "instance3"])
                .map(|(id, instance)| static_member(id, instance, &both))
                .collect()
        };
        let t = topics(&[("topic1", 5), ("topic2", 4)]);
        for dynamic in ["consumer4", "consumer5"] {
            let mut members = statics(["consumer1", "consumer2", "consumer3"]);
            members.push(member(dynamic, &both));
            let o = run(Range, &t, &members);
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-1, topic2-0");
            assert_eq!(list(&o, "consumer2"), "topic1-2, topic2-1");
            assert_eq!(list(&o, "consumer3"), "topic1-3, topic2-2");
            assert_eq!(list(&o, dynamic), "topic1-4, topic2-3");
        }
        let t = topics(&[("topic1", 5), ("topic2", 5)]);
        let o = run(Range, &t, &statics(["consumer1", "consumer2", "consumer3"]));
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-1, topic2-0, topic2-1");
        assert_eq!(list(&o, "consumer2"), "topic1-2, topic1-3, topic2-2, topic2-3");
        assert_eq!(list(&o, "consumer3"), "topic1-4, topic2-4");
        let o = run(Range, &t, &statics(["consumer1", "consumer5", "consumer4"]));
        assert_eq!(list(&o, "consumer5"), "topic1-2, topic1-3, topic2-2, topic2-3");
        assert_eq!(list(&o, "consumer4"), "topic1-4, topic2-4");
    }

    // ---- RoundRobinAssignor (KAFKA.md §4.4; RoundRobinAssignorTest and its javadoc).

    #[test]
    fn roundrobin_kafka_cases() {
        let both = ["topic1", "topic2"];
        // testTwoConsumersTwoTopicsSixPartitions.
        let o = run(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[member("consumer1", &both), member("consumer2", &both)],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-2, topic2-1");
        assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-0, topic2-2");
        // testMultipleConsumersMixedTopics.
        let o = run(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 2)]),
            &[
                member("consumer1", &["topic1"]),
                member("consumer2", &both),
                member("consumer3", &["topic1"]),
            ],
        );
        assert_eq!(list(&o, "consumer1"), "topic1-0");
        assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-0, topic2-1");
        assert_eq!(list(&o, "consumer3"), "topic1-2");
        // testOneConsumerMultipleTopics and testTwoConsumersOneTopicOnePartition.
        let o = run(
            RoundRobin,
            &topics(&[("topic1", 1), ("topic2", 2)]),
            &[member("consumer", &both)],
        );
        assert_eq!(list(&o, "consumer"), "topic1-0, topic2-0, topic2-1");
        let o = run(
            RoundRobin,
            &topics(&[("topic", 1)]),
            &[member("consumer1", &["topic"]), member("consumer2", &["topic"])],
        );
        assert_eq!(list(&o, "consumer2"), "");
        // The class javadoc: C0 ⊂ {t0}, C1 ⊂ {t0, t1}, C2 ⊂ {t0, t1, t2}; t0 has 1 partition,
        // t1 2, t2 3.
        let o = run(
            RoundRobin,
            &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]),
            &[
                member("C0", &["t0"]),
                member("C1", &["t0", "t1"]),
                member("C2", &["t0", "t1", "t2"]),
            ],
        );
        assert_eq!(list(&o, "C0"), "t0-0");
        assert_eq!(list(&o, "C1"), "t1-0");
        assert_eq!(list(&o, "C2"), "t1-1, t2-0, t2-1, t2-2");
    }

    /// Derived by hand from `RoundRobinAssignor.assign`: the circle is MemberInfo order,
    /// static members by instance id first: c (i1), b (i2), then dynamic a. Four partitions of
    /// t1 go round it: t1-0 c, t1-1 b, t1-2 a, t1-3 c. Then t2 (subscribed by a only) starts
    /// where the iterator stands, at b: b and c are skipped, both partitions go to a.
    #[test]
    fn roundrobin_static_members_by_hand() {
        let o = run(
            RoundRobin,
            &topics(&[("t1", 4), ("t2", 2)]),
            &[
                static_member("b", "i2", &["t1"]),
                member("a", &["t1", "t2"]),
                static_member("c", "i1", &["t1"]),
            ],
        );
        assert_eq!(list(&o, "c"), "t1-0, t1-3");
        assert_eq!(list(&o, "b"), "t1-1");
        assert_eq!(list(&o, "a"), "t1-2, t2-0, t2-1");
    }

    // ---- Sticky assignors (AbstractStickyAssignorTest, StickyAssignorTest,
    // CooperativeStickyAssignorTest). Each runs on both, as Kafka's abstract test does.

    #[test]
    fn sticky_fresh_groups() {
        for s in [Sticky, CooperativeSticky] {
            // testOneConsumerOneTopic, testOneConsumerMultipleTopics.
            let o = run(s, &topics(&[("topic", 3)]), &[member("consumer", &["topic"])]);
            assert_eq!(list(&o, "consumer"), "topic-0, topic-1, topic-2");
            let o = run(
                s,
                &topics(&[("topic1", 1), ("topic2", 2)]),
                &[member("consumer", &["topic1", "topic2"])],
            );
            assert_eq!(list(&o, "consumer"), "topic1-0, topic2-0, topic2-1");
            // testTwoConsumersTwoTopicsSixPartitions (KAFKA.md §4.4 sticky case 1).
            let both = ["topic1", "topic2"];
            let o = run(
                s,
                &topics(&[("topic1", 3), ("topic2", 3)]),
                &[member("consumer1", &both), member("consumer2", &both)],
            );
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-2, topic2-1");
            assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-0, topic2-2");
            assert!(o.transferring.is_empty());
            // testMultipleConsumersMixedTopicSubscriptions: the general path.
            let o = run(
                s,
                &topics(&[("topic1", 3), ("topic2", 2)]),
                &[
                    member("consumer1", &["topic1"]),
                    member("consumer2", &both),
                    member("consumer3", &["topic1"]),
                ],
            );
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-2");
            assert_eq!(list(&o, "consumer2"), "topic2-0, topic2-1");
            assert_eq!(list(&o, "consumer3"), "topic1-1");
        }
    }

    /// testConsumerOwningMinQuotaExpectedMaxQuota and testAllConsumersAreUnderMinQuota.
    #[test]
    fn sticky_quota_cases() {
        let both = ["topic1", "topic2"];
        let t = topics(&[("topic1", 2), ("topic2", 3)]);
        for s in [Sticky, CooperativeSticky] {
            let (first, o) = run_settled(
                s,
                &t,
                &[
                    owning("consumer1", &both, "topic1-0, topic2-1", 1),
                    owning("consumer2", &both, "topic1-1, topic2-2", 1),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic2-1, topic2-0");
            assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-2");

            let (first, o) = run_settled(
                s,
                &t,
                &[
                    owning("consumer1", &both, "topic1-0", 1),
                    owning("consumer2", &both, "topic1-1", 1),
                    owning("consumer3", &both, "", 1),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic2-1");
            assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-2");
            assert_eq!(list(&o, "consumer3"), "topic2-0");
        }
    }

    /// testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers: the HashMap-order case.
    /// consumer1 and consumer2 both own 2 of 4 partitions; only one of three members may keep
    /// 2. Java iterates consumer3, consumer2, consumer1 (buckets 10, 11, 12), so consumer2
    /// keeps both and consumer1 gives up topic2-0, which goes to consumer3.
    #[test]
    fn sticky_hashmap_order_decides_who_keeps_max_quota() {
        let both = ["topic1", "topic2"];
        let t = topics(&[("topic1", 2), ("topic2", 2)]);
        let members = [
            owning("consumer1", &both, "topic1-0, topic2-0", 1),
            owning("consumer2", &both, "topic1-1, topic2-1", 1),
            owning("consumer3", &both, "", 1),
        ];
        for s in [Sticky, CooperativeSticky] {
            let (first, o) = run_settled(s, &t, &members);
            assert_eq!(list(&o, "consumer1"), "topic1-0");
            assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-1");
            assert_eq!(list(&o, "consumer3"), "topic2-0");
            if s == CooperativeSticky {
                // The first round withholds topic2-0 until consumer1 has revoked it.
                assert_eq!(transferring(&first), ["topic2-0->consumer3"]);
                assert_eq!(list(&first, "consumer3"), "");
                assert_eq!(first.revoked["consumer1"], parts("topic2-0"));
            } else {
                assert_eq!(first, o);
                assert_eq!(o.revoked["consumer1"], parts("topic2-0"));
            }
        }
    }

    /// testAddRemoveConsumerOneTopic and testAddRemoveTwoConsumersTwoTopics (exact lists,
    /// one assignor instance across the steps as in Kafka's test).
    #[test]
    fn sticky_members_join_and_leave() {
        for s in [Sticky, CooperativeSticky] {
            let t = topics(&[("topic", 3)]);
            let mut a = Assignor::new(s);
            let o = a
                .assign_subscriptions(
                    &t,
                    &[
                        owning("consumer1", &["topic"], "topic-0, topic-1, topic-2", 1),
                        member("consumer2", &["topic"]),
                    ],
                )
                .unwrap();
            if s == CooperativeSticky {
                assert_eq!(transferring(&o), ["topic-2->consumer2"]);
            }
            let members = [
                owning("consumer1", &["topic"], "topic-0, topic-1, topic-2", 1),
                owning("consumer2", &["topic"], "", 1),
            ];
            let o = settle(&mut a, &t, &members, o);
            assert_eq!(list(&o, "consumer1"), "topic-0, topic-1");
            assert_eq!(list(&o, "consumer2"), "topic-2");

            let both = ["topic1", "topic2"];
            let t = topics(&[("topic1", 3), ("topic2", 4)]);
            let mut a = Assignor::new(s);
            let o = a
                .assign_subscriptions(&t, &[member("consumer1", &both), member("consumer2", &both)])
                .unwrap();
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic1-2, topic2-1, topic2-3");
            assert_eq!(list(&o, "consumer2"), "topic1-1, topic2-0, topic2-2");
            let members = [
                owning("consumer1", &both, &list(&o, "consumer1"), 1),
                owning("consumer2", &both, &list(&o, "consumer2"), 1),
                owning("consumer3", &both, "", 1),
                owning("consumer4", &both, "", 1),
            ];
            let first = a.assign_subscriptions(&t, &members).unwrap();
            if s == CooperativeSticky {
                assert_eq!(
                    transferring(&first),
                    ["topic1-2->consumer3", "topic2-2->consumer4", "topic2-3->consumer3"]
                );
            }
            let o = settle(&mut a, &t, &members, first);
            assert_eq!(list(&o, "consumer1"), "topic1-0, topic2-1");
            assert_eq!(list(&o, "consumer2"), "topic2-0, topic1-1");
            assert_eq!(list(&o, "consumer3"), "topic1-2, topic2-3");
            assert_eq!(list(&o, "consumer4"), "topic2-2");
            let members = [
                owning("consumer3", &both, &list(&o, "consumer3"), 1),
                owning("consumer4", &both, &list(&o, "consumer4"), 1),
            ];
            let o = a.assign_subscriptions(&t, &members).unwrap();
            assert!(o.transferring.is_empty());
            assert_eq!(list(&o, "consumer3"), "topic1-2, topic2-3, topic1-0, topic2-1");
            assert_eq!(list(&o, "consumer4"), "topic2-2, topic1-1, topic2-0");
        }
    }

    /// testOwnedPartitionsAreInvalidatedForConsumerWithStaleGeneration, …WithNoGeneration and
    /// …WithMultipleGeneration: a claim from an older generation loses.
    #[test]
    fn sticky_older_generation_loses_its_claims() {
        let both = ["topic", "topic2"];
        let t = topics(&[("topic", 3), ("topic2", 3)]);
        for s in [Sticky, CooperativeSticky] {
            for stale in [9, -1] {
                let (first, o) = run_settled(
                    s,
                    &t,
                    &[
                        owning("consumer1", &both, "topic-0, topic-2, topic2-1", 10),
                        owning("consumer2", &both, "topic-0, topic-2, topic2-1", stale),
                    ],
                );
                assert!(first.transferring.is_empty());
                assert_eq!(set(&o, "consumer1"), set_of("topic-0, topic-2, topic2-1"));
                assert_eq!(set(&o, "consumer2"), set_of("topic-1, topic2-0, topic2-2"));
            }
            let (first, o) = run_settled(
                s,
                &t,
                &[
                    owning("consumer1", &both, "topic-0, topic2-1, topic-1", 10),
                    owning("consumer2", &both, "topic-0, topic2-1, topic2-2", 8),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(set(&o, "consumer1"), set_of("topic-0, topic2-1, topic-1"));
            assert_eq!(set(&o, "consumer2"), set_of("topic-2, topic2-2, topic2-0"));
        }
    }

    /// testEnsurePartitionsAssignedToHighestGeneration and testNoReassignmentOnCurrentMembers.
    #[test]
    fn sticky_highest_generation_keeps_partitions() {
        let three = ["topic", "topic2", "topic3"];
        let t = topics(&[("topic", 3), ("topic2", 3), ("topic3", 3)]);
        let four = ["topic", "topic2", "topic3", "topic1"];
        let t4 = topics(&[("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)]);
        for s in [Sticky, CooperativeSticky] {
            let (first, o) = run_settled(
                s,
                &t,
                &[
                    owning("consumer1", &three, "topic-0, topic2-0, topic3-0", 10),
                    owning("consumer2", &three, "topic-1, topic2-1, topic3-1", 9),
                    owning("consumer3", &three, "topic2-1, topic3-0, topic3-2", 8),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(set(&o, "consumer1"), set_of("topic-0, topic2-0, topic3-0"));
            assert_eq!(set(&o, "consumer2"), set_of("topic-1, topic2-1, topic3-1"));
            assert_eq!(set(&o, "consumer3"), set_of("topic-2, topic2-2, topic3-2"));

            let (first, o) = run_settled(
                s,
                &t4,
                &[
                    owning("consumer1", &four, "", -1),
                    owning("consumer2", &four, "topic-0, topic2-0, topic1-0", 9),
                    owning("consumer3", &four, "topic3-2, topic2-2, topic1-1", 8),
                    owning("consumer4", &four, "topic3-1, topic-1, topic-2", 7),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(set(&o, "consumer1"), set_of("topic1-2, topic2-1, topic3-0"));
        }
    }

    /// testPartitionsTransferringOwnershipIncludeThePartitionClaimedByMultipleConsumersInSameGeneration,
    /// testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimedByMultipleConsumersInSameGeneration
    /// (equal and unequal partitions per consumer; the cooperative assignor leaves topic-0 out
    /// of the first round) and testAllConsumersReachExpectedQuotaAndAreConsideredFilled.
    #[test]
    fn sticky_same_generation_claims_are_invalidated() {
        for s in [Sticky, CooperativeSticky] {
            for (n, c1) in [(3, "topic-1"), (4, "topic-1, topic-3")] {
                let members = [
                    owning("consumer1", &["topic"], "topic-0, topic-1", 1),
                    owning("consumer2", &["topic"], "topic-0, topic-2", 1),
                    owning("consumer3", &["topic"], "", 1),
                ];
                let (first, o) = run_settled(s, &topics(&[("topic", n)]), &members);
                if s == CooperativeSticky {
                    assert_eq!(transferring(&first), ["topic-0->consumer3"]);
                    assert_eq!(list(&first, "consumer3"), "");
                }
                assert_eq!(list(&first, "consumer1"), c1);
                assert_eq!(list(&o, "consumer1"), c1);
                assert_eq!(list(&o, "consumer2"), "topic-2");
                assert_eq!(list(&o, "consumer3"), "topic-0");
            }
            let (first, o) = run_settled(
                s,
                &topics(&[("topic", 4)]),
                &[
                    owning("consumer1", &["topic"], "topic-0, topic-1", 1),
                    owning("consumer2", &["topic"], "topic-2", 1),
                    owning("consumer3", &["topic"], "", 1),
                ],
            );
            assert!(first.transferring.is_empty());
            assert_eq!(list(&o, "consumer1"), "topic-0, topic-1");
            assert_eq!(list(&o, "consumer2"), "topic-2");
            assert_eq!(list(&o, "consumer3"), "topic-3");
        }
    }

    /// The non-rack-aware expectations of testRackAwareAssignmentWithUniformSubscription and
    /// testRackAwareAssignmentWithNonEqualSubscription (Kafka compares sorted lists), including
    /// the cooperative two-round case with owned partitions.
    #[test]
    fn sticky_rack_tests_without_racks() {
        let t = topics(&[("t1", 6), ("t2", 7), ("t3", 2)]);
        let all = ["t1", "t2", "t3"];
        let sorted = |o: &Outcome, id: &str| {
            let mut l: Vec<String> = o.assignment[id].iter().map(|tp| tp.to_string()).collect();
            l.sort();
            l.join(", ")
        };
        let with = |subs: [&[&str]; 3], owned: [&str; 3]| -> Vec<Member> {
            (0..3)
                .map(|i| owning(&format!("consumer{i}"), subs[i], owned[i], -1))
                .collect()
        };
        let uniform = [
            "t1-0, t1-3, t2-0, t2-3, t2-6",
            "t1-1, t1-4, t2-1, t2-4, t3-0",
            "t1-2, t1-5, t2-2, t2-5, t3-1",
        ];
        let non_equal = [
            "t1-5, t2-0, t2-2, t2-4, t2-6",
            "t1-3, t2-1, t2-3, t2-5, t3-0",
            "t1-0, t1-1, t1-2, t1-4, t3-1",
        ];
        let misplaced = [
            "t1-0, t1-1, t1-2, t1-3, t1-4",
            "t1-5, t2-0, t2-1, t2-2, t2-3",
            "t2-4, t2-5, t2-6, t3-0, t3-1",
        ];
        for s in [Sticky, CooperativeSticky] {
            for owned in [["", "", ""], uniform] {
                let o = run(s, &t, &with([&all, &all, &all], owned));
                for (i, expected) in uniform.iter().enumerate() {
                    assert_eq!(sorted(&o, &format!("consumer{i}")), *expected);
                }
            }
            let subs: [&[&str]; 3] = [&all, &all, &["t1", "t3"]];
            for owned in [["", "", ""], non_equal] {
                let o = run(s, &t, &with(subs, owned));
                for (i, expected) in non_equal.iter().enumerate() {
                    assert_eq!(sorted(&o, &format!("consumer{i}")), *expected);
                }
            }
            // Kafka's test builds these subscriptions without user data, so the eager sticky
            // assignor sees no owned partitions (the loop above); the cooperative one moves in
            // two rounds.
            if s == Sticky {
                continue;
            }
            let o = run(s, &t, &with(subs, misplaced));
            let intermediate = ["t1-2, t1-3, t1-4", "t2-0, t2-1, t2-2, t2-3", "t3-0, t3-1"];
            for (i, expected) in intermediate.iter().enumerate() {
                assert_eq!(sorted(&o, &format!("consumer{i}")), *expected);
            }
            let o = run(s, &t, &with(subs, intermediate));
            let last = [
                "t1-2, t1-3, t1-4, t2-4, t2-5",
                "t2-0, t2-1, t2-2, t2-3, t2-6",
                "t1-0, t1-1, t1-5, t3-0, t3-1",
            ];
            for (i, expected) in last.iter().enumerate() {
                assert_eq!(sorted(&o, &format!("consumer{i}")), *expected);
            }
        }
    }

    /// testAssignorWithOldVersionSubscriptions (both assignors): owned partitions with a
    /// generation, one new member.
    #[test]
    fn sticky_old_version_subscriptions() {
        for s in [Sticky, CooperativeSticky] {
            let o = run(
                s,
                &topics(&[("topic1", 3)]),
                &[
                    owning("consumer1", &["topic1"], "topic1-0", 1),
                    owning("consumer2", &["topic1"], "topic1-1", 1),
                    owning("consumer3", &["topic1"], "", 1),
                ],
            );
            assert_eq!(list(&o, "consumer1"), "topic1-0");
            assert_eq!(list(&o, "consumer2"), "topic1-1");
            assert_eq!(list(&o, "consumer3"), "topic1-2");
        }
    }

    /// Derived by hand, constrained path. Four partitions, three members: minQuota 1,
    /// maxQuota 2, one member may hold 2. Java visits the members in HashMap order, bucket =
    /// hashCode & 15 (the hashes are below 2^16): "c3" = 99*31 + 51 = 3120 → 0, "c1" = 3118
    /// → 14, "c2" = 3119 → 15. So c3 (owning 2) keeps both and takes the one max slot; c1
    /// (owning 2) keeps minQuota = 1 of its partitions sorted by (partition, topic), t-0, and
    /// gives up t-1; c2 owns nothing and takes the one unassigned partition, t-1, which is
    /// transferring. Sorting members by id instead would have let c1 keep both.
    #[test]
    fn sticky_constrained_by_hand() {
        let t = topics(&[("t", 4)]);
        let members = [
            owning("c1", &["t"], "t-0, t-1", 3),
            owning("c2", &["t"], "", 3),
            owning("c3", &["t"], "t-2, t-3", 3),
        ];
        let o = run(Sticky, &t, &members);
        assert_eq!(list(&o, "c1"), "t-0");
        assert_eq!(list(&o, "c2"), "t-1");
        assert_eq!(list(&o, "c3"), "t-2, t-3");
        assert_eq!(o.revoked["c1"], parts("t-1"));
        let o = run(CooperativeSticky, &t, &members);
        assert_eq!(list(&o, "c2"), "");
        assert_eq!(transferring(&o), ["t-1->c2"]);
    }

    /// Derived by hand, general path with the balance loop. a ⊂ {t1, t2} owns t1-0..3
    /// (generation 1), b ⊂ {t1} is new; t1 has 4 partitions, t2 one.
    /// Topics by (potential consumers, name): t2 (1), t1 (2). a keeps its four; the only
    /// unassigned partition, t2-0, goes to the least loaded member subscribed to t2: a (5).
    /// t2 has one consumer, so it is fixed; both members can still move. Balancing t1-0..3
    /// in order: t1-0 — a has 5 > b's 0 + 1, move it to b (a 4, b 1); t1-1 — 4 > 2, move
    /// (a 3, b 2); t1-2 — sizes 3 and 2 differ by 1: balanced, stop. The score fell from 5 to
    /// 1, so the move stands: a [t1-2, t1-3, t2-0], b [t1-0, t1-1].
    /// Cooperative: b gains t1-0 and t1-1, which a owned and loses, so both are withheld from
    /// b this round and a revokes them.
    #[test]
    fn sticky_general_by_hand() {
        let t = topics(&[("t1", 4), ("t2", 1)]);
        let members = [
            owning("a", &["t1", "t2"], "t1-0, t1-1, t1-2, t1-3", 1),
            member("b", &["t1"]),
        ];
        let o = run(Sticky, &t, &members);
        assert_eq!(list(&o, "a"), "t1-2, t1-3, t2-0");
        assert_eq!(list(&o, "b"), "t1-0, t1-1");
        let o = run(CooperativeSticky, &t, &members);
        assert_eq!(list(&o, "a"), "t1-2, t1-3, t2-0");
        assert_eq!(list(&o, "b"), "");
        assert_eq!(transferring(&o), ["t1-0->b", "t1-1->b"]);
        assert_eq!(o.revoked["a"], parts("t1-0, t1-1"));
    }

    /// Kafka's `allSubscriptionsEqual` starts over while the topics seen so far are empty, so
    /// a member subscribed to nothing that comes first in HashMap order ("a", bucket 1, before
    /// "b", bucket 2) makes the subscriptions "equal" and shares the partitions; the other way
    /// round the general path gives it nothing. (Its consumer then rejoins, as the assignment
    /// does not match its subscription.)
    #[test]
    fn sticky_empty_subscription_first_in_hashmap_order() {
        let t = topics(&[("t", 2)]);
        let o = run(Sticky, &t, &[member("b", &["t"]), member("a", &[])]);
        assert_eq!(list(&o, "a"), "t-0");
        assert_eq!(list(&o, "b"), "t-1");
        let o = run(Sticky, &t, &[member("a", &["t"]), member("b", &[])]);
        assert_eq!(list(&o, "a"), "t-0, t-1");
        assert_eq!(list(&o, "b"), "");
    }

    /// The StickyAssignor's user data groups the previous assignment by topic through a
    /// HashMap: "topic2" (bucket 1) comes before "topic" (bucket 9), so a general-path
    /// member keeps its partitions in that order.
    #[test]
    fn sticky_user_data_groups_owned_by_topic() {
        let t = topics(&[("topic", 1), ("topic2", 1), ("x", 1)]);
        let members = [
            owning("consumer1", &["topic", "topic2"], "topic-0, topic2-0", 1),
            member("consumer2", &["x"]),
        ];
        assert_eq!(list(&run(Sticky, &t, &members), "consumer1"), "topic2-0, topic-0");
        assert_eq!(
            list(&run(CooperativeSticky, &t, &members), "consumer1"),
            "topic-0, topic2-0"
        );
    }

    /// The wire sorts a cooperative member's owned partitions; `assign` models that.
    #[test]
    fn assign_models_the_wire() {
        let t = topics(&[("topic", 1), ("topic2", 1), ("x", 1)]);
        let members = [
            owning("consumer1", &["topic2", "topic"], "topic2-0, topic-0", 1),
            member("consumer2", &["x"]),
        ];
        let raw = run(CooperativeSticky, &t, &members);
        assert_eq!(list(&raw, "consumer1"), "topic2-0, topic-0");
        let wire = assign(CooperativeSticky, &t, &members).unwrap();
        assert_eq!(list(&wire, "consumer1"), "topic-0, topic2-0");
    }

    #[test]
    fn bad_groups_are_errors() {
        let t = topics(&[("t", 2)]);
        assert!(run_err(&t, &[]).contains("at least one member"));
        assert!(run_err(&t, &[member("a", &["t"]), member("a", &["t"])]).contains("appears twice"));
        assert!(run_err(&t, &[owning("a", &["t"], "t-2", 1)]).contains("does not exist"));
        assert!(run_err(&t, &[owning("a", &["t"], "t-0, t-0", 1)]).contains("twice"));
        assert!(run_err(&t, &[member("a", &["t", "t"])]).contains("twice"));
    }

    fn run_err(t: &BTreeMap<String, u32>, members: &[Member]) -> String {
        Assignor::new(Sticky).assign(t, members).unwrap_err()
    }

    // ---- The protocol vote.

    #[test]
    fn protocol_vote() {
        let default: &[Strategy] = &DEFAULT_STRATEGIES;
        assert_eq!(select_protocol(&[("a", default), ("b", default)]), Ok(Range));
        // Everyone moved to cooperative-sticky first: it wins 2 to 1 once all support it.
        let coop_first: &[Strategy] = &[CooperativeSticky, Range];
        assert_eq!(
            select_protocol(&[("a", coop_first), ("b", coop_first), ("c", default)]),
            Ok(CooperativeSticky)
        );
        // A member without cooperative-sticky keeps the group on range.
        assert_eq!(select_protocol(&[("a", coop_first), ("b", &[Range])]), Ok(Range));
        // Ties go to the first in HashMap order: "sticky" (bucket 8), "range" (9),
        // "roundrobin" (10), "cooperative-sticky" (15); see hashmap_order_matches_java.
        assert_eq!(select_protocol(&[("a", coop_first), ("b", default)]), Ok(Range));
        assert_eq!(
            select_protocol(&[("a", &[Range, Sticky]), ("b", &[Sticky, Range])]),
            Ok(Sticky)
        );
        assert!(select_protocol(&[("a", &[Range]), ("b", &[RoundRobin])]).is_err());
    }

    #[test]
    fn strategy_names() {
        assert_eq!(Strategy::parse("cooperative-sticky"), Some(CooperativeSticky));
        assert_eq!(
            Strategy::parse("org.apache.kafka.clients.consumer.RoundRobinAssignor"),
            Some(RoundRobin)
        );
        assert_eq!(Strategy::parse("Range"), None);
        assert_eq!(
            TopicPartition::parse("my-topic-12"),
            Some(TopicPartition::new("my-topic", 12))
        );
        assert_eq!(TopicPartition::parse("t1"), None);
        assert_eq!(TopicPartition::parse("t1-x"), None);
        assert_eq!(TopicPartition::parse("-1"), None);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    /// A small deterministic generator (64-bit LCG, high bits).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random groups never panic; every assignment is valid: each partition at most once,
    /// eager assignors place every partition, range and round robin only to subscribers.
    #[test]
    fn random_groups_give_valid_assignments() {
        let mut rng = Lcg(7);
        let (mut errors, mut unsubscribed) = (0, 0);
        for round in 0..3000 {
            let n_topics = 1 + rng.below(4) as usize;
            let topics: BTreeMap<String, u32> = (0..n_topics)
                .map(|t| (format!("t{t}"), 1 + rng.below(7) as u32))
                .collect();
            let names: Vec<&String> = topics.keys().collect();
            let n_members = 1 + rng.below(5) as usize;
            let same = rng.below(2) == 0;
            let shared: Vec<String> = names
                .iter()
                .filter(|_| rng.below(3) != 0)
                .map(|t| t.to_string())
                .collect();
            let mut taken = BTreeSet::new();
            let members: Vec<Member> = (0..n_members)
                .map(|i| {
                    let subscribed: Vec<String> = if same {
                        shared.clone()
                    } else {
                        names
                            .iter()
                            .filter(|_| rng.below(2) == 0)
                            .map(|t| t.to_string())
                            .collect()
                    };
                    let mut owned = Vec::new();
                    for (t, &count) in &topics {
                        for p in 0..count {
                            if rng.below(4) == 0 && (rng.below(3) == 0 || taken.insert((t.clone(), p))) {
                                owned.push(TopicPartition::new(t, p));
                            }
                        }
                    }
                    Member {
                        id: format!("m{}", rng.below(1000) * 10 + i as u64),
                        instance: (rng.below(3) == 0).then(|| format!("i{i}")),
                        topics: subscribed,
                        owned,
                        generation: rng.below(4) as i32 - 1,
                    }
                })
                .collect();
            for s in Strategy::ALL {
                let o = match Assignor::new(s).assign(&topics, &members) {
                    Ok(o) => o,
                    Err(e) => {
                        assert!(e.contains("Kafka") || e.contains("Java"), "round {round} {s}: {e}");
                        errors += 1;
                        continue;
                    }
                };
                let mut seen = BTreeSet::new();
                for m in &members {
                    for tp in &o.assignment[&m.id] {
                        assert!(seen.insert(tp.clone()), "round {round} {s}: {tp} twice");
                        if !m.topics.contains(&tp.topic) {
                            assert!(s.is_sticky(), "round {round} {s}: {tp} to {} unsubscribed", m.id);
                            unsubscribed += 1;
                        }
                    }
                }
                let subscribed: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
                let expected: usize = subscribed.iter().map(|t| topics[*t] as usize).sum();
                if s != Strategy::CooperativeSticky {
                    assert_eq!(seen.len(), expected, "round {round} {s}: not every partition placed");
                }
            }
        }
        // Kafka's own failures (a NullPointerException when a member that sits out the
        // balance loop holds an older claim) and Kafka's own oddities (partitions of topics a
        // member does not subscribe to) both happen; the counts pin them.
        assert_eq!((errors, unsubscribed), (44, 619));
    }
}
