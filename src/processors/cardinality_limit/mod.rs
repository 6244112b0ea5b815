//! `cardinality_limit`: caps series per metric and in total, and distinct values per label, in
//! the metrics hot path. Accounting is the shared [`crate::cardinality`] tracker; this file
//! decides what happens to points of series the limits refuse.
//!
//! Contract:
//! - First-seen series win (as in the OTel SDK); an admitted series stays until it has been
//!   idle for `series_ttl`, then its slot is free again.
//! - `overflow` (default) folds refused points into one series per metric and source (resource
//!   identity + scope) whose attributes are only `otel.metric.overflow="true"`:
//!   - delta sums and delta explicit histograms: added up — exact;
//!   - cumulative sums and histograms: a bounded side table keeps the previous value of each
//!     overflowed source series, so the overflow series grows by each source's increase and
//!     stays monotonic (a source whose start time changes or whose value falls is a reset: its
//!     new value counts in full). When the side table is full, points of *new* source series are
//!     dropped and counted (`action="drop"`); known ones keep folding. A source idle longer than
//!     `series_ttl` leaves the side table; if it comes back its full value is counted again;
//!   - gauges: the latest refused value wins;
//!   - exponential histograms and summaries cannot be folded exactly: dropped and counted.
//! - `drop` removes the points; `passive` keeps them and only counts (a rollout mode).
//! - `strip_label` removes the offending label — the one named by `label_value_limits`, or else
//!   the metric's label with the most distinct values — and keeps the point if the reduced
//!   series is admitted; points that collapse into one series within a request are merged
//!   (delta sums and histograms added, gauges: latest). Caveat: for cumulative data, several
//!   source series that collapse into one identity make a series that is not monotonic across
//!   requests; prefer `overflow` for cumulative counters. A reduced series that is refused too is
//!   dropped and counted as `action="drop"`.
//! - Every refused point is counted in `otelgw_cardinality_rejected_total{reason,action}`;
//!   dropped points are also reported to the client through OTLP `partial_success` when this
//!   processor runs before any `batch` stage. A limit that trips is logged at most once a minute
//!   per metric.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, SummaryDataPoint,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Processor, Rejections};
use crate::cardinality::tracker::{MetricState, Policy, Settings, Tracker, Verdict};
use crate::cardinality::{
    combine, hash_str, resource_hash, series_key, Action, Mode, Reason, OVERFLOW_KEY,
};
use crate::config::units::Duration;
use crate::config::Diagnostics;
use crate::data::{RequestMeta, Telemetry};
use crate::telemetry::metrics::Registry;

const DELTA: i32 = 1;

/// `processors.cardinality_limit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardinalityLimitConfig {
    /// Series per metric name (0: no per-metric limit). The OTel SDK's default, 2000.
    pub max_series_per_metric: u64,
    /// Series in total across metrics (0: no global limit). Bounds the tracker's memory.
    pub max_series: u64,
    /// Distinct values allowed per label key, counted per metric (e.g. `user_id: 100`).
    pub label_value_limits: BTreeMap<String, u64>,
    /// Overrides by exact `name` or `regex`; the first matching rule wins.
    pub per_metric: Vec<MetricRule>,
    /// Labels never limited: left out of the series identity, never stripped.
    pub excluded_labels: Vec<String>,
    /// A series without points for this long frees its slot.
    pub series_ttl: Duration,
    /// `exact` (hash set, ~30 B/series) or `probabilistic` (Bloom generations, ~2 B/series).
    pub mode: Mode,
    /// What happens to refused points (overridable per metric).
    pub action: Action,
    /// Source series remembered for cumulative overflow (the side table).
    pub overflow_side_table_size: usize,
}

impl Default for CardinalityLimitConfig {
    fn default() -> Self {
        CardinalityLimitConfig {
            max_series_per_metric: 2000,
            max_series: 1_000_000,
            label_value_limits: BTreeMap::new(),
            per_metric: Vec::new(),
            excluded_labels: Vec::new(),
            series_ttl: Duration::from_secs(600),
            mode: Mode::Exact,
            action: Action::Overflow,
            overflow_side_table_size: 100_000,
        }
    }
}

