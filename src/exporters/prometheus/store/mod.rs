//! The series store behind the Prometheus endpoint.
//!
//! Families (one per Prometheus metric name) live in a `DashMap`, so ingest locks one shard and
//! scrapes never stop ingestion for long. A family's series are a `BTreeMap` from their rendered
//! labels ([`LabelSet`]) to a 48-byte [`Series`]: its value, the [`clock`] tick it was last
//! updated at (for expiry, done by a timer independent of scrapes), its OTLP start/end times
//! (for delta accumulation and `_created`), and its last exemplar. Label sets are kept once per
//! store and shared by every series that carries them, across families ([`labels`]: the key is
//! a pointer, ordered by the text, so output is unchanged and scrapes copy the text as is).
//!
//! Memory per series (counters, 1M series, `cargo bench --bench prometheus`): the B-tree slot
//! (8-byte key + `Series`, nodes about two-thirds full), the `max_series` tracker's entry, and
//! its label set's text divided by the families sharing it.
//!
//! Temporality: cumulative points replace the stored value (a start time that moves forward is
//! a reset and is taken as is; an older point is ignored). Delta points — sums, monotonic or
//! not, and histograms — are added up: a point whose window starts at or after the last one
//! ended is added (a gap just means nothing was reported in between); a point that ends at or
//! before the last one, or starts inside the window already counted, would be counted twice and
//! is dropped and counted (`otelgw_prometheus_dropped_points_total{reason="out_of_order"}`).
//! A point flagged `NoRecordedValue` removes its series.
//!
//! `max_series` is enforced by the same tracker as the `cardinality_limit` processor
//! ([`crate::cardinality`]): the first series win, a new series over the cap is dropped and
//! counted (`otelgw_prometheus_dropped_points_total{reason="max_series"}` and
//! `otelgw_cardinality_rejected_total{reason="global",action="drop"}`), removed series give their
//! slot back, and the exporter shows up in `GET /debug/cardinality` under its id.
//!
//! Files: [`ingest`] turns OTLP metrics into points (families, labels, `target_info`),
//! [`temporality`] applies a point to its series (the rules above), [`exp_histogram`] adds and
//! renders exponential histograms, [`labels`] the shared label sets, [`clock`] the ticks; this
//! file the types, admission (`put`) and expiry.

mod clock;
mod exp_histogram;
mod ingest;
mod labels;
mod temporality;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;

use crate::cardinality::tracker::{Policy, Settings, Tracker, Verdict};
use crate::cardinality::{combine, hash_str, Action, Mode};
use crate::telemetry::metrics::names;
use crate::telemetry::metrics::{Counter, Gauge, Registry};
use clock::Clock;
use labels::Interner;
pub use labels::{parse_pairs, render_pairs, LabelSet};

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
    /// The store's [`clock`] tick of the last update (for expiry).
    pub updated: u32,
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
    /// Sorted by labels, so a scrape renders in order without sorting. Keys come from the
    /// store's interner (see [`labels`]).
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
    /// Rendered as a [`LabelSet`]'s text; interned only if it makes a new series.
    labels: String,
    flags: u32,
    start: u64,
    time: u64,
    value: Value,
    delta: bool,
    exemplar: Option<Box<Exemplar>>,
}

/// What one point did to its series, for an exporter that pushes what changed (remote write)
/// instead of serving the whole store ([`Store::ingest_observed`]).
pub enum Applied<'a> {
    /// The point was applied: the series as it is now (a delta point already added up).
    Series {
        family: &'a str,
        kind: Kind,
        help: &'a str,
        unit: &'a str,
        labels: &'a str,
        series: &'a Series,
    },
    /// The point was flagged `NoRecordedValue`: the series ended (a staleness marker).
    Stale {
        family: &'a str,
        kind: Kind,
        labels: &'a str,
        time_ns: u64,
        /// The series as it was, when it was stored (its shape: histogram buckets, quantiles).
        last: Option<&'a Series>,
    },
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
    clock: Clock,
    /// Every series' label set, once (see [`labels`]).
    labels: Interner,
    /// Admission of new series under `max_series` (shared mechanism with `cardinality_limit`).
    limiter: Arc<Tracker>,
}

