//! Split and merge of OTLP requests, inside their resource and scope wrappers.
//!
//! Contract: [`split_front`] takes the first `n` items of a request in order; each item it
//! moves keeps its resource and scope (the wrapper is cloned around the moved items), and no
//! item is lost or duplicated (property-tested below). [`merge`] appends one request to
//! another of the same signal. The batch stage ([`crate::pipeline::batch`]) is the user.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    self as pb, metric, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

use super::{metric_point_count, Telemetry};

/// A level of the OTLP tree that can give up its first `n` items.
trait Splittable {
    fn count(&self) -> u64;
    /// Removes and returns the first `n` items, `0 < n < count()`, inside a copy of this
    /// level's wrapper (resource, scope, metric description).
    fn split_front(&mut self, n: u64) -> Self;
}

/// Removes and returns the first `n` items of a list of groups.
fn take_front<T: Splittable>(v: &mut Vec<T>, mut n: u64) -> Vec<T> {
    let mut whole = 0;
    while whole < v.len() && n > 0 {
        let c = v[whole].count();
        if c > n {
            break;
        }
        n -= c;
        whole += 1;
    }
    let mut out: Vec<T> = v.drain(..whole).collect();
    if n > 0 {
        if let Some(first) = v.first_mut() {
            out.push(first.split_front(n));
        }
    }
    out
}