/// One `per_metric` override.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricRule {
    /// Exact metric name.
    pub name: Option<String>,
    /// Regular expression matched against the whole metric name.
    pub regex: Option<String>,
    /// This metric's own series limit (0: none).
    pub max_series: Option<u64>,
    /// This metric's own action.
    pub action: Option<Action>,
    /// Not limited at all.
    pub excluded: bool,
}

enum Matcher {
    Name(String),
    Regex(Regex),
}

struct Rule {
    matcher: Matcher,
    policy: Policy,
}

impl CardinalityLimitConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.mode == Mode::Probabilistic && self.max_series == 0 {
            diag.error(
                format!("{path}.max_series"),
                "must be greater than 0 with mode: probabilistic (it sizes the filters)",
            );
        }
        if self.series_ttl.get() < std::time::Duration::from_secs(1) {
            diag.error(format!("{path}.series_ttl"), "must be at least 1s");
        }
        for (k, v) in &self.label_value_limits {
            if *v == 0 {
                diag.error(
                    format!("{path}.label_value_limits.{k}"),
                    "must be at least 1",
                );
            }
            if self.excluded_labels.contains(k) {
                diag.error(
                    format!("{path}.label_value_limits.{k}"),
                    "label is also in excluded_labels (excluded labels are never limited)",
                );
            }
        }
        for (i, r) in self.per_metric.iter().enumerate() {
            let p = format!("{path}.per_metric[{i}]");
            match (&r.name, &r.regex) {
                (Some(_), Some(_)) => diag.error(&p, "set either name or regex, not both"),
                (None, None) => diag.error(&p, "one of name or regex is required"),
                (None, Some(re)) => {
                    if let Err(e) = Regex::new(&format!("^(?:{re})$")) {
                        diag.error(format!("{p}.regex"), format!("invalid regex: {e}"));
                    }
                }
                (Some(_), None) => {}
            }
            if r.excluded && (r.max_series.is_some() || r.action.is_some()) {
                diag.error(
                    &p,
                    "excluded metrics are not limited: max_series and action have no effect",
                );
            }
        }
    }

    fn rules(&self) -> Vec<Rule> {
        self.per_metric
            .iter()
            .filter_map(|r| {
                let matcher = match (&r.name, &r.regex) {
                    (Some(n), None) => Matcher::Name(n.clone()),
                    (None, Some(re)) => Matcher::Regex(Regex::new(&format!("^(?:{re})$")).ok()?),
                    _ => return None,
                };
                Some(Rule {
                    matcher,
                    policy: Policy {
                        limit: r.max_series.unwrap_or(self.max_series_per_metric),
                        action: r.action.unwrap_or(self.action),
                        excluded: r.excluded,
                    },
                })
            })
            .collect()
    }

    /// Builds the processor (its tracker registers on the admin board).
    pub fn build(&self, id: &str, reg: &Registry) -> CardinalityLimitProcessor {
        let rules = self.rules();
        let default = Policy {
            limit: self.max_series_per_metric,
            action: self.action,
            excluded: false,
        };
        let tracker = Arc::new(Tracker::new(
            Settings {
                name: id.to_string(),
                mode: self.mode,
                max_series: self.max_series,
                ttl: self.series_ttl.get(),
                value_limits: self
                    .label_value_limits
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                excluded_labels: self.excluded_labels.clone(),
                policy: Box::new(move |name: &str| {
                    rules
                        .iter()
                        .find(|r| match &r.matcher {
                            Matcher::Name(n) => n == name,
                            Matcher::Regex(re) => re.is_match(name),
                        })
                        .map(|r| r.policy.clone())
                        .unwrap_or_else(|| default.clone())
                }),
            },
            reg,
        ));
        reg.cardinality.register(&tracker);
        let overflow = Arc::new(Mutex::new(Overflow::default()));
        spawn_sweeper(&tracker, &overflow, self.series_ttl.get());
        CardinalityLimitProcessor {
            tracker,
            overflow,
            side_table_size: self.overflow_side_table_size,
        }
    }
}

