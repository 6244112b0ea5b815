//! The series store behind the Prometheus endpoint.
//!
//! Families (one per Prometheus metric name) live in a `DashMap`, so ingest locks one shard and
//! scrapes never stop ingestion for long. Each series keeps its value, the time it was last
//! updated (for expiry, done by a timer independent of scrapes), its OTLP start/end times (for
//! delta accumulation and `_created`), and its last exemplar.
//!
//! Temporality: cumulative points replace the stored value (a start time that moves forward is
//! a reset and is taken as is; an older point is ignored). Delta points — sums, monotonic or
//! not, and histograms — are added up: a point whose window starts at or after the last one
//! ended is added (a gap just means nothing was reported in between); a point that ends at or
//! before the last one, or starts inside the window already counted, would be counted twice and
//! is dropped and counted (`otelgw_prometheus_dropped_points{reason="out_of_order"}`).
//! A point flagged `NoRecordedValue` removes its series.
//!
//! `max_series` is enforced by the same tracker as the `cardinality_limit` processor
//! ([`crate::cardinality`]): the first series win, a new series over the cap is dropped and
//! counted (`otelgw_prometheus_dropped_points{reason="max_series"}` and
//! `otelgw_cardinality_rejected_total{reason="global",action="drop"}`), removed series give their
//! slot back, and the exporter shows up in `GET /debug/cardinality` under its id.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric::Data, number_data_point, Exemplar as PbExemplar,
    ExponentialHistogramDataPoint,
};

use super::translate::{family_name, labels as attr_labels, value_string, NameKind};
use crate::cardinality::tracker::{Policy, Settings, Tracker, Verdict};
use crate::cardinality::{combine, hash_str, Action, Mode};
use crate::data::hex;
use crate::telemetry::metrics::{escape_label_value, Counter, Gauge, Registry};

/// The kinds of family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Info,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Info => "info",
        }
    }
}

/// A series' labels as they are rendered — `name="escaped value"` pairs sorted by name and
/// joined by commas, without braces — in one allocation. Scrapes copy it as it is, the store
/// keys and orders series by it, and it costs one string per series instead of two per label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LabelSet(Box<str>);

impl LabelSet {
    /// Renders `pairs`, which must be sorted by name and have distinct names.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> LabelSet {
        let mut out = String::new();
        for (k, v) in pairs {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(k.as_ref());
            out.push_str("=\"");
            escape_label_value(&mut out, v.as_ref());
            out.push('"');
        }
        LabelSet(out.into_boxed_str())
    }

    /// The rendered pairs, without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub trace_id: String,
    pub span_id: String,
    pub value: f64,
    pub time_ns: u64,
}

/// An exponential histogram kept in its own form, so delta points add up exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpHist {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub pos_offset: i32,
    pub pos: Vec<u64>,
    pub neg_offset: i32,
    pub neg: Vec<u64>,
}

/// A series' value. Only numbers are stored inline: the other kinds are boxed, so the common
/// series (counters and gauges) stay small.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(Box<Hist>),
    Exponential(Box<ExpValue>),
    Summary(Box<SummaryValue>),
}

/// Explicit bounds and per-bucket (not cumulative) counts, one more than bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpValue {
    pub h: ExpHist,
    pub sum: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryValue {
    pub quantiles: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub value: Value,
    pub updated: Instant,
    pub start_ns: u64,
    pub time_ns: u64,
    /// Boxed: most series never carry one.
    pub exemplar: Option<Box<Exemplar>>,
}

#[derive(Debug)]
pub struct Family {
    pub kind: Kind,
    pub help: String,
    /// The unit word the name ends with (for OpenMetrics `# UNIT`), empty when none.
    pub unit: String,
    /// Sorted by labels, so a scrape renders in order without sorting.
    pub series: BTreeMap<LabelSet, Series>,
}

