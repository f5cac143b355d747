//! The nemesis: random faults drawn from the seed before the run starts, from a stream of
//! their own (so a nemesis never shifts the network's or a producer's numbers). Once drawn
//! they are ordinary faults: each can be written out as `{at, KIND: TARGET, for}`.
//!
//! A fault counts against `max-down` while it lasts if it takes nodes away: a crash, power
//! loss, pause or isolation takes one, a partition as many as its minority side holds.
//! Cuts and slow links take none. A fault on a role (`leader(orders-0)`) counts one even
//! if the role turns out to be a node that is already down, so the limit holds whoever
//! the role resolves to.
//!
//! A broker that crashed or lost power stays out of the cluster after its restart until
//! its old session has expired: Kafka 4.1 refuses the new incarnation's registration
//! (DUPLICATE_BROKER_REGISTRATION) until `broker.session.timeout.ms` after the last
//! heartbeat, and unfences it one heartbeat later. Such a fault counts against `max-down`
//! for at least that long, whatever its `for:`, so that one broker down at a time means
//! one broker out of the cluster at a time.

use super::{CONTROLLER, Fault, FaultKind, NemesisKind, RoleRef, Scenario};
use crate::sim::Duration;
use crate::sim::rng::{SimRng, stream};
use rand::RngExt;

/// A drawn fault that is still in force.
struct Active {
    until: Duration,
    /// How much of `max-down` it takes.
    down: u32,
    /// The nodes it takes down, where they are known before the run (not roles).
    nodes: Vec<String>,
}

/// The faults of a run with `seed`: the scenario's own and the nemesis's, in time order
/// (at one instant, the scenario's first). A frozen scenario lists them in this order.
pub fn schedule(s: &Scenario, seed: u64) -> Vec<Fault> {
    let mut all = s.faults.clone();
    all.extend(draw(s, seed));
    all.sort_by_key(|f| f.at);
    all
}

