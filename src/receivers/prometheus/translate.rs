//! Turning one scrape of a target into OTLP: [`TargetState::translate`] makes one
//! `ResourceMetrics` of the scrape's samples (after target labels and `metric_relabel_configs`),
//! [`TargetState::fail`] the one of a failed scrape. The state keeps, per target, the series of
//! the last scrape with their start times; it holds nothing else across scrapes.
//!
//! # Resource and scope
//!
//! `service.name` is the job (a job `a/b` gives `service.namespace` `a` and `service.name` `b`,
//! split at the first `/` when both sides are non-empty), `service.instance.id` the instance,
//! `server.address` and `server.port` (a string, as the Collector puts it) the instance's host and
//! port when it is `host:port` or `[v6]:port`, `url.scheme` the scheme. The samples named
//! `target_info` (of type info, gauge or unknown) are no metrics: their labels other than `job`
//! and `instance` become resource attributes (replacing one of the same key). A failed scrape has
//! the resource without them. All metrics are under one scope, `otelgw/receiver/prometheus` with
//! otelgw's version.
//!
//! # Metrics
//!
//! | Prometheus | OTLP | name | points |
//! | --- | --- | --- | --- |
//! | counter | Sum, monotonic, cumulative | the value sample's (`x_total`) | one per label set |
//! | gauge, unknown | Gauge | the sample's | one per label set |
//! | histogram | Histogram, cumulative | the family's | `_bucket`/`_sum`/`_count`/`_created` per label set without `le` |
//! | gaugehistogram | Histogram, cumulative | the family's | `_bucket`/`_gsum`/`_gcount` per label set without `le` |
//! | summary | Summary | the family's | quantiles/`_sum`/`_count`/`_created` per label set without `quantile` |
//! | info | Sum, non-monotonic, cumulative, value 1 | the sample's (`x_info`) | one per label set |
//! | stateset | Sum, non-monotonic, cumulative | the sample's | one per state (its label kept), 0 or 1 |
//!
//! A metric's description is the HELP, its unit the UNIT as written (not converted), and its
//! `metadata` has `prometheus.type` = the type's OpenMetrics name (as the spec asks). A point's
//! attributes are the sample's labels without `job`, `instance`, empty values, and `le`
//! (histograms) or `quantile` (summaries). Two families of different types with one metric
//! name make two metrics.
//!
//! Histograms: the explicit bounds are the finite `le` values, sorted (duplicates, `NaN` and
//! `-Inf` dropped); the bucket counts are the differences of the cumulative counts, a decrease
//! counting as 0; the last bucket is count − the last finite cumulative count. The count is
//! `_count`, else the `+Inf` bucket, else the last cumulative count; the sum is `_sum` or unset.
//! Counts are truncated to integers. A histogram or summary missing pieces still gives a point
//! of what is there (no buckets: empty bounds and counts; a summary without `_sum` has sum 0,
//! without `_count` count 0) — where the spec would drop it. A sample of a histogram or summary
//! family that is none of its parts (no `le` on a bucket, no `quantile` on a quantile, another
//! name) is dropped, and so is a counter, gauge, info or stateset point with only `_created`.
//!
//! Gauge histograms: the spec drops them and the Collector has no mapping; here they are
//! cumulative Histograms (no reset detection: their counts go down as a matter of course),
//! because a delta histogram would be added up by a consumer that accumulates deltas (our
//! Prometheus exporter does) while a gauge histogram is a snapshot to be taken as is.
//!
//! # Times
//!
//! A point's time is its sample's timestamp (for histograms and summaries: `_count`'s, else
//! the first part's that has one), else `now_ns`, the scrape's start. Counters, histograms and
//! summaries start at their `_created` (float seconds) when present; else at the time the state
//! first saw the series (so a new series' first point has start = time), kept across scrapes;
//! when the value (counters) or count (histograms, summaries) is smaller than the previous
//! scrape's, the series was reset and starts at the point's time − 1 ms from then on. Info,
//! stateset and gauge histogram points start when first seen (no resets); gauges have no start.
//!
//! # Exemplars
//!
//! A counter's exemplar goes on its Sum point, a bucket's on its histogram point (in bucket
//! order). `trace_id` and `span_id` (names in any case) become the exemplar's ids when they are
//! 32 and 16 hex digits and not all zero; every other label, and an invalid id, becomes a
//! filtered attribute; empty values are dropped. Its time is its timestamp, else the point's.
//!
//! # Staleness
//!
//! A series is a metric name, type and attribute set. The state remembers those of the last
//! scrape; one of them missing from this scrape gets one point flagged `NoRecordedValue`
//! (flags 1) with no value (sums and gauges: `value: None`; histograms and summaries: zero count
//! and sum, no buckets or quantiles), time `now_ns` and its remembered start, and is forgotten
//! with its start time (a series that comes back starts anew). The marker goes into this
//! scrape's metric of the same name and type, else into a new one. [`TargetState::fail`]
//! marks every remembered series so and forgets them all.
//!
//! # Order
//!
//! Metrics in the order of their first sample, points in the order of their first sample;
//! then the metrics that only hold staleness markers (markers in the order the series were
//! first seen); then the `report` gauges (`up`, `scrape_duration_seconds`, …), double values at
//! `now_ns` without attributes. The output depends on nothing but the inputs and the state.
//!
//! Cost: one pass over the samples, a hash per sample, label sets moved (not copied) into the
//! points; a series' label set is copied into the state once, when it is first seen.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, summary_data_point, AggregationTemporality,
    DataPointFlags, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::exposition::MetricType;

/// The instrumentation scope of everything the receiver produces.
pub const SCOPE_NAME: &str = "otelgw/receiver/prometheus";

/// The key in `Metric.metadata` that carries the Prometheus type.
pub const TYPE_METADATA_KEY: &str = "prometheus.type";

const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;
const NS_PER_MS: u64 = 1_000_000;

/// One sample after target labels and metric_relabel_configs were applied, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Scraped {
    /// Its family's name as the parser gave it (histogram `rpc_seconds` for
    /// `rpc_seconds_bucket`; for OpenMetrics counters without `_total`).
    pub family: String,
    pub kind: MetricType,
    pub help: String,
    /// From `# UNIT`, empty when none.
    pub unit: String,
    /// The sample's own name (`rpc_seconds_bucket`, `http_requests_total`).
    pub name: String,
    /// Sorted by name; includes `job` and `instance`; no `__name__`.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// `None` when the sample had none or honor_timestamps is off.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<ScrapedExemplar>,
}

/// An OpenMetrics exemplar of a [`Scraped`] sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedExemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Who was scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMeta {
    pub job: String,
    pub instance: String,
    pub scheme: String,
    /// The target's other labels (not `job`/`instance`), sorted: the attributes of the
    /// scrape's own series (`up`, …), as Prometheus puts every target label on them.
    pub labels: Vec<(String, String)>,
}

/// Per-target state kept across scrapes (bounded by what the last scrape had): the series of
/// the last successful scrape, with their start times and last value or count.
#[derive(Default)]
pub struct TargetState {
    hasher: foldhash::fast::RandomState,
    series: Vec<Series>,
    index: IdMap<usize>,
    generation: u64,
}

/// A remembered series.
#[derive(Clone)]
struct Series {
    hash: u64,
    meta: Arc<Meta>,
    attrs: Vec<(String, String)>,
    start_ns: u64,
    /// The counter's value or the histogram's/summary's count, for reset detection.
    last: Option<f64>,
    /// The generation (scrape) that last had it.
    seen: u64,
    /// Already ended with a staleness marker by a failed scrape: kept (with its start time and
    /// last value) until the next successful scrape, so a target that comes back does not
    /// restart every counter's window; a series that does not come back is then dropped
    /// without a second marker.
    marked: bool,
    /// Its last sample carried its own timestamp: Prometheus tracks no staleness for those
    /// (a marker at the scrape's time could be older than the sample), so it gets no marker.
    explicit: bool,
}

/// What a metric is, shared by its series.
struct Meta {
    name: String,
    kind: MetricType,
    help: String,
    unit: String,
}

impl TargetState {
    /// One successful scrape → one ResourceMetrics. `report` are the scrape's own gauges (`up`,
    /// `scrape_duration_seconds`, `scrape_samples_scraped`, …) added as gauges without point
    /// attributes. `now_ns` is the scrape's start time.
    pub fn translate(
        &mut self,
        target: &TargetMeta,
        samples: Vec<Scraped>,
        report: &[(&str, f64)],
        now_ns: u64,
    ) -> ResourceMetrics {
        self.generation = self.generation.wrapping_add(1);
        let mut info: Vec<(String, String)> = Vec::new();
        let mut grouping = Grouping::default();
        for s in samples {
            if is_target_info(&s) {
                for (k, v) in s.labels {
                    if k != "job" && k != "instance" && !v.is_empty() {
                        upsert(&mut info, k, v);
                    }
                }
                continue;
            }
            grouping.add(&self.hasher, s);
        }
        let mut out = Output::with_capacity(grouping.families.len() + report.len());
        for family in grouping.families {
            self.build(family, now_ns, &mut out);
        }
        let gone = self.sweep();
        out.markers(gone, now_ns);
        out.report(report, &target.labels, now_ns);
        assemble(target, info, out.metrics)
    }

    /// A failed scrape: `report` (with up = 0) plus one point flagged NoRecordedValue
    /// (flags = 1) for every series the previous scrape had, with its metric type. The state
    /// keeps their start times until the next successful scrape (the Collector keeps its
    /// adjuster state across staleness too): a target that is briefly down does not restart
    /// every counter, a counter that went down meanwhile is still a reset.
    pub fn fail(
        &mut self,
        target: &TargetMeta,
        report: &[(&str, f64)],
        now_ns: u64,
    ) -> ResourceMetrics {
        self.generation = self.generation.wrapping_add(1);
        let gone = self.mark();
        let mut out = Output::with_capacity(report.len() + 8);
        out.markers(gone, now_ns);
        out.report(report, &target.labels, now_ns);
        assemble(target, Vec::new(), out.metrics)
    }

