//! `batch`: merges requests into batches and splits oversized ones, per pipeline.
//!
//! Contract: items leave in the order they came, inside their own resource and scope (a split
//! clones the resource/scope wrapper around the items it moves), never lost and never duplicated
//! (property-tested below). A batch is sent when it holds `send_batch_size` items (the size
//! trigger) or `timeout` after its first item arrived (the timeout trigger); batches above
//! `send_batch_max_size` are split. Requests that travel as protobuf bytes are batched by
//! concatenation and never cut: a piece sent under `send_batch_max_size` is as many whole
//! requests as fit, and only a request larger than the limit on its own is decoded and split.
//! With `metadata_keys`, requests are batched separately per distinct combination of those
//! request headers (the receiver's `include_metadata` must be on), at most
//! `metadata_cardinality_limit` combinations; a request past the limit is refused.
//!
//! Where it sits: the batch processor is a stage with its own bounded input queue (capacity
//! [`INPUT_QUEUE`], full-policy `block`). Processors listed before it run inline on the request
//! path; processors after it run in its flush task, followed by the exporters. Items it could
//! not hand on (an exporter refused them, or the gateway stopped) are counted as
//! `otelgw_dropped_items{component="batch",reason=…}` and logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    self as pb, metric, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::units::Duration;
use crate::config::Diagnostics;
use crate::consumer::ConsumeError;
use crate::data::{metric_point_count, Encoded, Payload, RequestMeta, Signal, Telemetry};
use crate::pipeline::Chain;
use crate::telemetry::metrics::{names, Counter, Gauge, Histogram, Registry, BATCH_SIZE_BUCKETS};

/// Requests waiting to enter one batch processor.
pub const INPUT_QUEUE: usize = 64;

/// `processors.batch`, with the Collector's keys and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send a batch as soon as it holds this many items (spans, data points, log records).
    pub send_batch_size: u64,
    /// Split batches above this many items (0 = no upper bound).
    pub send_batch_max_size: u64,
    /// Send a batch this long after its first item arrived, however small. `0` sends at once.
    pub timeout: Duration,
    /// Request headers (lowercase) whose values key separate batches.
    pub metadata_keys: Vec<String>,
    /// Most distinct `metadata_keys` value combinations at once.
    pub metadata_cardinality_limit: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: vec![],
            metadata_cardinality_limit: 1000,
        }
    }
}

