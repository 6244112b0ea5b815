//! `GET /debug/cardinality?limit=N`: where the series are, per component, as JSON shaped like
//! Prometheus' `/api/v1/status/tsdb` (`headStats`, `seriesCountByMetricName`,
//! `labelValueCountByLabelName`), plus what otelgw adds: limits, the label with the most values
//! per metric (`topLabelByMetricName`, as `metric:label`), rejected and overflowed points per
//! metric, and a few sample offending attribute sets. Per label-value pair series counts are not
//! kept (they would cost memory per value). Lists are sorted largest first and cut at `limit` (default 10).
//! Distinct-value counts are HyperLogLog estimates (~13%) over new series.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use serde_json::{json, Value};

use super::tracker::Tracker;

/// Every live tracker, for the admin endpoint. Trackers register at build; dropped ones vanish.
#[derive(Default)]
pub struct Board {
    trackers: Mutex<Vec<Weak<Tracker>>>,
}

impl Board {
    pub fn register(&self, t: &Arc<Tracker>) {
        let mut g = self.trackers.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|w| w.strong_count() > 0);
        g.push(Arc::downgrade(t));
    }

    pub fn live(&self) -> Vec<Arc<Tracker>> {
        let g = self.trackers.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().filter_map(Weak::upgrade).collect()
    }

    /// The report for every live tracker.
    pub fn render(&self, limit: usize) -> Value {
        let components: Vec<Value> = self.live().iter().map(|t| report(t, limit)).collect();
        json!({ "status": "success", "data": { "components": components } })
    }
}

fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<Value> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter()
        .filter(|(_, n)| *n > 0)
        .take(limit)
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

/// One component's report.
pub fn report(t: &Tracker, limit: usize) -> Value {
    let metrics = t.metrics();
    let mut by_metric = Vec::new();
    let mut by_label: std::collections::HashMap<String, u64> = Default::default();
    let mut pairs = Vec::new();
    let mut offenders = Vec::new();
    for m in &metrics {
        let active = m.active.load(Ordering::Relaxed);
        by_metric.push((m.name.clone(), active));
        let labels = m.label_values();
        for (k, n) in &labels {
            let e = by_label.entry(k.clone()).or_default();
            *e = (*e).max(*n);
        }
        if let Some((k, n)) = labels.first() {
            pairs.push((format!("{}:{}", m.name, k), *n));
        }
        let rejected = m.rejected_total();
        let overflowed = m.overflowed.load(Ordering::Relaxed);
        if rejected > 0 || overflowed > 0 {
            offenders.push((m.clone(), rejected, overflowed, labels));
        }
    }
    offenders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.name.cmp(&b.0.name)));
    let offenders: Vec<Value> = offenders
        .into_iter()
        .take(limit)
        .map(|(m, rejected, overflowed, labels)| {
            let reasons: serde_json::Map<String, Value> = super::Reason::NAMES
                .iter()
                .zip(&m.rejected)
                .map(|(n, c)| (n.to_string(), json!(c.load(Ordering::Relaxed))))
                .collect();
            json!({
                "metric": m.name,
                "series": m.active.load(Ordering::Relaxed),
                "limit": m.policy.limit,
                "action": m.policy.action.as_str(),
                "rejectedPoints": rejected,
                "rejectedByReason": reasons,
                "overflowPoints": overflowed,
                "topLabel": labels.first().map(|(k, _)| k.clone()),
                "labelValueCountByLabelName": top(labels, limit),
                "sampleRejectedSeries": m.samples(),
            })
        })
        .collect();
    let s = &t.settings;
    json!({
        "component": s.name,
        "mode": format!("{:?}", s.mode).to_lowercase(),
        "headStats": {
            "numSeries": t.active_including_pending(),
            "maxSeries": s.max_series,
            "numMetrics": metrics.len().saturating_sub(1),
            "memoryBytes": t.memory_bytes(),
        },
        "seriesCountByMetricName": top(by_metric, limit),
        "labelValueCountByLabelName": top(by_label.into_iter().collect(), limit),
        "topLabelByMetricName": top(pairs, limit),
        "rejected": offenders,
    })
}
