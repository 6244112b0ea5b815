//! `spanmetrics`: R.E.D. metrics from spans (traces in, metrics out), the aggregation core of the
//! Collector's spanmetrics connector — same config keys and defaults, same metric names, shapes
//! and attributes, so dashboards built for the Collector (`traces_span_metrics_calls_total`,
//! `traces_span_metrics_duration_milliseconds_bucket`) work unchanged.
//!
//! Contract:
//! - [`Aggregator::add`] folds every span of a traces request into per-series state; a span
//!   counts once (or its adjusted count: a W3C `tracestate` `ot=th:` sampling threshold
//!   extrapolates it, stochastically rounded, as the Collector does). Spans of a resource without
//!   `service.name` are skipped (Collector).
//! - Series: `{namespace}.calls` (monotonic int Sum), `{namespace}.duration` (explicit bucket
//!   Histogram, or ExponentialHistogram with `histogram.exponential`; unit `ms` or `s`; value =
//!   end − start, 0 when end ≤ start) unless `histogram.disable`, `{namespace}.events` (per span
//!   event, when `events.enabled`). Attributes: `service.name`, `span.name`, `span.kind`
//!   (`SPAN_KIND_SERVER`…), `status.code` (`STATUS_CODE_UNSET|OK|ERROR`), then
//!   `span.instrumentation.scope.name|version` (scopes listed in `include_instrumentation_scope`),
//!   `sampling.method` (`enable_metrics_sampling_method`), then each `dimensions` entry (span
//!   attribute, else resource attribute, else its `default`, else absent; for events the event's
//!   attributes come between span and resource), then `calls_dimensions` /
//!   `histogram.dimensions` / `events.dimensions` for their metric; `exclude_dimensions` are left
//!   out. Attribute values keep their type.
//! - One `ResourceMetrics` per distinct resource — identified by all its attributes, or by
//!   `service.name` plus `resource_metrics_key_attributes` when those are given — carrying the
//!   attributes of the first resource seen (the Collector's default; `add_resource_attributes`
//!   asks for exactly that), scope `spanmetricsconnector`.
//! - [`Aggregator::flush`]: cumulative temporality sends every live series with its running
//!   totals and a fixed start time (when its first span was added); delta sends what was added
//!   since the previous flush (start = that flush) and then forgets everything. Exemplars
//!   (`trace_id`, `span_id`, the span's duration; the first `max_per_data_point` spans of each
//!   point in the interval) are cleared by every flush.
//! - Bounded memory: past `aggregation_cardinality_limit` series per metric and resource, new
//!   combinations go to one series attributed `otel.metric.overflow = true`; resources not seen
//!   for `metrics_expiration` and series not updated for `series_expiration` are dropped at a
//!   flush, and past `resource_metrics_cache_size` resources (1000) the least recently seen are
//!   dropped after a flush. Per span: one hash of the attribute values; an existing series is
//!   found by that hash and compared in place, no allocation; buckets by binary search.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use foldhash::fast::{FoldHasher, RandomState};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric::Data, number_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::{Deserialize, Deserializer, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;

/// The Collector's default `namespace`.
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";
pub const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";
pub const DELTA: &str = "AGGREGATION_TEMPORALITY_DELTA";
/// The instrumentation scope of the generated metrics (Collector).
pub const SCOPE_NAME: &str = "spanmetricsconnector";
/// The Collector's default explicit buckets, in milliseconds.
const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];
const DEFAULT_EXPONENTIAL_MAX_SIZE: u32 = 160;
const DEFAULT_RESOURCE_CACHE_SIZE: usize = 1000;

const SERVICE_NAME: &str = "service.name";
const SPAN_NAME: &str = "span.name";
const SPAN_KIND: &str = "span.kind";
const STATUS_CODE: &str = "status.code";
const BUILTIN: [&str; 4] = [SERVICE_NAME, SPAN_NAME, SPAN_KIND, STATUS_CODE];
const SCOPE_NAME_KEY: &str = "span.instrumentation.scope.name";
const SCOPE_VERSION_KEY: &str = "span.instrumentation.scope.version";
const SAMPLING_METHOD: &str = "sampling.method";
const OVERFLOW: &str = "otel.metric.overflow";

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// A dimension: an attribute looked up on the span (then the resource), or `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dimension {
    pub name: String,
    /// Used when neither the span nor its resource has the attribute (else it is left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `histogram.unit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistogramUnit {
    #[default]
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl HistogramUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            HistogramUnit::Milliseconds => "ms",
            HistogramUnit::Seconds => "s",
        }
    }
    fn nanos(self) -> f64 {
        match self {
            HistogramUnit::Milliseconds => 1e6,
            HistogramUnit::Seconds => 1e9,
        }
    }
}

/// `histogram.explicit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitHistogramConfig {
    /// Bucket upper bounds as durations; absent = the Collector's
    /// `[2ms, 4ms, 6ms, 8ms, 10ms, 50ms, 100ms, 200ms, 400ms, 800ms, 1s, 1400ms, 2s, 5s, 10s, 15s]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<Duration>>,
}

/// `histogram.exponential`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialHistogramConfig {
    /// The most buckets a point keeps (the scale drops to fit); 0 = 160.
    pub max_size: u32,
}

impl Default for ExponentialHistogramConfig {
    fn default() -> Self {
        ExponentialHistogramConfig {
            max_size: DEFAULT_EXPONENTIAL_MAX_SIZE,
        }
    }
}

/// `histogram`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// No `duration` metric at all.
    pub disable: bool,
    /// `ms` (default) or `s`.
    pub unit: HistogramUnit,
    /// Explicit buckets (the default kind). `explicit:` with no value means the defaults.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub explicit: Option<ExplicitHistogramConfig>,
    /// A base-2 exponential histogram instead. `exponential:` with no value means the defaults.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub exponential: Option<ExponentialHistogramConfig>,
    /// Dimensions for the `duration` metric only, after `dimensions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
}

/// `exemplars`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Attach the trace and span ids of spans to the points they counted.
    pub enabled: bool,
    /// At most this many per point and flush interval (Collector default 5).
    pub max_per_data_point: usize,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            enabled: false,
            max_per_data_point: 5,
        }
    }
}

/// `events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Emit `{namespace}.events`: span events counted per event dimensions.
    pub enabled: bool,
    /// Event attributes (required when enabled), after `dimensions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
}

