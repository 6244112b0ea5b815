//! Receivers: where data enters. One closed enum of types, matched here.
//!
//! `otlp`: gRPC ([`otlp_grpc`]) and HTTP ([`otlp_http`]) share the request path in [`intake`]
//! (validate → pipelines) and the codec helpers in [`decode`]. A receiver answers success only
//! after every pipeline it feeds accepted the data into its bounded queues; refusals carry a
//! retry hint ([`status`]). `httpcheck` ([`httpcheck`]) is a pull receiver for metrics: it
//! opens no listener and enters the pipelines through the same [`intake`]; so does
//! `prometheus` ([`prometheus`]), which scrapes `/metrics` endpoints, and `hostmetrics`
//! ([`hostmetrics`]), which reads the host's `/proc` and `/sys`. `filelog` ([`filelog`]) tails
//! files into logs pipelines, with checkpoints in a `file_storage` extension.

pub mod decode;
pub mod filelog;
pub mod hostmetrics;
pub mod httpcheck;
pub mod intake;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod prometheus;

use serde::{Deserialize, Deserializer, Serialize};
use serde_norway::Value;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::component::units::{ByteSize, Duration};
use crate::component::{typed, ComponentId, Diagnostics};
use crate::extensions::Authenticators;
use crate::net::auth::ServerAuthConfig;
use crate::net::cors::CorsConfig;
use crate::net::tls::TlsServerConfig;
use crate::net::{
    check_endpoint, Limits, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_HEADER_TIMEOUT,
};

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
    /// The started authenticator extensions (`auth.authenticator` names one).
    pub authenticators: Arc<Authenticators>,
    /// The `file_storage` extension the receiver's `storage` names, if any.
    pub storage: Option<crate::extensions::file_storage::FileStorageConfig>,
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
    Otlp(Box<OtlpReceiverConfig>),
    HttpCheck(httpcheck::HttpCheckConfig),
    Prometheus(Box<prometheus::PrometheusReceiverConfig>),
    HostMetrics(Box<hostmetrics::HostMetricsConfig>),
    FileLog(Box<filelog::FileLogConfig>),
}

pub const RECEIVER_TYPES: &[&str] = &[
    "otlp",
    "httpcheck (alias http_check)",
    "prometheus",
    "hostmetrics (alias host_metrics)",
    "filelog (alias file_log)",
];

