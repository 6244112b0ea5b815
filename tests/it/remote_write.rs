//! The `prometheusremotewrite` exporter against real remote-write receivers — Prometheus 2.42
//! (`--web.enable-remote-write-receiver`) and VictoriaMetrics, both from Debian — and, for the
//! faults a real server cannot be made to produce on cue (down then up, 429 with
//! `Retry-After`), the scriptable stand-in backend, decoding with this file's own prost types
//! written from Prometheus' `prompb` schema (not otelgw's).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Prometheus' `prompb` types, written here from the schema.
mod prompb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// One cumulative counter point of `jobs_done` for service `svc`.
fn counter(value: i64, start_ns: u64, t_ns: u64) -> ExportMetricsServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "svc"), kv("service.instance.id", "i1")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "jobs_done".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("queue", "q1")],
                            start_time_unix_nano: start_ns,
                            time_unix_nano: t_ns,
                            value: Some(number_data_point::Value::AsInt(value)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn send(port: u16, req: ExportMetricsServiceRequest) {
    MetricsServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
        .export(req)
        .await
        .unwrap();
}

fn gateway(endpoint: &str, extra: &str) -> Gateway {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  prometheusremotewrite:\n    endpoint: {endpoint}\n    retry_on_failure: {{initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 60s}}\n{extra}service:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    Gateway::start(ports, dir, &config)
}

/// The series of a PromQL selector as (labels without `path`, value).
fn series_of(prom_port: u16, q: &str) -> BTreeMap<BTreeMap<String, String>, String> {
    let r = prom_query(prom_port, q);
    r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).unwrap();
            labels.remove("path");
            (labels, s["value"][1].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn remote_write_and_the_scrape_endpoint_agree_in_prometheus() {
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let python = peer("OTELGW_TEST_PYTHON");
    let exp_port = free_port();
    let (_prom, prom_port) = start_prometheus_with(
        &prom_bin,
        &format!("  - job_name: otelgw\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{exp_port}']\n"),
        &["--web.enable-remote-write-receiver"],
    );
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\n    const_labels: {{path: scrape}}\n  prometheusremotewrite:\n    endpoint: http://127.0.0.1:{prom_port}/api/v1/write\n    external_labels: {{path: rw}}\n    send_metadata: true\n    remote_write_queue: {{num_consumers: 3}}\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [prometheus, prometheusremotewrite]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    for t in ["cumulative", "delta"] {
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/metrics.py"
            ))
            .arg(format!("127.0.0.1:{}", gw.grpc_port))
            .arg(t)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // every series Prometheus scraped from the endpoint arrived by remote write too, with the
    // same labels (but `path`) and the same value: one translation, two ways out. Remote write
    // may hold more: an exponential histogram whose scale changed between the SDK's exports
    // has new bucket bounds, and a remote-written series that is no longer written stays
    // visible for Prometheus' lookback (only scraped series go stale at once).
    let agree = |scraped: &BTreeMap<BTreeMap<String, String>, String>,
                 written: &BTreeMap<BTreeMap<String, String>, String>| {
        scraped.iter().all(|(k, v)| written.get(k) == Some(v))
            && written.keys().all(|k| {
                scraped.contains_key(k) || k["__name__"].ends_with("_exp_latency_seconds_bucket")
            })
    };
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scraped = series_of(prom_port, "{path=\"scrape\"}");
        let written = series_of(prom_port, "{path=\"rw\",__name__!=\"target_info\"}");
        if scraped.len() >= 20 && agree(&scraped, &written) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scraped and remote-written series differ:\nscraped {:#?}\nwritten {:#?}",
            last.0,
            last.1
        );
        last = (scraped, written);
        std::thread::sleep(Duration::from_millis(300));
    }
    // the values themselves are what the SDK measured (as the prometheus exporter's test)
    for t in ["cumulative", "delta"] {
        assert_eq!(
            prom_value(
                prom_port,
                &format!("sum({t}_requests_total{{path=\"rw\",instance=\"{t}-1\"}})")
            ),
            8.0
        );
        assert_eq!(
            prom_value(
                prom_port,
                &format!("{t}_latency_seconds_bucket{{path=\"rw\",le=\"0.5\",instance=\"{t}-1\"}}")
            ),
            2.0
        );
        assert_eq!(
            prom_value(
                prom_port,
                &format!("target_info{{path=\"rw\",instance=\"{t}-1\",host_name=\"box\"}}")
            ),
            1.0
        );
    }
    // exemplars went along (Prometheus stores them with exemplar storage on)
    let found = (0..50).find_map(|_| {
        let now = now_ns() / 1_000_000_000;
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            urlencode("cumulative_requests_total{path=\"rw\"}"),
            now - 600,
            now + 60
        );
        let (_, body) = http_get(&format!("127.0.0.1:{prom_port}"), &path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["data"].as_array().is_some_and(|a| !a.is_empty()) {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
        None
    });
    let found = found.expect("exemplars by remote write");
    assert_eq!(
        found["data"][0]["exemplars"][0]["labels"]["trace_id"]
            .as_str()
            .map(str::len),
        Some(32),
        "{found}"
    );
    assert!(
        gw.metric(
            "otelcol_exporter_sent_metric_points",
            &[("exporter", "prometheusremotewrite")]
        ) > 0.0
    );
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_metric_points",
            &[("exporter", "prometheusremotewrite")]
        ),
        0.0
    );
    assert!(
        gw.metric(
            "otelcol_exporter_prometheusremotewrite_translated_time_series",
            &[]
        ) >= 20.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_order_sample_is_refused_by_prometheus_counted_and_the_rest_still_lands() {
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let (_prom, prom_port) =
        start_prometheus_with(&prom_bin, "  []\n", &["--web.enable-remote-write-receiver"]);
    let endpoint = format!("http://127.0.0.1:{prom_port}/api/v1/write");
    let t0 = now_ns() - 120_000_000_000;
    // a first gateway writes the newest sample, then goes away
    let mut first = gateway(&endpoint, "");
    send(first.grpc_port, counter(10, t0, t0 + 60_000_000_000)).await;
    let q = "jobs_done_total{job=\"svc\",instance=\"i1\",queue=\"q1\"}";
    assert_eq!(prom_value(prom_port, q), 10.0);
    first.stop();
    // a fresh gateway (no memory of it) sends an older sample of the same series: Prometheus
    // refuses the request with 400; permanent, counted, not retried
    let second = gateway(&endpoint, "");
    send(second.grpc_port, counter(5, t0, t0 + 30_000_000_000)).await;
    send(second.grpc_port, counter(6, t0, t0 + 40_000_000_000)).await;
    wait_until("two rejected samples", Duration::from_secs(20), || {
        second.metric(
            "otelgw_prometheusremotewrite_failed_samples_total",
            &[("reason", "rejected")],
        ) == 2.0
    });
    assert_eq!(
        second.metric(
            "otelcol_exporter_send_failed_metric_points",
            &[("exporter", "prometheusremotewrite")]
        ),
        2.0
    );
    let logs = second.logs();
    assert_eq!(
        logs.matches("remote write rejected").count(),
        1,
        "logged once per status: {logs}"
    );
    assert!(logs.contains("out of order"), "prometheus' reason: {logs}");
    // a newer sample is accepted afterwards
    send(second.grpc_port, counter(12, t0, now_ns())).await;
    wait_until("the newer sample", Duration::from_secs(20), || {
        prom_query(prom_port, q)["data"]["result"][0]["value"][1] == "12"
    });
}

/// Decodes the requests the stand-in accepted (all but the first `refused`): (counter value,
/// timestamp) in arrival order.
fn received(backend: &Backend, refused: usize) -> Vec<(f64, i64)> {
    use prost::Message;
    let mut out = Vec::new();
    for r in backend.requests().into_iter().skip(refused) {
        assert_eq!(r.header("content-encoding").as_deref(), Some("snappy"));
        assert_eq!(
            r.header("x-prometheus-remote-write-version").as_deref(),
            Some("0.1.0")
        );
        let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
        let w = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
        for ts in w.timeseries {
            let name = ts.labels.iter().find(|l| l.name == "__name__").unwrap();
            if name.value == "jobs_done_total" {
                out.extend(ts.samples.iter().map(|s| (s.value, s.timestamp)));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_then_up_gets_every_sample_in_order_and_429_waits_for_retry_after() {
    // down: nothing listens on the port yet
    let port = free_port();
    let gw = gateway(&format!("http://127.0.0.1:{port}/api/v1/write"), "");
    let t0 = now_ns() - 60_000_000_000;
    for i in 1..=5 {
        send(gw.grpc_port, counter(i, t0, t0 + i as u64 * 1_000_000_000)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    // up: a 429 with Retry-After first, then success
    let backend = Backend::start_on(
        port,
        Script::flaky([Reply::status(429).retry_after(1)], Reply::status(204)),
    )
    .await;
    wait_until("five samples delivered", Duration::from_secs(30), || {
        received(&backend, 1).len() == 5
    });
    let got = received(&backend, 1);
    assert_eq!(
        got.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0],
        "in order, none lost"
    );
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1));
    let reqs = backend.requests();
    assert_eq!(
        reqs[0].body, reqs[1].body,
        "the refused request is sent again as it was"
    );
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        reqs[1].at.duration_since(reqs[0].at)
    );
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_metric_points",
            &[("exporter", "prometheusremotewrite")]
        ),
        0.0
    );
}

/// VictoriaMetrics (Debian), killed on drop.
struct Victoria(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn victoria_metrics_takes_the_same_remote_write() {
    let vm_bin = peer("OTELGW_TEST_VICTORIA_METRICS");
    let python = peer("OTELGW_TEST_PYTHON");
    let vm_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(&vm_bin)
        .arg(format!("-httpListenAddr=127.0.0.1:{vm_port}"))
        .arg(format!(
            "-storageDataPath={}",
            dir.path().join("data").display()
        ))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("vm.log")).unwrap())
        .spawn()
        .unwrap();
    let _vm = Victoria(child, dir);
    wait_until("victoria-metrics ready", Duration::from_secs(30), || {
        matches!(
            http_get(&format!("127.0.0.1:{vm_port}"), "/health"),
            Some((200, _))
        )
    });
    let gw = gateway(&format!("http://127.0.0.1:{vm_port}/api/v1/write"), "");
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/metrics.py"
        ))
        .arg(format!("127.0.0.1:{}", gw.grpc_port))
        .arg("cumulative")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // VictoriaMetrics answers Prometheus' query API
    assert_eq!(
        prom_value(
            vm_port,
            "sum(cumulative_requests_total{instance=\"cumulative-1\"})"
        ),
        8.0
    );
    assert_eq!(
        prom_value(
            vm_port,
            "cumulative_latency_seconds_bucket{le=\"0.5\",instance=\"cumulative-1\"}"
        ),
        2.0
    );
    assert_eq!(
        prom_value(vm_port, "cumulative_queue_depth{job=\"py/metrics-svc\"}"),
        6.0
    );
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_metric_points",
            &[("exporter", "prometheusremotewrite")]
        ),
        0.0
    );
}