    /// The target went away (service discovery no longer lists it): every series of the
    /// previous scrape and the scrape's own series named in `report` (`up`, …) get one point
    /// flagged NoRecordedValue, as Prometheus marks a removed target's series stale.
    pub fn end(&mut self, target: &TargetMeta, report: &[&str], now_ns: u64) -> ResourceMetrics {
        let mut rm = self.fail(target, &[], now_ns);
        // the target is gone for good: nothing to keep
        self.series.clear();
        self.index.clear();
        let stale: Vec<Metric> = report
            .iter()
            .map(|name| Metric {
                name: (*name).to_string(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint {
                        attributes: attributes(target.labels.clone()),
                        time_unix_nano: now_ns,
                        flags: NO_RECORDED_VALUE,
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            })
            .collect();
        if let Some(scope) = rm.scope_metrics.first_mut() {
            scope.metrics.extend(stale);
        }
        rm
    }

    /// Series currently remembered (for tests and self-metrics).
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Turns one family's points into a metric (none when no point came of it), updating the
    /// series' start times.
    fn build(&mut self, family: Family, now_ns: u64, out: &mut Output) {
        let kind = family.kind;
        let meta = Arc::new(Meta {
            name: family.name,
            kind,
            help: family.help,
            unit: family.unit,
        });
        let mut data = empty_data(kind);
        for mut acc in family.points {
            let time_ns = acc.time_ms.map_or(now_ns, ms_to_ns);
            let created = acc.created.and_then(seconds_to_ns);
            match &mut data {
                metric::Data::Sum(Sum { data_points, .. })
                | metric::Data::Gauge(Gauge { data_points }) => {
                    let Some(value) = acc.value else { continue };
                    let start = self.track(&meta, &acc, time_ns, Some(value), created);
                    data_points.push(NumberDataPoint {
                        attributes: attributes(acc.attrs),
                        start_time_unix_nano: if kind_has_start(kind) { start } else { 0 },
                        time_unix_nano: time_ns,
                        exemplars: acc
                            .exemplar
                            .map(|e| to_exemplar(e, time_ns))
                            .into_iter()
                            .collect(),
                        flags: 0,
                        value: Some(number_data_point::Value::AsDouble(value)),
                    });
                }
                metric::Data::Histogram(Histogram { data_points, .. }) => {
                    if acc.sum.is_none() && acc.count.is_none() && acc.parts.is_empty() {
                        continue;
                    }
                    let (mut point, derived) = histogram_point(&mut acc, time_ns);
                    let count = acc.count.or(derived);
                    point.start_time_unix_nano = self.track(&meta, &acc, time_ns, count, created);
                    point.time_unix_nano = time_ns;
                    point.attributes = attributes(acc.attrs);
                    data_points.push(point);
                }
                metric::Data::Summary(Summary { data_points }) => {
                    if acc.sum.is_none() && acc.count.is_none() && acc.parts.is_empty() {
                        continue;
                    }
                    let start = self.track(&meta, &acc, time_ns, acc.count, created);
                    let mut parts = acc.parts;
                    parts.retain(|p| !p.bound.is_nan());
                    parts.sort_by(|a, b| a.bound.total_cmp(&b.bound));
                    parts.dedup_by(|later, earlier| later.bound == earlier.bound);
                    data_points.push(SummaryDataPoint {
                        attributes: attributes(acc.attrs),
                        start_time_unix_nano: start,
                        time_unix_nano: time_ns,
                        count: acc.count.map_or(0, to_count),
                        sum: acc.sum.unwrap_or(0.0),
                        quantile_values: parts
                            .into_iter()
                            .map(|p| summary_data_point::ValueAtQuantile {
                                quantile: p.bound,
                                value: p.value,
                            })
                            .collect(),
                        flags: 0,
                    });
                }
                metric::Data::ExponentialHistogram(_) => {}
            }
        }
        if point_count(&data) > 0 {
            out.push(&meta, data);
        }
    }

    /// Finds or adds the series of `acc` and returns its start time (see the module docs).
    fn track(
        &mut self,
        meta: &Arc<Meta>,
        acc: &Acc,
        time_ns: u64,
        observed: Option<f64>,
        created_ns: Option<u64>,
    ) -> u64 {
        let series = &self.series;
        let found = self.index.find(acc.hash, |i| {
            series.get(i).is_some_and(|s| {
                s.meta.kind == meta.kind && s.meta.name == meta.name && s.attrs == acc.attrs
            })
        });
        if let Some(s) = found.and_then(|i| self.series.get_mut(i)) {
            let reset = kind_resets(meta.kind)
                && matches!((observed, s.last), (Some(now), Some(before)) if now < before);
            s.start_ns = match created_ns {
                Some(c) => c,
                None if reset => time_ns.saturating_sub(NS_PER_MS),
                None => s.start_ns,
            };
            s.last = observed.or(s.last);
            s.seen = self.generation;
            s.marked = false;
            s.explicit = acc.time_ms.is_some();
            s.meta = Arc::clone(meta);
            return s.start_ns;
        }
        let start_ns = created_ns.unwrap_or(time_ns);
        self.index.insert(acc.hash, self.series.len());
        self.series.push(Series {
            hash: acc.hash,
            meta: Arc::clone(meta),
            attrs: acc.attrs.clone(),
            start_ns,
            last: observed,
            seen: self.generation,
            marked: false,
            explicit: acc.time_ms.is_some(),
        });
        start_ns
    }

    /// Takes out the series the current generation did not see, keeping the others in order.
    fn sweep(&mut self) -> Vec<Series> {
        let generation = self.generation;
        if self.series.iter().all(|s| s.seen == generation) {
            return Vec::new();
        }
        let (kept, gone): (Vec<Series>, Vec<Series>) = std::mem::take(&mut self.series)
            .into_iter()
            .partition(|s| s.seen == generation);
        self.series = kept;
        self.index.clear();
        for (i, s) in self.series.iter().enumerate() {
            self.index.insert(s.hash, i);
        }
        // those a failed scrape already ended need no second marker; explicit-timestamp
        // series get none
        gone.into_iter()
            .filter(|s| !s.marked && !s.explicit)
            .collect()
    }

    /// A failed scrape: every series not yet ended is marked (and returned for its staleness
    /// marker) but kept, with its start time and last value.
    fn mark(&mut self) -> Vec<Series> {
        self.series
            .iter_mut()
            .filter(|s| !s.marked)
            .filter_map(|s| {
                s.marked = true;
                (!s.explicit).then(|| s.clone())
            })
            .collect()
    }
}

/// The metrics of one scrape under construction.
struct Output {
    metrics: Vec<Metric>,
    kinds: Vec<MetricType>,
}

impl Output {
    fn with_capacity(n: usize) -> Output {
        Output {
            metrics: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, meta: &Meta, data: metric::Data) {
        self.metrics.push(Metric {
            name: meta.name.clone(),
            description: meta.help.clone(),
            unit: meta.unit.clone(),
            metadata: vec![kv(TYPE_METADATA_KEY, meta.kind.as_str().to_string())],
            data: Some(data),
        });
        self.kinds.push(meta.kind);
    }

    /// Adds one `NoRecordedValue` point per vanished series: into this scrape's metric of the
    /// same name and type, else into a new one.
    fn markers(&mut self, gone: Vec<Series>, now_ns: u64) {
        if gone.is_empty() {
            return;
        }
        let mut at: HashMap<(String, u8), usize> = self
            .metrics
            .iter()
            .zip(&self.kinds)
            .enumerate()
            .map(|(i, (m, k))| ((m.name.clone(), kind_tag(*k)), i))
            .collect();
        for s in gone {
            let key = (s.meta.name.clone(), kind_tag(s.meta.kind));
            let i = match at.get(&key) {
                Some(&i) => i,
                None => {
                    let i = self.metrics.len();
                    self.push(&s.meta, empty_data(s.meta.kind));
                    at.insert(key, i);
                    i
                }
            };
            let Some(data) = self.metrics.get_mut(i).and_then(|m| m.data.as_mut()) else {
                continue;
            };
            let attributes = attributes(s.attrs);
            let start = if kind_has_start(s.meta.kind) {
                s.start_ns
            } else {
                0
            };
            match data {
                metric::Data::Sum(Sum { data_points, .. })
                | metric::Data::Gauge(Gauge { data_points }) => data_points.push(NumberDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: now_ns,
                    flags: NO_RECORDED_VALUE,
                    ..Default::default()
                }),
                metric::Data::Histogram(Histogram { data_points, .. }) => {
                    data_points.push(HistogramDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: now_ns,
                        flags: NO_RECORDED_VALUE,
                        ..Default::default()
                    })
                }
                metric::Data::Summary(Summary { data_points }) => {
                    data_points.push(SummaryDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: now_ns,
                        flags: NO_RECORDED_VALUE,
                        ..Default::default()
                    })
                }
                metric::Data::ExponentialHistogram(_) => {}
            }
        }
    }

