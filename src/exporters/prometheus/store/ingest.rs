//! From an OTLP metrics request to points: job / instance and `target_info` from the resource,
//! scope labels, family names and units, point labels (data point attributes win), values,
//! exemplars and temporality per metric type.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric::Data, number_data_point, Exemplar as PbExemplar,
};

use super::temporality::{temporality, Temporality};
use super::{
    labels::render_pairs, Applied, Exemplar, ExpHist, ExpValue, FamilyRef, Hist, Kind, Point,
    Series, Store, SummaryValue, Value,
};
use crate::data::hex;
use crate::exporters::prometheus::translate::{
    family_name, labels as attr_labels, sorted_labels, value_string, NameKind,
};

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

/// Label texts already rendered in one scope, by attribute set. A hit is an exact match of the
/// attributes (same keys, values and order), never a hash match alone. Remembering costs a hash,
/// a lookup and a copy per point, so it stops when it does not pay: after the scope's second
/// metric, or once it holds [`Rendered::MAX`] sets, with fewer than one hit per four misses.
#[derive(Default)]
struct Rendered<'r> {
    by_hash: HashMap<u64, (&'r [KeyValue], String)>,
    hits: u32,
    misses: u32,
    metrics: u32,
    off: bool,
}

impl<'r> Rendered<'r> {
    const MAX: usize = 4096;

    fn get_or_render(&mut self, attrs: &'r [KeyValue], render: impl FnOnce() -> String) -> String {
        if self.off {
            return render();
        }
        let h = crate::cardinality::attrs_hash(attrs, &[]);
        if let Some((seen, text)) = self.by_hash.get(&h) {
            if *seen == attrs {
                self.hits += 1;
                return text.clone();
            }
            // a different set with the same hash: rendered, not remembered
            return render();
        }
        self.misses += 1;
        if self.by_hash.len() >= Self::MAX {
            self.stop_unless_paying();
            return render();
        }
        let text = render();
        self.by_hash.insert(h, (attrs, text.clone()));
        text
    }

    /// Called after each metric of the scope.
    fn metric_done(&mut self) {
        self.metrics += 1;
        if self.metrics >= 2 {
            self.stop_unless_paying();
        }
    }

    fn stop_unless_paying(&mut self) {
        if !self.off && self.hits < self.misses / 4 {
            self.off = true;
            self.by_hash = HashMap::new();
        }
    }
}

impl Store {
    /// Stores every point of a request.
    pub fn ingest(&self, req: &ExportMetricsServiceRequest) {
        self.ingest_with(req, None);
    }

    /// Stores every point of a request and tells `obs` what each applied point made of its
    /// series (points dropped as out of order, over `max_series` or of a conflicting type are
    /// not reported).
    pub fn ingest_observed(
        &self,
        req: &ExportMetricsServiceRequest,
        obs: &mut dyn FnMut(Applied<'_>),
    ) {
        self.ingest_with(req, Some(obs));
    }

    /// Without an observer nothing is looked up again after a point is applied (the
    /// `prometheus` exporter's path stays as it was).
    fn ingest_with(
        &self,
        req: &ExportMetricsServiceRequest,
        mut obs: Option<&mut dyn FnMut(Applied<'_>)>,
    ) {
        let now = self.clock.now();
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
                let info_labels = render_pairs(l);
                self.put(
                    "target_info",
                    Kind::Info,
                    "Target metadata",
                    "",
                    &info_labels,
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
                if let Some(o) = obs.as_mut() {
                    self.observe("target_info", &info_labels, &mut **o);
                }
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
                // the metrics of one scope usually report the same attribute sets: each set's
                // label text is rendered once per scope
                let mut rendered = Rendered::default();
                for m in &sm.metrics {
                    self.ingest_metric(m, &scoped, &mut rendered, now, &mut obs);
                    rendered.metric_done();
                }
            }
        }
        self.c.series.set(self.series_count() as i64);
    }

    fn point_labels(&self, scoped: &BTreeMap<String, String>, attrs: &[KeyValue]) -> String {
        let own = sorted_labels(attrs);
        // both sorted by name: merge them; data point attributes win over resource-derived
        // labels of the same name
        let mut a = scoped
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .peekable();
        let mut b = own.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).peekable();
        render_pairs(std::iter::from_fn(|| match (a.peek(), b.peek()) {
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

    fn ingest_metric<'r>(
        &self,
        m: &'r opentelemetry_proto::tonic::metrics::v1::Metric,
        scoped: &BTreeMap<String, String>,
        rendered: &mut Rendered<'r>,
        now: u32,
        obs: &mut Option<&mut dyn FnMut(Applied<'_>)>,
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
            let u = crate::exporters::prometheus::translate::unit_suffix(&m.unit);
            let named = !u.is_empty()
                && (name.ends_with(&format!("_{u}")) || name.ends_with(&format!("_{u}_total")));
            FamilyRef {
                name,
                kind,
                help,
                unit: if named { u } else { String::new() },
            }
        };
        let mut point = |attrs: &'r [KeyValue],
                         flags: u32,
                         start: u64,
                         time: u64,
                         value: Value,
                         delta: bool,
                         ex: &[PbExemplar]| Point {
            labels: rendered.get_or_render(attrs, || self.point_labels(scoped, attrs)),
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
                        obs,
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
                        obs,
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
                        obs,
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
                        obs,
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
                        obs,
                    );
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{kv, s};

    #[test]
    fn rendered_labels_are_reused_only_for_the_same_attributes() {
        let a = vec![kv("x", s("1")), kv("y", s("2"))];
        let same = a.clone();
        // the same set in another order hashes the same but is not the same slice: rendered
        let reordered = vec![kv("y", s("2")), kv("x", s("1"))];
        let other = vec![kv("x", s("9"))];
        let mut r = Rendered::default();
        let calls = std::cell::Cell::new(0);
        let render = |text: &str| {
            calls.set(calls.get() + 1);
            text.to_string()
        };
        assert_eq!(r.get_or_render(&a, || render("A")), "A");
        assert_eq!(r.get_or_render(&same, || render("not rendered")), "A");
        assert_eq!(r.get_or_render(&reordered, || render("R")), "R");
        assert_eq!(r.get_or_render(&other, || render("O")), "O");
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_scope_whose_sets_never_repeat_stops_remembering_after_its_second_metric() {
        let sets: Vec<Vec<KeyValue>> = (0..300).map(|i| vec![kv("i", s(&i.to_string()))]).collect();
        let mut r = Rendered::default();
        for metric in sets.chunks(100).take(2) {
            for attrs in metric {
                r.get_or_render(attrs, || "t".into());
            }
            r.metric_done();
        }
        assert!(r.off && r.by_hash.is_empty(), "200 misses, no hit: off");
        // while sets repeat across metrics it stays on
        let mut r = Rendered::default();
        for _ in 0..3 {
            for attrs in &sets[..100] {
                r.get_or_render(attrs, || "t".into());
            }
            r.metric_done();
        }
        assert!(!r.off);
        assert_eq!((r.hits, r.misses), (200, 100));
    }
}
