//! `prometheusremotewrite` (push): OTLP metrics to a Prometheus remote-write 1.0 endpoint
//! (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos Receive, Cortex,
//! VictoriaMetrics, Grafana Cloud).
//!
//! Translation is the `prometheus` exporter's, shared: the same series store turns each batch
//! into series (names, units and suffixes, `job`/`instance` and `target_info` from the resource,
//! scope labels, delta points added up into cumulative series, exponential histograms as
//! classic buckets); the store tells this exporter what each point made of its series
//! ([`crate::exporters::prometheus::store::Applied`]) and [`series`] turns that into
//! remote-write time series. The store keeps only what delta accumulation needs, expiring series
//! after `metric_expiration`, capped by `max_series`.
//!
//! Delivery keeps every series in order, which Prometheus requires (an out-of-order sample
//! fails the whole request): the sending queue has one consumer, and each batch is split into
//! `remote_write_queue.num_consumers` shards by series, sent concurrently; a shard's requests
//! (at most `max_batch_size_bytes` each, never splitting one point's series) go one after the
//! other. Each request is retried on its own — connection errors, 5xx and 429 (honouring
//! `Retry-After`), with `retry_on_failure`'s backoff — so a failure never resends what another
//! request already delivered; other 4xx are permanent: counted, the store's reason logged once
//! per status. The queue itself does not retry a batch (that would add delta points twice).
//! Points that could not be delivered are counted as `otelcol_exporter_send_failed_metric_points`
//! and by reason in `otelgw_prometheusremotewrite_failed_samples_total`.
//!
//! Wire format: [`wire`] (snappy-compressed `prometheus.WriteRequest`,
//! `X-Prometheus-Remote-Write-Version: 0.1.0`); with `send_metadata`, each request carries the
//! type, help and unit of the families it holds. Remote-write 2.0 and native histograms are not
//! sent yet.
//!
//! Files: [`series`] the translation, [`wire`] the protobuf types and body, [`send`] sharding,
//! requests and retries; this file the config and the exporter.

pub mod send;
pub mod series;
pub mod wire;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::prometheus::store::{Options, Store};
use super::prometheus::translate;
use super::prometheus::ResourceConversion;
use super::retry::{ExportError, RetryConfig};
use super::tls::TlsClientConfig;
use super::{validate_headers, BuildError, ExportOutcome, Exporter, QueueConfig, Sizer};
use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::data::{Outgoing, Telemetry};
use crate::net::auth::{Authenticator, ClientAuthConfig};
use crate::telemetry::metrics::{names, Counter, Registry};

/// `remote_write_queue`, the Collector's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteQueue {
    /// Queue batches (`false`: the pipeline waits for the export itself).
    pub enabled: bool,
    /// Batches the queue holds (unless `sending_queue` is set).
    pub queue_size: usize,
    /// Shards sending concurrently; every series always goes through the same shard.
    pub num_consumers: usize,
}

impl Default for RemoteWriteQueue {
    fn default() -> Self {
        RemoteWriteQueue {
            enabled: true,
            queue_size: 10_000,
            num_consumers: 5,
        }
    }
}

/// `target_info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetInfo {
    /// Send a `target_info` series per resource (its attributes as labels).
    pub enabled: bool,
}

impl Default for TargetInfo {
    fn default() -> Self {
        TargetInfo { enabled: true }
    }
}

/// `export_created_metric`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreatedMetric {
    /// Send `<name>_created` (start time in seconds) for counters, histograms and summaries.
    pub enabled: bool,
}

