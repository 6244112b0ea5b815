//! `loki` (push): OTLP logs to Loki's `/loki/api/v1/push`.
//!
//! Labels come from a small, configurable mapping (defaults: `service.name` → `service_name`,
//! always set, `unknown_service` when missing; `service.namespace`, `deployment.environment`,
//! `k8s.namespace.name`, `k8s.pod.name`, `k8s.container.name`; severity → `level`), sanitized to
//! `[a-zA-Z_][a-zA-Z0-9_]*`. At most `max_labels` (15, Loki's default) become labels; the rest
//! are kept as structured metadata and counted. Label values over 2048 bytes are truncated with a
//! `…[truncated]` marker and counted. Everything that is not a label — other resource and log
//! attributes, `trace_id`, `span_id`, `severity_number`, the scope name — goes to structured
//! metadata (default) or, with `format: logfmt | json`, into the line. Bodies: strings as they
//! are, maps and arrays as JSON. Entries are grouped by stream and sorted by timestamp; lines over
//! `max_line_size` are truncated or dropped (counted); at most `max_active_streams` distinct
//! streams are kept alive (entries for new streams beyond it are dropped and counted); a request
//! carries at most `max_streams_per_request` streams. One request per tenant (`tenant_id`, or
//! `tenant_from_attribute` on the resource).
//!
//! Wire format: the project's own `proto/loki/push.proto` as hand-written prost structs, snappy
//! block-compressed, `Content-Type: application/x-protobuf`; or `encoding: json`. Loki answers
//! 204; 429, 5xx and connection errors are retried (honouring `Retry-After`); other 4xx are
//! permanent: counted, logged once per status with Loki's reason, never retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AV;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde::{Deserialize, Serialize};

use super::prometheus::translate::label_name;
use super::retry::{classify_http, parse_retry_after, ExportError, RetryConfig};
use super::tls::TlsClientConfig;
use super::{validate_headers, BuildError, ExportOutcome, Exporter, QueueConfig};
use crate::config::units::{ByteSize, Duration};
use crate::config::Diagnostics;
use crate::data::{hex, Batch, Telemetry};
use crate::telemetry::metrics::{Counter, Registry};

// ---------------------------------------------------------------------------------------------
// wire types (proto/loki/push.proto)

#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<prost_types::Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

// ---------------------------------------------------------------------------------------------
// config

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LokiEncoding {
    #[default]
    Protobuf,
    Json,
}

/// Where non-label fields go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// The line is the body; the rest is structured metadata.
    #[default]
    StructuredMetadata,
    /// `body key=value …` in the line.
    Logfmt,
    /// `{"body": …, "key": …}` in the line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    #[default]
    Truncate,
    Drop,
}

