//! The `httpcheck` receiver (alias `http_check`), as the Collector contrib receiver behaves: a
//! pull receiver for metrics pipelines that requests every target's URLs each
//! `collection_interval` (after `initial_delay`) and reports, per URL, the metrics the
//! Collector's `metadata.yaml` defines, with its names, units, types and attributes:
//!
//! | metric | type | unit | attributes |
//! | --- | --- | --- | --- |
//! | `httpcheck.duration` | gauge (int) | `ms` | `http.url` |
//! | `httpcheck.error` | sum, cumulative, not monotonic (int) | `{error}` | `http.url`, `error.message` |
//! | `httpcheck.status` | sum, cumulative, not monotonic (int) | `1` | `http.url`, `http.status_code`, `http.method`, `http.status_class` |
//!
//! `httpcheck.status` has one point per status class `1xx`…`5xx`, 1 for the answer's class and
//! 0 for the others; a request that got no answer reports status code 0 (all five points 0) and
//! `httpcheck.error` 1 with the error. `httpcheck.duration` is the time to the answer's head
//! (or to the failure). The three are the Collector's enabled-by-default metrics; its optional
//! ones (off by default: TLS certificate time left, response size, timings, body validations)
//! are not emitted. Every point's start time is the receiver's start, its time the check's.
//!
//! The config is here; [`scrape`] runs the checks and feeds the pipelines.

mod scrape;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::exporters::tls::TlsClientConfig;

pub use scrape::spawn;

/// The metrics `httpcheck` emits (enabled by default in the Collector too).
pub const METRICS: [&str; 3] = ["httpcheck.duration", "httpcheck.error", "httpcheck.status"];

/// The Collector's optional metrics (disabled by default there), which otelgw does not emit.
pub const OPTIONAL_METRICS: &[&str] = &[
    "httpcheck.client.connection.duration",
    "httpcheck.client.request.duration",
    "httpcheck.dns.lookup.duration",
    "httpcheck.response.duration",
    "httpcheck.response.size",
    "httpcheck.tls.cert_remaining",
    "httpcheck.tls.handshake.duration",
    "httpcheck.validation.failed",
    "httpcheck.validation.passed",
];

/// `receivers.httpcheck`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpCheckConfig {
    /// What to check (required).
    pub targets: Vec<Target>,
    /// How often every target is checked. Default 60s.
    pub collection_interval: Duration,
    /// Wait before the first check. Default 1s.
    pub initial_delay: Duration,
    /// Bound on each check (0: the target's `timeout`, else `collection_interval`).
    pub timeout: Duration,
    /// Metrics to switch off (`httpcheck.status: {enabled: false}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricSwitch>,
    /// Accepted for compatibility (multi-step checks); no effect in otelgw (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequences: Option<Value>,
}

impl Default for HttpCheckConfig {
    fn default() -> Self {
        HttpCheckConfig {
            targets: Vec::new(),
            collection_interval: Duration::from_secs(60),
            initial_delay: Duration::from_secs(1),
            timeout: Duration::default(),
            metrics: BTreeMap::new(),
            sequences: None,
        }
    }
}

/// `metrics.<name>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSwitch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// One entry of `targets`: URLs checked with one method, headers and client settings (the
/// Collector's `confighttp` client keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    /// One URL to check (`http://` or `https://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// More URLs, checked the same way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The request method. Default `GET`.
    pub method: String,
    /// Request headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Bound on each request to these URLs (0: the receiver's `timeout`).
    pub timeout: Duration,
    /// Client TLS for `https://` URLs: `ca_file`, `cert_file`/`key_file`,
    /// `insecure_skip_verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsClientConfig>,
    /// Collector keys accepted so its configs validate, with no effect in otelgw (validation
    /// warns at each): body validations, automatic content type, `confighttp` connection
    /// tuning, request compression, cookies, client authenticators. A proxy is taken from
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`, not `proxy_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validations: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_content_type: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_params: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_buffer_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_buffer_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_idle_conns: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_idle_conns_per_host: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_conns_per_host: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_conn_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_keep_alives: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_read_idle_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_ping_timeout: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_attempt_http2: Option<Value>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            endpoint: None,
            endpoints: Vec::new(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            body: None,
            timeout: Duration::default(),
            tls: None,
            validations: None,
            auto_content_type: None,
            proxy_url: None,
            compression: None,
            compression_params: None,
            auth: None,
            cookies: None,
            read_buffer_size: None,
            write_buffer_size: None,
            max_idle_conns: None,
            max_idle_conns_per_host: None,
            max_conns_per_host: None,
            idle_conn_timeout: None,
            disable_keep_alives: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            force_attempt_http2: None,
        }
    }
}