/// `exporters.prometheusremotewrite`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusRemoteWriteConfig {
    /// The remote-write URL, e.g. `http://prometheus:9090/api/v1/write`.
    pub endpoint: String,
    /// Per request.
    pub timeout: Duration,
    pub headers: BTreeMap<String, String>,
    /// Labels added to every series that does not have them.
    pub external_labels: BTreeMap<String, String>,
    /// Prefix for every metric name.
    pub namespace: String,
    /// Add unit and type suffixes (`_seconds`, `_total`, `_ratio`).
    pub add_metric_suffixes: bool,
    /// Send each family's type, help and unit with the samples.
    pub send_metadata: bool,
    /// Largest request body before compression.
    pub max_batch_size_bytes: usize,
    pub resource_to_telemetry_conversion: ResourceConversion,
    pub target_info: TargetInfo,
    pub export_created_metric: CreatedMetric,
    pub remote_write_queue: RemoteWriteQueue,
    /// otelgw: the usual sending queue (e.g. `storage` for a persistent queue). Its
    /// `num_consumers` is always 1 here: parallelism comes from `remote_write_queue` shards,
    /// which keep each series in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_queue: Option<QueueConfig>,
    pub retry_on_failure: RetryConfig,
    pub tls: TlsClientConfig,
    /// Credentials from an authenticator extension, sent with every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuthConfig>,
    /// Remote write is always snappy; accepted for the Collector's configs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// otelgw: how long a series' state (for delta accumulation) is kept without updates.
    pub metric_expiration: Duration,
    /// otelgw: most series whose state is kept; points of new series past it are dropped and
    /// counted (0 = no cap).
    pub max_series: usize,
    /// The queue the exporter runs with (from `sending_queue` or `remote_write_queue`).
    #[serde(skip)]
    pub queue: QueueConfig,
}

impl Default for PrometheusRemoteWriteConfig {
    fn default() -> Self {
        PrometheusRemoteWriteConfig {
            endpoint: String::new(),
            timeout: Duration::from_secs(5),
            headers: BTreeMap::new(),
            external_labels: BTreeMap::new(),
            namespace: String::new(),
            add_metric_suffixes: true,
            send_metadata: false,
            max_batch_size_bytes: 3_000_000,
            resource_to_telemetry_conversion: ResourceConversion::default(),
            target_info: TargetInfo::default(),
            export_created_metric: CreatedMetric::default(),
            remote_write_queue: RemoteWriteQueue::default(),
            sending_queue: None,
            retry_on_failure: RetryConfig::default(),
            tls: TlsClientConfig::default(),
            auth: None,
            compression: None,
            metric_expiration: Duration::from_secs(300),
            max_series: 1_000_000,
            queue: QueueConfig::default(),
        }
    }
}

impl PrometheusRemoteWriteConfig {
    /// Settles the queue the exporter runs with: `sending_queue` when given, else one made
    /// from `remote_write_queue`; one consumer either way (order per series).
    pub fn resolved(mut self) -> Self {
        let mut q = match &self.sending_queue {
            Some(q) => q.clone(),
            None => QueueConfig {
                enabled: self.remote_write_queue.enabled,
                queue_size: self.remote_write_queue.queue_size,
                sizer: Sizer::Requests,
                ..QueueConfig::default()
            },
        };
        q.num_consumers = 1;
        self.queue = q;
        self
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self.endpoint.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => diag.error(
                format!("{path}.endpoint"),
                format!(
                    "invalid url {:?}: expected e.g. http://prometheus:9090/api/v1/write",
                    self.endpoint
                ),
            ),
        }
        if self.timeout.is_zero() {
            diag.error(format!("{path}.timeout"), "must be greater than 0");
        }
        if self.metric_expiration.is_zero() {
            diag.error(
                format!("{path}.metric_expiration"),
                "must be greater than 0",
            );
        }
        if self.max_batch_size_bytes < 1024 {
            diag.error(
                format!("{path}.max_batch_size_bytes"),
                "must be at least 1024",
            );
        }
        if self.remote_write_queue.num_consumers == 0 {
            diag.error(
                format!("{path}.remote_write_queue.num_consumers"),
                "must be at least 1",
            );
        }
        if self.remote_write_queue.enabled && self.remote_write_queue.queue_size == 0 {
            diag.error(
                format!("{path}.remote_write_queue.queue_size"),
                "must be at least 1",
            );
        }
        if let Some(c) = &self.compression {
            if c != "snappy" {
                diag.error(
                    format!("{path}.compression"),
                    format!("remote write is snappy-compressed; {c:?} is not supported"),
                );
            }
        }
        for k in self.external_labels.keys() {
            if translate::label_name(k) != *k || k.starts_with("__") {
                diag.error(
                    format!("{path}.external_labels.{k}"),
                    "not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                );
            }
        }
        self.retry_on_failure
            .validate(&format!("{path}.retry_on_failure"), diag);
        self.tls.validate(path, diag);
        validate_headers(&self.headers, path, diag);
    }
}

