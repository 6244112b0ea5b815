//! How a point changes its series: cumulative points replace the value (an older one is
//! dropped), delta points add up when their window follows the last one, `NoRecordedValue`
//! removes the series (the rules in the module docs of [`super`]).

use std::sync::atomic::Ordering;

use super::{series_id, Applied, FamilyRef, Point, Series, Store, Value};

pub(super) enum Temporality {
    Delta,
    Cumulative,
}

pub(super) fn temporality(t: i32) -> Temporality {
    if t == 1 {
        Temporality::Delta
    } else {
        Temporality::Cumulative
    }
}

const NO_RECORDED_VALUE: u32 = 1;

/// Adds a delta point's value to a stored one, in place. False when they cannot be added (a
/// kind or bucket layout that changed).
fn add_delta(into: &mut Value, more: &Value) -> bool {
    match (into, more) {
        (Value::Number(a), Value::Number(b)) => *a += b,
        (Value::Histogram(a), Value::Histogram(b))
            if a.bounds == b.bounds && a.counts.len() == b.counts.len() =>
        {
            for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                *x = x.saturating_add(*y);
            }
            a.sum += b.sum;
            a.count = a.count.saturating_add(b.count);
        }
        (Value::Exponential(a), Value::Exponential(b)) => {
            a.h.add(&b.h);
            a.sum += b.sum;
            a.count = a.count.saturating_add(b.count);
        }
        _ => return false,
    }
    true
}

impl Store {
    /// Applies one point to its series (temporality rules in the module docs), in place.
    pub(super) fn update(
        &self,
        f: &FamilyRef,
        p: Point,
        now: u32,
        obs: &mut Option<&mut dyn FnMut(Applied<'_>)>,
    ) {
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
            // a marker older than the series' last point is out of order: ignored (a stale
            // marker written before a newer sample would be refused by a remote-write store)
            let older = self.families.get(name).is_some_and(|f| {
                f.series
                    .get(labels.as_str())
                    .is_some_and(|s| time != 0 && time < s.time_ns)
            });
            if older {
                self.c.out_of_order.inc();
                return;
            }
            let removed = self
                .families
                .get_mut(name)
                .and_then(|mut f| f.series.remove_entry(labels.as_str()));
            let last = removed.map(|(key, last)| {
                self.series.fetch_sub(1, Ordering::Relaxed);
                self.limiter.forget(series_id(name, &labels));
                self.labels.release(key);
                last
            });
            let Some(obs) = obs.as_mut() else { return };
            obs(Applied::Stale {
                family: name,
                kind,
                labels: &labels,
                time_ns: time,
                last: last.as_ref(),
            });
            return;
        }
        let c_ooo = &self.c.out_of_order;
        let mut applied = false;
        self.put(name, kind, help, unit, &labels, |existing| {
            applied = true;
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
                    applied = false;
                    return None;
                }
                // a start time that moves forward is a reset: take the new value as is
                s.value = value;
                s.start_ns = start;
            } else {
                // delta: add windows that start where (or after) the last one ended
                if time <= s.time_ns || (start != 0 && start < s.time_ns) {
                    c_ooo.inc();
                    applied = false;
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
        if applied {
            if let Some(obs) = obs.as_mut() {
                self.observe(name, &labels, &mut **obs);
            }
        }
    }
}