impl ReceiverConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ReceiverConfig> {
        match id.kind.as_str() {
            "otlp" => typed(path, v, diag).map(|c| ReceiverConfig::Otlp(Box::new(c))),
            "httpcheck" | "http_check" => typed(path, v, diag).map(ReceiverConfig::HttpCheck),
            "prometheus" => typed(path, v, diag).map(|c| ReceiverConfig::Prometheus(Box::new(c))),
            "hostmetrics" | "host_metrics" => {
                typed(path, v, diag).map(|c| ReceiverConfig::HostMetrics(Box::new(c)))
            }
            "filelog" | "file_log" => {
                typed(path, v, diag).map(|c| ReceiverConfig::FileLog(Box::new(c)))
            }
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
            ReceiverConfig::HttpCheck(c) => c.validate(path, diag),
            ReceiverConfig::Prometheus(c) => c.validate(path, diag),
            ReceiverConfig::HostMetrics(c) => c.validate(path, diag),
            ReceiverConfig::FileLog(c) => c.validate(path, diag),
        }
    }

    pub fn supports(&self, signal: Signal) -> bool {
        match self {
            ReceiverConfig::HttpCheck(_)
            | ReceiverConfig::Prometheus(_)
            | ReceiverConfig::HostMetrics(_) => signal == Signal::Metrics,
            ReceiverConfig::FileLog(_) => signal == Signal::Logs,
            ReceiverConfig::Otlp(_) => true,
        }
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
            ReceiverConfig::HttpCheck(_)
            | ReceiverConfig::Prometheus(_)
            | ReceiverConfig::HostMetrics(_)
            | ReceiverConfig::FileLog(_) => vec![],
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ReceiverConfig::Otlp(c) => crate::component::to_value(c),
            ReceiverConfig::HttpCheck(c) => crate::component::to_value(c),
            ReceiverConfig::Prometheus(c) => crate::component::to_value(c),
            ReceiverConfig::HostMetrics(c) => crate::component::to_value(c),
            ReceiverConfig::FileLog(c) => crate::component::to_value(c),
        }
    }

    /// The `file_storage` extension this receiver keeps state in: `(path, extension id)`.
    pub fn storage(&self) -> Option<(&'static str, &str)> {
        match self {
            ReceiverConfig::FileLog(c) => c.storage.as_deref().map(|s| ("storage", s)),
            _ => None,
        }
    }

    /// The authenticator extensions this receiver references: `(path, extension id)`.
    pub fn authenticators(&self) -> Vec<(&'static str, &str)> {
        match self {
            ReceiverConfig::Otlp(c) => {
                let mut out = vec![];
                if let Some(a) = c.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref()) {
                    out.push((
                        "protocols.grpc.auth.authenticator",
                        a.authenticator.as_str(),
                    ));
                }
                if let Some(a) = c.protocols.http.as_ref().and_then(|h| h.auth.as_ref()) {
                    out.push((
                        "protocols.http.auth.authenticator",
                        a.authenticator.as_str(),
                    ));
                }
                out
            }
            ReceiverConfig::HttpCheck(_)
            | ReceiverConfig::Prometheus(_)
            | ReceiverConfig::HostMetrics(_)
            | ReceiverConfig::FileLog(_) => vec![],
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

/// Returns once a receiver's stop signal says so (or its sender is gone).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A key that is present with a null value (`grpc:`) means "on, with defaults".
pub(crate) fn present_means_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// `receivers.otlp.protocols.grpc`: the Collector's `configgrpc` server keys, plus
/// otelgw's connection limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// `host:port` to listen on. Default `127.0.0.1:4317` (use `0.0.0.0:4317` in containers).
    pub endpoint: String,
    /// Only `tcp`.
    pub transport: String,
    /// Largest accepted message in MiB, after decompression (gzip bombs stop here).
    pub max_recv_msg_size_mib: u64,
    /// Make request metadata (gRPC headers) available to processors and batching keys.
    pub include_metadata: bool,
    /// Limit on concurrent HTTP/2 streams per connection (none when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// Serve over TLS (`cert_file`, `key_file`, `client_ca_file` for mutual TLS, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsServerConfig>,
    /// Check every call with an authenticator extension (`bearertokenauth`, `basicauth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ServerAuthConfig>,
    /// Connection keepalive and age (gRPC's server parameters).
    pub keepalive: GrpcKeepalive,
    /// Accepted for compatibility (hyper sizes its own buffers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_buffer_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_buffer_size: Option<u64>,
    /// otelgw: most open connections; more are closed at accept (0: no cap).
    pub max_connections: usize,
    /// otelgw: time for a new connection to send its first bytes (and to finish TLS).
    pub read_header_timeout: Duration,
}

/// `keepalive` on a gRPC server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    pub server_parameters: GrpcServerParameters,
    /// Accepted; HTTP/2 ping-rate enforcement is not configurable here (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement_policy: Option<EnforcementPolicy>,
}

/// `keepalive.server_parameters` (0 = off, as in gRPC).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerParameters {
    /// `GOAWAY` a connection with no call in flight for this long. otelgw default 5m (gRPC:
    /// never), so vanished clients do not hold connections forever.
    pub max_connection_idle: Duration,
    /// `GOAWAY` a connection this old, so clients reconnect and rebalance across replicas.
    pub max_connection_age: Duration,
    /// After `max_connection_age`, time for calls in flight before the connection is closed.
    pub max_connection_age_grace: Duration,
    /// Ping an idle client after this long (0: no pings).
    pub time: Duration,
    /// Close the connection when a ping is not answered within this.
    pub timeout: Duration,
}

impl Default for GrpcServerParameters {
    fn default() -> Self {
        GrpcServerParameters {
            max_connection_idle: Duration::from_secs(300),
            max_connection_age: Duration::default(),
            max_connection_age_grace: Duration::from_secs(30),
            time: Duration::default(),
            timeout: Duration::from_secs(20),
        }
    }
}

/// `keepalive.enforcement_policy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnforcementPolicy {
    pub min_time: Duration,
    pub permit_without_stream: bool,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            endpoint: "127.0.0.1:4317".into(),
            transport: "tcp".into(),
            max_recv_msg_size_mib: 4,
            include_metadata: false,
            max_concurrent_streams: None,
            tls: None,
            auth: None,
            keepalive: GrpcKeepalive::default(),
            read_buffer_size: None,
            write_buffer_size: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_header_timeout: Duration(DEFAULT_READ_HEADER_TIMEOUT),
        }
    }
}

