//! Receivers: where data enters. One closed enum of types, matched here.
//!
//! `otlp` is the only receiver type: gRPC ([`otlp_grpc`]) and HTTP ([`otlp_http`]) share the
//! request path in [`intake`] (validate → pipelines) and the codec helpers in [`decode`]. A
//! receiver answers success only after every pipeline it feeds accepted the data into its
//! bounded queues; refusals carry a retry hint ([`status`]).

pub mod decode;
pub mod intake;
pub mod otlp_grpc;
pub mod otlp_http;

use serde::{Deserialize, Deserializer, Serialize};
use serde_norway::Value;

use crate::component::units::ByteSize;
use crate::component::{typed, ComponentId, Diagnostics};
use crate::net::check_endpoint;
use std::sync::Arc;

use crate::admission::MemoryGate;
use crate::component::Signal;
use crate::pipeline::Fanout;
use crate::telemetry::metrics::Registry;

/// What a receiver gets at build time: its fan-outs by signal and shared services.
#[derive(Clone)]
pub struct ReceiverContext {
    pub id: ComponentId,
    pub traces: Fanout,
    pub metrics: Fanout,
    pub logs: Fanout,
    pub registry: Arc<Registry>,
    /// The admission gate, when a memory limiter is configured.
    pub gate: Option<Arc<MemoryGate>>,
}

impl ReceiverContext {
    pub fn fanout(&self, s: Signal) -> &Fanout {
        match s {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }
}

/// Every receiver type otelgw has.
#[derive(Debug, Clone)]
pub enum ReceiverConfig {
    Otlp(OtlpReceiverConfig),
}

pub const RECEIVER_TYPES: &[&str] = &["otlp"];

impl ReceiverConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ReceiverConfig> {
        match id.kind.as_str() {
            "otlp" => typed(path, v, diag).map(ReceiverConfig::Otlp),
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown receiver type {other:?} (known: {})",
                        RECEIVER_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ReceiverConfig::Otlp(c) => c.validate(path, diag),
        }
    }

    pub fn supports(&self, _signal: Signal) -> bool {
        true
    }

    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        match self {
            ReceiverConfig::Otlp(c) => {
                let mut out = vec![];
                if let Some(g) = &c.protocols.grpc {
                    out.push(("protocols.grpc.endpoint", g.endpoint.as_str()));
                }
                if let Some(h) = &c.protocols.http {
                    out.push(("protocols.http.endpoint", h.endpoint.as_str()));
                }
                out
            }
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ReceiverConfig::Otlp(c) => crate::component::to_value(c),
        }
    }
}

/// `receivers.otlp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    pub protocols: Protocols,
}

/// `receivers.otlp.protocols`: a protocol is on when its key is present (`grpc:` alone turns it
/// on with defaults, as in the Collector).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<GrpcServerConfig>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<HttpServerConfig>,
}

/// A key that is present with a null value (`grpc:`) means "on, with defaults".
fn present_means_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// `receivers.otlp.protocols.grpc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// `host:port` to listen on. Default `127.0.0.1:4317` (use `0.0.0.0:4317` in containers).
    pub endpoint: String,
    /// Largest accepted message in MiB, after decompression (gzip bombs stop here).
    pub max_recv_msg_size_mib: u64,
    /// Make request metadata (gRPC headers) available to processors and batching keys.
    pub include_metadata: bool,
    /// Limit on concurrent HTTP/2 streams per connection (none when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            endpoint: "127.0.0.1:4317".into(),
            max_recv_msg_size_mib: 4,
            include_metadata: false,
            max_concurrent_streams: None,
        }
    }
}

/// `receivers.otlp.protocols.http`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// `host:port` to listen on. Default `127.0.0.1:4318`.
    pub endpoint: String,
    /// Largest accepted body, both as sent and after decompression; larger → 413.
    pub max_request_body_size: ByteSize,
    /// Make request headers available to processors and batching keys.
    pub include_metadata: bool,
    /// Path for traces (default `/v1/traces`).
    pub traces_url_path: String,
    /// Path for metrics (default `/v1/metrics`).
    pub metrics_url_path: String,
    /// Path for logs (default `/v1/logs`).
    pub logs_url_path: String,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: "127.0.0.1:4318".into(),
            max_request_body_size: ByteSize::mib(20),
            include_metadata: false,
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
        }
    }
}

impl OtlpReceiverConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            diag.error(
                format!("{path}.protocols"),
                "enable at least one protocol (grpc or http)",
            );
        }
        if let Some(g) = &self.protocols.grpc {
            if let Err(e) = check_endpoint(&g.endpoint) {
                diag.error(format!("{path}.protocols.grpc.endpoint"), e);
            }
            if g.max_recv_msg_size_mib == 0 {
                diag.error(
                    format!("{path}.protocols.grpc.max_recv_msg_size_mib"),
                    "must be at least 1",
                );
            }
        }
        if let Some(h) = &self.protocols.http {
            if let Err(e) = check_endpoint(&h.endpoint) {
                diag.error(format!("{path}.protocols.http.endpoint"), e);
            }
            if h.max_request_body_size.bytes() == 0 {
                diag.error(
                    format!("{path}.protocols.http.max_request_body_size"),
                    "must be greater than 0",
                );
            }
            let paths = [
                ("traces_url_path", &h.traces_url_path),
                ("metrics_url_path", &h.metrics_url_path),
                ("logs_url_path", &h.logs_url_path),
            ];
            for (k, p) in paths {
                if !p.starts_with('/') {
                    diag.error(
                        format!("{path}.protocols.http.{k}"),
                        format!("must start with '/', got {p:?}"),
                    );
                }
            }
            if h.traces_url_path == h.metrics_url_path
                || h.traces_url_path == h.logs_url_path
                || h.metrics_url_path == h.logs_url_path
            {
                diag.error(
                    format!("{path}.protocols.http"),
                    "traces, metrics and logs url paths must differ",
                );
            }
        }
    }
}

/// A started receiver: its listeners and the tasks serving them.
pub struct RunningReceiver {
    pub addresses: Vec<(String, std::net::SocketAddr)>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningReceiver {
    /// Stops accepting, lets in-flight requests finish, and returns when all have.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds the receiver's listeners and starts serving.
pub async fn start(
    cfg: &ReceiverConfig,
    ctx: ReceiverContext,
) -> Result<RunningReceiver, crate::exporters::BuildError> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut addresses = Vec::new();
    match cfg {
        ReceiverConfig::Otlp(c) => {
            // Bind both before serving either, so a bind error leaves nothing running.
            let grpc = match &c.protocols.grpc {
                Some(g) => Some((g, crate::net::bind(&g.endpoint)?)),
                None => None,
            };
            let http = match &c.protocols.http {
                Some(h) => Some((h, crate::net::bind(&h.endpoint)?)),
                None => None,
            };
            if let Some((g, l)) = grpc {
                if let Ok(a) = l.local_addr() {
                    addresses.push((format!("{}/grpc", ctx.id), a));
                    tracing::info!(receiver = %ctx.id, address = %a, "otlp grpc receiver listening");
                }
                tasks.push(otlp_grpc::serve(g, &ctx, l, stop_rx.clone()));
            }
            if let Some((h, l)) = http {
                if let Ok(a) = l.local_addr() {
                    addresses.push((format!("{}/http", ctx.id), a));
                    tracing::info!(receiver = %ctx.id, address = %a, "otlp http receiver listening");
                }
                tasks.push(otlp_http::serve(h, &ctx, l, stop_rx.clone()));
            }
        }
    }
    Ok(RunningReceiver {
        addresses,
        stop,
        tasks,
    })
}
