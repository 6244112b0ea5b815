//! Splitting a request by routing key: every item goes to the backend the ring gives its key,
//! under a copy of its resource and scope. `traceID` keys spans (and log records) by trace id,
//! so every span of a trace reaches one backend; `streamID` keys each data point by its
//! resource, metric name and point attributes, so every point of a series does; `service`,
//! `resource` and `metric` key whole resources or metrics; `attributes` keys spans by the
//! values of `routing_attributes` (span first, then resource). `traceID` routing of a request
//! that arrives as protobuf runs on the encoding ([`split_encoded_traces`]), never decoded.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::ring::{key_hash, KeyHasher, Ring};
use super::RoutingKey;
use crate::component::Signal;
use crate::data::{Encoded, Telemetry};

/// The parts of `data` per backend index (backends without items are left out).
pub fn split(
    data: Telemetry,
    key: RoutingKey,
    attrs: &[String],
    ring: &Ring,
) -> Vec<(usize, Telemetry)> {
    let owner = |h: u64| ring.get(h).unwrap_or(0);
    match data {
        Telemetry::Traces(r) => traces(r, key, attrs, &owner)
            .into_iter()
            .map(|(b, r)| (b, Telemetry::Traces(r)))
            .collect(),
        Telemetry::Metrics(r) => metrics(r, key, &owner)
            .into_iter()
            .map(|(b, r)| (b, Telemetry::Metrics(r)))
            .collect(),
        Telemetry::Logs(r) => logs(r, key, &owner)
            .into_iter()
            .map(|(b, r)| (b, Telemetry::Logs(r)))
            .collect(),
    }
}

