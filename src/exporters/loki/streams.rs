//! From OTLP logs to push requests: the label mapping (resource and record attributes,
//! static labels, `level`; `max_labels` with the rest demoted to structured metadata), the
//! line (`format`: structured metadata, logfmt or JSON; `max_line_size`), grouping by tenant
//! and stream, `max_active_streams`, and `max_streams_per_request`.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::any_value::Value as AV;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::labels::{level, selector, truncate};
use super::push::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};
use super::{LineFormat, LokiExporter, TooLong};
use crate::data::hex;
use crate::exporters::prometheus::translate::label_name;

fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        Some(AV::StringValue(s)) => s.clone(),
        Some(AV::IntValue(i)) => i.to_string(),
        Some(AV::DoubleValue(d)) => d.to_string(),
        Some(AV::BoolValue(b)) => b.to_string(),
        Some(AV::BytesValue(b)) => hex(b),
        Some(_) => any_to_json(v).to_string(),
        None => String::new(),
    }
}

fn any_to_json(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        Some(AV::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(AV::IntValue(i)) => serde_json::json!(i),
        Some(AV::DoubleValue(d)) => serde_json::json!(d),
        Some(AV::BoolValue(b)) => serde_json::json!(b),
        Some(AV::BytesValue(b)) => serde_json::Value::String(hex(b)),
        Some(AV::StringValueStrindex(i)) => serde_json::json!(i),
        Some(AV::ArrayValue(a)) => {
            serde_json::Value::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(AV::KvlistValue(kv)) => serde_json::Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .map(any_to_json)
                            .unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect(),
        ),
        None => serde_json::Value::Null,
    }
}

/// One entry on its way into a stream.
struct Entry {
    ts: u64,
    line: String,
    metadata: Vec<LabelPairAdapter>,
}

/// The streams of one tenant, by selector.
type Streams = BTreeMap<String, Vec<Entry>>;

