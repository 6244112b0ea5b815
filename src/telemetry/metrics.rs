//! Self-metrics: a small typed registry rendered as Prometheus text 0.0.4.
//!
//! Names follow the OpenTelemetry Collector (`otelcol_receiver_accepted_spans`, …) so existing
//! dashboards work; otelgw's own metrics start with `otelgw_`, and otelgw's counters end in
//! `_total` (the Prometheus convention; the Collector's names are kept exactly as the Collector
//! exposes them). Every name lives in [`names`]: no other file spells one.
//! Counters and gauges are atomics handed out once at build time: the hot path does one relaxed
//! atomic add and never touches the registry. Asking twice for the same name and labels returns
//! the same cell, so counts survive a config reload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::component::Signal;

/// Every self-metric name, in one place (tests may spell names out to check what is exposed).
pub mod names {
    use crate::component::Signal;

    pub fn receiver_accepted(s: Signal) -> String {
        format!("otelcol_receiver_accepted_{}", s.item_noun())
    }
    pub fn receiver_refused(s: Signal) -> String {
        format!("otelcol_receiver_refused_{}", s.item_noun())
    }
    pub fn exporter_sent(s: Signal) -> String {
        format!("otelcol_exporter_sent_{}", s.item_noun())
    }
    pub fn exporter_send_failed(s: Signal) -> String {
        format!("otelcol_exporter_send_failed_{}", s.item_noun())
    }
    pub fn exporter_enqueue_failed(s: Signal) -> String {
        format!("otelcol_exporter_enqueue_failed_{}", s.item_noun())
    }
    pub fn processor_incoming(s: Signal) -> String {
        format!("otelcol_processor_incoming_{}", s.item_noun())
    }
    pub fn processor_outgoing(s: Signal) -> String {
        format!("otelcol_processor_outgoing_{}", s.item_noun())
    }
    pub const EXPORTER_QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
    pub const EXPORTER_QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
    pub const RECEIVER_REQUESTS: &str = "otelgw_receiver_requests_total";
    pub const RECEIVER_FORWARDED: &str = "otelgw_receiver_forwarded_requests_total";
    pub const DROPPED_ITEMS: &str = "otelgw_dropped_items_total";
    pub const EXPORTER_RETRIES: &str = "otelgw_exporter_retries_total";
    pub const EXPORTER_SEND_DURATION: &str = "otelgw_exporter_send_duration_milliseconds";
    pub const CONNECTOR_FLUSHES: &str = "otelgw_connector_flushes_total";
    pub const CONNECTOR_SERIES: &str = "otelgw_connector_series";
    pub const CONFIG_RELOADS: &str = "otelgw_config_reloads_total";
    pub const PERSISTENT_QUEUE_DISK_BYTES: &str = "otelgw_exporter_persistent_queue_disk_bytes";
    pub const PERSISTENT_QUEUE_RECOVERED: &str =
        "otelgw_exporter_persistent_queue_recovered_records_total";
    pub const PERSISTENT_QUEUE_CORRUPT: &str =
        "otelgw_exporter_persistent_queue_corrupt_records_total";
    pub const PROCESS_START_TIME: &str = "otelcol_process_start_time_seconds";
    pub const CARDINALITY_EXPIRED_TOTAL: &str = "otelgw_cardinality_expired_total";
    pub const CARDINALITY_MEMORY_BYTES: &str = "otelgw_cardinality_memory_bytes";
    pub const CARDINALITY_OVERFLOW_POINTS_TOTAL: &str = "otelgw_cardinality_overflow_points_total";
    pub const CARDINALITY_REJECTED_TOTAL: &str = "otelgw_cardinality_rejected_total";
    pub const CARDINALITY_SERIES_ACTIVE: &str = "otelgw_cardinality_series_active";
    pub const CARDINALITY_SERIES_LIMIT: &str = "otelgw_cardinality_series_limit";
    pub const LISTENER_CONNECTIONS: &str = "otelgw_listener_connections";
    pub const LISTENER_CONNECTIONS_ACCEPTED: &str = "otelgw_listener_connections_accepted_total";
    pub const LISTENER_CONNECTIONS_CLOSED: &str = "otelgw_listener_connections_closed_total";
    pub const LOKI_ENTRIES_DROPPED_STREAM_LIMIT: &str =
        "otelgw_loki_entries_dropped_stream_limit_total";
    pub const LOKI_LABELS_DEMOTED: &str = "otelgw_loki_labels_demoted_total";
    pub const LOKI_LABEL_VALUES_TRUNCATED: &str = "otelgw_loki_label_values_truncated_total";
    pub const LOKI_LINES_DROPPED: &str = "otelgw_loki_lines_dropped_total";
    pub const LOKI_LINES_TRUNCATED: &str = "otelgw_loki_lines_truncated_total";
    pub const MEMORY_LIMITER_ACCOUNTED_BYTES: &str = "otelgw_memory_limiter_accounted_bytes";
    pub const MEMORY_LIMITER_LIMIT_BYTES: &str = "otelgw_memory_limiter_limit_bytes";
    pub const MEMORY_LIMITER_REFUSED_REQUESTS: &str =
        "otelgw_memory_limiter_refused_requests_total";
    pub const MEMORY_LIMITER_STATE: &str = "otelgw_memory_limiter_state";
    pub const MEMORY_LIMITER_USAGE_BYTES: &str = "otelgw_memory_limiter_usage_bytes";
    pub const PROCESSOR_BATCH_BATCH_SEND_SIZE: &str = "otelcol_processor_batch_batch_send_size";
    pub const PROCESSOR_BATCH_BATCH_SIZE_TRIGGER_SEND: &str =
        "otelcol_processor_batch_batch_size_trigger_send";
    pub const PROCESSOR_BATCH_METADATA_CARDINALITY: &str =
        "otelcol_processor_batch_metadata_cardinality";
    pub const PROCESSOR_BATCH_TIMEOUT_TRIGGER_SEND: &str =
        "otelcol_processor_batch_timeout_trigger_send";
    pub const PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_LOGS_SAMPLED: &str =
        "otelcol_processor_probabilistic_sampler_count_logs_sampled";
    pub const PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_TRACES_SAMPLED: &str =
        "otelcol_processor_probabilistic_sampler_count_traces_sampled";
    pub const PROCESSOR_TAIL_SAMPLING_COUNT_TRACES_SAMPLED: &str =
        "otelcol_processor_tail_sampling_count_traces_sampled";
    pub const PROCESSOR_TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED: &str =
        "otelcol_processor_tail_sampling_global_count_traces_sampled";
    pub const PROCESSOR_TAIL_SAMPLING_TRACE_DROPPED_TOO_EARLY: &str =
        "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early";
    pub const PROCESSOR_TAIL_SAMPLING_LATE_SPAN_AGE: &str =
        "otelcol_processor_tail_sampling_sampling_late_span_age";
    pub const PROCESSOR_TAIL_SAMPLING_LATE_SPANS_DROPPED: &str =
        "otelgw_processor_tail_sampling_late_spans_dropped_total";
    pub const PROCESSOR_TAIL_SAMPLING_TRACES_ON_MEMORY: &str =
        "otelcol_processor_tail_sampling_sampling_traces_on_memory";
    pub const PROCESSOR_TAIL_SAMPLING_SPANS_HELD: &str =
        "otelgw_processor_tail_sampling_spans_held";
    pub const PROCESSOR_TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED: &str =
        "otelcol_processor_tail_sampling_new_trace_id_received";
    pub const PROCESSOR_FILTER_SPANS_FILTERED: &str = "otelcol_processor_filter_spans_filtered";
    pub const PROCESSOR_FILTER_LOGS_FILTERED: &str = "otelcol_processor_filter_logs_filtered";
    pub const PROCESSOR_FILTER_DATAPOINTS_FILTERED: &str =
        "otelcol_processor_filter_datapoints_filtered";
    pub const PROCESSOR_OTTL_ERRORS: &str = "otelgw_processor_ottl_errors_total";
    pub const PROMETHEUS_DROPPED_POINTS: &str = "otelgw_prometheus_dropped_points_total";
    pub const PROMETHEUS_EXPIRED_SERIES: &str = "otelgw_prometheus_expired_series_total";
    pub const PROMETHEUS_SCRAPES: &str = "otelgw_prometheus_scrapes_total";
    pub const PROMETHEUS_SERIES: &str = "otelgw_prometheus_series";
    pub const PROMETHEUS_RECEIVER_SCRAPES: &str = "otelgw_prometheus_receiver_scrapes_total";
    pub const PROMETHEUS_RECEIVER_TARGETS: &str = "otelgw_prometheus_receiver_targets";
    pub const PRW_FAILED_SAMPLES: &str = "otelgw_prometheusremotewrite_failed_samples_total";
    pub const PRW_SENT_BATCHES: &str = "otelcol_exporter_prometheusremotewrite_sent_batches";
    pub const PRW_TRANSLATED_TIME_SERIES: &str =
        "otelcol_exporter_prometheusremotewrite_translated_time_series";
    pub const SCRAPER_ERRORED_METRIC_POINTS: &str = "otelcol_scraper_errored_metric_points";
    pub const SCRAPER_SCRAPED_METRIC_POINTS: &str = "otelcol_scraper_scraped_metric_points";
    pub const RESOURCEDETECTION_ATTRIBUTES_DETECTED: &str =
        "otelcol_resourcedetection_attributes_detected";
    pub const RESOURCEDETECTION_DETECTOR_RESULTS: &str =
        "otelcol_resourcedetection_detector_results";
}

