//! Connectors: the end of one pipeline and the start of others (`connectors:` in the config;
//! the id goes in one pipeline's `exporters` and other pipelines' `receivers`).
//!
//! Contract: the hop is in-process and inline — a connector hands the request to the pipelines
//! that receive from it ([`crate::pipeline::Fanout`]) on the upstream request's path, so
//! backpressure and refusals propagate (a downstream pipeline that refuses makes the upstream
//! receiver refuse, with the same retry hint) and downstream rejections reach the client's
//! `partial_success`. Nothing is serialised; an encoded request stays encoded. Validation
//! (`config/validate.rs`) checks that each connector is used on both sides with signal pairs it
//! supports and that connectors form no cycle.
//!
//! Types: `forward` (any signal to pipelines of the same signal), `count` (traces, metrics or
//! logs to metrics: item counts as sums), `routing` (each resource to the pipelines of the
//! first route its OTTL condition matches), `spanmetrics` (traces to metrics: calls and duration
//! per service, span name, kind, status and dimensions). `spanmetrics` is the one stateful
//! connector: spans are folded in inline (the upstream request's answer does not wait for the
//! metrics), and a flush task ([`RunningConnector::take_flush`], owned by the graph) hands the
//! metrics to the downstream pipelines every `metrics_flush_interval` and once more at
//! shutdown; a refused flush is counted and logged (cumulative series are complete again at the
//! next flush; delta ones lose that interval).

pub mod count;
pub mod forward;
pub mod routing;
pub mod spanmetrics;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_norway::Value;

use crate::component::{typed, ComponentId, Diagnostics, Signal};
use crate::consumer::{ConsumeError, Rejections};
use crate::data::{Payload, RequestMeta};
use crate::pipeline::Fanout;

/// Every connector type otelgw has.
#[derive(Debug, Clone)]
pub enum ConnectorConfig {
    Count(Box<count::CountConfig>),
    Forward(forward::ForwardConfig),
    SpanMetrics(Box<spanmetrics::SpanMetricsConfig>),
    Routing(Box<routing::RoutingConfig>),
}

pub const CONNECTOR_TYPES: &[&str] = &[
    "count",
    "forward",
    "routing",
    "spanmetrics (alias span_metrics)",
];

impl ConnectorConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ConnectorConfig> {
        match id.kind.as_str() {
            "count" => typed(path, v, diag).map(|c| ConnectorConfig::Count(Box::new(c))),
            "forward" => typed(path, v, diag).map(ConnectorConfig::Forward),
            "routing" => typed(path, v, diag).map(|c| ConnectorConfig::Routing(Box::new(c))),
            "spanmetrics" | "span_metrics" => {
                typed(path, v, diag).map(|c| ConnectorConfig::SpanMetrics(Box::new(c)))
            }
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown connector type {other:?} (known: {})",
                        CONNECTOR_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ConnectorConfig::Count(c) => c.validate(path, diag),
            ConnectorConfig::Forward(_) => {}
            ConnectorConfig::SpanMetrics(c) => c.validate(path, diag),
            ConnectorConfig::Routing(c) => c.validate(path, diag),
        }
    }

    /// True when the connector can take `from` (the signal of a pipeline that exports to it)
    /// to `to` (the signal of a pipeline that receives from it).
    pub fn supports(&self, from: Signal, to: Signal) -> bool {
        match self {
            ConnectorConfig::Count(_) => to == Signal::Metrics,
            ConnectorConfig::Forward(_) | ConnectorConfig::Routing(_) => from == to,
            ConnectorConfig::SpanMetrics(_) => from == Signal::Traces && to == Signal::Metrics,
        }
    }

    /// What the connector does with a signal pair it does not support, for the error.
    pub fn pairs(&self) -> &'static str {
        match self {
            ConnectorConfig::Count(_) => "traces, metrics or logs → metrics",
            ConnectorConfig::Forward(_) | ConnectorConfig::Routing(_) => {
                "traces → traces, metrics → metrics, logs → logs"
            }
            ConnectorConfig::SpanMetrics(_) => "traces → metrics",
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ConnectorConfig::Count(c) => crate::component::to_value(c),
            ConnectorConfig::Forward(c) => crate::component::to_value(c),
            ConnectorConfig::SpanMetrics(c) => crate::component::to_value(c),
            ConnectorConfig::Routing(c) => crate::component::to_value(c),
        }
    }
}

/// A running connector: what a pipeline's end hands requests to.
pub struct RunningConnector {
    pub id: ComponentId,
    kind: Kind,
    /// The Collector counts a connector as an exporter (of what its pipelines hand it) and as a
    /// receiver (of what it passes on).
    hop: Hop,
    /// The flush task of a stateful connector, until the graph takes it.
    flush: std::sync::Mutex<Option<FlushTask>>,
}

