//! Store and rendering: golden files for both formats, temporality cases (delta accumulation,
//! gaps, out-of-order, resets), NoRecordedValue, type conflicts, the series cap, expiry.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AV, InstrumentationScope};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::render::{render, Format};
use super::store::{Applied, Options, Store};
use crate::telemetry::metrics::Registry;
use crate::testdata::{kv, s};

const T0: u64 = 1_700_000_000_000_000_000;
const MIN: u64 = 60_000_000_000;

fn store(expiration: Duration, max_series: usize) -> Store {
    Store::new(
        Options {
            namespace: String::new(),
            const_labels: Default::default(),
            add_suffixes: true,
            resource_to_labels: false,
            max_series,
            expiration,
        },
        &Registry::new(),
        "prometheus",
    )
}

fn req(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("shop")),
                    kv("service.namespace", s("prod")),
                    kv("service.instance.id", s("i-1")),
                    kv("host.name", s("h1")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "otelgw.test".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn num(
    v: f64,
    start: u64,
    time: u64,
    attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    unit: &str,
    monotonic: bool,
    temporality: i32,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn exemplar(v: f64) -> Exemplar {
    Exemplar {
        time_unix_nano: T0 + MIN - 1_000_000_000,
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        value: Some(exemplar::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn fixed_input() -> ExportMetricsServiceRequest {
    let mut counter = num(
        42.0,
        T0,
        T0 + MIN,
        vec![kv("http.route", s("/cart")), kv("http.method", s("GET"))],
    );
    counter.value = Some(number_data_point::Value::AsInt(42));
    counter.exemplars = vec![exemplar(1.0)];
    req(vec![
        Metric {
            description: "Requests served".into(),
            ..sum("http.server.requests", "{request}", true, 2, vec![counter])
        },
        Metric {
            name: "process.cpu.utilization".into(),
            unit: "1".into(),
            description: "CPU \"busy\" share\nper core".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![num(0.25, 0, T0 + MIN, vec![kv("cpu", AV::IntValue(0))])],
            })),
            ..Default::default()
        },
        sum(
            "queue.depth",
            "",
            false,
            2,
            vec![num(7.0, T0, T0 + MIN, vec![])],
        ),
        Metric {
            name: "http.server.duration".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + MIN,
                    count: 6,
                    sum: Some(1.5),
                    bucket_counts: vec![1, 2, 3, 0],
                    explicit_bounds: vec![0.1, 0.5, 1.0],
                    exemplars: vec![exemplar(0.3)],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.latency".into(),
            unit: "s".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + MIN,
                    count: 5,
                    sum: Some(20.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: 0,
                        bucket_counts: vec![1, 2, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "legacy.quantiles".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + MIN,
                    count: 10,
                    sum: 100.0,
                    quantile_values: vec![summary_data_point::ValueAtQuantile {
                        quantile: 0.5,
                        value: 9.0,
                    }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ])
}

fn golden(name: &str, got: &str) {
    let path = format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("OTELGW_BLESS").is_ok() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {path}; run with OTELGW_BLESS=1 once and review it"));
    assert_eq!(
        got, want,
        "{name} differs from the golden file (OTELGW_BLESS=1 to update after review)"
    );
}

#[test]
fn golden_text_and_openmetrics() {
    let st = store(Duration::from_secs(300), 0);
    st.ingest(&fixed_input());
    golden("fixed.txt", &render(&st, Format::Text, false));
    golden("fixed.om.txt", &render(&st, Format::OpenMetrics, false));
}

fn value_of(st: &Store, family: &str) -> Vec<f64> {
    let f = st.families.get(family).unwrap();
    f.series
        .values()
        .map(|s| match &s.value {
            super::store::Value::Number(v) => *v,
            super::store::Value::Histogram(h) => h.count as f64,
            super::store::Value::Exponential(e) => e.count as f64,
            super::store::Value::Summary(q) => q.count as f64,
        })
        .collect()
}

#[test]
fn delta_sums_accumulate_across_gaps_and_drop_out_of_order_points() {
    let st = store(Duration::from_secs(300), 0);
    let d = |v, start, time| {
        req(vec![sum(
            "jobs",
            "",
            true,
            1,
            vec![num(v, start, time, vec![])],
        )])
    };
    st.ingest(&d(5.0, T0, T0 + MIN));
    st.ingest(&d(3.0, T0 + MIN, T0 + 2 * MIN)); // contiguous
    assert_eq!(value_of(&st, "jobs_total"), vec![8.0]);
    st.ingest(&d(2.0, T0 + 5 * MIN, T0 + 6 * MIN)); // a gap: nothing was reported in between
    assert_eq!(value_of(&st, "jobs_total"), vec![10.0]);
    st.ingest(&d(100.0, T0 + 2 * MIN, T0 + 3 * MIN)); // out of order: already past
    st.ingest(&d(100.0, T0 + 5 * MIN + 1, T0 + 7 * MIN)); // overlaps the counted window
    assert_eq!(value_of(&st, "jobs_total"), vec![10.0]);
    // non-monotonic delta sums accumulate too (the Collector drops them)
    let nm = |v, start, time| {
        req(vec![sum(
            "balance",
            "",
            false,
            1,
            vec![num(v, start, time, vec![])],
        )])
    };
    st.ingest(&nm(10.0, T0, T0 + MIN));
    st.ingest(&nm(-4.0, T0 + MIN, T0 + 2 * MIN));
    assert_eq!(value_of(&st, "balance"), vec![6.0]);
    let text = render(&st, Format::Text, false);
    assert!(text.contains("# TYPE balance gauge\n"), "{text}");
}

#[test]
fn cumulative_resets_and_out_of_order_points() {
    let st = store(Duration::from_secs(300), 0);
    let c = |v, start, time| {
        req(vec![sum(
            "jobs",
            "",
            true,
            2,
            vec![num(v, start, time, vec![])],
        )])
    };
    st.ingest(&c(50.0, T0, T0 + MIN));
    st.ingest(&c(40.0, T0, T0 + 30_000_000_000)); // older point: ignored
    assert_eq!(value_of(&st, "jobs_total"), vec![50.0]);
    st.ingest(&c(3.0, T0 + 2 * MIN, T0 + 3 * MIN)); // start moved forward: a reset, taken as is
    assert_eq!(value_of(&st, "jobs_total"), vec![3.0]);
    // a staleness marker older than the last point is out of order: the series stays, and
    // a pushing exporter is not told (it would write a marker before a newer sample)
    let stale = |time| {
        let mut r = c(0.0, T0, time);
        if let Some(Data::Sum(s)) = &mut r.resource_metrics[0].scope_metrics[0].metrics[0].data {
            s.data_points[0].flags = 1;
            s.data_points[0].value = None;
        }
        r
    };
    let mut told = 0;
    let mut count = |a: Applied<'_>| {
        if matches!(a, Applied::Stale { .. }) {
            told += 1
        }
    };
    st.ingest_observed(&stale(T0 + 2 * MIN), &mut count);
    st.ingest_observed(&stale(T0 + 2 * MIN), &mut count);
    assert_eq!(value_of(&st, "jobs_total"), vec![3.0]);
    st.ingest_observed(&stale(T0 + 4 * MIN), &mut count);
    assert_eq!((value_of(&st, "jobs_total").len(), told), (0, 1));
    st.ingest(&c(3.0, T0 + 2 * MIN, T0 + 3 * MIN));
    let om = render(&st, Format::OpenMetrics, false);
    // _created follows the new start time
    assert!(om.contains("jobs_created{instance=\"i-1\",job=\"prod/shop\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\"} 1700000120.0\n"), "{om}");
}

#[test]
fn delta_histograms_add_up_including_exponential_ones_at_different_scales() {
    let st = store(Duration::from_secs(300), 0);
    let h = |counts: Vec<u64>, start, time| {
        req(vec![Metric {
            name: "lat".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: counts.iter().sum(),
                    sum: Some(1.0),
                    bucket_counts: counts,
                    explicit_bounds: vec![1.0, 2.0],
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        }])
    };
    st.ingest(&h(vec![1, 1, 0], T0, T0 + MIN));
    st.ingest(&h(vec![0, 2, 5], T0 + MIN, T0 + 2 * MIN));
    let text = render(&st, Format::Text, false);
    assert!(text.contains("lat_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\",le=\"2\"} 4\n"), "{text}");
    assert!(text.contains("le=\"+Inf\"} 9\n"), "{text}");
    assert!(
        text.contains("lat_seconds_sum{") && text.contains("} 2\n"),
        "{text}"
    );

    let e = |scale, offset, counts: Vec<u64>, start, time| {
        req(vec![Metric {
            name: "exp".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: counts.iter().sum(),
                    sum: Some(10.0),
                    scale,
                    positive: Some(Buckets {
                        offset,
                        bucket_counts: counts,
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        }])
    };
    // scale 1: base √2, buckets (1, √2], (√2, 2], (2, 2√2]; then scale 0: (1, 2], (2, 4]
    st.ingest(&e(1, 0, vec![1, 2, 4], T0, T0 + MIN));
    st.ingest(&e(0, 0, vec![10, 20], T0 + MIN, T0 + 2 * MIN));
    let text = render(&st, Format::Text, false);
    // at scale 0: (1,2] = 1 + 2 + 10 = 13; (2,4] = 4 + 20 = 24; total 37
    assert!(
        text.contains("exp_bucket{") && text.contains("le=\"2\"} 13\n"),
        "{text}"
    );
    assert!(text.contains("le=\"4\"} 37\n"), "{text}");
    assert!(
        text.contains("exp_count{") && text.contains("} 37\n"),
        "{text}"
    );
}

#[test]
fn no_recorded_value_removes_the_series_and_type_conflicts_keep_the_first() {
    let st = store(Duration::from_secs(300), 0);
    st.ingest(&req(vec![sum(
        "x",
        "",
        false,
        2,
        vec![num(1.0, T0, T0 + MIN, vec![kv("a", s("1"))])],
    )]));
    assert_eq!(st.series_count(), 2, "x plus target_info");
    let mut gone = num(0.0, T0, T0 + 2 * MIN, vec![kv("a", s("1"))]);
    gone.flags = 1;
    st.ingest(&req(vec![sum("x", "", false, 2, vec![gone])]));
    assert_eq!(st.families.get("x").map(|f| f.series.len()), Some(0));
    // "x" is a gauge family now; a histogram named x conflicts and is dropped
    st.ingest(&req(vec![Metric {
        name: "x".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0 + 3 * MIN,
                count: 1,
                bucket_counts: vec![1],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    }]));
    assert_eq!(
        st.families.get("x").map(|f| f.kind),
        Some(super::store::Kind::Gauge)
    );
}

#[test]
fn max_series_caps_the_store() {
    let st = store(Duration::from_secs(300), 5);
    let points = (0..10)
        .map(|i| num(1.0, 0, T0, vec![kv("i", AV::IntValue(i))]))
        .collect();
    st.ingest(&req(vec![Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }]));
    assert_eq!(st.series_count(), 5);
}

#[test]
fn series_expire_without_any_scrape() {
    let st = store(Duration::from_millis(100), 0);
    st.ingest(&fixed_input());
    let before = st.series_count();
    assert!(before > 5);
    assert_eq!(st.expire(), 0);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(st.expire(), before);
    assert_eq!(st.series_count(), 0);
    assert!(
        st.families.is_empty(),
        "families are freed too, not just emptied"
    );
}

#[test]
fn series_that_keep_reporting_stay_including_target_info() {
    let st = store(Duration::from_millis(300), 0);
    let input = fixed_input();
    st.ingest(&input);
    let before = st.series_count();
    assert!(st.families.contains_key("target_info"));
    // re-reported every 100 ms for 500 ms: nothing ever goes 300 ms without an update
    // (fixed_input's timestamps repeat, so cumulative points are equal-time updates)
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        st.ingest(&input);
        assert_eq!(
            st.expire(),
            0,
            "a series that keeps reporting never expires"
        );
    }
    assert_eq!(st.series_count(), before);
    assert!(st.families.contains_key("target_info"));
}

#[test]
fn timestamps_namespace_const_labels_and_resource_conversion() {
    let st = Store::new(
        Options {
            namespace: "edge".into(),
            const_labels: [("region".to_string(), "eu".to_string())]
                .into_iter()
                .collect(),
            add_suffixes: true,
            resource_to_labels: true,
            max_series: 0,
            expiration: Duration::from_secs(300),
        },
        &Registry::new(),
        "prometheus",
    );
    st.ingest(&req(vec![sum(
        "q",
        "",
        false,
        2,
        vec![num(2.0, T0, T0 + MIN, vec![])],
    )]));
    let text = render(&st, Format::Text, true);
    // every resource attribute becomes a label; the timestamp is in milliseconds
    assert!(
        text.contains("edge_q{host_name=\"h1\",instance=\"i-1\",job=\"prod/shop\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\",region=\"eu\",service_instance_id=\"i-1\",service_name=\"shop\",service_namespace=\"prod\"} 2 1700000060000\n"),
        "{text}"
    );
    let om = render(&st, Format::OpenMetrics, true);
    assert!(om.contains("} 2.0 1700000060.0\n"), "{om}");
    let plain = render(&st, Format::Text, false);
    assert!(plain.contains("} 2\n"), "{plain}");
}

/// Found by the fuzz target `prometheus_names` (tests/fuzz/corpus/prometheus_names/
/// regress-counter-named-total): OpenMetrics gave a counter named `_total` the family name ``
/// (`# TYPE  counter`).
#[test]
fn a_counter_named_total_keeps_a_family_name() {
    let st = store(Duration::from_secs(300), 0);
    st.ingest(&req(vec![
        sum("_total", "", true, 2, vec![num(5.0, T0, T0 + MIN, vec![])]),
        sum(
            "hits_total",
            "",
            true,
            2,
            vec![num(1.0, T0, T0 + MIN, vec![])],
        ),
    ]));
    let om = render(&st, Format::OpenMetrics, false);
    assert!(om.contains("# TYPE _total counter\n"), "{om}");
    assert!(om.contains("\n_total_total{"), "{om}");
    assert!(om.contains("# TYPE hits counter\n"), "{om}");
    assert!(om.contains("\nhits_total{"), "{om}");
    let text = render(&st, Format::Text, false);
    assert!(text.contains("# TYPE _total counter\n"), "{text}");
    assert!(text.contains("\n_total{"), "{text}");
    assert!(text.contains("\nhits_total{"), "{text}");
}

/// Many series of one resource in three families: the label sets are kept once and shared by
/// the families, and the scrape is what rendering each series' own labels gives — resource,
/// scope and point labels merged in name order, series sorted by that text.
#[test]
fn shared_label_sets_render_like_owned_ones() {
    let st = store(Duration::from_secs(300), 0);
    let points = |v: f64| {
        (0..200)
            .map(|i| {
                num(
                    v,
                    T0,
                    T0 + MIN,
                    vec![
                        kv("pod", s(&format!("pod-{}", i % 7))),
                        kv("series", AV::IntValue(i)),
                        kv("a", s("first")),
                    ],
                )
            })
            .collect::<Vec<_>>()
    };
    st.ingest(&req(vec![
        sum("c1", "", true, 2, points(1.0)),
        sum("c2", "", true, 2, points(2.0)),
        sum("g", "", false, 2, points(3.0)),
    ]));
    assert_eq!(st.series_count(), 601, "3 × 200 plus target_info");
    assert_eq!(st.label_sets(), 201, "one per label set, not per series");

    let mut own: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "a=\"first\",instance=\"i-1\",job=\"prod/shop\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\",pod=\"pod-{}\",series=\"{i}\"",
                i % 7
            )
        })
        .collect();
    own.sort();
    let mut want = String::new();
    for (name, kind, v) in [
        ("c1_total", "counter", 1),
        ("c2_total", "counter", 2),
        ("g", "gauge", 3),
    ] {
        let help = name.trim_end_matches("_total");
        want.push_str(&format!("# TYPE {name} {kind}\n# HELP {name} {help}\n"));
        for l in &own {
            want.push_str(&format!("{name}{{{l}}} {v}\n"));
        }
    }
    want.push_str("# TYPE target_info gauge\n# HELP target_info Target metadata\n");
    want.push_str("target_info{host_name=\"h1\",instance=\"i-1\",job=\"prod/shop\"} 1\n");
    assert_eq!(render(&st, Format::Text, false), want);
}

/// A point attribute named like a resource-derived label wins over it: such a series has a
/// label set of its own, distinct from its neighbours', and removing series gives their label
/// sets back once no family uses them.
#[test]
fn conflicting_label_names_and_released_label_sets() {
    let st = store(Duration::from_millis(100), 0);
    let points = vec![
        num(
            1.0,
            T0,
            T0 + MIN,
            vec![kv("job", s("override")), kv("k", s("v"))],
        ),
        num(2.0, T0, T0 + MIN, vec![kv("k", s("v"))]),
    ];
    st.ingest(&req(vec![
        sum("a", "", false, 2, points.clone()),
        sum("b", "", false, 2, points.clone()),
    ]));
    assert_eq!(
        st.label_sets(),
        3,
        "two point label sets plus target_info's"
    );
    let text = render(&st, Format::Text, false);
    assert!(
        text.contains("a{instance=\"i-1\",job=\"override\",k=\"v\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\"} 1\na{instance=\"i-1\",job=\"prod/shop\",k=\"v\",otel_scope_name=\"otelgw.test\",otel_scope_version=\"1.0\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("b{instance=\"i-1\",job=\"override\","),
        "{text}"
    );

    // NoRecordedValue in one family: the set stays for the other
    let mut gone = points[0].clone();
    gone.flags = 1;
    st.ingest(&req(vec![sum("a", "", false, 2, vec![gone.clone()])]));
    assert_eq!(st.label_sets(), 3);
    st.ingest(&req(vec![sum("b", "", false, 2, vec![gone])]));
    assert_eq!(st.label_sets(), 2, "its last series went");
    assert!(!render(&st, Format::Text, false).contains("override"));

    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(st.expire(), 3);
    assert_eq!(
        st.label_sets(),
        0,
        "expired series give their label sets back"
    );
}

#[test]
fn a_series_stays_small() {
    assert_eq!(std::mem::size_of::<super::store::Series>(), 48);
}