    /// The scrape's own gauges.
    fn report(&mut self, report: &[(&str, f64)], labels: &[(String, String)], now_ns: u64) {
        for (name, value) in report {
            self.metrics.push(Metric {
                name: (*name).to_string(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint {
                        attributes: attributes(labels.to_vec()),
                        time_unix_nano: now_ns,
                        value: Some(number_data_point::Value::AsDouble(*value)),
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            });
            self.kinds.push(MetricType::Gauge);
        }
    }
}

fn assemble(
    target: &TargetMeta,
    info: Vec<(String, String)>,
    metrics: Vec<Metric>,
) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource_attributes(target, info),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: SCOPE_NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The resource of a target (see the module docs); `info` are `target_info`'s labels.
fn resource_attributes(target: &TargetMeta, info: Vec<(String, String)>) -> Vec<KeyValue> {
    let mut attrs: Vec<(String, String)> = Vec::with_capacity(6 + info.len());
    match target.job.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            attrs.push(("service.name".into(), name.into()));
            attrs.push(("service.namespace".into(), namespace.into()));
        }
        _ => attrs.push(("service.name".into(), target.job.clone())),
    }
    attrs.push(("service.instance.id".into(), target.instance.clone()));
    if let Some((host, port)) = split_host_port(&target.instance) {
        attrs.push(("server.address".into(), host.into()));
        attrs.push(("server.port".into(), port.into()));
    }
    if !target.scheme.is_empty() {
        attrs.push(("url.scheme".into(), target.scheme.clone()));
    }
    for (k, v) in info {
        upsert(&mut attrs, k, v);
    }
    attributes(attrs)
}

/// `host:port` or `[v6]:port` with a decimal port that fits 16 bits.
fn split_host_port(instance: &str) -> Option<(&str, &str)> {
    let (host, port) = match instance.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:")?;
            if host.contains(['[', ']']) {
                return None;
            }
            (host, port)
        }
        None => {
            let (host, port) = instance.rsplit_once(':')?;
            if host.contains([':', '[', ']']) {
                return None;
            }
            (host, port)
        }
    };
    let port_ok =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    (port_ok && !host.is_empty() && !host.contains(['/', '@', '?', '#'])).then_some((host, port))
}

fn is_target_info(s: &Scraped) -> bool {
    s.name == "target_info"
        && matches!(
            s.kind,
            MetricType::Info | MetricType::Gauge | MetricType::Unknown
        )
}

/// Sets `k` to `v`, replacing a value `k` already has.
fn upsert(attrs: &mut Vec<(String, String)>, k: String, v: String) {
    match attrs.iter_mut().find(|(name, _)| *name == k) {
        Some(slot) => slot.1 = v,
        None => attrs.push((k, v)),
    }
}

// ---- grouping the samples of one scrape ----

/// What a sample is to its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Value,
    Created,
    Bucket,
    Sum,
    Count,
    Quantile,
}

/// Which name a sample's metric has.
#[derive(Clone, Copy)]
enum NameOf {
    Sample,
    Family,
    /// An OpenMetrics counter's `_created`: the family name + `_total`.
    FamilyTotal,
}

/// A sample's metric and part; `None` for a sample that is no part of its family's type.
fn classify(family: &str, kind: MetricType, name: &str) -> Option<(NameOf, Role)> {
    let suffix = name.strip_prefix(family);
    let part = |parts: &[(&str, Role)]| {
        let suffix = suffix?;
        parts
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|&(_, role)| (NameOf::Family, role))
    };
    match kind {
        MetricType::Counter => match suffix {
            Some("_created") => Some((NameOf::FamilyTotal, Role::Created)),
            _ => Some((NameOf::Sample, Role::Value)),
        },
        MetricType::Histogram => part(&[
            ("_bucket", Role::Bucket),
            ("_sum", Role::Sum),
            ("_count", Role::Count),
            ("_created", Role::Created),
        ]),
        MetricType::GaugeHistogram => part(&[
            ("_bucket", Role::Bucket),
            ("_gsum", Role::Sum),
            ("_gcount", Role::Count),
        ]),
        MetricType::Summary => part(&[
            ("", Role::Quantile),
            ("_sum", Role::Sum),
            ("_count", Role::Count),
            ("_created", Role::Created),
        ]),
        MetricType::Gauge | MetricType::Unknown | MetricType::Info | MetricType::StateSet => {
            Some((NameOf::Sample, Role::Value))
        }
    }
}

/// A bucket (`le`, cumulative count) or a quantile (`quantile`, value).
struct Part {
    bound: f64,
    value: f64,
    exemplar: Option<ScrapedExemplar>,
}

/// One point under construction: the samples of one series.
struct Acc {
    attrs: Vec<(String, String)>,
    hash: u64,
    time_ms: Option<i64>,
    value: Option<f64>,
    created: Option<f64>,
    sum: Option<f64>,
    count: Option<f64>,
    parts: Vec<Part>,
    exemplar: Option<ScrapedExemplar>,
}

/// One metric under construction.
struct Family {
    name: String,
    kind: MetricType,
    help: String,
    unit: String,
    points: Vec<Acc>,
    /// The next family with the same name (and another type).
    next: Option<usize>,
}

#[derive(Default)]
struct Grouping {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    last: Option<usize>,
    /// Series hash → (family, point).
    points: IdMap<(usize, usize)>,
}

impl Grouping {
    fn add(&mut self, hasher: &foldhash::fast::RandomState, s: Scraped) {
        let Scraped {
            family,
            kind,
            help,
            unit,
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
        } = s;
        let Some((name_of, role)) = classify(&family, kind, &name) else {
            return;
        };
        let structural = match kind {
            MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
            MetricType::Summary => Some("quantile"),
            _ => None,
        };
        let wants_bound = matches!(role, Role::Bucket | Role::Quantile);
        let mut bound = None;
        let mut attrs = labels;
        attrs.retain(|(k, v)| {
            if Some(k.as_str()) == structural {
                if wants_bound {
                    bound = v.trim().parse::<f64>().ok();
                }
                return false;
            }
            k != "job" && k != "instance" && !v.is_empty()
        });
        if wants_bound && bound.is_none() {
            return;
        }
        let metric_name: Cow<'_, str> = match name_of {
            NameOf::Sample => Cow::Borrowed(&name),
            NameOf::Family => Cow::Borrowed(&family),
            NameOf::FamilyTotal => Cow::Owned(format!("{family}_total")),
        };
        let hash = hasher.hash_one((&*metric_name, kind_tag(kind), &attrs));
        let fi = self.family_index(&metric_name, kind, help, unit);
        let families = &self.families;
        let found = self.points.find(hash, |(f, p)| {
            f == fi
                && families
                    .get(f)
                    .and_then(|f| f.points.get(p))
                    .is_some_and(|p| p.attrs == attrs)
        });
        let Some(f) = self.families.get_mut(fi) else {
            return;
        };
        let pi = match found {
            Some((_, pi)) => pi,
            None => {
                let pi = f.points.len();
                self.points.insert(hash, (fi, pi));
                f.points.push(Acc {
                    attrs,
                    hash,
                    time_ms: None,
                    value: None,
                    created: None,
                    sum: None,
                    count: None,
                    parts: Vec::new(),
                    exemplar: None,
                });
                pi
            }
        };
        let Some(acc) = f.points.get_mut(pi) else {
            return;
        };
        match role {
            Role::Created => {
                acc.created = Some(value);
                return;
            }
            Role::Value => {
                acc.value = Some(if kind == MetricType::Info { 1.0 } else { value });
                if exemplar.is_some() {
                    acc.exemplar = exemplar;
                }
            }
            Role::Sum => acc.sum = Some(value),
            Role::Count => {
                acc.count = Some(value);
                if timestamp_ms.is_some() {
                    acc.time_ms = timestamp_ms;
                }
            }
            Role::Bucket | Role::Quantile => acc.parts.push(Part {
                bound: bound.unwrap_or(f64::NAN),
                value,
                exemplar: if role == Role::Bucket { exemplar } else { None },
            }),
        }
        if acc.time_ms.is_none() {
            acc.time_ms = timestamp_ms;
        }
    }

    /// The family of `name` and `kind`, added when new.
    fn family_index(&mut self, name: &str, kind: MetricType, help: String, unit: String) -> usize {
        if let Some(i) = self.last {
            if self
                .families
                .get(i)
                .is_some_and(|f| f.kind == kind && f.name == name)
            {
                return i;
            }
        }
        let mut at = self.by_name.get(name).copied();
        let mut tail = None;
        while let Some(i) = at {
            let Some(f) = self.families.get(i) else { break };
            if f.kind == kind {
                self.last = Some(i);
                return i;
            }
            tail = Some(i);
            at = f.next;
        }
        let i = self.families.len();
        self.families.push(Family {
            name: name.to_string(),
            kind,
            help,
            unit,
            points: Vec::new(),
            next: None,
        });
        match tail.and_then(|t| self.families.get_mut(t)) {
            Some(t) => t.next = Some(i),
            None => {
                self.by_name.insert(name.to_string(), i);
            }
        }
        self.last = Some(i);
        i
    }
}

/// A map from precomputed 64-bit hashes to indices: the first entry of a hash in a `HashMap`
/// that does not hash again, entries of a hash already there (collisions, rare) in a list.
struct IdMap<V> {
    first: HashMap<u64, V, BuildHasherDefault<IdHasher>>,
    more: Vec<(u64, V)>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            first: HashMap::default(),
            more: Vec::new(),
        }
    }
}

impl<V: Copy> IdMap<V> {
    fn find(&self, hash: u64, mut eq: impl FnMut(V) -> bool) -> Option<V> {
        let &v = self.first.get(&hash)?;
        if eq(v) {
            return Some(v);
        }
        self.more
            .iter()
            .find(|&&(h, v)| h == hash && eq(v))
            .map(|&(_, v)| v)
    }

    fn insert(&mut self, hash: u64, v: V) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.more.push((hash, v)),
        }
    }

    fn clear(&mut self) {
        self.first.clear();
        self.more.clear();
    }
}

/// Passes a `u64` key (already a hash) through.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed; fold anything else in anyway
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