impl Target {
    /// Every URL of this target, `endpoint` first.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.endpoint
            .iter()
            .chain(self.endpoints.iter())
            .map(String::as_str)
    }

    /// The keys set that have no effect in otelgw.
    fn inert_keys(&self) -> [(&'static str, bool); 17] {
        [
            ("validations", self.validations.is_some()),
            ("auto_content_type", self.auto_content_type.is_some()),
            ("proxy_url", self.proxy_url.is_some()),
            ("compression", self.compression.is_some()),
            ("compression_params", self.compression_params.is_some()),
            ("auth", self.auth.is_some()),
            ("cookies", self.cookies.is_some()),
            ("read_buffer_size", self.read_buffer_size.is_some()),
            ("write_buffer_size", self.write_buffer_size.is_some()),
            ("max_idle_conns", self.max_idle_conns.is_some()),
            (
                "max_idle_conns_per_host",
                self.max_idle_conns_per_host.is_some(),
            ),
            ("max_conns_per_host", self.max_conns_per_host.is_some()),
            ("idle_conn_timeout", self.idle_conn_timeout.is_some()),
            ("disable_keep_alives", self.disable_keep_alives.is_some()),
            (
                "http2_read_idle_timeout",
                self.http2_read_idle_timeout.is_some(),
            ),
            ("http2_ping_timeout", self.http2_ping_timeout.is_some()),
            ("force_attempt_http2", self.force_attempt_http2.is_some()),
        ]
    }

    fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.endpoint.is_none() && self.endpoints.is_empty() {
            diag.error(path, "endpoint or endpoints must be specified");
        }
        let urls = self
            .endpoint
            .iter()
            .map(|u| (format!("{path}.endpoint"), u))
            .chain(
                self.endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (format!("{path}.endpoints[{i}]"), u)),
            );
        for (p, url) in urls {
            if let Err(e) = check_url(url) {
                diag.error(p, e);
            }
        }
        if http::Method::from_bytes(self.method.as_bytes()).is_err() {
            diag.error(
                format!("{path}.method"),
                format!("not an HTTP method: {:?}", self.method),
            );
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                diag.error(
                    format!("{path}.headers.{k}"),
                    "not a valid header name and value",
                );
            }
        }
        if let Some(t) = &self.tls {
            t.validate(path, diag);
            let tp = format!("{path}.tls");
            if t.insecure_skip_verify {
                diag.warn(
                    format!("{tp}.insecure_skip_verify"),
                    "server certificates are NOT verified for these checks: anyone on the path \
                     can answer for the target; use ca_file instead",
                );
            }
            diag.warn_inert(
                &tp,
                &[
                    ("insecure", t.insecure),
                    ("server_name_override", t.server_name_override.is_some()),
                ],
            );
        }
        diag.warn_inert(path, &self.inert_keys());
    }
}

/// A URL otelgw can check: `http://` or `https://` with a host.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("{url:?} must be in the form <scheme>://<host>[:<port>]: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url:?}: scheme {:?} is not supported (http or https)",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

impl HttpCheckConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.targets.is_empty() {
            diag.error(format!("{path}.targets"), "no targets configured");
        }
        for (i, t) in self.targets.iter().enumerate() {
            t.validate(&format!("{path}.targets[{i}]"), diag);
        }
        if self.collection_interval.is_zero() {
            diag.error(
                format!("{path}.collection_interval"),
                "must be greater than 0",
            );
        }
        for (name, switch) in &self.metrics {
            let p = format!("{path}.metrics.{name}");
            if METRICS.contains(&name.as_str()) {
                continue;
            }
            if OPTIONAL_METRICS.contains(&name.as_str()) {
                if switch.enabled == Some(true) {
                    diag.warn(
                        p,
                        "an optional Collector metric otelgw does not emit; it stays off",
                    );
                }
                continue;
            }
            diag.error(
                p,
                format!("unknown metric (httpcheck emits {})", METRICS.join(", ")),
            );
        }
        if self.metrics_enabled() == [false; 3] {
            diag.warn(
                format!("{path}.metrics"),
                "every metric is disabled: the receiver sends nothing",
            );
        }
        diag.warn_inert(path, &[("sequences", self.sequences.is_some())]);
    }

    /// Whether each of [`METRICS`] is on (all are by default).
    pub fn metrics_enabled(&self) -> [bool; 3] {
        METRICS.map(|m| self.metrics.get(m).and_then(|s| s.enabled).unwrap_or(true))
    }

    /// The bound on one request to `target`'s URLs: the shorter of the target's and the
    /// receiver's `timeout`, else the collection interval (so a check never outlives its turn).
    pub fn request_timeout(&self, target: &Target) -> std::time::Duration {
        [target.timeout, self.timeout]
            .into_iter()
            .filter(|d| !d.is_zero())
            .map(Duration::get)
            .min()
            .unwrap_or(self.collection_interval.get())
    }
}

#[cfg(test)]
mod tests;
