//! Table-driven tests per action and temporality.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::points::as_f64;
use super::*;
use crate::cardinality::OVERFLOW_KEY;
use crate::testdata::{kv, s};

const CUM: i32 = 2;

fn cfg(yaml: &str) -> CardinalityLimitConfig {
    let c: CardinalityLimitConfig = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    c.validate("p", &mut d);
    assert!(d.errors.is_empty(), "{d:?}");
    c
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, s(v))).collect()
}

fn num(a: Vec<KeyValue>, v: f64, start: u64, time: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: a,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum_metric(name: &str, temporality: i32, pts: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: pts,
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn hist(a: Vec<KeyValue>, counts: Vec<u64>, start: u64, time: u64) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: a,
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(counts.iter().sum::<u64>() as f64),
        bucket_counts: counts,
        explicit_bounds: vec![1.0, 10.0],
        ..Default::default()
    }
}

fn request(service: &str, metrics: Vec<Metric>) -> Telemetry {
    Telemetry::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service)), kv("host", s("h"))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// `n` delta points of metric `m`, one per user, value 1, from `service`.
fn run_users(p: &CardinalityLimitProcessor, service: &str, n: usize) -> (Telemetry, Rejections) {
    run(
        p,
        request(
            service,
            vec![sum_metric("m", DELTA, users(n, |_| 1.0, 1, 2))],
        ),
    )
}

fn run(p: &CardinalityLimitProcessor, mut t: Telemetry) -> (Telemetry, Rejections) {
    let mut rej = Rejections::default();
    p.process(&mut t, &RequestMeta::default(), &mut rej);
    (t, rej)
}

/// Every metric's points as (attributes, value), in order.
fn points(t: &Telemetry, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let Telemetry::Metrics(r) = t else {
        panic!("not metrics")
    };
    let mut out = Vec::new();
    for rm in &r.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in sm.metrics.iter().filter(|m| m.name == name) {
                let a = |kvs: &[KeyValue]| {
                    kvs.iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                crate::exporters::prometheus::translate::value_string(&kv.value),
                            )
                        })
                        .collect::<BTreeMap<_, _>>()
                };
                match &m.data {
                    Some(Data::Sum(s)) => out.extend(
                        s.data_points
                            .iter()
                            .map(|p| (a(&p.attributes), as_f64(&p.value))),
                    ),
                    Some(Data::Gauge(s)) => out.extend(
                        s.data_points
                            .iter()
                            .map(|p| (a(&p.attributes), as_f64(&p.value))),
                    ),
                    Some(Data::Histogram(h)) => out.extend(
                        h.data_points
                            .iter()
                            .map(|p| (a(&p.attributes), p.count as f64)),
                    ),
                    Some(Data::ExponentialHistogram(h)) => out.extend(
                        h.data_points
                            .iter()
                            .map(|p| (a(&p.attributes), p.count as f64)),
                    ),
                    _ => {}
                }
            }
        }
    }
    out
}

fn overflow_value(t: &Telemetry, name: &str) -> Option<f64> {
    points(t, name)
        .into_iter()
        .find(|(a, _)| a.get(OVERFLOW_KEY).map(String::as_str) == Some("true"))
        .map(|(_, v)| v)
}

fn users(n: usize, value: impl Fn(usize) -> f64, start: u64, time: u64) -> Vec<NumberDataPoint> {
    (0..n)
        .map(|i| num(attrs(&[("user", &format!("u{i}"))]), value(i), start, time))
        .collect()
}

fn build(yaml: &str) -> CardinalityLimitProcessor {
    // a fresh registry per processor, so counters start at zero
    let c = cfg(yaml);
    let reg = Registry::new();
    let p = c.build("cl", &reg);
    REG_SLOT.with(|slot| *slot.borrow_mut() = Some(reg));
    p
}

thread_local! {
    static REG_SLOT: std::cell::RefCell<Option<Arc<Registry>>> = const { std::cell::RefCell::new(None) };
}