/// `connectors.spanmetrics` — the Collector's keys and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMetricsConfig {
    pub histogram: HistogramConfig,
    /// Dimensions on top of `service.name`, `span.name`, `span.kind`, `status.code`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
    /// Dimensions for the `calls` metric only, after `dimensions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls_dimensions: Vec<Dimension>,
    /// Dimensions left out (e.g. `status.code`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_dimensions: Vec<String>,
    /// Deprecated in the Collector (use `aggregation_cardinality_limit`): accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions_cache_size: Option<usize>,
    /// Series per metric and resource; past it, one `otel.metric.overflow = true` series takes
    /// the rest. 0 = no limit.
    pub aggregation_cardinality_limit: usize,
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE` (default) or `AGGREGATION_TEMPORALITY_DELTA`.
    pub aggregation_temporality: String,
    /// How often the metrics are sent (Collector default 60s).
    pub metrics_flush_interval: Duration,
    /// A resource with no span for this long is dropped (0 = never).
    pub metrics_expiration: Duration,
    /// A series not updated for this long is dropped (0 = never).
    pub series_expiration: Duration,
    /// Delta only, in the Collector a cache of start times; otelgw needs none (accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_timestamp_cache_size: Option<usize>,
    pub exemplars: ExemplarsConfig,
    /// Metric name prefix (`{namespace}.calls`); empty = bare names.
    pub namespace: String,
    /// Identify a resource by `service.name` and these attributes only (default: all of them),
    /// so attributes that change across restarts do not split the series.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_metrics_key_attributes: Vec<String>,
    /// The most resources kept (default 1000); the least recently seen go after a flush.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_metrics_cache_size: Option<usize>,
    pub events: EventsConfig,
    /// Copy the resource attributes onto the metrics' resource. The Collector does so unless its
    /// `connector.spanmetrics.excludeResourceMetrics` gate is on; otelgw always does.
    pub add_resource_attributes: bool,
    /// Instrumentation scopes whose name (and version) become span metric attributes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_instrumentation_scope: Vec<String>,
    /// Add `sampling.method` = `extrapolated` (adjusted by the span's sampling threshold) or
    /// `counted`.
    pub enable_metrics_sampling_method: bool,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        SpanMetricsConfig {
            histogram: HistogramConfig::default(),
            dimensions: Vec::new(),
            calls_dimensions: Vec::new(),
            exclude_dimensions: Vec::new(),
            dimensions_cache_size: None,
            aggregation_cardinality_limit: 0,
            aggregation_temporality: CUMULATIVE.to_string(),
            metrics_flush_interval: Duration::from_secs(60),
            metrics_expiration: Duration::default(),
            series_expiration: Duration::default(),
            metric_timestamp_cache_size: None,
            exemplars: ExemplarsConfig::default(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            resource_metrics_key_attributes: Vec::new(),
            resource_metrics_cache_size: None,
            events: EventsConfig::default(),
            add_resource_attributes: false,
            include_instrumentation_scope: Vec::new(),
            enable_metrics_sampling_method: false,
        }
    }
}

/// `key:` present with no value means the section's defaults (`explicit:` in a Collector config).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

impl SpanMetricsConfig {
    /// True for delta temporality.
    pub fn is_delta(&self) -> bool {
        self.aggregation_temporality == DELTA
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.aggregation_temporality != CUMULATIVE && self.aggregation_temporality != DELTA {
            diag.error(
                format!("{path}.aggregation_temporality"),
                format!(
                    "must be {CUMULATIVE} or {DELTA}, not {:?}",
                    self.aggregation_temporality
                ),
            );
        }
        let h = &self.histogram;
        if h.explicit.is_some() && h.exponential.is_some() {
            diag.error(
                format!("{path}.histogram"),
                "use either `explicit` or `exponential` buckets histogram, not both",
            );
        }
        if let Some(buckets) = h.explicit.as_ref().and_then(|e| e.buckets.as_ref()) {
            if buckets.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                diag.error(
                    format!("{path}.histogram.explicit.buckets"),
                    "the bucket bounds must be strictly increasing",
                );
            }
        }
        if h.exponential.as_ref().is_some_and(|e| e.max_size == 1) {
            diag.error(
                format!("{path}.histogram.exponential.max_size"),
                "must be at least 2 (0 means the default, 160)",
            );
        }
        let base: Vec<&str> = self.dimensions.iter().map(|d| d.name.as_str()).collect();
        check_dimensions(&format!("{path}.dimensions"), &self.dimensions, &[], diag);
        check_dimensions(
            &format!("{path}.calls_dimensions"),
            &self.calls_dimensions,
            &base,
            diag,
        );
        check_dimensions(
            &format!("{path}.histogram.dimensions"),
            &h.dimensions,
            &base,
            diag,
        );
        check_dimensions(
            &format!("{path}.events.dimensions"),
            &self.events.dimensions,
            &base,
            diag,
        );
        if self.events.enabled && self.events.dimensions.is_empty() {
            diag.error(
                format!("{path}.events.dimensions"),
                "no dimensions configured for events",
            );
        }
        if self.metrics_flush_interval.is_zero() {
            diag.error(format!("{path}.metrics_flush_interval"), "must be positive");
        }
        if self.resource_metrics_cache_size == Some(0) {
            diag.error(
                format!("{path}.resource_metrics_cache_size"),
                "must be positive",
            );
        }
        if self.is_delta() && self.metric_timestamp_cache_size == Some(0) {
            diag.error(
                format!("{path}.metric_timestamp_cache_size"),
                "must be positive",
            );
        }
        if self.dimensions_cache_size.is_some() {
            diag.warn(
                format!("{path}.dimensions_cache_size"),
                "deprecated in the Collector, use aggregation_cardinality_limit; no effect in otelgw",
            );
        }
        diag.warn_inert(
            path,
            &[(
                "metric_timestamp_cache_size",
                self.metric_timestamp_cache_size.is_some(),
            )],
        );
    }
}

/// Names required, unique, and none of the default dimensions or `taken`.
fn check_dimensions(at: &str, dims: &[Dimension], taken: &[&str], diag: &mut Diagnostics) {
    for (i, d) in dims.iter().enumerate() {
        let here = format!("{at}[{i}].name");
        if d.name.is_empty() {
            diag.error(here, "a dimension name is required");
        } else if BUILTIN.contains(&d.name.as_str()) {
            diag.error(
                here,
                format!(
                    "duplicate dimension name {:?}: it is a default dimension",
                    d.name
                ),
            );
        } else if taken.contains(&d.name.as_str()) || dims.iter().take(i).any(|e| e.name == d.name)
        {
            diag.error(here, format!("duplicate dimension name {:?}", d.name));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute values as key parts
// ---------------------------------------------------------------------------------------------

/// A borrowed attribute value, strings normalised so a default and an attribute with the same
/// text are the same series.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Other(&'a any_value::Value),
}

fn val(v: Option<&AnyValue>) -> Val<'_> {
    match v.and_then(|a| a.value.as_ref()) {
        None => Val::Empty,
        Some(any_value::Value::StringValue(s)) => Val::Str(s),
        Some(any_value::Value::BoolValue(b)) => Val::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Val::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Val::Double(*d),
        Some(other) => Val::Other(other),
    }
}

fn to_any(v: Val<'_>) -> AnyValue {
    let value = match v {
        Val::Empty => None,
        Val::Str(s) => Some(any_value::Value::StringValue(s.to_string())),
        Val::Bool(b) => Some(any_value::Value::BoolValue(b)),
        Val::Int(i) => Some(any_value::Value::IntValue(i)),
        Val::Double(d) => Some(any_value::Value::DoubleValue(d)),
        Val::Other(o) => Some(o.clone()),
    };
    AnyValue { value }
}

fn hash_val(h: &mut FoldHasher<'static>, v: Val<'_>) {
    match v {
        Val::Empty => h.write_u8(0),
        Val::Str(s) => {
            h.write_u8(1);
            h.write(s.as_bytes());
            h.write_u8(0xff);
        }
        Val::Bool(b) => {
            h.write_u8(2);
            h.write_u8(u8::from(b));
        }
        Val::Int(i) => {
            h.write_u8(3);
            h.write_i64(i);
        }
        Val::Double(d) => {
            h.write_u8(4);
            h.write_u64(d.to_bits());
        }
        Val::Other(any_value::Value::ArrayValue(a)) => {
            h.write_u8(5);
            h.write_usize(a.values.len());
            for x in &a.values {
                hash_val(h, val(Some(x)));
            }
        }
        Val::Other(any_value::Value::KvlistValue(l)) => {
            h.write_u8(6);
            h.write_usize(l.values.len());
            for kv in &l.values {
                h.write(kv.key.as_bytes());
                h.write_u8(0xff);
                hash_val(h, val(kv.value.as_ref()));
            }
        }
        Val::Other(any_value::Value::BytesValue(b)) => {
            h.write_u8(7);
            h.write_usize(b.len());
            h.write(b);
        }
        Val::Other(any_value::Value::StringValueStrindex(i)) => {
            h.write_u8(8);
            h.write_i32(*i);
        }
        Val::Other(o) => hash_val(h, val_of(o)),
    }
}

/// A scalar held as `Other` (not produced by [`val`]) hashed as what it is.
fn val_of(v: &any_value::Value) -> Val<'_> {
    match v {
        any_value::Value::StringValue(s) => Val::Str(s),
        any_value::Value::BoolValue(b) => Val::Bool(*b),
        any_value::Value::IntValue(i) => Val::Int(*i),
        any_value::Value::DoubleValue(d) => Val::Double(*d),
        _ => Val::Empty,
    }
}

/// `v` equals the stored value (doubles by bits, so NaN finds its series).
fn val_eq(v: Val<'_>, stored: Option<&AnyValue>) -> bool {
    let s = stored.and_then(|a| a.value.as_ref());
    match (v, s) {
        (Val::Empty, None) => true,
        (Val::Str(a), Some(any_value::Value::StringValue(b))) => a == b,
        (Val::Bool(a), Some(any_value::Value::BoolValue(b))) => a == *b,
        (Val::Int(a), Some(any_value::Value::IntValue(b))) => a == *b,
        (Val::Double(a), Some(any_value::Value::DoubleValue(b))) => a.to_bits() == b.to_bits(),
        (Val::Other(a), Some(b)) => any_eq(a, b),
        _ => false,
    }
}

fn any_eq(a: &any_value::Value, b: &any_value::Value) -> bool {
    use any_value::Value as V;
    match (a, b) {
        (V::ArrayValue(x), V::ArrayValue(y)) => {
            x.values.len() == y.values.len()
                && x.values
                    .iter()
                    .zip(&y.values)
                    .all(|(p, q)| val_eq(val(Some(p)), Some(q)))
        }
        (V::KvlistValue(x), V::KvlistValue(y)) => {
            x.values.len() == y.values.len()
                && x.values
                    .iter()
                    .zip(&y.values)
                    .all(|(p, q)| p.key == q.key && val_eq(val(p.value.as_ref()), q.value.as_ref()))
        }
        (V::DoubleValue(x), V::DoubleValue(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// One attribute of a series key: its name and value.
type Part<'a> = (&'a str, Val<'a>);

/// The stored attributes are exactly `parts`, in order.
fn same(stored: &[KeyValue], parts: &[Part<'_>]) -> bool {
    stored.len() == parts.len()
        && stored
            .iter()
            .zip(parts)
            .all(|(kv, (k, v))| kv.key == *k && val_eq(*v, kv.value.as_ref()))
}

fn to_attrs(parts: &[Part<'_>]) -> Vec<KeyValue> {
    parts
        .iter()
        .map(|(k, v)| KeyValue {
            key: (*k).to_string(),
            value: Some(to_any(*v)),
            ..Default::default()
        })
        .collect()
}

/// Adds a key part: its position in the key layout (so absent dimensions count) and value go
/// into the hash.
fn push<'a>(
    parts: &mut Vec<Part<'a>>,
    h: &mut FoldHasher<'static>,
    pos: usize,
    name: &'a str,
    v: Val<'a>,
) {
    h.write_usize(pos);
    hash_val(h, v);
    parts.push((name, v));
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn kind_str(kind: i32) -> &'static str {
    match kind {
        0 => "SPAN_KIND_UNSPECIFIED",
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "",
    }
}

fn status_str(span: &Span) -> &'static str {
    match span.status.as_ref().map_or(0, |s| s.code) {
        0 => "STATUS_CODE_UNSET",
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Series state
// ---------------------------------------------------------------------------------------------

/// A span kept as an exemplar.
#[derive(Debug, Clone, Copy)]
struct Ex {
    trace: [u8; 16],
    span: [u8; 8],
    value: f64,
}

struct Series<V> {
    hash: u64,
    attrs: Vec<KeyValue>,
    value: V,
    exemplars: Vec<Ex>,
    start_ns: u64,
    last_seen_ns: u64,
}

impl<V> Series<V> {
    fn touch(&mut self, now_ns: u64, ex: Option<Ex>, max_exemplars: usize) {
        self.last_seen_ns = now_ns;
        if let Some(ex) = ex {
            if self.exemplars.len() < max_exemplars {
                self.exemplars.push(ex);
            }
        }
    }
}

/// Maps an already-computed hash to itself.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ById<T> = HashMap<u64, T, BuildHasherDefault<IdHasher>>;

/// The indexes of the entries with one hash (almost always one).
enum Slot {
    One(usize),
    Many(Vec<usize>),
}

fn link(index: &mut ById<Slot>, hash: u64, i: usize) {
    match index.entry(hash) {
        Entry::Vacant(e) => {
            e.insert(Slot::One(i));
        }
        Entry::Occupied(mut e) => {
            let slot = e.get_mut();
            match slot {
                Slot::One(j) => *slot = Slot::Many(vec![*j, i]),
                Slot::Many(v) => v.push(i),
            }
        }
    }
}

fn lookup(index: &ById<Slot>, hash: u64, mut hit: impl FnMut(usize) -> bool) -> Option<usize> {
    match index.get(&hash)? {
        Slot::One(i) => hit(*i).then_some(*i),
        Slot::Many(v) => v.iter().copied().find(|i| hit(*i)),
    }
}

/// The series of one metric of one resource.
struct Table<V> {
    index: ById<Slot>,
    series: Vec<Series<V>>,
    overflow: Option<Box<Series<V>>>,
}

impl<V> Table<V> {
    fn new() -> Table<V> {
        Table {
            index: ById::default(),
            series: Vec::new(),
            overflow: None,
        }
    }

    fn len(&self) -> usize {
        self.series.len() + usize::from(self.overflow.is_some())
    }

    /// The series of `parts` — found, created, or past `limit` the overflow series (`true`).
    fn upsert(
        &mut self,
        hash: u64,
        parts: &[Part<'_>],
        limit: usize,
        now_ns: u64,
        init: impl FnOnce() -> V,
    ) -> Option<(&mut Series<V>, bool)> {
        let series = &self.series;
        let found = lookup(&self.index, hash, |i| {
            series.get(i).is_some_and(|s| same(&s.attrs, parts))
        });
        if let Some(i) = found {
            return self.series.get_mut(i).map(|s| (s, false));
        }
        let new = |hash, attrs| Series {
            hash,
            attrs,
            value: init(),
            exemplars: Vec::new(),
            start_ns: now_ns,
            last_seen_ns: now_ns,
        };
        if limit > 0 && self.series.len() >= limit {
            let overflow = self.overflow.get_or_insert_with(|| {
                Box::new(new(
                    0,
                    vec![KeyValue {
                        key: OVERFLOW.to_string(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::BoolValue(true)),
                        }),
                        ..Default::default()
                    }],
                ))
            });
            return Some((overflow, true));
        }
        let i = self.series.len();
        self.series.push(new(hash, to_attrs(parts)));
        link(&mut self.index, hash, i);
        self.series.get_mut(i).map(|s| (s, false))
    }

    /// Drops the series not updated since `cutoff_ns`.
    fn expire(&mut self, cutoff_ns: u64) {
        let before = self.series.len();
        self.series.retain(|s| s.last_seen_ns > cutoff_ns);
        if self
            .overflow
            .as_ref()
            .is_some_and(|s| s.last_seen_ns <= cutoff_ns)
        {
            self.overflow = None;
        }
        if self.series.len() != before {
            self.index.clear();
            for (i, s) in self.series.iter().enumerate() {
                link(&mut self.index, s.hash, i);
            }
        }
    }

    fn clear_exemplars(&mut self) {
        for s in self.series.iter_mut().chain(self.overflow.as_deref_mut()) {
            s.exemplars.clear();
        }
    }

    fn all(&self) -> impl Iterator<Item = &Series<V>> {
        self.series.iter().chain(self.overflow.as_deref())
    }
}

/// A duration histogram point.
enum Hist {
    Explicit {
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
    Exponential(Box<Expo>),
}

impl Hist {
    fn new(kind: &HistKind) -> Hist {
        match kind {
            HistKind::Explicit(bounds) => Hist::Explicit {
                counts: vec![0; bounds.len() + 1],
                count: 0,
                sum: 0.0,
            },
            HistKind::Exponential(_) => Hist::Exponential(Box::default()),
        }
    }

    fn record(&mut self, kind: &HistKind, v: f64, n: u64) {
        match (self, kind) {
            (Hist::Explicit { counts, count, sum }, HistKind::Explicit(bounds)) => {
                *count += n;
                *sum += v * n as f64;
                // upper-inclusive buckets: the first bound >= v
                let i = bounds.partition_point(|b| *b < v);
                if let Some(c) = counts.get_mut(i) {
                    *c += n;
                }
            }
            (Hist::Exponential(e), HistKind::Exponential(max_size)) => e.record(v, n, *max_size),
            _ => {}
        }
    }
}

const MAX_SCALE: i32 = 20;
const MIN_SCALE: i32 = -10;

/// A base-2 exponential histogram of non-negative values that starts at scale 20 and lowers the
/// scale just enough to keep its buckets within `max_size`.
struct Expo {
    scale: i32,
    offset: i32,
    counts: Vec<u64>,
    zero: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Expo {
    fn default() -> Self {
        Expo {
            scale: MAX_SCALE,
            offset: 0,
            counts: Vec::new(),
            zero: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// The bucket index of `v` > 0 at `scale`: bucket `i` holds `(2^(i·2^-scale), 2^((i+1)·2^-scale)]`.
fn expo_index(v: f64, scale: i32) -> i32 {
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let exact = bits & ((1u64 << 52) - 1) == 0;
    if scale <= 0 {
        let e = if exact { exponent - 1 } else { exponent };
        return e >> -scale;
    }
    if exact {
        return (exponent << scale) - 1;
    }
    let factor = std::f64::consts::LOG2_E * f64::from(1u32 << scale);
    (v.ln() * factor).floor() as i32
}

impl Expo {
    fn record(&mut self, v: f64, n: u64, max_size: usize) {
        self.count += n;
        self.sum += v * n as f64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if v.is_nan() || v <= 0.0 {
            self.zero += n;
            return;
        }
        let mut i = expo_index(v, self.scale);
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(n);
            return;
        }
        let top = self.offset + self.counts.len() as i32 - 1;
        let (lo, hi) = (self.offset.min(i), top.max(i));
        let mut change = 0;
        while self.scale - change > MIN_SCALE
            && i64::from((hi >> change) - (lo >> change)) + 1 > max_size as i64
        {
            change += 1;
        }
        if change > 0 {
            self.downscale(change);
            i >>= change;
        }
        if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        }
        let at = (i - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        if let Some(c) = self.counts.get_mut(at) {
            *c += n;
        }
    }

    fn downscale(&mut self, change: i32) {
        let offset = self.offset >> change;
        let mut merged: Vec<u64> = Vec::with_capacity(self.counts.len());
        for (k, c) in self.counts.iter().enumerate() {
            let j = (((self.offset + k as i32) >> change) - offset) as usize;
            if j >= merged.len() {
                merged.resize(j + 1, 0);
            }
            if let Some(m) = merged.get_mut(j) {
                *m += c;
            }
        }
        self.counts = merged;
        self.offset = offset;
        self.scale -= change;
    }
}

// ---------------------------------------------------------------------------------------------
// The aggregator
// ---------------------------------------------------------------------------------------------

enum HistKind {
    /// Upper bounds in the unit.
    Explicit(Vec<f64>),
    /// Max buckets.
    Exponential(usize),
}

struct Dim {
    name: String,
    default: Option<String>,
}

/// Position of the first dimension in the key layout (0..3 the default dimensions, 4/5 the
/// scope, 6 the sampling method).
const DIMS_AT: usize = 16;

/// The config, compiled.
struct Plan {
    /// Which of service.name, span.name, span.kind, status.code are kept.
    builtin: [bool; 4],
    dims: Vec<Dim>,
    calls_dims: Vec<Dim>,
    duration_dims: Vec<Dim>,
    event_dims: Vec<Dim>,
    scopes: Vec<String>,
    sampling_method: bool,
    histogram: Option<HistKind>,
    unit: HistogramUnit,
    delta: bool,
    limit: usize,
    /// 0 when exemplars are off.
    max_exemplars: usize,
    events: bool,
    key_attributes: Vec<String>,
    metrics_expiration_ns: u64,
    series_expiration_ns: u64,
    resource_cap: usize,
    names: [String; 3],
    hasher: RandomState,
}

struct ResourceEntry {
    hash: u64,
    /// The identifying attributes, sorted by key.
    identity: Vec<KeyValue>,
    attributes: Vec<KeyValue>,
    calls: Table<u64>,
    duration: Table<Hist>,
    events: Table<u64>,
    last_seen_ns: u64,
}

impl ResourceEntry {
    fn len(&self) -> usize {
        self.calls.len() + self.duration.len() + self.events.len()
    }
}

#[derive(Default)]
struct State {
    resources: Vec<ResourceEntry>,
    index: ById<Slot>,
    last_flush_ns: Option<u64>,
    rng: u64,
}

impl State {
    fn reindex(&mut self) {
        self.index.clear();
        for (i, r) in self.resources.iter().enumerate() {
            link(&mut self.index, r.hash, i);
        }
    }
}

/// The aggregation state of one `spanmetrics` connector: thread-safe, fed by every traces
/// request that reaches the connector, flushed on a timer by the caller.
pub struct Aggregator {
    plan: Plan,
    state: Mutex<State>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.get().as_nanos()).unwrap_or(u64::MAX)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn dims(list: &[Dimension], exclude: &[String]) -> Vec<Dim> {
    list.iter()
        .filter(|d| !exclude.contains(&d.name))
        .map(|d| Dim {
            name: d.name.clone(),
            default: d.default.clone(),
        })
        .collect()
}

/// The value of a dimension: the span's attribute, the event's, the resource's (precomputed),
/// else the default.
fn resolve<'a>(
    d: &'a Dim,
    span: &'a [KeyValue],
    event: &'a [KeyValue],
    resource: Option<Val<'a>>,
) -> Option<Val<'a>> {
    find(span, &d.name)
        .or_else(|| find(event, &d.name))
        .map(|kv| val(kv.value.as_ref()))
        .or(resource)
        .or_else(|| d.default.as_deref().map(Val::Str))
}

fn resource_values<'a>(out: &mut Vec<Option<Val<'a>>>, dims: &[Dim], attrs: &'a [KeyValue]) {
    out.clear();
    out.extend(
        dims.iter()
            .map(|d| find(attrs, &d.name).map(|kv| val(kv.value.as_ref()))),
    );
}

/// The adjusted count of a span from its `tracestate` `ot=th:` sampling threshold (stochastically
/// rounded) and whether it was adjusted.
fn adjusted_count(trace_state: &str, rng: &mut u64) -> (u64, bool) {
    if trace_state.is_empty() {
        return (1, false);
    }
    let Some(weight) = sampling_weight(trace_state) else {
        return (1, false);
    };
    let floor = weight.floor();
    let mut n = floor as u64;
    let frac = weight - floor;
    if frac > 0.0 {
        // xorshift64*
        let mut x = *rng;
        x ^= x << 12;
        x ^= x >> 25;
        x ^= x << 27;
        *rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if (r as f64) < frac * (u64::MAX as f64) {
            n += 1;
        }
    }
    (n.max(1), true)
}

/// 1 / sampling probability for a W3C tracestate carrying an OpenTelemetry threshold.
fn sampling_weight(trace_state: &str) -> Option<f64> {
    let ot = trace_state
        .split(',')
        .find_map(|m| m.trim().strip_prefix("ot="))?;
    let th = ot.split(';').find_map(|f| f.strip_prefix("th:"))?;
    if th.is_empty() || th.len() > 14 || !th.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let t = u64::from_str_radix(th, 16).ok()? << (4 * (14 - th.len()));
    let max = 1u64 << 56;
    Some(max as f64 / (max - t) as f64)
}

fn exemplar_of(span: &Span, value: f64) -> Option<Ex> {
    let trace: [u8; 16] = span.trace_id.as_slice().try_into().ok()?;
    if trace == [0; 16] {
        return None;
    }
    Some(Ex {
        trace,
        span: span.span_id.as_slice().try_into().unwrap_or([0; 8]),
        value,
    })
}

impl Aggregator {
    pub fn new(cfg: &SpanMetricsConfig) -> Aggregator {
        let ex = &cfg.exclude_dimensions;
        let unit = cfg.histogram.unit;
        let histogram = if cfg.histogram.disable {
            None
        } else if let Some(e) = &cfg.histogram.exponential {
            let size = if e.max_size == 0 {
                DEFAULT_EXPONENTIAL_MAX_SIZE
            } else {
                e.max_size.max(2)
            };
            Some(HistKind::Exponential(size as usize))
        } else {
            let mut bounds: Vec<f64> = match cfg
                .histogram
                .explicit
                .as_ref()
                .and_then(|e| e.buckets.as_ref())
            {
                Some(b) => b
                    .iter()
                    .map(|d| d.get().as_nanos() as f64 / unit.nanos())
                    .collect(),
                None => DEFAULT_BUCKETS_MS
                    .iter()
                    .map(|ms| ms * 1e6 / unit.nanos())
                    .collect(),
            };
            bounds.sort_by(f64::total_cmp);
            bounds.dedup();
            Some(HistKind::Explicit(bounds))
        };
        let name = |n: &str| {
            if cfg.namespace.is_empty() {
                n.to_string()
            } else {
                format!("{}.{n}", cfg.namespace)
            }
        };
        let plan = Plan {
            builtin: BUILTIN.map(|b| !ex.iter().any(|e| e == b)),
            dims: dims(&cfg.dimensions, ex),
            calls_dims: dims(&cfg.calls_dimensions, ex),
            duration_dims: dims(&cfg.histogram.dimensions, ex),
            event_dims: dims(&cfg.events.dimensions, ex),
            scopes: cfg.include_instrumentation_scope.clone(),
            sampling_method: cfg.enable_metrics_sampling_method,
            histogram,
            unit,
            delta: cfg.is_delta(),
            limit: cfg.aggregation_cardinality_limit,
            max_exemplars: if cfg.exemplars.enabled {
                cfg.exemplars.max_per_data_point
            } else {
                0
            },
            events: cfg.events.enabled,
            key_attributes: cfg.resource_metrics_key_attributes.clone(),
            metrics_expiration_ns: nanos(cfg.metrics_expiration),
            series_expiration_ns: nanos(cfg.series_expiration),
            resource_cap: cfg
                .resource_metrics_cache_size
                .unwrap_or(DEFAULT_RESOURCE_CACHE_SIZE)
                .max(1),
            names: [name("calls"), name("duration"), name("events")],
            hasher: RandomState::default(),
        };
        Aggregator {
            plan,
            state: Mutex::new(State {
                rng: now_ns() | 1,
                ..State::default()
            }),
        }
    }

    /// Adds every span (and span event when events are enabled) of a request.
    pub fn add(&self, req: &ExportTraceServiceRequest) {
        self.add_at(req, now_ns());
    }

    /// [`Aggregator::add`] at `now_ns` (the series' start and last-seen time).
    pub fn add_at(&self, req: &ExportTraceServiceRequest, now_ns: u64) {
        let plan = &self.plan;
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        let mut parts: Vec<Part<'_>> = Vec::new();
        let (mut res_dims, mut res_calls, mut res_duration, mut res_events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rs in &req.resource_spans {
            let attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            let Some(service) = find(attrs, SERVICE_NAME) else {
                continue;
            };
            let service = val(service.value.as_ref());
            let r = self.resource_at(state, attrs, now_ns);
            let Some(entry) = state.resources.get_mut(r) else {
                continue;
            };
            entry.last_seen_ns = now_ns;
            resource_values(&mut res_dims, &plan.dims, attrs);
            resource_values(&mut res_calls, &plan.calls_dims, attrs);
            resource_values(&mut res_duration, &plan.duration_dims, attrs);
            resource_values(&mut res_events, &plan.event_dims, attrs);
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .filter(|s| !s.name.is_empty() && plan.scopes.contains(&s.name));
                for span in &ss.spans {
                    let value = if span.end_time_unix_nano > span.start_time_unix_nano {
                        (span.end_time_unix_nano - span.start_time_unix_nano) as f64
                            / plan.unit.nanos()
                    } else {
                        0.0
                    };
                    let (n, adjusted) = adjusted_count(&span.trace_state, &mut state.rng);
                    let ex = if plan.max_exemplars > 0 {
                        exemplar_of(span, value)
                    } else {
                        None
                    };
                    // the default dimensions, scope and sampling method
                    parts.clear();
                    let mut h = plan.hasher.build_hasher();
                    let builtin: [Val<'_>; 4] = [
                        service,
                        Val::Str(&span.name),
                        Val::Str(kind_str(span.kind)),
                        Val::Str(status_str(span)),
                    ];
                    let kept = BUILTIN.iter().zip(builtin).zip(plan.builtin);
                    for (i, ((name, v), keep)) in kept.enumerate() {
                        if keep {
                            push(&mut parts, &mut h, i, name, v);
                        }
                    }
                    if let Some(s) = scope {
                        push(&mut parts, &mut h, 4, SCOPE_NAME_KEY, Val::Str(&s.name));
                        if !s.version.is_empty() {
                            push(
                                &mut parts,
                                &mut h,
                                5,
                                SCOPE_VERSION_KEY,
                                Val::Str(&s.version),
                            );
                        }
                    }
                    if plan.sampling_method {
                        let method = if adjusted { "extrapolated" } else { "counted" };
                        push(&mut parts, &mut h, 6, SAMPLING_METHOD, Val::Str(method));
                    }
                    let (pre_len, pre_h) = (parts.len(), h.clone());
                    // the configured dimensions
                    for (i, d) in plan.dims.iter().enumerate() {
                        let r = res_dims.get(i).copied().flatten();
                        if let Some(v) = resolve(d, &span.attributes, &[], r) {
                            push(&mut parts, &mut h, DIMS_AT + i, &d.name, v);
                        }
                    }
                    let (base_len, base_h) = (parts.len(), h.clone());
                    let extra_at = DIMS_AT + plan.dims.len();
                    // calls
                    for (i, d) in plan.calls_dims.iter().enumerate() {
                        let r = res_calls.get(i).copied().flatten();
                        if let Some(v) = resolve(d, &span.attributes, &[], r) {
                            push(&mut parts, &mut h, extra_at + i, &d.name, v);
                        }
                    }
                    if let Some((s, over)) =
                        entry
                            .calls
                            .upsert(h.finish(), &parts, plan.limit, now_ns, || 0)
                    {
                        s.value += n;
                        s.touch(now_ns, ex.filter(|_| !over), plan.max_exemplars);
                    }
                    // duration
                    if let Some(kind) = &plan.histogram {
                        parts.truncate(base_len);
                        h = base_h.clone();
                        for (i, d) in plan.duration_dims.iter().enumerate() {
                            let r = res_duration.get(i).copied().flatten();
                            if let Some(v) = resolve(d, &span.attributes, &[], r) {
                                push(&mut parts, &mut h, extra_at + i, &d.name, v);
                            }
                        }
                        if let Some((s, over)) =
                            entry
                                .duration
                                .upsert(h.finish(), &parts, plan.limit, now_ns, || Hist::new(kind))
                        {
                            s.value.record(kind, value, n);
                            s.touch(now_ns, ex.filter(|_| !over), plan.max_exemplars);
                        }
                    }
                    // events: the event's attributes come before the resource's
                    if !plan.events {
                        continue;
                    }
                    for event in &span.events {
                        parts.truncate(pre_len);
                        h = pre_h.clone();
                        for (i, d) in plan.dims.iter().enumerate() {
                            let r = res_dims.get(i).copied().flatten();
                            if let Some(v) = resolve(d, &span.attributes, &event.attributes, r) {
                                push(&mut parts, &mut h, DIMS_AT + i, &d.name, v);
                            }
                        }
                        for (i, d) in plan.event_dims.iter().enumerate() {
                            let r = res_events.get(i).copied().flatten();
                            if let Some(v) = resolve(d, &span.attributes, &event.attributes, r) {
                                push(&mut parts, &mut h, extra_at + i, &d.name, v);
                            }
                        }
                        if let Some((s, over)) =
                            entry
                                .events
                                .upsert(h.finish(), &parts, plan.limit, now_ns, || 0)
                        {
                            s.value += n;
                            s.touch(now_ns, ex.filter(|_| !over), plan.max_exemplars);
                        }
                    }
                }
            }
        }
    }

    /// The index of the resource entry of `attrs`, created when new.
    fn resource_at(&self, state: &mut State, attrs: &[KeyValue], now_ns: u64) -> usize {
        let keys = &self.plan.key_attributes;
        let mut identity: Vec<Part<'_>> = attrs
            .iter()
            .filter(|kv| keys.is_empty() || kv.key == SERVICE_NAME || keys.contains(&kv.key))
            .map(|kv| (kv.key.as_str(), val(kv.value.as_ref())))
            .collect();
        identity.sort_by(|a, b| a.0.cmp(b.0));
        let mut h = self.plan.hasher.build_hasher();
        for (k, v) in &identity {
            h.write(k.as_bytes());
            h.write_u8(0xff);
            hash_val(&mut h, *v);
        }
        let hash = h.finish();
        let resources = &state.resources;
        let found = lookup(&state.index, hash, |i| {
            resources
                .get(i)
                .is_some_and(|r| same(&r.identity, &identity))
        });
        if let Some(i) = found {
            return i;
        }
        let i = state.resources.len();
        state.resources.push(ResourceEntry {
            hash,
            identity: to_attrs(&identity),
            attributes: attrs.to_vec(),
            calls: Table::new(),
            duration: Table::new(),
            events: Table::new(),
            last_seen_ns: now_ns,
        });
        link(&mut state.index, hash, i);
        i
    }

    /// The metrics as of `now_ns`: cumulative = every live series with its running totals and a
    /// fixed start time; delta = what was added since the last flush (then reset). `None` when
    /// there is nothing to send. Expires resources and series first (cumulative).
    pub fn flush(&self, now_ns: u64) -> Option<ExportMetricsServiceRequest> {
        let plan = &self.plan;
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        if !plan.delta && (plan.metrics_expiration_ns > 0 || plan.series_expiration_ns > 0) {
            let before = state.resources.len();
            state.resources.retain_mut(|r| {
                if plan.metrics_expiration_ns > 0
                    && now_ns.saturating_sub(r.last_seen_ns) >= plan.metrics_expiration_ns
                {
                    return false;
                }
                if plan.series_expiration_ns > 0 {
                    let cutoff = now_ns.saturating_sub(plan.series_expiration_ns);
                    r.calls.expire(cutoff);
                    r.duration.expire(cutoff);
                    r.events.expire(cutoff);
                }
                r.len() > 0
            });
            if state.resources.len() != before {
                state.reindex();
            }
        }
        let temporality = if plan.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let last_flush = state.last_flush_ns.filter(|_| plan.delta);
        let start = |s_start: u64| last_flush.unwrap_or(s_start);
        let resource_metrics: Vec<ResourceMetrics> = state
            .resources
            .iter()
            .filter(|r| r.len() > 0)
            .map(|r| {
                let mut metrics = Vec::with_capacity(3);
                let [calls, duration, events] = &plan.names;
                metrics.extend(sum_metric(calls, &r.calls, temporality, now_ns, start));
                if let Some(kind) = &plan.histogram {
                    metrics.extend(hist_metric(
                        duration,
                        plan.unit,
                        kind,
                        &r.duration,
                        temporality,
                        now_ns,
                        start,
                    ));
                }
                if plan.events {
                    metrics.extend(sum_metric(events, &r.events, temporality, now_ns, start));
                }
                ResourceMetrics {
                    resource: Some(Resource {
                        attributes: r.attributes.clone(),
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(InstrumentationScope {
                            name: SCOPE_NAME.into(),
                            ..Default::default()
                        }),
                        metrics,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }
            })
            .collect();
        state.last_flush_ns = Some(now_ns);
        if plan.delta {
            state.resources.clear();
            state.index.clear();
        } else {
            for r in &mut state.resources {
                r.calls.clear_exemplars();
                r.duration.clear_exemplars();
                r.events.clear_exemplars();
            }
            if state.resources.len() > plan.resource_cap {
                // keep the most recently seen (ties: the oldest entries)
                let seen: Vec<u64> = state.resources.iter().map(|r| r.last_seen_ns).collect();
                let mut order: Vec<usize> = (0..seen.len()).collect();
                order.sort_by_key(|i| std::cmp::Reverse(seen.get(*i).copied().unwrap_or(0)));
                let mut keep = vec![false; seen.len()];
                for i in order.into_iter().take(plan.resource_cap) {
                    if let Some(k) = keep.get_mut(i) {
                        *k = true;
                    }
                }
                let mut keep = keep.into_iter();
                state.resources.retain(|_| keep.next().unwrap_or(false));
                state.reindex();
            }
        }
        (!resource_metrics.is_empty()).then_some(ExportMetricsServiceRequest { resource_metrics })
    }

    /// Live series, over every resource and metric (overflow series included).
    pub fn series(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.resources.iter().map(ResourceEntry::len).sum()
    }
}

fn exemplars(ex: &[Ex], now_ns: u64) -> Vec<Exemplar> {
    ex.iter()
        .map(|e| Exemplar {
            time_unix_nano: now_ns,
            trace_id: e.trace.to_vec(),
            span_id: if e.span == [0; 8] {
                Vec::new()
            } else {
                e.span.to_vec()
            },
            value: Some(exemplar::Value::AsDouble(e.value)),
            filtered_attributes: Vec::new(),
        })
        .collect()
}

fn sum_metric(
    name: &str,
    table: &Table<u64>,
    temporality: i32,
    now_ns: u64,
    start: impl Fn(u64) -> u64,
) -> Option<Metric> {
    let data_points: Vec<NumberDataPoint> = table
        .all()
        .map(|s| NumberDataPoint {
            attributes: s.attrs.clone(),
            start_time_unix_nano: start(s.start_ns),
            time_unix_nano: now_ns,
            exemplars: exemplars(&s.exemplars, now_ns),
            value: Some(number_data_point::Value::AsInt(
                i64::try_from(s.value).unwrap_or(i64::MAX),
            )),
            flags: 0,
        })
        .collect();
    (!data_points.is_empty()).then(|| Metric {
        name: name.to_string(),
        data: Some(Data::Sum(Sum {
            data_points,
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
        ..Default::default()
    })
}

fn hist_metric(
    name: &str,
    unit: HistogramUnit,
    kind: &HistKind,
    table: &Table<Hist>,
    temporality: i32,
    now_ns: u64,
    start: impl Fn(u64) -> u64,
) -> Option<Metric> {
    if table.len() == 0 {
        return None;
    }
    let data = match kind {
        HistKind::Explicit(bounds) => Data::Histogram(Histogram {
            data_points: table
                .all()
                .filter_map(|s| match &s.value {
                    Hist::Explicit { counts, count, sum } => Some(HistogramDataPoint {
                        attributes: s.attrs.clone(),
                        start_time_unix_nano: start(s.start_ns),
                        time_unix_nano: now_ns,
                        count: *count,
                        sum: Some(*sum),
                        bucket_counts: counts.clone(),
                        explicit_bounds: bounds.clone(),
                        exemplars: exemplars(&s.exemplars, now_ns),
                        flags: 0,
                        min: None,
                        max: None,
                    }),
                    Hist::Exponential(_) => None,
                })
                .collect(),
            aggregation_temporality: temporality,
        }),
        HistKind::Exponential(_) => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: table
                .all()
                .filter_map(|s| match &s.value {
                    Hist::Exponential(e) => Some(ExponentialHistogramDataPoint {
                        attributes: s.attrs.clone(),
                        start_time_unix_nano: start(s.start_ns),
                        time_unix_nano: now_ns,
                        count: e.count,
                        sum: Some(e.sum),
                        scale: e.scale,
                        zero_count: e.zero,
                        positive: Some(exponential_histogram_data_point::Buckets {
                            offset: e.offset,
                            bucket_counts: e.counts.clone(),
                        }),
                        negative: None,
                        flags: 0,
                        exemplars: exemplars(&s.exemplars, now_ns),
                        min: (e.count > 0).then_some(e.min),
                        max: (e.count > 0).then_some(e.max),
                        zero_threshold: 0.0,
                    }),
                    Hist::Explicit { .. } => None,
                })
                .collect(),
            aggregation_temporality: temporality,
        }),
    };
    Some(Metric {
        name: name.to_string(),
        unit: unit.as_str().to_string(),
        data: Some(data),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Status};

    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;
    const SERVER: i32 = 2;
    const CLIENT: i32 = 3;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn kvi(k: &str, v: i64) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(v)),
            }),
            ..Default::default()
        }
    }

    /// A span of `micros` µs with trace id `[t; 16]`.
    fn span(name: &str, kind: i32, code: i32, micros: u64, attrs: Vec<KeyValue>, t: u8) -> Span {
        Span {
            trace_id: vec![t; 16],
            span_id: vec![t; 8],
            name: name.into(),
            kind,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + micros * 1000,
            attributes: attrs,
            status: Some(Status {
                code,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request(groups: Vec<(Vec<KeyValue>, Vec<Span>)>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: groups
                .into_iter()
                .map(|(attributes, spans)| ResourceSpans {
                    resource: Some(Resource {
                        attributes,
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            version: "1.2".into(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                })
                .collect(),
        }
    }

    fn config(yaml: &str) -> SpanMetricsConfig {
        let cfg: SpanMetricsConfig = serde_norway::from_str(yaml).unwrap();
        let mut d = Diagnostics::default();
        cfg.validate("connectors.spanmetrics", &mut d);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        cfg
    }

    fn text(v: Option<&AnyValue>) -> String {
        match v.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => i.to_string(),
            Some(any_value::Value::BoolValue(b)) => b.to_string(),
            other => format!("{other:?}"),
        }
    }

    type Attrs = BTreeMap<String, String>;

    fn attrs(list: &[KeyValue]) -> Attrs {
        list.iter()
            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
            .collect()
    }

    fn a(pairs: &[(&str, &str)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resource_of<'a>(out: &'a ExportMetricsServiceRequest, service: &str) -> &'a ResourceMetrics {
        out.resource_metrics
            .iter()
            .find(|rm| {
                let r = rm.resource.as_ref().unwrap();
                attrs(&r.attributes).get(SERVICE_NAME).map(String::as_str) == Some(service)
            })
            .unwrap_or_else(|| panic!("no resource {service}"))
    }

    fn metric<'a>(out: &'a ExportMetricsServiceRequest, service: &str, name: &str) -> &'a Metric {
        let rm = resource_of(out, service);
        assert_eq!(rm.scope_metrics.len(), 1);
        let sm = &rm.scope_metrics[0];
        assert_eq!(sm.scope.as_ref().unwrap().name, "spanmetricsconnector");
        sm.metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no metric {name} for {service}"))
    }

    /// The points of a sum: attributes → value, and the sum itself.
    fn sums(m: &Metric) -> (BTreeMap<Attrs, i64>, &Sum) {
        let Some(Data::Sum(s)) = &m.data else {
            panic!("{} is not a sum", m.name)
        };
        assert!(s.is_monotonic);
        let points = s
            .data_points
            .iter()
            .map(|p| {
                let Some(number_data_point::Value::AsInt(n)) = p.value else {
                    panic!("int")
                };
                (attrs(&p.attributes), n)
            })
            .collect();
        (points, s)
    }

    fn hists(m: &Metric) -> BTreeMap<Attrs, &HistogramDataPoint> {
        let Some(Data::Histogram(h)) = &m.data else {
            panic!("{} is not a histogram", m.name)
        };
        h.data_points
            .iter()
            .map(|p| (attrs(&p.attributes), p))
            .collect()
    }

    fn calls_point(svc: &str, name: &str, kind: &str, status: &str) -> Attrs {
        a(&[
            (SERVICE_NAME, svc),
            (SPAN_NAME, name),
            (SPAN_KIND, kind),
            (STATUS_CODE, status),
        ])
    }

    #[test]
    fn aggregator_is_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Aggregator>();
    }

    #[test]
    fn config_defaults_and_collector_keys() {
        let d = SpanMetricsConfig::default();
        assert_eq!(d.aggregation_temporality, CUMULATIVE);
        assert_eq!(d.metrics_flush_interval, Duration::from_secs(60));
        assert!(d.metrics_expiration.is_zero());
        assert_eq!(d.namespace, "traces.span.metrics");
        assert_eq!(d.histogram.unit, HistogramUnit::Milliseconds);
        assert!(d.histogram.explicit.is_none() && d.histogram.exponential.is_none());
        assert!(!d.histogram.disable);
        assert_eq!(
            d.exemplars,
            ExemplarsConfig {
                enabled: false,
                max_per_data_point: 5
            }
        );
        assert_eq!(d.aggregation_cardinality_limit, 0);
        assert!(!d.events.enabled && !d.add_resource_attributes);
        // an empty section is the defaults
        assert_eq!(config("{}"), d);

        // the Collector README's example
        let cfg = config(
            r#"
histogram:
  explicit:
    buckets: [100us, 1ms, 2ms, 6ms, 10ms, 100ms, 250ms]
dimensions:
  - name: http.method
    default: GET
  - name: http.status_code
exemplars:
  enabled: true
exclude_dimensions: ['status.code']
dimensions_cache_size: 1000
aggregation_temporality: "AGGREGATION_TEMPORALITY_CUMULATIVE"
metrics_flush_interval: 15s
metrics_expiration: 5m
events:
  enabled: true
  dimensions:
    - name: exception.type
    - name: exception.message
resource_metrics_key_attributes:
  - service.name
  - telemetry.sdk.language
  - telemetry.sdk.name
"#,
        );
        let buckets = cfg
            .histogram
            .explicit
            .as_ref()
            .unwrap()
            .buckets
            .as_ref()
            .unwrap();
        assert_eq!(buckets.len(), 7);
        assert_eq!(buckets[0], Duration(std::time::Duration::from_micros(100)));
        assert_eq!(cfg.dimensions[0].default.as_deref(), Some("GET"));
        assert_eq!(cfg.dimensions[1].default, None);
        assert!(cfg.exemplars.enabled);
        assert_eq!(cfg.exclude_dimensions, ["status.code"]);
        assert_eq!(cfg.dimensions_cache_size, Some(1000));
        assert_eq!(cfg.metrics_flush_interval, Duration::from_secs(15));
        assert_eq!(cfg.metrics_expiration, Duration::from_secs(300));
        assert_eq!(cfg.events.dimensions.len(), 2);
        assert_eq!(cfg.resource_metrics_key_attributes.len(), 3);
        let mut d = Diagnostics::default();
        cfg.validate("c", &mut d);
        assert_eq!(d.warnings.len(), 1, "dimensions_cache_size is deprecated");
        assert!(d.warnings[0].path.ends_with("dimensions_cache_size"));

        // the Collector's testdata: `explicit:` alone, seconds, exponential, the remaining keys
        let cfg = config("histogram:\n  explicit:\n");
        assert_eq!(
            cfg.histogram.explicit,
            Some(ExplicitHistogramConfig::default())
        );
        let cfg = config(
            r#"
histogram: {unit: s, exponential: {max_size: 10}, disable: false, dimensions: [{name: http.route}]}
calls_dimensions: [{name: http.method, default: GET}]
aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA
aggregation_cardinality_limit: 100
resource_metrics_cache_size: 1600
metric_timestamp_cache_size: 100
series_expiration: 1m
namespace: span.metrics
exemplars: {enabled: true, max_per_data_point: 3}
add_resource_attributes: true
include_instrumentation_scope: [lib]
enable_metrics_sampling_method: true
"#,
        );
        assert_eq!(cfg.histogram.unit, HistogramUnit::Seconds);
        assert_eq!(cfg.histogram.exponential.as_ref().unwrap().max_size, 10);
        assert!(cfg.is_delta());
        assert_eq!(cfg.resource_metrics_cache_size, Some(1600));
        let cfg = config("histogram:\n  exponential:\n");
        assert_eq!(cfg.histogram.exponential.as_ref().unwrap().max_size, 160);
        // unknown keys and units are refused
        assert!(serde_norway::from_str::<SpanMetricsConfig>("nope: 1").is_err());
        assert!(serde_norway::from_str::<SpanMetricsConfig>("histogram: {unit: us}").is_err());
        // and the config round-trips
        let back: SpanMetricsConfig =
            serde_norway::from_str(&serde_norway::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn validate_errors() {
        let errors = |yaml: &str| {
            let cfg: SpanMetricsConfig = serde_norway::from_str(yaml).unwrap();
            let mut d = Diagnostics::default();
            cfg.validate("connectors.spanmetrics", &mut d);
            d.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        };
        let e = errors("aggregation_temporality: DELTA");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("connectors.spanmetrics.aggregation_temporality: must be"));
        let e = errors("histogram: {explicit: {buckets: [1ms]}, exponential: {max_size: 20}}");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("either `explicit` or `exponential`"), "{e:?}");
        let e = errors("dimensions: [{name: ''}, {default: x}]");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with(
            "connectors.spanmetrics.dimensions[0].name: a dimension name is required"
        ));
        assert!(e[1].starts_with("connectors.spanmetrics.dimensions[1].name"));
        let e = errors(
            "dimensions: [{name: a}, {name: a}, {name: span.kind}]\ncalls_dimensions: [{name: a}]",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].contains("dimensions[1].name: duplicate dimension name \"a\""),
            "{e:?}"
        );
        assert!(e[1].contains("dimensions[2].name") && e[1].contains("default dimension"));
        assert!(
            e[2].contains("calls_dimensions[0].name: duplicate"),
            "{e:?}"
        );
        let e = errors("events: {enabled: true}");
        assert!(e[0].contains("events.dimensions: no dimensions configured for events"));
        let e = errors("histogram: {explicit: {buckets: [2ms, 1ms]}}");
        assert!(e[0].contains("strictly increasing"), "{e:?}");
        let e = errors("metrics_flush_interval: 0\nresource_metrics_cache_size: 0");
        assert_eq!(e.len(), 2, "{e:?}");
    }

    /// Two services, server and client spans: calls per combination, duration buckets and sums.
    #[test]
    fn calls_and_duration() {
        let agg = Aggregator::new(&config("{}"));
        let req = request(vec![
            (
                vec![kv(SERVICE_NAME, "checkout"), kv("host.name", "h1")],
                vec![
                    span("GET /cart", SERVER, 0, 1_000, vec![], 1), // 1ms: le 2
                    span("GET /cart", SERVER, 0, 3_000, vec![], 2), // 3ms: le 4
                    span("GET /cart", SERVER, 2, 2_000, vec![], 3), // 2ms: le 2 (inclusive)
                    span("SELECT", CLIENT, 1, 20_000_000, vec![], 4), // 20s: +Inf
                ],
            ),
            (
                vec![kv(SERVICE_NAME, "cart")],
                vec![span("GET /cart", SERVER, 0, 50_000, vec![], 5)], // 50ms: le 50
            ),
            // no service.name: skipped, as in the Collector
            (
                vec![kv("host.name", "h2")],
                vec![span("x", SERVER, 0, 1, vec![], 6)],
            ),
        ]);
        agg.add_at(&req, T0);
        assert_eq!(agg.series(), 8, "4 calls + 4 duration series");
        let out = agg.flush(T0 + SEC).unwrap();
        assert_eq!(out.resource_metrics.len(), 2);
        // the resource is carried over
        let r = resource_of(&out, "checkout").resource.as_ref().unwrap();
        assert_eq!(attrs(&r.attributes)["host.name"], "h1");

        let (calls, sum) = sums(metric(&out, "checkout", "traces.span.metrics.calls"));
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let want: BTreeMap<Attrs, i64> = [
            (
                calls_point(
                    "checkout",
                    "GET /cart",
                    "SPAN_KIND_SERVER",
                    "STATUS_CODE_UNSET",
                ),
                2,
            ),
            (
                calls_point(
                    "checkout",
                    "GET /cart",
                    "SPAN_KIND_SERVER",
                    "STATUS_CODE_ERROR",
                ),
                1,
            ),
            (
                calls_point("checkout", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_OK"),
                1,
            ),
        ]
        .into();
        assert_eq!(calls, want);
        let (calls, _) = sums(metric(&out, "cart", "traces.span.metrics.calls"));
        assert_eq!(calls.values().collect::<Vec<_>>(), [&1]);

        let m = metric(&out, "checkout", "traces.span.metrics.duration");
        assert_eq!(m.unit, "ms");
        let h = hists(m);
        let unset = &h[&calls_point(
            "checkout",
            "GET /cart",
            "SPAN_KIND_SERVER",
            "STATUS_CODE_UNSET",
        )];
        assert_eq!(unset.explicit_bounds, DEFAULT_BUCKETS_MS);
        assert_eq!(unset.count, 2);
        assert_eq!(unset.sum, Some(4.0));
        assert_eq!(&unset.bucket_counts[..3], [1, 1, 0]);
        assert_eq!(unset.bucket_counts.len(), 17);
        let error = &h[&calls_point(
            "checkout",
            "GET /cart",
            "SPAN_KIND_SERVER",
            "STATUS_CODE_ERROR",
        )];
        assert_eq!(error.bucket_counts[0], 1, "bounds are upper-inclusive");
        let select = &h[&calls_point("checkout", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_OK")];
        assert_eq!(select.bucket_counts[16], 1);
        assert_eq!(select.sum, Some(20_000.0));
        let cart = hists(metric(&out, "cart", "traces.span.metrics.duration"));
        let p = cart.values().next().unwrap();
        assert_eq!(p.bucket_counts[5], 1, "50ms falls in le=50");

        // in seconds, with configured buckets
        let agg = Aggregator::new(&config(
            "histogram: {unit: s, explicit: {buckets: [10ms, 1s]}}\nnamespace: ''",
        ));
        agg.add_at(&req, T0);
        let out = agg.flush(T0 + SEC).unwrap();
        let m = metric(&out, "checkout", "duration");
        assert_eq!(m.unit, "s");
        let h = hists(m);
        let unset = &h[&calls_point(
            "checkout",
            "GET /cart",
            "SPAN_KIND_SERVER",
            "STATUS_CODE_UNSET",
        )];
        assert_eq!(unset.explicit_bounds, [0.01, 1.0]);
        assert_eq!(unset.bucket_counts, [2, 0, 0]);
        assert!((unset.sum.unwrap() - 0.004).abs() < 1e-12);
        let select = &h[&calls_point("checkout", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_OK")];
        assert_eq!(select.bucket_counts, [0, 0, 1]);
        assert_eq!(select.sum, Some(20.0));
        metric(&out, "checkout", "calls");

        // histogram.disable: calls only
        let agg = Aggregator::new(&config("histogram: {disable: true}"));
        agg.add_at(&req, T0);
        let out = agg.flush(T0).unwrap();
        assert_eq!(resource_of(&out, "cart").scope_metrics[0].metrics.len(), 1);
    }

    #[test]
    fn dimensions_from_span_resource_default_and_exclusions() {
        let agg = Aggregator::new(&config(
            r#"
dimensions:
  - {name: http.method, default: GET}
  - {name: region}
  - {name: http.status_code}
calls_dimensions: [{name: tenant, default: none}]
exclude_dimensions: [status.code, span.kind]
histogram: {disable: true}
"#,
        ));
        let req = request(vec![(
            vec![
                kv(SERVICE_NAME, "api"),
                kv("region", "eu"),
                kv("http.method", "PUT"),
            ],
            vec![
                // from the span (wins over the resource), int kept as int
                span(
                    "a",
                    SERVER,
                    0,
                    1,
                    vec![kv("http.method", "POST"), kvi("http.status_code", 200)],
                    1,
                ),
                // from the resource
                span(
                    "a",
                    SERVER,
                    2,
                    1,
                    vec![kv("region", "us"), kv("tenant", "t1")],
                    1,
                ),
                span("a", CLIENT, 1, 1, vec![kvi("http.status_code", 200)], 1),
            ],
        )]);
        agg.add_at(&req, T0);
        let out = agg.flush(T0).unwrap();
        let (calls, _) = sums(metric(&out, "api", "traces.span.metrics.calls"));
        let base = [(SERVICE_NAME, "api"), (SPAN_NAME, "a")];
        let with = |extra: &[(&str, &str)]| {
            let mut m = a(&base);
            m.extend(a(extra));
            m
        };
        let want: BTreeMap<Attrs, i64> = [
            (
                with(&[
                    ("http.method", "POST"),
                    ("region", "eu"),
                    ("http.status_code", "200"),
                    ("tenant", "none"),
                ]),
                1,
            ),
            (
                with(&[("http.method", "PUT"), ("region", "us"), ("tenant", "t1")]),
                1,
            ),
            (
                with(&[
                    ("http.method", "PUT"),
                    ("region", "eu"),
                    ("http.status_code", "200"),
                    ("tenant", "none"),
                ]),
                1,
            ),
        ]
        .into();
        assert_eq!(calls, want, "status.code and span.kind excluded");
        // the first and third span differ only by their method source: two series
        let Some(Data::Sum(s)) = &metric(&out, "api", "traces.span.metrics.calls").data else {
            panic!()
        };
        let p = &s.data_points[0];
        assert_eq!(
            p.attributes
                .iter()
                .map(|kv| kv.key.as_str())
                .collect::<Vec<_>>(),
            [
                SERVICE_NAME,
                SPAN_NAME,
                "http.method",
                "region",
                "http.status_code",
                "tenant"
            ],
            "the Collector's order"
        );
        let code = p
            .attributes
            .iter()
            .find(|kv| kv.key == "http.status_code")
            .unwrap();
        assert_eq!(
            code.value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(200))
        );

        // a default and an attribute with the same text are one series
        let agg = Aggregator::new(&config("dimensions: [{name: m, default: GET}]"));
        agg.add_at(
            &request(vec![(
                vec![kv(SERVICE_NAME, "x")],
                vec![
                    span("s", SERVER, 0, 1, vec![kv("m", "GET")], 1),
                    span("s", SERVER, 0, 1, vec![], 1),
                ],
            )]),
            T0,
        );
        assert_eq!(agg.series(), 2, "one calls and one duration series");
    }

    #[test]
    fn cumulative_keeps_totals_delta_resets() {
        let req = request(vec![(
            vec![kv(SERVICE_NAME, "svc")],
            vec![span("op", SERVER, 0, 1_000, vec![], 1)],
        )]);
        let one = |out: &ExportMetricsServiceRequest| {
            let Some(Data::Sum(s)) = &metric(out, "svc", "traces.span.metrics.calls").data else {
                panic!()
            };
            assert_eq!(s.data_points.len(), 1);
            let p = s.data_points[0].clone();
            let Some(Data::Histogram(h)) = &metric(out, "svc", "traces.span.metrics.duration").data
            else {
                panic!()
            };
            (p, h.data_points[0].clone(), s.aggregation_temporality)
        };

        let agg = Aggregator::new(&config("{}"));
        assert!(agg.flush(T0).is_none(), "nothing yet");
        agg.add_at(&req, T0 + SEC);
        agg.add_at(&req, T0 + SEC);
        let (c, h, t) = one(&agg.flush(T0 + 2 * SEC).unwrap());
        assert_eq!(t, AggregationTemporality::Cumulative as i32);
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(2)));
        assert_eq!(
            (c.start_time_unix_nano, c.time_unix_nano),
            (T0 + SEC, T0 + 2 * SEC)
        );
        assert_eq!(h.count, 2);
        // nothing new: the same totals again
        let (c, h, _) = one(&agg.flush(T0 + 3 * SEC).unwrap());
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(2)));
        assert_eq!(h.count, 2);
        agg.add_at(&req, T0 + 4 * SEC);
        let (c, h, _) = one(&agg.flush(T0 + 5 * SEC).unwrap());
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(3)));
        assert_eq!(
            (c.start_time_unix_nano, h.start_time_unix_nano),
            (T0 + SEC, T0 + SEC)
        );
        assert_eq!(c.time_unix_nano, T0 + 5 * SEC);
        assert_eq!((h.count, h.sum), (3, Some(3.0)));

        let agg = Aggregator::new(&config(
            "aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA",
        ));
        agg.add_at(&req, T0 + SEC);
        agg.add_at(&req, T0 + SEC);
        let (c, h, t) = one(&agg.flush(T0 + 2 * SEC).unwrap());
        assert_eq!(t, AggregationTemporality::Delta as i32);
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(2)));
        assert_eq!(
            c.start_time_unix_nano,
            T0 + SEC,
            "the first span, before any flush"
        );
        assert_eq!(h.count, 2);
        assert_eq!(agg.series(), 0, "reset");
        assert!(agg.flush(T0 + 3 * SEC).is_none(), "nothing added");
        agg.add_at(&req, T0 + 4 * SEC);
        let (c, h, _) = one(&agg.flush(T0 + 5 * SEC).unwrap());
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(1)));
        assert_eq!(c.start_time_unix_nano, T0 + 3 * SEC, "the previous flush");
        assert_eq!(h.count, 1);
    }

    #[test]
    fn cardinality_limit_overflows_per_resource() {
        let agg = Aggregator::new(&config(
            "aggregation_cardinality_limit: 2\nexemplars: {enabled: true}",
        ));
        let spans: Vec<Span> = (0..5)
            .map(|i| span(&format!("op{i}"), SERVER, 0, 1_000, vec![], 1))
            .collect();
        agg.add_at(
            &request(vec![
                (vec![kv(SERVICE_NAME, "a")], spans.clone()),
                (vec![kv(SERVICE_NAME, "b")], spans[..1].to_vec()),
            ]),
            T0,
        );
        // a: 2 + overflow for calls and for duration; b: 1 + 1
        assert_eq!(agg.series(), 8);
        let out = agg.flush(T0).unwrap();
        let (calls, _) = sums(metric(&out, "a", "traces.span.metrics.calls"));
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[&a(&[(OVERFLOW, "true")])], 3);
        assert_eq!(
            calls[&calls_point("a", "op0", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")],
            1
        );
        let h = hists(metric(&out, "a", "traces.span.metrics.duration"));
        let overflow = h[&a(&[(OVERFLOW, "true")])];
        assert_eq!(overflow.count, 3);
        assert!(
            overflow.exemplars.is_empty(),
            "no exemplars on the overflow series"
        );
        let (calls, _) = sums(metric(&out, "b", "traces.span.metrics.calls"));
        assert_eq!(calls.len(), 1, "the limit is per resource");
        // an existing series still counts in place
        agg.add_at(&request(vec![(vec![kv(SERVICE_NAME, "a")], spans)]), T0);
        let (calls, _) = sums(metric(
            &agg.flush(T0).unwrap(),
            "a",
            "traces.span.metrics.calls",
        ));
        assert_eq!(calls[&a(&[(OVERFLOW, "true")])], 6);
        assert_eq!(
            calls[&calls_point("a", "op1", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")],
            2
        );
    }

    /// A million spans, every one with a name of its own, from 20 services: the series held
    /// stay within the limit per resource (plus one overflow series per metric), and every
    /// call is still counted (delta flushes add up to the spans sent).
    #[test]
    fn a_million_distinct_spans_stay_within_the_cardinality_bound() {
        const LIMIT: usize = 200;
        const SERVICES: usize = 20;
        let agg = Aggregator::new(&config(&format!(
            "aggregation_cardinality_limit: {LIMIT}\naggregation_temporality: AGGREGATION_TEMPORALITY_DELTA"
        )));
        // calls + duration, each at most LIMIT series and one overflow series, per resource
        let bound = SERVICES * 2 * (LIMIT + 1);
        let mut calls_total = 0i64;
        let mut peak = 0;
        let mut sent = 0u64;
        for round in 0..1000u64 {
            let groups = (0..SERVICES)
                .map(|svc| {
                    let spans = (0..50u64)
                        .map(|i| {
                            let n = (round * 50 + i) * SERVICES as u64 + svc as u64;
                            span(&format!("op-{n}"), SERVER, 0, 1_000 + n % 997, vec![], 1)
                        })
                        .collect();
                    (vec![kv(SERVICE_NAME, &format!("svc-{svc}"))], spans)
                })
                .collect();
            agg.add_at(&request(groups), T0);
            sent += (SERVICES * 50) as u64;
            peak = peak.max(agg.series());
            assert!(agg.series() <= bound, "{} series > {bound}", agg.series());
            if round % 100 == 99 {
                let out = agg.flush(T0 + round).unwrap();
                for svc in 0..SERVICES {
                    let (calls, _) = sums(metric(
                        &out,
                        &format!("svc-{svc}"),
                        "traces.span.metrics.calls",
                    ));
                    assert!(calls.len() <= LIMIT + 1);
                    calls_total += calls.values().sum::<i64>();
                }
            }
        }
        assert_eq!(sent, 1_000_000);
        assert_eq!(
            calls_total, 1_000_000,
            "every span counted, overflow included"
        );
        assert_eq!(peak, bound, "the bound is reached and held");
    }

    #[test]
    fn expiration_drops_idle_resources_and_series() {
        let agg = Aggregator::new(&config("metrics_expiration: 10s"));
        let req = |svc: &str| {
            request(vec![(
                vec![kv(SERVICE_NAME, svc)],
                vec![span("op", SERVER, 0, 1, vec![], 1)],
            )])
        };
        agg.add_at(&req("old"), T0);
        agg.add_at(&req("new"), T0 + 5 * SEC);
        let out = agg.flush(T0 + 9 * SEC).unwrap();
        assert_eq!(out.resource_metrics.len(), 2);
        let out = agg.flush(T0 + 10 * SEC).unwrap();
        assert_eq!(out.resource_metrics.len(), 1, "old expired");
        resource_of(&out, "new");
        assert_eq!(agg.series(), 2);
        assert!(agg.flush(T0 + 15 * SEC).is_none());
        assert_eq!(agg.series(), 0);
        // it comes back with fresh totals and start time
        agg.add_at(&req("old"), T0 + 20 * SEC);
        let out = agg.flush(T0 + 21 * SEC).unwrap();
        let Some(Data::Sum(s)) = &metric(&out, "old", "traces.span.metrics.calls").data else {
            panic!()
        };
        assert_eq!(s.data_points[0].start_time_unix_nano, T0 + 20 * SEC);
        assert_eq!(
            s.data_points[0].value,
            Some(number_data_point::Value::AsInt(1))
        );

        // series_expiration: per series
        let agg = Aggregator::new(&config("series_expiration: 10s"));
        let svc = vec![kv(SERVICE_NAME, "s")];
        agg.add_at(
            &request(vec![(
                svc.clone(),
                vec![span("a", SERVER, 0, 1, vec![], 1)],
            )]),
            T0,
        );
        agg.add_at(
            &request(vec![(
                svc.clone(),
                vec![span("b", SERVER, 0, 1, vec![], 1)],
            )]),
            T0 + 5 * SEC,
        );
        let out = agg.flush(T0 + 12 * SEC).unwrap();
        let (calls, _) = sums(metric(&out, "s", "traces.span.metrics.calls"));
        assert_eq!(calls.len(), 1);
        assert!(calls.contains_key(&calls_point(
            "s",
            "b",
            "SPAN_KIND_SERVER",
            "STATUS_CODE_UNSET"
        )));
        // "a" again after expiry: a new series, found by its hash again
        agg.add_at(
            &request(vec![(
                svc.clone(),
                vec![span("a", SERVER, 0, 1, vec![], 1)],
            )]),
            T0 + 13 * SEC,
        );
        agg.add_at(
            &request(vec![(svc, vec![span("b", SERVER, 0, 1, vec![], 1)])]),
            T0 + 13 * SEC,
        );
        let (calls, _) = sums(metric(
            &agg.flush(T0 + 14 * SEC).unwrap(),
            "s",
            "traces.span.metrics.calls",
        ));
        assert_eq!(calls.values().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(agg.series(), 4);
    }

    #[test]
    fn exemplars_are_capped_and_cleared() {
        let agg = Aggregator::new(&config("exemplars: {enabled: true, max_per_data_point: 2}"));
        let mut spans: Vec<Span> = (1..=4)
            .map(|t| span("op", SERVER, 0, 1_000 * u64::from(t), vec![], t))
            .collect();
        spans.insert(0, span("op", SERVER, 0, 1, vec![], 0)); // no trace id: no exemplar
        let req = request(vec![(vec![kv(SERVICE_NAME, "svc")], spans)]);
        agg.add_at(&req, T0);
        let out = agg.flush(T0 + SEC).unwrap();
        let Some(Data::Sum(s)) = &metric(&out, "svc", "traces.span.metrics.calls").data else {
            panic!()
        };
        let ex = &s.data_points[0].exemplars;
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].trace_id, vec![1; 16]);
        assert_eq!(ex[0].span_id, vec![1; 8]);
        assert_eq!(ex[1].trace_id, vec![2; 16]);
        assert_eq!(ex[1].value, Some(exemplar::Value::AsDouble(2.0)));
        assert_eq!(ex[0].time_unix_nano, T0 + SEC);
        let h = hists(metric(&out, "svc", "traces.span.metrics.duration"));
        assert_eq!(h.values().next().unwrap().exemplars.len(), 2);
        // cleared by the flush
        let out = agg.flush(T0 + 2 * SEC).unwrap();
        let Some(Data::Sum(s)) = &metric(&out, "svc", "traces.span.metrics.calls").data else {
            panic!()
        };
        assert!(s.data_points[0].exemplars.is_empty());
        // off by default
        let agg = Aggregator::new(&config("{}"));
        agg.add_at(&req, T0);
        let out = agg.flush(T0).unwrap();
        assert!(hists(metric(&out, "svc", "traces.span.metrics.duration"))
            .values()
            .all(|p| p.exemplars.is_empty()));
    }

    #[test]
    fn events_metric() {
        let agg = Aggregator::new(&config(
            r#"
dimensions: [{name: region}]
events: {enabled: true, dimensions: [{name: exception.type}]}
"#,
        ));
        let event = |ty: Option<&str>, region: Option<&str>| span::Event {
            name: "exception".into(),
            attributes: ty
                .map(|t| kv("exception.type", t))
                .into_iter()
                .chain(region.map(|r| kv("region", r)))
                .collect(),
            ..Default::default()
        };
        let mut s = span("op", SERVER, 2, 1, vec![], 1);
        s.events = vec![
            event(Some("IOError"), None),
            event(Some("IOError"), Some("us")), // the event's region over the resource's
            event(Some("Timeout"), None),
            event(None, None), // no exception.type, no default: counted without it
        ];
        agg.add_at(
            &request(vec![(
                vec![kv(SERVICE_NAME, "svc"), kv("region", "eu")],
                vec![s],
            )]),
            T0,
        );
        let out = agg.flush(T0).unwrap();
        let (events, _) = sums(metric(&out, "svc", "traces.span.metrics.events"));
        let point = |region: &str, ty: Option<&str>| {
            let mut m = calls_point("svc", "op", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR");
            m.insert("region".into(), region.into());
            if let Some(t) = ty {
                m.insert("exception.type".into(), t.into());
            }
            m
        };
        let want: BTreeMap<Attrs, i64> = [
            (point("eu", Some("IOError")), 1),
            (point("us", Some("IOError")), 1),
            (point("eu", Some("Timeout")), 1),
            (point("eu", None), 1),
        ]
        .into();
        assert_eq!(events, want);
        // calls are per span, not per event
        let (calls, _) = sums(metric(&out, "svc", "traces.span.metrics.calls"));
        assert_eq!(calls.values().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn exponential_histogram() {
        let agg = Aggregator::new(&config("histogram: {exponential: {max_size: 4}}"));
        let spans: Vec<Span> = [0u64, 1_000, 2_000, 3_000, 1_000_000]
            .iter()
            .map(|us| span("op", SERVER, 0, *us, vec![], 1))
            .collect();
        agg.add_at(&request(vec![(vec![kv(SERVICE_NAME, "svc")], spans)]), T0);
        let out = agg.flush(T0).unwrap();
        let m = metric(&out, "svc", "traces.span.metrics.duration");
        assert_eq!(m.unit, "ms");
        let Some(Data::ExponentialHistogram(h)) = &m.data else {
            panic!("exponential")
        };
        let p = &h.data_points[0];
        assert_eq!(p.count, 5);
        assert_eq!(p.zero_count, 1);
        assert_eq!(p.sum, Some(1006.0));
        assert_eq!((p.min, p.max), (Some(0.0), Some(1000.0)));
        let pos = p.positive.as_ref().unwrap();
        assert!(pos.bucket_counts.len() <= 4, "{pos:?}");
        assert_eq!(pos.bucket_counts.iter().sum::<u64>(), 4);
        // every value lies in its bucket: (base^i, base^(i+1)]
        let base = 2f64.powf(2f64.powi(-p.scale));
        for v in [1.0f64, 2.0, 3.0, 1000.0] {
            let i = expo_index(v, p.scale);
            assert!(
                base.powi(i) < v * (1.0 + 1e-9) && v <= base.powi(i + 1) * (1.0 + 1e-9),
                "{v} {i}"
            );
            let at = (i - pos.offset) as usize;
            assert!(pos.bucket_counts[at] > 0, "{v} in bucket {i}");
        }
        // index mapping at the boundaries
        assert_eq!(expo_index(1.0, 0), -1);
        assert_eq!(expo_index(2.0, 0), 0);
        assert_eq!(expo_index(3.0, 0), 1);
        assert_eq!(expo_index(4.0, 1), 3);
        assert_eq!(expo_index(1000.0, -2), 2);
        assert_eq!(expo_index(2.0, 20), (1 << 20) - 1);
    }

    #[test]
    fn resources_keyed_by_attributes_or_key_attributes() {
        let req = request(vec![
            (
                vec![kv(SERVICE_NAME, "svc"), kvi("process.pid", 1)],
                vec![span("op", SERVER, 0, 1, vec![], 1)],
            ),
            (
                vec![kvi("process.pid", 2), kv(SERVICE_NAME, "svc")],
                vec![span("op", SERVER, 0, 1, vec![], 1)],
            ),
            (
                vec![kv(SERVICE_NAME, "svc"), kvi("process.pid", 1)],
                vec![span("op", SERVER, 0, 1, vec![], 1)],
            ),
        ]);
        let agg = Aggregator::new(&config("histogram: {disable: true}"));
        agg.add_at(&req, T0);
        let out = agg.flush(T0).unwrap();
        assert_eq!(out.resource_metrics.len(), 2, "by every resource attribute");
        let agg = Aggregator::new(&config(
            "histogram: {disable: true}\nresource_metrics_key_attributes: [telemetry.sdk.name]",
        ));
        agg.add_at(&req, T0);
        let out = agg.flush(T0).unwrap();
        assert_eq!(
            out.resource_metrics.len(),
            1,
            "by service.name and the key attributes"
        );
        let (calls, _) = sums(metric(&out, "svc", "traces.span.metrics.calls"));
        assert_eq!(calls.values().copied().collect::<Vec<_>>(), [3]);
        let r = out.resource_metrics[0].resource.as_ref().unwrap();
        assert_eq!(
            attrs(&r.attributes)["process.pid"],
            "1",
            "the first resource's attributes"
        );

        // resource_metrics_cache_size: the least recently seen go after a flush
        let agg = Aggregator::new(&config(
            "resource_metrics_cache_size: 2\nhistogram: {disable: true}",
        ));
        for (i, svc) in ["a", "b", "c"].iter().enumerate() {
            agg.add_at(
                &request(vec![(
                    vec![kv(SERVICE_NAME, svc)],
                    vec![span("op", SERVER, 0, 1, vec![], 1)],
                )]),
                T0 + i as u64,
            );
        }
        assert_eq!(agg.flush(T0 + 10).unwrap().resource_metrics.len(), 3);
        let out = agg.flush(T0 + 20).unwrap();
        assert_eq!(out.resource_metrics.len(), 2);
        resource_of(&out, "b");
        resource_of(&out, "c");
    }

    #[test]
    fn sampling_threshold_scope_and_sampling_method() {
        let agg = Aggregator::new(&config(
            "include_instrumentation_scope: [lib]\nenable_metrics_sampling_method: true\nhistogram: {disable: true}",
        ));
        let mut sampled = span("op", SERVER, 0, 1, vec![], 1);
        // th:8 rejects half the traces: each kept span stands for 2
        sampled.trace_state = "vendor=x,ot=rv:abcdef;th:8".into();
        let plain = span("op", SERVER, 0, 1, vec![], 1);
        agg.add_at(
            &request(vec![(
                vec![kv(SERVICE_NAME, "svc")],
                vec![sampled.clone(), sampled, plain],
            )]),
            T0,
        );
        let out = agg.flush(T0).unwrap();
        let (calls, _) = sums(metric(&out, "svc", "traces.span.metrics.calls"));
        let point = |method: &str| {
            let mut m = calls_point("svc", "op", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET");
            m.insert(SCOPE_NAME_KEY.into(), "lib".into());
            m.insert(SCOPE_VERSION_KEY.into(), "1.2".into());
            m.insert(SAMPLING_METHOD.into(), method.into());
            m
        };
        let want: BTreeMap<Attrs, i64> = [(point("extrapolated"), 4), (point("counted"), 1)].into();
        assert_eq!(calls, want);
        assert_eq!(sampling_weight("ot=th:0"), Some(1.0));
        assert_eq!(sampling_weight("ot=th:c"), Some(4.0));
        assert_eq!(sampling_weight("ot=th:zz"), None);
        assert_eq!(sampling_weight("ot=rv:00"), None);
        // a fractional weight rounds stochastically, never below its floor
        let mut rng = 12345;
        let total: u64 = (0..10_000)
            .map(|_| adjusted_count("ot=th:4", &mut rng).0)
            .sum();
        assert!((13_000..13_700).contains(&total), "{total}"); // 4/3 each
    }
}
