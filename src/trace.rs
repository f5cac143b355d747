//! The `--trace` file made readable: partitions, producers, groups and members by name
//! instead of by internal number, and `--trace-filter` to keep only some lines.

use serde_json::Value;

/// Keys whose value is a list of partitions or of (partition, …) pairs. (`Ok` is a
/// response's successful result.)
macro_rules! PARTITION_LISTS {
    () => {
        "partitions" | "offsets" | "batches" | "results" | "records" | "owned" | "Ok"
    };
}

/// Every observation's name (`obs:NAME`), message API (`msg:API`) and timer kind
/// (`timer:KIND`) the model writes; a test checks the traces of several scenarios use no
/// other.
pub const OBSERVATIONS: [&str; 27] = [
    "log-lost",
    "produce-sent",
    "send-blocked",
    "rebalance-began",
    "group-stable",
    "member-started",
    "fetched",
    "poll-timeout",
    "revoked",
    "sent",
    "sent-unacknowledged",
    "acked",
    "produce-error",
    "failed",
    "position-set",
    "processed",
    "committed",
    "commit-failed",
    "broker-registered",
    "broker-fenced",
    "broker-unfenced",
    "partition-changed",
    "became-leader",
    "replicated",
    "truncated",
    "high-watermark",
    "acked-in-sync",
];
pub const APIS: [&str; 29] = [
    "metadata_request",
    "metadata_response",
    "produce_request",
    "produce_response",
    "fetch_request",
    "fetch_response",
    "list_offsets_request",
    "list_offsets_response",
    "find_coordinator_request",
    "find_coordinator_response",
    "offset_commit_request",
    "offset_commit_response",
    "offset_fetch_request",
    "offset_fetch_response",
    "join_group_request",
    "join_group_response",
    "sync_group_request",
    "sync_group_response",
    "heartbeat_request",
    "heartbeat_response",
    "leave_group_request",
    "leave_group_response",
    "broker_heartbeat",
    "broker_heartbeat_response",
    "metadata_update",
    "alter_partition_request",
    "alter_partition_response",
    "offsets_for_leader_epoch_request",
    "offsets_for_leader_epoch_response",
];
pub const TIMERS: [&str; 5] = ["broker", "controller", "producer", "member", "group"];

/// The names a kind may be narrowed to, if it has any.
fn sub_kinds(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "obs" => Some(&OBSERVATIONS),
        "msg" => Some(&APIS),
        "timer" => Some(&TIMERS),
        _ => None,
    }
}

/// The kinds of trace line, by the key that names each.
pub const KINDS: [&str; 8] = [
    "start",
    "msg",
    "timer",
    "peer_down",
    "obs",
    "drop",
    "fault",
    "unresolved_fault",
];

/// What `--trace-filter` keeps: a line is kept when it matches every dimension given
/// (and any of the values given for one).
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// `msg`, or `msg:fetch_request` for one API; `obs:acked` for one observation; …
    pub kinds: Vec<String>,
    pub nodes: Vec<String>,
    pub partitions: Vec<String>,
}