// ---- points ----

/// A histogram point of `acc` (bounds, counts, sum, count, exemplars; no attributes or times
/// yet), and the `+Inf` bucket's count when it stood in for a missing `_count`.
fn histogram_point(acc: &mut Acc, time_ns: u64) -> (HistogramDataPoint, Option<f64>) {
    let mut parts = std::mem::take(&mut acc.parts);
    parts.retain(|p| !p.bound.is_nan() && p.bound != f64::NEG_INFINITY);
    parts.sort_by(|a, b| a.bound.total_cmp(&b.bound));
    parts.dedup_by(|later, earlier| later.bound == earlier.bound);
    let inf = parts
        .last()
        .filter(|p| p.bound == f64::INFINITY)
        .map(|p| p.value);
    let mut bounds = Vec::with_capacity(parts.len());
    let mut counts = Vec::with_capacity(parts.len() + 1);
    let mut exemplars = Vec::new();
    let mut below = 0u64;
    let has_buckets = !parts.is_empty();
    for p in parts {
        if p.bound.is_finite() {
            let cumulative = to_count(p.value).max(below);
            bounds.push(p.bound);
            counts.push(cumulative - below);
            below = cumulative;
        }
        if let Some(e) = p.exemplar {
            exemplars.push(to_exemplar(e, time_ns));
        }
    }
    let derived = acc.count.is_none().then_some(inf).flatten();
    let count = acc.count.or(inf).map_or(below, to_count);
    if has_buckets {
        counts.push(count.saturating_sub(below));
    }
    let point = HistogramDataPoint {
        count,
        sum: acc.sum,
        bucket_counts: counts,
        explicit_bounds: bounds,
        exemplars,
        ..Default::default()
    };
    (point, derived)
}

fn to_exemplar(e: ScrapedExemplar, point_ns: u64) -> Exemplar {
    let mut out = Exemplar {
        time_unix_nano: e.timestamp_ms.map_or(point_ns, ms_to_ns),
        value: Some(exemplar::Value::AsDouble(e.value)),
        ..Default::default()
    };
    for (k, v) in e.labels {
        if v.is_empty() {
            continue;
        }
        if k.eq_ignore_ascii_case("trace_id") && out.trace_id.is_empty() {
            if let Some(id) = decode_id(&v, 16) {
                out.trace_id = id;
                continue;
            }
        } else if k.eq_ignore_ascii_case("span_id") && out.span_id.is_empty() {
            if let Some(id) = decode_id(&v, 8) {
                out.span_id = id;
                continue;
            }
        }
        out.filtered_attributes.push(kv(&k, v));
    }
    out
}

/// `len` bytes from exactly `2 * len` hex digits, not all zero.
fn decode_id(hex: &str, len: usize) -> Option<Vec<u8>> {
    if hex.len() != 2 * len {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(len);
    for pair in hex.as_bytes().chunks_exact(2) {
        let &[hi, lo] = pair else { return None };
        out.push(nibble(hi)? << 4 | nibble(lo)?);
    }
    out.iter().any(|&b| b != 0).then_some(out)
}

fn empty_data(kind: MetricType) -> metric::Data {
    let cumulative = AggregationTemporality::Cumulative as i32;
    match kind {
        MetricType::Counter | MetricType::Info | MetricType::StateSet => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
            is_monotonic: kind == MetricType::Counter,
        }),
        MetricType::Gauge | MetricType::Unknown => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        MetricType::Histogram | MetricType::GaugeHistogram => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
        }),
        MetricType::Summary => metric::Data::Summary(Summary {
            data_points: Vec::new(),
        }),
    }
}

fn point_count(data: &metric::Data) -> usize {
    match data {
        metric::Data::Sum(s) => s.data_points.len(),
        metric::Data::Gauge(g) => g.data_points.len(),
        metric::Data::Histogram(h) => h.data_points.len(),
        metric::Data::Summary(s) => s.data_points.len(),
        metric::Data::ExponentialHistogram(h) => h.data_points.len(),
    }
}

/// Types whose points have a start time.
fn kind_has_start(kind: MetricType) -> bool {
    !matches!(kind, MetricType::Gauge | MetricType::Unknown)
}

/// Types whose decrease is a reset.
fn kind_resets(kind: MetricType) -> bool {
    matches!(
        kind,
        MetricType::Counter | MetricType::Histogram | MetricType::Summary
    )
}

fn kind_tag(kind: MetricType) -> u8 {
    match kind {
        MetricType::Counter => 0,
        MetricType::Gauge => 1,
        MetricType::Histogram => 2,
        MetricType::GaugeHistogram => 3,
        MetricType::Summary => 4,
        MetricType::Info => 5,
        MetricType::StateSet => 6,
        MetricType::Unknown => 7,
    }
}

fn attributes(labels: Vec<(String, String)>) -> Vec<KeyValue> {
    labels.into_iter().map(|(k, v)| kv(&k, v)).collect()
}

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).map_or(0, |ms| ms.saturating_mul(NS_PER_MS))
}

/// Float seconds (`_created`) to nanoseconds; `None` for nothing usable (≤ 0, NaN, ±Inf).
fn seconds_to_ns(seconds: f64) -> Option<u64> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return None;
    }
    let whole = seconds.trunc();
    let nanos = ((seconds - whole) * 1e9).round() as u64;
    Some(
        (whole as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(nanos),
    )
}

