//! Exporters: where data leaves. One closed enum of types, matched here, and the machinery every
//! exporter shares: a bounded sending queue with a named full-policy, consumers, retries with
//! one classifier ([`retry`]), self-metrics, and drain on shutdown ([`sending_queue`]).
//!
//! The contract of an [`Exporter`]: `export` sends one [`Outgoing`] once and says how it went; it
//! never retries by itself (the sending queue does) and never drops silently (every item ends up
//! counted as sent, send-failed, or enqueue-failed).

pub mod debug;
pub mod file;
pub mod loadbalancing;
pub mod loki;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod persistent_queue;
pub mod prometheus;
pub mod prometheusremotewrite;
pub mod retry;
pub mod sending_queue;
pub mod tls;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::units::Duration;
use crate::component::{typed, ComponentId, Diagnostics};
use crate::data::{Outgoing, Signal};
pub use retry::{ExportError, RetryConfig};

/// What a peer said about a batch it accepted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Items the peer rejected (OTLP `partial_success`); counted, not retried.
    pub rejected: u64,
    pub message: String,
}

/// A running exporter: sends one batch once.
pub trait Exporter: Send + Sync + 'static {
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>>;

    /// True (the default) when the exporter reads the items. One that answers `false` only
    /// needs [`Outgoing::encoded`] (it sends the OTLP protobuf as is), so forwarded bytes and a
    /// batch read back from a persistent queue are never decoded for it.
    fn reads_items(&self) -> bool {
        true
    }

    /// True (the default) when an export makes its own copy of the batch while it lasts (a
    /// compressed or JSON body, a backend's request format); the sending queue puts that copy
    /// on the memory gate's account for the attempt. False when the batch's bytes go out as
    /// they are.
    fn copies_to_send(&self) -> bool {
        true
    }

    /// The cardinality tracker the exporter keeps, if any (the graph lists it on the
    /// `/debug/cardinality` board).
    fn cardinality_tracker(&self) -> Option<std::sync::Arc<crate::cardinality::tracker::Tracker>> {
        None
    }

    /// Flushes buffers at shutdown.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Every exporter type otelgw has.
#[derive(Debug, Clone)]
pub enum ExporterConfig {
    OtlpGrpc(otlp_grpc::OtlpGrpcConfig),
    OtlpHttp(otlp_http::OtlpHttpConfig),
    Debug(debug::DebugConfig),
    File(file::FileConfig),
    Prometheus(prometheus::PrometheusConfig),
    Loki(Box<loki::LokiConfig>),
    PrometheusRemoteWrite(Box<prometheusremotewrite::PrometheusRemoteWriteConfig>),
    LoadBalancing(Box<loadbalancing::LoadBalancingConfig>),
}

pub const EXPORTER_TYPES: &[&str] = &[
    "otlp_grpc (alias otlp)",
    "otlp_http (alias otlphttp)",
    "prometheus",
    "loki",
    "prometheusremotewrite",
    "loadbalancing (alias load_balancing)",
    "debug",
    "file",
];

