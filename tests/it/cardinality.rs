//! The cardinality story end to end, with real peers: the OTel Rust SDK (its own 2000-series
//! limit raised by a view) sends a counter with 50 000 distinct `user_id` values, twice, with
//! delta and with cumulative temporality, plus a well-behaved metric; otelgw's
//! `cardinality_limit` (2000 per metric, action overflow) sits before the Prometheus exporter;
//! a real Prometheus 2.42 scrapes it. Prometheus sees exactly 2000 series plus one overflow
//! series for the exploding metric, the sum over them equals what the SDK counted, the other
//! metric is untouched, and `/debug/cardinality` names the metric and the label.

use std::time::Duration;

use crate::common::*;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{MetricExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{SdkMeterProvider, Stream, Temporality};
use opentelemetry_sdk::Resource;

const USERS: u64 = 50_000;
const LIMIT: u64 = 2000;

/// Sends two exports of `<prefix>.requests` (one point per user each) and `<prefix>.healthy`
/// (3 series); returns the total the SDK counted for `requests`.
fn send(endpoint: &str, temporality: Temporality, prefix: &str) -> u64 {
    let meters = SdkMeterProvider::builder()
        .with_periodic_exporter(
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_temporality(temporality)
                .with_timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
        // the SDK caps series at 2000 itself; lift that so otelgw sees the explosion
        .with_view(|_: &opentelemetry_sdk::metrics::Instrument| {
            Stream::builder()
                .with_cardinality_limit(200_000)
                .build()
                .ok()
        })
        .with_resource(
            Resource::builder_empty()
                .with_attributes([
                    KeyValue::new("service.name", "card-svc"),
                    KeyValue::new("service.instance.id", prefix.to_string()),
                ])
                .build(),
        )
        .build();
    let meter = meters.meter("otelgw.cardinality.test");
    let requests = meter.u64_counter(format!("{prefix}.requests")).build();
    let healthy = meter.u64_counter(format!("{prefix}.healthy")).build();
    let mut total = 0;
    for round in 0..2u64 {
        for u in 0..USERS {
            let v = if round == 0 { u % 5 + 1 } else { 1 };
            requests.add(v, &[KeyValue::new("user_id", format!("u{u}"))]);
            total += v;
        }
        for r in ["/a", "/b", "/c"] {
            healthy.add(2, &[KeyValue::new("route", r)]);
        }
        meters.force_flush().unwrap();
    }
    meters.shutdown().unwrap();
    total
}

#[test]
fn a_label_explosion_is_contained_to_its_metric() {
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let ports = Ports::new();
    let exp_port = free_port();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{}
        max_recv_msg_size_mib: 64
processors:
  cardinality_limit:
    max_series_per_metric: {LIMIT}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{exp_port}
service:
  pipelines:
    metrics: {{receivers: [otlp], processors: [cardinality_limit], exporters: [prometheus]}}
{}",
        ports.grpc,
        ports.telemetry()
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    let endpoint = format!("http://127.0.0.1:{}", gw.grpc_port);
    let delta_total = send(&endpoint, Temporality::Delta, "delta");
    let cum_total = send(&endpoint, Temporality::Cumulative, "cum");
    assert_eq!(delta_total, cum_total);

    let (_prom, prom_port) = start_prometheus(&prom_bin, exp_port);
    for (prefix, total) in [("delta", delta_total), ("cum", cum_total)] {
        let m = format!("{prefix}_requests_total");
        assert_eq!(
            prom_value(prom_port, &format!("count({m})")),
            (LIMIT + 1) as f64,
            "{prefix}: the limit plus one overflow series"
        );
        assert_eq!(
            prom_value(
                prom_port,
                &format!("count({m}{{otel_metric_overflow=\"true\"}})")
            ),
            1.0,
            "{prefix}"
        );
        assert_eq!(
            prom_value(prom_port, &format!("sum({m})")),
            total as f64,
            "{prefix}: nothing lost in the fold"
        );
        // the overflow series keeps the identifying resource labels
        assert_eq!(
            prom_value(
                prom_port,
                &format!(
                    "count({m}{{otel_metric_overflow=\"true\",job=\"card-svc\",instance=\"{prefix}\"}})"
                )
            ),
            1.0,
            "{prefix}"
        );
        // the well-behaved metric is untouched
        let h = format!("{prefix}_healthy_total");
        assert_eq!(prom_value(prom_port, &format!("count({h})")), 3.0);
        assert_eq!(prom_value(prom_port, &format!("sum({h})")), 12.0);
        assert_eq!(prom_value(prom_port, &format!("{h}{{route=\"/b\"}}")), 4.0);
    }

    // the operator sees which metric and which label
    let (status, body) = http_get(
        &format!("127.0.0.1:{}", gw.admin_port),
        "/debug/cardinality?limit=5",
    )
    .unwrap();
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let comps = report["data"]["components"].as_array().unwrap();
    let proc = comps
        .iter()
        .find(|c| c["component"] == "cardinality_limit")
        .unwrap_or_else(|| panic!("{report}"));
    let offenders = proc["rejected"].as_array().unwrap();
    let names: Vec<_> = offenders.iter().map(|o| o["metric"].clone()).collect();
    assert!(names.contains(&"delta.requests".into()), "{names:?}");
    assert!(names.contains(&"cum.requests".into()), "{names:?}");
    for o in offenders {
        assert_eq!(o["topLabel"], "user_id", "{o}");
        assert_eq!(o["series"], LIMIT, "{o}");
        assert_eq!(o["action"], "overflow");
        // every export refuses every user past the first 2000: delta exports twice; cumulative
        // three times (shutdown exports the cumulative state once more)
        let exports = if o["metric"] == "delta.requests" {
            2
        } else {
            3
        };
        assert_eq!(
            o["rejectedByReason"]["per_metric"],
            exports * (USERS - LIMIT),
            "{o}"
        );
        assert!(!o["sampleRejectedSeries"].as_array().unwrap().is_empty());
    }
    assert_eq!(proc["seriesCountByMetricName"][0]["value"], LIMIT, "{proc}");
    // the Prometheus exporter's own tracker is listed too
    assert!(
        comps.iter().any(|c| c["component"] == "prometheus"),
        "{report}"
    );

    // self-metrics with bounded labels
    let rejected = gw.metric(
        "otelgw_cardinality_rejected_total",
        &[("reason", "per_metric"), ("action", "overflow")],
    );
    assert_eq!(rejected, (5 * (USERS - LIMIT)) as f64);
    assert_eq!(
        gw.metric("otelgw_cardinality_overflow_points_total", &[]),
        rejected
    );
    assert_eq!(
        gw.metric(
            "otelgw_cardinality_series_active",
            &[("component", "cardinality_limit")]
        ),
        (2 * LIMIT + 6) as f64
    );
    assert!(
        gw.metric(
            "otelgw_cardinality_memory_bytes",
            &[("component", "cardinality_limit")]
        ) > 0.0
    );
    // one warning per metric, not one per point
    let warnings = gw
        .logs()
        .lines()
        .filter(|l| l.contains("cardinality limit reached"))
        .count();
    assert_eq!(warnings, 2, "{}", gw.logs());
}

#[test]
fn idle_series_expire_and_new_ones_are_admitted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (sink, out) = file_sink();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}processors:\n  cardinality_limit:\n    max_series_per_metric: 2\n    series_ttl: 1s\n    action: drop\nexporters:\n  otlp_grpc:\n    endpoint: http://127.0.0.1:{}\n    tls: {{insecure: true}}\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], processors: [cardinality_limit], exporters: [otlp_grpc]}}\n{}",
        ports.otlp_receiver(),
        sink.grpc_port,
        ports.telemetry()
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    let endpoint = format!("http://127.0.0.1:{}", gw.grpc_port);
    let send = |users: &[&str]| {
        let meters = SdkMeterProvider::builder()
            .with_periodic_exporter(
                MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(&endpoint)
                    .with_temporality(Temporality::Delta)
                    .build()
                    .unwrap(),
            )
            .build();
        let c = meters.meter("t").u64_counter("logins").build();
        for u in users {
            c.add(1, &[KeyValue::new("user", u.to_string())]);
        }
        meters.force_flush().unwrap();
        meters.shutdown().unwrap();
    };
    let users_in_sink = || {
        let mut seen = std::collections::BTreeSet::new();
        for t in read_file_export(&out) {
            if let otelgw::data::Telemetry::Metrics(r) = t {
                for m in r
                    .resource_metrics
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                {
                    if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) =
                        &m.data
                    {
                        for p in &s.data_points {
                            for kv in &p.attributes {
                                seen.insert(format!("{:?}", kv.value));
                            }
                        }
                    }
                }
            }
        }
        seen.len()
    };
    send(&["a", "b", "c"]);
    wait_until("first export in sink", Duration::from_secs(10), || {
        users_in_sink() >= 2
    });
    assert_eq!(users_in_sink(), 2, "the third user was over the limit");
    // once the first two are idle longer than series_ttl, two new users fit
    wait_until("series expired", Duration::from_secs(15), || {
        gw.metric(
            "otelgw_cardinality_expired_total",
            &[("component", "cardinality_limit")],
        ) >= 2.0
    });
    send(&["x", "y"]);
    for _ in 0..100 {
        if users_in_sink() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(users_in_sink(), 4, "{:?}", read_file_export(&out));
    assert_eq!(
        gw.metric(
            "otelgw_cardinality_rejected_total",
            &[("reason", "per_metric"), ("action", "drop")]
        ),
        1.0
    );
}

