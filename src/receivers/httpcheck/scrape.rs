//! Running `httpcheck`: one task per receiver waits `initial_delay`, then every
//! `collection_interval` checks every URL at once (each request bounded by its timeout), turns
//! what it found into one metrics request and hands it to the pipelines through an [`Intake`]
//! (counted as the Collector counts a scraper: `otelcol_receiver_accepted_metric_points`
//! with `transport=""`, and `otelcol_scraper_scraped_metric_points`). The receiver's stop
//! ends the task at once, between checks or in the middle of them.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::watch;

use super::HttpCheckConfig;
use crate::admission::MemoryGate;
use crate::component::{BuildError, Signal};
use crate::data::Telemetry;
use crate::receivers::intake::Intake;
use crate::receivers::{stopped, ReceiverContext};
use crate::telemetry::metrics::{names, Counter};

/// The instrumentation scope the Collector's receiver reports its metrics under.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/httpcheckreceiver";

const STATUS_CLASSES: [(&str, u16); 5] =
    [("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5)];

/// One URL to check, with its target's request and client settings.
struct Check {
    url: String,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    body: Option<String>,
    client: reqwest::Client,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observation {
    pub url: String,
    pub method: String,
    /// When the check started (Unix nanoseconds).
    pub time: u64,
    /// Time to the answer's head, or to the failure.
    pub duration_ms: i64,
    /// The answer's status code, or why there was none.
    pub outcome: Result<u16, String>,
}

/// Builds the clients (certificates are read here) and starts the receiver's task.
pub fn spawn(
    cfg: &HttpCheckConfig,
    ctx: &ReceiverContext,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, BuildError> {
    let mut checks = Vec::new();
    for t in &cfg.targets {
        let client = t
            .tls
            .clone()
            .unwrap_or_default()
            .http_client(cfg.request_timeout(t))?;
        let method = reqwest::Method::from_bytes(t.method.as_bytes())
            .map_err(|e| BuildError::Other(format!("method {:?}: {e}", t.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static(concat!(
                "otelgw/",
                env!("CARGO_PKG_VERSION")
            )),
        );
        for (k, v) in &t.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| BuildError::Other(format!("header {k:?}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| BuildError::Other(format!("header {k:?}: {e}")))?;
            headers.insert(name, value);
        }
        for url in t.urls() {
            checks.push(Check {
                url: url.to_string(),
                method: method.clone(),
                headers: headers.clone(),
                body: t.body.clone(),
                client: client.clone(),
            });
        }
    }
    let id = ctx.id.to_string();
    let run = Run {
        intake: Intake::new(&ctx.registry, &id, "", Signal::Metrics, ctx.metrics.clone()),
        scraped: ctx.registry.counter(
            names::SCRAPER_SCRAPED_METRIC_POINTS,
            "Metric points successfully scraped.",
            &[("receiver", &id), ("scraper", &ctx.id.kind)],
        ),
        gate: ctx.gate.clone(),
        enabled: cfg.metrics_enabled(),
        interval: cfg
            .collection_interval
            .get()
            .max(std::time::Duration::from_millis(1)),
        initial_delay: cfg.initial_delay.get(),
        checks,
        id,
    };
    tracing::info!(
        receiver = %run.id,
        urls = run.checks.len(),
        interval = ?run.interval,
        "httpcheck receiver started"
    );
    Ok(tokio::spawn(run.run(stop)))
}

struct Run {
    id: String,
    checks: Vec<Check>,
    intake: Intake,
    scraped: Counter,
    gate: Option<Arc<MemoryGate>>,
    enabled: [bool; 3],
    interval: std::time::Duration,
    initial_delay: std::time::Duration,
}

impl Run {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let start = crate::data::unix_nanos(SystemTime::now());
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(self.initial_delay) => {}
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = self.collect(start) => {}
            }
        }
    }

    /// Checks every URL, then passes the metrics on.
    async fn collect(&self, start: u64) {
        let found = futures_util::future::join_all(self.checks.iter().map(check)).await;
        for o in &found {
            if let Err(e) = &o.outcome {
                tracing::debug!(receiver = %self.id, url = %o.url, error = %e, "httpcheck: no answer");
            }
        }
        let Some(req) = to_request(&found, start, self.enabled) else {
            return;
        };
        let data = Telemetry::Metrics(req);
        self.scraped.add(data.item_count());
        if let Err(e) = self.intake.offer(data, self.gate.as_ref()).await {
            tracing::warn!(receiver = %self.id, reason = %e, "httpcheck: this collection was not taken");
        }
    }
}

/// One request, bounded by its client's timeout.
async fn check(c: &Check) -> Observation {
    let time = crate::data::unix_nanos(SystemTime::now());
    let started = Instant::now();
    let mut req = c
        .client
        .request(c.method.clone(), c.url.as_str())
        .headers(c.headers.clone());
    if let Some(b) = &c.body {
        req = req.body(b.clone());
    }
    // the answer's head is enough: its body is dropped unread
    let outcome = match req.send().await {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(crate::net::error_chain(&e)),
    };
    Observation {
        url: c.url.clone(),
        method: c.method.to_string(),
        time,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        outcome,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_string())
}

fn point(start: u64, time: u64, value: i64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn sum(points: Vec<NumberDataPoint>) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: false,
    })
}

/// The metrics request for one collection: `httpcheck.duration`, `httpcheck.error` (only
/// when a check failed) and `httpcheck.status`, in that order (the Collector's), each left out
/// when `enabled` says so; `None` when nothing is left.
pub(super) fn to_request(
    found: &[Observation],
    start: u64,
    enabled: [bool; 3],
) -> Option<ExportMetricsServiceRequest> {
    let mut duration = Vec::new();
    let mut errors = Vec::new();
    let mut status = Vec::new();
    for o in found {
        let url = || kv("http.url", text(&o.url));
        duration.push(point(start, o.time, o.duration_ms, vec![url()]));
        let code = match &o.outcome {
            Ok(code) => *code,
            Err(message) => {
                errors.push(point(
                    start,
                    o.time,
                    1,
                    vec![url(), kv("error.message", text(message))],
                ));
                0
            }
        };
        for (class, digit) in STATUS_CLASSES {
            let attributes = vec![
                url(),
                kv("http.status_code", any_value::Value::IntValue(code.into())),
                kv("http.method", text(&o.method)),
                kv("http.status_class", text(class)),
            ];
            let value = i64::from(code / 100 == digit);
            status.push(point(start, o.time, value, attributes));
        }
    }
    let metric = |name: &str, description: &str, unit: &str, data| Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        data: Some(data),
        ..Default::default()
    };
    let all = [
        (!duration.is_empty()).then(|| {
            metric(
                "httpcheck.duration",
                "Measures the duration of the HTTP check.",
                "ms",
                metric::Data::Gauge(Gauge {
                    data_points: duration,
                }),
            )
        }),
        (!errors.is_empty()).then(|| {
            metric(
                "httpcheck.error",
                "Records errors occurring during HTTP check.",
                "{error}",
                sum(errors),
            )
        }),
        (!status.is_empty()).then(|| {
            metric(
                "httpcheck.status",
                "1 if the check resulted in status_code matching the status_class, otherwise 0.",
                "1",
                sum(status),
            )
        }),
    ];
    let metrics: Vec<Metric> = all
        .into_iter()
        .zip(enabled)
        .filter_map(|(m, on)| m.filter(|_| on))
        .collect();
    if metrics.is_empty() {
        return None;
    }
    Some(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource::default()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}