/// Runs `sweep` every quarter TTL (1 s … 60 s) while the tracker lives.
pub fn spawn_sweeper(
    tracker: &Arc<Tracker>,
    overflow: &Arc<Mutex<Overflow>>,
    ttl: std::time::Duration,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let t = Arc::downgrade(tracker);
    let o = Arc::downgrade(overflow);
    let every = (ttl / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    let ttl_s = ttl.as_secs().min(u64::from(u32::MAX)) as u32;
    rt.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(t) = t.upgrade() else { break };
            t.sweep();
            if let Some(o) = o.upgrade() {
                let now = t.now();
                let mut o = o.lock().unwrap_or_else(|p| p.into_inner());
                o.sources
                    .retain(|_, s| now.saturating_sub(s.last_seen) <= ttl_s);
                o.totals
                    .retain(|_, s| now.saturating_sub(s.last_seen) <= ttl_s);
            }
        }
    });
}

/// A cumulative value as the side table keeps it.
#[derive(Debug, Clone, PartialEq)]
enum Cum {
    Sum(f64),
    Hist(HistCum),
}

/// A cumulative explicit-bucket histogram.
#[derive(Debug, Clone, PartialEq)]
struct HistCum {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl HistCum {
    fn same_layout(&self, o: &HistCum) -> bool {
        self.bounds == o.bounds && self.counts.len() == o.counts.len()
    }
}

impl Cum {
    /// `self − prev`, or `None` when `self` is not a continuation (a reset or a new layout).
    fn minus(&self, prev: &Cum) -> Option<Cum> {
        match (self, prev) {
            (Cum::Sum(a), Cum::Sum(b)) if a >= b => Some(Cum::Sum(a - b)),
            (Cum::Hist(a), Cum::Hist(b))
                if a.same_layout(b)
                    && a.count >= b.count
                    && a.counts.iter().zip(&b.counts).all(|(x, y)| x >= y) =>
            {
                Some(Cum::Hist(HistCum {
                    bounds: a.bounds.clone(),
                    counts: a.counts.iter().zip(&b.counts).map(|(x, y)| x - y).collect(),
                    count: a.count - b.count,
                    sum: a.sum - b.sum,
                }))
            }
            _ => None,
        }
    }

    /// Adds `d` in place; false when the layouts differ.
    fn add(&mut self, d: &Cum) -> bool {
        match (self, d) {
            (Cum::Sum(a), Cum::Sum(b)) => *a += b,
            (Cum::Hist(a), Cum::Hist(b)) if a.same_layout(b) => {
                for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                    *x += y;
                }
                a.count += b.count;
                a.sum += b.sum;
            }
            _ => return false,
        }
        true
    }

    /// Zero with the same layout.
    fn zero_like(&self) -> Cum {
        match self {
            Cum::Sum(_) => Cum::Sum(0.0),
            Cum::Hist(h) => Cum::Hist(HistCum {
                bounds: h.bounds.clone(),
                counts: vec![0; h.counts.len()],
                count: 0,
                sum: 0.0,
            }),
        }
    }
}

struct Source {
    last_seen: u32,
    start: u64,
    value: Cum,
}

struct Total {
    last_seen: u32,
    start: u64,
    value: Cum,
}

/// The cumulative overflow state: previous values of overflowed sources (bounded) and the
/// running total per (metric, source group).
#[derive(Default)]
pub struct Overflow {
    sources: HashMap<u64, Source>,
    totals: HashMap<(u32, u64), Total>,
}