/// The family a point belongs to.
struct FamilyRef<'a> {
    name: String,
    kind: Kind,
    help: &'a str,
    unit: String,
}

/// One data point on its way into a series.
struct Point {
    labels: LabelSet,
    flags: u32,
    start: u64,
    time: u64,
    value: Value,
    delta: bool,
    exemplar: Option<Box<Exemplar>>,
}

/// Store settings (from the exporter config).
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    pub const_labels: BTreeMap<String, String>,
    pub add_suffixes: bool,
    pub resource_to_labels: bool,
    pub max_series: usize,
    pub expiration: Duration,
}

struct Counters {
    series: Gauge,
    out_of_order: Counter,
    type_conflict: Counter,
    max_series: Counter,
    expired: Counter,
}

pub struct Store {
    pub opts: Options,
    pub families: DashMap<String, Family>,
    series: AtomicUsize,
    warned: Mutex<HashSet<String>>,
    c: Counters,
    /// Admission of new series under `max_series` (shared mechanism with `cardinality_limit`).
    limiter: Arc<Tracker>,
}

/// The tracker key of one stored series.
fn series_id(name: &str, labels: &LabelSet) -> u64 {
    combine(hash_str(name), hash_str(labels.as_str()))
}

enum Temporality {
    Delta,
    Cumulative,
}

fn temporality(t: i32) -> Temporality {
    if t == 1 {
        Temporality::Delta
    } else {
        Temporality::Cumulative
    }
}

const NO_RECORDED_VALUE: u32 = 1;

fn exemplar_of(ex: &[PbExemplar]) -> Option<Box<Exemplar>> {
    let e = ex.iter().rev().find(|e| !e.trace_id.is_empty())?;
    let value = match e.value {
        Some(exemplar::Value::AsDouble(d)) => d,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => return None,
    };
    Some(Box::new(Exemplar {
        trace_id: hex(&e.trace_id),
        span_id: hex(&e.span_id),
        value,
        time_ns: e.time_unix_nano,
    }))
}

