//! The `overflow` action: refused points fold into one series per metric and source group whose
//! only attribute is `otel.metric.overflow="true"`. Delta sums and histograms add up, gauges
//! keep the latest value; cumulative sums and histograms go through the bounded side table of
//! each overflowed source's previous value, so the overflow series grows by each source's
//! increase (see the module docs of [`super`] for resets, a full side table and expiry).

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use super::points::{Cum, Kind, Pt};
use super::{CardinalityLimitProcessor, Ctx};
use crate::cardinality::{Action, Reason, OVERFLOW_KEY};
use crate::processors::Rejections;

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

impl Overflow {
    /// Forgets sources and totals not seen for longer than `ttl_s` seconds (at `now`).
    pub(super) fn expire(&mut self, now: u32, ttl_s: u32) {
        self.sources
            .retain(|_, s| now.saturating_sub(s.last_seen) <= ttl_s);
        self.totals
            .retain(|_, s| now.saturating_sub(s.last_seen) <= ttl_s);
    }
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

impl CardinalityLimitProcessor {
    pub(super) fn overflow<P: Pt>(
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
}
