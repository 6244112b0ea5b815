//! The series tracker: which series exist, per metric and in total, under which limits.
//!
//! Exact mode keeps the 64-bit series keys in 64 shards, each an `RwLock` around an
//! open-addressing [`super::table::Table`] of 16-byte entries (key, `last_seen` second, metric
//! index) at ≤ 3/4 load. Probabilistic mode keeps two Bloom generations that rotate every
//! `series_ttl`; lookups take no lock at all.
//!
//! Budget: a miss first reserves one unit of the metric's limit and one of the global limit with
//! compare-and-swap loops, then inserts under the shard's write lock; if another thread
//! inserted the same key meanwhile, the reservations are given back. Counters therefore never
//! exceed their limits, even with many writers (a race can only refuse conservatively at the
//! boundary while two reservations for one key are held).
//!
//! Expiry: [`Tracker::sweep`] removes series idle longer than `series_ttl` (exact), or rotates
//! the Bloom generations (probabilistic: a series is forgotten between one and two TTLs after
//! its last point). The processor and the Prometheus exporter run it on a timer.
//!
//! Files: [`metric`] holds the per-metric state (with its label statistics, [`hll`] sketches),
//! [`bloom`] the probabilistic mode's filter, [`sweep`] expiry and memory accounting; this file
//! the settings, the tables and admission.

mod bloom;
mod hll;
mod metric;
mod sweep;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::{Action, Mode, Reason};
use crate::telemetry::metrics::{names, Counter, Gauge, Registry};
use bloom::Bloom;

pub use hll::Hll;
pub use metric::MetricState;

/// The table hasher: keys are already well-mixed hashes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

const SHARDS: usize = 64;
/// Distinct metric names tracked individually; beyond, points share one `(other)` entry.
pub const MAX_METRICS: usize = 10_000;
/// Label keys per metric whose distinct values are estimated for reports.
const MAX_LABEL_STATS: usize = 32;
/// Sample offending attribute sets kept per metric.
const MAX_SAMPLES: usize = 5;

/// How one metric is limited.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Series allowed for this metric (0: no per-metric limit).
    pub limit: u64,
    pub action: Action,
    /// Never limited nor tracked.
    pub excluded: bool,
}

/// The answer for one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    Rejected(Reason),
}

/// Tracker settings.
pub struct Settings {
    /// Shown in reports and self-metrics (`component` label).
    pub name: String,
    pub mode: Mode,
    /// Series in total (0: no global limit; required for probabilistic mode).
    pub max_series: u64,
    pub ttl: Duration,
    /// `label_value_limits`: label key → distinct values allowed per metric.
    pub value_limits: Vec<(String, u64)>,
    pub excluded_labels: Vec<String>,
    /// The policy for a metric name.
    pub policy: Box<dyn Fn(&str) -> Policy + Send + Sync>,
}

enum Table {
    Exact(Box<[RwLock<super::table::Table>]>),
    Probabilistic {
        /// Two filters; `cur` says which one is current, the other is the previous generation.
        gens: [Bloom; 2],
        cur: std::sync::atomic::AtomicUsize,
        prev: AtomicU64,
        migrated: AtomicU64,
        rotated: AtomicU32,
    },
}

struct Metrics {
    active: Gauge,
    memory: Gauge,
    rejected: Vec<Counter>,
    expired: Counter,
    overflow: Counter,
}

/// Series accounting for one component (see the module docs).
pub struct Tracker {
    pub settings: Settings,
    epoch: Instant,
    active: AtomicU64,
    table: Table,
    by_name: RwLock<HashMap<String, Arc<MetricState>>>,
    states: RwLock<Vec<Arc<MetricState>>>,
    other: Arc<MetricState>,
    metrics: Metrics,
}

fn reserve(counter: &AtomicU64, limit: u64, pending: u64) -> bool {
    if limit == 0 {
        counter.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
            (c + pending < limit).then_some(c + 1)
        })
        .is_ok()
}

fn release(counter: &AtomicU64) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
        Some(c.saturating_sub(1))
    });
}

