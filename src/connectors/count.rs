//! `count`: counts spans, span events, metrics, data points and log records into sum metrics
//! (traces, metrics or logs in; metrics out), as the Collector's count connector.
//!
//! Config: `spans`, `spanevents`, `metrics`, `datapoints`, `logs` — each a map from the metric
//! name to `{description, conditions, attributes}`. A signal's map left empty counts everything
//! into the Collector's default metric (`trace.span.count`, `trace.span.event.count`,
//! `metric.count`, `metric.data_point.count`, `log.record.count`). `conditions` are OTTL
//! conditions ([`crate::ottl`]) in the item's context (an item counts when any holds; all count
//! when none is given); `attributes` (`key`, `default_value`) split the count by the item's
//! attribute (then its scope's, then its resource's), an item without the attribute and without
//! a default is not counted for that metric.
//!
//! Output: one `ResourceMetrics` per input resource group (its resource kept), one scope
//! (`otelgw/count`), a delta, monotonic int sum per configured metric with one point per
//! attribute combination, stamped with the time of counting. Counting needs the decoded request.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::{Deserialize, Serialize};

use crate::component::{Diagnostics, Signal};
use crate::data::Telemetry;
use crate::ottl::{compile_condition, Condition, Context, Field, Owner, Place, Target, Val};

/// One counted metric.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// OTTL conditions: an item counts when any holds (every item when none is given).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// Attributes the count is split by.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeConfig>,
}

/// `{key, default_value}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<serde_norway::Value>,
}

/// `connectors.count`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountConfig {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spans: BTreeMap<String, MetricInfo>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spanevents: BTreeMap<String, MetricInfo>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricInfo>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub datapoints: BTreeMap<String, MetricInfo>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, MetricInfo>,
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Spans,
    SpanEvents,
    Metrics,
    DataPoints,
    Logs,
}

/// One counted list: what, its key, the default metric's name and description, the
/// configured metrics, the OTTL context of its conditions.
type List<'c> = (
    What,
    &'static str,
    &'static str,
    &'static str,
    &'c BTreeMap<String, MetricInfo>,
    Context,
);

struct Counted {
    name: String,
    description: String,
    what: What,
    conditions: Vec<Condition>,
    attributes: Vec<(String, Option<String>)>,
}

/// The running `count` connector for one input signal.
pub struct Counter {
    metrics: Vec<Counted>,
}

fn text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl CountConfig {
    fn lists(&self) -> [List<'_>; 5] {
        [
            (
                What::Spans,
                "spans",
                "trace.span.count",
                "The number of spans observed.",
                &self.spans,
                Context::Span,
            ),
            (
                What::SpanEvents,
                "spanevents",
                "trace.span.event.count",
                "The number of span events observed.",
                &self.spanevents,
                Context::SpanEvent,
            ),
            (
                What::Metrics,
                "metrics",
                "metric.count",
                "The number of metrics observed.",
                &self.metrics,
                Context::Metric,
            ),
            (
                What::DataPoints,
                "datapoints",
                "metric.data_point.count",
                "The number of data points observed.",
                &self.datapoints,
                Context::DataPoint,
            ),
            (
                What::Logs,
                "logs",
                "log.record.count",
                "The number of log records observed.",
                &self.logs,
                Context::Log,
            ),
        ]
    }

    fn compile(&self, signal: Option<Signal>, path: &str, diag: &mut Diagnostics) -> Vec<Counted> {
        let mut out = Vec::new();
        for (what, key, default_name, default_desc, map, ctx) in self.lists() {
            let input = match what {
                What::Spans | What::SpanEvents => Signal::Traces,
                What::Metrics | What::DataPoints => Signal::Metrics,
                What::Logs => Signal::Logs,
            };
            if signal.is_some_and(|s| s != input) {
                continue;
            }
            if map.is_empty() {
                out.push(Counted {
                    name: default_name.to_string(),
                    description: default_desc.to_string(),
                    what,
                    conditions: Vec::new(),
                    attributes: Vec::new(),
                });
                continue;
            }
            for (name, info) in map {
                let at = format!("{path}.{key}.{name}");
                if name.is_empty() {
                    diag.error(&at, "a metric name is required");
                }
                let mut conditions = Vec::new();
                for (i, c) in info.conditions.iter().enumerate() {
                    match compile_condition(ctx, c) {
                        Ok(c) => conditions.push(c),
                        Err(e) => {
                            diag.error(format!("{at}.conditions[{i}]"), format!("{c:?}: {e}"))
                        }
                    }
                }
                out.push(Counted {
                    name: name.clone(),
                    description: info.description.clone(),
                    what,
                    conditions,
                    attributes: info
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), a.default_value.as_ref().map(text)))
                        .collect(),
                });
            }
        }
        out
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        self.compile(None, path, diag);
    }

    /// The counter for pipelines of `signal` that export to the connector.
    pub fn build(&self, signal: Signal) -> Counter {
        Counter {
            metrics: self.compile(Some(signal), "", &mut Diagnostics::default()),
        }
    }
}

