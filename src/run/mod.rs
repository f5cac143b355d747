//! One run of a scenario: build the cluster, schedule the faults, drive the engine,
//! collect observations for the checks and the report, and judge the expectations.

mod assemble;
mod collect;
mod state;

use assemble::*;
use collect::*;
use state::*;

use crate::check::at_least_once::{AtLeastOnce, Final};
use crate::check::lost_write::{LostWrite, Names};
use crate::check::replication::Replication;
use crate::check::{CHECKS, CheckResult, cap};
use crate::kafka::log::RecordRange;
use crate::kafka::{
    self, ClusterInfo, ElectionReason, FailReason, MetadataImage, Node, Obs, PartitionState, Pidx, PositionCause,
    RebalanceCause, Role,
};
use crate::report::latency::Latencies;
use crate::report::series::{self, BrokerEvent, GroupSample, PartitionSample, Recorder};
use crate::report::*;
use crate::scenario::{Acks, Fault, FaultKind, RoleRef, Scenario};
use crate::sim::engine::Happening;
use crate::sim::network::Network;
use crate::sim::{Duration, Engine, FaultOp, FaultRecord, NodeId, Target, Time, rng};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Default)]
pub struct RunOptions<'a> {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Stops the run after this many events (a runaway run is an error, not a hang).
    pub max_events: Option<u64>,
    /// Receives the JSONL trace.
    pub trace: Option<Box<dyn Write>>,
    /// Which trace lines to write (all when empty).
    pub trace_filter: crate::trace::TraceFilter,
    /// Called as simulated time advances: (simulated µs so far, total µs).
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// How the scenario file is named in the command that reproduces the run.
    pub source: String,
}

/// The engine's form of a scenario fault: targets as nodes or roles, and how long after
/// firing it heals (a pause carries its own length).
fn fault_op(f: &Fault, target: &dyn Fn(&str) -> Target<Role>) -> (FaultOp<Target<Role>>, Option<Duration>) {
    let op = match &f.kind {
        FaultKind::Crash(n) => FaultOp::Crash(target(n)),
        FaultKind::Stop(n) => FaultOp::Stop(target(n)),
        FaultKind::PowerLoss(n) => FaultOp::PowerLoss(target(n)),
        FaultKind::Restart(n) => FaultOp::Restart(target(n)),
        FaultKind::Pause(n) => {
            let length = f.lasts.expect("validation gives every pause a length");
            return (FaultOp::Pause(target(n), length), None);
        }
        FaultKind::Isolate(n) => FaultOp::Isolate(target(n)),
        FaultKind::Partition(groups) => {
            FaultOp::Partition(groups.iter().map(|g| g.iter().map(|n| target(n)).collect()).collect())
        }
        FaultKind::Cut { from, to } => FaultOp::Cut(target(from), target(to)),
        FaultKind::Slow { nodes, latency } => FaultOp::Slow(nodes.iter().map(|n| target(n)).collect(), *latency),
        FaultKind::HealAll => FaultOp::HealAll,
    };
    (op, f.lasts)
}

