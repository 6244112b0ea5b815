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
//!
//! Files: [`overflow`] holds the `overflow` action (folding, with the cumulative side table),
//! [`points`] what the processor needs from each OTLP data point type (merging, cumulative
//! views); this file the config, the admission loop, `drop` and `strip_label`.

mod overflow;
mod points;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::metrics::v1::{metric, Metric};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Processor, Reads, Rejections};
use crate::cardinality::tracker::{MetricState, Policy, Settings, Tracker, Verdict};
use crate::cardinality::{
    combine, hash_str, resource_hash, series_key, wire_attrs_hash, wire_resource_hash, Action,
    Mode, Reason,
};
use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::data::{Encoded, RequestMeta, Signal, Telemetry};
use crate::telemetry::metrics::Registry;
use crate::wire::{self, Edited};
use points::{Kind, Pt};

pub use overflow::Overflow;

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
                o.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .expire(now, ttl_s);
            }
        }
    });
}

/// The running processor.
pub struct CardinalityLimitProcessor {
    tracker: Arc<Tracker>,
    overflow: Arc<Mutex<Overflow>>,
    side_table_size: usize,
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
    fn cardinality_tracker(&self) -> Option<Arc<Tracker>> {
        Some(self.tracker.clone())
    }

    fn reads(&self) -> Reads {
        Reads::Items
    }

    /// The hot path of a steady workload: every point's series is known. The series keys are
    /// hashed from the bytes ([`crate::wire::points`]) and looked up ([`Tracker::touch`]); a
    /// request whose series are all known passes as it came, uncopied. At the first point of
    /// a new series (or a request the walk leaves to the decoder) the walk stops and asks for
    /// the request decoded: [`Processor::process`] then admits, refuses and folds exactly as
    /// for a decoded request. The walk changed nothing `process` depends on: a touch of a
    /// known series only refreshes its `last_seen`, which `process` does again.
    fn edit_encoded(&self, e: &Encoded, _meta: &RequestMeta) -> Option<Edited> {
        if e.signal != Signal::Metrics {
            return Some(Edited {
                bytes: e.bytes.clone(),
                removed: 0,
            });
        }
        let mut check = KnownSeries {
            p: self,
            now: self.tracker.now(),
            res: None,
            group: None,
            metric: None,
            base: 0,
        };
        match wire::points::visit_points(&e.bytes, &mut check) {
            wire::points::Walked::Done => Some(Edited {
                bytes: e.bytes.clone(),
                removed: 0,
            }),
            wire::points::Walked::Stopped | wire::points::Walked::Unusual => None,
        }
    }

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

/// The wire check of [`CardinalityLimitProcessor::edit_encoded`]: computes each point's series
/// key as [`Processor::process`] does (same hashes, read from the bytes) and stops at the first
/// point whose series is not known.
struct KnownSeries<'p> {
    p: &'p CardinalityLimitProcessor,
    now: u32,
    /// The group's resource identity (`None`: unreadable, the walk stops at its points).
    res: Option<u64>,
    /// Scope + resource identity.
    group: Option<u64>,
    /// The current metric (`None`: excluded, its points are not looked at).
    metric: Option<Arc<MetricState>>,
    base: u64,
}

impl<'a> wire::points::PointVisitor<'a> for KnownSeries<'_> {
    fn resource(&mut self, attrs: wire::points::Attrs<'a>) {
        self.res = wire_resource_hash(attrs);
    }

    fn scope(&mut self, scope: Option<(&'a str, &'a str)>) {
        let scope = scope
            .map(|(name, version)| combine(hash_str(name), hash_str(version)))
            .unwrap_or(0);
        self.group = self.res.map(|res| combine(res, scope));
    }

    fn metric(&mut self, name: &'a str) -> bool {
        let m = self.p.tracker.metric(name);
        if m.policy.excluded {
            self.metric = None;
            return false;
        }
        let Some(group) = self.group else {
            // an unreadable resource: stop at the first point
            self.metric = None;
            return true;
        };
        self.base = combine(group, hash_str(name));
        self.metric = Some(m);
        true
    }

    fn point(&mut self, attrs: wire::points::Attrs<'a>) -> ControlFlow<()> {
        let (Some(m), Some(h)) = (
            &self.metric,
            wire_attrs_hash(attrs, &self.p.tracker.settings.excluded_labels),
        ) else {
            return ControlFlow::Break(());
        };
        if self.p.tracker.touch(m, combine(self.base, h), self.now) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
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
