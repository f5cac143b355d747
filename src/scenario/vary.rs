//! Variants: one value of each setting a `vary:` block names (or `--set` gives), written
//! into the parsed file before validation, so that a combination Kafka would refuse is
//! refused here with the file's own error, located at the `vary` value that caused it.

use super::schema::{DurationValue, Props, S, Scalar, ScenarioFile, VARY_SCOPES, parse_duration};
use super::{CLUSTER_KEYS, InputError, Vary, VaryScope, did_you_mean, props};
use serde_saphyr::Location;
use std::fmt;

/// One setting with its value: `producer:acks=1`.
#[derive(Debug, Clone)]
pub struct Setting {
    pub scope: VaryScope,
    pub key: String,
    pub value: Scalar,
    /// Where the value is written (a `vary` value), or unknown for `--set`.
    pub at: Location,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.scope.word(), self.key, self.value)
    }
}

impl Setting {
    /// `scope:key`, as a variant names it.
    pub fn name(&self) -> String {
        format!("{}:{}", self.scope.word(), self.key)
    }

    /// Parses `--set SCOPE:KEY=VALUE`; the value is read as YAML reads a scalar.
    pub fn parse(text: &str) -> Result<Setting, String> {
        let usage = || {
            format!(
                "--set {text}: write SCOPE:KEY=VALUE, like `producer:acks=1` (scopes: producer, topic, broker, group, cluster)"
            )
        };
        let (name, value) = text.split_once('=').ok_or_else(usage)?;
        let (scope, key) = name.split_once(':').ok_or_else(usage)?;
        let scope = VaryScope::parse(scope).ok_or_else(|| {
            format!(
                "--set {text}: unknown scope `{scope}`{}; one of {}",
                did_you_mean(scope, VARY_SCOPES.iter().copied()),
                VARY_SCOPES.join(", ")
            )
        })?;
        known(scope, key).map_err(|e| format!("--set {text}: {e}"))?;
        // One value, as YAML reads a scalar: `1` is a number, `true` a boolean.
        if value.trim_start().starts_with(['[', '{']) {
            return Err(format!("--set {text}: the value is one number, word or true/false"));
        }
        let value = serde_saphyr::from_str::<Scalar>(value).map_err(|_| usage())?;
        Ok(Setting {
            scope,
            key: key.to_string(),
            value,
            at: Location::UNKNOWN,
        })
    }
}

/// Whether `key` is a setting of `scope` that kafkasim knows.
pub fn known(scope: VaryScope, key: &str) -> Result<(), String> {
    let names: Vec<&str> = match scope {
        VaryScope::Producer => props::names(props::Scope::Producer).collect(),
        VaryScope::Topic => props::names(props::Scope::Topic).collect(),
        VaryScope::Broker => props::names(props::Scope::Broker).collect(),
        VaryScope::Group => props::names(props::Scope::Consumer).collect(),
        VaryScope::Cluster => CLUSTER_KEYS.to_vec(),
    };
    if names.contains(&key) {
        return Ok(());
    }
    Err(format!(
        "`{key}` is not a {} setting kafkasim knows{}",
        scope.word(),
        did_you_mean(key, names.iter().copied())
    ))
}

/// Every combination of the values `vary` lists, as a Cartesian product in the order
/// written, the last setting varying fastest. One empty combination without `vary`.
pub fn combinations(file: &ScenarioFile, vary: &[Vary]) -> Vec<Vec<Setting>> {
    let mut out: Vec<Vec<Setting>> = vec![Vec::new()];
    for (v, spec) in vary.iter().zip(&file.vary) {
        let mut next = Vec::new();
        for prefix in &out {
            for (value, written) in v.values.iter().zip(&spec.value.values.value) {
                let mut c = prefix.clone();
                c.push(Setting {
                    scope: v.scope,
                    key: v.key.clone(),
                    value: value.clone(),
                    at: written.referenced,
                });
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Writes `settings` into the parsed file: into every producer's, topic's or group's
/// `config`, into the cluster's broker `config` (where a topic's own value still wins,
/// as in Kafka), or into `cluster:` itself.
pub fn apply(file_name: &str, raw: &mut ScenarioFile, settings: &[Setting]) -> Result<(), InputError> {
    for s in settings {
        let spanned = |v: Scalar| S::new(v, s.at, s.at);
        let set = |props: &mut Props| {
            let value = spanned(s.value.clone());
            match props.0.iter_mut().find(|(k, _)| k.value == s.key) {
                Some((_, v)) => *v = value,
                None => props.0.push((S::new(s.key.clone(), s.at, s.at), value)),
            }
        };
        match s.scope {
            VaryScope::Producer => raw.producers.iter_mut().for_each(|p| set(&mut p.value.config)),
            VaryScope::Topic => raw.topics.iter_mut().for_each(|t| set(&mut t.value.config)),
            VaryScope::Group => raw.consumers.iter_mut().for_each(|c| set(&mut c.value.config)),
            VaryScope::Broker => {
                if let Some(c) = raw.cluster.as_mut() {
                    set(&mut c.value.config);
                }
            }
            VaryScope::Cluster => {
                let Some(cluster) = raw.cluster.as_mut() else { continue };
                let bad = |wanted: &str| {
                    InputError::new(
                        file_name,
                        s.at.line(),
                        s.at.column(),
                        format!("`cluster: {}` must be {wanted}, not {}", s.key, s.value.as_written()),
                    )
                };
                let c = &mut cluster.value;
                match s.key.as_str() {
                    "brokers" => match &s.value {
                        Scalar::Int(n) if u32::try_from(*n).is_ok() => c.brokers = S::new(*n as u32, s.at, s.at),
                        _ => return Err(bad("a whole number of brokers")),
                    },
                    "truncation" => c.truncation = Some(S::new(s.value.to_string(), s.at, s.at)),
                    key @ ("network.latency" | "network.jitter") => {
                        let d = match &s.value {
                            Scalar::Int(ms) if *ms >= 0 => crate::sim::Duration::from_millis(*ms as u64),
                            Scalar::Text(t) => parse_duration(t).map_err(|_| bad("a duration"))?,
                            _ => return Err(bad("a duration")),
                        };
                        let network = c.network.get_or_insert_with(Default::default);
                        let slot = if key == "network.latency" {
                            &mut network.latency
                        } else {
                            &mut network.jitter
                        };
                        *slot = Some(S::new(DurationValue(d), s.at, s.at));
                    }
                    other => unreachable!("cluster key `{other}` is checked when parsed"),
                }
            }
        }
    }
    Ok(())
}