/// The faults the scenario's nemesis draws for `seed`, in time order; none without one.
pub fn draw(s: &Scenario, seed: u64) -> Vec<Fault> {
    let Some(n) = &s.nemesis else {
        return Vec::new();
    };
    let mut rng = stream(seed, "nemesis");
    let partitions: Vec<String> = s
        .topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| format!("{}-{p}", t.name)))
        .collect();
    let brokers: Vec<String> = (1..=s.brokers).map(Scenario::broker_name).collect();
    let is_role = |t: &str| RoleRef::parse(t).is_some();
    // The leader of a partition cut off from the other targets is a partition of the
    // brokers only when every broker is a target: others must keep their links.
    let all_brokers = brokers.iter().all(|b| n.targets.contains(b));
    let mut out = Vec::new();
    let mut active: Vec<Active> = Vec::new();
    let mut at = n.from;
    loop {
        at = at + span(&mut rng, n.every);
        if at > n.until {
            break;
        }
        active.retain(|a| a.until > at);
        let free = n.max_down.saturating_sub(active.iter().map(|a| a.down).sum());
        let busy: Vec<&str> = active.iter().flat_map(|a| a.nodes.iter().map(String::as_str)).collect();
        let eligible = |kind: NemesisKind| -> Vec<&String> {
            if needs_two(kind) && n.targets.len() < 2 {
                return Vec::new();
            }
            // A crash, power loss, pause or isolation never hits a node the nemesis holds
            // down already; a partition, cut or slowdown may involve it.
            let takes_down = matches!(
                kind,
                NemesisKind::Crash | NemesisKind::PowerLoss | NemesisKind::Pause | NemesisKind::Isolate
            );
            n.targets
                .iter()
                .filter(|t| {
                    can_take(kind, t, &brokers, s.controllers > 1) && !(takes_down && busy.contains(&t.as_str()))
                })
                .collect()
        };
        let feasible: Vec<NemesisKind> = n
            .kinds
            .iter()
            .copied()
            .filter(|&k| (free > 0 || matches!(k, NemesisKind::Cut | NemesisKind::Slow)) && !eligible(k).is_empty())
            .collect();
        if feasible.is_empty() {
            continue;
        }
        let kind = feasible[rng.random_range(0..feasible.len())];
        let lasts = span(&mut rng, n.lasts);
        let candidates = eligible(kind);
        let pick = |rng: &mut SimRng| candidates[rng.random_range(0..candidates.len())].clone();
        let concrete = |t: &String| if is_role(t) { Vec::new() } else { vec![t.clone()] };
        let (fault, down, nodes) = match kind {
            NemesisKind::Crash | NemesisKind::PowerLoss | NemesisKind::Pause | NemesisKind::Isolate => {
                let t = pick(&mut rng);
                let nodes = concrete(&t);
                let fault = match kind {
                    NemesisKind::Crash => FaultKind::Crash(t),
                    NemesisKind::PowerLoss => FaultKind::PowerLoss(t),
                    NemesisKind::Pause => FaultKind::Pause(t),
                    _ => FaultKind::Isolate(t),
                };
                (fault, 1, nodes)
            }
            NemesisKind::Partition => {
                // Jepsen's two partitions: the leader of a random partition cut off from
                // the other targets, or a random minority from the majority.
                let leader_cut = !partitions.is_empty() && all_brokers && rng.random_range(0..2u32) == 0;
                if leader_cut {
                    let leader = format!("leader({})", partitions[rng.random_range(0..partitions.len())]);
                    let rest: Vec<String> = n.targets.iter().filter(|t| **t != leader).cloned().collect();
                    (FaultKind::Partition(vec![vec![leader], rest]), 1, Vec::new())
                } else {
                    let mut shuffled = n.targets.clone();
                    shuffle(&mut rng, &mut shuffled);
                    let largest = ((shuffled.len() - 1) / 2).max(1) as u32;
                    let k = rng.random_range(1..=largest.min(free)) as usize;
                    let majority = shuffled.split_off(k);
                    let nodes = shuffled.iter().flat_map(concrete).collect();
                    (FaultKind::Partition(vec![shuffled, majority]), k as u32, nodes)
                }
            }
            NemesisKind::Cut => {
                let i = rng.random_range(0..n.targets.len());
                let j = (i + rng.random_range(1..n.targets.len())) % n.targets.len();
                let (from, to) = (n.targets[i].clone(), n.targets[j].clone());
                (FaultKind::Cut { from, to }, 0, Vec::new())
            }
            NemesisKind::Slow => {
                let mut shuffled = n.targets.clone();
                shuffle(&mut rng, &mut shuffled);
                let k = rng.random_range(1..=(shuffled.len() / 2).max(1));
                shuffled.truncate(k);
                let latency = span(&mut rng, n.slow_latency);
                (
                    FaultKind::Slow {
                        nodes: shuffled,
                        latency,
                    },
                    0,
                    Vec::new(),
                )
            }
        };
        let brokerish = |t: &str| brokers.iter().any(|b| b == t) || RoleRef::parse(t).is_some();
        let held = match &fault {
            FaultKind::Crash(t) | FaultKind::PowerLoss(t)
                if brokerish(t) && s.broker.truncation == crate::kafka::TruncationMode::LeaderEpoch =>
            {
                lasts.max(s.broker.broker_session_timeout + s.broker.broker_heartbeat_interval)
            }
            _ => lasts,
        };
        active.push(Active {
            until: at + held,
            down,
            nodes,
        });
        out.push(Fault {
            at,
            kind: fault,
            lasts: Some(lasts),
        });
    }
    out
}

/// Whether a fault of `kind` may hit `target` (a node's name or a role): a lone controller
/// never fails in kafkasim (a quorum's controllers do), and a power loss hits brokers.
pub fn can_take(kind: NemesisKind, target: &str, brokers: &[String], quorum: bool) -> bool {
    match kind {
        NemesisKind::Crash | NemesisKind::Pause => quorum || target != CONTROLLER,
        NemesisKind::PowerLoss => brokers.iter().any(|b| b == target) || RoleRef::parse(target).is_some(),
        _ => true,
    }
}

/// Whether a fault of `kind` needs two targets or more.
pub fn needs_two(kind: NemesisKind) -> bool {
    matches!(kind, NemesisKind::Partition | NemesisKind::Cut)
}

/// A duration drawn uniformly from `min..=max`: in whole milliseconds when both bounds
/// are, so that a drawn fault reads well when written out.
fn span(rng: &mut SimRng, (min, max): (Duration, Duration)) -> Duration {
    if min.0 % 1000 == 0 && max.0 % 1000 == 0 {
        Duration::from_millis(rng.random_range(min.as_millis()..=max.as_millis()))
    } else {
        Duration(rng.random_range(min.0..=max.0))
    }
}

/// Fisher–Yates, from the back.
fn shuffle<T>(rng: &mut SimRng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}
