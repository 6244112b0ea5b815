//! OTLP/HTTP exporter (`otlp_http`, alias `otlphttp`): protobuf or JSON, gzip/zstd/none.
//!
//! URLs: `endpoint` + `/v1/<signal>` unless `traces_endpoint` / `metrics_endpoint` /
//! `logs_endpoint` give a full URL. Validation warns when `endpoint` already ends in a signal
//! path (a common mistake with Loki's `/otlp`, which would post to `/otlp/v1/logs/v1/logs`).
//! Responses: 2xx (its `partial_success` counted), 429/502/503/504 and transport errors retried
//! honouring `Retry-After`, everything else permanent ([`classify_http`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde::{Deserialize, Serialize};

use super::retry::{classify_http, parse_retry_after, ExportError, RetryConfig};
use super::tls::TlsClientConfig;
use super::{validate_headers, BuildError, Compression, ExportOutcome, Exporter, QueueConfig};
use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::data::{Outgoing, Signal};
use crate::net::auth::{Authenticator, ClientAuthConfig};

/// Body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpEncoding {
    #[default]
    Proto,
    Json,
}

/// `exporters.otlp_http`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpConfig {
    /// Base URL; `/v1/traces`, `/v1/metrics`, `/v1/logs` are appended.
    pub endpoint: String,
    /// Full URL for traces (overrides `endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics (overrides `endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_endpoint: Option<String>,
    /// Full URL for logs (overrides `endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_endpoint: Option<String>,
    /// `proto` (default) or `json`.
    pub encoding: HttpEncoding,
    /// `gzip` (default), `zstd`, or `none`.
    pub compression: Compression,
    pub headers: BTreeMap<String, String>,
    /// Credentials from an authenticator extension (`bearertokenauth`, or `basicauth` with
    /// `client_auth`), sent with every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuthConfig>,
    /// Deadline for one export attempt.
    pub timeout: Duration,
    pub tls: TlsClientConfig,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
}

