//! Per-metric state: the metric's policy and counters (hot, atomic), the probabilistic mode's
//! per-generation counts, the distinct values seen per limited label, and the report details
//! (label statistics, sample refused attribute sets, when a trip was last logged).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::{Hll, IdMap, Policy, MAX_LABEL_STATS};

/// Per-metric state. Hot fields are atomics; report details sit behind locks taken on misses.
pub struct MetricState {
    pub id: u32,
    pub name: String,
    pub policy: Policy,
    pub active: AtomicU64,
    /// Probabilistic mode: the previous generation's count and how many of it came back.
    pub(super) prev: AtomicU64,
    pub(super) migrated: AtomicU64,
    pub rejected: [AtomicU64; 3],
    pub overflowed: AtomicU64,
    last_log: AtomicU64,
    pub(super) labels: RwLock<Vec<(String, Arc<Hll>)>>,
    /// Distinct values seen per limited label (`label_value_limits`): value hash → last seen.
    pub(super) values: Vec<Mutex<IdMap<u32>>>,
    pub(super) samples: Mutex<Vec<String>>,
    pub(super) sample_count: AtomicU64,
}

impl MetricState {
    pub(super) fn new(id: u32, name: &str, policy: Policy, limited_labels: usize) -> MetricState {
        MetricState {
            id,
            name: name.to_string(),
            policy,
            active: AtomicU64::new(0),
            prev: AtomicU64::new(0),
            migrated: AtomicU64::new(0),
            rejected: Default::default(),
            overflowed: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
            labels: RwLock::new(Vec::new()),
            values: (0..limited_labels)
                .map(|_| Mutex::new(IdMap::default()))
                .collect(),
            samples: Mutex::new(Vec::new()),
            sample_count: AtomicU64::new(0),
        }
    }

    pub(super) fn note_labels(&self, attrs: &[KeyValue]) {
        for kv in attrs {
            let h = crate::cardinality::value_hash(&kv.value);
            let found = {
                let g = self.labels.read().unwrap_or_else(|p| p.into_inner());
                g.iter().find(|(k, _)| *k == kv.key).map(|(_, h)| h.clone())
            };
            match found {
                Some(hll) => hll.add(h),
                None => {
                    let mut g = self.labels.write().unwrap_or_else(|p| p.into_inner());
                    if g.len() < MAX_LABEL_STATS && !g.iter().any(|(k, _)| *k == kv.key) {
                        let hll = Arc::new(Hll::default());
                        hll.add(h);
                        g.push((kv.key.clone(), hll));
                    }
                }
            }
        }
    }

    /// Estimated distinct values per label key seen on new series, largest first.
    pub fn label_values(&self) -> Vec<(String, u64)> {
        let g = self.labels.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = g.iter().map(|(k, h)| (k.clone(), h.estimate())).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The label with the most distinct values (the one `strip_label` removes).
    pub fn top_label(&self, excluded: &[String]) -> Option<String> {
        self.label_values()
            .into_iter()
            .find(|(k, _)| !excluded.contains(k))
            .map(|(k, _)| k)
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum()
    }

    /// True at most once a minute per metric: when a limit trips, log then.
    pub fn should_log(&self, now_s: u32) -> bool {
        let last = self.last_log.load(Ordering::Relaxed);
        let now = u64::from(now_s) + 60;
        (last == 0 || now >= last + 60)
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}