/// Why a run gave no report.
#[derive(Debug)]
pub enum RunError {
    /// The trace could not be written.
    Trace(std::io::Error),
    /// The trace filter names a node or partition the run does not have.
    TraceFilter(String),
    /// The run handled its budget of events (`max_events`) before its end.
    Budget { events: u64, simulated_ms: u64 },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Trace(e) => write!(f, "cannot write the trace: {e}"),
            RunError::TraceFilter(e) => write!(f, "{e}"),
            RunError::Budget { events, simulated_ms } => write!(
                f,
                "the run used up its budget of {events} events at {} of simulated time and was stopped (raise it with --max-events)",
                Time::from_millis(*simulated_ms)
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `scenario` and returns its report.
pub fn run(scenario: &Scenario, mut opts: RunOptions) -> Result<Report, RunError> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let (nodes, info) = kafka::build(scenario.cluster(), seed);
    let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
    let network = Network::new(
        nodes.len(),
        scenario.latency,
        scenario.jitter,
        rng::stream(seed, "network"),
    );
    let mut engine: Engine<Node> = Engine::new(nodes, network);
    if let Some(sink) = opts.trace.take() {
        let partitions: Vec<String> = (0..info.partitions.len() as Pidx)
            .map(|p| info.partition_name(p))
            .collect();
        opts.trace_filter
            .check(&names, &partitions)
            .map_err(RunError::TraceFilter)?;
        let first_producer = (scenario.brokers + scenario.controllers) as usize;
        let producers: u32 = scenario.producers.iter().map(|p| p.instances).sum();
        let mut members = Vec::new();
        let mut next = first_producer + producers as usize;
        for g in &scenario.groups {
            members.push(names[next..next + g.members as usize].to_vec());
            next += g.members as usize;
        }
        let trace_names = crate::trace::Names {
            partitions,
            producers: names[first_producer..first_producer + producers as usize].to_vec(),
            groups: info.groups.clone(),
            members,
        };
        engine.set_trace(sink);
        engine.set_trace_shape(crate::trace::shape(trace_names, std::mem::take(&mut opts.trace_filter)));
    }
    if let Some(n) = opts.max_events {
        engine.set_max_events(n);
    }
    let id = |n: &str| NodeId(names.iter().position(|x| x == n).expect("validated node name") as u32);
    let target = |t: &str| -> Target<Role> {
        match RoleRef::parse(t) {
            Some(Ok(RoleRef::Leader(topic, p))) => {
                let t = info.topics.iter().find(|x| x.name == topic && !x.internal);
                Target::Role(Role::Leader(t.expect("validated topic").first + p))
            }
            Some(Ok(RoleRef::Coordinator(g))) => {
                let g = info.groups.iter().position(|x| x == g).expect("validated group");
                Target::Role(Role::Coordinator(g as u32))
            }
            None if scenario.controllers > 1 && t == crate::kafka::config::CONTROLLER => Target::Role(Role::Controller),
            _ => Target::Node(id(t)),
        }
    };
    // The scenario's faults and the nemesis's, scheduled in order: a fault's engine index
    // is its place in this list, and the drain comes right after.
    let faults = crate::scenario::nemesis::schedule(scenario, seed);
    for f in &faults {
        let (op, heal_after) = fault_op(f, &target);
        engine.schedule_fault(Time(f.at.0), op, heal_after);
    }
    engine.schedule_fault(Time(scenario.duration.0), FaultOp::Drain, None);

    // Node ids: brokers, the controller, producer instances, group members.
    let first_producer = scenario.brokers + scenario.controllers;
    let total_producers: u32 = scenario.producers.iter().map(|p| p.instances).sum();
    let mut group_first_member = Vec::new();
    let mut next = first_producer + total_producers;
    for g in &scenario.groups {
        group_first_member.push(next);
        next += g.members;
    }
    let mut c = Collector {
        info: &info,
        names: &names,
        first_producer,
        group_first_member,
        lost_write: LostWrite::default(),
        replication: Replication::new(
            (0..info.partitions.len() as Pidx)
                .map(|p| info.partition_name(p))
                .collect(),
            (0..info.partitions.len() as Pidx)
                .map(|p| {
                    let t = info.topic_of(p);
                    t.min_insync_replicas.min(t.replication_factor)
                })
                .collect(),
            (0..info.partitions.len() as Pidx)
                .map(|p| {
                    let first = info.partitions[p as usize].replicas[0];
                    broker(&engine, &info, first)
                        .log(p)
                        .expect("a replica holds a log")
                        .store()
                })
                .collect(),
        ),
        at_least_once: AtLeastOnce::new(scenario.groups.len()),
        nonmonotonic: Default::default(),
        producers: (0..total_producers).map(|_| ProducerStats::default()).collect(),
        timeline: Vec::new(),
        bursts: BTreeMap::new(),
        lifecycle: Vec::new(),
        states: MetadataImage::initial(&info).partitions,
        under_replicated: vec![(None, 0); info.partitions.len()],
        last_hw: BTreeMap::new(),
        processed: BTreeMap::new(),
        groups: scenario
            .groups
            .iter()
            .map(|g| GroupStats {
                max_poll: g.max_poll_interval,
                ..GroupStats::default()
            })
            .collect(),
        faults: &faults,
        fault_records: BTreeMap::new(),
        offline: vec![(None, 0); info.partitions.len()],
        refused: vec![(None, 0); info.partitions.len()],
        isr_fold: Vec::new(),
        registration_refused: vec![false; info.brokers as usize],
        single_controller: Default::default(),
        series: Recorder::default(),
        series_index: vec![None; info.partitions.len()],
    };
    c.replication.set_initial(&c.states);
    let user: Vec<Pidx> = info.user_partitions().collect();
    for (i, &p) in user.iter().enumerate() {
        c.series_index[p as usize] = Some(i);
    }
    c.series = Recorder::new(
        (0..total_producers)
            .map(|p| names[(first_producer + p) as usize].clone())
            .collect(),
        user.iter()
            .map(|&p| {
                let replicas = info.partitions[p as usize].replicas.clone();
                (
                    info.partition_name(p),
                    replicas,
                    series_change(Time::ZERO, &c.states[p as usize]),
                )
            })
            .collect(),
        scenario.groups.iter().map(|g| g.group.clone()).collect(),
    );

    let end = Time((scenario.duration + scenario.drain).0);
    // The engine runs in slices (for the progress bar), stopping also at every picture.
    let slices = 200u64;
    let mut stops: Vec<Time> = (1..slices).map(|i| Time(end.0 / slices * i)).collect();
    stops.push(end);
    // The series' points end at these stops.
    let points = stops.clone();
    let pictures: Vec<Time> = scenario.pictures.iter().map(|d| Time(d.0)).collect();
    stops.extend(&pictures);
    stops.sort_unstable();
    stops.dedup();
    let mut drawn = Vec::new();
    let mut lag_samples: Vec<Vec<(u64, u64)>> = vec![Vec::new(); scenario.groups.len()];
    for (i, until) in stops.into_iter().enumerate() {
        engine.run_until(until, &mut |h| match h {
            Happening::Observed { at, node, obs } => c.observe(at, node, obs),
            Happening::Fault(record) => c.fault(record),
        });
        if pictures.contains(&until) {
            drawn.push(Picture {
                at_ms: until.as_millis(),
                partitions: partition_reports(&engine, &info, &c.last_hw, &c.under_replicated, until),
                groups: group_marks(&engine, &info, scenario, &c.last_hw, &c.group_first_member),
            });
        }
        let lag_sample = i % 5 == 4 || until == end;
        let point = points.binary_search(&until).is_ok();
        if lag_sample || point {
            let marks = group_marks(&engine, &info, scenario, &c.last_hw, &c.group_first_member);
            // The groups' lag, 40 times a run: the high watermark minus the committed
            // offset, summed over the group's partitions.
            if lag_sample {
                for (g, m) in marks.iter().enumerate() {
                    lag_samples[g].push((until.as_millis(), m.lag.values().sum()));
                }
            }
            if point {
                close_point(&mut c, &engine, &info, &user, &marks, until);
            }
        }
        if let Some(progress) = opts.progress.as_mut() {
            progress(until.0, end.0);
        }
        if engine.over_budget() {
            return Err(RunError::Budget {
                events: engine.events(),
                simulated_ms: engine.now().as_millis(),
            });
        }
    }
    engine.finish_trace().map_err(RunError::Trace)?;
    for (kind, b) in std::mem::take(&mut c.bursts) {
        c.flush_burst(&kind, b);
    }
    c.timeline.sort_by_key(|e| (e.at_us, e.rank));

    let series = std::mem::take(&mut c.series).finish();
    let mut report = assemble(scenario, seed, &opts.source, &engine, &info, c);
    report.pictures = drawn;
    report.series = series;
    for (g, samples) in lag_samples.into_iter().enumerate() {
        report.consumer_groups[g].lag_over_time = samples
            .into_iter()
            .map(|(at_ms, lag)| LagSample { at_ms, lag })
            .collect();
    }
    Ok(report)
}

/// Ends the series' open point at `until`, sampling the producers' requests in flight,
/// each replica's log end and high watermark, and the groups' `marks`.
fn close_point(
    c: &mut Collector,
    engine: &Engine<Node>,
    info: &ClusterInfo,
    user: &[Pidx],
    marks: &[GroupMarks],
    until: Time,
) {
    let in_flight: Vec<u32> = (0..c.producers.len() as u32)
        .map(|p| {
            let node = NodeId(c.first_producer + p);
            match engine.node(node) {
                Node::Producer(producer) if engine.is_up(node) => producer.requests_in_flight() as u32,
                _ => 0,
            }
        })
        .collect();
    let partitions: Vec<PartitionSample> = user
        .iter()
        .map(|&p| PartitionSample {
            replicas: info.partitions[p as usize]
                .replicas
                .iter()
                .map(|&r| {
                    let leo = broker(engine, info, r).log(p).map_or(0, |l| l.end_offset());
                    (leo, replica_high_watermark(engine, info, &c.last_hw, r, p))
                })
                .collect(),
        })
        .collect();
    let groups: Vec<GroupSample> = marks
        .iter()
        .map(|m| GroupSample {
            lag: m.lag.values().sum(),
            partitions: m
                .lag
                .keys()
                .map(|name| {
                    (
                        name.clone(),
                        (m.committed.get(name).copied(), m.positions.get(name).map(|p| p.1)),
                    )
                })
                .collect(),
        })
        .collect();
    c.series.close(until.as_millis(), &in_flight, &partitions, &groups);
}