/// `labels`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Resource attribute → label name.
    pub resource: BTreeMap<String, String>,
    /// Log record attribute → label name.
    pub attributes: BTreeMap<String, String>,
    /// Fixed labels on every stream.
    #[serde(rename = "static")]
    pub static_labels: BTreeMap<String, String>,
    /// Map severity to a `level` label (trace, debug, info, warn, error, fatal).
    pub level: bool,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        let resource = [
            ("service.name", "service_name"),
            ("service.namespace", "service_namespace"),
            ("deployment.environment", "deployment_environment"),
            ("k8s.namespace.name", "k8s_namespace_name"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("k8s.container.name", "k8s_container_name"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        LabelsConfig {
            resource,
            attributes: BTreeMap::new(),
            static_labels: BTreeMap::new(),
            level: true,
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// `exporters.loki`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LokiConfig {
    /// The push URL, e.g. `http://loki:3100/loki/api/v1/push`.
    pub endpoint: String,
    pub encoding: LokiEncoding,
    /// Static tenant (`X-Scope-OrgID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Resource attribute whose value is the tenant (one request per tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_from_attribute: Option<String>,
    pub labels: LabelsConfig,
    pub format: LineFormat,
    /// Most labels per stream (Loki's default limit is 15).
    pub max_labels: usize,
    /// Longest label value in bytes (Loki's default limit is 2048).
    pub max_label_value_length: usize,
    /// Longest line (Loki's default limit is 256 KB).
    pub max_line_size: ByteSize,
    /// What to do with a longer line.
    pub line_too_long: TooLong,
    /// Streams per push request.
    pub max_streams_per_request: usize,
    /// Distinct streams kept alive (idle ones are forgotten after an hour).
    pub max_active_streams: usize,
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    pub timeout: Duration,
    pub tls: TlsClientConfig,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            endpoint: String::new(),
            encoding: LokiEncoding::Protobuf,
            tenant_id: None,
            tenant_from_attribute: None,
            labels: LabelsConfig::default(),
            format: LineFormat::StructuredMetadata,
            max_labels: 15,
            max_label_value_length: 2048,
            max_line_size: ByteSize(256 * 1024),
            line_too_long: TooLong::Truncate,
            max_streams_per_request: 1000,
            max_active_streams: 5000,
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            timeout: Duration::from_secs(10),
            tls: TlsClientConfig::default(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl LokiConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self.endpoint.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => diag.error(
                format!("{path}.endpoint"),
                format!(
                    "invalid url {:?}: expected e.g. http://loki:3100/loki/api/v1/push",
                    self.endpoint
                ),
            ),
        }
        if self.tenant_id.is_some() && self.tenant_from_attribute.is_some() {
            diag.error(path, "set tenant_id or tenant_from_attribute, not both");
        }
        for (section, map) in [
            ("resource", &self.labels.resource),
            ("attributes", &self.labels.attributes),
            ("static", &self.labels.static_labels),
        ] {
            for (k, name) in map {
                let label = if section == "static" { k } else { name };
                if !valid_label_name(label) {
                    diag.error(
                        format!("{path}.labels.{section}.{k}"),
                        format!(
                            "{label:?} is not a valid Loki label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                        ),
                    );
                }
            }
        }
        if self.max_labels == 0 {
            diag.error(format!("{path}.max_labels"), "must be at least 1");
        }
        if self.max_streams_per_request == 0 {
            diag.error(
                format!("{path}.max_streams_per_request"),
                "must be at least 1",
            );
        }
        if self.max_label_value_length < 32 {
            diag.error(
                format!("{path}.max_label_value_length"),
                "must be at least 32",
            );
        }
        if self.timeout.is_zero() {
            diag.error(format!("{path}.timeout"), "must be greater than 0");
        }
        self.tls.validate(path, diag);
        validate_headers(&self.headers, path, diag);
    }
}

// ---------------------------------------------------------------------------------------------
// translation

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

/// Severity number → Loki `level`.
pub fn level(severity_number: i32, severity_text: &str) -> &'static str {
    match severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => match severity_text.to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" | "information" => "info",
            "warn" | "warning" => "warn",
            "error" => "error",
            "fatal" | "critical" => "fatal",
            _ => "unknown",
        },
    }
}

const TRUNCATED: &str = "…[truncated]";

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max.saturating_sub(TRUNCATED.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TRUNCATED}", &s[..cut])
}

/// A stream's labels in selector syntax, sorted by name.
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        crate::telemetry::metrics::escape_label_value(&mut out, v);
        out.push('"');
    }
    out.push('}');
    out
}

struct Counters {
    demoted_labels: Counter,
    truncated_values: Counter,
    truncated_lines: Counter,
    dropped_lines: Counter,
    dropped_stream_limit: Counter,
}

/// One entry on its way into a stream.
struct Entry {
    ts: u64,
    line: String,
    metadata: Vec<LabelPairAdapter>,
}

pub struct LokiExporter {
    cfg: LokiConfig,
    client: reqwest::Client,
    c: Counters,
    active: Mutex<HashMap<(String, String), Instant>>,
    warned: Mutex<HashSet<u16>>,
}

/// The streams of one tenant, by selector.
type Streams = BTreeMap<String, Vec<Entry>>;

