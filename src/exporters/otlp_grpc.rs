//! OTLP/gRPC exporter (`otlp_grpc`, alias `otlp`): to Jaeger, Tempo, or another gateway.
//!
//! Each batch is encoded once ([`Outgoing::encoded`]) and the bytes are sent as the gRPC message
//! without a copy ([`crate::grpc::unary`]), so retries and several OTLP exporters share one
//! encoding and a stalled peer holds no second copy of the batch. The
//! peer's `partial_success` is counted, not retried. Errors go through [`classify_grpc`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures_util::future::BoxFuture;
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use serde::{Deserialize, Serialize};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

use super::retry::{classify_grpc, ExportError, RetryConfig};
use super::tls::{resolve_endpoint, TlsClientConfig};
use super::{validate_headers, BuildError, Compression, ExportOutcome, Exporter, QueueConfig};
use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::data::{Outgoing, RequestMeta, Signal};
use crate::grpc::unary;
use crate::net::auth::{Authenticator, ClientAuthConfig};

/// `exporters.otlp_grpc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpGrpcConfig {
    /// `host:port` or `http(s)://host:port` of the OTLP/gRPC receiver.
    pub endpoint: String,
    pub tls: TlsClientConfig,
    /// Extra request metadata (e.g. `X-Scope-OrgID`, `authorization`).
    pub headers: BTreeMap<String, String>,
    /// Credentials from an authenticator extension (`bearertokenauth`, or `basicauth` with
    /// `client_auth`), sent with every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuthConfig>,
    /// `gzip` (default), `zstd`, or `none`.
    pub compression: Compression,
    /// Deadline for one export attempt.
    pub timeout: Duration,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
    /// HTTP/2 keepalive pings to the peer (the Collector's `keepalive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<KeepaliveConfig>,
    /// Accepted for compatibility (gRPC-Go's balancer); no effect in otelgw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balancer_name: Option<String>,
    /// Accepted for compatibility (`level`); no effect in otelgw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_params: Option<serde_norway::Value>,
}

/// `keepalive` of a gRPC client, with the Collector's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    /// Ping the peer after this long without activity.
    pub time: Duration,
    /// Close the connection when a ping is not answered within this long.
    pub timeout: Duration,
    /// Ping even when no call is in flight.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            time: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            permit_without_stream: false,
        }
    }
}

impl Default for OtlpGrpcConfig {
    fn default() -> Self {
        OtlpGrpcConfig {
            endpoint: String::new(),
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            auth: None,
            compression: Compression::Gzip,
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            keepalive: None,
            balancer_name: None,
            compression_params: None,
            sending_queue: QueueConfig::default(),
        }
    }
}

impl OtlpGrpcConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.endpoint.is_empty() {
            diag.error(
                format!("{path}.endpoint"),
                "required (e.g. tempo:4317 or http://jaeger:4317)",
            );
        } else {
            let (_, uri) = resolve_endpoint(&self.endpoint, &self.tls);
            if uri
                .parse::<http::Uri>()
                .map(|u| u.host().is_none())
                .unwrap_or(true)
            {
                diag.error(
                    format!("{path}.endpoint"),
                    format!("invalid endpoint {:?}", self.endpoint),
                );
            }
        }
        if self.timeout.is_zero() {
            diag.error(format!("{path}.timeout"), "must be greater than 0");
        }
        if self.tls.insecure_skip_verify {
            // refusing it would break real configs; ignoring it silently would surprise
            diag.warn(
                format!("{path}.tls.insecure_skip_verify"),
                "IGNORED by the grpc exporter: the server's certificate is still verified \
                 (trust its CA with tls.ca_file, or use otlp_http, which honours this key)",
            );
        }
        if self.balancer_name.is_some() {
            diag.warn(
                format!("{path}.balancer_name"),
                "accepted for compatibility; otelgw keeps one connection per endpoint",
            );
        }
        if self.compression_params.is_some() {
            diag.warn(
                format!("{path}.compression_params"),
                "accepted for compatibility; otelgw uses each codec's fast level",
            );
        }
        self.tls.validate(path, diag);
        validate_headers(&self.headers, path, diag);
        for k in self.headers.keys() {
            if MetadataKey::<tonic::metadata::Ascii>::from_bytes(k.as_bytes()).is_err() {
                diag.error(
                    format!("{path}.headers.{k}"),
                    "invalid grpc metadata key (use lowercase ascii)",
                );
            }
        }
    }
}