#[test]
fn dropped_points_come_back_to_the_client_as_partial_success() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}processors:\n  cardinality_limit:\n    max_series_per_metric: 3\n    action: drop\nexporters:\n  debug: {{}}\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], processors: [cardinality_limit], exporters: [debug]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    // one metric of each kind with 5 points (testdata): 3 admitted per metric, 2 dropped
    let mut req = otelgw::testdata::metrics(3, 1, 5);
    for m in &mut req.resource_metrics[0].scope_metrics[0].metrics {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        // distinct series per point (testdata repeats routes every 10 points)
        let points: Vec<&mut Vec<opentelemetry_proto::tonic::common::v1::KeyValue>> =
            match &mut m.data {
                Some(Data::Sum(s)) => s
                    .data_points
                    .iter_mut()
                    .map(|p| &mut p.attributes)
                    .collect(),
                Some(Data::Gauge(s)) => s
                    .data_points
                    .iter_mut()
                    .map(|p| &mut p.attributes)
                    .collect(),
                Some(Data::Histogram(s)) => s
                    .data_points
                    .iter_mut()
                    .map(|p| &mut p.attributes)
                    .collect(),
                Some(Data::ExponentialHistogram(s)) => s
                    .data_points
                    .iter_mut()
                    .map(|p| &mut p.attributes)
                    .collect(),
                Some(Data::Summary(s)) => s
                    .data_points
                    .iter_mut()
                    .map(|p| &mut p.attributes)
                    .collect(),
                None => vec![],
            };
        for (i, a) in points.into_iter().enumerate() {
            a.push(otelgw::testdata::kv(
                "user",
                otelgw::testdata::s(&format!("u{i}")),
            ));
        }
    }
    let kinds = req.resource_metrics[0].scope_metrics[0].metrics.len() as i64;
    let resp = rt.block_on(async {
        let mut c = MetricsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
            .await
            .unwrap();
        c.export(req).await.unwrap().into_inner()
    });
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_data_points, 2 * kinds);
    assert!(
        ps.error_message.contains("cardinality limit"),
        "{}",
        ps.error_message
    );
    assert_eq!(
        gw.metric(
            "otelgw_cardinality_rejected_total",
            &[("reason", "per_metric"), ("action", "drop")]
        ),
        (2 * kinds) as f64
    );
}

