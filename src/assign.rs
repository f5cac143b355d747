//! The `kafkasim assign` format: a group described in JSON (metadata, members, strategy) in,
//! the assignment Kafka's assignor would make out, one JSON line. Parsing errors carry the
//! file's line and column; the assignors themselves live in `kafka::assignor`.

use crate::kafka::assignor::{self, Assignor, DEFAULT_STRATEGIES, Member, Outcome, Strategy, TopicPartition};
use crate::scenario::{InputError, did_you_mean};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The input file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    /// The strategy every member uses, unless members list their own.
    #[serde(default)]
    strategy: Option<StrategyName>,
    /// Partition counts of the cluster's topics.
    topics: Topics,
    /// In the order they joined (the order of the leader's JoinGroup response).
    members: Vec<MemberEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberEntry {
    id: String,
    topics: Vec<String>,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    owned: Vec<Owned>,
    #[serde(default = "no_generation")]
    generation: i32,
    /// `partition.assignment.strategy`, in preference order; the coordinator votes.
    #[serde(default)]
    strategies: Option<Vec<StrategyName>>,
}

fn no_generation() -> i32 {
    -1
}

struct StrategyName(Strategy);

impl<'de> Deserialize<'de> for StrategyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Strategy::parse(&text).map(StrategyName).ok_or_else(|| {
            let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
            de::Error::custom(format!(
                "unknown strategy `{text}`{} (known: {}, or their class names)",
                did_you_mean(&text, Strategy::spellings()),
                names.join(", ")
            ))
        })
    }
}

struct Owned(TopicPartition);

impl<'de> Deserialize<'de> for Owned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TopicPartition::parse(&text).map(Owned).ok_or_else(|| {
            de::Error::custom(format!(
                "`{text}` is not a partition: write TOPIC-PARTITION, such as `orders-0`"
            ))
        })
    }
}

/// `{"topic": partitions}`, each topic once, each with at least one partition.
struct Topics(BTreeMap<String, u32>);

impl<'de> Deserialize<'de> for Topics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TopicsVisitor;
        impl<'de> Visitor<'de> for TopicsVisitor {
            type Value = Topics;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of topic names to partition counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Topics, A::Error> {
                let mut topics = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let count: u32 = map.next_value()?;
                    if count == 0 || count > i32::MAX as u32 {
                        return Err(de::Error::custom(format!(
                            "topic `{name}` needs between 1 and {} partitions",
                            i32::MAX
                        )));
                    }
                    if topics.insert(name.clone(), count).is_some() {
                        return Err(de::Error::custom(format!("topic `{name}` appears twice")));
                    }
                }
                Ok(Topics(topics))
            }
        }
        d.deserialize_map(TopicsVisitor)
    }
}

/// Runs the assignor a group file describes and returns the output line (with its newline).
/// `file` names the input in errors.
pub fn run(file: &str, text: &str) -> Result<String, InputError> {
    let group: GroupFile = serde_json::from_str(text).map_err(|e| json_error(file, &e))?;
    let whole = |message: String| InputError::new(file, 0, 0, message);
    let (strategy, voted, Resolved { topics, members }) = resolve(group).map_err(whole)?;
    let outcome = Assignor::new(strategy).assign(&topics, &members).map_err(whole)?;
    Ok(render(strategy, voted, &outcome))
}

fn json_error(file: &str, e: &serde_json::Error) -> InputError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    InputError::new(file, e.line() as u64, e.column() as u64, message)
}

struct Resolved {
    topics: BTreeMap<String, u32>,
    members: Vec<Member>,
}

