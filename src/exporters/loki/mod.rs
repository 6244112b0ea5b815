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
//!
//! Files: [`labels`] holds the label rules (names, `level`, value truncation, selector syntax),
//! [`streams`] turns log records into entries grouped by tenant and stream and builds the
//! push requests, [`push`] the wire types, the snappy-protobuf / JSON bodies and the HTTP push;
//! this file the config and the exporter.

mod labels;
mod push;
mod streams;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::retry::{ExportError, RetryConfig};
use super::tls::TlsClientConfig;
use super::{validate_headers, BuildError, ExportOutcome, Exporter, QueueConfig};
use crate::component::units::{ByteSize, Duration};
use crate::component::Diagnostics;
use crate::data::{Outgoing, Telemetry};
use crate::net::auth::{Authenticator, ClientAuthConfig};
use crate::telemetry::metrics::{names, Counter, Registry};
use labels::valid_label_name;

pub use labels::{level, parse_selector, selector};
pub use push::{push_json, EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

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
    /// Credentials from an authenticator extension (`bearertokenauth`, or `basicauth` with
    /// `client_auth`), sent with every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    pub timeout: Duration,
    pub tls: TlsClientConfig,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
    /// The Collector's (deprecated) `default_labels_enabled` switches: accepted so its configs
    /// validate; otelgw's labels come from `labels` (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_labels_enabled: Option<BTreeMap<String, bool>>,
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
            auth: None,
            basic_auth: None,
            bearer_token: None,
            timeout: Duration::from_secs(10),
            tls: TlsClientConfig::default(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            default_labels_enabled: None,
        }
    }
}

impl LokiConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.default_labels_enabled.is_some() {
            diag.warn(
                format!("{path}.default_labels_enabled"),
                "accepted for compatibility; otelgw's stream labels come from `labels`",
            );
        }
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

struct Counters {
    demoted_labels: Counter,
    truncated_values: Counter,
    truncated_lines: Counter,
    dropped_lines: Counter,
    dropped_stream_limit: Counter,
}

pub struct LokiExporter {
    cfg: LokiConfig,
    auth: Option<Arc<Authenticator>>,
    client: reqwest::Client,
    c: Counters,
    active: Mutex<HashMap<(String, String), Instant>>,
    warned: Mutex<HashSet<u16>>,
}

impl LokiExporter {
    pub fn new(
        id: &str,
        cfg: &LokiConfig,
        reg: &Registry,
        auth: Option<Arc<Authenticator>>,
    ) -> Result<LokiExporter, BuildError> {
        let client = cfg.tls.http_client(cfg.timeout.get())?;
        let l = |name: &str, help: &'static str| reg.counter(name, help, &[("exporter", id)]);
        Ok(LokiExporter {
            cfg: cfg.clone(),
            auth,
            client,
            c: Counters {
                demoted_labels: l(
                    names::LOKI_LABELS_DEMOTED,
                    "Labels past max_labels kept as structured metadata.",
                ),
                truncated_values: l(
                    names::LOKI_LABEL_VALUES_TRUNCATED,
                    "Label values truncated to max_label_value_length.",
                ),
                truncated_lines: l(
                    names::LOKI_LINES_TRUNCATED,
                    "Lines truncated to max_line_size.",
                ),
                dropped_lines: l(
                    names::LOKI_LINES_DROPPED,
                    "Lines dropped for exceeding max_line_size.",
                ),
                dropped_stream_limit: l(
                    names::LOKI_ENTRIES_DROPPED_STREAM_LIMIT,
                    "Entries dropped because max_active_streams was reached.",
                ),
            },
            active: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
        })
    }
}

impl Exporter for LokiExporter {
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            let Telemetry::Logs(req) = batch.data() else {
                return Ok(ExportOutcome::default());
            };
            let (pushes, dropped) = self.build(req);
            for (tenant, push) in &pushes {
                self.send(tenant.as_deref(), push, &batch.meta).await?;
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