/// `service.telemetry.metrics.level`: which self-metrics are exposed (rendered and pushed).
/// Cells exist at every level; the hot path is the same, only what is shown changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing (the admin listener is off too).
    None = 0,
    /// What every operator needs: items in and out of each component, queues, every drop, the
    /// memory limiter's refusals, process start.
    Basic = 1,
    /// Basic plus each component's own operational metrics (the Collector's default): every
    /// metric otelgw has.
    Normal = 2,
    /// As normal: otelgw has no metric (high-cardinality or costly) reserved for this level.
    Detailed = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "none" => Some(Level::None),
            "basic" => Some(Level::Basic),
            "normal" => Some(Level::Normal),
            "detailed" => Some(Level::Detailed),
            _ => None,
        }
    }

    /// The level at which a metric is exposed.
    pub fn of(name: &str) -> Level {
        const BASIC_PREFIXES: &[&str] = &[
            "otelcol_receiver_accepted_",
            "otelcol_receiver_refused_",
            "otelcol_exporter_sent_",
            "otelcol_exporter_send_failed_",
            "otelcol_exporter_enqueue_failed_",
            "otelcol_processor_incoming_",
            "otelcol_processor_outgoing_",
        ];
        const BASIC: &[&str] = &[
            names::EXPORTER_QUEUE_SIZE,
            names::EXPORTER_QUEUE_CAPACITY,
            names::DROPPED_ITEMS,
            names::RECEIVER_REQUESTS,
            names::MEMORY_LIMITER_REFUSED_REQUESTS,
            names::PROCESS_START_TIME,
        ];
        if BASIC.contains(&name) || BASIC_PREFIXES.iter().any(|p| name.starts_with(p)) {
            Level::Basic
        } else {
            Level::Normal
        }
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

enum Cell {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
    Histogram(Arc<HistogramCells>),
}

/// Fixed-bucket histogram cells: one atomic per bucket, plus sum and count.
#[derive(Debug)]
pub struct HistogramCells {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

/// The Collector's bucket boundaries for batch sizes.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0,
    6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0, 100000.0,
];

/// A histogram of non-negative integer observations (sizes, counts).
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCells>);