impl Tracker {
    pub fn new(settings: Settings, reg: &Registry) -> Tracker {
        let c = settings.name.as_str();
        let l = [("component", c)];
        reg.gauge(
            names::CARDINALITY_SERIES_LIMIT,
            "Series allowed in total by this component (0: no global limit).",
            &l,
        )
        .set(settings.max_series as i64);
        let mut rejected = Vec::new();
        for reason in Reason::NAMES {
            for action in Action::ALL {
                rejected.push(reg.counter(
                    names::CARDINALITY_REJECTED_TOTAL,
                    "Data points of series over a cardinality limit, by limit and action taken.",
                    &[
                        ("component", c),
                        ("reason", reason),
                        ("action", action.as_str()),
                    ],
                ));
            }
        }
        let metrics = Metrics {
            active: reg.gauge(
                names::CARDINALITY_SERIES_ACTIVE,
                "Series currently tracked (admitted and not expired).",
                &l,
            ),
            memory: reg.gauge(
                names::CARDINALITY_MEMORY_BYTES,
                "Memory held by cardinality tracking (tables, filters, side tables).",
                &l,
            ),
            rejected,
            expired: reg.counter(
                names::CARDINALITY_EXPIRED_TOTAL,
                "Series removed after series_ttl without points.",
                &l,
            ),
            overflow: reg.counter(
                names::CARDINALITY_OVERFLOW_POINTS_TOTAL,
                "Data points folded into an overflow series.",
                &l,
            ),
        };
        let table = match settings.mode {
            Mode::Exact => Table::Exact(
                (0..SHARDS)
                    .map(|_| RwLock::new(super::table::Table::default()))
                    .collect(),
            ),
            Mode::Probabilistic => Table::Probabilistic {
                gens: [
                    Bloom::new(settings.max_series),
                    Bloom::new(settings.max_series),
                ],
                cur: std::sync::atomic::AtomicUsize::new(0),
                prev: AtomicU64::new(0),
                migrated: AtomicU64::new(0),
                rotated: AtomicU32::new(0),
            },
        };
        let nvals = settings.value_limits.len();
        let other = Arc::new(MetricState::new(
            0,
            "(other)",
            Policy {
                limit: 0,
                action: Action::Drop,
                excluded: false,
            },
            nvals,
        ));
        let t = Tracker {
            settings,
            epoch: Instant::now(),
            active: AtomicU64::new(0),
            table,
            by_name: RwLock::new(HashMap::new()),
            states: RwLock::new(vec![other.clone()]),
            other,
            metrics,
        };
        t.metrics.memory.set(t.memory_bytes() as i64);
        t
    }