/// The tracker key of one stored series.
fn series_id(name: &str, labels: &str) -> u64 {
    combine(hash_str(name), hash_str(labels))
}

impl Store {
    /// The tracker that admits new series (`max_series`), for `/debug/cardinality`.
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.limiter
    }

    pub fn new(opts: Options, reg: &Registry, exporter: &str) -> Store {
        let l = |reason: &str| {
            reg.counter(
                names::PROMETHEUS_DROPPED_POINTS,
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
        Store {
            limiter,
            clock: Clock::new(opts.expiration),
            labels: Interner::default(),
            opts,
            families: DashMap::new(),
            series: AtomicUsize::new(0),
            warned: Mutex::new(HashSet::new()),
            c: Counters {
                series: reg.gauge(
                    names::PROMETHEUS_SERIES,
                    "Series held for scraping.",
                    &[("exporter", exporter)],
                ),
                out_of_order: l("out_of_order"),
                type_conflict: l("type_conflict"),
                max_series: l("max_series"),
                expired: reg.counter(
                    names::PROMETHEUS_EXPIRED_SERIES,
                    "Series removed after metric_expiration without updates.",
                    &[("exporter", exporter)],
                ),
            },
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Distinct label sets held (shared by the series that carry them).
    pub fn label_sets(&self) -> usize {
        self.labels.len()
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
        labels: &str,
        f: impl FnOnce(Option<&mut Series>) -> Option<Series>,
    ) {
        // a known family is found without allocating its name
        let found = self.families.get_mut(name);
        let mut fam = match found {
            Some(f) => f,
            None => self
                .families
                .entry(name.to_string())
                .or_insert_with(|| Family {
                    kind,
                    help: help.to_string(),
                    unit: unit.to_string(),
                    series: BTreeMap::new(),
                }),
        };
        if fam.kind != kind {
            self.c.type_conflict.inc();
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.insert(name.to_string()) {
                tracing::warn!(metric = %name, kept = fam.kind.as_str(), got = kind.as_str(), "metric type conflict; keeping the first type and dropping the others");
            }
            return;
        }
        if let Some(s) = fam.series.get_mut(labels) {
            f(Some(s));
            return;
        }
        let id = series_id(name, labels);
        let m = self.limiter.metric(name);
        if let Verdict::Rejected(r) = self.limiter.admit(&m, id, &[], self.limiter.now()) {
            self.limiter.count(r, Action::Drop, 1);
            self.c.max_series.inc();
            return;
        }
        match f(None) {
            Some(next) => {
                self.series.fetch_add(1, Ordering::Relaxed);
                fam.series.insert(self.labels.intern(labels), next);
            }
            None => self.limiter.forget(id),
        }
    }

    /// Tells `obs` the current state of one stored series.
    fn observe(&self, name: &str, labels: &str, obs: &mut dyn FnMut(Applied<'_>)) {
        if let Some(fam) = self.families.get(name) {
            if let Some(series) = fam.series.get(labels) {
                obs(Applied::Series {
                    family: name,
                    kind: fam.kind,
                    help: &fam.help,
                    unit: &fam.unit,
                    labels,
                    series,
                });
            }
        }
    }

    /// Removes series not updated within `metric_expiration`; returns how many.
    pub fn expire(&self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        let (limiter, clock) = (&self.limiter, &self.clock);
        // given back to the interner once out of their families
        let mut gone = Vec::new();
        self.families.retain(|name, fam| {
            fam.series.retain(|labels, s| {
                let keep = !clock.expired(s.updated, now);
                if !keep {
                    limiter.forget(series_id(name, labels.as_str()));
                    gone.push(labels.clone());
                    removed += 1;
                }
                keep
            });
            !fam.series.is_empty()
        });
        for labels in gone {
            self.labels.release(labels);
        }
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
