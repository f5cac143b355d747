//! `lost-write`: a record acknowledged to its producer is missing from the partition's
//! final log. Records are identified by (producer, sequence), so a record that was lost
//! and another written at the same offset are told apart.

use crate::check::Violation;
use crate::kafka::log::RecordRange;
use crate::kafka::{Obs, Pidx};
use crate::sim::{Duration, Time};
use rangemap::RangeSet;
use std::collections::BTreeMap;

/// An acknowledgement as the check reads it back.
#[derive(Clone, Copy)]
struct Ack {
    at: Time,
    partition: Pidx,
    producer: u32,
    broker: u32,
    first_seq: u64,
    count: u32,
    base_offset: u64,
}

/// Every acknowledgement in the order it came, about five bytes each: each is coded
/// against the one before (its time) and the last of the same writer (its offset), in
/// variable-length integers, in chunks of at most `CHUNK` bytes (so that growing never
/// copies more than one chunk). Who wrote it where and who acknowledged it is an index
/// into `writers`, and its first sequence is the one after the last acknowledgement of
/// the same producer on the same partition, unless `out_of_order` says otherwise.
#[derive(Default)]
struct Acks {
    chunks: Vec<Vec<u8>>,
    len: u64,
    /// (partition, producer, acknowledging broker) of each writer.
    writers: Vec<(Pidx, u32, u32)>,
    writer_index: BTreeMap<(Pidx, u32, u32), u32>,
    /// Per writer: the base offset of its last acknowledgement.
    last_offset: Vec<u64>,
    last_at: Time,
    /// Per (partition, producer): the sequence after its last acknowledgement.
    next_seq: BTreeMap<(Pidx, u32), u64>,
    /// The first sequence of each acknowledgement that does not continue the one before.
    out_of_order: BTreeMap<u64, u64>,
}

const CHUNK: usize = 1 << 16;

/// The most bytes one acknowledgement takes: four integers of at most ten bytes.
const MAX_CODED: usize = 40;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// An offset's difference from the writer's last one, signed (a new leader may number
/// from lower), as an unsigned integer that stays small either way.
fn zigzag(from: u64, to: u64) -> u64 {
    let d = to.wrapping_sub(from) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(from: u64, z: u64) -> u64 {
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    from.wrapping_add(d as u64)
}

impl Acks {
    fn push(&mut self, ack: Ack) {
        let key = (ack.partition, ack.producer, ack.broker);
        let writer = match self.writer_index.get(&key) {
            Some(&w) => w,
            None => {
                let w = self.writers.len() as u32;
                self.writers.push(key);
                self.writer_index.insert(key, w);
                self.last_offset.push(0);
                w
            }
        };
        let next = self.next_seq.entry((ack.partition, ack.producer)).or_insert(0);
        if *next != ack.first_seq {
            self.out_of_order.insert(self.len, ack.first_seq);
        }
        *next = ack.first_seq + u64::from(ack.count);
        if self.chunks.last().is_none_or(|c| c.len() + MAX_CODED > CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let out = self.chunks.last_mut().expect("a chunk with room");
        let last_offset = &mut self.last_offset[writer as usize];
        put_varint(out, u64::from(writer));
        put_varint(out, ack.at.since(self.last_at).0);
        put_varint(out, u64::from(ack.count));
        put_varint(out, zigzag(*last_offset, ack.base_offset));
        *last_offset = ack.base_offset;
        self.last_at = ack.at;
        self.len += 1;
    }

    /// Every acknowledgement, in the order they came.
    fn iter(&self) -> impl Iterator<Item = Ack> + '_ {
        let mut next_seq: BTreeMap<(Pidx, u32), u64> = BTreeMap::new();
        let mut last_offset = vec![0u64; self.writers.len()];
        let mut at = Time::ZERO;
        let mut index = 0u64;
        self.chunks.iter().flat_map(move |chunk| {
            let mut pos = 0;
            let mut acks = Vec::new();
            while pos < chunk.len() {
                let writer = get_varint(chunk, &mut pos) as usize;
                at += Duration(get_varint(chunk, &mut pos));
                let count = get_varint(chunk, &mut pos) as u32;
                let base_offset = unzigzag(last_offset[writer], get_varint(chunk, &mut pos));
                last_offset[writer] = base_offset;
                let (partition, producer, broker) = self.writers[writer];
                let next = next_seq.entry((partition, producer)).or_insert(0);
                let first_seq = self.out_of_order.get(&index).copied().unwrap_or(*next);
                *next = first_seq + u64::from(count);
                index += 1;
                acks.push(Ack {
                    at,
                    partition,
                    producer,
                    broker,
                    first_seq,
                    count,
                    base_offset,
                });
            }
            acks
        })
    }
}

struct Loss {
    at: Time,
    broker: u32,
    partition: Pidx,
    from: u64,
    to: u64,
    /// How the records went: a power loss, or a truncation and its reason.
    how: String,
    /// `power-loss` or `truncated`.
    kind: &'static str,
}

#[derive(Default)]
pub struct LostWrite {
    acks: Acks,
    losses: Vec<Loss>,
}

/// Names for messages.
pub struct Names<'a> {
    pub partition: &'a dyn Fn(Pidx) -> String,
    pub producer: &'a dyn Fn(u32) -> String,
    pub acks: &'a dyn Fn(u32) -> &'static str,
}