    /// Seconds since the tracker started (the clock for `last_seen`).
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// The state for a metric name, created on first sight (at most [`MAX_METRICS`]).
    pub fn metric(&self, name: &str) -> Arc<MetricState> {
        if let Some(m) = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return m.clone();
        }
        let mut by_name = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = by_name.get(name) {
            return m.clone();
        }
        if by_name.len() >= MAX_METRICS {
            return self.other.clone();
        }
        let mut states = self.states.write().unwrap_or_else(|p| p.into_inner());
        let m = Arc::new(MetricState::new(
            states.len() as u32,
            name,
            (self.settings.policy)(name),
            self.settings.value_limits.len(),
        ));
        states.push(m.clone());
        by_name.insert(name.to_string(), m.clone());
        m
    }

    /// Every metric state (for reports).
    pub fn metrics(&self) -> Vec<Arc<MetricState>> {
        self.states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// May the series `key` of metric `m` (with these attributes) exist? Admits it if new and
    /// within limits. `now` comes from [`Tracker::now`].
    pub fn admit(&self, m: &MetricState, key: u64, attrs: &[KeyValue], now: u32) -> Verdict {
        if self.touch(m, key, now) {
            return Verdict::Admitted;
        }
        match &self.table {
            Table::Exact(shards) => {
                let shard = &shards[(key >> 58) as usize];
                self.miss_exact(shard, m, key, attrs, now)
            }
            Table::Probabilistic {
                gens,
                cur,
                prev,
                migrated,
                ..
            } => {
                let c = cur.load(Ordering::Acquire) & 1;
                let m_pending = m
                    .prev
                    .load(Ordering::Relaxed)
                    .saturating_sub(m.migrated.load(Ordering::Relaxed));
                let g_pending = prev
                    .load(Ordering::Relaxed)
                    .saturating_sub(migrated.load(Ordering::Relaxed));
                if let Some(r) = self.reserve_budget(m, attrs, now, m_pending, g_pending) {
                    return self.rejected(m, r, attrs);
                }
                gens[c].insert(key);
                self.admitted(m, attrs);
                Verdict::Admitted
            }
        }
    }

    /// The hit path of [`Tracker::admit`]: true when the series is known (its `last_seen` is
    /// now `now`); false when it is new, with nothing changed. It needs no attributes, so a
    /// caller that reads points from the wire asks this first and decodes only on a miss.
    pub fn touch(&self, m: &MetricState, key: u64, now: u32) -> bool {
        match &self.table {
            Table::Exact(shards) => {
                let shard = &shards[(key >> 58) as usize];
                let guard = shard.read().unwrap_or_else(|p| p.into_inner());
                let Some(slot) = guard.get(key) else {
                    return false;
                };
                // write only when the second changed: a store makes the cache line
                // exclusive to this core, and the other core's next lookup pays for it
                if slot.last_seen.load(Ordering::Relaxed) != now {
                    slot.last_seen.store(now, Ordering::Relaxed);
                }
                true
            }
            Table::Probabilistic {
                gens,
                cur,
                migrated,
                ..
            } => {
                let c = cur.load(Ordering::Acquire) & 1;
                let (g_cur, g_prev) = (&gens[c], &gens[1 - c]);
                if g_cur.contains(key) {
                    return true;
                }
                if !g_prev.contains(key) {
                    return false;
                }
                // a known series, first point in this generation: carried over, no check
                g_cur.insert(key);
                m.active.fetch_add(1, Ordering::Relaxed);
                m.migrated.fetch_add(1, Ordering::Relaxed);
                self.active.fetch_add(1, Ordering::Relaxed);
                migrated.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    fn miss_exact(
        &self,
        shard: &RwLock<super::table::Table>,
        m: &MetricState,
        key: u64,
        attrs: &[KeyValue],
        now: u32,
    ) -> Verdict {
        if let Some(r) = self.reserve_budget(m, attrs, now, 0, 0) {
            return self.rejected(m, r, attrs);
        }
        let mut g = shard.write().unwrap_or_else(|p| p.into_inner());
        let (entry, new) = g.insert(key, now, m.id);
        if !new {
            // another thread admitted the same series meanwhile
            entry.last_seen.store(now, Ordering::Relaxed);
        }
        drop(g);
        if new {
            self.admitted(m, attrs);
        } else {
            release(&m.active);
            release(&self.active);
        }
        Verdict::Admitted
    }

    /// Reserves one series of the metric's and the global budget, then checks label values.
    /// Returns the refusing limit, with nothing reserved, or `None` with both reserved.
    fn reserve_budget(
        &self,
        m: &MetricState,
        attrs: &[KeyValue],
        now: u32,
        m_pending: u64,
        g_pending: u64,
    ) -> Option<Reason> {
        if !reserve(&m.active, m.policy.limit, m_pending) {
            return Some(Reason::PerMetric);
        }
        if !reserve(&self.active, self.settings.max_series, g_pending) {
            release(&m.active);
            return Some(Reason::Global);
        }
        if let Some(i) = self.check_values(m, attrs, now) {
            release(&m.active);
            release(&self.active);
            return Some(Reason::LabelValues(i));
        }
        None
    }

    /// `label_value_limits`: admits the point's values of limited labels, or names the label
    /// whose distinct values are exhausted. Values not seen on a new series within
    /// `series_ttl` are forgotten by the sweep.
    fn check_values(&self, m: &MetricState, attrs: &[KeyValue], now: u32) -> Option<usize> {
        if self.settings.value_limits.is_empty() {
            return None;
        }
        let mut found: Vec<(usize, u64)> = Vec::new();
        for kv in attrs {
            if let Some(i) = self
                .settings
                .value_limits
                .iter()
                .position(|(k, _)| *k == kv.key)
            {
                found.push((i, super::value_hash(&kv.value)));
            }
        }
        // lock in index order so two limited labels never deadlock
        found.sort_unstable();
        let mut guards = Vec::with_capacity(found.len());
        for (i, h) in &found {
            let g = m.values[*i].lock().unwrap_or_else(|p| p.into_inner());
            let limit = self.settings.value_limits[*i].1;
            if !g.contains_key(h) && g.len() as u64 >= limit {
                return Some(*i);
            }
            guards.push(g);
        }
        for (g, (_, h)) in guards.iter_mut().zip(&found) {
            g.insert(*h, now);
        }
        None
    }

    fn admitted(&self, m: &MetricState, attrs: &[KeyValue]) {
        m.note_labels(attrs);
        self.metrics.active.set(self.active() as i64);
    }

    fn rejected(&self, m: &MetricState, r: Reason, attrs: &[KeyValue]) -> Verdict {
        m.rejected[r.idx()].fetch_add(1, Ordering::Relaxed);
        m.note_labels(attrs);
        if m.sample_count.fetch_add(1, Ordering::Relaxed) < MAX_SAMPLES as u64 {
            m.samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(super::render_attrs(attrs, 200));
        }
        Verdict::Rejected(r)
    }

    /// Counts points refused for `reason` and handled with `action` (the caller decides).
    pub fn count(&self, reason: Reason, action: Action, points: u64) {
        self.metrics.rejected[reason.idx() * Action::ALL.len() + action.idx()].add(points);
    }

    pub fn count_overflow(&self, m: &MetricState, points: u64) {
        m.overflowed.fetch_add(points, Ordering::Relaxed);
        self.metrics.overflow.add(points);
    }
}