impl Default for OtlpHttpConfig {
    fn default() -> Self {
        OtlpHttpConfig {
            endpoint: String::new(),
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            encoding: HttpEncoding::Proto,
            compression: Compression::Gzip,
            headers: BTreeMap::new(),
            auth: None,
            timeout: Duration::from_secs(30),
            tls: TlsClientConfig::default(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl OtlpHttpConfig {
    /// The URL a signal is posted to.
    pub fn url(&self, s: Signal) -> String {
        let explicit = match s {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        };
        match explicit {
            Some(u) => u.clone(),
            None => format!("{}{}", self.endpoint.trim_end_matches('/'), s.http_path()),
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let all_explicit = self.traces_endpoint.is_some()
            && self.metrics_endpoint.is_some()
            && self.logs_endpoint.is_some();
        if self.endpoint.is_empty() && !all_explicit {
            diag.error(
                format!("{path}.endpoint"),
                "required unless traces_endpoint, metrics_endpoint and logs_endpoint are all set",
            );
        }
        let mut check = |key: &str, url: &str| match url.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => diag.error(
                format!("{path}.{key}"),
                format!("invalid url {url:?}: expected http(s)://host[:port][/path]"),
            ),
        };
        if !self.endpoint.is_empty() {
            check("endpoint", &self.endpoint);
        }
        for (k, v) in [
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
        ] {
            if let Some(v) = v {
                check(k, v);
            }
        }
        let trimmed = self.endpoint.trim_end_matches('/');
        for s in Signal::ALL {
            if trimmed.ends_with(s.http_path()) {
                diag.warn(
                    format!("{path}.endpoint"),
                    format!(
                        "ends in {p}; otlp_http appends the signal path, so {s} would go to {u}. \
                         Drop the suffix (e.g. http://loki:3100/otlp) or set {s}_endpoint to the full url",
                        p = s.http_path(),
                        u = self.url(s)
                    ),
                );
            }
        }
        if self.timeout.is_zero() {
            diag.error(format!("{path}.timeout"), "must be greater than 0");
        }
        self.tls.validate(path, diag);
        validate_headers(&self.headers, path, diag);
    }
}

pub struct OtlpHttpExporter {
    client: reqwest::Client,
    urls: [String; 3],
    encoding: HttpEncoding,
    compression: Compression,
    headers: reqwest::header::HeaderMap,
    auth: Option<Arc<Authenticator>>,
    timeout: StdDuration,
}

fn url_index(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl OtlpHttpExporter {
    pub fn new(
        cfg: &OtlpHttpConfig,
        auth: Option<Arc<Authenticator>>,
    ) -> Result<OtlpHttpExporter, BuildError> {
        let client = cfg.tls.http_client(cfg.timeout.get())?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| BuildError::Other(format!("header {k}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| BuildError::Other(format!("header {k}: {e}")))?;
            headers.insert(name, value);
        }
        Ok(OtlpHttpExporter {
            client,
            urls: [
                cfg.url(Signal::Traces),
                cfg.url(Signal::Metrics),
                cfg.url(Signal::Logs),
            ],
            encoding: cfg.encoding,
            compression: cfg.compression,
            headers,
            auth,
            timeout: cfg.timeout.get(),
        })
    }

    fn body(&self, batch: &Outgoing) -> Result<Bytes, ExportError> {
        let raw: Bytes = match self.encoding {
            HttpEncoding::Proto => batch.encoded().clone(),
            HttpEncoding::Json => Bytes::from(batch.data().to_json().map_err(|e| {
                ExportError::permanent("encode", format!("json encoding failed: {e}"))
            })?),
        };
        let compressed = match self.compression {
            Compression::None => return Ok(raw),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::fast(),
                );
                e.write_all(&raw).and_then(|_| e.finish())
            }
            Compression::Zstd => zstd::bulk::compress(&raw, 1),
        };
        compressed
            .map(Bytes::from)
            .map_err(|e| ExportError::permanent("encode", format!("compression failed: {e}")))
    }

    async fn send(&self, batch: &Outgoing) -> Result<ExportOutcome, ExportError> {
        let signal = batch.signal();
        let body = self.body(batch)?;
        let ct = match self.encoding {
            HttpEncoding::Proto => "application/x-protobuf",
            HttpEncoding::Json => "application/json",
        };
        let mut headers = self.headers.clone();
        if let Some(a) = &self.auth {
            a.apply_client(&mut headers, &batch.meta);
        }
        let mut req = self
            .client
            .post(&self.urls[url_index(signal)])
            .headers(headers)
            .header(reqwest::header::CONTENT_TYPE, ct)
            .timeout(self.timeout)
            .body(body);
        match self.compression {
            Compression::Gzip => req = req.header(reqwest::header::CONTENT_ENCODING, "gzip"),
            Compression::Zstd => req = req.header(reqwest::header::CONTENT_ENCODING, "zstd"),
            Compression::None => {}
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            ExportError::retryable(
                kind,
                format!("request to {} failed: {e}", self.urls[url_index(signal)]),
            )
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(classify_http(
                status.as_u16(),
                retry_after,
                &String::from_utf8_lossy(&bytes),
            ));
        }
        Ok(partial_success(signal, &bytes, json))
    }
}

/// Reads `partial_success` from a success body; an empty or undecodable body means none.
fn partial_success(signal: Signal, bytes: &[u8], json: bool) -> ExportOutcome {
    fn dec<T: Message + Default + serde::de::DeserializeOwned>(b: &[u8], json: bool) -> Option<T> {
        if b.is_empty() {
            return None;
        }
        if json {
            serde_json::from_slice(b).ok()
        } else {
            T::decode(b).ok()
        }
    }
    let p = match signal {
        Signal::Traces => dec::<ExportTraceServiceResponse>(bytes, json)
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Metrics => dec::<ExportMetricsServiceResponse>(bytes, json)
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
        Signal::Logs => dec::<ExportLogsServiceResponse>(bytes, json)
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
    };
    p.map(|(n, message)| ExportOutcome {
        rejected: n.max(0) as u64,
        message,
    })
    .unwrap_or_default()
}

impl Exporter for OtlpHttpExporter {
    fn copies_to_send(&self) -> bool {
        self.encoding != HttpEncoding::Proto || self.compression != Compression::None
    }
    fn reads_items(&self) -> bool {
        self.encoding != HttpEncoding::Proto
    }
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(self.send(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_suffix_warning() {
        let c = OtlpHttpConfig {
            endpoint: "http://loki:3100/otlp/".into(),
            ..Default::default()
        };
        assert_eq!(c.url(Signal::Logs), "http://loki:3100/otlp/v1/logs");
        let mut d = Diagnostics::default();
        c.validate("exporters.otlphttp", &mut d);
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");

        let c = OtlpHttpConfig {
            endpoint: "http://loki:3100/otlp/v1/logs".into(),
            ..Default::default()
        };
        let mut d = Diagnostics::default();
        c.validate("exporters.otlphttp/loki", &mut d);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].path, "exporters.otlphttp/loki.endpoint");
        assert!(
            d.warnings[0].message.contains("/otlp/v1/logs/v1/logs"),
            "{}",
            d.warnings[0].message
        );
    }
}
