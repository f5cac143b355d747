//! A scenario file as an ordered YAML tree, for writing scenarios back out (a frozen run,
//! a shrunk reproduction): keys keep their order, small collections are written in flow
//! style (`{ at: 10s, crash: broker-2 }`) and the rest in block style, as people write
//! scenarios. serde-saphyr reads and writes the text.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_saphyr::{FlowMap, FlowSeq, FoldStr};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    /// A whole number above `i64::MAX` (a seed may be).
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// Parses YAML text (anchors and aliases are expanded).
    pub fn parse(text: &str) -> Result<Yaml, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The YAML text of this tree, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut text = serde_saphyr::to_string(&Styled(self)).expect("a YAML tree always serializes");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// A whole number, however large.
    pub fn from_u64(n: u64) -> Yaml {
        i64::try_from(n).map_or(Yaml::Uint(n), Yaml::Int)
    }

    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` in a map: in place when it is there, else at the end.
    pub fn set(&mut self, key: &str, value: Yaml) {
        if let Yaml::Map(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    /// Sets `key` in a map, placed after `after` when it is new and `after` is there.
    pub fn set_after(&mut self, key: &str, after: &str, value: Yaml) {
        if self.get(key).is_some() {
            return self.set(key, value);
        }
        if let Yaml::Map(entries) = self {
            let at = entries
                .iter()
                .position(|(k, _)| k == after)
                .map_or(entries.len(), |i| i + 1);
            entries.insert(at, (key.to_string(), value));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Yaml> {
        match self {
            Yaml::Map(entries) => {
                let i = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(i).1)
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Yaml>> {
        match self {
            Yaml::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// A duration as a scenario writes it: `10s`, `250ms`, or whole milliseconds.
    pub fn duration(&self) -> Option<crate::sim::Duration> {
        match self {
            Yaml::Int(ms) if *ms >= 0 => Some(crate::sim::Duration::from_millis(*ms as u64)),
            Yaml::Str(s) => super::schema::parse_duration(s).ok(),
            _ => None,
        }
    }

    /// A duration written back in the shortest exact unit.
    pub fn from_duration(d: crate::sim::Duration) -> Yaml {
        Yaml::Str(d.to_string())
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Yaml::Seq(_) | Yaml::Map(_))
    }

    /// A rough count of the characters this value takes in flow style.
    fn width(&self) -> usize {
        match self {
            Yaml::Null => 4,
            Yaml::Bool(_) => 5,
            Yaml::Int(i) => i.to_string().len(),
            Yaml::Uint(i) => i.to_string().len(),
            Yaml::Float(f) => f.to_string().len(),
            Yaml::Str(s) => s.len(),
            Yaml::Seq(items) => items.iter().map(|i| i.width() + 2).sum::<usize>(),
            Yaml::Map(entries) => entries.iter().map(|(k, v)| k.len() + v.width() + 4).sum::<usize>(),
        }
    }

    /// Small collections of scalars (or of small collections) go on one line.
    fn flow(&self) -> bool {
        let small = |v: &Yaml| v.is_scalar() || v.flow();
        match self {
            // A list of records (topics, faults) takes a line per record.
            Yaml::Seq(items) => items.iter().all(|i| small(i) && !matches!(i, Yaml::Map(_))) && self.width() <= 88,
            Yaml::Map(entries) => entries.iter().all(|(_, v)| small(v)) && self.width() <= 88,
            _ => false,
        }
    }
}

/// Serializes a tree, choosing flow or block style for each collection.
struct Styled<'a>(&'a Yaml);
struct Items<'a>(&'a [Yaml]);
struct Entries<'a>(&'a [(String, Yaml)]);

impl Serialize for Styled<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Yaml::Null => s.serialize_unit(),
            Yaml::Bool(b) => s.serialize_bool(*b),
            Yaml::Int(i) => s.serialize_i64(*i),
            Yaml::Uint(i) => s.serialize_u64(*i),
            Yaml::Float(f) => s.serialize_f64(*f),
            // Long text (a description) is folded over lines, as people write it; a
            // final newline (what `>` gives) does not make it a literal block.
            Yaml::Str(t) if t.len() > 80 && !t.trim_end_matches('\n').contains('\n') => FoldStr(t).serialize(s),
            Yaml::Str(t) => s.serialize_str(t),
            Yaml::Seq(items) if self.0.flow() => FlowSeq(Items(items)).serialize(s),
            Yaml::Seq(items) => Items(items).serialize(s),
            Yaml::Map(entries) if self.0.flow() => FlowMap(Entries(entries)).serialize(s),
            Yaml::Map(entries) => Entries(entries).serialize(s),
        }
    }
}

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&Styled(item))?;
        }
        seq.end()
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Styled(v))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Yaml, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Yaml;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
                Ok(Yaml::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
                Ok(Yaml::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
                Ok(Yaml::from_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
                Ok(Yaml::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
                Ok(Yaml::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Yaml::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Yaml>()? {
                    let key = match key {
                        Yaml::Str(s) => s,
                        Yaml::Int(i) => i.to_string(),
                        Yaml::Uint(i) => i.to_string(),
                        Yaml::Bool(b) => b.to_string(),
                        _ => return Err(de::Error::custom("a key must be a word or a number")),
                    };
                    entries.push((key, map.next_value()?));
                }
                Ok(Yaml::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_reads_back_the_same_and_small_things_stay_on_one_line() {
        let text = "name: t\ndescription: >\n  A long description that goes on and on, well past the width of one line of a terminal.\nduration: 10s\ncluster:\n  brokers: 3\n  network: { latency: 1ms }\ntopics:\n  - name: orders\n    partitions: 2\n    replication.factor: 2\n    replicas: [[1, 2], [2, 3]]\n    config: { min.insync.replicas: 2, flush.messages: 1 }\nfaults:\n  - { at: 1s, partition: [[broker-1], [broker-2, broker-3]], for: 500ms }\n  - { at: 2s, crash: \"leader(orders-0)\" }\n  - { at: 3s, slow: { nodes: [broker-1], latency: 50ms } }\n";
        let tree = Yaml::parse(text).unwrap();
        let out = tree.to_text();
        assert_eq!(Yaml::parse(&out).unwrap(), tree, "{out}");
        assert!(out.contains("config: {"), "{out}");
        assert!(
            out.contains("- {at: 1s, partition: [[broker-1], [broker-2, broker-3]], for: 500ms}"),
            "{out}"
        );
        assert!(out.contains("replicas: [["), "{out}");
        // The frozen text is a scenario kafkasim reads.
        crate::scenario::parse("out.yaml", &out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    }

    #[test]
    fn values_that_look_like_other_types_keep_their_type() {
        let tree = Yaml::Map(vec![
            ("a".into(), Yaml::Str("true".into())),
            ("b".into(), Yaml::Str("1".into())),
            ("c".into(), Yaml::Str("x: y".into())),
            ("d".into(), Yaml::Float(1.5)),
            ("e".into(), Yaml::Seq(vec![Yaml::Str("-1".into()), Yaml::Null])),
        ]);
        assert_eq!(Yaml::parse(&tree.to_text()).unwrap(), tree, "{}", tree.to_text());
    }
}