impl TraceFilter {
    /// Parses `--trace-filter kind=…,…`, `node=…` or `partition=…`, each repeatable.
    pub fn parse(specs: &[String]) -> Result<TraceFilter, String> {
        let mut f = TraceFilter::default();
        for spec in specs {
            let usage = || {
                format!(
                    "--trace-filter {spec}: write kind=K1,K2, node=N1,N2 or partition=P1,P2 (like `kind=obs:acked,msg`)"
                )
            };
            let (dimension, values) = spec.split_once('=').ok_or_else(usage)?;
            let values: Vec<String> = values
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(usage());
            }
            match dimension.trim() {
                "kind" => {
                    for v in &values {
                        let (top, sub) = v.split_once(':').map_or((v.as_str(), None), |(k, s)| (k, Some(s)));
                        if !KINDS.contains(&top) {
                            return Err(format!(
                                "--trace-filter {spec}: unknown kind `{top}`{}; one of {}",
                                crate::scenario::did_you_mean(top, KINDS.iter().copied()),
                                KINDS.join(", ")
                            ));
                        }
                        if let Some(sub) = sub {
                            let known = sub_kinds(top).ok_or_else(|| {
                                format!("--trace-filter {spec}: `{top}` lines have no kinds of their own")
                            })?;
                            if !known.contains(&sub) {
                                return Err(format!(
                                    "--trace-filter {spec}: unknown {top} `{sub}`{}",
                                    crate::scenario::did_you_mean(sub, known.iter().copied())
                                ));
                            }
                        }
                    }
                    f.kinds.extend(values);
                }
                "node" => f.nodes.extend(values),
                "partition" => f.partitions.extend(values),
                other => {
                    return Err(format!(
                        "--trace-filter {spec}: unknown `{other}`{}; one of kind, node, partition",
                        crate::scenario::did_you_mean(other, ["kind", "node", "partition"].into_iter())
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Checks the nodes and partitions named against those of the run.
    pub fn check(&self, nodes: &[String], partitions: &[String]) -> Result<(), String> {
        for n in &self.nodes {
            if !nodes.contains(n) {
                return Err(format!(
                    "--trace-filter node={n}: no such node{}",
                    crate::scenario::did_you_mean(n, nodes.iter().map(String::as_str))
                ));
            }
        }
        for p in &self.partitions {
            if !partitions.contains(p) {
                return Err(format!(
                    "--trace-filter partition={p}: no such partition{}",
                    crate::scenario::did_you_mean(p, partitions.iter().map(String::as_str))
                ));
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.nodes.is_empty() && self.partitions.is_empty()
    }

    /// Whether `line` (already named) is kept.
    fn keeps(&self, line: &Value) -> bool {
        if !self.kinds.is_empty() {
            let (kind, sub) = kind_of(line);
            let kept = self.kinds.iter().any(|k| match k.split_once(':') {
                Some((top, s)) => top == kind && sub.as_deref() == Some(s),
                None => k == kind,
            });
            if !kept {
                return false;
            }
        }
        if !self.nodes.is_empty() {
            let names = ["node", "from", "to"].map(|k| line.get(k).and_then(Value::as_str));
            if !names.iter().flatten().any(|n| self.nodes.iter().any(|x| x == n)) {
                return false;
            }
        }
        if !self.partitions.is_empty() && !mentions_partition(line, &self.partitions) {
            return false;
        }
        true
    }
}

/// A line's kind, and its sub-kind: a message's API, an observation's name, a timer's.
pub fn kind_of(line: &Value) -> (&'static str, Option<String>) {
    let kind = KINDS
        .iter()
        .copied()
        .find(|k| line.get(*k).is_some())
        .unwrap_or("other");
    let sub = match (kind, line.get(kind)) {
        ("msg", Some(m)) => m.get("api").and_then(Value::as_str).map(str::to_string),
        ("obs", Some(o)) => o.get("obs").and_then(Value::as_str).map(str::to_string),
        ("timer", Some(Value::String(s))) => Some(s.clone()),
        ("timer", Some(Value::Object(m))) => m.keys().next().cloned(),
        _ => None,
    };
    (kind, sub)
}

/// Whether a (named) line mentions one of the partitions anywhere: as a `partition`, in a
/// list, or in a pair. Node, client and group names, which a partition's name could
/// equal, are not looked at.
fn mentions_partition(v: &Value, names: &[String]) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| {
            !matches!(
                k.as_str(),
                "node" | "from" | "to" | "producer" | "group" | "member" | "member_id" | "peer_down"
            ) && mentions_partition(x, names)
        }),
        Value::Array(a) => a.iter().any(|x| mentions_partition(x, names)),
        Value::String(s) => names.iter().any(|n| n == s),
        _ => false,
    }
}

/// The run's names for the numbers the model uses.
pub struct Names {
    /// By the flat partition number.
    pub partitions: Vec<String>,
    /// By producer instance.
    pub producers: Vec<String>,
    /// By group, and by member within it.
    pub groups: Vec<String>,
    pub members: Vec<Vec<String>>,
}

impl Names {
    /// Replaces, anywhere in `v`, a `partition`, `producer` or `group` number by its name,
    /// and a `member` number by its name where the same object names its group.
    pub fn apply(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                let group = m.get("group").and_then(Value::as_u64);
                for (k, x) in m.iter_mut() {
                    match (k.as_str(), &mut *x) {
                        // Lists of partitions, or of (partition, something) pairs: the
                        // batches of a produce request, the results of its response,
                        // committed and fetched offsets, processed records, owned and
                        // assigned partitions.
                        (PARTITION_LISTS!(), Value::Array(a)) => {
                            for item in a.iter_mut() {
                                match item {
                                    Value::Number(_) => self.name_partition(item),
                                    Value::Array(pair) if pair.first().is_some_and(Value::is_u64) => {
                                        self.name_partition(&mut pair[0]);
                                        pair.iter_mut().skip(1).for_each(|v| self.apply(v));
                                    }
                                    other => self.apply(other),
                                }
                            }
                            continue;
                        }
                        ("assignment" | "assignments", Value::Array(a)) => {
                            for pair in a.iter_mut() {
                                if let (Some(g), Some(m)) = (group, pair.get_mut(0))
                                    && let Some(n) =
                                        m.as_u64().and_then(|i| self.members.get(g as usize)?.get(i as usize))
                                {
                                    *m = Value::String(n.clone());
                                }
                                if let Some(Value::Array(ps)) = pair.get_mut(1) {
                                    ps.iter_mut().for_each(|p| self.name_partition(p));
                                }
                            }
                            continue;
                        }
                        _ => {}
                    }
                    let name = match (k.as_str(), x.as_u64()) {
                        ("partition", Some(i)) => self.partitions.get(i as usize),
                        ("producer", Some(i)) => self.producers.get(i as usize),
                        ("group", Some(i)) => self.groups.get(i as usize),
                        ("member", Some(i)) => group.and_then(|g| self.members.get(g as usize)?.get(i as usize)),
                        _ => None,
                    };
                    match name {
                        Some(n) => *x = Value::String(n.clone()),
                        None => self.apply(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.apply(x)),
            _ => {}
        }
    }

    fn name_partition(&self, p: &mut Value) {
        if let Some(n) = p.as_u64().and_then(|i| self.partitions.get(i as usize)) {
            *p = Value::String(n.clone());
        }
    }
}

/// The shape the engine gives every trace line: names, then the filter.
pub fn shape(names: Names, filter: TraceFilter) -> crate::sim::engine::TraceShape {
    Box::new(move |line: &mut Value| {
        names.apply(line);
        filter.is_empty() || filter.keeps(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Names {
        Names {
            partitions: vec!["orders-0".into(), "orders-1".into()],
            producers: vec!["web".into()],
            groups: vec!["billing".into()],
            members: vec![vec!["billing-0".into(), "billing-1".into()]],
        }
    }

    #[test]
    fn numbers_become_names_at_any_depth() {
        let mut line = json!({"t": 5, "node": "broker-1", "msg": {"api": "fetch_request", "partitions": [{"partition": 1, "offset": 3}]}});
        names().apply(&mut line);
        assert_eq!(line["msg"]["partitions"][0]["partition"], "orders-1");
        let mut line = json!({"obs": {"obs": "group-stable", "group": 0, "assignment": [[1, [0, 1]]]}});
        names().apply(&mut line);
        assert_eq!(
            line["obs"]["assignment"],
            json!([["billing-1", ["orders-0", "orders-1"]]])
        );
        let mut line =
            json!({"msg": {"api": "offset_commit_request", "group": 0, "offsets": [[1, 500]], "partitions": [0]}});
        names().apply(&mut line);
        assert_eq!(line["msg"]["offsets"], json!([["orders-1", 500]]));
        assert_eq!(line["msg"]["partitions"], json!(["orders-0"]));
        let mut line = json!({"obs": {"obs": "processed", "group": 0, "member": 1, "producer": 0}});
        names().apply(&mut line);
        assert_eq!(
            line["obs"],
            json!({"obs": "processed", "group": "billing", "member": "billing-1", "producer": "web"})
        );
    }

    #[test]
    fn the_filter_keeps_lines_matching_every_dimension() {
        let f = TraceFilter::parse(&["kind=obs:acked,msg".into(), "node=broker-1,web".into()]).expect("valid");
        let acked = json!({"node": "web", "obs": {"obs": "acked", "partition": "orders-0"}});
        let sent = json!({"node": "web", "obs": {"obs": "sent"}});
        let fetch = json!({"node": "broker-2", "from": "broker-1", "msg": {"api": "fetch_request"}});
        let timer = json!({"node": "broker-1", "timer": {"producer": "wake"}});
        assert!(f.keeps(&acked));
        assert!(!f.keeps(&sent));
        assert!(f.keeps(&fetch), "a message from broker-1 is about it");
        assert!(!f.keeps(&timer));
        let p = TraceFilter::parse(&["partition=orders-1".into()]).expect("valid");
        let deep = json!({"msg": {"partitions": [{"partition": "orders-0"}, {"partition": "orders-1"}]}});
        assert!(p.keeps(&deep));
        assert!(!p.keeps(&acked));
        // In a produce request's (partition, batch) pairs, once named.
        let mut produce =
            json!({"node": "broker-1", "msg": {"api": "produce_request", "batches": [[1, {"producer": 0}]]}});
        names().apply(&mut produce);
        assert_eq!(produce["msg"]["batches"][0][0], "orders-1");
        assert_eq!(produce["msg"]["batches"][0][1]["producer"], "web");
        assert!(p.keeps(&produce));
        // A node whose name is a partition's is not the partition.
        let node = json!({"node": "orders-1", "timer": "x"});
        assert!(!p.keeps(&node));
    }

    #[test]
    fn bad_filters_are_refused_with_the_near_name() {
        let e = TraceFilter::parse(&["knd=obs".into()]).unwrap_err();
        assert!(e.contains("did you mean `kind`"), "{e}");
        let e = TraceFilter::parse(&["kind=ob".into()]).unwrap_err();
        assert!(e.contains("did you mean `obs`"), "{e}");
        let e = TraceFilter::parse(&["kind=obs:ackd".into()]).unwrap_err();
        assert!(e.contains("unknown obs `ackd`; did you mean `acked`"), "{e}");
        assert!(TraceFilter::parse(&["kind=drop:x".into()]).is_err());
        let f = TraceFilter::parse(&["node=broker-9".into()]).expect("syntax is fine");
        let e = f.check(&["broker-1".into()], &[]).unwrap_err();
        assert!(e.contains("no such node") && e.contains("broker-1"), "{e}");
    }
}