impl GrpcServerConfig {
    /// The connection limits this config asks for.
    pub fn limits(&self) -> Limits {
        let p = &self.keepalive.server_parameters;
        let opt = |d: Duration| (!d.is_zero()).then(|| d.get());
        Limits {
            max_connections: self.max_connections,
            read_header_timeout: self.read_header_timeout.get(),
            idle_timeout: opt(p.max_connection_idle),
            max_connection_age: opt(p.max_connection_age),
            max_connection_age_grace: p.max_connection_age_grace.get(),
            keepalive: opt(p.time).map(|t| (t, p.timeout.get())),
            max_concurrent_streams: self.max_concurrent_streams,
            ..Limits::default()
        }
    }
}

/// `receivers.otlp.protocols.http`: the Collector's `confighttp` server keys, plus otelgw's
/// connection limits.
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
    /// Serve over TLS (`cert_file`, `key_file`, `client_ca_file` for mutual TLS, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsServerConfig>,
    /// Check every request with an authenticator extension (`bearertokenauth`, `basicauth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ServerAuthConfig>,
    /// Browser clients (`allowed_origins`, `allowed_headers`, `max_age`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// Headers added to every answer.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_headers: BTreeMap<String, String>,
    /// Time for a request head (and a TLS handshake). Default 5s (the Collector: 1m).
    pub read_header_timeout: Duration,
    /// Time to read a request body once its head arrived (0: no limit, the Collector's default).
    pub read_timeout: Duration,
    /// Accepted for compatibility (answers are small and written at once).
    pub write_timeout: Duration,
    /// Close a keep-alive connection idle this long. Default 1m (as the Collector).
    pub idle_timeout: Duration,
    /// HTTP/1 keep-alive (default on).
    pub keepalives_enabled: bool,
    /// Accepted for compatibility; every supported encoding is always accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compression_algorithms: Vec<String>,
    /// otelgw: most open connections; more are closed at accept (0: no cap).
    pub max_connections: usize,
    /// otelgw: answer with `Connection: close` (HTTP/1) or `GOAWAY` (HTTP/2) once a
    /// connection is this old, so clients rebalance across replicas (0: never).
    pub max_connection_age: Duration,
    /// otelgw: time after `max_connection_age` before the connection is closed.
    pub max_connection_age_grace: Duration,
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
            tls: None,
            auth: None,
            cors: None,
            response_headers: BTreeMap::new(),
            read_header_timeout: Duration(DEFAULT_READ_HEADER_TIMEOUT),
            read_timeout: Duration::default(),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration(DEFAULT_IDLE_TIMEOUT),
            keepalives_enabled: true,
            compression_algorithms: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connection_age: Duration::default(),
            max_connection_age_grace: Duration::from_secs(30),
        }
    }
}

impl HttpServerConfig {
    /// The connection limits this config asks for.
    pub fn limits(&self) -> Limits {
        let opt = |d: Duration| (!d.is_zero()).then(|| d.get());
        Limits {
            max_connections: self.max_connections,
            read_header_timeout: self.read_header_timeout.get(),
            idle_timeout: opt(self.idle_timeout),
            max_connection_age: opt(self.max_connection_age),
            max_connection_age_grace: self.max_connection_age_grace.get(),
            keep_alive: self.keepalives_enabled,
            ..Limits::default()
        }
    }