/// A count from a float: truncated, negative and NaN as 0, saturating.
fn to_count(v: f64) -> u64 {
    if v > 0.0 {
        v as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    fn labels(l: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = l
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.push(("job".into(), "node".into()));
        v.push(("instance".into(), "10.0.0.1:9100".into()));
        v.sort();
        v
    }

    fn s(family: &str, kind: MetricType, name: &str, l: &[(&str, &str)], value: f64) -> Scraped {
        Scraped {
            family: family.into(),
            kind,
            help: String::new(),
            unit: String::new(),
            name: name.into(),
            labels: labels(l),
            value,
            timestamp_ms: None,
            exemplar: None,
        }
    }

    fn counter(name: &str, l: &[(&str, &str)], value: f64) -> Scraped {
        s(name, MetricType::Counter, name, l, value)
    }

    fn gauge_s(name: &str, l: &[(&str, &str)], value: f64) -> Scraped {
        s(name, MetricType::Gauge, name, l, value)
    }

    /// A text-format histogram of `family`: (le, cumulative) buckets, sum, count.
    fn hist(
        family: &str,
        l: &[(&str, &str)],
        buckets: &[(&str, f64)],
        sum: f64,
        count: f64,
    ) -> Vec<Scraped> {
        let mut out = Vec::new();
        for (le, c) in buckets {
            let mut with_le = l.to_vec();
            with_le.push(("le", le));
            out.push(s(
                family,
                MetricType::Histogram,
                &format!("{family}_bucket"),
                &with_le,
                *c,
            ));
        }
        out.push(s(
            family,
            MetricType::Histogram,
            &format!("{family}_sum"),
            l,
            sum,
        ));
        out.push(s(
            family,
            MetricType::Histogram,
            &format!("{family}_count"),
            l,
            count,
        ));
        out
    }

    fn target() -> TargetMeta {
        TargetMeta {
            job: "node".into(),
            instance: "10.0.0.1:9100".into(),
            scheme: "http".into(),
            labels: vec![],
        }
    }

    fn run(state: &mut TargetState, samples: Vec<Scraped>, now: u64) -> ResourceMetrics {
        state.translate(&target(), samples, &[], now)
    }

    fn metrics(rm: &ResourceMetrics) -> &[Metric] {
        &rm.scope_metrics[0].metrics
    }

    fn names(rm: &ResourceMetrics) -> Vec<&str> {
        metrics(rm).iter().map(|m| m.name.as_str()).collect()
    }

    fn find<'a>(rm: &'a ResourceMetrics, name: &str) -> &'a Metric {
        metrics(rm)
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no metric {name} in {:?}", names(rm)))
    }

    fn sum_of(m: &Metric) -> &Sum {
        match &m.data {
            Some(metric::Data::Sum(s)) => s,
            other => panic!("{} is not a sum: {other:?}", m.name),
        }
    }

    fn gauge_of(m: &Metric) -> &Gauge {
        match &m.data {
            Some(metric::Data::Gauge(g)) => g,
            other => panic!("{} is not a gauge: {other:?}", m.name),
        }
    }

    fn hist_of(m: &Metric) -> &Histogram {
        match &m.data {
            Some(metric::Data::Histogram(h)) => h,
            other => panic!("{} is not a histogram: {other:?}", m.name),
        }
    }

    fn summary_of(m: &Metric) -> &Summary {
        match &m.data {
            Some(metric::Data::Summary(s)) => s,
            other => panic!("{} is not a summary: {other:?}", m.name),
        }
    }

    fn strings(kvs: &[KeyValue]) -> Vec<(String, String)> {
        kvs.iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => panic!("{}: not a string: {other:?}", kv.key),
                };
                (kv.key.clone(), v)
            })
            .collect()
    }

    fn pairs(l: &[(&str, &str)]) -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn value(p: &NumberDataPoint) -> Option<f64> {
        match p.value {
            Some(number_data_point::Value::AsDouble(v)) => Some(v),
            Some(number_data_point::Value::AsInt(v)) => Some(v as f64),
            None => None,
        }
    }

    fn resource(rm: &ResourceMetrics) -> Vec<(String, String)> {
        strings(&rm.resource.as_ref().unwrap().attributes)
    }

    const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

    #[test]
    fn a_text_counter_is_a_monotonic_cumulative_sum_named_as_its_sample() {
        let mut st = TargetState::default();
        let mut c = counter(
            "http_requests_total",
            &[("code", "200"), ("method", "get")],
            7.0,
        );
        c.help = "Requests.".into();
        let rm = run(&mut st, vec![c], NOW);
        let m = find(&rm, "http_requests_total");
        assert_eq!(m.description, "Requests.");
        assert_eq!(m.unit, "");
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "counter")])
        );
        let sum = sum_of(m);
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, CUMULATIVE);
        let p = &sum.data_points[0];
        assert_eq!(
            strings(&p.attributes),
            pairs(&[("code", "200"), ("method", "get")])
        );
        assert_eq!(value(p), Some(7.0));
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano, p.flags),
            (NOW, NOW, 0)
        );
        assert_eq!(st.series(), 1);
    }

    #[test]
    fn an_openmetrics_counter_takes_total_and_created_as_its_start() {
        let mut st = TargetState::default();
        let mut total = s("rpc", MetricType::Counter, "rpc_total", &[("a", "1")], 5.0);
        total.unit = "".into();
        let created = s(
            "rpc",
            MetricType::Counter,
            "rpc_created",
            &[("a", "1")],
            1_600_000_000.25,
        );
        let rm = run(&mut st, vec![created, total], NOW);
        assert_eq!(names(&rm), ["rpc_total"]);
        let p = &sum_of(find(&rm, "rpc_total")).data_points[0];
        assert_eq!(p.start_time_unix_nano, 1_600_000_000 * SEC + 250_000_000);
        assert_eq!(p.time_unix_nano, NOW);
        assert_eq!(value(p), Some(5.0));
        // the next scrape without `_created` keeps it
        let rm = run(
            &mut st,
            vec![s(
                "rpc",
                MetricType::Counter,
                "rpc_total",
                &[("a", "1")],
                6.0,
            )],
            NOW + 10 * SEC,
        );
        let p = &sum_of(find(&rm, "rpc_total")).data_points[0];
        assert_eq!(p.start_time_unix_nano, 1_600_000_000 * SEC + 250_000_000);
    }

    #[test]
    fn a_counter_with_only_created_makes_no_metric() {
        let mut st = TargetState::default();
        let rm = run(
            &mut st,
            vec![s("rpc", MetricType::Counter, "rpc_created", &[], 1e9)],
            NOW,
        );
        assert!(metrics(&rm).is_empty());
        assert_eq!(st.series(), 0);
    }

    #[test]
    fn gauges_and_unknown_are_gauges_without_start_time() {
        let mut st = TargetState::default();
        let mut g = gauge_s("temp_celsius", &[("room", "a")], 21.5);
        g.unit = "celsius".into();
        g.timestamp_ms = Some(1_650_000_000_123);
        let u = s("mystery", MetricType::Unknown, "mystery", &[], 3.0);
        let rm = run(&mut st, vec![g, u], NOW);
        assert_eq!(names(&rm), ["temp_celsius", "mystery"]);
        let m = find(&rm, "temp_celsius");
        assert_eq!(m.unit, "celsius");
        let p = &gauge_of(m).data_points[0];
        assert_eq!(strings(&p.attributes), pairs(&[("room", "a")]));
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (0, 1_650_000_000_123 * 1_000_000)
        );
        assert_eq!(value(p), Some(21.5));
        let m = find(&rm, "mystery");
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "unknown")])
        );
        let p = &gauge_of(m).data_points[0];
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano, value(p)),
            (0, NOW, Some(3.0))
        );
        assert!(p.attributes.is_empty());
    }

    #[test]
    fn a_histogram_merges_buckets_sum_and_count_per_label_set() {
        let mut st = TargetState::default();
        let buckets = [("0.1", 1.0), ("0.5", 3.0), ("+Inf", 4.0)];
        let rm = run(
            &mut st,
            hist("rpc_seconds", &[("m", "get")], &buckets, 1.25, 4.0),
            NOW,
        );
        assert_eq!(names(&rm), ["rpc_seconds"]);
        let m = find(&rm, "rpc_seconds");
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "histogram")])
        );
        let h = hist_of(m);
        assert_eq!(h.aggregation_temporality, CUMULATIVE);
        let p = &h.data_points[0];
        assert_eq!(strings(&p.attributes), pairs(&[("m", "get")]));
        assert_eq!(p.explicit_bounds, [0.1, 0.5]);
        assert_eq!(p.bucket_counts, [1, 2, 1]);
        assert_eq!((p.count, p.sum), (4, Some(1.25)));
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano, p.flags),
            (NOW, NOW, 0)
        );
        assert_eq!((p.min, p.max), (None, None));
        assert_eq!(st.series(), 1);
    }

    #[test]
    fn histogram_series_need_not_be_contiguous_nor_buckets_sorted() {
        let mut st = TargetState::default();
        let a = hist(
            "h",
            &[("s", "a")],
            &[("+Inf", 5.0), ("1", 2.0), ("0.5", 1.0)],
            3.0,
            5.0,
        );
        let b = hist(
            "h",
            &[("s", "b")],
            &[("0.5", 0.0), ("1", 1.0), ("+Inf", 1.0)],
            0.7,
            1.0,
        );
        // interleave a and b sample by sample
        let mixed: Vec<Scraped> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
        let rm = run(&mut st, mixed, NOW);
        let h = hist_of(find(&rm, "h"));
        assert_eq!(h.data_points.len(), 2);
        let (pa, pb) = (&h.data_points[0], &h.data_points[1]);
        assert_eq!(strings(&pa.attributes), pairs(&[("s", "a")]));
        assert_eq!(
            (pa.explicit_bounds.as_slice(), pa.bucket_counts.as_slice()),
            (&[0.5, 1.0][..], &[1, 1, 3][..])
        );
        assert_eq!((pa.count, pa.sum), (5, Some(3.0)));
        assert_eq!(strings(&pb.attributes), pairs(&[("s", "b")]));
        assert_eq!(pb.bucket_counts, [0, 1, 0]);
        assert_eq!((pb.count, pb.sum), (1, Some(0.7)));
        assert_eq!(st.series(), 2);
    }

    #[test]
    fn a_histogram_missing_pieces_still_gives_a_point() {
        let mut st = TargetState::default();
        let mut samples = Vec::new();
        // no _count: the +Inf bucket is the count
        let mut no_count = hist("a", &[], &[("1", 2.0), ("+Inf", 3.0)], 4.0, 0.0);
        no_count.pop();
        samples.extend(no_count);
        // no +Inf and no _count: the last cumulative count is the count
        let mut no_inf = hist("b", &[], &[("1", 2.0), ("2", 5.0)], 4.0, 0.0);
        no_inf.pop();
        samples.extend(no_inf);
        // only _sum
        samples.push(s("c", MetricType::Histogram, "c_sum", &[], 9.0));
        // only _count, and a bucket without le (dropped)
        samples.push(s("d", MetricType::Histogram, "d_count", &[], 6.0));
        samples.push(s("d", MetricType::Histogram, "d_bucket", &[], 6.0));
        // decreasing buckets count 0; a count below the buckets leaves 0 for the last
        samples.extend(hist(
            "e",
            &[],
            &[("1", 5.0), ("2", 3.0), ("3", 6.0), ("+Inf", 6.0)],
            1.0,
            4.0,
        ));
        // a bare sample of a histogram family is no part of it
        samples.push(s("f", MetricType::Histogram, "f", &[], 1.0));
        let rm = run(&mut st, samples, NOW);
        assert_eq!(names(&rm), ["a", "b", "c", "d", "e"]);
        let p = &hist_of(find(&rm, "a")).data_points[0];
        assert_eq!(
            (p.explicit_bounds.as_slice(), p.bucket_counts.as_slice()),
            (&[1.0][..], &[2, 1][..])
        );
        assert_eq!((p.count, p.sum), (3, Some(4.0)));
        let p = &hist_of(find(&rm, "b")).data_points[0];
        assert_eq!(
            (p.explicit_bounds.as_slice(), p.bucket_counts.as_slice()),
            (&[1.0, 2.0][..], &[2, 3, 0][..])
        );
        assert_eq!(p.count, 5);
        let p = &hist_of(find(&rm, "c")).data_points[0];
        assert!(p.explicit_bounds.is_empty() && p.bucket_counts.is_empty());
        assert_eq!((p.count, p.sum), (0, Some(9.0)));
        let p = &hist_of(find(&rm, "d")).data_points[0];
        assert!(p.explicit_bounds.is_empty() && p.bucket_counts.is_empty());
        assert_eq!((p.count, p.sum), (6, None));
        let p = &hist_of(find(&rm, "e")).data_points[0];
        assert_eq!(p.explicit_bounds, [1.0, 2.0, 3.0]);
        assert_eq!(p.bucket_counts, [5, 0, 1, 0]);
        assert_eq!(p.count, 4);
    }

    #[test]
    fn a_summary_has_sorted_quantiles_sum_count_and_created() {
        let mut st = TargetState::default();
        let fam = "rpc_latency";
        let samples = vec![
            s(
                fam,
                MetricType::Summary,
                fam,
                &[("quantile", "0.99"), ("x", "1")],
                0.9,
            ),
            s(
                fam,
                MetricType::Summary,
                fam,
                &[("quantile", "0.5"), ("x", "1")],
                0.2,
            ),
            s(
                fam,
                MetricType::Summary,
                "rpc_latency_sum",
                &[("x", "1")],
                12.5,
            ),
            s(
                fam,
                MetricType::Summary,
                "rpc_latency_count",
                &[("x", "1")],
                40.0,
            ),
            s(
                fam,
                MetricType::Summary,
                "rpc_latency_created",
                &[("x", "1")],
                1_000.0,
            ),
            // no _sum here
            s(
                fam,
                MetricType::Summary,
                "rpc_latency_count",
                &[("x", "2")],
                3.0,
            ),
            // a quantile sample without quantile is dropped
            s(fam, MetricType::Summary, fam, &[("x", "3")], 1.0),
        ];
        let rm = run(&mut st, samples, NOW);
        let m = find(&rm, fam);
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "summary")])
        );
        let sm = summary_of(m);
        assert_eq!(sm.data_points.len(), 2);
        let p = &sm.data_points[0];
        assert_eq!(strings(&p.attributes), pairs(&[("x", "1")]));
        let q: Vec<(f64, f64)> = p
            .quantile_values
            .iter()
            .map(|q| (q.quantile, q.value))
            .collect();
        assert_eq!(q, [(0.5, 0.2), (0.99, 0.9)]);
        assert_eq!((p.count, p.sum), (40, 12.5));
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (1_000 * SEC, NOW)
        );
        let p = &sm.data_points[1];
        assert_eq!(strings(&p.attributes), pairs(&[("x", "2")]));
        assert_eq!((p.count, p.sum), (3, 0.0));
        assert!(p.quantile_values.is_empty());
        assert_eq!(p.start_time_unix_nano, NOW);
    }

    #[test]
    fn a_gauge_histogram_is_a_cumulative_histogram_without_resets() {
        let mut st = TargetState::default();
        let gh = |inf: f64, gcount: f64| {
            vec![
                s(
                    "queue",
                    MetricType::GaugeHistogram,
                    "queue_bucket",
                    &[("le", "1")],
                    inf - 1.0,
                ),
                s(
                    "queue",
                    MetricType::GaugeHistogram,
                    "queue_bucket",
                    &[("le", "+Inf")],
                    inf,
                ),
                s("queue", MetricType::GaugeHistogram, "queue_gsum", &[], 2.5),
                s(
                    "queue",
                    MetricType::GaugeHistogram,
                    "queue_gcount",
                    &[],
                    gcount,
                ),
            ]
        };
        let rm = run(&mut st, gh(3.0, 3.0), NOW);
        let m = find(&rm, "queue");
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "gaugehistogram")])
        );
        let h = hist_of(m);
        assert_eq!(h.aggregation_temporality, CUMULATIVE);
        let p = &h.data_points[0];
        assert_eq!(
            (p.explicit_bounds.as_slice(), p.bucket_counts.as_slice()),
            (&[1.0][..], &[2, 1][..])
        );
        assert_eq!(
            (p.count, p.sum, p.start_time_unix_nano),
            (3, Some(2.5), NOW)
        );
        // fewer items later is no reset
        let rm = run(&mut st, gh(2.0, 2.0), NOW + SEC);
        let p = &hist_of(find(&rm, "queue")).data_points[0];
        assert_eq!(
            (p.count, p.start_time_unix_nano, p.time_unix_nano),
            (2, NOW, NOW + SEC)
        );
    }

    #[test]
    fn info_is_a_non_monotonic_sum_of_one_with_its_labels() {
        let mut st = TargetState::default();
        let i = s(
            "build",
            MetricType::Info,
            "build_info",
            &[("version", "1.2")],
            1.0,
        );
        let rm = run(&mut st, vec![i], NOW);
        let m = find(&rm, "build_info");
        assert_eq!(strings(&m.metadata), pairs(&[("prometheus.type", "info")]));
        let sum = sum_of(m);
        assert!(!sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, CUMULATIVE);
        let p = &sum.data_points[0];
        assert_eq!(strings(&p.attributes), pairs(&[("version", "1.2")]));
        assert_eq!(
            (value(p), p.start_time_unix_nano, p.time_unix_nano),
            (Some(1.0), NOW, NOW)
        );
    }

    #[test]
    fn a_stateset_is_a_non_monotonic_sum_with_one_point_per_state() {
        let mut st = TargetState::default();
        let ss =
            |state: &str, v: f64| s("door", MetricType::StateSet, "door", &[("door", state)], v);
        let rm = run(&mut st, vec![ss("open", 0.0), ss("closed", 1.0)], NOW);
        let m = find(&rm, "door");
        assert_eq!(
            strings(&m.metadata),
            pairs(&[("prometheus.type", "stateset")])
        );
        let sum = sum_of(m);
        assert!(!sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, CUMULATIVE);
        let got: Vec<_> = sum
            .data_points
            .iter()
            .map(|p| (strings(&p.attributes), value(p)))
            .collect();
        assert_eq!(
            got,
            [
                (pairs(&[("door", "open")]), Some(0.0)),
                (pairs(&[("door", "closed")]), Some(1.0))
            ]
        );
    }

    #[test]
    fn the_resource_comes_from_job_instance_and_scheme() {
        let mut st = TargetState::default();
        let rm = run(&mut st, vec![], NOW);
        assert_eq!(
            resource(&rm),
            pairs(&[
                ("service.name", "node"),
                ("service.instance.id", "10.0.0.1:9100"),
                ("server.address", "10.0.0.1"),
                ("server.port", "9100"),
                ("url.scheme", "http"),
            ])
        );
        let scope = rm.scope_metrics[0].scope.as_ref().unwrap();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            (SCOPE_NAME, env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(SCOPE_NAME, "otelgw/receiver/prometheus");

        let t = TargetMeta {
            job: "team/api".into(),
            instance: "[::1]:9100".into(),
            scheme: "https".into(),
            labels: vec![],
        };
        let rm = st.translate(&t, vec![], &[], NOW);
        assert_eq!(
            resource(&rm),
            pairs(&[
                ("service.name", "api"),
                ("service.namespace", "team"),
                ("service.instance.id", "[::1]:9100"),
                ("server.address", "::1"),
                ("server.port", "9100"),
                ("url.scheme", "https"),
            ])
        );
        // no port, a URL, a bare v6 address: no server.*; a job with an empty side is not split
        for (job, instance) in [
            ("/x", "db.local"),
            ("x/", "https://example.org"),
            ("a/b/c", "::1"),
            ("j", "h:99999"),
        ] {
            let t = TargetMeta {
                job: job.into(),
                instance: instance.into(),
                scheme: String::new(),
                labels: vec![],
            };
            let got = resource(&st.translate(&t, vec![], &[], NOW));
            let want_name = if job == "a/b/c" { "b/c" } else { job };
            assert_eq!(
                got[0],
                ("service.name".to_string(), want_name.to_string()),
                "{job}"
            );
            assert!(
                got.iter()
                    .all(|(k, _)| !k.starts_with("server.") && k != "url.scheme"),
                "{instance}: {got:?}"
            );
        }
        assert_eq!(
            split_host_port("example.org:80"),
            Some(("example.org", "80"))
        );
        assert_eq!(
            split_host_port("[fe80::1%eth0]:80"),
            Some(("fe80::1%eth0", "80"))
        );
        assert_eq!(split_host_port("h:+80"), None);
        assert_eq!(split_host_port(":80"), None);
    }

    #[test]
    fn target_info_becomes_resource_attributes_and_no_metric() {
        let mut st = TargetState::default();
        let om = s(
            "target",
            MetricType::Info,
            "target_info",
            &[("env", "prod"), ("region", "eu")],
            1.0,
        );
        let text = gauge_s(
            "target_info",
            &[("url.scheme", "override"), ("zone", "b")],
            1.0,
        );
        let rm = run(&mut st, vec![om, counter("c_total", &[], 1.0), text], NOW);
        assert_eq!(names(&rm), ["c_total"]);
        assert_eq!(
            resource(&rm),
            pairs(&[
                ("service.name", "node"),
                ("service.instance.id", "10.0.0.1:9100"),
                ("server.address", "10.0.0.1"),
                ("server.port", "9100"),
                ("url.scheme", "override"),
                ("env", "prod"),
                ("region", "eu"),
                ("zone", "b"),
            ])
        );
        assert_eq!(st.series(), 1);
        // a counter named target_info is a metric
        let rm = run(&mut st, vec![counter("target_info", &[], 1.0)], NOW);
        assert_eq!(names(&rm), ["target_info", "c_total"]);
        // a failed scrape has the resource without them
        let rm = st.fail(&target(), &[("up", 0.0)], NOW);
        assert_eq!(resource(&rm).len(), 5);
    }

    #[test]
    fn a_first_seen_start_is_kept_and_a_counter_reset_moves_it() {
        let mut st = TargetState::default();
        let rm = run(&mut st, vec![counter("c_total", &[], 10.0)], NOW);
        assert_eq!(
            sum_of(find(&rm, "c_total")).data_points[0].start_time_unix_nano,
            NOW
        );
        let rm = run(&mut st, vec![counter("c_total", &[], 12.0)], NOW + 15 * SEC);
        let p = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (NOW, NOW + 15 * SEC)
        );
        // a smaller value: reset, start 1 ms before this point
        let rm = run(&mut st, vec![counter("c_total", &[], 3.0)], NOW + 30 * SEC);
        let p = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!(p.start_time_unix_nano, NOW + 30 * SEC - 1_000_000);
        // and kept from then on; an equal value is no reset
        let rm = run(&mut st, vec![counter("c_total", &[], 3.0)], NOW + 45 * SEC);
        let p = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!(p.start_time_unix_nano, NOW + 30 * SEC - 1_000_000);
        // a gauge going down is no reset (and has no start)
        run(&mut st, vec![gauge_s("g", &[], 5.0)], NOW);
        let rm = run(&mut st, vec![gauge_s("g", &[], 1.0)], NOW + SEC);
        assert_eq!(
            gauge_of(find(&rm, "g")).data_points[0].start_time_unix_nano,
            0
        );
    }

    #[test]
    fn a_sample_timestamp_is_the_point_time_and_first_start() {
        let mut st = TargetState::default();
        let mut c = counter("c_total", &[], 1.0);
        c.timestamp_ms = Some(1_000);
        let rm = run(&mut st, vec![c], NOW);
        let p = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (1_000 * 1_000_000, 1_000 * 1_000_000)
        );
        let mut c = counter("d_total", &[], 1.0);
        c.timestamp_ms = Some(-5);
        let rm = run(&mut st, vec![c], NOW);
        assert_eq!(
            sum_of(find(&rm, "d_total")).data_points[0].time_unix_nano,
            0
        );
    }

    #[test]
    fn a_histogram_reset_is_seen_in_its_count() {
        let mut st = TargetState::default();
        let b = [("1", 2.0), ("+Inf", 4.0)];
        run(&mut st, hist("h", &[], &b, 3.0, 4.0), NOW);
        let rm = run(
            &mut st,
            hist("h", &[], &[("1", 3.0), ("+Inf", 6.0)], 5.0, 6.0),
            NOW + SEC,
        );
        assert_eq!(
            hist_of(find(&rm, "h")).data_points[0].start_time_unix_nano,
            NOW
        );
        let rm = run(
            &mut st,
            hist("h", &[], &[("1", 1.0), ("+Inf", 1.0)], 0.5, 1.0),
            NOW + 2 * SEC,
        );
        let p = &hist_of(find(&rm, "h")).data_points[0];
        assert_eq!(p.start_time_unix_nano, NOW + 2 * SEC - 1_000_000);
        assert_eq!(p.bucket_counts, [1, 0]);
        // a summary's too
        let sm = |c: f64| {
            vec![
                s("q", MetricType::Summary, "q_count", &[], c),
                s("q", MetricType::Summary, "q_sum", &[], c),
            ]
        };
        run(&mut st, sm(10.0), NOW);
        let rm = run(&mut st, sm(2.0), NOW + 5 * SEC);
        assert_eq!(
            summary_of(find(&rm, "q")).data_points[0].start_time_unix_nano,
            NOW + 5 * SEC - 1_000_000
        );
    }

    #[test]
    fn a_vanished_series_gets_one_stale_marker_then_is_forgotten() {
        let mut st = TargetState::default();
        let first = vec![
            counter("c_total", &[("k", "a")], 1.0),
            counter("c_total", &[("k", "b")], 2.0),
            gauge_s("g", &[], 1.0),
        ]
        .into_iter()
        .chain(hist(
            "h",
            &[("x", "1")],
            &[("1", 1.0), ("+Inf", 1.0)],
            1.0,
            1.0,
        ))
        .chain([s("q", MetricType::Summary, "q_count", &[], 3.0)])
        .collect();
        run(&mut st, first, NOW);
        assert_eq!(st.series(), 5);
        let later = NOW + 15 * SEC;
        let rm = st.translate(
            &target(),
            vec![counter("c_total", &[("k", "a")], 2.0)],
            &[("up", 1.0)],
            later,
        );
        assert_eq!(names(&rm), ["c_total", "g", "h", "q", "up"]);
        // the marker joins the live metric, after its live points
        let pts = &sum_of(find(&rm, "c_total")).data_points;
        assert_eq!(pts.len(), 2);
        assert_eq!(
            (strings(&pts[0].attributes), pts[0].flags),
            (pairs(&[("k", "a")]), 0)
        );
        assert_eq!(strings(&pts[1].attributes), pairs(&[("k", "b")]));
        assert_eq!((pts[1].flags, value(&pts[1])), (1, None));
        assert_eq!(
            (pts[1].start_time_unix_nano, pts[1].time_unix_nano),
            (NOW, later)
        );
        let g = &gauge_of(find(&rm, "g")).data_points[0];
        assert_eq!(
            (g.flags, value(g), g.start_time_unix_nano, g.time_unix_nano),
            (1, None, 0, later)
        );
        assert_eq!(
            strings(&find(&rm, "g").metadata),
            pairs(&[("prometheus.type", "gauge")])
        );
        let h = &hist_of(find(&rm, "h")).data_points[0];
        assert_eq!(strings(&h.attributes), pairs(&[("x", "1")]));
        assert_eq!(
            (
                h.flags,
                h.count,
                h.sum,
                h.bucket_counts.len(),
                h.explicit_bounds.len()
            ),
            (1, 0, None, 0, 0)
        );
        let q = &summary_of(find(&rm, "q")).data_points[0];
        assert_eq!(
            (q.flags, q.count, q.sum, q.quantile_values.len()),
            (1, 0, 0.0, 0)
        );
        assert_eq!(st.series(), 1);
        // only once
        let rm = run(
            &mut st,
            vec![counter("c_total", &[("k", "a")], 3.0)],
            later + 15 * SEC,
        );
        assert_eq!(names(&rm), ["c_total"]);
        assert_eq!(sum_of(find(&rm, "c_total")).data_points.len(), 1);
    }

    #[test]
    fn a_series_that_comes_back_starts_anew() {
        let mut st = TargetState::default();
        run(&mut st, vec![counter("c_total", &[], 100.0)], NOW);
        run(&mut st, vec![], NOW + SEC);
        assert_eq!(st.series(), 0);
        let rm = run(&mut st, vec![counter("c_total", &[], 200.0)], NOW + 2 * SEC);
        let p = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!((p.start_time_unix_nano, p.flags), (NOW + 2 * SEC, 0));
    }

    #[test]
    fn a_failed_scrape_marks_every_series_and_reports() {
        let mut st = TargetState::default();
        let mut samples = vec![
            counter("c_total", &[], 1.0),
            gauge_s("g", &[("a", "1")], 1.0),
        ];
        samples.extend(hist("h", &[], &[("+Inf", 1.0)], 1.0, 1.0));
        run(&mut st, samples, NOW);
        let report = [("up", 0.0), ("scrape_duration_seconds", 0.5)];
        let rm = st.fail(&target(), &report, NOW + SEC);
        assert_eq!(
            names(&rm),
            ["c_total", "g", "h", "up", "scrape_duration_seconds"]
        );
        assert!(sum_of(find(&rm, "c_total")).is_monotonic);
        let c = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!(
            (c.flags, value(c), c.time_unix_nano, c.start_time_unix_nano),
            (1, None, NOW + SEC, NOW)
        );
        let g = &gauge_of(find(&rm, "g")).data_points[0];
        assert_eq!((g.flags, strings(&g.attributes)), (1, pairs(&[("a", "1")])));
        assert_eq!(hist_of(find(&rm, "h")).data_points[0].flags, 1);
        let up = &gauge_of(find(&rm, "up")).data_points[0];
        assert_eq!(
            (value(up), up.time_unix_nano, up.attributes.len(), up.flags),
            (Some(0.0), NOW + SEC, 0, 0)
        );
        assert_eq!(
            value(&gauge_of(find(&rm, "scrape_duration_seconds")).data_points[0]),
            Some(0.5)
        );
        // kept (marked) for the next successful scrape, but nothing left to mark
        assert_eq!(st.series(), 3);
        let rm = st.fail(&target(), &report, NOW + 2 * SEC);
        assert_eq!(names(&rm), ["up", "scrape_duration_seconds"]);
        // a target removed without a report
        assert!(metrics(&st.fail(&target(), &[], NOW)).is_empty());
    }

    #[test]
    fn series_with_their_own_timestamps_get_no_staleness_markers() {
        let mut st = TargetState::default();
        let mut timed = gauge_s("timed", &[], 1.0);
        timed.timestamp_ms = Some(1_700_000_000_000);
        run(&mut st, vec![timed, gauge_s("plain", &[], 1.0)], NOW);
        let rm = run(&mut st, vec![], NOW + SEC);
        assert_eq!(
            names(&rm),
            ["plain"],
            "only the series without a timestamp is ended"
        );
        let mut timed = gauge_s("timed", &[], 1.0);
        timed.timestamp_ms = Some(1_700_000_000_000);
        run(&mut st, vec![timed], NOW + 2 * SEC);
        assert!(metrics(&st.fail(&target(), &[], NOW + 3 * SEC)).is_empty());
    }

    #[test]
    fn a_target_back_after_failed_scrapes_keeps_its_start_times_and_still_sees_resets() {
        let mut st = TargetState::default();
        run(
            &mut st,
            vec![
                counter("c_total", &[], 10.0),
                counter("r_total", &[], 10.0),
                gauge_s("gone", &[], 1.0),
            ],
            NOW,
        );
        let _ = st.fail(&target(), &[("up", 0.0)], NOW + SEC);
        let _ = st.fail(&target(), &[("up", 0.0)], NOW + 2 * SEC);
        // back: c grew (same window), r went down (a reset), `gone` did not come back
        let rm = run(
            &mut st,
            vec![counter("c_total", &[], 12.0), counter("r_total", &[], 3.0)],
            NOW + 3 * SEC,
        );
        let c = &sum_of(find(&rm, "c_total")).data_points[0];
        assert_eq!((c.start_time_unix_nano, c.flags), (NOW, 0));
        let r = &sum_of(find(&rm, "r_total")).data_points[0];
        assert_eq!(r.start_time_unix_nano, NOW + 3 * SEC - NS_PER_MS);
        // `gone` was ended by the first failure: no second marker, and it is forgotten
        assert_eq!(names(&rm), ["c_total", "r_total"]);
        assert_eq!(st.series(), 2);
    }

    fn ex(l: &[(&str, &str)], value: f64, ts: Option<i64>) -> Option<ScrapedExemplar> {
        Some(ScrapedExemplar {
            labels: l
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            timestamp_ms: ts,
        })
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn exemplars_decode_ids_and_keep_other_labels() {
        let mut st = TargetState::default();
        let mut c = s("rpc", MetricType::Counter, "rpc_total", &[], 5.0);
        c.exemplar = ex(
            &[
                ("span_id", SPAN),
                ("trace_id", TRACE),
                ("user", "x"),
                ("empty", ""),
            ],
            1.0,
            Some(1_500),
        );
        let rm = run(&mut st, vec![c], NOW);
        let e = &sum_of(find(&rm, "rpc_total")).data_points[0].exemplars;
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            e[0].span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(strings(&e[0].filtered_attributes), pairs(&[("user", "x")]));
        assert_eq!(e[0].value, Some(exemplar::Value::AsDouble(1.0)));
        assert_eq!(e[0].time_unix_nano, 1_500 * 1_000_000);
    }

    #[test]
    fn invalid_exemplar_ids_become_attributes() {
        let mut st = TargetState::default();
        let cases = [
            ("trace_id", "4bf92f3577b34da6a3ce929d0e0e473"), // 31 digits
            ("trace_id", "4bf92f3577b34da6a3ce929d0e0e473g"), // not hex
            ("trace_id", "00000000000000000000000000000000"), // all zero
            ("span_id", "00f067aa0ba902b7ff"),               // too long
            ("span_id", "00f067aa0ba902bé"),                 // not ascii
        ];
        for (k, v) in cases {
            let mut c = counter("c_total", &[], 1.0);
            c.exemplar = ex(&[(k, v)], 2.0, None);
            let rm = run(&mut st, vec![c], NOW);
            let e = &sum_of(find(&rm, "c_total")).data_points[0].exemplars[0];
            assert!(e.trace_id.is_empty() && e.span_id.is_empty(), "{v}");
            assert_eq!(strings(&e.filtered_attributes), pairs(&[(k, v)]));
            assert_eq!(e.time_unix_nano, NOW);
        }
        // upper case digits and names are fine
        let mut c = counter("c_total", &[], 1.0);
        c.exemplar = ex(&[("Trace_ID", &TRACE.to_uppercase())], 2.0, None);
        let rm = run(&mut st, vec![c], NOW);
        let e = &sum_of(find(&rm, "c_total")).data_points[0].exemplars[0];
        assert_eq!(e.trace_id.len(), 16);
        assert!(e.filtered_attributes.is_empty());
    }

    #[test]
    fn histogram_exemplars_come_from_their_buckets_in_order() {
        let mut st = TargetState::default();
        let mut samples = hist(
            "h",
            &[],
            &[("+Inf", 4.0), ("1", 1.0), ("0.5", 0.0)],
            3.0,
            4.0,
        );
        samples[0].exemplar = ex(&[("trace_id", TRACE)], 7.5, None);
        samples[1].exemplar = ex(&[("k", "v")], 0.7, Some(2_000));
        let mut t = samples.pop().unwrap();
        t.timestamp_ms = Some(9_000);
        samples.push(t);
        let rm = run(&mut st, samples, NOW);
        let p = &hist_of(find(&rm, "h")).data_points[0];
        assert_eq!(p.time_unix_nano, 9_000 * 1_000_000);
        assert_eq!(p.exemplars.len(), 2);
        assert_eq!(p.exemplars[0].value, Some(exemplar::Value::AsDouble(0.7)));
        assert_eq!(p.exemplars[0].time_unix_nano, 2_000 * 1_000_000);
        assert_eq!(
            strings(&p.exemplars[0].filtered_attributes),
            pairs(&[("k", "v")])
        );
        assert_eq!(p.exemplars[1].value, Some(exemplar::Value::AsDouble(7.5)));
        assert_eq!(p.exemplars[1].time_unix_nano, 9_000 * 1_000_000);
        assert_eq!(p.exemplars[1].trace_id.len(), 16);
    }

    #[test]
    fn output_order_is_first_appearance_then_markers_then_report() {
        let build = || {
            let mut v = vec![
                gauge_s("z", &[("p", "2")], 1.0),
                counter("a_total", &[], 1.0),
            ];
            v.extend(hist("m", &[], &[("+Inf", 1.0)], 1.0, 1.0));
            v.push(gauge_s("z", &[("p", "1")], 1.0));
            v.push(s("z", MetricType::Unknown, "z", &[], 4.0));
            v
        };
        let mut st = TargetState::default();
        let rm = st.translate(
            &target(),
            build(),
            &[("up", 1.0), ("scrape_samples_scraped", 7.0)],
            NOW,
        );
        assert_eq!(
            names(&rm),
            ["z", "a_total", "m", "z", "up", "scrape_samples_scraped"]
        );
        let zs: Vec<_> = gauge_of(&metrics(&rm)[0])
            .data_points
            .iter()
            .map(|p| strings(&p.attributes))
            .collect();
        assert_eq!(zs, [pairs(&[("p", "2")]), pairs(&[("p", "1")])]);
        assert_eq!(
            strings(&metrics(&rm)[3].metadata),
            pairs(&[("prometheus.type", "unknown")])
        );
        // the same input gives the same output, from a fresh state and again
        let mut other = TargetState::default();
        let again = other.translate(
            &target(),
            build(),
            &[("up", 1.0), ("scrape_samples_scraped", 7.0)],
            NOW,
        );
        assert_eq!(rm, again);
        // markers in the order the series were first seen, after the live metrics
        let rm = run(&mut st, vec![counter("new_total", &[], 1.0)], NOW + SEC);
        assert_eq!(names(&rm), ["new_total", "z", "a_total", "m", "z"]);
        let zs: Vec<_> = gauge_of(&metrics(&rm)[1])
            .data_points
            .iter()
            .map(|p| strings(&p.attributes))
            .collect();
        assert_eq!(zs, [pairs(&[("p", "2")]), pairs(&[("p", "1")])]);
        assert!(metrics(&rm)[1..].iter().all(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.iter().all(|p| p.flags == 1),
            Some(metric::Data::Sum(s)) => s.data_points.iter().all(|p| p.flags == 1),
            Some(metric::Data::Histogram(h)) => h.data_points.iter().all(|p| p.flags == 1),
            _ => false,
        }));
    }

    #[test]
    fn a_repeated_sample_keeps_the_last_value_in_one_point() {
        let mut st = TargetState::default();
        let rm = run(
            &mut st,
            vec![gauge_s("g", &[], 1.0), gauge_s("g", &[], 2.0)],
            NOW,
        );
        let pts = &gauge_of(find(&rm, "g")).data_points;
        assert_eq!(pts.len(), 1);
        assert_eq!(value(&pts[0]), Some(2.0));
        assert_eq!(st.series(), 1);
    }

    #[test]
    fn id_map_keeps_colliding_hashes_apart() {
        let mut m: IdMap<usize> = IdMap::default();
        m.insert(7, 0);
        m.insert(7, 1);
        m.insert(8, 2);
        assert_eq!(m.find(7, |v| v == 1), Some(1));
        assert_eq!(m.find(7, |v| v == 0), Some(0));
        assert_eq!(m.find(7, |v| v == 2), None);
        assert_eq!(m.find(9, |_| true), None);
        m.clear();
        assert_eq!(m.find(7, |_| true), None);
    }

    #[test]
    fn many_series_are_grouped_in_one_pass() {
        // 20k histogram series with 3 buckets each, interleaved by part, then all vanish
        let n = 20_000;
        let mut samples = Vec::with_capacity(n * 5);
        for part in ["0.5", "1", "+Inf"] {
            for i in 0..n {
                let id = i.to_string();
                let mut l = labels(&[("id", &id), ("le", part)]);
                l.sort();
                samples.push(Scraped {
                    labels: l,
                    ..s("h", MetricType::Histogram, "h_bucket", &[], 1.0)
                });
            }
        }
        for i in 0..n {
            let id = i.to_string();
            samples.push(s(
                "h",
                MetricType::Histogram,
                "h_count",
                &[("id", &id)],
                1.0,
            ));
        }
        let mut st = TargetState::default();
        let started = std::time::Instant::now();
        let rm = run(&mut st, samples, NOW);
        let p = &hist_of(find(&rm, "h")).data_points;
        assert_eq!(p.len(), n);
        assert!(p
            .iter()
            .all(|p| p.bucket_counts == [1, 0, 0] && p.count == 1));
        assert_eq!(st.series(), n);
        let rm = run(&mut st, vec![], NOW + SEC);
        assert_eq!(hist_of(find(&rm, "h")).data_points.len(), n);
        assert_eq!(st.series(), 0);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn created_seconds_convert_exactly() {
        assert_eq!(seconds_to_ns(1.5), Some(1_500_000_000));
        assert_eq!(seconds_to_ns(0.0), None);
        assert_eq!(seconds_to_ns(f64::NAN), None);
        assert_eq!(seconds_to_ns(-1.0), None);
        assert_eq!(seconds_to_ns(1e300), Some(u64::MAX));
        assert_eq!(to_count(f64::NAN), 0);
        assert_eq!(to_count(-3.0), 0);
        assert_eq!(to_count(2.9), 2);
    }

    #[test]
    fn a_removed_target_ends_its_series_and_its_report() {
        let mut st = TargetState::default();
        let _ = st.translate(
            &target(),
            vec![counter("hits_total", &[("code", "200")], 3.0)],
            &[("up", 1.0)],
            1_000,
        );
        let rm = st.end(&target(), &["up", "scrape_duration_seconds"], 2_000);
        let metrics = &rm.scope_metrics[0].metrics;
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, vec!["hits_total", "up", "scrape_duration_seconds"]);
        assert_eq!(sum_of(&metrics[0]).data_points[0].flags, NO_RECORDED_VALUE);
        for m in &metrics[1..] {
            let p = &gauge_of(m).data_points[0];
            assert_eq!(
                (p.flags, p.time_unix_nano, p.value),
                (NO_RECORDED_VALUE, 2_000, None)
            );
        }
        assert_eq!(st.series(), 0);
    }
}
