//! Replica placement as Kafka does it without racks (`AdminUtils.assignReplicasToBrokers`,
//! rack-unaware form): the first replica of partition p goes to broker
//! `(p + startIndex) % n`; followers follow at a shift that grows every `n` partitions.
//! `startIndex` and the initial shift are random in Kafka; here they come from the seed.

use crate::sim::rng::SimRng;
use rand::RngExt;

/// Replica lists (broker ids) for `partitions` partitions over `brokers` (sorted ids).
pub fn assign_replicas(brokers: &[u32], partitions: u32, replication_factor: u32, rng: &mut SimRng) -> Vec<Vec<u32>> {
    let n = brokers.len();
    let start_index = rng.random_range(0..n);
    let shift = rng.random_range(0..n);
    assign_replicas_fixed(brokers, partitions, replication_factor, start_index, shift)
}

/// The same with Kafka's `fixedStartIndex` form: both the start index and the initial
/// shift given.
pub fn assign_replicas_fixed(
    brokers: &[u32],
    partitions: u32,
    replication_factor: u32,
    start_index: usize,
    initial_shift: usize,
) -> Vec<Vec<u32>> {
    let n = brokers.len();
    let mut next_replica_shift = initial_shift;
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions as usize {
        if p > 0 && p % n == 0 {
            next_replica_shift += 1;
        }
        let first = (p + start_index) % n;
        let mut replicas = vec![brokers[first]];
        for j in 0..replication_factor as usize - 1 {
            let shift = 1 + (next_replica_shift + j) % (n - 1);
            replicas.push(brokers[(first + shift) % n]);
        }
        out.push(replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AdminUtilsTest.testReplicaAssignment: brokers 0..=4, 10 partitions, RF 3, fixed
    /// start index 0 (which also fixes the shift to 0).
    #[test]
    fn kafka_admin_utils_test_vector() {
        let expected: [[u32; 3]; 10] = [
            [0, 1, 2],
            [1, 2, 3],
            [2, 3, 4],
            [3, 4, 0],
            [4, 0, 1],
            [0, 2, 3],
            [1, 3, 4],
            [2, 4, 0],
            [3, 0, 1],
            [4, 1, 2],
        ];
        let got = assign_replicas_fixed(&[0, 1, 2, 3, 4], 10, 3, 0, 0);
        for (p, replicas) in expected.iter().enumerate() {
            assert_eq!(got[p], replicas.to_vec(), "partition {p}");
        }
    }

    #[test]
    fn replicas_are_distinct_and_leaders_spread() {
        let mut rng = crate::sim::rng::stream(3, "placement");
        let got = assign_replicas(&[1, 2, 3], 6, 3, &mut rng);
        for r in &got {
            let mut s = r.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 3);
        }
        let mut leaders: Vec<u32> = got.iter().map(|r| r[0]).collect();
        leaders.sort();
        assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3]);
    }
}