fn counter(reason: &str, action: &str) -> u64 {
    let text = REG_SLOT.with(|s| s.borrow().as_ref().map(|r| r.render()).unwrap_or_default());
    let prefix = format!(
        "otelgw_cardinality_rejected_total{{component=\"cl\",reason=\"{reason}\",action=\"{action}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn overflow_folds_delta_sums_exactly() {
    let p = build("max_series_per_metric: 2");
    for round in 0..3u64 {
        let t0 = round * 10 + 1;
        let (out, rej) = run(
            &p,
            request(
                "svc",
                vec![sum_metric(
                    "m",
                    DELTA,
                    users(5, |i| (i + 1) as f64, t0, t0 + 10),
                )],
            ),
        );
        assert_eq!(rej.count, 0, "overflow loses nothing");
        let pts = points(&out, "m");
        assert_eq!(pts.len(), 3, "{pts:?}");
        assert_eq!(pts[0].0["user"], "u0");
        assert_eq!(pts[1].0["user"], "u1");
        assert_eq!(overflow_value(&out, "m"), Some(3.0 + 4.0 + 5.0));
        let total: f64 = pts.iter().map(|(_, v)| v).sum();
        assert_eq!(total, 15.0);
    }
    assert_eq!(counter("per_metric", "overflow"), 9);
}

#[test]
fn overflow_keeps_cumulative_sums_monotonic_through_the_side_table() {
    let p = build("max_series_per_metric: 2");
    let send = |vals: [f64; 5], starts: [u64; 5], time: u64| {
        let pts = (0..5)
            .map(|i| {
                num(
                    attrs(&[("user", &format!("u{i}"))]),
                    vals[i],
                    starts[i],
                    time,
                )
            })
            .collect();
        run(&p, request("svc", vec![sum_metric("m", CUM, pts)])).0
    };
    let out = send([10., 20., 30., 40., 50.], [1; 5], 100);
    assert_eq!(overflow_value(&out, "m"), Some(120.0));
    let out = send([11., 21., 31., 41., 51.], [1; 5], 200);
    assert_eq!(overflow_value(&out, "m"), Some(123.0));
    // u3 restarts (new start time, lower value): its new value counts in full
    let out = send([12., 22., 32., 5., 52.], [1, 1, 1, 150, 1], 300);
    assert_eq!(overflow_value(&out, "m"), Some(123.0 + 1.0 + 5.0 + 1.0));
    // the overflow series keeps one start time (a counter that only grows)
    let Telemetry::Metrics(r) = &out else {
        unreachable!()
    };
    let Some(Data::Sum(s)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        unreachable!()
    };
    let of = s.data_points.last().unwrap();
    assert_eq!((of.start_time_unix_nano, of.time_unix_nano), (1, 300));
    assert_eq!(s.aggregation_temporality, CUM);
}

#[test]
fn cumulative_overflow_falls_back_to_drop_when_the_side_table_is_full() {
    let p = build("max_series_per_metric: 1\noverflow_side_table_size: 1");
    let pts = users(3, |i| (i + 1) as f64 * 10.0, 1, 100);
    let (out, rej) = run(&p, request("svc", vec![sum_metric("m", CUM, pts)]));
    assert_eq!(overflow_value(&out, "m"), Some(20.0));
    assert_eq!(rej.count, 1, "the third series had no side-table room");
    assert!(rej.message().contains("metric m"), "{}", rej.message());
    assert_eq!(counter("per_metric", "overflow"), 1);
    assert_eq!(counter("per_metric", "drop"), 1);
    // the known overflowed source keeps folding
    let pts = users(3, |i| (i + 1) as f64 * 10.0 + 1.0, 1, 200);
    let (out, rej) = run(&p, request("svc", vec![sum_metric("m", CUM, pts)]));
    assert_eq!(overflow_value(&out, "m"), Some(21.0));
    assert_eq!(rej.count, 1);
}

#[test]
fn overflow_histograms_add_buckets_for_both_temporalities() {
    for temporality in [DELTA, CUM] {
        let p = build("max_series_per_metric: 1");
        let h = |t, c: [u64; 3], time| Metric {
            name: "m".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: (0..3)
                    .map(|i| hist(attrs(&[("user", &format!("u{i}"))]), c.to_vec(), 1, time))
                    .collect(),
                aggregation_temporality: t,
            })),
            ..Default::default()
        };
        let (out, _) = run(&p, request("svc", vec![h(temporality, [1, 1, 1], 10)]));
        assert_eq!(overflow_value(&out, "m"), Some(6.0), "{temporality}");
        // delta: a new window of the same size; cumulative: each source grew by [1, 0, 0] + …
        let c2 = if temporality == DELTA {
            [1, 1, 1]
        } else {
            [2, 1, 1]
        };
        let (out, _) = run(&p, request("svc", vec![h(temporality, c2, 20)]));
        let want = if temporality == DELTA { 6.0 } else { 6.0 + 2.0 };
        assert_eq!(overflow_value(&out, "m"), Some(want), "{temporality}");
        let Telemetry::Metrics(r) = &out else {
            unreachable!()
        };
        let Some(Data::Histogram(hh)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            unreachable!()
        };
        let of = hh.data_points.last().unwrap();
        assert_eq!(of.bucket_counts.iter().sum::<u64>(), of.count);
    }
}