/// A connector's flush task: its stop signal (the task flushes once more and ends) and handle.
pub type FlushTask = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
);

enum Kind {
    /// The pipelines that receive from the connector.
    Forward(Fanout),
    /// The counts go to the metrics pipelines that receive from the connector.
    Count(count::Counter, Fanout),
    /// Spans are folded into the aggregator; its flush task feeds the metrics pipelines.
    SpanMetrics(Arc<spanmetrics::Aggregator>),
    /// Each route's pipelines, and the default ones.
    Routing {
        routes: Vec<routing::CompiledRoute>,
        mode: crate::ottl::ErrorMode,
        fanouts: Vec<Fanout>,
        default: Fanout,
    },
}

impl ConnectorConfig {
    /// Builds the connector for a pipeline of signal `from` that exports to it, given the
    /// pipelines that receive from it (of the signals the connector produces from `from`).
    /// Must run inside the runtime (a stateful connector starts its flush task here).
    pub fn build(
        &self,
        id: &ComponentId,
        from: Signal,
        downstream: Fanout,
        registry: &crate::telemetry::metrics::Registry,
    ) -> RunningConnector {
        let mut flush = None;
        let kind = match self {
            ConnectorConfig::Count(c) => Kind::Count(c.build(from), downstream),
            ConnectorConfig::Forward(_) => Kind::Forward(downstream),
            ConnectorConfig::Routing(c) => {
                let routes = c.compile();
                Kind::Routing {
                    fanouts: routes
                        .iter()
                        .map(|r| downstream.only(&r.pipelines))
                        .collect(),
                    default: downstream.only(&c.default_pipelines),
                    mode: c.error_mode,
                    routes,
                }
            }
            ConnectorConfig::SpanMetrics(c) => {
                use crate::telemetry::metrics::names;
                let agg = Arc::new(spanmetrics::Aggregator::new(c));
                let (stop, stop_rx) = tokio::sync::watch::channel(false);
                let name = id.to_string();
                let flushes = |result: &str| {
                    registry.counter(
                        names::CONNECTOR_FLUSHES,
                        "Flushes of a stateful connector's metrics to its pipelines, by result.",
                        &[("connector", name.as_str()), ("result", result)],
                    )
                };
                let counters = FlushCounters {
                    hop: Hop::new(registry, &name, from, Signal::Metrics),
                    ok: flushes("success"),
                    refused: flushes("refused"),
                    series: registry.gauge(
                        names::CONNECTOR_SERIES,
                        "Series a stateful connector aggregates.",
                        &[("connector", name.as_str())],
                    ),
                };
                let task = tokio::spawn(flush_loop(
                    name,
                    agg.clone(),
                    c.metrics_flush_interval.get(),
                    downstream,
                    stop_rx,
                    counters,
                ));
                flush = Some((stop, task));
                Kind::SpanMetrics(agg)
            }
        };
        let to = match self {
            ConnectorConfig::Count(_) | ConnectorConfig::SpanMetrics(_) => Signal::Metrics,
            ConnectorConfig::Forward(_) | ConnectorConfig::Routing(_) => from,
        };
        RunningConnector {
            id: id.clone(),
            hop: Hop::new(registry, &id.to_string(), from, to),
            kind,
            flush: std::sync::Mutex::new(flush),
        }
    }
}

/// A connector's counters under the Collector's exporter and receiver names.
struct Hop {
    /// `otelcol_exporter_sent_<items>{exporter=<id>}`: taken by the connector and its
    /// downstream pipelines.
    sent: crate::telemetry::metrics::Counter,
    /// `otelcol_exporter_send_failed_<items>{exporter=<id>}`: refused downstream or rejected.
    failed: crate::telemetry::metrics::Counter,
    /// `otelcol_receiver_accepted|refused_<items>{receiver=<id>}` of the produced signal.
    received: crate::telemetry::metrics::ReceiverCounters,
}

impl Hop {
    fn new(reg: &crate::telemetry::metrics::Registry, id: &str, from: Signal, to: Signal) -> Hop {
        let out = crate::telemetry::metrics::ExporterCounters::new(reg, id, from);
        Hop {
            sent: out.sent,
            failed: out.send_failed,
            received: crate::telemetry::metrics::ReceiverCounters::new(reg, id, "", to),
        }
    }

    /// Counts what went downstream (`n` items) and the answer.
    fn passed(&self, n: u64, r: &Result<Rejections, ConsumeError>) {
        match r {
            Ok(rej) => {
                self.received.accepted.add(n.saturating_sub(rej.count));
                self.received.refused.add(rej.count.min(n));
            }
            Err(_) => self.received.refused.add(n),
        }
    }
}