/// The running processor.
pub struct CardinalityLimitProcessor {
    tracker: Arc<Tracker>,
    overflow: Arc<Mutex<Overflow>>,
    side_table_size: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    DeltaSum,
    CumSum,
    Gauge,
    DeltaHist,
    CumHist,
    /// Exponential histograms and summaries: cannot be folded or merged exactly.
    Unfoldable,
}

/// The fields every OTLP data point type has.
macro_rules! accessors {
    () => {
        fn attrs(&self) -> &[KeyValue] {
            &self.attributes
        }
        fn attrs_mut(&mut self) -> &mut Vec<KeyValue> {
            &mut self.attributes
        }
        fn start(&self) -> u64 {
            self.start_time_unix_nano
        }
        fn time(&self) -> u64 {
            self.time_unix_nano
        }
    };
    (mergeable) => {
        accessors!();
        fn absorb_window(&mut self, o: &Self) {
            (self.start_time_unix_nano, self.time_unix_nano) = widen(
                self.start_time_unix_nano,
                self.time_unix_nano,
                o.start_time_unix_nano,
                o.time_unix_nano,
            );
            self.exemplars.clear();
        }
    };
}

/// What the processor needs from each data point type.
trait Pt: Clone {
    fn attrs(&self) -> &[KeyValue];
    fn attrs_mut(&mut self) -> &mut Vec<KeyValue>;
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    /// After a delta merge: the window covering both (earliest start, latest time); the
    /// exemplars no longer describe the sum.
    fn absorb_window(&mut self, _o: &Self) {}
    /// Merges `o` into `self` as `kind` does (delta: add; gauge: latest); false if it cannot.
    fn merge(&mut self, _o: &Self, _kind: Kind) -> bool {
        false
    }
    fn cum(&self) -> Option<Cum> {
        None
    }
    /// Writes a folded cumulative value and its window.
    fn set_cum(&mut self, _c: &Cum, _start: u64, _time: u64) {}
}

fn as_f64(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

/// The window covering two delta windows: earliest start, latest time.
fn widen(start: u64, time: u64, o_start: u64, o_time: u64) -> (u64, u64) {
    let start = if o_start != 0 && (start == 0 || o_start < start) {
        o_start
    } else {
        start
    };
    (start, time.max(o_time))
}

impl Pt for NumberDataPoint {
    accessors!(mergeable);
    fn merge(&mut self, o: &Self, kind: Kind) -> bool {
        match kind {
            Kind::Gauge | Kind::CumSum => {
                if o.time_unix_nano >= self.time_unix_nano {
                    let attrs = std::mem::take(&mut self.attributes);
                    *self = o.clone();
                    self.attributes = attrs;
                }
                true
            }
            Kind::DeltaSum => {
                use number_data_point::Value as V;
                self.value = Some(match (&self.value, &o.value) {
                    (Some(V::AsInt(a)), Some(V::AsInt(b))) => V::AsInt(a.saturating_add(*b)),
                    (a, b) => V::AsDouble(as_f64(a) + as_f64(b)),
                });
                self.absorb_window(o);
                true
            }
            _ => false,
        }
    }
    fn cum(&self) -> Option<Cum> {
        Some(Cum::Sum(as_f64(&self.value)))
    }
    fn set_cum(&mut self, c: &Cum, start: u64, time: u64) {
        if let Cum::Sum(v) = c {
            self.value = Some(number_data_point::Value::AsDouble(*v));
        }
        self.start_time_unix_nano = start;
        self.time_unix_nano = time;
        self.exemplars.clear();
    }
}

impl Pt for HistogramDataPoint {
    accessors!(mergeable);
    fn merge(&mut self, o: &Self, kind: Kind) -> bool {
        if kind != Kind::DeltaHist
            || self.explicit_bounds != o.explicit_bounds
            || self.bucket_counts.len() != o.bucket_counts.len()
        {
            return false;
        }
        for (a, b) in self.bucket_counts.iter_mut().zip(&o.bucket_counts) {
            *a += b;
        }
        self.count += o.count;
        self.sum = match (self.sum, o.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        self.absorb_window(o);
        true
    }
    fn cum(&self) -> Option<Cum> {
        Some(Cum::Hist(HistCum {
            bounds: self.explicit_bounds.clone(),
            counts: self.bucket_counts.clone(),
            count: self.count,
            sum: self.sum.unwrap_or(0.0),
        }))
    }
    fn set_cum(&mut self, c: &Cum, start: u64, time: u64) {
        self.start_time_unix_nano = start;
        self.time_unix_nano = time;
        if let Cum::Hist(h) = c {
            self.explicit_bounds = h.bounds.clone();
            self.bucket_counts = h.counts.clone();
            self.count = h.count;
            self.sum = Some(h.sum);
            self.min = None;
            self.max = None;
        }
        self.exemplars.clear();
    }
}

impl Pt for ExponentialHistogramDataPoint {
    accessors!();
}

impl Pt for SummaryDataPoint {
    accessors!();
}

fn overflow_attrs() -> Vec<KeyValue> {
    vec![KeyValue {
        key: OVERFLOW_KEY.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("true".into())),
        }),
        ..Default::default()
    }]
}