fn number(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

/// Downscales an exponential bucket array from `from` to `to` (`to` ≤ `from`).
fn downscale(offset: i32, counts: &[u64], from: i32, to: i32) -> (i32, Vec<u64>) {
    let shift = (from - to).clamp(0, 62) as u32;
    if shift == 0 || counts.is_empty() {
        return (offset, counts.to_vec());
    }
    let new_offset = offset >> shift;
    let last = (offset + counts.len() as i32 - 1) >> shift;
    let mut out = vec![0u64; (last - new_offset + 1) as usize];
    for (i, c) in counts.iter().enumerate() {
        let idx = ((offset + i as i32) >> shift) - new_offset;
        out[idx as usize] += c;
    }
    (new_offset, out)
}

fn add_buckets(a_off: i32, a: &[u64], b_off: i32, b: &[u64]) -> (i32, Vec<u64>) {
    if a.is_empty() {
        return (b_off, b.to_vec());
    }
    if b.is_empty() {
        return (a_off, a.to_vec());
    }
    let lo = a_off.min(b_off);
    let hi = (a_off + a.len() as i32).max(b_off + b.len() as i32);
    let mut out = vec![0u64; (hi - lo) as usize];
    for (i, c) in a.iter().enumerate() {
        out[(a_off - lo) as usize + i] += c;
    }
    for (i, c) in b.iter().enumerate() {
        out[(b_off - lo) as usize + i] += c;
    }
    (lo, out)
}

impl ExpHist {
    fn from_point(p: &ExponentialHistogramDataPoint) -> ExpHist {
        let (pos_offset, pos) = p
            .positive
            .as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or((0, vec![]));
        let (neg_offset, neg) = p
            .negative
            .as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or((0, vec![]));
        ExpHist {
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            pos_offset,
            pos,
            neg_offset,
            neg,
        }
    }

    /// Adds `other` to `self`, downscaling both to the coarser scale.
    pub fn add(&mut self, other: &ExpHist) {
        let scale = self.scale.min(other.scale);
        let (po, p) = downscale(self.pos_offset, &self.pos, self.scale, scale);
        let (no, n) = downscale(self.neg_offset, &self.neg, self.scale, scale);
        let (opo, op) = downscale(other.pos_offset, &other.pos, other.scale, scale);
        let (ono, on) = downscale(other.neg_offset, &other.neg, other.scale, scale);
        (self.pos_offset, self.pos) = add_buckets(po, &p, opo, &op);
        (self.neg_offset, self.neg) = add_buckets(no, &n, ono, &on);
        self.scale = scale;
        self.zero_count += other.zero_count;
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
    }

    /// Classic buckets: (upper bound, count in that bucket) in ascending order of bound.
    /// Negative bucket `i` covers `[-base^(i+1), -base^i)`: its upper bound is `-base^i`; the zero
    /// bucket's upper bound is `zero_threshold`; positive bucket `i` covers `(base^i, base^(i+1)]`:
    /// its upper bound is `base^(i+1)`. Every count lands in exactly one classic bucket, so
    /// `_count` and every cumulative `le` are exact at these boundaries.
    pub fn classic(&self) -> Vec<(f64, u64)> {
        // base^i computed as 2^(i / 2^scale): exact wherever the exponent is an integer, so
        // boundaries such as 2.0 are not 1.9999999999999996
        let step = 2f64.powi(-self.scale);
        let bound = |i: i32| (i as f64 * step).exp2();
        let mut out = Vec::with_capacity(self.pos.len() + self.neg.len() + 1);
        for (i, c) in self.neg.iter().enumerate().rev() {
            let idx = self.neg_offset + i as i32;
            if *c > 0 {
                out.push((-bound(idx), *c));
            }
        }
        if self.zero_count > 0 || !self.pos.is_empty() || !self.neg.is_empty() {
            out.push((self.zero_threshold, self.zero_count));
        }
        for (i, c) in self.pos.iter().enumerate() {
            let idx = self.pos_offset + i as i32;
            if *c > 0 {
                out.push((bound(idx + 1), *c));
            }
        }
        out
    }
}

/// Adds a delta point's value to a stored one, in place. False when they cannot be added (a
/// kind or bucket layout that changed).
fn add_delta(into: &mut Value, more: &Value) -> bool {
    match (into, more) {
        (Value::Number(a), Value::Number(b)) => *a += b,
        (Value::Histogram(a), Value::Histogram(b))
            if a.bounds == b.bounds && a.counts.len() == b.counts.len() =>
        {
            for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                *x += y;
            }
            a.sum += b.sum;
            a.count += b.count;
        }
        (Value::Exponential(a), Value::Exponential(b)) => {
            a.h.add(&b.h);
            a.sum += b.sum;
            a.count += b.count;
        }
        _ => return false,
    }
    true
}