/// Counts per metric and attribute combination, for one resource group.
type Counts = Vec<BTreeMap<Vec<String>, i64>>;

impl Counter {
    /// The counts of `data` as a metrics request (`None` when nothing was counted).
    pub fn count(&self, data: &mut Telemetry) -> Option<Telemetry> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let resources: Vec<Option<Resource>> = match &*data {
            Telemetry::Traces(r) => r
                .resource_spans
                .iter()
                .map(|g| g.resource.clone())
                .collect(),
            Telemetry::Metrics(r) => r
                .resource_metrics
                .iter()
                .map(|g| g.resource.clone())
                .collect(),
            Telemetry::Logs(r) => r.resource_logs.iter().map(|g| g.resource.clone()).collect(),
        };
        let mut per_group: Vec<Counts> =
            vec![vec![BTreeMap::new(); self.metrics.len()]; resources.len()];
        for (m, counted) in self.metrics.iter().enumerate() {
            visit(data, counted, &mut |g, key| {
                if let Some(c) = per_group.get_mut(g).and_then(|c| c.get_mut(m)) {
                    *c.entry(key).or_insert(0) += 1;
                }
            });
        }
        let resource_metrics: Vec<ResourceMetrics> = resources
            .into_iter()
            .zip(per_group)
            .filter(|(_, counts)| counts.iter().any(|c| !c.is_empty()))
            .map(|(resource, counts)| ResourceMetrics {
                resource,
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "otelgw/count".into(),
                        ..Default::default()
                    }),
                    metrics: self
                        .metrics
                        .iter()
                        .zip(counts)
                        .filter(|(_, c)| !c.is_empty())
                        .map(|(counted, c)| Metric {
                            name: counted.name.clone(),
                            description: counted.description.clone(),
                            unit: "{count}".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: c
                                    .into_iter()
                                    .map(|(values, n)| NumberDataPoint {
                                        attributes: counted
                                            .attributes
                                            .iter()
                                            .zip(values)
                                            .map(|((k, _), v)| KeyValue {
                                                key: k.clone(),
                                                value: Some(AnyValue {
                                                    value: Some(any_value::Value::StringValue(v)),
                                                }),
                                                ..Default::default()
                                            })
                                            .collect(),
                                        start_time_unix_nano: now,
                                        time_unix_nano: now,
                                        value: Some(number_data_point::Value::AsInt(n)),
                                        ..Default::default()
                                    })
                                    .collect(),
                                aggregation_temporality: AggregationTemporality::Delta as i32,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        })
                        .collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect();
        (!resource_metrics.is_empty()).then_some(Telemetry::Metrics(ExportMetricsServiceRequest {
            resource_metrics,
        }))
    }
}

/// An attribute's value as text: the item's, else its scope's, else its resource's.
fn attribute(t: &dyn Target, key: &str) -> Option<String> {
    [Owner::Item, Owner::Scope, Owner::Resource]
        .into_iter()
        .find_map(|owner| {
            let place = Place::at(Field::Attributes(owner), Some(key.to_string()));
            match t.get(&place).ok()? {
                Val::Nil => None,
                Val::Str(s) => Some(s.into_owned()),
                Val::Int(i) => Some(i.to_string()),
                Val::Float(f) => Some(f.to_string()),
                Val::Bool(b) => Some(b.to_string()),
                _ => Some(String::new()),
            }
        })
}