/// Where one metric's points come from: ids that key overflow series and source series.
struct Ctx<'a> {
    m: &'a MetricState,
    /// Metric name + scope + resource identity.
    base: u64,
    /// Scope + resource identity (one overflow series per metric and group).
    group: u64,
    now: u32,
}

impl Processor for CardinalityLimitProcessor {
    fn process(&self, data: &mut Telemetry, _meta: &RequestMeta, rejected: &mut Rejections) {
        let Telemetry::Metrics(req) = data else {
            return;
        };
        let now = self.tracker.now();
        let mut emptied = false;
        for rm in &mut req.resource_metrics {
            let res = resource_hash(rm.resource.as_ref());
            for sm in &mut rm.scope_metrics {
                let scope = sm
                    .scope
                    .as_ref()
                    .map(|s| combine(hash_str(&s.name), hash_str(&s.version)))
                    .unwrap_or(0);
                let group = combine(res, scope);
                let mut changed = false;
                for metric in &mut sm.metrics {
                    let m = self.tracker.metric(&metric.name);
                    if m.policy.excluded {
                        continue;
                    }
                    let cx = Ctx {
                        m: &m,
                        base: combine(group, hash_str(&metric.name)),
                        group,
                        now,
                    };
                    changed |= self.limit_metric(metric, &cx, rejected);
                }
                if changed {
                    sm.metrics
                        .retain(|m| crate::data::metric_point_count(m) > 0);
                    emptied |= sm.metrics.is_empty();
                }
            }
        }
        if emptied {
            for rm in &mut req.resource_metrics {
                rm.scope_metrics.retain(|s| !s.metrics.is_empty());
            }
            req.resource_metrics.retain(|r| !r.scope_metrics.is_empty());
        }
    }
}

impl CardinalityLimitProcessor {
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// Returns true when points were removed or replaced.
    fn limit_metric(&self, metric: &mut Metric, cx: &Ctx, rej: &mut Rejections) -> bool {
        use metric::Data;
        match &mut metric.data {
            Some(Data::Sum(s)) => {
                let kind = if s.aggregation_temporality == DELTA {
                    Kind::DeltaSum
                } else {
                    Kind::CumSum
                };
                self.limit(&mut s.data_points, kind, cx, rej)
            }
            Some(Data::Gauge(g)) => self.limit(&mut g.data_points, Kind::Gauge, cx, rej),
            Some(Data::Histogram(h)) => {
                let kind = if h.aggregation_temporality == DELTA {
                    Kind::DeltaHist
                } else {
                    Kind::CumHist
                };
                self.limit(&mut h.data_points, kind, cx, rej)
            }
            Some(Data::ExponentialHistogram(h)) => {
                self.limit(&mut h.data_points, Kind::Unfoldable, cx, rej)
            }
            Some(Data::Summary(s)) => self.limit(&mut s.data_points, Kind::Unfoldable, cx, rej),
            None => false,
        }
    }

