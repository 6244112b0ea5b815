//! Visiting every item of a decoded request in one context, as a [`Target`], and removing the
//! ones the visitor drops — with the same pruning as the wire path
//! ([`crate::wire::edit_items`]): a container that had items and lost them all goes too.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::targets::{
    LogTarget, MetricTarget, Outer, OuterTarget, PointTarget, SpanEventTarget, SpanTarget,
};
use super::{Context, Owner, Target};
use crate::data::{metric_point_count, Telemetry};

/// Calls `visit` on every item of `ctx` in `t` (true = keep); returns how many items (spans,
/// log records, data points) went. Contexts that do not belong to the signal visit nothing.
/// Span events that go leave their span (a span event is not an item; nothing is counted).
pub fn walk(
    t: &mut Telemetry,
    ctx: Context,
    visit: &mut dyn FnMut(&mut dyn Target) -> bool,
) -> u64 {
    let mut cache: Vec<KeyValue> = Vec::new();
    let mut removed = 0u64;
    macro_rules! prune {
        ($v:expr, $x:ident, $body:expr) => {{
            let had = !$v.is_empty();
            $v.retain_mut(|$x| $body);
            !had || !$v.is_empty()
        }};
    }
    match (t, ctx) {
        (Telemetry::Traces(r), Context::Span) => {
            r.resource_spans.retain_mut(|rs| {
                let resource = &mut rs.resource;
                prune!(rs.scope_spans, ss, {
                    let scope = &mut ss.scope;
                    prune!(ss.spans, span, {
                        cache.clear();
                        let mut target = SpanTarget {
                            span,
                            outer: Outer {
                                resource,
                                scope: Some(scope),
                                cache: &mut cache,
                            },
                        };
                        let keep = visit(&mut target);
                        removed += u64::from(!keep);
                        keep
                    })
                })
            });
        }
        (Telemetry::Traces(r), Context::SpanEvent) => {
            for rs in &mut r.resource_spans {
                let resource = &mut rs.resource;
                for ss in &mut rs.scope_spans {
                    let scope = &mut ss.scope;
                    for span in &mut ss.spans {
                        // the events leave the span while they run, so `span.*` can be read
                        let mut events = std::mem::take(&mut span.events);
                        let parent = &*span;
                        events.retain_mut(|event| {
                            cache.clear();
                            let mut target = SpanEventTarget {
                                event,
                                span: parent,
                                outer: Outer {
                                    resource,
                                    scope: Some(scope),
                                    cache: &mut cache,
                                },
                            };
                            visit(&mut target)
                        });
                        span.events = events;
                    }
                }
            }
        }
        (Telemetry::Logs(r), Context::Log) => {
            r.resource_logs.retain_mut(|rl| {
                let resource = &mut rl.resource;
                prune!(rl.scope_logs, sl, {
                    let scope = &mut sl.scope;
                    prune!(sl.log_records, log, {
                        cache.clear();
                        let mut target = LogTarget {
                            log,
                            outer: Outer {
                                resource,
                                scope: Some(scope),
                                cache: &mut cache,
                            },
                        };
                        let keep = visit(&mut target);
                        removed += u64::from(!keep);
                        keep
                    })
                })
            });
        }
        (Telemetry::Metrics(r), Context::Metric) => {
            r.resource_metrics.retain_mut(|rm| {
                let resource = &mut rm.resource;
                prune!(rm.scope_metrics, sm, {
                    let scope = &mut sm.scope;
                    prune!(sm.metrics, metric, {
                        cache.clear();
                        let points = metric_point_count(metric);
                        let mut target = MetricTarget {
                            metric,
                            outer: Outer {
                                resource,
                                scope: Some(scope),
                                cache: &mut cache,
                            },
                        };
                        let keep = visit(&mut target);
                        if !keep {
                            removed += points;
                        }
                        keep
                    })
                })
            });
        }
        (Telemetry::Metrics(r), Context::DataPoint) => {
            r.resource_metrics.retain_mut(|rm| {
                let resource = &mut rm.resource;
                prune!(rm.scope_metrics, sm, {
                    let scope = &mut sm.scope;
                    prune!(sm.metrics, metric, {
                        points(metric, &mut |p| {
                            cache.clear();
                            let mut target = p.with(Outer {
                                resource,
                                scope: Some(scope),
                                cache: &mut cache,
                            });
                            let keep = visit(&mut target);
                            removed += u64::from(!keep);
                            keep
                        })
                    })
                })
            });
        }
        (t, Context::Resource) => {
            for r in t.resources_mut() {
                cache.clear();
                let mut target = OuterTarget {
                    outer: Outer {
                        resource: r,
                        scope: None,
                        cache: &mut cache,
                    },
                    own: Owner::Resource,
                };
                visit(&mut target);
            }
        }
        (t, Context::Scope) => {
            // every (resource, scope) pair, whichever the signal
            macro_rules! scopes {
                ($groups:expr, $scopes:ident) => {
                    for g in $groups {
                        for sc in &mut g.$scopes {
                            cache.clear();
                            let mut target = OuterTarget {
                                outer: Outer {
                                    resource: &mut g.resource,
                                    scope: Some(&mut sc.scope),
                                    cache: &mut cache,
                                },
                                own: Owner::Scope,
                            };
                            visit(&mut target);
                        }
                    }
                };
            }
            match t {
                Telemetry::Traces(r) => scopes!(&mut r.resource_spans, scope_spans),
                Telemetry::Logs(r) => scopes!(&mut r.resource_logs, scope_logs),
                Telemetry::Metrics(r) => scopes!(&mut r.resource_metrics, scope_metrics),
            }
        }
        _ => {}
    }
    removed
}

