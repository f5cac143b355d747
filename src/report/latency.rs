//! Produce latencies for the report's percentiles: kept exactly while they are few, and as
//! a histogram once they are many, so memory stays bounded however long the run.

use hdrhistogram::Histogram;

/// Latencies kept exactly, at most, before they go into the histogram (16 bytes each).
const EXACT_LIMIT: usize = 32_768;

/// Weighted latencies in microseconds. Up to [`EXACT_LIMIT`] of them are kept as they
/// are, and the percentiles are exact. Beyond, they go into a histogram of three
/// significant digits: exact below 2,048 µs and within 0.05% above.
#[derive(Clone, Default)]
pub struct Latencies {
    /// (latency, weight), while there are few.
    exact: Vec<(u64, u64)>,
    histogram: Option<Histogram<u64>>,
}

impl Latencies {
    /// `weight` records took `us` microseconds.
    pub fn record(&mut self, us: u64, weight: u64) {
        match &mut self.histogram {
            Some(h) => record(h, us, weight),
            None if self.exact.len() < EXACT_LIMIT => self.exact.push((us, weight)),
            None => {
                let h = self.histogram();
                record(h, us, weight);
            }
        }
    }

    /// Moves the exact latencies into a new histogram.
    fn histogram(&mut self) -> &mut Histogram<u64> {
        let exact = std::mem::take(&mut self.exact);
        self.histogram.get_or_insert_with(|| {
            let mut h = Histogram::new(3).expect("three significant digits are supported");
            for (us, weight) in exact {
                record(&mut h, us, weight);
            }
            h
        })
    }

    /// Adds every latency of `other`. The sum goes into the histogram once it holds
    /// more than [`EXACT_LIMIT`] latencies, even if each part is exact.
    pub fn add(&mut self, other: &Latencies) {
        let few = self.exact.len() + other.exact.len() <= EXACT_LIMIT;
        if self.histogram.is_none() && other.histogram.is_none() && few {
            return self.exact.extend_from_slice(&other.exact);
        }
        let h = self.histogram();
        match &other.histogram {
            Some(o) => h.add(o).expect("an auto-resizing histogram takes any value"),
            None => other.exact.iter().for_each(|&(us, weight)| record(h, us, weight)),
        }
    }

    /// Whether no latency was recorded.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.histogram.as_ref().is_none_or(|h| h.is_empty())
    }

    /// The nearest-rank percentile: the smallest latency at or below which at least
    /// `q_per_mille`/1000 of the weight lies (0 when there is none). From the histogram,
    /// the middle of that latency's bucket.
    pub fn percentile(&self, q_per_mille: u64) -> u64 {
        match &self.histogram {
            None => {
                let mut sorted = self.exact.clone();
                sorted.sort_unstable();
                let total = sorted.iter().map(|l| l.1).sum();
                nearest_rank(sorted.into_iter(), total, q_per_mille)
            }
            Some(h) => nearest_rank(
                h.iter_recorded()
                    .map(|v| (h.median_equivalent(v.value_iterated_to()), v.count_at_value())),
                h.len(),
                q_per_mille,
            ),
        }
    }
}

/// The first of `values` (latency, weight), in increasing latency, at which the weight
/// seen reaches `q_per_mille`/1000 of `total`; 0 when there is none.
fn nearest_rank(values: impl Iterator<Item = (u64, u64)>, total: u64, q_per_mille: u64) -> u64 {
    let rank = (total * q_per_mille).div_ceil(1000).max(1);
    let mut seen = 0;
    for (us, weight) in values {
        seen += weight;
        if seen >= rank {
            return us;
        }
    }
    0
}

/// Auto-resizing: only a value beyond what 64 bits can bucket is refused, and a latency
/// is at most a run's length.
fn record(h: &mut Histogram<u64>, us: u64, weight: u64) {
    if h.record_n(us, weight).is_err() {
        h.saturating_record_n(us, weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_latencies_are_exact_and_ranks_are_weighted() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(500), 0);
        l.record(1_500_003, 1);
        l.record(100, 3);
        assert_eq!(l.percentile(500), 100, "three of four records took 100 µs");
        assert_eq!(l.percentile(750), 100);
        assert_eq!(l.percentile(760), 1_500_003);
        assert_eq!(l.percentile(990), 1_500_003);
    }

    #[test]
    fn many_latencies_go_into_a_histogram_within_a_two_thousandth() {
        let (mut a, mut b) = (Latencies::default(), Latencies::default());
        for i in 0..EXACT_LIMIT as u64 {
            a.record(1_000 + i % 1_000, 1);
        }
        assert!(a.histogram.is_none());
        b.record(9_876_543, 3 * EXACT_LIMIT as u64);
        b.record(123_456, 1);
        assert!(b.histogram.is_none());
        let mut all = Latencies::default();
        all.add(&a);
        all.add(&b);
        assert!(all.histogram.is_some(), "the two together are too many to keep");
        assert!(all.exact.is_empty());
        // A quarter of the weight lies in 1,000..2,000 µs (exact there), the rest at
        // 9,876,543 µs.
        // Rank 26,215 of 131,073: values 1,000..1,767 come 33 times each (25,344 in
        // all), then 32 times each, so the 871 more end at 1,767 + 28.
        assert_eq!(all.percentile(200), 1_795);
        let p50 = all.percentile(500);
        assert!(p50.abs_diff(9_876_543) * 2_000 <= 9_876_543, "{p50}");
        a.record(5, 1);
        assert!(a.histogram.is_some());
        assert_eq!(a.percentile(0), 5, "the least latency, exact below 2,048 µs");
    }
}