#[test]
fn many_clients_at_once_never_get_more_series_than_the_limit() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        Sum,
    };
    const LIMIT: u64 = 100;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}processors:\n  cardinality_limit:\n    max_series_per_metric: {LIMIT}\n    action: drop\nexporters:\n  debug: {{}}\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], processors: [cardinality_limit], exporters: [debug]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    // 8 clients × 10 requests × 20 points, user ids overlapping between clients
    let request = |client: u64, round: u64| {
        let points = (0..20)
            .map(|i| NumberDataPoint {
                attributes: vec![otelgw::testdata::kv(
                    "user",
                    otelgw::testdata::s(&format!("u{}", (client * 37 + round * 20 + i) % 400)),
                )],
                time_unix_nano: 1,
                value: Some(number_data_point::Value::AsInt(1)),
                ..Default::default()
            })
            .collect();
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "logins".into(),
                        data: Some(Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: 1,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    };
    let endpoint = format!("http://127.0.0.1:{}", gw.grpc_port);
    let (sent, rejected) = rt.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|c| {
                let endpoint = endpoint.clone();
                let reqs: Vec<_> = (0..10).map(|r| request(c, r)).collect();
                tokio::spawn(async move {
                    let mut client = MetricsServiceClient::connect(endpoint).await.unwrap();
                    let mut rejected = 0i64;
                    for r in reqs {
                        let resp = client.export(r).await.unwrap().into_inner();
                        rejected += resp
                            .partial_success
                            .map(|p| p.rejected_data_points)
                            .unwrap_or(0);
                    }
                    rejected
                })
            })
            .collect();
        let mut rejected = 0;
        for t in tasks {
            rejected += t.await.unwrap();
        }
        (8 * 10 * 20i64, rejected)
    });
    let (_, body) = http_get(
        &format!("127.0.0.1:{}", gw.admin_port),
        "/debug/cardinality",
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let proc = &report["data"]["components"][0];
    assert_eq!(proc["headStats"]["numSeries"], LIMIT, "{report}");
    assert_eq!(proc["seriesCountByMetricName"][0]["value"], LIMIT);
    // every point is either admitted (its series is one of the 100) or reported back refused
    let accepted = gw.metric(
        "otelcol_receiver_accepted_metric_points",
        &[("transport", "grpc")],
    );
    assert_eq!(accepted as i64, sent);
    assert_eq!(
        gw.metric(
            "otelgw_cardinality_rejected_total",
            &[("reason", "per_metric"), ("action", "drop")]
        ) as i64,
        rejected
    );
    assert!(rejected > 0 && rejected < sent, "{rejected} of {sent}");
}