impl LokiExporter {
    /// Turns a logs request into push requests, one per tenant.
    pub fn build(
        &self,
        req: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
    ) -> (Vec<(Option<String>, PushRequest)>, u64) {
        let cfg = &self.cfg;
        let mut tenants: BTreeMap<Option<String>, Streams> = BTreeMap::new();
        let mut dropped = 0u64;
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for rl in &req.resource_logs {
            let res: &[KeyValue] = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let tenant = match (&cfg.tenant_id, &cfg.tenant_from_attribute) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(attr)) => res
                    .iter()
                    .find(|kv| &kv.key == attr)
                    .and_then(|kv| kv.value.as_ref())
                    .map(any_to_string),
                _ => None,
            };
            for sl in &rl.scope_logs {
                let scope_name = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                for rec in &sl.log_records {
                    match self.entry(res, scope_name, rec, now_ns) {
                        Some((sel, e)) => tenants
                            .entry(tenant.clone())
                            .or_default()
                            .entry(sel)
                            .or_default()
                            .push(e),
                        None => dropped += 1,
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        active.retain(|_, seen| now.duration_since(*seen) < StdDuration::from_secs(3600));
        for (tenant, streams) in tenants {
            let mut kept = Vec::new();
            for (sel, mut entries) in streams {
                let key = (tenant.clone().unwrap_or_default(), sel.clone());
                if !active.contains_key(&key) && active.len() >= cfg.max_active_streams {
                    self.c.dropped_stream_limit.add(entries.len() as u64);
                    dropped += entries.len() as u64;
                    continue;
                }
                active.insert(key, now);
                entries.sort_by_key(|e| e.ts);
                kept.push(StreamAdapter {
                    labels: sel,
                    entries: entries
                        .into_iter()
                        .map(|e| EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: (e.ts / 1_000_000_000) as i64,
                                nanos: (e.ts % 1_000_000_000) as i32,
                            }),
                            line: e.line,
                            structured_metadata: e.metadata,
                        })
                        .collect(),
                });
            }
            for chunk in kept.chunks(cfg.max_streams_per_request.max(1)) {
                out.push((
                    tenant.clone(),
                    PushRequest {
                        streams: chunk.to_vec(),
                    },
                ));
            }
        }
        (out, dropped)
    }

    fn entry(
        &self,
        res: &[KeyValue],
        scope_name: &str,
        rec: &LogRecord,
        now_ns: u64,
    ) -> Option<(String, Entry)> {
        let cfg = &self.cfg;
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut metadata: Vec<(String, String)> = Vec::new();
        for kv in res {
            let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
            match cfg.labels.resource.get(&kv.key) {
                Some(name) => {
                    labels.insert(name.clone(), v);
                }
                None if cfg.tenant_from_attribute.as_deref() == Some(kv.key.as_str()) => {}
                None => metadata.push((label_name(&kv.key), v)),
            }
        }
        labels
            .entry("service_name".into())
            .or_insert_with(|| "unknown_service".into());
        for kv in &rec.attributes {
            let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
            match cfg.labels.attributes.get(&kv.key) {
                Some(name) => {
                    labels.insert(name.clone(), v);
                }
                None => metadata.push((label_name(&kv.key), v)),
            }
        }
        for (k, v) in &cfg.labels.static_labels {
            labels.insert(k.clone(), v.clone());
        }
        if cfg.labels.level {
            labels.insert(
                "level".into(),
                level(rec.severity_number, &rec.severity_text).into(),
            );
        }
        // at most max_labels: service_name and level first, then by name; the rest is metadata
        if labels.len() > cfg.max_labels {
            let mut order: Vec<String> = labels.keys().cloned().collect();
            order.sort_by_key(|k| (k != "service_name", k != "level", k.clone()));
            for k in order.into_iter().skip(cfg.max_labels) {
                if let Some(v) = labels.remove(&k) {
                    self.c.demoted_labels.inc();
                    metadata.push((k, v));
                }
            }
        }
        for v in labels.values_mut() {
            if v.len() > cfg.max_label_value_length {
                *v = truncate(v, cfg.max_label_value_length);
                self.c.truncated_values.inc();
            }
        }
        if !rec.trace_id.is_empty() {
            metadata.push(("trace_id".into(), hex(&rec.trace_id)));
        }
        if !rec.span_id.is_empty() {
            metadata.push(("span_id".into(), hex(&rec.span_id)));
        }
        if rec.severity_number != 0 {
            metadata.push(("severity_number".into(), rec.severity_number.to_string()));
        }
        if !scope_name.is_empty() {
            metadata.push(("scope_name".into(), scope_name.to_string()));
        }
        let body = rec.body.as_ref().map(any_to_string).unwrap_or_default();
        let (mut line, metadata) = match cfg.format {
            LineFormat::StructuredMetadata => (body, metadata),
            LineFormat::Logfmt => {
                let mut l = body;
                for (k, v) in &metadata {
                    let quoted = v.is_empty() || v.contains([' ', '"', '=']);
                    if quoted {
                        l.push_str(&format!(" {k}={}", serde_json::Value::String(v.clone())));
                    } else {
                        l.push_str(&format!(" {k}={v}"));
                    }
                }
                (l, vec![])
            }
            LineFormat::Json => {
                let mut m = serde_json::Map::new();
                m.insert(
                    "body".into(),
                    rec.body
                        .as_ref()
                        .map(any_to_json)
                        .unwrap_or(serde_json::Value::Null),
                );
                for (k, v) in metadata {
                    m.insert(k, serde_json::Value::String(v));
                }
                (serde_json::Value::Object(m).to_string(), vec![])
            }
        };
        let max_line = cfg.max_line_size.bytes() as usize;
        if line.len() > max_line {
            match cfg.line_too_long {
                TooLong::Drop => {
                    self.c.dropped_lines.inc();
                    return None;
                }
                TooLong::Truncate => {
                    line = truncate(&line, max_line);
                    self.c.truncated_lines.inc();
                }
            }
        }
        let ts = if rec.time_unix_nano != 0 {
            rec.time_unix_nano
        } else if rec.observed_time_unix_nano != 0 {
            rec.observed_time_unix_nano
        } else {
            now_ns
        };
        Some((
            selector(&labels),
            Entry {
                ts,
                line,
                metadata: metadata
                    .into_iter()
                    .map(|(name, value)| LabelPairAdapter { name, value })
                    .collect(),
            },
        ))
    }
}