/// Checks the group and picks the strategy: the top-level one, or the coordinator's vote
/// when any member lists its own (members without a list use the top-level strategy, or
/// Kafka's default list when there is none).
fn resolve(group: GroupFile) -> Result<(Strategy, bool, Resolved), String> {
    let topics = group.topics.0;
    if group.members.is_empty() {
        return Err("`members` is empty: a group needs at least one member".to_string());
    }
    let mut ids = BTreeSet::new();
    let mut instances = BTreeSet::new();
    for m in &group.members {
        if !ids.insert(m.id.as_str()) {
            return Err(format!("member id `{}` appears twice", m.id));
        }
        if let Some(i) = &m.instance
            && !instances.insert(i.as_str())
        {
            return Err(format!("instance id `{i}` appears twice"));
        }
        let mut subscribed = BTreeSet::new();
        for t in &m.topics {
            if !topics.contains_key(t) {
                return Err(format!(
                    "member `{}` subscribes to unknown topic `{t}`{}",
                    m.id,
                    did_you_mean(t, topics.keys().map(String::as_str))
                ));
            }
            if !subscribed.insert(t.as_str()) {
                return Err(format!("member `{}` lists topic `{t}` twice", m.id));
            }
        }
        let mut owned = BTreeSet::new();
        for Owned(tp) in &m.owned {
            match topics.get(&tp.topic) {
                None => {
                    return Err(format!(
                        "member `{}` owns `{tp}` of unknown topic `{}`{}",
                        m.id,
                        tp.topic,
                        did_you_mean(&tp.topic, topics.keys().map(String::as_str))
                    ));
                }
                Some(&n) if tp.partition >= n => {
                    return Err(format!(
                        "member `{}` owns `{tp}`, which does not exist: `{}` has {n} partition{}",
                        m.id,
                        tp.topic,
                        if n == 1 { "" } else { "s" }
                    ));
                }
                Some(_) => {}
            }
            if !owned.insert(tp) {
                return Err(format!("member `{}` owns `{tp}` twice", m.id));
            }
        }
        if let Some(list) = &m.strategies {
            let distinct: BTreeSet<Strategy> = list.iter().map(|s| s.0).collect();
            if distinct.len() != list.len() {
                return Err(format!("member `{}` lists a strategy twice", m.id));
            }
            if list.is_empty() {
                return Err(format!("member `{}` lists no strategy", m.id));
            }
        }
    }
    let vote = group.strategy.is_none() || group.members.iter().any(|m| m.strategies.is_some());
    let strategy = if vote {
        let fallback: Vec<Strategy> = match &group.strategy {
            Some(s) => vec![s.0],
            None => DEFAULT_STRATEGIES.to_vec(),
        };
        let lists: Vec<Vec<Strategy>> = group
            .members
            .iter()
            .map(|m| match &m.strategies {
                Some(l) => l.iter().map(|s| s.0).collect(),
                None => fallback.clone(),
            })
            .collect();
        let ballots: Vec<(&str, &[Strategy])> = group
            .members
            .iter()
            .zip(&lists)
            .map(|(m, l)| (m.id.as_str(), l.as_slice()))
            .collect();
        assignor::select_protocol(&ballots)?
    } else {
        group.strategy.as_ref().map(|s| s.0).unwrap_or(Strategy::Range)
    };
    let members = group
        .members
        .into_iter()
        .map(|m| Member {
            id: m.id,
            instance: m.instance,
            topics: m.topics,
            owned: m.owned.into_iter().map(|o| o.0).collect(),
            generation: m.generation,
        })
        .collect();
    Ok((strategy, vote, Resolved { topics, members }))
}

/// A map serialized in the order given.
struct Ordered<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[derive(Serialize)]
struct Output {
    assignment: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transferring: Option<Ordered<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<BTreeMap<String, Vec<String>>>,
}

