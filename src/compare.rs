//! `kafkasim compare`: several runs side by side, one column each. The columns come from
//! several scenarios, or from one scenario's variants (`--vary`), or both; `report::compare`
//! builds the table from the runs' reports alone.

pub use crate::report::compare::{Column, Row, render_text, table};
use crate::scenario::vary::Setting;

/// Parses `--vary SCOPE:KEY=V1,V2,…` into one setting per value.
pub fn parse_vary(text: &str) -> Result<Vec<Setting>, String> {
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| format!("--vary {text}: write SCOPE:KEY=V1,V2,…, like `producer:linger.ms=0,5,50`"))?;
    let settings = values
        .split(',')
        .map(|v| Setting::parse(&format!("{name}={}", v.trim())).map_err(|e| e.replacen("--set ", "--vary ", 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if settings.len() < 2 {
        return Err(format!("--vary {text}: give two values or more, separated by commas"));
    }
    Ok(settings)
}

/// Every combination of one value of each `--vary`, in order (the last varies fastest).
pub fn combinations(varies: &[Vec<Setting>]) -> Vec<Vec<Setting>> {
    varies.iter().fold(vec![Vec::new()], |acc, values| {
        acc.iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.push(v.clone());
                    c
                })
            })
            .collect()
    })
}

/// A variant's name: its settings as `key=value`, the scope left out unless two settings
/// share a key.
pub fn variant_name(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(|s| {
            let shared = settings.iter().filter(|o| o.key == s.key).count() > 1;
            if shared {
                s.to_string()
            } else {
                format!("{}={}", s.key, s.value)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_gives_a_setting_per_value_and_combinations_multiply() {
        let a = parse_vary("producer:linger.ms=0,5,50").expect("valid");
        assert_eq!(
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["producer:linger.ms=0", "producer:linger.ms=5", "producer:linger.ms=50"]
        );
        let b = parse_vary("producer:acks=1,all").expect("valid");
        let c = combinations(&[a, b]);
        assert_eq!(c.len(), 6);
        assert_eq!(variant_name(&c[1]), "linger.ms=0 acks=all");
        assert!(
            parse_vary("producer:linger.ms=5")
                .unwrap_err()
                .contains("two values or more")
        );
        let e = parse_vary("prodcer:linger.ms=0,5").unwrap_err();
        assert!(e.starts_with("--vary prodcer:linger.ms=0: unknown scope"), "{e}");
        assert!(parse_vary("producer:lingr.ms=0,5").unwrap_err().contains("linger.ms"));
    }
}
