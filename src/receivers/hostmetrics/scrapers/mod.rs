//! The `hostmetrics` scrapers: each reads the host's `/proc` and `/sys` (under `root_path`)
//! and returns the Collector's metrics for its area, with the Collector's names, units, types
//! and attributes (semantic conventions). The contract every scraper keeps:
//! - `scrape(ctx, cfg)` reads what it needs once, returns metrics only for the enabled names
//!   ([`Ctx::enabled`]: the scraper's defaults, overridden by `metrics.<name>.enabled`), and
//!   fails only when its main source cannot be read (a missing optional file skips its metrics);
//! - cumulative sums start at the host's boot time ([`Ctx::boot_ns`]); every point's time is
//!   [`Ctx::now_ns`];
//! - it never panics on what it reads (files change under it: short lines, odd fields).
//!
//! This file: the shared [`Ctx`], metric builders, the `include`/`exclude` [`Matcher`] and
//! the per-metric switch.

pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod load;
pub mod memory;
pub mod network;
pub mod paging;
pub mod process;
pub mod processes;
pub mod system;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum,
};
use serde::{Deserialize, Serialize};

/// `metrics.<name>` under a scraper.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricSwitch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A scraper's per-metric switches.
pub type Switches = BTreeMap<String, MetricSwitch>;

/// What one collection gives every scraper.
pub struct Ctx<'a> {
    /// `root_path` (the host's `/` when otelgw runs in a container), or `/`.
    pub root: &'a Path,
    pub now_ns: u64,
    /// The host's boot time: the start of cumulative sums.
    pub boot_ns: u64,
}

impl Ctx<'_> {
    /// A path under the root: `path("/proc/stat")`.
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Reads a file under the root as text.
    pub fn read(&self, p: &str) -> Result<String, String> {
        let full = self.path(p);
        std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))
    }

    /// Whether `name` is emitted: `metrics.<name>.enabled` if set, else `default`.
    pub fn enabled(switches: &Switches, name: &str, default: bool) -> bool {
        switches
            .get(name)
            .and_then(|s| s.enabled)
            .unwrap_or(default)
    }
}

/// `metrics.<name>.enabled`, else `name`'s default in the scraper's `metrics` list.
pub fn enabled_in(switches: &Switches, metrics: &[(&str, bool)], name: &str) -> bool {
    let default = metrics
        .iter()
        .find(|(m, _)| *m == name)
        .is_some_and(|(_, d)| *d);
    Ctx::enabled(switches, name, default)
}

/// A problem for every `metrics.<name>` entry that is not a metric of `scraper`.
pub fn unknown_metrics(
    scraper: &str,
    switches: &Switches,
    metrics: &[(&str, bool)],
) -> Vec<(String, String)> {
    let known = || {
        metrics
            .iter()
            .map(|(m, _)| *m)
            .collect::<Vec<_>>()
            .join(", ")
    };
    switches
        .keys()
        .filter(|k| !metrics.iter().any(|(m, _)| m == k))
        .map(|k| {
            (
                format!("metrics.{k}"),
                format!(
                    "unknown metric of the {scraper} scraper; known: {}",
                    known()
                ),
            )
        })
        .collect()
}

/// A string attribute.
pub fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// An int attribute.
pub fn attr_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// A point value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Double(f64),
}

/// One data point: attributes and value (times are filled in by the builders).
pub fn point(attributes: Vec<KeyValue>, value: Num) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        value: Some(match value {
            Num::Int(i) => number_data_point::Value::AsInt(i),
            Num::Double(d) => number_data_point::Value::AsDouble(d),
        }),
        ..Default::default()
    }
}

/// A cumulative sum (monotonic or not) starting at boot.
pub fn sum(
    ctx: &Ctx,
    name: &str,
    description: &str,
    unit: &str,
    monotonic: bool,
    mut points: Vec<NumberDataPoint>,
) -> Metric {
    for p in &mut points {
        p.start_time_unix_nano = ctx.boot_ns;
        p.time_unix_nano = ctx.now_ns;
    }
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

/// A gauge.
pub fn gauge(
    ctx: &Ctx,
    name: &str,
    description: &str,
    unit: &str,
    mut points: Vec<NumberDataPoint>,
) -> Metric {
    for p in &mut points {
        p.time_unix_nano = ctx.now_ns;
    }
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

/// What a scraper returns: metrics per resource. Host-wide scrapers return one entry with no
/// resource attributes (the receiver's resource); `process` one per process.
pub type Output = Vec<(Vec<KeyValue>, Vec<Metric>)>;

/// `match_type` of an `include`/`exclude` block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    #[default]
    Strict,
    Regexp,
}

/// An `include`/`exclude` list compiled: strict names or regexps that match anywhere in the
/// name (the Collector's filterset: `sd` matches `sda1`; anchor with `^…$`).
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    strict: Vec<String>,
    patterns: Vec<regex::Regex>,
}

impl Matcher {
    pub fn new(match_type: MatchType, items: &[String]) -> Result<Matcher, String> {
        match match_type {
            MatchType::Strict => Ok(Matcher {
                strict: items.to_vec(),
                patterns: Vec::new(),
            }),
            MatchType::Regexp => Ok(Matcher {
                strict: Vec::new(),
                patterns: items
                    .iter()
                    .map(|p| regex::Regex::new(p).map_err(|e| format!("invalid regexp {p:?}: {e}")))
                    .collect::<Result<_, _>>()?,
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.strict.is_empty() && self.patterns.is_empty()
    }

    pub fn matches(&self, s: &str) -> bool {
        self.strict.iter().any(|x| x == s) || self.patterns.iter().any(|p| p.is_match(s))
    }
}

/// `include` / `exclude` together: a name passes when it is included (or there is no include
/// list) and not excluded.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Matcher,
    pub exclude: Matcher,
}

impl Filter {
    pub fn allows(&self, s: &str) -> bool {
        (self.include.is_empty() || self.include.matches(s)) && !self.exclude.matches(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_switches() {
        let f = Filter {
            include: Matcher::new(MatchType::Regexp, &["^sd[a-z]$".into(), "nvme".into()]).unwrap(),
            exclude: Matcher::new(MatchType::Strict, &["sdb".into()]).unwrap(),
        };
        assert!(f.allows("sda") && f.allows("nvme0n1"));
        assert!(!f.allows("sdb") && !f.allows("sda1") && !f.allows("loop0"));
        assert!(Filter::default().allows("anything"));
        assert!(Matcher::new(MatchType::Regexp, &["(".into()]).is_err());
        let mut sw = Switches::new();
        sw.insert(
            "system.cpu.utilization".into(),
            MetricSwitch {
                enabled: Some(true),
            },
        );
        assert!(Ctx::enabled(&sw, "system.cpu.utilization", false));
        assert!(Ctx::enabled(&sw, "system.cpu.time", true));
        assert!(!Ctx::enabled(&sw, "system.cpu.frequency", false));
    }
}