impl Splittable for ResourceSpans {
    fn count(&self) -> u64 {
        self.scope_spans.iter().map(|s| s.spans.len() as u64).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceSpans {
            resource: self.resource.clone(),
            scope_spans: take_front(&mut self.scope_spans, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeSpans {
    fn count(&self) -> u64 {
        self.spans.len() as u64
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeSpans {
            scope: self.scope.clone(),
            spans: self.spans.drain(..n as usize).collect(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ResourceLogs {
    fn count(&self) -> u64 {
        self.scope_logs
            .iter()
            .map(|s| s.log_records.len() as u64)
            .sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceLogs {
            resource: self.resource.clone(),
            scope_logs: take_front(&mut self.scope_logs, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeLogs {
    fn count(&self) -> u64 {
        self.log_records.len() as u64
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeLogs {
            scope: self.scope.clone(),
            log_records: self.log_records.drain(..n as usize).collect(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ResourceMetrics {
    fn count(&self) -> u64 {
        self.scope_metrics.iter().map(Splittable::count).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceMetrics {
            resource: self.resource.clone(),
            scope_metrics: take_front(&mut self.scope_metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeMetrics {
    fn count(&self) -> u64 {
        self.metrics.iter().map(metric_point_count).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeMetrics {
            scope: self.scope.clone(),
            metrics: take_front(&mut self.metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for Metric {
    fn count(&self) -> u64 {
        metric_point_count(self)
    }
    fn split_front(&mut self, n: u64) -> Self {
        let n = n as usize;
        let data = match &mut self.data {
            Some(metric::Data::Gauge(g)) => Some(metric::Data::Gauge(pb::Gauge {
                data_points: g.data_points.drain(..n).collect(),
            })),
            Some(metric::Data::Sum(s)) => Some(metric::Data::Sum(pb::Sum {
                data_points: s.data_points.drain(..n).collect(),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            })),
            Some(metric::Data::Histogram(h)) => Some(metric::Data::Histogram(pb::Histogram {
                data_points: h.data_points.drain(..n).collect(),
                aggregation_temporality: h.aggregation_temporality,
            })),
            Some(metric::Data::ExponentialHistogram(h)) => Some(
                metric::Data::ExponentialHistogram(pb::ExponentialHistogram {
                    data_points: h.data_points.drain(..n).collect(),
                    aggregation_temporality: h.aggregation_temporality,
                }),
            ),
            Some(metric::Data::Summary(s)) => Some(metric::Data::Summary(pb::Summary {
                data_points: s.data_points.drain(..n).collect(),
            })),
            None => None,
        };
        Metric {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            metadata: self.metadata.clone(),
            data,
        }
    }
}

/// Removes and returns the first `n` items of `t` (all of them when `n` ≥ the count).
pub fn split_front(t: &mut Telemetry, n: u64) -> Telemetry {
    match t {
        Telemetry::Traces(r) => Telemetry::Traces(ExportTraceServiceRequest {
            resource_spans: take_front(&mut r.resource_spans, n),
        }),
        Telemetry::Metrics(r) => Telemetry::Metrics(ExportMetricsServiceRequest {
            resource_metrics: take_front(&mut r.resource_metrics, n),
        }),
        Telemetry::Logs(r) => Telemetry::Logs(ExportLogsServiceRequest {
            resource_logs: take_front(&mut r.resource_logs, n),
        }),
    }
}

/// Appends `more` to `into` (same signal; a different signal is handed back).
pub fn merge(into: &mut Telemetry, more: Telemetry) -> Result<(), Telemetry> {
    match (into, more) {
        (Telemetry::Traces(a), Telemetry::Traces(b)) => a.resource_spans.extend(b.resource_spans),
        (Telemetry::Metrics(a), Telemetry::Metrics(b)) => {
            a.resource_metrics.extend(b.resource_metrics)
        }
        (Telemetry::Logs(a), Telemetry::Logs(b)) => a.resource_logs.extend(b.resource_logs),
        (_, other) => return Err(other),
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::component::Signal;
    use crate::testdata;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use proptest::prelude::*;

    /// (resource name, scope name, span name) for every span, in order.
    pub(crate) fn flat(t: &Telemetry) -> Vec<(String, String, String)> {
        let Telemetry::Traces(r) = t else {
            return vec![];
        };
        let mut v = vec![];
        for rs in &r.resource_spans {
            let res = format!("{:?}", rs.resource);
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for s in &ss.spans {
                    v.push((res.clone(), scope.clone(), s.name.clone()));
                }
            }
        }
        v
    }

    pub(crate) fn build(shape: &[Vec<usize>]) -> Telemetry {
        let mut n = 0;
        Telemetry::Traces(ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .enumerate()
                .map(|(ri, scopes)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![testdata::kv("r", testdata::s(&ri.to_string()))],
                        ..Default::default()
                    }),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(si, count)| ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("s{si}"),
                                ..Default::default()
                            }),
                            spans: (0..*count)
                                .map(|_| {
                                    n += 1;
                                    Span {
                                        name: format!("span{n}"),
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        })
    }

    proptest! {
        /// Splitting into pieces of at most `max` conserves every item, in order, each still
        /// inside its own resource and scope, and no piece exceeds `max`.
        #[test]
        fn split_conserves_items_order_and_context(
            shape in prop::collection::vec(prop::collection::vec(0usize..20, 0..4), 0..5),
            max in 1u64..30,
        ) {
            let original = build(&shape);
            let want = flat(&original);
            let mut rest = original.clone();
            let mut got = vec![];
            loop {
                let before = rest.item_count();
                let piece = split_front(&mut rest, max);
                prop_assert!(piece.item_count() <= max);
                prop_assert_eq!(piece.item_count() + rest.item_count(), before);
                got.extend(flat(&piece));
                if rest.item_count() == 0 { break; }
                prop_assert_eq!(piece.item_count(), max);
            }
            prop_assert_eq!(got, want);
        }

        /// Merging requests and splitting the result gives back every item exactly once, in order.
        #[test]
        fn merge_then_split_round_trips(
            shapes in prop::collection::vec(prop::collection::vec(prop::collection::vec(0usize..6, 1..3), 1..3), 1..5),
            max in 1u64..25,
        ) {
            let parts: Vec<Telemetry> = shapes.iter().map(|s| build(s)).collect();
            let want: Vec<_> = parts.iter().flat_map(flat).collect();
            let mut merged = Telemetry::empty(Signal::Traces);
            for p in parts {
                merge(&mut merged, p).unwrap();
            }
            let mut got = vec![];
            while merged.item_count() > 0 {
                got.extend(flat(&split_front(&mut merged, max)));
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn metrics_split_inside_a_metric_keeps_its_description() {
        let mut m = Telemetry::Metrics(testdata::metrics(1, 2, 3)); // 2 resources × 5 metrics × 3 points
        assert_eq!(m.item_count(), 30);
        let head = split_front(&mut m, 4);
        assert_eq!(head.item_count(), 4);
        assert_eq!(m.item_count(), 26);
        let Telemetry::Metrics(h) = &head else {
            panic!()
        };
        let metrics = &h.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[1].name, "process.memory.usage");
        assert_eq!(metric_point_count(&metrics[1]), 1);
        let Telemetry::Metrics(rest) = &m else {
            panic!()
        };
        assert_eq!(
            rest.resource_metrics[0].scope_metrics[0].metrics[0].name,
            "process.memory.usage"
        );
        assert_eq!(
            rest.resource_metrics[0].resource,
            h.resource_metrics[0].resource
        );
    }

    #[test]
    fn logs_split_and_merge() {
        let mut a = Telemetry::Logs(testdata::logs(1, 2, 5));
        let b = Telemetry::Logs(testdata::logs(2, 1, 3));
        merge(&mut a, b).unwrap();
        assert_eq!(a.item_count(), 13);
        let head = split_front(&mut a, 7);
        assert_eq!((head.item_count(), a.item_count()), (7, 6));
        assert!(merge(&mut a, Telemetry::Traces(Default::default())).is_err());
    }
}