    /// `response_headers` as header values (validated).
    pub fn response_header_values(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        self.response_headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                    http::HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect()
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
            let gp = format!("{path}.protocols.grpc");
            if g.transport != "tcp" {
                diag.error(
                    format!("{gp}.transport"),
                    format!("unsupported transport {:?} (only tcp)", g.transport),
                );
            }
            if let Some(t) = &g.tls {
                t.validate(&gp, diag);
            }
            if g.read_header_timeout.is_zero() {
                diag.error(
                    format!("{gp}.read_header_timeout"),
                    "must be greater than 0",
                );
            }
            if g.keepalive.enforcement_policy.is_some() {
                diag.warn(format!("{gp}.keepalive.enforcement_policy"), "accepted for compatibility, no effect in otelgw: HTTP/2 ping-rate enforcement is not configurable");
            }
            if g.read_buffer_size.is_some() || g.write_buffer_size.is_some() {
                diag.warn(&gp, "accepted for compatibility, no effect in otelgw: read_buffer_size and write_buffer_size are sized by hyper");
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
            let hp = format!("{path}.protocols.http");
            if let Some(t) = &h.tls {
                t.validate(&hp, diag);
            }
            if let Some(c) = &h.cors {
                c.validate(&hp, diag);
            }
            if h.read_header_timeout.is_zero() {
                diag.error(
                    format!("{hp}.read_header_timeout"),
                    "must be greater than 0",
                );
            }
            for (k, v) in &h.response_headers {
                if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || http::HeaderValue::from_str(v).is_err()
                {
                    diag.error(
                        format!("{hp}.response_headers.{k}"),
                        "not a valid header name and value",
                    );
                }
            }
            if !h.compression_algorithms.is_empty() {
                diag.warn(format!("{hp}.compression_algorithms"), "accepted for compatibility, no effect in otelgw: gzip, zstd, deflate and snappy are always accepted");
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

/// The edge policy of one of the receiver's listeners: TLS, authentication, limits.
fn edge(
    ctx: &ReceiverContext,
    transport: &'static str,
    tls: &Option<TlsServerConfig>,
    auth: &Option<ServerAuthConfig>,
    limits: Limits,
) -> Result<crate::net::Edge, crate::exporters::BuildError> {
    let id = ctx.id.to_string();
    let mut edge = crate::net::Edge::new(format!("{id}/{transport}"), Some(&ctx.registry))
        .with_tls(tls.as_ref().map(|t| t.server()).transpose()?)
        .with_limits(limits);
    if let Some(a) = auth {
        let authenticator = ctx
            .authenticators
            .get(&a.authenticator)
            .cloned()
            .ok_or_else(|| {
                crate::exporters::BuildError::Other(format!(
                    "receiver {id}: authenticator {:?} is not a started extension",
                    a.authenticator
                ))
            })?;
        edge.auth = Some(crate::net::EdgeAuth {
            authenticator,
            refused: ctx.registry.counter(
                crate::telemetry::metrics::names::RECEIVER_REQUESTS,
                "Requests received, by outcome.",
                &[
                    ("receiver", &id),
                    ("transport", transport),
                    ("outcome", "unauthenticated"),
                ],
            ),
        });
    }
    Ok(edge)
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
            // Build the edges (certificates, authenticators) and bind both listeners before
            // serving either, so an error leaves nothing running.
            let grpc = match &c.protocols.grpc {
                Some(g) => {
                    let e = edge(&ctx, "grpc", &g.tls, &g.auth, g.limits())?;
                    Some((g, e, crate::net::bind(&g.endpoint)?))
                }
                None => None,
            };
            let http = match &c.protocols.http {
                Some(h) => {
                    let mut e = edge(&ctx, "http", &h.tls, &h.auth, h.limits())?;
                    e.cors = h.cors.as_ref().map(crate::net::cors::Cors::new);
                    e.response_headers = h.response_header_values();
                    Some((h, e, crate::net::bind(&h.endpoint)?))
                }
                None => None,
            };
            if let Some((g, e, l)) = grpc {
                if let Ok(a) = l.local_addr() {
                    addresses.push((format!("{}/grpc", ctx.id), a));
                    tracing::info!(receiver = %ctx.id, address = %a, tls = g.tls.is_some(), "otlp grpc receiver listening");
                }
                tasks.push(otlp_grpc::serve(g, &ctx, e, l, stop_rx.clone()));
            }
            if let Some((h, e, l)) = http {
                if let Ok(a) = l.local_addr() {
                    addresses.push((format!("{}/http", ctx.id), a));
                    tracing::info!(receiver = %ctx.id, address = %a, tls = h.tls.is_some(), "otlp http receiver listening");
                }
                tasks.push(otlp_http::serve(h, &ctx, e, l, stop_rx.clone()));
            }
        }
        ReceiverConfig::HttpCheck(c) => tasks.push(httpcheck::spawn(c, &ctx, stop_rx.clone())?),
        ReceiverConfig::Prometheus(c) => tasks.push(prometheus::spawn(c, &ctx, stop_rx.clone())?),
        ReceiverConfig::HostMetrics(c) => tasks.push(hostmetrics::spawn(c, &ctx, stop_rx.clone())?),
        ReceiverConfig::FileLog(c) => tasks.push(filelog::spawn(
            c,
            &ctx,
            ctx.storage.as_ref(),
            stop_rx.clone(),
        )?),
    }
    Ok(RunningReceiver {
        addresses,
        stop,
        tasks,
    })
}