pub struct OtlpGrpcExporter {
    channel: Channel,
    headers: MetadataMap,
    auth: Option<Arc<Authenticator>>,
    compression: Option<CompressionEncoding>,
    timeout: StdDuration,
}

impl OtlpGrpcExporter {
    pub fn new(
        cfg: &OtlpGrpcConfig,
        auth: Option<Arc<Authenticator>>,
    ) -> Result<OtlpGrpcExporter, BuildError> {
        let (use_tls, uri) = resolve_endpoint(&cfg.endpoint, &cfg.tls);
        let bad = |reason: String| BuildError::Endpoint {
            endpoint: cfg.endpoint.clone(),
            reason,
        };
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(cfg.timeout.get())
            .tcp_nodelay(true)
            .http2_adaptive_window(true);
        if let Some(k) = &cfg.keepalive {
            ep = ep
                .http2_keep_alive_interval(k.time.get())
                .keep_alive_timeout(k.timeout.get())
                .keep_alive_while_idle(k.permit_without_stream);
        }
        if use_tls {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = TlsClientConfig::read(&cfg.tls.ca_file)? {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let (Some(cert), Some(key)) = (
                TlsClientConfig::read(&cfg.tls.cert_file)?,
                TlsClientConfig::read(&cfg.tls.key_file)?,
            ) {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &cfg.tls.server_name_override {
                tls = tls.domain_name(name.clone());
            }
            ep = ep
                .tls_config(tls)
                .map_err(|e| BuildError::Tls(e.to_string()))?;
        }
        let mut headers = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            let value = MetadataValue::try_from(v.as_str()).map_err(|e| bad(e.to_string()))?;
            headers.insert(key, value);
        }
        Ok(OtlpGrpcExporter {
            channel: ep.connect_lazy(),
            headers,
            auth,
            compression: match cfg.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            timeout: cfg.timeout.get(),
        })
    }

    /// One Export call of `signal` carrying `bytes` as they are.
    async fn call<R: prost::Message + Default>(
        &self,
        signal: Signal,
        bytes: bytes::Bytes,
        meta: &RequestMeta,
    ) -> Result<R, Status> {
        // the authenticator's headers are set per call (a token file may have changed, and
        // headers_setter reads the batch's context)
        let with_auth;
        let headers = match &self.auth {
            None => &self.headers,
            Some(a) => {
                let mut h = self.headers.clone().into_headers();
                a.apply_client(&mut h, meta);
                with_auth = MetadataMap::from_headers(h);
                &with_auth
            }
        };
        unary::call(
            self.channel.clone(),
            PathAndQuery::from_static(signal.grpc_path()),
            headers,
            self.timeout,
            self.compression,
            bytes,
        )
        .await
    }

    async fn send(&self, batch: &Outgoing) -> Result<ExportOutcome, ExportError> {
        let bytes = batch.encoded().clone();
        let call = async {
            Ok::<_, Status>(match batch.signal() {
                Signal::Traces => self
                    .call::<ExportTraceServiceResponse>(Signal::Traces, bytes, &batch.meta)
                    .await?
                    .partial_success
                    .map(|p| (p.rejected_spans, p.error_message)),
                Signal::Metrics => self
                    .call::<ExportMetricsServiceResponse>(Signal::Metrics, bytes, &batch.meta)
                    .await?
                    .partial_success
                    .map(|p| (p.rejected_data_points, p.error_message)),
                Signal::Logs => self
                    .call::<ExportLogsServiceResponse>(Signal::Logs, bytes, &batch.meta)
                    .await?
                    .partial_success
                    .map(|p| (p.rejected_log_records, p.error_message)),
            })
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(ExportError::retryable(
                "timeout",
                format!("no answer within {:?}", self.timeout),
            )),
            Ok(Err(status)) => Err(classify_grpc(&status)),
            Ok(Ok(partial)) => Ok(partial
                .map(|(n, message)| ExportOutcome {
                    rejected: n.max(0) as u64,
                    message,
                })
                .unwrap_or_default()),
        }
    }
}

impl Exporter for OtlpGrpcExporter {
    fn copies_to_send(&self) -> bool {
        self.compression.is_some()
    }
    fn reads_items(&self) -> bool {
        false
    }
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(self.send(batch))
    }
}
