//! From what a point did to its series (the `prometheus` exporter's store, shared: names,
//! units, labels, `target_info`, delta → cumulative) to remote-write time series.
//!
//! One OTLP point becomes one or more series — a counter or gauge one, a histogram its
//! `_bucket` series (cumulative, `le` as the text format writes it, `+Inf` last), `_sum` and
//! `_count`, a summary its quantiles, `_sum` and `_count` — kept together as a [`PointSeries`]
//! so they travel in one request of one shard. Labels are sorted by name with `__name__` among
//! them; `external_labels` are added where the series does not have the label already (as
//! Prometheus does). A point flagged `NoRecordedValue` becomes the same series carrying
//! Prometheus' staleness marker. Exemplars (`trace_id`, `span_id`) go on counters and on the
//! first histogram bucket that holds their value.

use super::wire::{Exemplar, Label, MetricMetadata, MetricType, Sample, TimeSeries, STALE_NAN};
use crate::cardinality::{combine, hash_str};
use crate::exporters::prometheus::store::{
    parse_pairs, Applied, Exemplar as StoreExemplar, Kind, Series, Value,
};

/// Translation settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Sorted by name.
    pub external_labels: Vec<(String, String)>,
    /// Send `target_info` (resource attributes) series.
    pub target_info: bool,
    /// Send `<name>_created` series (the start time, in seconds) for counters, histograms and
    /// summaries.
    pub created: bool,
}

/// The series of one point: they share a shard and a request.
#[derive(Debug, Clone)]
pub struct PointSeries {
    /// Picks the shard: the same for every point of one OTLP series, so its samples stay in
    /// order.
    pub key: u64,
    pub series: Vec<TimeSeries>,
    pub metadata: MetricMetadata,
}

fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram => MetricType::Histogram,
        Kind::Summary => MetricType::Summary,
        Kind::Info => MetricType::Gauge,
    }
}

/// `le` and `quantile` values as the text format writes them.
fn label_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

struct Builder<'a> {
    base: Vec<Label>,
    family: &'a str,
    time_ms: i64,
    /// Every value becomes the staleness marker.
    stale: bool,
    out: Vec<TimeSeries>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        suffix: &str,
        extra: Option<(&str, String)>,
        value: f64,
        ex: Option<&StoreExemplar>,
    ) {
        let mut labels = Vec::with_capacity(self.base.len() + 2);
        // an attribute named `__name__` never competes with the metric's name
        labels.extend(self.base.iter().filter(|l| l.name != "__name__").cloned());
        labels.push(Label {
            name: "__name__".into(),
            value: format!("{}{suffix}", self.family),
        });
        if let Some((k, v)) = extra {
            labels.retain(|l| l.name != k);
            labels.push(Label {
                name: k.into(),
                value: v,
            });
        }
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let value = if self.stale {
            f64::from_bits(STALE_NAN)
        } else {
            value
        };
        let exemplars = match ex {
            Some(e) if !self.stale => vec![Exemplar {
                labels: vec![
                    Label {
                        name: "span_id".into(),
                        value: e.span_id.clone(),
                    },
                    Label {
                        name: "trace_id".into(),
                        value: e.trace_id.clone(),
                    },
                ],
                value: e.value,
                timestamp: if e.time_ns > 0 {
                    ms(e.time_ns)
                } else {
                    self.time_ms
                },
            }],
            _ => Vec::new(),
        };
        self.out.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: self.time_ms,
            }],
            exemplars,
        });
    }

    /// `buckets`: (upper bound, count in that bucket), ascending, without `+Inf`.
    fn histogram(
        &mut self,
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
        ex: Option<&StoreExemplar>,
    ) {
        let mut cumulative = 0u64;
        let mut ex_left = ex;
        for (le, c) in buckets {
            cumulative = cumulative.saturating_add(*c);
            let here = ex_left.filter(|e| e.value <= *le);
            if here.is_some() {
                ex_left = None;
            }
            self.push(
                "_bucket",
                Some(("le", label_float(*le))),
                cumulative as f64,
                here,
            );
        }
        self.push(
            "_bucket",
            Some(("le", "+Inf".into())),
            count as f64,
            ex_left,
        );
        self.push("_sum", None, sum, None);
        self.push("_count", None, count as f64, None);
    }

    fn value(&mut self, kind: Kind, value: &Value, ex: Option<&StoreExemplar>) {
        match value {
            Value::Number(v) => self.push("", None, *v, ex.filter(|_| kind == Kind::Counter)),
            Value::Histogram(h) => {
                let buckets: Vec<(f64, u64)> = h
                    .bounds
                    .iter()
                    .copied()
                    .zip(h.counts.iter().copied())
                    .collect();
                self.histogram(&buckets, h.sum, h.count, ex);
            }
            Value::Exponential(e) => self.histogram(&e.h.classic(), e.sum, e.count, ex),
            Value::Summary(s) => {
                for (q, v) in &s.quantiles {
                    self.push("", Some(("quantile", label_float(*q))), *v, None);
                }
                self.push("_sum", None, s.sum, None);
                self.push("_count", None, s.count as f64, None);
            }
        }
    }

    /// `<family>_created` (counters without `_total`, as OpenMetrics names it).
    fn created(&mut self, kind: Kind, start_ns: u64) {
        if start_ns == 0 || !matches!(kind, Kind::Counter | Kind::Histogram | Kind::Summary) {
            return;
        }
        let full = self.family;
        let base = match full.strip_suffix("_total") {
            Some(b) if kind == Kind::Counter && !b.is_empty() => b,
            _ => full,
        };
        self.family = base;
        self.push("_created", None, start_ns as f64 / 1e9, None);
        self.family = full;
    }
}