/// `traceID` routing of an encoded traces request, without decoding it: one walk records each
/// span's backend (its trace id hashed as [`split`] hashes it, so both paths route alike), then
/// each backend with spans gets the request with every other span removed
/// ([`crate::wire::edit_items`]: the bytes it keeps are copied as they came; a scope or resource
/// left without spans goes). A request whose spans all have one owner goes as it is, uncopied.
/// `None` when the bytes are not a well-formed request (the caller decodes; not reached for
/// bytes [`crate::wire::scan`] accepted).
pub fn split_encoded_traces(e: &Encoded, ring: &Ring) -> Option<Vec<(usize, Encoded)>> {
    let mut owners: Vec<usize> = Vec::with_capacity(e.items.min(1 << 20) as usize);
    crate::wire::edit_items(Signal::Traces, &e.bytes, |item| {
        let h = key_hash(&[item.bytes_field(1).unwrap_or_default()]);
        owners.push(ring.get(h).unwrap_or(0));
    })?;
    let mut distinct = owners.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 1 {
        return Some(distinct.into_iter().map(|b| (b, e.clone())).collect());
    }
    let mut out = Vec::with_capacity(distinct.len());
    for b in distinct {
        let mut i = 0;
        let edited = crate::wire::edit_items(Signal::Traces, &e.bytes, |item| {
            if owners.get(i) != Some(&b) {
                item.remove();
            }
            i += 1;
        })?;
        out.push((
            b,
            Encoded {
                signal: Signal::Traces,
                items: e.items.saturating_sub(edited.removed),
                bytes: edited.bytes,
            },
        ));
    }
    Some(out)
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> Vec<u8> {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.as_bytes().to_vec(),
        Some(other) => format!("{other:?}").into_bytes(),
        None => Vec::new(),
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

/// The hash of a resource's identity (its attributes, in any order) or of its `service.name`.
fn resource_hash(res: &Option<Resource>, key: RoutingKey) -> u64 {
    let attrs = res.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
    match key {
        RoutingKey::Service => key_hash(&[&attr(attrs, "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default()]),
        _ => {
            let mut h = KeyHasher::new();
            hash_attrs(&mut h, attrs);
            h.finish()
        }
    }
}

/// Feeds attributes to `h` in key order, so the same set in another order hashes the same.
fn hash_attrs(h: &mut KeyHasher, attrs: &[KeyValue]) {
    let mut feed = |kv: &KeyValue| {
        h.part(kv.key.as_bytes());
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => h.part(s.as_bytes()),
            Some(any_value::Value::IntValue(i)) => h.part(&i.to_le_bytes()),
            Some(any_value::Value::BoolValue(b)) => h.part(&[u8::from(*b)]),
            Some(any_value::Value::DoubleValue(d)) => h.part(&d.to_le_bytes()),
            Some(other) => h.part(&other_bytes(other)),
            None => h.part(&[]),
        }
    };
    if attrs.windows(2).all(|w| w[0].key <= w[1].key) {
        attrs.iter().for_each(&mut feed);
    } else {
        let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted.into_iter().for_each(feed);
    }
}

/// A list, map or bytes value as bytes to hash (its protobuf encoding).
fn other_bytes(v: &any_value::Value) -> Vec<u8> {
    opentelemetry_proto::tonic::common::v1::AnyValue {
        value: Some(v.clone()),
    }
    .encode_to_vec()
}

type Owner<'a> = &'a dyn Fn(u64) -> usize;

fn traces(
    r: ExportTraceServiceRequest,
    key: RoutingKey,
    attrs: &[String],
    owner: Owner<'_>,
) -> BTreeMap<usize, ExportTraceServiceRequest> {
    let mut out: BTreeMap<usize, ExportTraceServiceRequest> = BTreeMap::new();
    for mut rs in r.resource_spans {
        if matches!(key, RoutingKey::Service | RoutingKey::Resource) {
            let b = owner(resource_hash(&rs.resource, key));
            out.entry(b).or_default().resource_spans.push(rs);
            continue;
        }
        let res_attrs = match key {
            RoutingKey::Attributes => rs
                .resource
                .as_ref()
                .map(|r| r.attributes.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut per: BTreeMap<usize, opentelemetry_proto::tonic::trace::v1::ResourceSpans> =
            BTreeMap::new();
        for mut ss in std::mem::take(&mut rs.scope_spans) {
            let mut scoped: BTreeMap<usize, Vec<_>> = BTreeMap::new();
            for span in std::mem::take(&mut ss.spans) {
                let h = match key {
                    RoutingKey::Attributes => {
                        let values: Vec<Vec<u8>> = attrs
                            .iter()
                            .map(|k| {
                                attr(&span.attributes, k)
                                    .or_else(|| attr(&res_attrs, k))
                                    .map(|kv| text(&kv.value))
                                    .unwrap_or_default()
                            })
                            .collect();
                        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                        key_hash(&refs)
                    }
                    _ => key_hash(&[&span.trace_id]),
                };
                scoped.entry(owner(h)).or_default().push(span);
            }
            for (b, spans) in scoped {
                let mut part = ss.clone();
                part.spans = spans;
                per.entry(b)
                    .or_insert_with(|| opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: vec![],
                        schema_url: rs.schema_url.clone(),
                    })
                    .scope_spans
                    .push(part);
            }
        }
        for (b, part) in per {
            out.entry(b).or_default().resource_spans.push(part);
        }
    }
    out
}

fn logs(
    r: ExportLogsServiceRequest,
    key: RoutingKey,
    owner: Owner<'_>,
) -> BTreeMap<usize, ExportLogsServiceRequest> {
    let mut out: BTreeMap<usize, ExportLogsServiceRequest> = BTreeMap::new();
    for mut rl in r.resource_logs {
        let rh = resource_hash(&rl.resource, key);
        if key != RoutingKey::TraceId {
            out.entry(owner(rh)).or_default().resource_logs.push(rl);
            continue;
        }
        let mut per: BTreeMap<usize, opentelemetry_proto::tonic::logs::v1::ResourceLogs> =
            BTreeMap::new();
        for mut sl in std::mem::take(&mut rl.scope_logs) {
            let mut scoped: BTreeMap<usize, Vec<_>> = BTreeMap::new();
            for rec in std::mem::take(&mut sl.log_records) {
                // a record outside a trace stays with its resource
                let h = if rec.trace_id.is_empty() {
                    rh
                } else {
                    key_hash(&[&rec.trace_id])
                };
                scoped.entry(owner(h)).or_default().push(rec);
            }
            for (b, recs) in scoped {
                let mut part = sl.clone();
                part.log_records = recs;
                per.entry(b)
                    .or_insert_with(|| opentelemetry_proto::tonic::logs::v1::ResourceLogs {
                        resource: rl.resource.clone(),
                        scope_logs: vec![],
                        schema_url: rl.schema_url.clone(),
                    })
                    .scope_logs
                    .push(part);
            }
        }
        for (b, part) in per {
            out.entry(b).or_default().resource_logs.push(part);
        }
    }
    out
}

fn metrics(
    r: ExportMetricsServiceRequest,
    key: RoutingKey,
    owner: Owner<'_>,
) -> BTreeMap<usize, ExportMetricsServiceRequest> {
    let mut out: BTreeMap<usize, ExportMetricsServiceRequest> = BTreeMap::new();
    for mut rm in r.resource_metrics {
        if matches!(key, RoutingKey::Service | RoutingKey::Resource) {
            let b = owner(resource_hash(&rm.resource, key));
            out.entry(b).or_default().resource_metrics.push(rm);
            continue;
        }
        let res = resource_hash(&rm.resource, RoutingKey::Resource).to_le_bytes();
        let mut per: BTreeMap<usize, opentelemetry_proto::tonic::metrics::v1::ResourceMetrics> =
            BTreeMap::new();
        for mut sm in std::mem::take(&mut rm.scope_metrics) {
            let mut scoped: BTreeMap<usize, Vec<Metric>> = BTreeMap::new();
            for m in std::mem::take(&mut sm.metrics) {
                if key == RoutingKey::StreamId {
                    for (b, part) in by_stream(m, &res, owner) {
                        scoped.entry(b).or_default().push(part);
                    }
                } else {
                    let b = owner(key_hash(&[m.name.as_bytes()]));
                    scoped.entry(b).or_default().push(m);
                }
            }
            for (b, metrics) in scoped {
                let mut part = sm.clone();
                part.metrics = metrics;
                per.entry(b)
                    .or_insert_with(
                        || opentelemetry_proto::tonic::metrics::v1::ResourceMetrics {
                            resource: rm.resource.clone(),
                            scope_metrics: vec![],
                            schema_url: rm.schema_url.clone(),
                        },
                    )
                    .scope_metrics
                    .push(part);
            }
        }
        for (b, part) in per {
            out.entry(b).or_default().resource_metrics.push(part);
        }
    }
    out
}

/// One metric's points by stream (resource, name, point attributes): the metric per backend.
fn by_stream(mut m: Metric, res: &[u8], owner: Owner<'_>) -> Vec<(usize, Metric)> {
    let data = m.data.take();
    let name = m.name.clone();
    let stream = |attrs: &[KeyValue]| {
        let mut h = KeyHasher::new();
        h.part(res);
        h.part(name.as_bytes());
        hash_attrs(&mut h, attrs);
        owner(h.finish())
    };
    macro_rules! part {
        ($d:ident, $variant:ident) => {{
            let mut groups: BTreeMap<usize, Vec<_>> = BTreeMap::new();
            for p in std::mem::take(&mut $d.data_points) {
                groups.entry(stream(&p.attributes)).or_default().push(p);
            }
            groups
                .into_iter()
                .map(|(b, points)| {
                    let mut d = $d.clone();
                    d.data_points = points;
                    let part = Metric {
                        data: Some(metric::Data::$variant(d)),
                        ..m.clone()
                    };
                    (b, part)
                })
                .collect()
        }};
    }
    match data {
        Some(metric::Data::Gauge(mut d)) => part!(d, Gauge),
        Some(metric::Data::Sum(mut d)) => part!(d, Sum),
        Some(metric::Data::Histogram(mut d)) => part!(d, Histogram),
        Some(metric::Data::ExponentialHistogram(mut d)) => part!(d, ExponentialHistogram),
        Some(metric::Data::Summary(mut d)) => part!(d, Summary),
        None => vec![(owner(key_hash(&[res, name.as_bytes()])), m)],
    }
}
