//! Kafka's keyed partitioner, bit-exact with the Java producer (KAFKA.md §3.1):
//! `toPositive(murmur2(serializedKey)) % numPartitions`, plus the Java `String.hashCode`
//! that places consumer groups on `__consumer_offsets`.

/// `org.apache.kafka.common.utils.Utils.murmur2`: Java `int` arithmetic (wrapping), `>>>`
/// as a logical shift, little-endian 4-byte words, the fall-through tail.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// `Utils.toPositive`: clears the sign bit (not `Math.abs`).
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// The partition of a record with non-null serialized key `key` (`BuiltInPartitioner.partitionForKey`).
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    to_positive(murmur2(key)) % partitions
}

/// How a key is serialized before hashing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyType {
    /// `StringSerializer`: UTF-8 bytes.
    String,
    /// `IntegerSerializer`: 4 bytes, big-endian.
    Int,
    /// `LongSerializer`: 8 bytes, big-endian.
    Long,
}

/// Serializes `key` as Kafka's serializer for `kind` would, or says why it cannot.
pub fn serialize_key(key: &str, kind: KeyType) -> Result<Vec<u8>, String> {
    match kind {
        KeyType::String => Ok(key.as_bytes().to_vec()),
        KeyType::Int => key
            .trim()
            .parse::<i32>()
            .map(|v| v.to_be_bytes().to_vec())
            .map_err(|_| format!("`{key}` is not a 32-bit integer")),
        KeyType::Long => key
            .trim()
            .parse::<i64>()
            .map(|v| v.to_be_bytes().to_vec())
            .map_err(|_| format!("`{key}` is not a 64-bit integer")),
    }
}

/// Java's `String.hashCode` over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of a group: `Utils.abs(groupId.hashCode) % n`
/// (`GroupMetadataManager.partitionFor`; `Utils.abs(Integer.MIN_VALUE)` is 0).
pub fn offsets_partition_for(group: &str, partitions: u32) -> u32 {
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn kafka_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input), expected, "{:?}", std::str::from_utf8(input));
        }
    }

    /// librdkafka's `java_murmur2_results` (src/rdmurmur2.c), as unsigned 32-bit values.
    #[test]
    fn librdkafka_test_vectors() {
        let cases: [(&str, u32); 10] = [
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
            ("reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
            ("eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4_e09e),
            ("", 0x106e_08d9),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()) as u32, expected, "{input:?}");
        }
    }

    /// Partitions derived by hand from the vectors above: "kafka" hashes to 0xd067cf64;
    /// clearing the sign bit gives 0x5067cf64 = 1348980580, and 1348980580 % 3 = 1
    /// (1+3+4+8+9+8+0+5+8+0 = 46, 46 % 3 = 1), % 10 = 0.
    #[test]
    fn partition_for_key_clears_the_sign_bit() {
        assert_eq!(to_positive(murmur2(b"kafka")), 0x5067_cf64);
        assert_eq!(partition_for_key(b"kafka", 3), 1);
        assert_eq!(partition_for_key(b"kafka", 10), 0);
        // "" hashes to 275646681 (positive): 275646681 % 7 = 275646681 - 7*39378097 = 2.
        assert_eq!(partition_for_key(b"", 7), 2);
    }

    #[test]
    fn serializers_are_big_endian() {
        assert_eq!(serialize_key("1", KeyType::Int).unwrap(), vec![0, 0, 0, 1]);
        assert_eq!(serialize_key("-1", KeyType::Long).unwrap(), vec![0xff; 8]);
        assert!(serialize_key("x", KeyType::Int).is_err());
    }

    /// KAFKA.md §4.1 vectors for 50 offsets partitions.
    #[test]
    fn group_coordinator_partition() {
        assert_eq!(offsets_partition_for("test", 50), 48);
        assert_eq!(offsets_partition_for("my-group", 50), 12);
        assert_eq!(offsets_partition_for("group", 50), 47);
        assert_eq!(offsets_partition_for("test-group", 50), 12);
        assert_eq!(offsets_partition_for("g1", 50), 42);
    }
}
