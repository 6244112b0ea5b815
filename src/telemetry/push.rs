//! A `periodic` metric reader: otelgw pushes its own metrics by OTLP.
//!
//! `service.telemetry.metrics.readers[].periodic` with the OpenTelemetry configuration schema's
//! keys (the form the Collector documents): `interval` and `timeout` in milliseconds (or a
//! duration string such as `10s`), `exporter.otlp` (or `otlp_grpc` / `otlp_http`) with
//! `protocol` (`grpc` or `http/protobuf`), `endpoint`, `headers` (`[{name, value}]`) and
//! `timeout`. Every `interval` the registry is converted to OTLP
//! ([`super::metrics::Registry::to_otlp`]: cumulative sums, gauges, histograms) under the
//! resource of `service.telemetry.resource` (`service.name` defaults to `otelgw`), sent with the
//! timeout, and once more when the gateway stops. A failed push is logged (once per streak of
//! failures) and not retried: the next push carries the cumulative values anyway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::metrics::Registry;
use crate::component::Diagnostics;

/// Milliseconds, written as an integer (the configuration schema's unit) or a duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(ms) => Ok(Millis(ms)),
            Raw::Text(s) => crate::component::units::parse_duration(&s)
                .map(|d| Millis(d.as_millis() as u64))
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// `readers[].periodic`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeriodicReader {
    /// Milliseconds between pushes (default 60000).
    pub interval: Millis,
    /// Milliseconds one push may take (default 30000).
    pub timeout: Millis,
    pub exporter: PushExporter,
    /// Accepted for compatibility (metric producers / cardinality limits of the SDK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producers: Option<serde_norway::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cardinality_limits: Option<serde_norway::Value>,
}

impl Default for PeriodicReader {
    fn default() -> Self {
        PeriodicReader {
            interval: Millis(60_000),
            timeout: Millis(30_000),
            exporter: PushExporter::default(),
            producers: None,
            cardinality_limits: None,
        }
    }
}

/// `periodic.exporter`: one OTLP exporter, under the schema's older (`otlp`) or newer
/// (`otlp_grpc`, `otlp_http`) name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushExporter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpPush>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_grpc: Option<OtlpPush>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_http: Option<OtlpPush>,
}

/// `exporter.otlp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpPush {
    /// `grpc` or `http/protobuf` (the default for `otlp_http`; `grpc` for `otlp_grpc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `http://host:4317` (gRPC) or the full URL `http://host:4318/v1/metrics` (HTTP; a bare
    /// `host:port` URL gets `/v1/metrics`).
    pub endpoint: String,
    /// Request headers, `[{name, value}]` (redacted by `print-config` when they carry secrets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<NameValue>,
    /// Milliseconds for one push (overrides the reader's `timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Millis>,
    /// Accepted for compatibility: otelgw's self-metrics are cumulative, uncompressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporality_preference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_histogram_aggregation: Option<String>,
}

/// One `{name, value}` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl PeriodicReader {
    /// The configured exporter and its protocol.
    fn target(&self) -> Option<(&OtlpPush, Result<Protocol, String>)> {
        let e = &self.exporter;
        let (otlp, default) = match (&e.otlp, &e.otlp_grpc, &e.otlp_http) {
            (Some(o), None, None) => (o, Protocol::HttpProtobuf),
            (None, Some(o), None) => (o, Protocol::Grpc),
            (None, None, Some(o)) => (o, Protocol::HttpProtobuf),
            _ => return None,
        };
        let protocol = match otlp.protocol.as_deref() {
            None => Ok(default),
            Some("grpc") => Ok(Protocol::Grpc),
            Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
            Some(other) => Err(format!(
                "unsupported protocol {other:?} (use grpc or http/protobuf)"
            )),
        };
        Some((otlp, protocol))
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.interval.0 == 0 {
            diag.error(format!("{path}.interval"), "must be greater than 0");
        }
        match self.target() {
            None => diag.error(
                format!("{path}.exporter"),
                "set exactly one of otlp, otlp_grpc or otlp_http",
            ),
            Some((otlp, protocol)) => {
                if let Err(e) = protocol {
                    diag.error(format!("{path}.exporter.otlp.protocol"), e);
                }
                if !(otlp.endpoint.starts_with("http://") || otlp.endpoint.starts_with("https://"))
                {
                    diag.error(
                        format!("{path}.exporter.otlp.endpoint"),
                        format!("{:?} must be an http:// or https:// URL", otlp.endpoint),
                    );
                }
                let inert = [
                    (
                        "temporality_preference",
                        otlp.temporality_preference.is_some(),
                    ),
                    ("compression", otlp.compression.is_some()),
                    ("insecure", otlp.insecure.is_some()),
                    (
                        "default_histogram_aggregation",
                        otlp.default_histogram_aggregation.is_some(),
                    ),
                ];
                diag.warn_inert(&format!("{path}.exporter.otlp"), &inert);
            }
        }
        diag.warn_inert(
            path,
            &[
                ("producers", self.producers.is_some()),
                ("cardinality_limits", self.cardinality_limits.is_some()),
            ],
        );
    }
}

/// The resource of pushed self-metrics: `service.telemetry.resource`, with `service.name`
/// (`otelgw`) and `service.version` unless given.
pub fn resource(attrs: &BTreeMap<String, serde_norway::Value>) -> Resource {
    let mut out: Vec<KeyValue> = Vec::new();
    let kv = |k: &str, v: String| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    };
    for (k, v) in attrs {
        let text = match v {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Null => continue,
            other => serde_norway::to_string(other)
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        };
        out.push(kv(k, text));
    }
    for (k, v) in [
        ("service.name", "otelgw".to_string()),
        ("service.version", env!("CARGO_PKG_VERSION").to_string()),
    ] {
        if !attrs.contains_key(k) {
            out.push(kv(k, v));
        }
    }
    Resource {
        attributes: out,
        ..Default::default()
    }
}