impl ExporterConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ExporterConfig> {
        match id.kind.as_str() {
            "otlp_grpc" | "otlp" => typed(path, v, diag).map(ExporterConfig::OtlpGrpc),
            "otlp_http" | "otlphttp" => typed(path, v, diag).map(ExporterConfig::OtlpHttp),
            "debug" | "logging" => typed(path, v, diag).map(ExporterConfig::Debug),
            "file" => typed(path, v, diag).map(ExporterConfig::File),
            "prometheus" => typed(path, v, diag).map(ExporterConfig::Prometheus),
            "loki" => typed(path, v, diag).map(|c| ExporterConfig::Loki(Box::new(c))),
            "prometheusremotewrite" | "prometheus_remote_write" => {
                typed(path, v, diag).map(|c: prometheusremotewrite::PrometheusRemoteWriteConfig| {
                    ExporterConfig::PrometheusRemoteWrite(Box::new(c.resolved()))
                })
            }
            "loadbalancing" | "load_balancing" => {
                typed(path, v, diag).map(|c| ExporterConfig::LoadBalancing(Box::new(c)))
            }
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown exporter type {other:?} (known: {})",
                        EXPORTER_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ExporterConfig::OtlpGrpc(c) => c.validate(path, diag),
            ExporterConfig::OtlpHttp(c) => c.validate(path, diag),
            ExporterConfig::Debug(c) => c.validate(path, diag),
            ExporterConfig::File(c) => c.validate(path, diag),
            ExporterConfig::Prometheus(c) => c.validate(path, diag),
            ExporterConfig::Loki(c) => c.validate(path, diag),
            ExporterConfig::PrometheusRemoteWrite(c) => c.validate(path, diag),
            ExporterConfig::LoadBalancing(c) => c.validate(path, diag),
        }
        if let Some(q) = self.queue() {
            q.validate(&format!("{path}.sending_queue"), diag);
        }
        if let Some(r) = self.retry() {
            r.validate(&format!("{path}.retry_on_failure"), diag);
        }
    }

    pub fn supports(&self, signal: Signal) -> bool {
        match self {
            ExporterConfig::Prometheus(_) | ExporterConfig::PrometheusRemoteWrite(_) => {
                signal == Signal::Metrics
            }
            ExporterConfig::Loki(_) => signal == Signal::Logs,
            _ => true,
        }
    }

    /// The authenticator extension this exporter sends credentials from: `(path, id)`.
    pub fn authenticator(&self) -> Option<(&'static str, &str)> {
        let a = match self {
            ExporterConfig::OtlpGrpc(c) => c.auth.as_ref(),
            ExporterConfig::OtlpHttp(c) => c.auth.as_ref(),
            ExporterConfig::Loki(c) => c.auth.as_ref(),
            ExporterConfig::PrometheusRemoteWrite(c) => c.auth.as_ref(),
            ExporterConfig::LoadBalancing(c) => {
                return c
                    .protocol
                    .otlp
                    .auth
                    .as_ref()
                    .map(|a| ("protocol.otlp.auth.authenticator", a.authenticator.as_str()))
            }
            _ => None,
        };
        a.map(|a| ("auth.authenticator", a.authenticator.as_str()))
    }

    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        match self {
            ExporterConfig::Prometheus(c) => vec![("endpoint", c.endpoint.as_str())],
            _ => vec![],
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ExporterConfig::OtlpGrpc(c) => crate::component::to_value(c),
            ExporterConfig::OtlpHttp(c) => crate::component::to_value(c),
            ExporterConfig::Debug(c) => crate::component::to_value(c),
            ExporterConfig::File(c) => crate::component::to_value(c),
            ExporterConfig::Prometheus(c) => crate::component::to_value(c),
            ExporterConfig::Loki(c) => crate::component::to_value(c),
            ExporterConfig::PrometheusRemoteWrite(c) => crate::component::to_value(c),
            ExporterConfig::LoadBalancing(c) => crate::component::to_value(c),
        }
    }

    /// The sending queue settings; local exporters get a default in-memory queue.
    pub fn queue(&self) -> Option<&QueueConfig> {
        match self {
            ExporterConfig::OtlpGrpc(c) => Some(&c.sending_queue),
            ExporterConfig::OtlpHttp(c) => Some(&c.sending_queue),
            ExporterConfig::Loki(c) => Some(&c.sending_queue),
            ExporterConfig::PrometheusRemoteWrite(c) => Some(&c.queue),
            ExporterConfig::LoadBalancing(c) => Some(&c.protocol.otlp.sending_queue),
            _ => None,
        }
    }

    /// The queue-level retries; `prometheusremotewrite` has none: it retries each request
    /// itself (a batch retried whole would add its delta points twice); nor has
    /// `loadbalancing`: it retries each backend's part alone.
    pub fn retry(&self) -> Option<&RetryConfig> {
        match self {
            ExporterConfig::OtlpGrpc(c) => Some(&c.retry_on_failure),
            ExporterConfig::OtlpHttp(c) => Some(&c.retry_on_failure),
            ExporterConfig::Loki(c) => Some(&c.retry_on_failure),
            _ => None,
        }
    }

    /// Builds the running exporter (I/O happens here, not in validation).
    pub fn build(
        &self,
        id: &ComponentId,
        reg: &std::sync::Arc<crate::telemetry::metrics::Registry>,
        authenticators: &crate::extensions::Authenticators,
    ) -> Result<std::sync::Arc<dyn Exporter>, BuildError> {
        let auth = match self.authenticator() {
            None => None,
            Some((_, name)) => Some(authenticators.get(name).cloned().ok_or_else(|| {
                BuildError::Other(format!("authenticator {name:?} is not a started extension"))
            })?),
        };
        Ok(match self {
            ExporterConfig::OtlpGrpc(c) => {
                std::sync::Arc::new(otlp_grpc::OtlpGrpcExporter::new(c, auth)?)
            }
            ExporterConfig::OtlpHttp(c) => {
                std::sync::Arc::new(otlp_http::OtlpHttpExporter::new(c, auth)?)
            }
            ExporterConfig::Debug(c) => std::sync::Arc::new(debug::DebugExporter::new(id, c)),
            ExporterConfig::File(c) => std::sync::Arc::new(file::FileExporter::new(c)?),
            ExporterConfig::Loki(c) => {
                std::sync::Arc::new(loki::LokiExporter::new(&id.to_string(), c, reg, auth)?)
            }
            ExporterConfig::Prometheus(c) => std::sync::Arc::new(
                prometheus::PrometheusExporter::new(&id.to_string(), c, reg)?,
            ),
            ExporterConfig::LoadBalancing(c) => std::sync::Arc::new(
                loadbalancing::LoadBalancingExporter::new(&id.to_string(), c, reg, auth)?,
            ),
            ExporterConfig::PrometheusRemoteWrite(c) => {
                std::sync::Arc::new(prometheusremotewrite::PrometheusRemoteWriteExporter::new(
                    &id.to_string(),
                    c,
                    reg,
                    auth,
                )?)
            }
        })
    }
}

