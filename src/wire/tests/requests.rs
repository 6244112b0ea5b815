//! Valid requests of every signal with every field in play (ids good and bad, nested values,
//! entity refs, every metric type), and the base requests the mutations start from.

use super::*;
use crate::data::Telemetry;
use crate::testdata::{self, Rng};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, Exemplar,
};
use opentelemetry_proto::tonic::trace::v1::span;

// ---- valid requests with every field in play ----

pub(super) fn id(rng: &mut Rng, good: usize) -> Vec<u8> {
    match rng.below(12) {
        0 => vec![],
        1 => vec![0; good],
        2 => {
            let n = 1 + rng.below(20) as usize;
            rng.bytes(n)
        }
        3 => rng.bytes(24 - good),
        _ => rng.bytes(good),
    }
}

pub(super) fn rand_any(rng: &mut Rng, depth: u32) -> AnyValue {
    use any_value::Value as A;
    let v = match rng.below(if depth > 0 { 10 } else { 7 }) {
        0 => None,
        1 => Some(A::StringValue("wert ✓".into())),
        2 => Some(A::BoolValue(true)),
        3 => Some(A::IntValue(-(rng.below(1 << 40) as i64))),
        4 => Some(A::DoubleValue(1.5)),
        5 => {
            let n = rng.below(9) as usize + 1;
            Some(A::BytesValue(rng.bytes(n)))
        }
        6 => Some(A::StringValueStrindex(rng.below(100) as i32)),
        7 | 8 => Some(A::KvlistValue(KeyValueList {
            values: (0..rng.below(3))
                .map(|i| KeyValue {
                    key: format!("k{i}"),
                    value: Some(rand_any(rng, depth - 1)),
                    key_strindex: rng.below(2) as i32,
                })
                .collect(),
        })),
        _ => Some(A::ArrayValue(ArrayValue {
            values: (0..rng.below(3))
                .map(|_| rand_any(rng, depth - 1))
                .collect(),
        })),
    };
    AnyValue { value: v }
}

pub(super) fn attrs(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(3))
        .map(|i| KeyValue {
            key: format!("attr.{i}"),
            value: (rng.below(5) != 0).then(|| rand_any(rng, 3)),
            key_strindex: 0,
        })
        .collect()
}

pub(super) fn entity_refs(rng: &mut Rng) -> Vec<EntityRef> {
    (0..rng.below(2))
        .map(|_| EntityRef {
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into(), "service.instance.id".into()],
            description_keys: vec!["service.version".into()],
        })
        .collect()
}

pub(super) fn rich_traces(seed: u64) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::traces(seed, 1 + rng.below(2) as usize, rng.below(4) as usize);
    for rs in &mut r.resource_spans {
        if let Some(res) = &mut rs.resource {
            res.entity_refs = entity_refs(&mut rng);
            res.attributes.extend(attrs(&mut rng));
        }
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.trace_id = id(&mut rng, 16);
                s.span_id = id(&mut rng, 8);
                s.parent_span_id = match rng.below(4) {
                    0 => id(&mut rng, 8),
                    _ => s.parent_span_id.clone(),
                };
                s.trace_state = "rojo=00f067aa0ba902b7".into();
                s.attributes.truncate(rng.below(3) as usize);
                s.attributes.extend(attrs(&mut rng));
                s.dropped_attributes_count = rng.below(3) as u32;
                s.dropped_events_count = rng.below(2) as u32;
                s.dropped_links_count = rng.below(2) as u32;
                s.events.extend((0..rng.below(3)).map(|i| span::Event {
                    time_unix_nano: i,
                    name: "exception".into(),
                    attributes: attrs(&mut rng),
                    dropped_attributes_count: rng.below(2) as u32,
                }));
                s.links = (0..rng.below(3))
                    .map(|_| span::Link {
                        trace_id: id(&mut rng, 16),
                        span_id: id(&mut rng, 8),
                        trace_state: "k=v".into(),
                        attributes: attrs(&mut rng),
                        dropped_attributes_count: 1,
                        flags: 0x300,
                    })
                    .collect();
                if let Some(st) = &mut s.status {
                    st.message = "ünavailable".into();
                }
            }
        }
    }
    r
}

pub(super) fn rich_logs(seed: u64) -> ExportLogsServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::logs(seed, 1 + rng.below(2) as usize, rng.below(4) as usize);
    for rl in &mut r.resource_logs {
        if let Some(res) = &mut rl.resource {
            res.entity_refs = entity_refs(&mut rng);
        }
        for sl in &mut rl.scope_logs {
            for l in &mut sl.log_records {
                l.trace_id = id(&mut rng, 16);
                l.span_id = id(&mut rng, 8);
                l.body = (rng.below(4) != 0).then(|| rand_any(&mut rng, 3));
                l.attributes.truncate(rng.below(3) as usize);
                l.attributes.extend(attrs(&mut rng));
                l.event_name = ["", "app.start", "ärger"][rng.below(3) as usize].into();
                l.dropped_attributes_count = rng.below(2) as u32;
            }
        }
    }
    r
}

pub(super) fn rich_metrics(seed: u64) -> ExportMetricsServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::metrics(seed, 1 + rng.below(2) as usize, rng.below(3) as usize);
    let exemplars = |rng: &mut Rng| -> Vec<Exemplar> {
        (0..rng.below(2))
            .map(|_| Exemplar {
                filtered_attributes: attrs(rng),
                time_unix_nano: 17,
                span_id: id(rng, 8),
                trace_id: id(rng, 16),
                value: match rng.below(3) {
                    0 => None,
                    1 => Some(exemplar::Value::AsDouble(2.5)),
                    _ => Some(exemplar::Value::AsInt(-3)),
                },
            })
            .collect()
    };
    for rm in &mut r.resource_metrics {
        for sm in &mut rm.scope_metrics {
            for m in &mut sm.metrics {
                m.metadata = attrs(&mut rng);
                match &mut m.data {
                    Some(metric::Data::Gauge(g)) => {
                        for p in &mut g.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.value = match rng.below(3) {
                                0 => None,
                                1 => Some(number_data_point::Value::AsInt(-7)),
                                _ => p.value,
                            };
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        for p in &mut s.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.flags = rng.below(2) as u32;
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &mut h.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.sum = (rng.below(2) == 0).then_some(1.0);
                            p.bucket_counts = (0..rng.below(4)).map(|i| i * 1000).collect();
                            p.explicit_bounds = (0..rng.below(3)).map(|i| i as f64).collect();
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for p in &mut h.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.scale = -(rng.below(5) as i32);
                            p.negative = (rng.below(2) == 0).then(|| {
                                exponential_histogram_data_point::Buckets {
                                    offset: -4,
                                    bucket_counts: vec![300, 0, 1 << 40],
                                }
                            });
                            p.zero_threshold = 1e-9;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    r
}

pub(super) fn base(sig: Signal, seed: u64) -> Vec<u8> {
    let t = match (sig, seed % 3) {
        (Signal::Traces, 0) => {
            Telemetry::Traces(testdata::traces(seed, 1, 1 + (seed % 3) as usize))
        }
        (Signal::Traces, _) => Telemetry::Traces(rich_traces(seed)),
        (Signal::Logs, 0) => Telemetry::Logs(testdata::logs(seed, 1, 1 + (seed % 3) as usize)),
        (Signal::Logs, _) => Telemetry::Logs(rich_logs(seed)),
        (Signal::Metrics, 0) => Telemetry::Metrics(testdata::metrics(seed, 1, 1)),
        (Signal::Metrics, _) => Telemetry::Metrics(rich_metrics(seed)),
    };
    encode(&t)
}