    fn limit<P: Pt>(
        &self,
        points: &mut Vec<P>,
        kind: Kind,
        cx: &Ctx,
        rej: &mut Rejections,
    ) -> bool {
        let excluded = &self.tracker.settings.excluded_labels;
        // the hot path: one hash and one lookup per point, no allocation unless refused
        let mut refused: Option<Vec<(usize, Reason, u64)>> = None;
        for (i, p) in points.iter().enumerate() {
            let key = series_key(cx.base, p.attrs(), excluded);
            if let Verdict::Rejected(r) = self.tracker.admit(cx.m, key, p.attrs(), cx.now) {
                refused.get_or_insert_with(Vec::new).push((i, r, key));
            }
        }
        let Some(refused) = refused else {
            return false;
        };
        let action = cx.m.policy.action;
        self.log_trip(cx, refused[0].1, action);
        if action == Action::Passive {
            for (_, r, _) in &refused {
                self.tracker.count(*r, Action::Passive, 1);
            }
            return false;
        }
        let all = std::mem::take(points);
        let mut out = Vec::with_capacity(refused.len());
        let mut next = refused.iter().peekable();
        for (i, p) in all.into_iter().enumerate() {
            match next.peek() {
                Some((j, r, key)) if *j == i => {
                    out.push((p, *r, *key));
                    next.next();
                }
                _ => points.push(p),
            }
        }
        match action {
            Action::Overflow => self.overflow(points, out, kind, cx, rej),
            Action::StripLabel => self.strip(points, out, kind, cx, rej),
            Action::Drop | Action::Passive => {
                let out = out.into_iter().map(|(p, r, _)| (p, r)).collect();
                self.drop_points(out, Action::Drop, cx, rej)
            }
        }
        true
    }

    fn log_trip(&self, cx: &Ctx, reason: Reason, action: Action) {
        if cx.m.should_log(cx.now) {
            let s = &self.tracker.settings;
            let label = match reason {
                Reason::LabelValues(i) => s.value_limits.get(i).map(|(k, _)| k.clone()),
                _ => cx.m.top_label(&s.excluded_labels),
            };
            tracing::warn!(
                component = %s.name,
                metric = %cx.m.name,
                reason = reason.as_str(),
                action = action.as_str(),
                series = cx.m.active.load(std::sync::atomic::Ordering::Relaxed),
                limit = cx.m.policy.limit,
                top_label = label.as_deref().unwrap_or(""),
                "cardinality limit reached; see /debug/cardinality"
            );
        }
    }

    fn drop_points<P>(
        &self,
        pts: Vec<(P, Reason)>,
        action: Action,
        cx: &Ctx,
        rej: &mut Rejections,
    ) {
        if pts.is_empty() {
            return;
        }
        for (_, r) in &pts {
            self.tracker.count(*r, action, 1);
        }
        rej.add(
            pts.len() as u64,
            format!(
                "cardinality limit: points of new series of metric {} dropped",
                cx.m.name
            ),
        );
    }