impl Histogram {
    pub fn observe(&self, v: u64) {
        let h = &self.0;
        let i = h
            .bounds
            .iter()
            .position(|b| (v as f64) <= *b)
            .unwrap_or(h.bounds.len());
        if let Some(b) = h.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        h.sum.fetch_add(v, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
    }
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
    pub fn sum(&self) -> u64 {
        self.0.sum.load(Ordering::Relaxed)
    }
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Labels, Cell>,
}

/// A monotonic counter.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn inc(&self) {
        self.add(1)
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue sizes, states).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed)
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The process-wide self-metrics registry.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
    /// The exposed [`Level`] (as its number); unset (0 from `Default`) means everything, so
    /// a registry made for a test or a bench shows all it has.
    level: std::sync::atomic::AtomicU8,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Sets which metrics [`Registry::render`] and [`Registry::to_otlp`] expose.
    pub fn set_level(&self, level: Level) {
        self.level.store(level as u8 + 1, Ordering::Relaxed);
    }

    /// Whether the family `name` is exposed at the configured level.
    fn shown(&self, name: &str) -> bool {
        match self.level.load(Ordering::Relaxed) {
            0 => true,
            n => (Level::of(name) as u8) < n,
        }
    }

    pub fn counter(
        &self,
        name: &str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        match self.cell(name, help, Kind::Counter, labels) {
            Some(Cell::Counter(c)) => Counter(c),
            // A name registered twice with different kinds is a programming error; hand out a
            // detached cell rather than panic, so the process keeps running.
            _ => Counter::default(),
        }
    }

    pub fn gauge(&self, name: &str, help: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        match self.cell(name, help, Kind::Gauge, labels) {
            Some(Cell::Gauge(g)) => Gauge(g),
            _ => Gauge::default(),
        }
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &'static str,
        bounds: &'static [f64],
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        let fresh = || {
            Histogram(Arc::new(HistogramCells {
                bounds,
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicU64::new(0),
                count: AtomicU64::new(0),
            }))
        };
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help,
            kind: Kind::Histogram,
            series: BTreeMap::new(),
        });
        if family.kind != Kind::Histogram {
            return fresh();
        }
        let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        match family
            .series
            .entry(key)
            .or_insert_with(|| Cell::Histogram(fresh().0))
        {
            Cell::Histogram(h) => Histogram(h.clone()),
            _ => fresh(),
        }
    }

    fn cell(
        &self,
        name: &str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
    ) -> Option<Cell> {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            return None;
        }
        let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let cell = family.series.entry(key).or_insert_with(|| match kind {
            Kind::Gauge => Cell::Gauge(Arc::default()),
            _ => Cell::Counter(Arc::default()),
        });
        match cell {
            Cell::Counter(c) => Some(Cell::Counter(c.clone())),
            Cell::Gauge(g) => Some(Cell::Gauge(g.clone())),
            Cell::Histogram(_) => None,
        }
    }

    /// The sum of a counter's or gauge's series whose labels include `key="value"` (zpages).
    pub fn sum(&self, name: &str, key: &str, value: &str) -> u64 {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let Some(family) = families.get(name) else {
            return 0;
        };
        family
            .series
            .iter()
            .filter(|(labels, _)| labels.iter().any(|(k, v)| *k == key && v == value))
            .map(|(_, c)| match c {
                Cell::Counter(c) => c.load(Ordering::Relaxed),
                Cell::Gauge(g) => g.load(Ordering::Relaxed).max(0) as u64,
                Cell::Histogram(h) => h.count.load(Ordering::Relaxed),
            })
            .sum()
    }

    /// Reads one series' current value (tests and health checks).
    pub fn value(&self, name: &str, labels: &[(&'static str, &str)]) -> Option<i128> {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.get(name)?;
        let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        family.series.get(&key).map(|c| match c {
            Cell::Counter(c) => c.load(Ordering::Relaxed) as i128,
            Cell::Gauge(g) => g.load(Ordering::Relaxed) as i128,
            Cell::Histogram(h) => h.count.load(Ordering::Relaxed) as i128,
        })
    }

    /// Every family as OTLP metrics (what a `periodic` reader pushes): counters as cumulative
    /// monotonic sums, gauges as gauges, histograms as cumulative histograms; labels become
    /// point attributes. `start` and `now` are Unix nanoseconds.
    pub fn to_otlp(
        &self,
        resource: opentelemetry_proto::tonic::resource::v1::Resource,
        start: u64,
        now: u64,
    ) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{
            any_value, AnyValue, InstrumentationScope, KeyValue,
        };
        use opentelemetry_proto::tonic::metrics::v1::{
            metric, number_data_point, AggregationTemporality, Gauge, Histogram,
            HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        };
        let attrs = |labels: &Labels| -> Vec<KeyValue> {
            labels
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(v.clone())),
                    }),
                    ..Default::default()
                })
                .collect()
        };
        let number = |labels: &Labels, v: i64| NumberDataPoint {
            attributes: attrs(labels),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(v)),
            ..Default::default()
        };
        let cumulative = AggregationTemporality::Cumulative as i32;
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut metrics = Vec::with_capacity(families.len());
        for (name, family) in families.iter().filter(|(n, _)| self.shown(n)) {
            let data = match family.kind {
                Kind::Counter => metric::Data::Sum(Sum {
                    data_points: family
                        .series
                        .iter()
                        .filter_map(|(l, c)| match c {
                            Cell::Counter(c) => Some(number(l, c.load(Ordering::Relaxed) as i64)),
                            _ => None,
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Kind::Gauge => metric::Data::Gauge(Gauge {
                    data_points: family
                        .series
                        .iter()
                        .filter_map(|(l, c)| match c {
                            Cell::Gauge(g) => Some(number(l, g.load(Ordering::Relaxed))),
                            _ => None,
                        })
                        .collect(),
                }),
                Kind::Histogram => metric::Data::Histogram(Histogram {
                    data_points: family
                        .series
                        .iter()
                        .filter_map(|(l, c)| match c {
                            Cell::Histogram(h) => Some(HistogramDataPoint {
                                attributes: attrs(l),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: h.count.load(Ordering::Relaxed),
                                sum: Some(h.sum.load(Ordering::Relaxed) as f64),
                                bucket_counts: h
                                    .buckets
                                    .iter()
                                    .map(|b| b.load(Ordering::Relaxed))
                                    .collect(),
                                explicit_bounds: h.bounds.to_vec(),
                                ..Default::default()
                            }),
                            _ => None,
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            metrics.push(Metric {
                name: name.clone(),
                description: family.help.to_string(),
                data: Some(data),
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "otelgw".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// Renders every family as Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(families.len() * 256);
        for (name, family) in families.iter().filter(|(n, _)| self.shown(n)) {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, cell) in &family.series {
                match cell {
                    Cell::Counter(c) => {
                        write_series(&mut out, name, labels, None);
                        let _ = writeln!(out, " {}", c.load(Ordering::Relaxed));
                    }
                    Cell::Gauge(g) => {
                        write_series(&mut out, name, labels, None);
                        let _ = writeln!(out, " {}", g.load(Ordering::Relaxed));
                    }
                    Cell::Histogram(h) => {
                        let bucket = format!("{name}_bucket");
                        let mut cumulative = 0u64;
                        for (i, b) in h.buckets.iter().enumerate() {
                            cumulative += b.load(Ordering::Relaxed);
                            let le = h
                                .bounds
                                .get(i)
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "+Inf".into());
                            write_series(&mut out, &bucket, labels, Some(&le));
                            let _ = writeln!(out, " {cumulative}");
                        }
                        write_series(&mut out, &format!("{name}_sum"), labels, None);
                        let _ = writeln!(out, " {}", h.sum.load(Ordering::Relaxed));
                        write_series(&mut out, &format!("{name}_count"), labels, None);
                        let _ = writeln!(out, " {}", h.count.load(Ordering::Relaxed));
                    }
                }
            }
        }
        out
    }
}

fn write_series(out: &mut String, name: &str, labels: &Labels, le: Option<&str>) {
    out.push_str(name);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "le=\"{le}\"");
    }
    out.push('}');
}

/// Escapes a label value for the Prometheus text formats (`\\`, `\"`, `\n`).
pub fn escape_label_value(out: &mut String, v: &str) {
    // runs without a byte to escape are copied whole; the three are ASCII, so every cut is a
    // char boundary
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        let esc = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(v.get(start..i).unwrap_or_default());
        out.push_str(esc);
        start = i + 1;
    }
    out.push_str(v.get(start..).unwrap_or_default());
}

/// The per-signal counters one receiver transport owns.
/// `otelgw_dropped_items_total{component, reason, signal}`: the one counter of items otelgw
/// dropped, by who and why.
pub fn dropped_items(reg: &Registry, component: &str, reason: &str, signal: Signal) -> Counter {
    reg.counter(
        names::DROPPED_ITEMS,
        "Items dropped by otelgw, by component and reason.",
        &[
            ("component", component),
            ("reason", reason),
            ("signal", signal.as_str()),
        ],
    )
}

/// What an exporter (or a connector, on its exporter side) delivered and failed to, under the
/// Collector's names.
pub struct ExporterCounters {
    pub sent: Counter,
    pub send_failed: Counter,
}

impl ExporterCounters {
    pub fn new(reg: &Registry, exporter: &str, signal: Signal) -> ExporterCounters {
        let l = [("exporter", exporter)];
        ExporterCounters {
            sent: reg.counter(
                &names::exporter_sent(signal),
                "Items successfully sent to the destination.",
                &l,
            ),
            send_failed: reg.counter(
                &names::exporter_send_failed(signal),
                "Items that failed to be sent (permanent error, retries exhausted, or rejected by the peer).",
                &l,
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ReceiverCounters {
    pub accepted: Counter,
    pub refused: Counter,
}

impl ReceiverCounters {
    pub fn new(
        reg: &Registry,
        receiver: &str,
        transport: &str,
        signal: Signal,
    ) -> ReceiverCounters {
        let labels = [("receiver", receiver), ("transport", transport)];
        ReceiverCounters {
            accepted: reg.counter(
                &names::receiver_accepted(signal),
                "Items successfully pushed into the pipeline.",
                &labels,
            ),
            refused: reg.counter(
                &names::receiver_refused(signal),
                "Items that could not be pushed into the pipeline (bad data, overload, failure).",
                &labels,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_selects_what_is_exposed() {
        let reg = Registry::new();
        reg.counter(&names::receiver_accepted(Signal::Traces), "h", &[])
            .inc();
        reg.counter(names::PROMETHEUS_SCRAPES, "h", &[]).inc();
        reg.gauge(names::LISTENER_CONNECTIONS, "h", &[]).set(1);
        let shown = |reg: &Registry| {
            let text = reg.render();
            [
                "otelcol_receiver_accepted_spans",
                names::PROMETHEUS_SCRAPES,
                names::LISTENER_CONNECTIONS,
            ]
            .map(|n| text.contains(&format!("# TYPE {n} ")))
        };
        assert_eq!(shown(&reg), [true, true, true], "unset: everything");
        for (level, want) in [
            (Level::Basic, [true, false, false]),
            (Level::Normal, [true, true, true]),
            (Level::Detailed, [true, true, true]),
            (Level::None, [false, false, false]),
        ] {
            reg.set_level(level);
            assert_eq!(shown(&reg), want, "{level:?}");
            let pushed = reg.to_otlp(Default::default(), 0, 1);
            let n = pushed.resource_metrics[0].scope_metrics[0].metrics.len();
            assert_eq!(n, want.iter().filter(|w| **w).count(), "{level:?}");
        }
        assert_eq!(Level::parse("verbose"), None);
    }

    #[test]
    fn same_name_and_labels_share_a_cell_and_render_escaped() {
        let reg = Registry::new();
        let a = reg.counter("otelcol_x", "help", &[("receiver", "otlp/a\"b")]);
        let b = reg.counter("otelcol_x", "help", &[("receiver", "otlp/a\"b")]);
        a.add(2);
        b.inc();
        let g = reg.gauge("otelcol_q", "queue", &[]);
        g.set(-4);
        let text = reg.render();
        assert!(text.contains("# TYPE otelcol_x counter\n"), "{text}");
        assert!(
            text.contains("otelcol_x{receiver=\"otlp/a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("otelcol_q -4\n"), "{text}");
        assert_eq!(
            reg.value("otelcol_x", &[("receiver", "otlp/a\"b")]),
            Some(3)
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets() {
        let reg = Registry::new();
        let h = reg.histogram(
            "otelcol_batch_size",
            "sizes",
            &[10.0, 100.0],
            &[("processor", "batch")],
        );
        h.observe(5);
        h.observe(50);
        h.observe(500);
        let text = reg.render();
        assert!(
            text.contains("otelcol_batch_size_bucket{processor=\"batch\",le=\"10\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("otelcol_batch_size_bucket{processor=\"batch\",le=\"100\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("otelcol_batch_size_bucket{processor=\"batch\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("otelcol_batch_size_sum{processor=\"batch\"} 555\n"),
            "{text}"
        );
        assert!(
            text.contains("otelcol_batch_size_count{processor=\"batch\"} 3\n"),
            "{text}"
        );
    }

    #[test]
    fn kind_clash_does_not_panic() {
        let reg = Registry::new();
        reg.counter("m", "h", &[]).inc();
        let g = reg.gauge("m", "h", &[]);
        g.set(5);
        assert_eq!(reg.value("m", &[]), Some(1));
    }
}