impl LokiExporter {
    pub fn new(id: &str, cfg: &LokiConfig, reg: &Registry) -> Result<LokiExporter, BuildError> {
        let client = cfg.tls.http_client(cfg.timeout.get())?;
        let l = |name: &str, help: &'static str| reg.counter(name, help, &[("exporter", id)]);
        Ok(LokiExporter {
            cfg: cfg.clone(),
            client,
            c: Counters {
                demoted_labels: l(
                    "otelgw_loki_labels_demoted",
                    "Labels past max_labels kept as structured metadata.",
                ),
                truncated_values: l(
                    "otelgw_loki_label_values_truncated",
                    "Label values truncated to max_label_value_length.",
                ),
                truncated_lines: l(
                    "otelgw_loki_lines_truncated",
                    "Lines truncated to max_line_size.",
                ),
                dropped_lines: l(
                    "otelgw_loki_lines_dropped",
                    "Lines dropped for exceeding max_line_size.",
                ),
                dropped_stream_limit: l(
                    "otelgw_loki_entries_dropped_stream_limit",
                    "Entries dropped because max_active_streams was reached.",
                ),
            },
            active: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
        })
    }

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

    fn body(&self, push: &PushRequest) -> Result<(Bytes, &'static str), ExportError> {
        match self.cfg.encoding {
            LokiEncoding::Protobuf => {
                let raw = push.encode_to_vec();
                let z = snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| ExportError::permanent("encode", format!("snappy: {e}")))?;
                Ok((Bytes::from(z), "application/x-protobuf"))
            }
            LokiEncoding::Json => {
                Ok((Bytes::from(push_json(push).to_string()), "application/json"))
            }
        }
    }

    async fn send(&self, tenant: Option<&str>, push: &PushRequest) -> Result<(), ExportError> {
        let (body, ct) = self.body(push)?;
        let mut req = self
            .client
            .post(&self.cfg.endpoint)
            .header("content-type", ct)
            .body(body);
        if let Some(t) = tenant {
            req = req.header("x-scope-orgid", t);
        }
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &self.cfg.basic_auth {
            req = req.basic_auth(&b.username, Some(&b.password));
        }
        if let Some(t) = &self.cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            ExportError::retryable(kind, format!("push to {} failed: {e}", self.cfg.endpoint))
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let reason = resp.text().await.unwrap_or_default();
        // Loki: 429 and every 5xx are retryable (OTLP's table would make a 500 permanent)
        let err = if status >= 500 {
            ExportError::Retryable {
                kind: "http_5xx",
                message: format!("http status {status}: {}", reason.trim()),
                retry_after,
            }
        } else {
            classify_http(status, retry_after, reason.trim())
        };
        if !err.is_retryable() {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.insert(status) {
                tracing::error!(status, reason = %reason.trim(), "loki rejected a push (permanent; not retried; further rejections with this status are only counted)");
            }
        }
        Err(err)
    }
}

/// Loki's JSON push body: `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}`.
pub fn push_json(push: &PushRequest) -> serde_json::Value {
    let streams: Vec<serde_json::Value> = push
        .streams
        .iter()
        .map(|s| {
            let labels = parse_selector(&s.labels).unwrap_or_default();
            let values: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| {
                    let ts = e
                        .timestamp
                        .as_ref()
                        .map(|t| t.seconds as u128 * 1_000_000_000 + t.nanos as u128)
                        .unwrap_or(0);
                    let mut v = vec![serde_json::json!(ts.to_string()), serde_json::json!(e.line)];
                    if !e.structured_metadata.is_empty() {
                        let m: serde_json::Map<String, serde_json::Value> = e
                            .structured_metadata
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::Value::String(p.value.clone())))
                            .collect();
                        v.push(serde_json::Value::Object(m));
                    }
                    serde_json::Value::Array(v)
                })
                .collect();
            serde_json::json!({ "stream": labels, "values": values })
        })
        .collect();
    serde_json::json!({ "streams": streams })
}

/// Parses a selector we produced (`{a="b", c="d"}`) back into pairs.
pub fn parse_selector(s: &str) -> Option<BTreeMap<String, String>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=') {
            name.push(c);
        }
        chars.next();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name.trim().to_string(), value);
    }
}

impl Exporter for LokiExporter {
    fn export<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            let Telemetry::Logs(req) = batch.data() else {
                return Ok(ExportOutcome::default());
            };
            let (pushes, dropped) = self.build(req);
            for (tenant, push) in &pushes {
                self.send(tenant.as_deref(), push).await?;
            }
            Ok(ExportOutcome {
                rejected: dropped,
                message: if dropped > 0 {
                    "dropped by loki exporter limits".into()
                } else {
                    String::new()
                },
            })
        })
    }
}

#[cfg(test)]
mod tests;