    fn overflow<P: Pt>(
        &self,
        points: &mut Vec<P>,
        refused: Vec<(P, Reason, u64)>,
        kind: Kind,
        cx: &Ctx,
        rej: &mut Rejections,
    ) {
        let mut unfoldable = Vec::new();
        let mut folded: Option<P> = None;
        let mut n = 0u64;
        match kind {
            Kind::DeltaSum | Kind::DeltaHist | Kind::Gauge => {
                for (p, r, _) in refused {
                    match &mut folded {
                        None => {
                            let mut f = p;
                            *f.attrs_mut() = overflow_attrs();
                            folded = Some(f);
                        }
                        Some(f) => {
                            if !f.merge(&p, kind) {
                                unfoldable.push((p, r));
                                continue;
                            }
                        }
                    }
                    self.tracker.count(r, Action::Overflow, 1);
                    n += 1;
                }
            }
            Kind::CumSum | Kind::CumHist => {
                let mut o = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
                let o = &mut *o;
                let mut time = 0u64;
                let mut template: Option<P> = None;
                for (p, r, key) in refused {
                    let Some(cur) = p.cum() else {
                        unfoldable.push((p, r));
                        continue;
                    };
                    let full = o.sources.len() >= self.side_table_size;
                    let delta = match o.sources.get_mut(&key) {
                        Some(src) => {
                            let d = if src.start == p.start() {
                                cur.minus(&src.value)
                            } else {
                                None
                            };
                            src.last_seen = cx.now;
                            src.start = p.start();
                            src.value = cur.clone();
                            d.unwrap_or(cur) // a reset: the new value counts in full
                        }
                        None if full => {
                            unfoldable.push((p, r));
                            continue;
                        }
                        None => {
                            o.sources.insert(
                                key,
                                Source {
                                    last_seen: cx.now,
                                    start: p.start(),
                                    value: cur.clone(),
                                },
                            );
                            cur
                        }
                    };
                    let total = o
                        .totals
                        .entry((cx.m.id, cx.group))
                        .or_insert_with(|| Total {
                            last_seen: cx.now,
                            start: if p.start() != 0 { p.start() } else { p.time() },
                            value: delta.zero_like(),
                        });
                    total.last_seen = cx.now;
                    if !total.value.add(&delta) {
                        // the bucket layout changed: the overflow series restarts
                        total.value = delta;
                        total.start = p.time();
                    }
                    time = time.max(p.time());
                    if template.is_none() {
                        template = Some(p);
                    }
                    self.tracker.count(r, Action::Overflow, 1);
                    n += 1;
                }
                if let (Some(mut t), Some(total)) = (template, o.totals.get(&(cx.m.id, cx.group))) {
                    t.set_cum(&total.value, total.start, time);
                    *t.attrs_mut() = overflow_attrs();
                    folded = Some(t);
                }
            }
            Kind::Unfoldable => unfoldable = refused.into_iter().map(|(p, r, _)| (p, r)).collect(),
        }
        if n > 0 {
            self.tracker.count_overflow(cx.m, n);
        }
        if let Some(f) = folded {
            points.push(f);
        }
        self.drop_points(unfoldable, Action::Drop, cx, rej);
    }

    fn strip<P: Pt>(
        &self,
        points: &mut Vec<P>,
        refused: Vec<(P, Reason, u64)>,
        kind: Kind,
        cx: &Ctx,
        rej: &mut Rejections,
    ) {
        let s = &self.tracker.settings;
        let excluded = &s.excluded_labels;
        let top = cx.m.top_label(excluded);
        let mut index: Option<HashMap<u64, usize>> = None;
        let mut dropped = Vec::new();
        for (mut p, r, _) in refused {
            let label = match r {
                Reason::LabelValues(i) => s.value_limits.get(i).map(|(k, _)| k.as_str()),
                _ => top.as_deref(),
            };
            let before = p.attrs().len();
            if let Some(l) = label {
                p.attrs_mut().retain(|kv| kv.key != l);
            }
            if p.attrs().len() == before {
                dropped.push((p, r));
                continue;
            }
            let key = series_key(cx.base, p.attrs(), excluded);
            if self.tracker.admit(cx.m, key, p.attrs(), cx.now) != Verdict::Admitted {
                dropped.push((p, r));
                continue;
            }
            self.tracker.count(r, Action::StripLabel, 1);
            let idx = index.get_or_insert_with(|| {
                points
                    .iter()
                    .enumerate()
                    .map(|(i, q)| (series_key(cx.base, q.attrs(), excluded), i))
                    .collect()
            });
            match idx.get(&key) {
                Some(&i) if points[i].merge(&p, kind) => {}
                _ => {
                    idx.insert(key, points.len());
                    points.push(p);
                }
            }
        }
        self.drop_points(dropped, Action::Drop, cx, rej);
    }
}

#[cfg(test)]
mod tests;