#[test]
fn overflow_gauges_keep_the_latest_value() {
    let p = build("max_series_per_metric: 1");
    let g = Metric {
        name: "m".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![
                num(attrs(&[("u", "a")]), 1.0, 0, 10),
                num(attrs(&[("u", "b")]), 7.0, 0, 30),
                num(attrs(&[("u", "c")]), 3.0, 0, 20),
            ],
        })),
        ..Default::default()
    };
    let (out, _) = run(&p, request("svc", vec![g]));
    assert_eq!(overflow_value(&out, "m"), Some(7.0));
}

#[test]
fn unfoldable_types_are_dropped_and_counted() {
    let p = build("max_series_per_metric: 1");
    let e = Metric {
        name: "m".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: (0..3)
                .map(|i| ExponentialHistogramDataPoint {
                    attributes: attrs(&[("u", &i.to_string())]),
                    count: 1,
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    };
    let (out, rej) = run(&p, request("svc", vec![e]));
    assert_eq!(points(&out, "m").len(), 1);
    assert_eq!(rej.count, 2);
    assert_eq!(counter("per_metric", "drop"), 2);
}

#[test]
fn drop_and_passive() {
    let p = build("max_series_per_metric: 2\naction: drop");
    let (out, rej) = run_users(&p, "svc", 5);
    assert_eq!(points(&out, "m").len(), 2);
    assert_eq!(rej.count, 3);
    assert_eq!(counter("per_metric", "drop"), 3);

    let p = build("max_series_per_metric: 2\naction: passive");
    let (out, rej) = run_users(&p, "svc", 5);
    assert_eq!(points(&out, "m").len(), 5, "passive keeps everything");
    assert_eq!(rej.count, 0);
    assert_eq!(counter("per_metric", "passive"), 3);
    assert_eq!(
        p.tracker()
            .metric("m")
            .active
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn all_points_dropped_removes_the_empty_metric() {
    let p = build("max_series_per_metric: 1\naction: drop");
    run_users(&p, "svc", 1);
    let pts = (1..3)
        .map(|i| num(attrs(&[("user", &format!("u{i}"))]), 1.0, 1, 2))
        .collect();
    let (out, rej) = run(&p, request("svc", vec![sum_metric("m", DELTA, pts)]));
    assert_eq!(rej.count, 2);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn strip_label_removes_the_limited_label_and_merges_deltas() {
    let p = build("max_series_per_metric: 100\naction: strip_label\nlabel_value_limits: {user: 2}");
    let pt = |u: &str, v: f64| num(attrs(&[("user", u), ("path", "/x")]), v, 1, 2);
    let (out, rej) = run(
        &p,
        request(
            "svc",
            vec![sum_metric(
                "m",
                DELTA,
                vec![pt("a", 1.), pt("b", 2.), pt("c", 4.), pt("d", 8.)],
            )],
        ),
    );
    assert_eq!(rej.count, 0);
    let pts = points(&out, "m");
    assert_eq!(pts.len(), 3, "{pts:?}");
    let stripped: Vec<_> = pts
        .iter()
        .filter(|(a, _)| !a.contains_key("user"))
        .collect();
    assert_eq!(stripped.len(), 1);
    assert_eq!(stripped[0].1, 12.0, "c and d merged into {{path=/x}}");
    assert_eq!(stripped[0].0["path"], "/x");
    assert_eq!(counter("label_values", "strip_label"), 2);
}

#[test]
fn strip_label_without_room_for_the_reduced_series_drops() {
    let p = build("max_series_per_metric: 2\naction: strip_label");
    let pt = |u: &str| num(attrs(&[("user", u), ("path", "/x")]), 1.0, 1, 2);
    let (out, rej) = run(
        &p,
        request(
            "svc",
            vec![sum_metric("m", DELTA, vec![pt("a"), pt("b"), pt("c")])],
        ),
    );
    // {path=/x} is a third series: no room, so the point is dropped and counted
    assert_eq!(points(&out, "m").len(), 2);
    assert_eq!(rej.count, 1);
    assert_eq!(counter("per_metric", "drop"), 1);
}

#[test]
fn per_metric_rules_and_excluded_labels() {
    let p = build(
        r#"
max_series_per_metric: 2
excluded_labels: [tenant]
per_metric:
  - regex: "debug_.*"
    excluded: true
  - name: big
    max_series: 4
    action: drop
"#,
    );
    let many = |name: &str| sum_metric(name, DELTA, users(6, |_| 1.0, 1, 2));
    let (out, rej) = run(
        &p,
        request("svc", vec![many("debug_x"), many("big"), many("m")]),
    );
    assert_eq!(
        points(&out, "debug_x").len(),
        6,
        "excluded metric untouched"
    );
    assert_eq!(points(&out, "big").len(), 4, "own limit");
    assert_eq!(rej.count, 2, "big drops, m overflows");
    assert_eq!(points(&out, "m").len(), 3);
    // tenant values never create series
    let pts = (0..10)
        .map(|i| {
            num(
                attrs(&[("user", "u0"), ("tenant", &format!("t{i}"))]),
                1.0,
                1,
                2,
            )
        })
        .collect();
    let p2 = build("max_series_per_metric: 1\nexcluded_labels: [tenant]");
    let (out, _) = run(&p2, request("svc", vec![sum_metric("m", DELTA, pts)]));
    assert_eq!(points(&out, "m").len(), 10);
    assert_eq!(overflow_value(&out, "m"), None);
}

#[test]
fn each_source_gets_its_own_overflow_series() {
    let p = build("max_series_per_metric: 3");
    let (a, _) = run_users(&p, "a", 2);
    assert_eq!(points(&a, "m").len(), 2);
    let (b, _) = run_users(&p, "b", 2);
    // one slot left for b: u0 admitted, u1 folded into b's overflow series (b's resource)
    assert_eq!(points(&b, "m").len(), 2);
    assert_eq!(overflow_value(&b, "m"), Some(1.0));
    let Telemetry::Metrics(r) = &b else {
        unreachable!()
    };
    let res = r.resource_metrics[0].resource.as_ref().unwrap();
    assert!(res.attributes.iter().any(|kv| kv.key == "service.name"));
}

#[test]
fn global_limit_and_report() {
    let p = build("max_series_per_metric: 0\nmax_series: 3\naction: drop");
    let (_, rej) = run_users(&p, "svc", 5);
    assert_eq!(rej.count, 2);
    assert_eq!(counter("global", "drop"), 2);
    let rep = crate::cardinality::report::report(p.tracker(), 10);
    assert_eq!(rep["headStats"]["numSeries"], 3);
    assert_eq!(rep["seriesCountByMetricName"][0]["name"], "m");
    assert_eq!(rep["seriesCountByMetricName"][0]["value"], 3);
    let off = &rep["rejected"][0];
    assert_eq!(off["metric"], "m");
    assert_eq!(off["topLabel"], "user");
    assert_eq!(off["rejectedByReason"]["global"], 2);
    let samples = off["sampleRejectedSeries"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert!(
        samples[0].as_str().unwrap().contains("user=\"u3\""),
        "{samples:?}"
    );
}

#[test]
fn validation_names_paths() {
    let c: CardinalityLimitConfig = serde_norway::from_str(
        r#"
mode: probabilistic
max_series: 0
series_ttl: 0s
label_value_limits: {user: 0, tenant: 5}
excluded_labels: [tenant]
per_metric:
  - {}
  - {name: a, regex: b}
  - {regex: "("}
"#,
    )
    .unwrap();
    let mut d = Diagnostics::default();
    c.validate("processors.cardinality_limit", &mut d);
    let text = format!("{d:?}");
    for path in [
        "processors.cardinality_limit.max_series",
        "processors.cardinality_limit.series_ttl",
        "processors.cardinality_limit.label_value_limits.user",
        "processors.cardinality_limit.label_value_limits.tenant",
        "processors.cardinality_limit.per_metric[0]",
        "processors.cardinality_limit.per_metric[1]",
        "processors.cardinality_limit.per_metric[2].regex",
    ] {
        assert!(text.contains(path), "{path} missing from {text}");
    }
}

// ---- the wire check (`edit_encoded`) ----

fn encoded(t: &Telemetry) -> Encoded {
    let bytes = t.encode_to_bytes();
    Encoded {
        signal: Signal::Metrics,
        items: t.item_count(),
        bytes,
    }
}

/// What the chain does with a processor that reads items: the wire check, and on `None` the
/// decoded path.
fn run_chain(p: &CardinalityLimitProcessor, t: &Telemetry) -> (Telemetry, Rejections, bool) {
    let e = encoded(t);
    match p.edit_encoded(&e, &RequestMeta::default()) {
        Some(out) => {
            assert!(
                out.bytes.as_ptr() == e.bytes.as_ptr() && out.removed == 0,
                "the check never edits, so never copies"
            );
            let t = Telemetry::decode_proto(Signal::Metrics, &out.bytes).unwrap();
            (t, Rejections::default(), true)
        }
        None => {
            let (t, r) = run(
                p,
                Telemetry::decode_proto(Signal::Metrics, &e.bytes).unwrap(),
            );
            (t, r, false)
        }
    }
}

/// A point's attributes from a small pool, with every value type (arrays and lists are
/// handed to the hash encoded, the rest read from the bytes).
fn random_attrs(rng: &mut crate::testdata::Rng) -> Vec<KeyValue> {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue};
    let mut a = vec![kv("route", s(&format!("/r{}", rng.below(4))))];
    if rng.below(2) == 0 {
        a.push(kv("user", s(&format!("u{}", rng.below(12)))));
    }
    let v = match rng.below(7) {
        0 => any_value::Value::IntValue(rng.below(3) as i64),
        1 => any_value::Value::BoolValue(rng.below(2) == 0),
        2 => any_value::Value::DoubleValue(rng.below(3) as f64 / 2.0),
        3 => any_value::Value::BytesValue(vec![rng.below(3) as u8]),
        4 => any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(s(&format!("{}", rng.below(2)))),
            }],
        }),
        _ => s(&format!("n{}", rng.below(3))),
    };
    a.push(kv("noise", v));
    if rng.below(4) == 0 {
        a.push(KeyValue {
            key: "empty".into(),
            value: None,
            ..Default::default()
        });
    }
    // attribute order does not change the series
    if rng.below(2) == 0 {
        a.reverse();
    }
    a
}

/// A random request; `small`: one point of one metric (so that, under tight limits, many
/// requests still hold only admitted series).
fn random_request(rng: &mut crate::testdata::Rng, small: bool) -> Telemetry {
    let mut metrics = Vec::new();
    let (n_metrics, n_points) = if small { (1, 1) } else { (3, 5) };
    for _ in 0..1 + rng.below(n_metrics) {
        let name = ["requests", "latency", "queue"][rng.below(3) as usize];
        let pts = (0..1 + rng.below(n_points))
            .map(|_| num(random_attrs(rng), rng.below(10) as f64, 1, 2 + rng.below(3)))
            .collect();
        let temporality = if rng.below(2) == 0 { DELTA } else { CUM };
        let data = |pts: Vec<NumberDataPoint>, rng: &mut crate::testdata::Rng| match rng.below(5) {
            0 => Data::Gauge(Gauge { data_points: pts }),
            1 => Data::Histogram(Histogram {
                data_points: pts
                    .into_iter()
                    .map(|p| hist(p.attributes, vec![1, 2, 0], 1, p.time_unix_nano))
                    .collect(),
                aggregation_temporality: temporality,
            }),
            2 => Data::ExponentialHistogram(ExponentialHistogram {
                data_points: pts
                    .into_iter()
                    .map(|p| ExponentialHistogramDataPoint {
                        attributes: p.attributes,
                        count: 1,
                        time_unix_nano: p.time_unix_nano,
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: temporality,
            }),
            3 => Data::Summary(opentelemetry_proto::tonic::metrics::v1::Summary {
                data_points: pts
                    .into_iter()
                    .map(
                        |p| opentelemetry_proto::tonic::metrics::v1::SummaryDataPoint {
                            attributes: p.attributes,
                            count: 1,
                            time_unix_nano: p.time_unix_nano,
                            ..Default::default()
                        },
                    )
                    .collect(),
            }),
            _ => Data::Sum(Sum {
                data_points: pts,
                aggregation_temporality: temporality,
                is_monotonic: true,
            }),
        };
        // each metric name keeps one type (a type switch is its own, rarer story)
        let mut kind_rng = crate::testdata::Rng::new(name.len() as u64);
        let d = data(pts, &mut kind_rng);
        metrics.push(Metric {
            name: name.into(),
            data: Some(d),
            ..Default::default()
        });
    }
    let mut t = request(["api", "web"][rng.below(2) as usize], metrics);
    let Telemetry::Metrics(r) = &mut t else {
        unreachable!()
    };
    let rm = &mut r.resource_metrics[0];
    if rng.below(3) == 0 {
        rm.scope_metrics[0].scope = Some(Default::default());
    }
    if rng.below(4) == 0 {
        // a non-identifying resource attribute does not change the series
        rm.resource
            .get_or_insert_with(Default::default)
            .attributes
            .push(kv("host.name", s(&format!("h{}", rng.below(5)))));
    }
    t
}

#[test]
fn the_wire_check_then_decoding_does_exactly_what_decoding_does() {
    let configs = [
        "max_series_per_metric: 1000",
        "max_series_per_metric: 6",
        "{max_series_per_metric: 6, action: drop}",
        "{max_series_per_metric: 6, action: strip_label, label_value_limits: {user: 3}}",
        "{max_series_per_metric: 8, action: passive, excluded_labels: [noise]}",
        "{max_series: 10, max_series_per_metric: 0, excluded_labels: [noise, empty]}",
        "{max_series: 64, mode: probabilistic, max_series_per_metric: 6, action: drop, series_ttl: 1s}",
    ];
    for (ci, yaml) in configs.iter().enumerate() {
        let (wire, decoded) = (build(yaml), build(yaml));
        let mut rng = crate::testdata::Rng::new(ci as u64 + 1);
        // a steady workload: requests repeat (a pool of 40), with a fresh one now and then
        let pool: Vec<Telemetry> = (0..40)
            .map(|i| random_request(&mut rng, i % 2 == 0))
            .collect();
        let mut on_the_wire = 0;
        for i in 0..400 {
            if i == 200 && yaml.contains("probabilistic") {
                // rotate both trackers' generations: known series now come back through the
                // migration branch of `touch` / `admit`
                std::thread::sleep(std::time::Duration::from_millis(1100));
                wire.tracker().sweep();
                decoded.tracker().sweep();
            }
            let t = match rng.below(8) {
                0 => random_request(&mut rng, false),
                _ => pool[rng.below(40) as usize].clone(),
            };
            let (a, ra, fast) = run_chain(&wire, &t);
            let (b, rb) = run(&decoded, t);
            assert_eq!(a, b, "config {yaml}, request {i}");
            assert_eq!(
                (ra.count, ra.reasons),
                (rb.count, rb.reasons),
                "{yaml} #{i}"
            );
            on_the_wire += fast as u32;
        }
        let (tw, td) = (wire.tracker(), decoded.tracker());
        assert_eq!(tw.active(), td.active(), "{yaml}");
        assert_eq!(tw.metrics().len(), td.metrics().len(), "{yaml}");
        for (mw, md) in tw.metrics().iter().zip(td.metrics().iter()) {
            assert_eq!(mw.name, md.name);
            let counts = |m: &MetricState| {
                (
                    m.active.load(std::sync::atomic::Ordering::Relaxed),
                    m.rejected
                        .each_ref()
                        .map(|r| r.load(std::sync::atomic::Ordering::Relaxed)),
                    m.overflowed.load(std::sync::atomic::Ordering::Relaxed),
                )
            };
            assert_eq!(counts(mw), counts(md), "{yaml}: {}", mw.name);
        }
        // both paths ran; with room for every series, most requests pass on the wire once
        // their series are known
        assert!(on_the_wire > 0, "{yaml}: no request passed on the wire");
        if ci == 0 {
            assert!(
                on_the_wire > 200,
                "{yaml}: {on_the_wire} of 400 on the wire"
            );
        }
    }
}

#[test]
fn known_series_pass_on_the_wire_and_a_new_one_asks_for_decoding() {
    let p = build("{max_series_per_metric: 100, excluded_labels: [attempt]}");
    let point = |user: &str, attempt: i64| {
        let mut a = attrs(&[("user", user)]);
        a.push(kv(
            "attempt",
            opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(attempt),
        ));
        num(a, 1.0, 1, 2)
    };
    let req = |service: &str, host: &str, users: &[&str], attempt: i64| {
        let mut t = request(
            service,
            vec![sum_metric(
                "m",
                DELTA,
                users.iter().map(|u| point(u, attempt)).collect(),
            )],
        );
        let Telemetry::Metrics(r) = &mut t else {
            unreachable!()
        };
        r.resource_metrics[0].resource.as_mut().unwrap().attributes[1] = kv("host", s(host));
        t
    };
    let first = req("api", "h1", &["a", "b"], 1);
    // nothing known yet: decode; the check itself admitted nothing
    assert!(!run_chain(&p, &first).2);
    assert_eq!(p.tracker().active(), 2, "the decoded path admitted both");
    assert!(run_chain(&p, &first).2, "now every series is known");
    // an excluded label and a non-identifying resource attribute are not part of the series
    assert!(run_chain(&p, &req("api", "h2", &["b", "a"], 7)).2);
    // a new user, a new service: new series
    assert!(!run_chain(&p, &req("api", "h1", &["a", "c"], 1)).2);
    assert!(!run_chain(&p, &req("web", "h1", &["a"], 1)).2);
    assert_eq!(p.tracker().active(), 4);
    // traces and logs are not this processor's business
    let logs = Telemetry::Logs(crate::testdata::logs(1, 1, 2));
    let e = Encoded {
        signal: Signal::Logs,
        items: logs.item_count(),
        bytes: logs.encode_to_bytes(),
    };
    let out = p.edit_encoded(&e, &RequestMeta::default()).unwrap();
    assert_eq!(out.bytes, e.bytes);
}
