//! The run over time, in a fixed number of points: what the text report's one-line
//! charts, the HTML report's charts and swimlanes and the JSON report's `series` show.
//!
//! Observations are counted into the point they fall in; states (log ends, high
//! watermarks, lag, requests in flight) are sampled at each point's end. Changes of
//! leadership, ISR and broker state are kept as they happen: they come with faults, not
//! with batches. Nothing here grows with records or batches.

use crate::report::latency::Latencies;
use serde::Serialize;
use std::collections::BTreeMap;

/// Points per run.
pub const POINTS: usize = 200;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Each point's end in simulated milliseconds: point `i` covers the time after
    /// `at_ms[i - 1]` (or zero) up to and including `at_ms[i]`.
    pub at_ms: Vec<u64>,
    pub producers: Vec<ProducerSeries>,
    pub partitions: Vec<PartitionSeries>,
    pub groups: Vec<GroupSeries>,
    /// Brokers going down and up (faults) and fenced and unfenced (the controller), in
    /// time order.
    pub brokers: Vec<BrokerEvent>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProducerSeries {
    pub name: String,
    /// Records acknowledged in each point.
    pub acked: Vec<u64>,
    /// Records given up in each point (`failed` and `refused` in the producer's figures).
    pub failed: Vec<u64>,
    /// Error responses in each point, by Kafka error name (per batch, retried or not).
    pub errors: BTreeMap<String, Vec<u64>>,
    /// Produce requests in flight at each point's end.
    pub in_flight: Vec<u32>,
    /// The median and 99th percentile latency of the records acknowledged in each point
    /// (none when none was).
    pub latency_p50_ms: Vec<Option<f64>>,
    pub latency_p99_ms: Vec<Option<f64>>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionSeries {
    pub name: String,
    pub replicas: Vec<u32>,
    /// The smallest ISR during each point.
    pub isr_min: Vec<u32>,
    /// Per replica (broker id): its log end offset and high watermark at each point's end.
    pub log_end_offsets: BTreeMap<String, Vec<u64>>,
    pub high_watermarks: BTreeMap<String, Vec<u64>>,
    /// The state at the start, then every change of leader or ISR the controller made.
    pub changes: Vec<PartitionChange>,
    pub truncations: Vec<Truncation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionChange {
    pub at_us: u64,
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub isr: Vec<u32>,
    /// Eligible leader replicas (KIP-966); left out of the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elr: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Truncation {
    pub at_us: u64,
    pub broker: u32,
    /// The offsets `from..to` dropped.
    pub from: u64,
    pub to: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokerEvent {
    pub at_us: u64,
    pub broker: u32,
    /// `down` (a crash, power loss or stop), `up` (a restart), `fenced`, `unfenced`.
    pub event: &'static str,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GroupSeries {
    pub group: String,
    /// The high watermark minus the committed offset, summed over the group's
    /// partitions, at each point's end.
    pub lag: Vec<u64>,
    /// Per partition: the committed offset, and the position of the member that owns it,
    /// at each point's end.
    pub committed: BTreeMap<String, Vec<Option<u64>>>,
    pub positions: BTreeMap<String, Vec<Option<u64>>>,
}

/// A partition's state at one point's end, as the run samples it.
pub struct PartitionSample {
    /// Per replica, in the order of [`PartitionSeries::replicas`]: (log end, high watermark).
    pub replicas: Vec<(u64, u64)>,
}

/// A group's state at one point's end.
pub struct GroupSample {
    pub lag: u64,
    /// Per partition name: committed offset and owner's position.
    pub partitions: BTreeMap<String, (Option<u64>, Option<u64>)>,
}

/// Builds a [`Series`] as the run goes: observations go into the open point, and
/// [`Recorder::close`] ends it with the sampled states.
#[derive(Default)]
pub struct Recorder {
    series: Series,
    /// The open point.
    point: usize,
    /// Per producer: latencies of the records acknowledged in the open point.
    latencies: Vec<Latencies>,
    /// Per partition: its ISR size now.
    isr_now: Vec<u32>,
}

impl Recorder {
    /// A recorder for these producers, partitions (name, replicas, initial state) and groups.
    pub fn new(
        producers: Vec<String>,
        partitions: Vec<(String, Vec<u32>, PartitionChange)>,
        groups: Vec<String>,
    ) -> Recorder {
        let isr_now = partitions.iter().map(|(_, _, s)| s.isr.len() as u32).collect();
        let mut recorder = Recorder {
            latencies: vec![Latencies::default(); producers.len()],
            isr_now,
            point: 0,
            series: Series {
                at_ms: Vec::with_capacity(POINTS),
                producers: producers
                    .into_iter()
                    .map(|name| ProducerSeries {
                        name,
                        acked: vec![0; POINTS],
                        failed: vec![0; POINTS],
                        ..ProducerSeries::default()
                    })
                    .collect(),
                partitions: partitions
                    .into_iter()
                    .map(|(name, replicas, initial)| PartitionSeries {
                        name,
                        isr_min: Vec::with_capacity(POINTS),
                        log_end_offsets: replicas.iter().map(|r| (r.to_string(), Vec::new())).collect(),
                        high_watermarks: replicas.iter().map(|r| (r.to_string(), Vec::new())).collect(),
                        replicas,
                        changes: vec![initial],
                        truncations: Vec::new(),
                    })
                    .collect(),
                groups: groups
                    .into_iter()
                    .map(|group| GroupSeries {
                        group,
                        ..GroupSeries::default()
                    })
                    .collect(),
                brokers: Vec::new(),
            },
        };
        recorder.open();
        recorder
    }

    /// The open point, or the last one once all are closed (observations after the last
    /// stop of the run cannot happen, but are kept rather than lost).
    fn at(&self) -> usize {
        self.point.min(POINTS - 1)
    }

    pub fn acked(&mut self, producer: usize, records: u64, latency_us: u64) {
        let i = self.at();
        self.series.producers[producer].acked[i] += records;
        self.latencies[producer].record(latency_us, records);
    }

    pub fn failed(&mut self, producer: usize, records: u64) {
        let i = self.at();
        self.series.producers[producer].failed[i] += records;
    }

    pub fn error(&mut self, producer: usize, name: &str) {
        let i = self.at();
        let errors = &mut self.series.producers[producer].errors;
        if !errors.contains_key(name) {
            errors.insert(name.to_string(), vec![0; POINTS]);
        }
        errors.get_mut(name).expect("inserted")[i] += 1;
    }

    /// Index `partition` among the recorder's partitions.
    pub fn partition_changed(&mut self, partition: usize, change: PartitionChange) {
        let size = change.isr.len() as u32;
        self.isr_now[partition] = size;
        let p = &mut self.series.partitions[partition];
        // The smallest ISR of the open point, once that point has begun.
        if p.isr_min.len() == self.point + 1 {
            let last = p.isr_min.last_mut().expect("open");
            *last = (*last).min(size);
        }
        p.changes.push(change);
    }

    pub fn truncated(&mut self, partition: usize, truncation: Truncation) {
        self.series.partitions[partition].truncations.push(truncation);
    }

    pub fn broker(&mut self, event: BrokerEvent) {
        self.series.brokers.push(event);
    }

    /// Starts the open point's ISR minimum at the ISR it begins with.
    fn open(&mut self) {
        for (p, size) in self.series.partitions.iter_mut().zip(&self.isr_now) {
            if p.isr_min.len() == self.point {
                p.isr_min.push(*size);
            }
        }
    }

    /// Closes the open point at `at_ms` with the states sampled there: per producer its
    /// requests in flight, per partition and group their samples.
    pub fn close(&mut self, at_ms: u64, in_flight: &[u32], partitions: &[PartitionSample], groups: &[GroupSample]) {
        if self.point >= POINTS {
            return;
        }
        self.open();
        self.series.at_ms.push(at_ms);
        for ((s, l), n) in self.series.producers.iter_mut().zip(&mut self.latencies).zip(in_flight) {
            s.in_flight.push(*n);
            let (p50, p99) = if l.is_empty() {
                (None, None)
            } else {
                (Some(ms(l.percentile(500))), Some(ms(l.percentile(990))))
            };
            s.latency_p50_ms.push(p50);
            s.latency_p99_ms.push(p99);
            *l = Latencies::default();
        }
        for (s, sample) in self.series.partitions.iter_mut().zip(partitions) {
            for (r, (leo, hw)) in s.replicas.iter().zip(&sample.replicas) {
                let key = r.to_string();
                s.log_end_offsets.get_mut(&key).expect("a replica's series").push(*leo);
                s.high_watermarks.get_mut(&key).expect("a replica's series").push(*hw);
            }
        }
        for (s, sample) in self.series.groups.iter_mut().zip(groups) {
            s.lag.push(sample.lag);
            for (name, (committed, position)) in &sample.partitions {
                s.committed.entry(name.clone()).or_default().push(*committed);
                s.positions.entry(name.clone()).or_default().push(*position);
            }
        }
        self.point += 1;
        if self.point < POINTS {
            self.open();
        }
    }

    /// The series of the closed points.
    pub fn finish(mut self) -> Series {
        let closed = self.series.at_ms.len();
        for p in &mut self.series.partitions {
            p.isr_min.truncate(closed);
        }
        self.series
    }
}

fn ms(us: u64) -> f64 {
    (us as f64 / 100.0).round() / 10.0
}

/// Unicode block characters for one-line charts, lowest first; zero is a blank.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Folds `values` into `width` columns with `fold` (sum for counts, min or max for
/// levels) and draws each as a block scaled to `top` (zero is a blank, anything above
/// zero at least the lowest block). Returns the line and the largest column.
pub fn sparkline(values: &[u64], width: usize, fold: Fold, top: Option<u64>) -> (String, u64) {
    let columns = fold_columns(values, width, fold);
    let max = columns.iter().copied().max().unwrap_or(0);
    let top = top.unwrap_or(max).max(1);
    let line = columns
        .iter()
        .map(|&v| {
            if v == 0 {
                ' '
            } else {
                let level = ((v * BLOCKS.len() as u64).div_ceil(top)).clamp(1, BLOCKS.len() as u64);
                BLOCKS[level as usize - 1]
            }
        })
        .collect();
    (line, max)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fold {
    Sum,
    Min,
    Max,
}

/// Folds `values` into `width` columns: column `c` takes the values whose index `i`
/// has `i * width / len == c`.
pub fn fold_columns(values: &[u64], width: usize, fold: Fold) -> Vec<u64> {
    let width = width.min(values.len()).max(1);
    let mut columns: Vec<Option<u64>> = vec![None; width];
    for (i, &v) in values.iter().enumerate() {
        let c = &mut columns[i * width / values.len()];
        *c = Some(match (*c, fold) {
            (None, _) => v,
            (Some(a), Fold::Sum) => a + v,
            (Some(a), Fold::Min) => a.min(v),
            (Some(a), Fold::Max) => a.max(v),
        });
    }
    columns.into_iter().map(Option::unwrap_or_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fold_by_sum_min_and_max() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(fold_columns(&v, 4, Fold::Sum), vec![3, 7, 11, 15]);
        assert_eq!(fold_columns(&v, 4, Fold::Min), vec![1, 3, 5, 7]);
        assert_eq!(fold_columns(&v, 2, Fold::Max), vec![4, 8]);
        // Narrower than asked when there are fewer values than columns.
        assert_eq!(fold_columns(&v[..3], 10, Fold::Sum), vec![1, 2, 3]);
    }

    #[test]
    fn a_sparkline_scales_to_its_top_and_leaves_zero_blank() {
        let (line, max) = sparkline(&[0, 1, 4, 8], 4, Fold::Sum, None);
        assert_eq!(line, " ▁▄█");
        assert_eq!(max, 8);
        // A fixed top: a full ISR of 3 is the full block, 2 of 3 is two thirds.
        let (line, _) = sparkline(&[3, 2, 1, 3], 4, Fold::Min, Some(3));
        assert_eq!(line, "█▆▃█");
    }

    #[test]
    fn a_point_keeps_the_smallest_isr_it_saw_and_the_next_begins_with_the_last() {
        let initial = PartitionChange {
            at_us: 0,
            leader: Some(1),
            leader_epoch: 0,
            isr: vec![1, 2, 3],
            elr: vec![],
        };
        let mut r = Recorder::new(vec![], vec![("t-0".into(), vec![1, 2, 3], initial)], vec![]);
        let change = |isr: Vec<u32>| PartitionChange {
            at_us: 1,
            leader: Some(1),
            leader_epoch: 0,
            isr,
            elr: vec![],
        };
        let sample = || PartitionSample {
            replicas: vec![(0, 0); 3],
        };
        r.partition_changed(0, change(vec![1, 2]));
        r.partition_changed(0, change(vec![1, 2, 3]));
        r.close(1, &[], &[sample()], &[]);
        r.partition_changed(0, change(vec![1]));
        r.close(2, &[], &[sample()], &[]);
        r.close(3, &[], &[sample()], &[]);
        let s = r.finish();
        assert_eq!(s.partitions[0].isr_min, vec![2, 1, 1]);
        assert_eq!(s.partitions[0].changes.len(), 4);
        assert_eq!(s.at_ms, vec![1, 2, 3]);
    }
}