pub use crate::component::BuildError;

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Wait for room: backpressure reaches the pipeline and, through it, the client.
    Block,
    /// Refuse the new batch; the receiver answers with a retry hint and it is counted as
    /// `otelcol_exporter_enqueue_failed_*`.
    DropNewest,
}

/// The unit `sending_queue.queue_size` counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Requests (batches), the Collector's default.
    #[default]
    Requests,
    /// Items: spans, metric data points, log records.
    Items,
    /// Bytes of the batches' protobuf encoding.
    Bytes,
}

/// `sending_queue`, with the Collector's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// With `false`, the receiver's request waits for the export itself (retries included).
    pub enabled: bool,
    /// Concurrent senders draining the queue.
    pub num_consumers: usize,
    /// Capacity, in the unit `sizer` names. A batch larger than the whole capacity is taken
    /// alone when the queue is empty (never refused forever).
    pub queue_size: usize,
    /// What `queue_size` counts: `requests` (default), `items` or `bytes`.
    pub sizer: Sizer,
    /// `true` (default): a full queue blocks the pipeline; `false`: the newest batch is refused
    /// and counted.
    pub block_on_overflow: bool,
    /// otelgw: how long a blocked request waits for room before it is refused with a retry
    /// hint (429 / `RESOURCE_EXHAUSTED`), so clients see a refusal instead of a timeout.
    /// `0` waits without limit (the Collector's behaviour).
    pub block_timeout: Duration,
    /// A `file_storage` extension id (`file_storage/<name>`): the queue becomes a persistent
    /// write-ahead log in that extension's directory, delivered at least once across restarts
    /// and crashes. The extension must also be listed in `service.extensions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The Collector's exporter-side batching (`flush_timeout`, `min_size`, `max_size`,
    /// `sizer`): accepted so its configs validate, not applied yet — use the `batch`
    /// processor (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<serde_norway::Value>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            block_on_overflow: true,
            block_timeout: Duration::from_secs(5),
            sizer: Sizer::Requests,
            storage: None,
            batch: None,
        }
    }
}

impl QueueConfig {
    pub fn policy(&self) -> FullPolicy {
        if self.block_on_overflow {
            FullPolicy::Block
        } else {
            FullPolicy::DropNewest
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.enabled && self.queue_size == 0 {
            diag.error(format!("{path}.queue_size"), "must be at least 1");
        }
        if self.enabled && self.num_consumers == 0 {
            diag.error(format!("{path}.num_consumers"), "must be at least 1");
        }
        if self.batch.is_some() {
            diag.warn(
                format!("{path}.batch"),
                "exporter-side batching is not applied yet; put a batch processor in the pipeline",
            );
        }
        if !self.enabled && self.storage.is_some() {
            diag.error(
                format!("{path}.storage"),
                "a persistent queue needs sending_queue.enabled: true",
            );
        }
    }
}

/// Compression for push exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

/// Headers whose names or values are not valid HTTP are reported at their path.
pub fn validate_headers(
    headers: &std::collections::BTreeMap<String, String>,
    path: &str,
    diag: &mut Diagnostics,
) {
    for (k, v) in headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            diag.error(format!("{path}.headers.{k}"), "invalid header name");
        }
        if http::HeaderValue::from_str(v).is_err() {
            diag.error(format!("{path}.headers.{k}"), "invalid header value");
        }
    }
}