fn render(strategy: Strategy, voted: bool, outcome: &Outcome) -> String {
    let names = |l: &[TopicPartition]| l.iter().map(|tp| tp.to_string()).collect::<Vec<_>>();
    let mut transferring: Vec<(&TopicPartition, &String)> = outcome.transferring.iter().collect();
    transferring.sort_by(|a, b| assignor::java_cmp(&a.0.topic, &b.0.topic).then(a.0.partition.cmp(&b.0.partition)));
    let output = Output {
        assignment: outcome.assignment.iter().map(|(m, l)| (m.clone(), names(l))).collect(),
        protocol: voted.then(|| strategy.name()),
        transferring: (strategy == Strategy::CooperativeSticky).then(|| {
            Ordered(
                transferring
                    .into_iter()
                    .map(|(tp, m)| (tp.to_string(), m.clone()))
                    .collect(),
            )
        }),
        revoked: matches!(strategy, Strategy::Sticky | Strategy::CooperativeSticky)
            .then(|| outcome.revoked.iter().map(|(m, l)| (m.clone(), names(l))).collect()),
    };
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    output.serialize(&mut ser).expect("plain data serializes");
    let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

/// One line, a space after every `:` and `,`: `{"assignment": {"c1": ["t1-0", "t1-1"]}}`.
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        run("g.json", text).unwrap_err().to_string()
    }

    #[test]
    fn the_design_example() {
        let text = r#"{"strategy": "range", "topics": {"t1": 3}, "members": [{"id": "c1", "topics": ["t1"], "instance": null, "owned": [], "generation": -1}]}"#;
        assert_eq!(
            run("g.json", text).unwrap(),
            "{\"assignment\": {\"c1\": [\"t1-0\", \"t1-1\", \"t1-2\"]}}\n"
        );
    }

    #[test]
    fn votes_when_members_list_strategies() {
        let text = r#"{"topics": {"t": 2}, "members": [
            {"id": "a", "topics": ["t"], "strategies": ["cooperative-sticky", "range"]},
            {"id": "b", "topics": ["t"], "strategies": ["org.apache.kafka.clients.consumer.CooperativeStickyAssignor"]}]}"#;
        assert_eq!(
            run("g.json", text).unwrap(),
            "{\"assignment\": {\"a\": [\"t-0\"], \"b\": [\"t-1\"]}, \"protocol\": \"cooperative-sticky\", \
             \"transferring\": {}, \"revoked\": {}}\n"
        );
        // Kafka's default list everywhere: range.
        let text = r#"{"topics": {"t": 2}, "members": [{"id": "a", "topics": ["t"]}]}"#;
        assert!(run("g.json", text).unwrap().contains("\"protocol\": \"range\""));
    }

    #[test]
    fn bad_input_names_the_place() {
        assert_eq!(
            err("{\"strategy\": \"rnage\", \"topics\": {}, \"members\": []}"),
            "g.json:1:20: unknown strategy `rnage`; did you mean `range`? (known: range, roundrobin, sticky, \
             cooperative-sticky, or their class names)"
        );
        assert!(
            err("{\"topics\": {\"t\": 1},\n \"members\": [{\"id\": \"a\", \"topic\": []}]}").starts_with("g.json:2:")
        );
        assert!(err("{\"topics\": {\"t\": 0}, \"members\": []}").contains("between 1 and"));
        assert!(err("{\"topics\": {\"t\": 1, \"t\": 2}, \"members\": []}").contains("appears twice"));
        assert!(
            err(r#"{"topics": {"t": 1}, "members": [{"id": "a", "topics": ["t"], "owned": ["t"]}]}"#)
                .contains("is not a partition")
        );
    }

    #[test]
    fn bad_groups_name_the_member() {
        let group =
            |members: &str| format!(r#"{{"strategy": "sticky", "topics": {{"orders": 2}}, "members": [{members}]}}"#);
        assert_eq!(
            err(&group("")),
            "g.json: `members` is empty: a group needs at least one member"
        );
        assert_eq!(
            err(&group(r#"{"id": "a", "topics": ["order"]}"#)),
            "g.json: member `a` subscribes to unknown topic `order`; did you mean `orders`?"
        );
        assert_eq!(
            err(&group(r#"{"id": "a", "topics": ["orders"], "owned": ["orders-2"]}"#)),
            "g.json: member `a` owns `orders-2`, which does not exist: `orders` has 2 partitions"
        );
        assert_eq!(
            err(&group(r#"{"id": "a", "topics": []}, {"id": "a", "topics": []}"#)),
            "g.json: member id `a` appears twice"
        );
        assert!(
            err(&group(
                r#"{"id": "a", "topics": [], "strategies": ["range"]}, {"id": "b", "topics": [], "strategies": ["sticky"]}"#
            ))
            .contains("no strategy is supported by every member")
        );
    }
}