struct Counters {
    translated: Counter,
    batches: Counter,
    failed_rejected: Counter,
    failed_exhausted: Counter,
    failed_shutdown: Counter,
}

/// The running exporter.
pub struct PrometheusRemoteWriteExporter {
    cfg: PrometheusRemoteWriteConfig,
    store: Arc<Store>,
    settings: series::Settings,
    auth: Option<Arc<Authenticator>>,
    client: reqwest::Client,
    c: Counters,
    /// HTTP statuses already logged as permanent rejections.
    warned: Mutex<HashSet<u16>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl PrometheusRemoteWriteExporter {
    pub fn new(
        id: &str,
        cfg: &PrometheusRemoteWriteConfig,
        reg: &Registry,
        auth: Option<Arc<Authenticator>>,
    ) -> Result<PrometheusRemoteWriteExporter, BuildError> {
        let client = cfg.tls.http_client(cfg.timeout.get())?;
        let store = Arc::new(Store::new(
            Options {
                namespace: cfg.namespace.clone(),
                const_labels: BTreeMap::new(),
                add_suffixes: cfg.add_metric_suffixes,
                resource_to_labels: cfg.resource_to_telemetry_conversion.enabled,
                max_series: cfg.max_series,
                expiration: cfg.metric_expiration.get(),
            },
            reg,
            id,
        ));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(super::prometheus::expire_loop(
            store.clone(),
            cfg.metric_expiration.get(),
            stop_rx,
        ));
        let e = |name: &str, help: &'static str| reg.counter(name, help, &[("exporter", id)]);
        let failed = |reason: &str| {
            reg.counter(
                names::PRW_FAILED_SAMPLES,
                "Samples not delivered by remote write, by reason.",
                &[("exporter", id), ("reason", reason)],
            )
        };
        Ok(PrometheusRemoteWriteExporter {
            settings: series::Settings {
                external_labels: cfg
                    .external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                target_info: cfg.target_info.enabled,
                created: cfg.export_created_metric.enabled,
            },
            cfg: cfg.clone(),
            store,
            auth,
            client,
            c: Counters {
                translated: e(
                    names::PRW_TRANSLATED_TIME_SERIES,
                    "Time series translated from OTLP points.",
                ),
                batches: e(
                    names::PRW_SENT_BATCHES,
                    "Remote-write requests the endpoint accepted.",
                ),
                failed_rejected: failed("rejected"),
                failed_exhausted: failed("retries_exhausted"),
                failed_shutdown: failed("shutdown"),
            },
            warned: Mutex::new(HashSet::new()),
            stop,
        })
    }
}

impl Exporter for PrometheusRemoteWriteExporter {
    fn cardinality_tracker(&self) -> Option<Arc<crate::cardinality::tracker::Tracker>> {
        Some(self.store.tracker().clone())
    }

    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            let Telemetry::Metrics(req) = batch.data() else {
                return Ok(ExportOutcome::default());
            };
            let failed = self.write(req, &batch.meta).await;
            Ok(ExportOutcome {
                rejected: failed,
                message: if failed > 0 {
                    "remote write did not deliver every point".into()
                } else {
                    String::new()
                },
            })
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        let _ = self.stop.send(true);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests;