impl Settings {
    fn base(&self, labels: &str) -> Vec<Label> {
        let mut base: Vec<Label> = parse_pairs(labels)
            .into_iter()
            .map(|(name, value)| Label { name, value })
            .collect();
        for (k, v) in &self.external_labels {
            if !base.iter().any(|l| &l.name == k) {
                base.push(Label {
                    name: k.clone(),
                    value: v.clone(),
                });
            }
        }
        base
    }

    /// The series one applied point makes (`None` for `target_info` when it is off).
    /// `now_ms` stands in for a point without a timestamp (`target_info`).
    pub fn point(&self, a: Applied<'_>, now_ms: i64) -> Option<PointSeries> {
        let (family, kind, help, unit, labels) = match &a {
            Applied::Series {
                family,
                kind,
                help,
                unit,
                labels,
                ..
            } => (*family, *kind, *help, *unit, *labels),
            Applied::Stale {
                family,
                kind,
                labels,
                ..
            } => (*family, *kind, "", "", *labels),
        };
        if kind == Kind::Info && !self.target_info {
            return None;
        }
        let mut b = Builder {
            base: self.base(labels),
            family,
            time_ms: now_ms,
            stale: false,
            out: Vec::new(),
        };
        match a {
            Applied::Series { series, .. } => {
                let Series {
                    value,
                    start_ns,
                    time_ns,
                    exemplar,
                    ..
                } = series;
                if *time_ns > 0 {
                    b.time_ms = ms(*time_ns);
                }
                b.value(kind, value, exemplar.as_deref());
                if self.created {
                    b.created(kind, *start_ns);
                }
            }
            Applied::Stale { time_ns, last, .. } => {
                if time_ns > 0 {
                    b.time_ms = ms(time_ns);
                }
                b.stale = true;
                match last {
                    Some(s) => b.value(kind, &s.value, None),
                    None if matches!(kind, Kind::Histogram | Kind::Summary) => {
                        b.push("_sum", None, 0.0, None);
                        b.push("_count", None, 0.0, None);
                    }
                    None => b.push("", None, 0.0, None),
                }
            }
        }
        Some(PointSeries {
            key: combine(hash_str(family), hash_str(labels)),
            series: b.out,
            metadata: MetricMetadata {
                r#type: metric_type(kind) as i32,
                metric_family_name: family.to_string(),
                help: help.to_string(),
                unit: unit.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::prometheus::store::{render_pairs, Hist};

    fn names(p: &PointSeries) -> Vec<String> {
        p.series
            .iter()
            .map(|s| {
                s.labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    fn series(value: Value) -> Series {
        Series {
            value,
            updated: 0,
            start_ns: 1_000_000_000_000,
            time_ns: 1_700_000_000_123_456_789,
            exemplar: None,
        }
    }

    #[test]
    fn a_histogram_point_is_cumulative_buckets_sum_and_count_sorted_and_labelled() {
        let labels = render_pairs([("Zone", "eu"), ("job", "api"), ("le", "ignored")]);
        let s = series(Value::Histogram(Box::new(Hist {
            bounds: vec![0.5, 1.0],
            counts: vec![2, 3, 1],
            sum: 4.5,
            count: 6,
        })));
        let settings = Settings {
            external_labels: vec![("cluster".into(), "c1".into()), ("job".into(), "x".into())],
            target_info: true,
            created: true,
        };
        let p = settings
            .point(
                Applied::Series {
                    family: "rpc_seconds",
                    kind: Kind::Histogram,
                    help: "h",
                    unit: "seconds",
                    labels: &labels,
                    series: &s,
                },
                0,
            )
            .unwrap();
        assert_eq!(
            names(&p),
            vec![
                "Zone=eu,__name__=rpc_seconds_bucket,cluster=c1,job=api,le=0.5",
                "Zone=eu,__name__=rpc_seconds_bucket,cluster=c1,job=api,le=1",
                "Zone=eu,__name__=rpc_seconds_bucket,cluster=c1,job=api,le=+Inf",
                "Zone=eu,__name__=rpc_seconds_sum,cluster=c1,job=api,le=ignored",
                "Zone=eu,__name__=rpc_seconds_count,cluster=c1,job=api,le=ignored",
                "Zone=eu,__name__=rpc_seconds_created,cluster=c1,job=api,le=ignored",
            ]
        );
        let values: Vec<f64> = p.series.iter().map(|s| s.samples[0].value).collect();
        assert_eq!(values, vec![2.0, 5.0, 6.0, 4.5, 6.0, 1000.0]);
        assert!(p
            .series
            .iter()
            .all(|s| s.samples[0].timestamp == 1_700_000_000_123));
        assert_eq!(p.metadata.r#type, MetricType::Histogram as i32);
    }

    #[test]
    fn a_stale_point_marks_every_series_it_had() {
        let labels = render_pairs([("job", "api")]);
        let last = series(Value::Histogram(Box::new(Hist {
            bounds: vec![1.0],
            counts: vec![1, 1],
            sum: 2.0,
            count: 2,
        })));
        let p = Settings::default()
            .point(
                Applied::Stale {
                    family: "rpc_seconds",
                    kind: Kind::Histogram,
                    labels: &labels,
                    time_ns: 5_000_000,
                    last: Some(&last),
                },
                0,
            )
            .unwrap();
        assert_eq!(p.series.len(), 4);
        for s in &p.series {
            assert_eq!(s.samples[0].value.to_bits(), STALE_NAN);
            assert_eq!(s.samples[0].timestamp, 5);
        }
        // a counter never seen: one marker
        let p = Settings::default()
            .point(
                Applied::Stale {
                    family: "hits_total",
                    kind: Kind::Counter,
                    labels: &labels,
                    time_ns: 0,
                    last: None,
                },
                42,
            )
            .unwrap();
        assert_eq!(names(&p), vec!["__name__=hits_total,job=api"]);
        assert_eq!(p.series[0].samples[0].timestamp, 42);
    }

    #[test]
    fn counters_carry_exemplars_and_created_drops_total_and_target_info_can_be_off() {
        let labels = render_pairs([("job", "api")]);
        let mut s = series(Value::Number(7.0));
        s.exemplar = Some(Box::new(StoreExemplar {
            trace_id: "ab".into(),
            span_id: "cd".into(),
            value: 1.0,
            time_ns: 0,
        }));
        let settings = Settings {
            created: true,
            ..Default::default()
        };
        let p = settings
            .point(
                Applied::Series {
                    family: "hits_total",
                    kind: Kind::Counter,
                    help: "",
                    unit: "",
                    labels: &labels,
                    series: &s,
                },
                0,
            )
            .unwrap();
        assert_eq!(
            names(&p),
            vec![
                "__name__=hits_total,job=api",
                "__name__=hits_created,job=api"
            ]
        );
        assert_eq!(p.series[0].exemplars.len(), 1);
        assert_eq!(p.series[0].exemplars[0].labels[1].value, "ab");
        let info = settings.point(
            Applied::Series {
                family: "target_info",
                kind: Kind::Info,
                help: "",
                unit: "",
                labels: &labels,
                series: &s,
            },
            0,
        );
        assert!(info.is_none());
    }
}