impl LostWrite {
    pub fn observe(&mut self, at: Time, broker: Option<u32>, obs: &Obs) {
        match *obs {
            Obs::Acked {
                partition,
                producer,
                broker,
                first_seq,
                count,
                base_offset,
                ..
            } => {
                self.acks.push(Ack {
                    at,
                    partition,
                    producer,
                    broker,
                    first_seq,
                    count,
                    base_offset,
                });
            }
            Obs::LogLost { partition, from, to }
            | Obs::Truncated {
                partition, from, to, ..
            } => {
                let (how, kind) = match obs {
                    Obs::Truncated { why, .. } => (format!("by truncating its log ({why})"), "truncated"),
                    _ => (
                        "in a power loss (written, not yet flushed to disk)".to_string(),
                        "power-loss",
                    ),
                };
                if let Some(broker) = broker {
                    self.losses.push(Loss {
                        at,
                        broker,
                        partition,
                        from,
                        to,
                        how,
                        kind,
                    });
                }
            }
            _ => {}
        }
    }

    /// Compares every acknowledgement with `final_log(partition)`. `end` is when the run
    /// ended: the time of a loss no power loss explains.
    pub fn finish(
        &self,
        final_log: impl Fn(Pidx) -> Vec<RecordRange>,
        final_replica: impl Fn(Pidx) -> u32,
        end: Time,
        names: &Names,
    ) -> Vec<Violation> {
        let mut present: BTreeMap<(Pidx, u32), RangeSet<u64>> = BTreeMap::new();
        let mut loaded: Vec<Pidx> = Vec::new();
        let mut missing: Vec<Missing> = Vec::new();
        for ack in self.acks.iter() {
            if !loaded.contains(&ack.partition) {
                loaded.push(ack.partition);
                for r in final_log(ack.partition) {
                    present
                        .entry((ack.partition, r.producer))
                        .or_default()
                        .insert(r.first_seq..r.first_seq + u64::from(r.count));
                }
            }
            let seqs = ack.first_seq..ack.first_seq + u64::from(ack.count);
            let empty = RangeSet::new();
            let have = present.get(&(ack.partition, ack.producer)).unwrap_or(&empty);
            for gap in have.gaps(&seqs) {
                let offset = ack.base_offset + (gap.start - ack.first_seq);
                let n = gap.end - gap.start;
                // What took these offsets: a power loss or a truncation, on the replica
                // that holds the final log (it had them and dropped them) or else on the
                // broker that acknowledged them.
                let covers =
                    |l: &Loss| l.partition == ack.partition && l.at >= ack.at && l.from < offset + n && offset < l.to;
                let keeper = final_replica(ack.partition);
                let loss = self
                    .losses
                    .iter()
                    .position(|l| covers(l) && l.broker == keeper)
                    .or_else(|| self.losses.iter().rposition(|l| covers(l) && l.broker == ack.broker));
                if let Some(last) = missing.last_mut() {
                    let continues = last.partition == ack.partition
                        && last.producer == ack.producer
                        && last.seq + last.count == gap.start
                        && last.loss == loss;
                    if continues {
                        last.count += n;
                        last.last_ack = ack.at;
                        continue;
                    }
                }
                missing.push(Missing {
                    partition: ack.partition,
                    producer: ack.producer,
                    broker: ack.broker,
                    seq: gap.start,
                    offset,
                    count: n,
                    first_ack: ack.at,
                    last_ack: ack.at,
                    loss,
                });
            }
        }
        missing.into_iter().map(|m| self.violation(&m, end, names)).collect()
    }