impl Store {
    pub fn new(opts: Options, reg: &Registry, exporter: &str) -> Store {
        let l = |reason: &str| {
            reg.counter(
                "otelgw_prometheus_dropped_points",
                "Data points the Prometheus exporter did not store, by reason.",
                &[("exporter", exporter), ("reason", reason)],
            )
        };
        let limiter = Arc::new(Tracker::new(
            Settings {
                name: exporter.to_string(),
                mode: Mode::Exact,
                max_series: opts.max_series as u64,
                // the store expires series itself and tells the tracker
                ttl: Duration::from_secs(u64::from(u32::MAX)),
                value_limits: Vec::new(),
                excluded_labels: Vec::new(),
                policy: Box::new(|_| Policy {
                    limit: 0,
                    action: Action::Drop,
                    excluded: false,
                }),
            },
            reg,
        ));
        reg.cardinality.register(&limiter);
        Store {
            limiter,
            opts,
            families: DashMap::new(),
            series: AtomicUsize::new(0),
            warned: Mutex::new(HashSet::new()),
            c: Counters {
                series: reg.gauge(
                    "otelgw_prometheus_series",
                    "Series held for scraping.",
                    &[("exporter", exporter)],
                ),
                out_of_order: l("out_of_order"),
                type_conflict: l("type_conflict"),
                max_series: l("max_series"),
                expired: reg.counter(
                    "otelgw_prometheus_expired_series",
                    "Series removed after metric_expiration without updates.",
                    &[("exporter", exporter)],
                ),
            },
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Stores every point of a request.
    pub fn ingest(&self, req: &ExportMetricsServiceRequest) {
        let now = Instant::now();
        for rm in &req.resource_metrics {
            let res: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let mut base: BTreeMap<String, String> = self.opts.const_labels.clone();
            let find = |k: &str| {
                res.iter()
                    .find(|kv| kv.key == k)
                    .map(|kv| value_string(&kv.value))
            };
            let job = match (find("service.namespace"), find("service.name")) {
                (Some(ns), Some(n)) if !ns.is_empty() => Some(format!("{ns}/{n}")),
                (_, n) => n,
            };
            let instance = find("service.instance.id");
            if self.opts.resource_to_labels {
                base.extend(attr_labels(res));
            }
            if let Some(j) = &job {
                base.insert("job".into(), j.clone());
            }
            if let Some(i) = &instance {
                base.insert("instance".into(), i.clone());
            }
            // target_info: the resource's other attributes, once per resource
            let info_attrs: Vec<KeyValue> = res
                .iter()
                .filter(|kv| {
                    !matches!(
                        kv.key.as_str(),
                        "service.name" | "service.namespace" | "service.instance.id"
                    )
                })
                .cloned()
                .collect();
            if !info_attrs.is_empty() && (job.is_some() || instance.is_some()) {
                let mut l = attr_labels(&info_attrs);
                if let Some(j) = &job {
                    l.insert("job".into(), j.clone());
                }
                if let Some(i) = &instance {
                    l.insert("instance".into(), i.clone());
                }
                self.put(
                    "target_info",
                    Kind::Info,
                    "Target metadata",
                    "",
                    LabelSet::new(l),
                    |existing| match existing {
                        // seen again: it stays alive
                        Some(s) => {
                            s.updated = now;
                            None
                        }
                        None => Some(Series {
                            value: Value::Number(1.0),
                            updated: now,
                            start_ns: 0,
                            time_ns: 0,
                            exemplar: None,
                        }),
                    },
                );
            }
            for sm in &rm.scope_metrics {
                let mut scoped = base.clone();
                if let Some(s) = &sm.scope {
                    if !s.name.is_empty() {
                        scoped.insert("otel_scope_name".into(), s.name.clone());
                    }
                    if !s.version.is_empty() {
                        scoped.insert("otel_scope_version".into(), s.version.clone());
                    }
                }
                for m in &sm.metrics {
                    self.ingest_metric(m, &scoped, now);
                }
            }
        }
        self.c.series.set(self.series_count() as i64);
    }

    fn point_labels(&self, scoped: &BTreeMap<String, String>, attrs: &[KeyValue]) -> LabelSet {
        let own = attr_labels(attrs);
        // both sorted by name: merge them; data point attributes win over resource-derived
        // labels of the same name
        let mut a = scoped.iter().peekable();
        let mut b = own.iter().peekable();
        LabelSet::new(std::iter::from_fn(|| match (a.peek(), b.peek()) {
            (Some((ka, _)), Some((kb, _))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    a.next();
                    b.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        }))
    }

    fn ingest_metric(
        &self,
        m: &opentelemetry_proto::tonic::metrics::v1::Metric,
        scoped: &BTreeMap<String, String>,
        now: Instant,
    ) {
        // promtool wants HELP on every family: the OTel name stands in for a missing description
        let help: &str = if m.description.is_empty() {
            &m.name
        } else {
            &m.description
        };
        let family = |kind: Kind, name_kind: NameKind| {
            let name = family_name(
                &m.name,
                &m.unit,
                name_kind,
                &self.opts.namespace,
                self.opts.add_suffixes,
            );
            let u = super::translate::unit_suffix(&m.unit);
            let named = !u.is_empty()
                && (name.ends_with(&format!("_{u}")) || name.ends_with(&format!("_{u}_total")));
            FamilyRef {
                name,
                kind,
                help,
                unit: if named { u } else { String::new() },
            }
        };
        let point = |attrs: &[KeyValue],
                     flags: u32,
                     start: u64,
                     time: u64,
                     value: Value,
                     delta: bool,
                     ex: &[PbExemplar]| Point {
            labels: self.point_labels(scoped, attrs),
            flags,
            start,
            time,
            value,
            delta,
            exemplar: exemplar_of(ex),
        };
        match &m.data {
            Some(Data::Gauge(g)) => {
                let f = family(Kind::Gauge, NameKind::Gauge);
                for p in &g.data_points {
                    let v = Value::Number(number(&p.value));
                    self.update(
                        &f,
                        point(
                            &p.attributes,
                            p.flags,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            false,
                            &p.exemplars,
                        ),
                        now,
                    );
                }
            }
            Some(Data::Sum(s)) => {
                let f = if s.is_monotonic {
                    family(Kind::Counter, NameKind::Counter)
                } else {
                    family(Kind::Gauge, NameKind::Gauge)
                };
                let delta = matches!(temporality(s.aggregation_temporality), Temporality::Delta);
                for p in &s.data_points {
                    let v = Value::Number(number(&p.value));
                    self.update(
                        &f,
                        point(
                            &p.attributes,
                            p.flags,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            delta,
                            &p.exemplars,
                        ),
                        now,
                    );
                }
            }
            Some(Data::Histogram(h)) => {
                let f = family(Kind::Histogram, NameKind::Other);
                let delta = matches!(temporality(h.aggregation_temporality), Temporality::Delta);
                for p in &h.data_points {
                    let mut counts = p.bucket_counts.clone();
                    counts.resize(p.explicit_bounds.len() + 1, 0);
                    let v = Value::Histogram(Box::new(Hist {
                        bounds: p.explicit_bounds.clone(),
                        counts,
                        sum: p.sum.unwrap_or(0.0),
                        count: p.count,
                    }));
                    self.update(
                        &f,
                        point(
                            &p.attributes,
                            p.flags,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            delta,
                            &p.exemplars,
                        ),
                        now,
                    );
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                let f = family(Kind::Histogram, NameKind::Other);
                let delta = matches!(temporality(h.aggregation_temporality), Temporality::Delta);
                for p in &h.data_points {
                    let v = Value::Exponential(Box::new(ExpValue {
                        h: ExpHist::from_point(p),
                        sum: p.sum.unwrap_or(0.0),
                        count: p.count,
                    }));
                    self.update(
                        &f,
                        point(
                            &p.attributes,
                            p.flags,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            delta,
                            &p.exemplars,
                        ),
                        now,
                    );
                }
            }
            Some(Data::Summary(s)) => {
                let f = family(Kind::Summary, NameKind::Other);
                for p in &s.data_points {
                    let v = Value::Summary(Box::new(SummaryValue {
                        quantiles: p
                            .quantile_values
                            .iter()
                            .map(|q| (q.quantile, q.value))
                            .collect(),
                        sum: p.sum,
                        count: p.count,
                    }));
                    self.update(
                        &f,
                        point(
                            &p.attributes,
                            p.flags,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            false,
                            &[],
                        ),
                        now,
                    );
                }
            }
            None => {}
        }
    }

    /// Applies one point to its series (temporality rules in the module docs), in place.
    fn update(&self, f: &FamilyRef, p: Point, now: Instant) {
        let Point {
            labels,
            flags,
            start,
            time,
            value,
            delta,
            exemplar: ex,
        } = p;
        let (name, kind, help, unit) = (f.name.as_str(), f.kind, f.help, f.unit.as_str());
        if flags & NO_RECORDED_VALUE != 0 {
            if let Some(mut f) = self.families.get_mut(name) {
                if f.series.remove(&labels).is_some() {
                    self.series.fetch_sub(1, Ordering::Relaxed);
                    self.limiter.forget(series_id(name, &labels));
                }
            }
            return;
        }
        let c_ooo = &self.c.out_of_order;
        self.put(name, kind, help, unit, labels, |existing| {
            let Some(s) = existing else {
                return Some(Series {
                    value,
                    updated: now,
                    start_ns: start,
                    time_ns: time,
                    exemplar: ex,
                });
            };
            if !delta {
                if time < s.time_ns {
                    c_ooo.inc();
                    return None;
                }
                // a start time that moves forward is a reset: take the new value as is
                s.value = value;
                s.start_ns = start;
            } else {
                // delta: add windows that start where (or after) the last one ended
                if time <= s.time_ns || (start != 0 && start < s.time_ns) {
                    c_ooo.inc();
                    return None;
                }
                if !add_delta(&mut s.value, &value) {
                    // bucket layout changed: start again from this point
                    s.start_ns = start;
                    s.value = value;
                }
            }
            s.time_ns = time;
            s.updated = now;
            if ex.is_some() {
                s.exemplar = ex;
            }
            None
        });
    }

    /// Finds or creates one series. `f` gets the series to edit in place (and returns `None`),
    /// or, for a series that does not exist yet, `None` and returns the new series (or `None`
    /// to store nothing). New series pass the `max_series` admission first.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        name: &str,
        kind: Kind,
        help: &str,
        unit: &str,
        labels: LabelSet,
        f: impl FnOnce(Option<&mut Series>) -> Option<Series>,
    ) {
        let mut fam = self
            .families
            .entry(name.to_string())
            .or_insert_with(|| Family {
                kind,
                help: help.to_string(),
                unit: unit.to_string(),
                series: BTreeMap::new(),
            });
        if fam.kind != kind {
            self.c.type_conflict.inc();
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.insert(name.to_string()) {
                tracing::warn!(metric = %name, kept = fam.kind.as_str(), got = kind.as_str(), "metric type conflict; keeping the first type and dropping the others");
            }
            return;
        }
        if let Some(s) = fam.series.get_mut(&labels) {
            f(Some(s));
            return;
        }
        let id = series_id(name, &labels);
        let m = self.limiter.metric(name);
        if let Verdict::Rejected(r) = self.limiter.admit(&m, id, &[], self.limiter.now()) {
            self.limiter.count(r, Action::Drop, 1);
            self.c.max_series.inc();
            return;
        }
        match f(None) {
            Some(next) => {
                self.series.fetch_add(1, Ordering::Relaxed);
                fam.series.insert(labels, next);
            }
            None => self.limiter.forget(id),
        }
    }

    /// Removes series not updated within `metric_expiration`; returns how many.
    pub fn expire(&self) -> usize {
        let cutoff = Instant::now().checked_sub(self.opts.expiration);
        let Some(cutoff) = cutoff else { return 0 };
        let mut removed = 0;
        let limiter = &self.limiter;
        self.families.retain(|name, fam| {
            fam.series.retain(|labels, s| {
                let keep = s.updated >= cutoff;
                if !keep {
                    limiter.forget(series_id(name, labels));
                    removed += 1;
                }
                keep
            });
            !fam.series.is_empty()
        });
        if removed > 0 {
            self.series.fetch_sub(removed, Ordering::Relaxed);
            self.c.expired.add(removed as u64);
        }
        self.c.series.set(self.series_count() as i64);
        // refreshes the tracker's gauges (its TTL never expires anything here)
        self.limiter.sweep();
        removed
    }
}