impl BatchConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            diag.error(
                format!("{path}.send_batch_max_size"),
                format!(
                    "must be 0 (no limit) or at least send_batch_size ({})",
                    self.send_batch_size
                ),
            );
        }
        if !self.metadata_keys.is_empty() && self.metadata_cardinality_limit == 0 {
            diag.error(
                format!("{path}.metadata_cardinality_limit"),
                "must be at least 1 with metadata_keys",
            );
        }
        for (i, k) in self.metadata_keys.iter().enumerate() {
            if k.is_empty() || http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                diag.error(
                    format!("{path}.metadata_keys[{i}]"),
                    format!("{k:?} is not a valid header name"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// split and merge

/// A level of the OTLP tree that can give up its first `n` items.
trait Splittable {
    fn count(&self) -> u64;
    /// Removes and returns the first `n` items, `0 < n < count()`, inside a copy of this
    /// level's wrapper (resource, scope, metric description).
    fn split_front(&mut self, n: u64) -> Self;
}

/// Removes and returns the first `n` items of a list of groups.
fn take_front<T: Splittable>(v: &mut Vec<T>, mut n: u64) -> Vec<T> {
    let mut whole = 0;
    while whole < v.len() && n > 0 {
        let c = v[whole].count();
        if c > n {
            break;
        }
        n -= c;
        whole += 1;
    }
    let mut out: Vec<T> = v.drain(..whole).collect();
    if n > 0 {
        if let Some(first) = v.first_mut() {
            out.push(first.split_front(n));
        }
    }
    out
}

impl Splittable for ResourceSpans {
    fn count(&self) -> u64 {
        self.scope_spans.iter().map(|s| s.spans.len() as u64).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceSpans {
            resource: self.resource.clone(),
            scope_spans: take_front(&mut self.scope_spans, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeSpans {
    fn count(&self) -> u64 {
        self.spans.len() as u64
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeSpans {
            scope: self.scope.clone(),
            spans: self.spans.drain(..n as usize).collect(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ResourceLogs {
    fn count(&self) -> u64 {
        self.scope_logs
            .iter()
            .map(|s| s.log_records.len() as u64)
            .sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceLogs {
            resource: self.resource.clone(),
            scope_logs: take_front(&mut self.scope_logs, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeLogs {
    fn count(&self) -> u64 {
        self.log_records.len() as u64
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeLogs {
            scope: self.scope.clone(),
            log_records: self.log_records.drain(..n as usize).collect(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ResourceMetrics {
    fn count(&self) -> u64 {
        self.scope_metrics.iter().map(Splittable::count).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ResourceMetrics {
            resource: self.resource.clone(),
            scope_metrics: take_front(&mut self.scope_metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for ScopeMetrics {
    fn count(&self) -> u64 {
        self.metrics.iter().map(metric_point_count).sum()
    }
    fn split_front(&mut self, n: u64) -> Self {
        ScopeMetrics {
            scope: self.scope.clone(),
            metrics: take_front(&mut self.metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl Splittable for Metric {
    fn count(&self) -> u64 {
        metric_point_count(self)
    }
    fn split_front(&mut self, n: u64) -> Self {
        let n = n as usize;
        let data = match &mut self.data {
            Some(metric::Data::Gauge(g)) => Some(metric::Data::Gauge(pb::Gauge {
                data_points: g.data_points.drain(..n).collect(),
            })),
            Some(metric::Data::Sum(s)) => Some(metric::Data::Sum(pb::Sum {
                data_points: s.data_points.drain(..n).collect(),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            })),
            Some(metric::Data::Histogram(h)) => Some(metric::Data::Histogram(pb::Histogram {
                data_points: h.data_points.drain(..n).collect(),
                aggregation_temporality: h.aggregation_temporality,
            })),
            Some(metric::Data::ExponentialHistogram(h)) => Some(
                metric::Data::ExponentialHistogram(pb::ExponentialHistogram {
                    data_points: h.data_points.drain(..n).collect(),
                    aggregation_temporality: h.aggregation_temporality,
                }),
            ),
            Some(metric::Data::Summary(s)) => Some(metric::Data::Summary(pb::Summary {
                data_points: s.data_points.drain(..n).collect(),
            })),
            None => None,
        };
        Metric {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            metadata: self.metadata.clone(),
            data,
        }
    }
}

/// Removes and returns the first `n` items of `t` (all of them when `n` ≥ the count).
pub fn split_front(t: &mut Telemetry, n: u64) -> Telemetry {
    match t {
        Telemetry::Traces(r) => Telemetry::Traces(ExportTraceServiceRequest {
            resource_spans: take_front(&mut r.resource_spans, n),
        }),
        Telemetry::Metrics(r) => Telemetry::Metrics(ExportMetricsServiceRequest {
            resource_metrics: take_front(&mut r.resource_metrics, n),
        }),
        Telemetry::Logs(r) => Telemetry::Logs(ExportLogsServiceRequest {
            resource_logs: take_front(&mut r.resource_logs, n),
        }),
    }
}

/// Appends `more` to `into` (same signal; a different signal is handed back).
pub fn merge(into: &mut Telemetry, more: Telemetry) -> Result<(), Telemetry> {
    match (into, more) {
        (Telemetry::Traces(a), Telemetry::Traces(b)) => a.resource_spans.extend(b.resource_spans),
        (Telemetry::Metrics(a), Telemetry::Metrics(b)) => {
            a.resource_metrics.extend(b.resource_metrics)
        }
        (Telemetry::Logs(a), Telemetry::Logs(b)) => a.resource_logs.extend(b.resource_logs),
        (_, other) => return Err(other),
    }
    Ok(())
}

/// What a pending batch holds. Requests that arrive as protobuf ([`Payload::Encoded`]) stay
/// bytes: OTLP export requests are one repeated field, so the concatenation of two encodings is
/// the encoding of the merged request, and the batch is joined with one copy when it is sent.
/// The first decoded request (or a split) turns the batch into prost structs.
enum Held {
    Encoded { signal: Signal, parts: Vec<Encoded> },
    Decoded(Telemetry),
}

impl Held {
    /// Adds a request (of the same signal; another signal is handed back).
    fn add(&mut self, more: Payload) -> Result<(), Payload> {
        if more.signal() != self.signal() {
            return Err(more);
        }
        match (&mut *self, more) {
            (Held::Encoded { parts, .. }, Payload::Encoded(e)) => parts.push(e),
            (Held::Decoded(t), more) => {
                if let Err(other) = merge(t, more.into_decoded()) {
                    return Err(Payload::Decoded(other));
                }
            }
            (Held::Encoded { signal, parts }, Payload::Decoded(more)) => {
                let mut t = Telemetry::empty(*signal);
                for e in parts.drain(..) {
                    if let Err(other) = merge(&mut t, Payload::Encoded(e).into_decoded()) {
                        return Err(Payload::Decoded(other));
                    }
                }
                if let Err(other) = merge(&mut t, more) {
                    return Err(Payload::Decoded(other));
                }
                *self = Held::Decoded(t);
            }
        }
        Ok(())
    }

    fn signal(&self) -> Signal {
        match self {
            Held::Encoded { signal, .. } => *signal,
            Held::Decoded(t) => t.signal(),
        }
    }

    /// The batch as one request.
    fn finish(self) -> Payload {
        match self {
            Held::Decoded(t) => Payload::Decoded(t),
            Held::Encoded { signal, mut parts } => {
                if parts.len() == 1 {
                    if let Some(e) = parts.pop() {
                        return Payload::Encoded(e);
                    }
                }
                let len = parts.iter().map(|e| e.bytes.len()).sum();
                let mut buf = bytes::BytesMut::with_capacity(len);
                let mut items = 0;
                for e in parts {
                    buf.extend_from_slice(&e.bytes);
                    items += e.items;
                }
                Payload::Encoded(Encoded {
                    signal,
                    items,
                    bytes: buf.freeze(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the running stage

struct Item {
    data: Payload,
    meta: Arc<RequestMeta>,
}

/// The handle a pipeline uses to hand requests to its batch stage.
#[derive(Clone)]
pub struct BatchHandle {
    id: String,
    tx: async_channel::Sender<Item>,
    keys: Vec<String>,
    limit: usize,
    /// Metadata value combinations seen (as in the Collector, a combination keeps its batcher).
    known: Arc<std::sync::Mutex<std::collections::HashSet<Vec<Option<String>>>>>,
    cardinality: Gauge,
    /// Whether the chain after the stage reads the contents ([`Chain::reads_contents`]).
    downstream_reads: bool,
}

struct Metrics {
    size: Histogram,
    size_trigger: Counter,
    timeout_trigger: Counter,
    dropped_refused: [Counter; 3],
    dropped_shutdown: [Counter; 3],
}

fn sig_idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl BatchHandle {
    /// Starts the stage; `downstream` is the rest of the pipeline.
    pub fn start(
        id: &str,
        pipeline: &str,
        cfg: &BatchConfig,
        downstream: Chain,
        reg: &Registry,
    ) -> (BatchHandle, tokio::task::JoinHandle<()>) {
        let labels = [("processor", id), ("pipeline", pipeline)];
        let dropped = |reason: &str, s: Signal| {
            reg.counter(
                names::DROPPED_ITEMS,
                "Items dropped by otelgw, by component and reason.",
                &[
                    ("component", id),
                    ("reason", reason),
                    ("signal", s.as_str()),
                ],
            )
        };
        let m = Metrics {
            size: reg.histogram(
                "otelcol_processor_batch_batch_send_size",
                "Items in each batch sent.",
                BATCH_SIZE_BUCKETS,
                &labels,
            ),
            size_trigger: reg.counter(
                "otelcol_processor_batch_batch_size_trigger_send",
                "Batches sent because they reached send_batch_size.",
                &labels,
            ),
            timeout_trigger: reg.counter(
                "otelcol_processor_batch_timeout_trigger_send",
                "Batches sent because the timeout expired.",
                &labels,
            ),
            dropped_refused: Signal::ALL.map(|s| dropped("refused_downstream", s)),
            dropped_shutdown: Signal::ALL.map(|s| dropped("shutdown", s)),
        };
        let cardinality = reg.gauge(
            "otelcol_processor_batch_metadata_cardinality",
            "Distinct metadata value combinations being batched.",
            &labels,
        );
        let (tx, rx) = async_channel::bounded(INPUT_QUEUE);
        let handle = BatchHandle {
            id: id.to_string(),
            tx,
            keys: cfg
                .metadata_keys
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            limit: cfg.metadata_cardinality_limit,
            known: Default::default(),
            cardinality,
            downstream_reads: downstream.reads_contents(),
        };
        let task = tokio::spawn(run(cfg.clone(), rx, downstream, m, handle.keys.clone()));
        (handle, task)
    }

    /// Hands a request to the stage (waits while its input queue is full). A request that
    /// would open a metadata combination past `metadata_cardinality_limit` is refused.
    pub async fn consume(&self, data: Payload, meta: Arc<RequestMeta>) -> Result<(), ConsumeError> {
        if !self.keys.is_empty() {
            let key = key_of(&self.keys, &meta);
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            if !known.contains(&key) {
                if known.len() >= self.limit {
                    return Err(ConsumeError::Invalid {
                        message: format!(
                            "batch processor {}: the limit of {} distinct values of {:?} is reached",
                            self.id, self.limit, self.keys
                        ),
                    });
                }
                known.insert(key);
                self.cardinality.set(known.len() as i64);
            }
        }
        self.tx
            .send(Item { data, meta })
            .await
            .map_err(|_| ConsumeError::ShuttingDown)
    }

    /// True when the chain after this stage reads the contents.
    pub fn reads_contents(&self) -> bool {
        self.downstream_reads
    }

    /// Stops taking requests; the task flushes what it holds and ends.
    pub fn close(&self) {
        self.tx.close();
    }
}

fn key_of(keys: &[String], meta: &RequestMeta) -> Vec<Option<String>> {
    keys.iter()
        .map(|k| {
            meta.headers
                .iter()
                .find(|(h, _)| h == k)
                .map(|(_, v)| v.clone())
        })
        .collect()
}

struct Pending {
    data: Held,
    items: u64,
    deadline: Instant,
    meta: Arc<RequestMeta>,
}

async fn send(down: &Chain, data: Payload, meta: Arc<RequestMeta>, m: &Metrics) {
    let items = data.item_count();
    let signal = data.signal();
    m.size.observe(items);
    if let Err(e) = down.consume(data, meta).await {
        let counter = match e {
            ConsumeError::ShuttingDown => &m.dropped_shutdown[sig_idx(signal)],
            _ => &m.dropped_refused[sig_idx(signal)],
        };
        counter.add(items);
        tracing::error!(error = %e, items, "batch could not be handed on; items dropped");
    }
}

/// Sends `p`, split into pieces of at most `max` items (0 = no limit). Encoded requests are
/// never cut: each piece is as many whole requests as fit under `max`, and only a request
/// larger than `max` on its own is decoded and split.
async fn flush(down: &Chain, p: Pending, max: u64, m: &Metrics) {
    match p.data {
        Held::Encoded { signal, parts } if max > 0 && p.items > max => {
            for piece in pieces(parts, max) {
                match piece {
                    Piece::Whole(parts) => {
                        let whole = Held::Encoded { signal, parts };
                        send(down, whole.finish(), p.meta.clone(), m).await;
                    }
                    Piece::Cut(e) => {
                        let items = e.items;
                        send_split(down, Payload::Encoded(e), items, max, &p.meta, m).await;
                    }
                }
            }
        }
        held => send_split(down, held.finish(), p.items, max, &p.meta, m).await,
    }
}

/// One piece of a batch of encoded requests sent under `send_batch_max_size`.
#[derive(Debug)]
enum Piece {
    /// Whole requests, at most `max` items together.
    Whole(Vec<Encoded>),
    /// A request above `max` on its own, to be decoded and cut.
    Cut(Encoded),
}

/// Splits `parts` (in order) into runs of whole requests of at most `max` items, and the
/// requests that exceed `max` alone.
fn pieces(parts: Vec<Encoded>, max: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut group = Vec::new();
    let mut n = 0;
    for e in parts {
        if n + e.items > max && !group.is_empty() {
            out.push(Piece::Whole(std::mem::take(&mut group)));
            n = 0;
        }
        if e.items > max {
            out.push(Piece::Cut(e));
        } else {
            n += e.items;
            group.push(e);
        }
    }
    if !group.is_empty() {
        out.push(Piece::Whole(group));
    }
    out
}

/// Sends `data` (`items` long) in pieces of at most `max` items (0 = no limit), decoding it if
/// it has to be cut.
async fn send_split(
    down: &Chain,
    mut data: Payload,
    mut items: u64,
    max: u64,
    meta: &Arc<RequestMeta>,
    m: &Metrics,
) {
    if max > 0 && items > max {
        let mut t = data.into_decoded();
        while items > max {
            let head = split_front(&mut t, max);
            items -= max;
            send(down, Payload::Decoded(head), meta.clone(), m).await;
        }
        data = Payload::Decoded(t);
    }
    if items > 0 {
        send(down, data, meta.clone(), m).await;
    }
}

async fn run(
    cfg: BatchConfig,
    rx: async_channel::Receiver<Item>,
    down: Chain,
    m: Metrics,
    keys: Vec<String>,
) {
    let timeout: StdDuration = cfg.timeout.get();
    let size = cfg.send_batch_size;
    let max = cfg.send_batch_max_size;
    let mut pending: HashMap<Vec<Option<String>>, Pending> = HashMap::new();
    loop {
        let next_deadline = pending.values().map(|p| p.deadline).min();
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = async {
                match next_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                let due: Vec<_> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| k.clone()).collect();
                for k in due {
                    if let Some(p) = pending.remove(&k) {
                        m.timeout_trigger.inc();
                        flush(&down, p, max, &m).await;
                    }
                }
                continue;
            }
        };
        let Ok(Item { data, meta }) = item else {
            // closed and empty: flush everything and stop
            for (_, p) in pending.drain() {
                flush(&down, p, max, &m).await;
            }
            return;
        };
        let key = key_of(&keys, &meta);
        let items = data.item_count();
        let batch_meta = if keys.is_empty() {
            Arc::new(RequestMeta::default())
        } else {
            Arc::new(RequestMeta {
                client_address: None,
                wire_size: 0,
                headers: keys
                    .iter()
                    .zip(&key)
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
                    .collect(),
            })
        };
        let signal = data.signal();
        let p = pending.entry(key.clone()).or_insert_with(|| Pending {
            data: Held::Encoded {
                signal,
                parts: Vec::new(),
            },
            items: 0,
            deadline: Instant::now() + timeout,
            meta: batch_meta,
        });
        if let Err(other) = p.data.add(data) {
            // a pipeline carries one signal; this cannot happen, but never lose data over it
            send(&down, other, meta, &m).await;
            continue;
        }
        p.items += items;
        if p.items >= size || timeout.is_zero() {
            if let Some(p) = pending.remove(&key) {
                m.size_trigger.inc();
                flush(&down, p, max, &m).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use proptest::prelude::*;

    /// (resource name, scope name, span name) for every span, in order.
    fn flat(t: &Telemetry) -> Vec<(String, String, String)> {
        let Telemetry::Traces(r) = t else {
            return vec![];
        };
        let mut v = vec![];
        for rs in &r.resource_spans {
            let res = format!("{:?}", rs.resource);
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for s in &ss.spans {
                    v.push((res.clone(), scope.clone(), s.name.clone()));
                }
            }
        }
        v
    }

    fn build(shape: &[Vec<usize>]) -> Telemetry {
        let mut n = 0;
        Telemetry::Traces(ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .enumerate()
                .map(|(ri, scopes)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![testdata::kv("r", testdata::s(&ri.to_string()))],
                        ..Default::default()
                    }),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(si, count)| ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("s{si}"),
                                ..Default::default()
                            }),
                            spans: (0..*count)
                                .map(|_| {
                                    n += 1;
                                    Span {
                                        name: format!("span{n}"),
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        })
    }

    proptest! {
        /// Splitting into pieces of at most `max` conserves every item, in order, each still
        /// inside its own resource and scope, and no piece exceeds `max`.
        #[test]
        fn split_conserves_items_order_and_context(
            shape in prop::collection::vec(prop::collection::vec(0usize..20, 0..4), 0..5),
            max in 1u64..30,
        ) {
            let original = build(&shape);
            let want = flat(&original);
            let mut rest = original.clone();
            let mut got = vec![];
            loop {
                let before = rest.item_count();
                let piece = split_front(&mut rest, max);
                prop_assert!(piece.item_count() <= max);
                prop_assert_eq!(piece.item_count() + rest.item_count(), before);
                got.extend(flat(&piece));
                if rest.item_count() == 0 { break; }
                prop_assert_eq!(piece.item_count(), max);
            }
            prop_assert_eq!(got, want);
        }

        /// Merging requests and splitting the result gives back every item exactly once, in order.
        #[test]
        fn merge_then_split_round_trips(
            shapes in prop::collection::vec(prop::collection::vec(prop::collection::vec(0usize..6, 1..3), 1..3), 1..5),
            max in 1u64..25,
        ) {
            let parts: Vec<Telemetry> = shapes.iter().map(|s| build(s)).collect();
            let want: Vec<_> = parts.iter().flat_map(flat).collect();
            let mut merged = Telemetry::empty(Signal::Traces);
            for p in parts {
                merge(&mut merged, p).unwrap();
            }
            let mut got = vec![];
            while merged.item_count() > 0 {
                got.extend(flat(&split_front(&mut merged, max)));
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn metrics_split_inside_a_metric_keeps_its_description() {
        let mut m = Telemetry::Metrics(testdata::metrics(1, 2, 3)); // 2 resources × 5 metrics × 3 points
        assert_eq!(m.item_count(), 30);
        let head = split_front(&mut m, 4);
        assert_eq!(head.item_count(), 4);
        assert_eq!(m.item_count(), 26);
        let Telemetry::Metrics(h) = &head else {
            panic!()
        };
        let metrics = &h.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[1].name, "process.memory.usage");
        assert_eq!(metric_point_count(&metrics[1]), 1);
        let Telemetry::Metrics(rest) = &m else {
            panic!()
        };
        assert_eq!(
            rest.resource_metrics[0].scope_metrics[0].metrics[0].name,
            "process.memory.usage"
        );
        assert_eq!(
            rest.resource_metrics[0].resource,
            h.resource_metrics[0].resource
        );
    }

    #[test]
    fn logs_split_and_merge() {
        let mut a = Telemetry::Logs(testdata::logs(1, 2, 5));
        let b = Telemetry::Logs(testdata::logs(2, 1, 3));
        merge(&mut a, b).unwrap();
        assert_eq!(a.item_count(), 13);
        let head = split_front(&mut a, 7);
        assert_eq!((head.item_count(), a.item_count()), (7, 6));
        assert!(merge(&mut a, Telemetry::Traces(Default::default())).is_err());
    }

    #[test]
    fn max_below_size_is_invalid() {
        let mut d = Diagnostics::default();
        BatchConfig {
            send_batch_size: 100,
            send_batch_max_size: 10,
            ..Default::default()
        }
        .validate("processors.batch", &mut d);
        assert_eq!(d.errors[0].path, "processors.batch.send_batch_max_size");
    }

    fn encoded(t: &Telemetry) -> Payload {
        Payload::Encoded(Encoded {
            signal: t.signal(),
            items: t.item_count(),
            bytes: t.encode_to_bytes(),
        })
    }

    #[test]
    fn encoded_requests_batch_as_their_concatenated_bytes() {
        let (a, b, c) = (
            build(&[vec![2, 1]]),
            build(&[vec![3]]),
            build(&[vec![1], vec![4]]),
        );
        let mut held = Held::Encoded {
            signal: Signal::Traces,
            parts: vec![],
        };
        for t in [&a, &b, &c] {
            held.add(encoded(t)).unwrap();
        }
        let Payload::Encoded(e) = held.finish() else {
            panic!("encoded requests must stay encoded")
        };
        assert_eq!(e.items, 11);
        let expected = [
            a.encode_to_bytes(),
            b.encode_to_bytes(),
            c.encode_to_bytes(),
        ]
        .concat();
        assert_eq!(e.bytes.as_ref(), expected.as_slice());
        let mut merged = a.clone();
        merge(&mut merged, b.clone()).unwrap();
        merge(&mut merged, c.clone()).unwrap();
        assert_eq!(
            Telemetry::decode_proto(Signal::Traces, &e.bytes).unwrap(),
            merged
        );
    }

    #[test]
    fn a_decoded_request_turns_the_batch_decoded_in_order() {
        let (a, b, c) = (build(&[vec![2]]), build(&[vec![1, 1]]), build(&[vec![3]]));
        let mut held = Held::Encoded {
            signal: Signal::Traces,
            parts: vec![],
        };
        held.add(encoded(&a)).unwrap();
        held.add(Payload::Decoded(b.clone())).unwrap();
        held.add(encoded(&c)).unwrap();
        let Payload::Decoded(t) = held.finish() else {
            panic!("a decoded request decodes the batch")
        };
        assert_eq!(flat(&t), [flat(&a), flat(&b), flat(&c)].concat());
        // another signal is handed back, never merged
        let back = held_of(&a).add(encoded(&testdata_logs()));
        assert!(back.is_err());
    }

    fn held_of(t: &Telemetry) -> Held {
        Held::Decoded(t.clone())
    }

    fn testdata_logs() -> Telemetry {
        Telemetry::Logs(testdata::logs(1, 1, 2))
    }

    #[test]
    fn encoded_pieces_keep_requests_whole_and_cut_only_the_oversized() {
        let part = |items: u64| Encoded {
            signal: Signal::Traces,
            items,
            bytes: Default::default(),
        };
        let shape = |sizes: &[u64], max: u64| -> Vec<Vec<u64>> {
            pieces(sizes.iter().map(|&n| part(n)).collect(), max)
                .into_iter()
                .map(|p| match p {
                    Piece::Whole(v) => v.iter().map(|e| e.items).collect(),
                    Piece::Cut(e) => vec![0, e.items],
                })
                .collect()
        };
        // [0, n] marks a cut request
        assert_eq!(shape(&[5, 30, 4], 12), [vec![5], vec![0, 30], vec![4]]);
        assert_eq!(shape(&[6, 6, 6], 12), [vec![6, 6], vec![6]]);
        assert_eq!(shape(&[12, 1], 12), [vec![12], vec![1]]);
        assert_eq!(
            shape(&[3, 4, 5, 13, 13], 12),
            [vec![3, 4, 5], vec![0, 13], vec![0, 13]]
        );
    }
}