    fn violation(&self, m: &Missing, end: Time, names: &Names) -> Violation {
        let n = m.count;
        let when = if m.first_ack == m.last_ack {
            format!("at {}", m.first_ack)
        } else {
            format!("between {} and {}", m.first_ack, m.last_ack)
        };
        let mut message = format!(
            "{}: {} record{} of {} (sequence {}, offset{} {} when written) acknowledged by broker-{} (acks={}) {when} {} missing from the final log",
            (names.partition)(m.partition),
            n,
            if n == 1 { "" } else { "s" },
            (names.producer)(m.producer),
            range_text(m.seq, n),
            if n == 1 { "" } else { "s" },
            range_text(m.offset, n),
            m.broker,
            (names.acks)(m.producer),
            if n == 1 { "is" } else { "are" },
        );
        let (at, kind) = match m.loss.map(|i| &self.losses[i]) {
            Some(l) => {
                message.push_str(&format!(
                    "; broker-{} dropped {} {} at {}, and the partition's final log does not hold them",
                    l.broker,
                    super::offsets_text(l.from, l.to),
                    l.how,
                    l.at
                ));
                (l.at, l.kind)
            }
            None => {
                message.push_str(
                    "; the broker that acknowledged them never dropped them: the final leader never had them",
                );
                (end, "never-in-final-leader")
            }
        };
        Violation { at, message, kind }
    }
}

struct Missing {
    partition: Pidx,
    producer: u32,
    broker: u32,
    seq: u64,
    offset: u64,
    count: u64,
    first_ack: Time,
    last_ack: Time,
    loss: Option<usize>,
}

fn range_text(start: u64, n: u64) -> String {
    super::span_text(start, start + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(at: u64, partition: Pidx, producer: u32, broker: u32, first_seq: u64, count: u32) -> Ack {
        Ack {
            at: Time(at),
            partition,
            producer,
            broker,
            first_seq,
            count,
            base_offset: at * 7,
        }
    }

    fn fields(a: &Ack) -> (Time, Pidx, u32, u32, u64, u32, u64) {
        (
            a.at,
            a.partition,
            a.producer,
            a.broker,
            a.first_seq,
            a.count,
            a.base_offset,
        )
    }

    #[test]
    fn acknowledgements_read_back_as_they_came_in_order_or_not() {
        let written = vec![
            ack(1, 0, 1, 1, 0, 5),
            ack(2, 1, 1, 2, 0, 3),
            ack(3, 0, 1, 1, 5, 5),
            // A retried batch acknowledged after a later one, by a new leader.
            ack(4, 0, 1, 3, 15, 5),
            ack(5, 0, 1, 3, 10, 5),
            ack(6, 0, 2, 3, 0, 1),
            ack(7, 1, 1, 2, 3, 3),
        ];
        let mut acks = Acks::default();
        for a in &written {
            acks.push(*a);
        }
        assert_eq!(
            acks.out_of_order.len(),
            2,
            "only the two out of order keep their sequence"
        );
        assert_eq!(acks.writers.len(), 4);
        let read: Vec<_> = acks.iter().map(|a| fields(&a)).collect();
        assert_eq!(read, written.iter().map(fields).collect::<Vec<_>>());
    }

    #[test]
    fn many_acknowledgements_read_back_across_chunks_whatever_their_offsets() {
        let mut written = Vec::new();
        let mut seq = [0u64; 3];
        for i in 0..40_000u64 {
            let p = (i % 3) as Pidx;
            let count = 1 + (i % 17) as u32;
            // Offsets jump back (a new leader) and forth, some far out.
            let base_offset = match i % 1000 {
                0 => u64::MAX - i,
                1 => 3,
                _ => i * 11 + u64::from(p),
            };
            written.push(Ack {
                at: Time(i * 37 + (i % 5) * 1_000_000_000),
                partition: p,
                producer: 1,
                broker: 1 + (i % 7 == 0) as u32,
                first_seq: seq[p as usize],
                count,
                base_offset,
            });
            seq[p as usize] += u64::from(count);
        }
        written.sort_by_key(|a| a.at);
        let mut acks = Acks::default();
        let mut next = [0u64; 3];
        for a in &mut written {
            // Numbered in the order they came, as one producer's are.
            a.first_seq = next[a.partition as usize];
            next[a.partition as usize] += u64::from(a.count);
            acks.push(*a);
        }
        assert!(acks.chunks.len() > 1, "more than one chunk: {}", acks.chunks.len());
        let read: Vec<_> = acks.iter().map(|a| fields(&a)).collect();
        assert_eq!(read, written.iter().map(fields).collect::<Vec<_>>());
    }
}