struct FlushCounters {
    hop: Hop,
    ok: crate::telemetry::metrics::Counter,
    refused: crate::telemetry::metrics::Counter,
    series: crate::telemetry::metrics::Gauge,
}

/// Hands the aggregator's metrics to `downstream` every `interval`, and once more when told to
/// stop.
async fn flush_loop(
    id: String,
    agg: Arc<spanmetrics::Aggregator>,
    interval: std::time::Duration,
    downstream: Fanout,
    mut stop: tokio::sync::watch::Receiver<bool>,
    c: FlushCounters,
) {
    let FlushCounters {
        hop,
        ok,
        refused,
        series,
    } = c;
    let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: nothing to flush yet
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        series.set(agg.series() as i64);
        let now = crate::data::unix_nanos(std::time::SystemTime::now());
        if let Some(req) = agg.flush(now) {
            let data = crate::data::Telemetry::Metrics(req);
            let meta = Arc::new(RequestMeta {
                wire_size: data.encoded_len() as u64,
                ..RequestMeta::default()
            });
            let n = data.item_count();
            let result = downstream.consume(data.into(), meta).await;
            hop.passed(n, &result);
            match result {
                Ok(_) => ok.inc(),
                Err(e) => {
                    refused.inc();
                    tracing::warn!(connector = %id, error = %e, "spanmetrics: the metrics pipelines refused a flush");
                }
            }
        }
        if last {
            return;
        }
    }
}

impl RunningConnector {
    /// Hands a request to the downstream pipelines, inline: their answer is this hop's answer.
    /// (Boxed: a pipeline's chain awaits its connectors, which await pipelines' chains.)
    pub fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Pin<Box<dyn Future<Output = Result<Rejections, ConsumeError>> + Send + '_>> {
        Box::pin(async move {
            let n = data.item_count();
            let result = self.pass(data, meta).await;
            match &result {
                Ok(rej) => {
                    self.hop.sent.add(n.saturating_sub(rej.count));
                    self.hop.failed.add(rej.count.min(n));
                }
                Err(_) => self.hop.failed.add(n),
            }
            result
        })
    }

    async fn pass(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, ConsumeError> {
        {
            match &self.kind {
                Kind::Forward(f) => {
                    let n = data.item_count();
                    let r = f.consume(data, meta).await;
                    self.hop.passed(n, &r);
                    r
                }
                Kind::Routing {
                    routes,
                    mode,
                    fanouts,
                    default,
                } => {
                    let parts =
                        routing::split(routes, *mode, data.into_decoded(), &meta).map_err(|e| {
                            ConsumeError::Invalid {
                                message: format!("routing: {e}"),
                            }
                        })?;
                    let mut total = Rejections::default();
                    for (route, part) in parts {
                        let f = match route {
                            Some(i) => fanouts.get(i).unwrap_or(default),
                            None => default,
                        };
                        if f.is_empty() {
                            // no default pipelines: what no route took is dropped, counted
                            total.add(
                                part.item_count(),
                                "no route matched and routing has no default_pipelines",
                            );
                            continue;
                        }
                        let n = part.item_count();
                        let r = f.consume(part.into(), meta.clone()).await;
                        self.hop.passed(n, &r);
                        total.merge(r?);
                    }
                    Ok(total)
                }
                Kind::SpanMetrics(agg) => {
                    if let crate::data::Telemetry::Traces(req) = data.into_decoded() {
                        agg.add(&req);
                    }
                    Ok(Rejections::default())
                }
                Kind::Count(counter, f) => {
                    let mut t = data.into_decoded();
                    match counter.count(&mut t) {
                        // the counts' own rejections are not the client's items
                        Some(counts) => {
                            let n = counts.item_count();
                            let r = f.consume(counts.into(), meta).await;
                            self.hop.passed(n, &r);
                            r.map(|_| Rejections::default())
                        }
                        None => Ok(Rejections::default()),
                    }
                }
            }
        }
    }

    /// True when the connector needs the decoded request (`count` does; `forward` does not:
    /// each downstream pipeline decodes for itself if it must).
    pub fn reads_items(&self) -> bool {
        match &self.kind {
            Kind::Forward(_) => false,
            Kind::Count(..) | Kind::SpanMetrics(_) | Kind::Routing { .. } => true,
        }
    }

    /// The flush task, once (the graph stops it at shutdown before closing the pipelines it
    /// feeds).
    pub fn take_flush(&self) -> Option<FlushTask> {
        self.flush.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