/// Visits the points of `metric` (true = keep); true when the metric keeps points (or had
/// none).
fn points(metric: &mut Metric, visit: &mut dyn FnMut(PointParts<'_>) -> bool) -> bool {
    let Metric {
        name,
        description,
        unit,
        data,
        ..
    } = metric;
    let kind = match data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    };
    macro_rules! each {
        ($pts:expr, |$p:ident| $number:expr) => {{
            let had = !$pts.is_empty();
            $pts.retain_mut(|$p| {
                visit(PointParts {
                    attributes: &mut $p.attributes,
                    number: $number,
                    start: &mut $p.start_time_unix_nano,
                    time: &mut $p.time_unix_nano,
                    metric_name: name,
                    metric_unit: unit,
                    metric_description: description,
                    metric_type: kind,
                })
            });
            !had || !$pts.is_empty()
        }};
    }
    match data {
        Some(Data::Gauge(g)) => each!(g.data_points, |p| Some(&mut p.value)),
        Some(Data::Sum(s)) => each!(s.data_points, |p| Some(&mut p.value)),
        Some(Data::Histogram(h)) => each!(h.data_points, |p| None),
        Some(Data::ExponentialHistogram(h)) => each!(h.data_points, |p| None),
        Some(Data::Summary(s)) => each!(s.data_points, |p| None),
        None => true,
    }
}

/// A data point's own fields and its metric's, before the outer part is attached.
pub struct PointParts<'t> {
    pub attributes: &'t mut Vec<KeyValue>,
    pub number:
        Option<&'t mut Option<opentelemetry_proto::tonic::metrics::v1::number_data_point::Value>>,
    pub start: &'t mut u64,
    pub time: &'t mut u64,
    pub metric_name: &'t str,
    pub metric_unit: &'t str,
    pub metric_description: &'t str,
    pub metric_type: i64,
}

impl<'t> PointParts<'t> {
    fn with(self, outer: Outer<'t>) -> PointTarget<'t> {
        PointTarget {
            attributes: self.attributes,
            number: self.number,
            start: self.start,
            time: self.time,
            metric_name: self.metric_name,
            metric_unit: self.metric_unit,
            metric_description: self.metric_description,
            metric_type: self.metric_type,
            outer,
        }
    }
}
