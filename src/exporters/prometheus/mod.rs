//! `prometheus`: a pull exporter. Metrics pipelines write into a series store
//! ([`store`]); Prometheus scrapes `http://<endpoint>/metrics`, rendered by [`render`] in text
//! 0.0.4 or, when the scraper asks for it and `enable_open_metrics` is on, OpenMetrics 1.0 (with
//! exemplars), gzip-compressed when `Accept-Encoding` allows. Names and labels follow the OTel
//! specification ([`translate`]). Series expire `metric_expiration` after their last update, on a
//! timer of their own (the Collector only expires during scrapes, so an unscraped exporter grows
//! forever). `max_series` caps the store; points that would pass it are dropped and counted.
//!
//! Exponential histograms are rendered as classic histograms whose bucket boundaries are the
//! exponential buckets' own (see [`store::ExpHist::classic`]): nothing is dropped and every
//! count is exact at those boundaries.

pub mod render;
pub mod store;
pub mod translate;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::{BuildError, ExportError, ExportOutcome, Exporter};
use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::data::{Outgoing, Telemetry};
use crate::net::check_endpoint;
use crate::net::tls::TlsServerConfig;
use crate::telemetry::metrics::names;
use crate::telemetry::metrics::Registry;
use render::Format;
use store::{Options, Store};

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConversion {
    /// Put every resource attribute on every series as a label.
    pub enabled: bool,
}

/// `exporters.prometheus`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// `host:port` to serve `/metrics` on.
    pub endpoint: String,
    /// Prefix for every metric name.
    pub namespace: String,
    /// Labels added to every series.
    pub const_labels: BTreeMap<String, String>,
    /// Add the point's timestamp to each sample.
    pub send_timestamps: bool,
    /// Remove series not updated for this long.
    pub metric_expiration: Duration,
    pub resource_to_telemetry_conversion: ResourceConversion,
    /// Serve OpenMetrics 1.0 to scrapers that ask for it (exemplars, `_created`).
    pub enable_open_metrics: bool,
    /// Add unit and type suffixes (`_seconds`, `_total`, `_ratio`).
    pub add_metric_suffixes: bool,
    /// Most series held at once (0 = no cap).
    pub max_series: usize,
    /// Serve `/metrics` over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsServerConfig>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            endpoint: "127.0.0.1:8889".into(),
            namespace: String::new(),
            const_labels: BTreeMap::new(),
            send_timestamps: false,
            metric_expiration: Duration::from_secs(300),
            resource_to_telemetry_conversion: ResourceConversion::default(),
            enable_open_metrics: false,
            add_metric_suffixes: true,
            max_series: 1_000_000,
            tls: None,
        }
    }
}

impl PrometheusConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if let Err(e) = check_endpoint(&self.endpoint) {
            diag.error(format!("{path}.endpoint"), e);
        }
        if let Some(t) = &self.tls {
            t.validate(path, diag);
        }
        if self.metric_expiration.is_zero() {
            diag.error(
                format!("{path}.metric_expiration"),
                "must be greater than 0",
            );
        }
        for k in self.const_labels.keys() {
            if translate::label_name(k) != *k {
                diag.error(
                    format!("{path}.const_labels.{k}"),
                    format!(
                        "not a valid label name (it would be {:?})",
                        translate::label_name(k)
                    ),
                );
            }
        }
    }
}

/// The running exporter: the store, its HTTP endpoint, and the expiry timer.
pub struct PrometheusExporter {
    store: Arc<Store>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl PrometheusExporter {
    pub fn new(
        id: &str,
        cfg: &PrometheusConfig,
        reg: &Registry,
    ) -> Result<PrometheusExporter, BuildError> {
        let listener = crate::net::bind(&cfg.endpoint)?;
        let store = Arc::new(Store::new(
            Options {
                namespace: cfg.namespace.clone(),
                const_labels: cfg.const_labels.clone(),
                add_suffixes: cfg.add_metric_suffixes,
                resource_to_labels: cfg.resource_to_telemetry_conversion.enabled,
                max_series: cfg.max_series,
                expiration: cfg.metric_expiration.get(),
            },
            reg,
            id,
        ));
        let tls = cfg.tls.as_ref().map(|t| t.server()).transpose()?;
        let edge = crate::net::Edge::new(id, Some(reg)).with_tls(tls);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let scrapes = reg.counter(
            names::PROMETHEUS_SCRAPES,
            "Scrapes served.",
            &[("exporter", id)],
        );
        tracing::info!(exporter = %id, address = %cfg.endpoint, "prometheus exporter listening on /metrics");
        let (om, ts, scrape_store) = (cfg.enable_open_metrics, cfg.send_timestamps, store.clone());
        crate::net::serve(edge, listener, stop_rx.clone(), move |_| {
            let (store, scrapes) = (scrape_store.clone(), scrapes.clone());
            hyper::service::service_fn(move |req| {
                scrapes.inc();
                let r = scrape(&store, &req, om, ts);
                async move { Ok::<_, Infallible>(r) }
            })
        });
        tokio::spawn(expire_loop(
            store.clone(),
            cfg.metric_expiration.get(),
            stop_rx,
        ));
        Ok(PrometheusExporter { store, stop })
    }
}

/// Expires the store's idle series on a timer until `stop` changes.
pub(crate) async fn expire_loop(
    store: Arc<Store>,
    expiration: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let period = (expiration / 4).clamp(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(10),
    );
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => { store.expire(); }
            _ = stop.changed() => return,
        }
    }
}

/// Picks the format from `Accept`.
pub fn negotiate(accept: Option<&str>, open_metrics: bool) -> Format {
    match accept {
        Some(a) if open_metrics && a.contains("application/openmetrics-text") => {
            Format::OpenMetrics
        }
        _ => Format::Text,
    }
}

fn scrape(
    store: &Store,
    req: &http::Request<hyper::body::Incoming>,
    om: bool,
    ts: bool,
) -> Response<Full<Bytes>> {
    let text = |status, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = negotiate(accept, om);
    let body = render::render(store, format, ts);
    let gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut resp = if gzip {
        let mut e = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match e.write_all(body.as_bytes()).and_then(|_| e.finish()) {
            Ok(z) => {
                let mut r = Response::new(Full::new(Bytes::from(z)));
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(_) => Response::new(Full::new(Bytes::from(body))),
        }
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

impl Exporter for PrometheusExporter {
    fn cardinality_tracker(&self) -> Option<Arc<crate::cardinality::tracker::Tracker>> {
        Some(self.store.tracker().clone())
    }
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            if let Telemetry::Metrics(m) = batch.data() {
                self.store.ingest(m);
            }
            Ok(ExportOutcome::default())
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        let _ = self.stop.send(true);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests;