/// A configured push target.
enum Sender {
    Grpc(MetricsServiceClient<tonic::transport::Channel>),
    Http(reqwest::Client, String),
}

/// Starts pushing every `reader.interval` until `stop` fires (then pushes once more).
pub fn spawn(
    reader: &PeriodicReader,
    registry: Arc<Registry>,
    resource: Resource,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let (otlp, protocol) = reader.target()?;
    let protocol = protocol.ok()?;
    let timeout = Duration::from_millis(otlp.timeout.unwrap_or(reader.timeout).0.max(1));
    let mut headers = http::HeaderMap::new();
    for h in &otlp.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(h.name.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(&h.value),
        ) {
            headers.insert(k, v);
        }
    }
    let sender = match protocol {
        Protocol::Grpc => {
            let mut ep = tonic::transport::Endpoint::from_shared(otlp.endpoint.clone())
                .ok()?
                .timeout(timeout);
            if otlp.endpoint.starts_with("https://") {
                ep = ep
                    .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                    .ok()?;
            }
            Sender::Grpc(MetricsServiceClient::new(ep.connect_lazy()))
        }
        Protocol::HttpProtobuf => {
            let url = match otlp.endpoint.split_once("://") {
                Some((_, rest)) if !rest.trim_end_matches('/').contains('/') => {
                    format!("{}/v1/metrics", otlp.endpoint.trim_end_matches('/'))
                }
                _ => otlp.endpoint.clone(),
            };
            let client = reqwest::Client::builder().timeout(timeout).build().ok()?;
            Sender::Http(client, url)
        }
    };
    let interval = Duration::from_millis(reader.interval.0.max(1));
    let endpoint = otlp.endpoint.clone();
    let start = crate::data::unix_nanos(SystemTime::now());
    Some(tokio::spawn(async move {
        let mut failing = false;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.changed() => true,
            };
            let req = registry.to_otlp(
                resource.clone(),
                start,
                crate::data::unix_nanos(SystemTime::now()),
            );
            match push(&sender, &headers, req).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(endpoint = %endpoint, "self-metrics push recovered");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(endpoint = %endpoint, error = %e, "self-metrics push failed");
                    }
                    failing = true;
                }
            }
            if last {
                break;
            }
        }
    }))
}

async fn push(
    sender: &Sender,
    headers: &http::HeaderMap,
    req: ExportMetricsServiceRequest,
) -> Result<(), String> {
    match sender {
        Sender::Grpc(client) => {
            let mut r = tonic::Request::new(req);
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes()),
                    tonic::metadata::MetadataValue::try_from(v.as_bytes()),
                ) {
                    r.metadata_mut().insert(k, v);
                }
            }
            client
                .clone()
                .export(r)
                .await
                .map(|_| ())
                .map_err(|s| format!("{}: {}", s.code(), s.message()))
        }
        Sender::Http(client, url) => {
            let resp = client
                .post(url)
                .headers(headers.clone())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(req.encode_to_vec())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", resp.status()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    #[test]
    fn the_registry_becomes_cumulative_otlp_with_labels_as_attributes() {
        let reg = Registry::new();
        reg.counter("otelgw_x_total", "x", &[("receiver", "otlp")])
            .add(7);
        reg.gauge("otelgw_g", "g", &[]).set(-3);
        let h = reg.histogram("otelgw_h", "h", &[1.0, 10.0], &[("k", "v")]);
        h.observe(5);
        h.observe(50);
        let req = reg.to_otlp(resource(&BTreeMap::new()), 1, 2);
        let rm = &req.resource_metrics[0];
        let res = rm.resource.as_ref().unwrap();
        assert!(res.attributes.iter().any(|kv| kv.key == "service.name"));
        let metrics = &rm.scope_metrics[0].metrics;
        let get = |n: &str| {
            metrics
                .iter()
                .find(|m| m.name == n)
                .unwrap()
                .data
                .clone()
                .unwrap()
        };
        let Data::Sum(s) = get("otelgw_x_total") else {
            panic!()
        };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].attributes[0].key, "receiver");
        assert_eq!(
            s.data_points[0].value,
            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(7))
        );
        let Data::Gauge(g) = get("otelgw_g") else {
            panic!()
        };
        assert_eq!(
            g.data_points[0].value,
            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(-3))
        );
        let Data::Histogram(hist) = get("otelgw_h") else {
            panic!()
        };
        assert_eq!(hist.data_points[0].count, 2);
        assert_eq!(hist.data_points[0].bucket_counts, vec![0, 1, 1]);
        assert_eq!(hist.data_points[0].explicit_bounds, vec![1.0, 10.0]);
    }

    #[test]
    fn readers_take_the_schema_units_and_refuse_what_they_cannot_do() {
        let r: PeriodicReader = serde_norway::from_str(
            "interval: 5000\nexporter:\n  otlp:\n    protocol: grpc\n    endpoint: http://x:4317\n",
        )
        .unwrap();
        assert_eq!(r.interval, Millis(5000));
        let mut d = Diagnostics::default();
        r.validate("p", &mut d);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let r: PeriodicReader = serde_norway::from_str(
            "interval: 10s\nexporter:\n  otlp_http:\n    endpoint: x:4318\n    protocol: http/json\n",
        )
        .unwrap();
        assert_eq!(r.interval, Millis(10_000));
        let mut d = Diagnostics::default();
        r.validate("p", &mut d);
        let paths: Vec<_> = d.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["p.exporter.otlp.protocol", "p.exporter.otlp.endpoint"]
        );
    }
}
