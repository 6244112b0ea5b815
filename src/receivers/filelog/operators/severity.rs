//! Severity mapping: stanza's `default` preset (OTLP names, numbers and aliases such as
//! `warning`/`err`), `preset: none`, and custom `mapping` with values, lists, `{min, max}`
//! ranges and `2xx`..`5xx` shorthands.

use serde_json::Value;
use std::collections::HashMap;

const NAMES: [&str; 24] = [
    "trace", "trace2", "trace3", "trace4", "debug", "debug2", "debug3", "debug4", "info", "info2",
    "info3", "info4", "warn", "warn2", "warn3", "warn4", "error", "error2", "error3", "error4",
    "fatal", "fatal2", "fatal3", "fatal4",
];

/// The OTLP severity number for a level name (`error3`) or number (`19`).
pub fn level(name: &str) -> Option<i32> {
    let n = name.to_ascii_lowercase();
    if let Some(i) = NAMES.iter().position(|x| *x == n) {
        return Some(i as i32 + 1);
    }
    n.parse::<i32>().ok().filter(|v| (1..=24).contains(v))
}

/// The recommended short name (`INFO3`) for a severity number.
pub fn short_name(sev: i32) -> Option<String> {
    let i = usize::try_from(sev).ok()?.checked_sub(1)?;
    NAMES.get(i).map(|n| n.to_ascii_uppercase())
}

/// A compiled lookup table: lowercased text → severity number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping(pub HashMap<String, i32>);

impl Mapping {
    /// Builds a preset (`default`, `otel`/`aliases` or `none`) and applies `mapping`.
    pub fn build(preset: &str, mapping: Option<&serde_norway::Value>) -> Result<Mapping, String> {
        let mut m = HashMap::new();
        match preset {
            "none" => {}
            "default" | "otel" | "aliases" => {
                for (i, n) in NAMES.iter().enumerate() {
                    m.insert(n.to_string(), i as i32 + 1);
                    m.insert((i + 1).to_string(), i as i32 + 1);
                }
                if preset == "default" {
                    for (k, v) in [
                        ("warning", 13),
                        ("warning2", 14),
                        ("warning3", 15),
                        ("warning4", 16),
                    ] {
                        m.insert(k.into(), v);
                    }
                    for (k, v) in [("err", 17), ("err2", 18), ("err3", 19), ("err4", 20)] {
                        m.insert(k.into(), v);
                    }
                }
            }
            other => return Err(format!("unknown preset {other:?} (default, otel, none)")),
        }
        let Some(mapping) = mapping else {
            return Ok(Mapping(m));
        };
        let map = mapping
            .as_mapping()
            .ok_or("mapping must be a map of level: values")?;
        for (k, v) in map {
            let key = scalar(k).ok_or("mapping keys must be level names")?;
            let sev = level(&key).ok_or_else(|| format!("unknown severity level {key:?}"))?;
            let items = match v {
                serde_norway::Value::Sequence(s) => s.iter().collect(),
                one => vec![one],
            };
            for item in items {
                if let Some(r) = item.as_mapping() {
                    let get = |k: &str| r.get(k).and_then(serde_norway::Value::as_i64);
                    let (Some(a), Some(b)) = (get("min"), get("max")) else {
                        return Err(format!("range for {key} needs integer min and max"));
                    };
                    let (lo, hi) = (a.min(b), a.max(b));
                    if hi.abs_diff(lo) > 100_000 {
                        return Err(format!("range for {key} is too large"));
                    }
                    for i in lo..=hi {
                        m.insert(i.to_string(), sev);
                    }
                    continue;
                }
                let text = scalar(item).ok_or_else(|| format!("bad value for {key}"))?;
                match text.as_str() {
                    "2xx" | "3xx" | "4xx" | "5xx" => {
                        let base = i32::from(text.as_bytes()[0] - b'0') * 100;
                        for i in base..base + 100 {
                            m.insert(i.to_string(), sev);
                        }
                    }
                    t => {
                        m.insert(t.to_ascii_lowercase(), sev);
                    }
                }
            }
        }
        Ok(Mapping(m))
    }

    /// Looks a value up: `(severity, text)`. Unknown values give severity 0 (as stanza does).
    pub fn lookup(&self, v: &Value) -> Option<(i32, String)> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        let sev = self.0.get(&text.to_ascii_lowercase()).copied().unwrap_or(0);
        Some((sev, text))
    }
}

fn scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