/// Calls `hit` with the resource group's index and the attribute values of every item
/// `counted` counts (the groups are walked one at a time, moved out and back, not copied).
fn visit(data: &mut Telemetry, counted: &Counted, hit: &mut dyn FnMut(usize, Vec<String>)) {
    let ctx = match counted.what {
        What::Spans => Context::Span,
        What::Logs => Context::Log,
        What::DataPoints => Context::DataPoint,
        What::Metrics => Context::Metric,
        What::SpanEvents => Context::SpanEvent,
    };
    let mut one_group = |g: usize, one: &mut Telemetry| {
        crate::ottl::walk::walk(one, ctx, &mut |t| {
            let holds = counted.conditions.is_empty()
                || counted
                    .conditions
                    .iter()
                    .any(|c| c.matches(t).unwrap_or(false));
            if holds {
                let key: Option<Vec<String>> = counted
                    .attributes
                    .iter()
                    .map(|(k, d)| attribute(t, k).or_else(|| d.clone()))
                    .collect();
                if let Some(key) = key {
                    hit(g, key);
                }
            }
            true
        });
    };
    macro_rules! by_group {
        ($r:expr, $field:ident, $variant:ident, $req:ident) => {{
            let groups = std::mem::take(&mut $r.$field);
            for (g, group) in groups.into_iter().enumerate() {
                let mut one = Telemetry::$variant($req {
                    $field: vec![group],
                });
                one_group(g, &mut one);
                if let Telemetry::$variant(back) = one {
                    $r.$field.extend(back.$field);
                }
            }
        }};
    }
    match data {
        Telemetry::Traces(r) => by_group!(r, resource_spans, Traces, ExportTraceServiceRequest),
        Telemetry::Metrics(r) => {
            by_group!(r, resource_metrics, Metrics, ExportMetricsServiceRequest)
        }
        Telemetry::Logs(r) => by_group!(r, resource_logs, Logs, ExportLogsServiceRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    /// An attribute's value as text, from the first of the attribute lists that has it.
    fn lookup(key: &str, lists: &[&[KeyValue]]) -> Option<String> {
        lists.iter().find_map(|l| {
            l.iter().find(|kv| kv.key == key).map(|kv| {
                match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    Some(any_value::Value::IntValue(i)) => i.to_string(),
                    Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                    Some(any_value::Value::BoolValue(b)) => b.to_string(),
                    _ => String::new(),
                }
            })
        })
    }

    /// Per `service/metric`: the points as (attributes, count).
    type Points = Vec<(Vec<(String, String)>, i64)>;

    fn counts(t: &Telemetry) -> Vec<(String, Points)> {
        let Telemetry::Metrics(r) = t else {
            panic!("metrics")
        };
        let mut out = Vec::new();
        for rm in &r.resource_metrics {
            let svc = lookup(
                "service.name",
                &[rm.resource.as_ref().map_or(&[][..], |r| &r.attributes)],
            )
            .unwrap_or_default();
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                let Some(Data::Sum(s)) = &m.data else {
                    panic!("sum")
                };
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Delta as i32
                );
                let mut points: Vec<_> = s
                    .data_points
                    .iter()
                    .map(|p| {
                        let attrs = p
                            .attributes
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key.clone(),
                                    lookup(&kv.key, &[std::slice::from_ref(kv)])
                                        .unwrap_or_default(),
                                )
                            })
                            .collect();
                        let Some(number_data_point::Value::AsInt(n)) = p.value else {
                            panic!("int")
                        };
                        (attrs, n)
                    })
                    .collect();
                points.sort();
                out.push((format!("{svc}/{}", m.name), points));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn counts_by_resource_condition_and_attribute() {
        let mut r = testdata::traces(3, 2, 6);
        for rs in &mut r.resource_spans {
            for (i, s) in rs.scope_spans[0].spans.iter_mut().enumerate() {
                s.kind = if i % 3 == 0 { 3 } else { 2 }; // client, server
                if i % 2 == 0 {
                    s.attributes.retain(|kv| kv.key != "http.request.method");
                }
            }
        }
        let mut t = Telemetry::Traces(r.clone());
        let cfg: CountConfig = serde_norway::from_str(
            r#"
spans:
  server.spans:
    description: server spans
    conditions: ['kind == SPAN_KIND_SERVER']
    attributes:
      - key: http.request.method
        default_value: none
  spans.by.host:
    attributes: [{key: host.name}]
logs:
  never.used: {}
"#,
        )
        .unwrap();
        let mut d = Diagnostics::default();
        cfg.validate("connectors.count", &mut d);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let out = cfg.build(Signal::Traces).count(&mut t).unwrap();
        assert_eq!(
            t,
            Telemetry::Traces(r.clone()),
            "counting leaves the request as it was"
        );
        let got = counts(&out);
        // per resource: spans 0..6; server = 1,2,4,5; method kept on odd spans (1, 3, 5)
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        // two resources × (the two configured span metrics + the default span event count:
        // `spanevents` was not configured)
        assert_eq!(got.len(), 6, "{names:?}");
        for (name, points) in &got {
            if name.ends_with("/server.spans") {
                let want = vec![
                    (
                        vec![("http.request.method".to_string(), "GET".to_string())],
                        2,
                    ),
                    (
                        vec![("http.request.method".to_string(), "none".to_string())],
                        2,
                    ),
                ];
                assert_eq!(points, &want, "{name}");
            } else if name.ends_with("/trace.span.event.count") {
                assert_eq!(points, &vec![(vec![], 1)], "one span of six has an event");
            } else {
                assert!(name.ends_with("/spans.by.host"), "{name}");
                assert_eq!(points.len(), 1);
                assert_eq!(points[0].0[0].0, "host.name", "read from the resource");
                assert_eq!(points[0].1, 6);
            }
        }
        // no configuration: the Collector's default metric
        let default = CountConfig::default().build(Signal::Logs);
        let mut logs = Telemetry::Logs(testdata::logs(1, 1, 5));
        let got = counts(&default.count(&mut logs).unwrap());
        assert_eq!(got.len(), 1);
        assert!(got[0].0.ends_with("/log.record.count"));
        assert_eq!(got[0].1, vec![(vec![], 5)]);
    }

    #[test]
    fn bad_conditions_are_config_errors() {
        let cfg: CountConfig = serde_norway::from_str("spans: {x: {conditions: ['nope ==']}}\nspanevents: {y: {conditions: ['span.nope == \"a\"']}}").unwrap();
        let mut d = Diagnostics::default();
        cfg.validate("connectors.count", &mut d);
        let errs: Vec<String> = d.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("connectors.count.spans.x.conditions[0]"),
            "{errs:?}"
        );
        assert!(errs[1].contains("spanevents.y.conditions[0]"), "{errs:?}");
    }
}
