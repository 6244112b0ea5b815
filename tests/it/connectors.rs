//! Connectors end to end (`routing`, `spanmetrics` and `count` are described at their tests):
//! `forward` joins two source pipelines (one with its own processor) into a common pipeline
//! whose exporter is an in-process OTLP/HTTP backend; what arrives is every span of both
//! sources, edited by the processors on its way, still forwarded as the
//! client's protobuf (nothing decoded). A stuck backend behind the common pipeline makes the
//! *upstream* receiver refuse with a retry hint once the queue is full: backpressure crosses
//! the connector, nothing is dropped silently.

use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otelgw::testdata;
use prost::Message;

/// The gateway and the HTTP port of its second receiver.
fn gateway(backend: u16, queue: &str) -> (Gateway, u16) {
    let ports = Ports::new();
    let second = Ports::new().http;
    let config = format!(
        r#"receivers:
{receiver}  otlp/second:
    protocols:
      http:
        endpoint: 127.0.0.1:{second}
processors:
  attributes/source:
    actions: [{{key: source, value: second, action: insert}}]
  attributes/common:
    actions: [{{key: joined, value: true, action: upsert}}]
connectors:
  forward:
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    compression: none
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 20s}}
    sending_queue:
{queue}
service:
  pipelines:
    traces/first: {{receivers: [otlp], exporters: [forward]}}
    traces/second: {{receivers: [otlp/second], processors: [attributes/source], exporters: [forward]}}
    traces: {{receivers: [forward], processors: [attributes/common], exporters: [otlphttp]}}
{telemetry}"#,
        receiver = ports.otlp_receiver(),
        second = second,
        telemetry = ports.telemetry(),
    );
    (
        Gateway::start(ports, tempfile::tempdir().unwrap(), &config),
        second,
    )
}

async fn post(port: u16, seed: u64, n: usize) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(testdata::traces(seed, 1, n).encode_to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_joins_two_sources_into_one_pipeline() {
    let backend = Backend::start(Script::recording()).await;
    let (gw, second) = gateway(backend.port, "      queue_size: 100\n");
    assert_eq!(post(gw.http_port, 1, 3).await.status().as_u16(), 200);
    assert_eq!(post(second, 2, 4).await.status().as_u16(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while backend.count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend got {}",
            backend.count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut spans = Vec::new();
    for rec in backend.requests() {
        let body: Bytes = rec.body;
        let req = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            let get = |k: &str| {
                s.attributes
                    .iter()
                    .find(|kv| kv.key == k)
                    .and_then(|kv| kv.value.clone()?.value)
            };
            spans.push((s.span_id.clone(), get("source"), get("joined")));
        }
    }
    let sent: Vec<_> = [testdata::traces(1, 1, 3), testdata::traces(2, 1, 4)]
        .iter()
        .flat_map(|r| r.resource_spans[0].scope_spans[0].spans.clone())
        .collect();
    assert_eq!(spans.len(), 7, "every span of both sources, once");
    for (i, s) in sent.iter().enumerate() {
        let got = spans
            .iter()
            .find(|(id, _, _)| *id == s.span_id)
            .expect("delivered");
        let want_source = (i >= 3).then(|| Value::StringValue("second".into()));
        assert_eq!(
            got.1, want_source,
            "the source pipeline's processor ran on its own spans only"
        );
        assert_eq!(
            got.2,
            Some(Value::BoolValue(true)),
            "the common pipeline's processor ran on all"
        );
    }
    // the connector counts as an exporter (of both sources' spans) and a receiver, with the
    // Collector's names
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans", &[("exporter", "forward")]),
        7.0
    );
    assert_eq!(
        gw.metric(
            "otelcol_receiver_accepted_spans",
            &[("receiver", "forward"), ("transport", "")]
        ),
        7.0
    );
    // nothing on the way needed the decoded request
    for r in ["otlp", "otlp/second"] {
        assert_eq!(
            gw.metric(
                "otelgw_receiver_forwarded_requests_total",
                &[("receiver", r), ("transport", "http")]
            ),
            1.0,
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_behind_the_connector_refuses_the_upstream_client() {
    let stuck = Script::always(Reply::otlp_ok()).slow(Duration::from_secs(60));
    let backend = Backend::start(stuck).await;
    let (gw, second) = gateway(
        backend.port,
        "      queue_size: 2\n      num_consumers: 1\n      block_on_overflow: false\n",
    );
    let mut statuses = Vec::new();
    for seed in 0..6 {
        let r = post(second, seed, 4).await;
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        statuses.push((r.status().as_u16(), retry));
    }
    let accepted = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!((3..=4).contains(&accepted), "{statuses:?}");
    assert_eq!(accepted + refused.len(), 6, "{statuses:?}");
    assert!(
        refused.iter().all(|(_, r)| r.as_deref() == Some("1")),
        "{statuses:?}"
    );
    // the refusals are counted where the client was refused, and at the exporter
    let refused_items = 4.0 * refused.len() as f64;
    assert_eq!(
        gw.metric(
            "otelcol_receiver_refused_spans",
            &[("receiver", "otlp/second")]
        ),
        refused_items
    );
    assert_eq!(
        gw.metric(
            "otelcol_exporter_enqueue_failed_spans",
            &[("exporter", "otlphttp")]
        ),
        refused_items
    );
    // and at the connector, on both of its sides
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_spans",
            &[("exporter", "forward")]
        ),
        refused_items
    );
    assert_eq!(
        gw.metric("otelcol_receiver_refused_spans", &[("receiver", "forward")]),
        refused_items
    );
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans", &[("exporter", "forward")]),
        4.0 * accepted as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_turns_spans_into_metrics_of_another_pipeline() {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
    use otelgw::data::Telemetry;
    let backend = Backend::start(Script::recording()).await;
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counts.jsonl");
    let config = format!(
        r#"receivers:
{receiver}connectors:
  count:
    spans:
      spans.by.route:
        attributes: [{{key: http.route}}]
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    compression: none
  file:
    path: {file}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [count, otlphttp]}}
    metrics: {{receivers: [count], exporters: [file]}}
{telemetry}"#,
        receiver = ports.otlp_receiver(),
        backend = backend.port,
        file = file.display(),
        telemetry = ports.telemetry(),
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    assert_eq!(post(gw.http_port, 1, 3).await.status().as_u16(), 200);
    assert_eq!(post(gw.http_port, 2, 4).await.status().as_u16(), 200);
    let f = file.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("two counts in the file", Duration::from_secs(15), || {
            read_file_export(&f).len() >= 2
        })
    })
    .await
    .unwrap();
    let mut total = 0;
    let mut names = std::collections::BTreeSet::new();
    for t in read_file_export(&file) {
        let Telemetry::Metrics(r) = t else {
            panic!("metrics only")
        };
        for m in r
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
        {
            names.insert(m.name.clone());
            // `spanevents` was not configured: the Collector's default count of them comes too
            if m.name == "trace.span.event.count" {
                continue;
            }
            assert_eq!(m.name, "spans.by.route");
            let Some(Data::Sum(s)) = &m.data else {
                panic!("a sum")
            };
            for p in &s.data_points {
                assert_eq!(p.attributes[0].key, "http.route");
                let Some(number_data_point::Value::AsInt(n)) = p.value else {
                    panic!("int")
                };
                total += n;
            }
        }
    }
    assert_eq!(total, 7, "every span counted once");
    assert!(names.contains("trace.span.event.count"), "{names:?}");
    // and the spans themselves still went to their exporter
    assert_eq!(backend.count(), 2);
}

/// The OTel demo's shape: traces export to `spanmetrics`, a metrics pipeline receives from it
/// and serves Prometheus. The OTel Python SDK sends the demo frontend's spans; the RED metrics
/// come out under the Collector's names, per span name and `http.route` dimension, and the
/// spans still reach their own exporter.
#[test]
fn spanmetrics_turns_the_sdks_spans_into_the_collectors_red_metrics() {
    let python = peer("OTELGW_TEST_PYTHON");
    let ports = Ports::new();
    let exp_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.json");
    let config = format!(
        "receivers:\n{}connectors:\n  spanmetrics:\n    dimensions: [{{name: http.route}}]\n    metrics_flush_interval: 200ms\nexporters:\n  file:\n    path: {}\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file, spanmetrics]}}\n    metrics: {{receivers: [spanmetrics], exporters: [prometheus]}}\n{}",
        ports.otlp_receiver(),
        out.display(),
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(ports, gw_dir, &config);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_spans.py");
    let sent = std::process::Command::new(&python)
        .arg(script)
        .arg(format!("127.0.0.1:{}", gw.grpc_port))
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let base = [
        ("service_name", "frontend"),
        ("span_kind", "SPAN_KIND_INTERNAL"),
        ("status_code", "STATUS_CODE_UNSET"),
    ];
    let calls = |name: &str, route: &str| {
        let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap_or_default();
        let mut labels = base.to_vec();
        labels.extend([("span_name", name), ("http_route", route)]);
        metric_value(&text, "traces_span_metrics_calls_total", &labels)
    };
    wait_until("the health checks counted", Duration::from_secs(20), || {
        calls("GET /healthz", "/healthz") == 2.0
    });
    assert_eq!(calls("POST /api/cart", "/api/cart"), 1.0);
    assert_eq!(
        calls("GET /api/products/OLJCESPC7Z", "/api/products/{productId}"),
        1.0
    );
    let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap();
    let mut inf = base.to_vec();
    inf.extend([("span_name", "GET /healthz"), ("le", "+Inf")]);
    assert_eq!(
        metric_value(
            &text,
            "traces_span_metrics_duration_milliseconds_bucket",
            &inf
        ),
        2.0,
        "{text}"
    );
    assert!(text.contains("# TYPE traces_span_metrics_duration_milliseconds histogram"));
    // the spans themselves went on to their exporter
    wait_until("five spans in the file", Duration::from_secs(10), || {
        count_items(&read_file_export(&out), otelgw::data::Signal::Traces) == 5
    });
    assert!(gw.metric("otelgw_connector_flushes_total", &[("result", "success")]) >= 1.0);
    // the connector took the five spans as an exporter and produced metric points as a receiver
    assert_eq!(
        gw.metric(
            "otelcol_exporter_sent_spans",
            &[("exporter", "spanmetrics")]
        ),
        5.0
    );
    assert!(
        gw.metric(
            "otelcol_receiver_accepted_metric_points",
            &[("receiver", "spanmetrics")]
        ) >= 1.0
    );
}

/// `routing` by a resource attribute: one resource of the request to its tenant's pipeline,
/// the others to the default pipeline; each pipeline its own exporter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_sends_each_resource_to_its_route_and_the_rest_to_the_default() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let (zero, rest) = (dir.path().join("zero.json"), dir.path().join("rest.json"));
    let config = format!(
        "receivers:\n{}connectors:\n  routing:\n    default_pipelines: [traces/rest]\n    table:\n      - statement: route() where attributes[\"service.instance.id\"] == \"checkout-0\"\n        pipelines: [traces/zero]\nexporters:\n  file/zero:\n    path: {}\n  file/rest:\n    path: {}\nservice:\n  pipelines:\n    traces/in: {{receivers: [otlp], exporters: [routing]}}\n    traces/zero: {{receivers: [routing], exporters: [file/zero]}}\n    traces/rest: {{receivers: [routing], exporters: [file/rest]}}\n{}",
        ports.otlp_receiver(),
        zero.display(),
        rest.display(),
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(ports, gw_dir, &config);
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    // three resources (instances checkout-0, -1, -2), two spans each
    client.export(testdata::traces(1, 3, 2)).await.unwrap();
    let spans =
        |p: &std::path::Path| count_items(&read_file_export(p), otelgw::data::Signal::Traces);
    wait_until("routed spans written", Duration::from_secs(10), || {
        spans(&zero) == 2 && spans(&rest) == 4
    });
}

/// The multi-tenant gateway: `routing` on the `X-Tenant` request header (the receiver keeps
/// headers with `include_metadata`) sends tenant a and tenant b to their own exporters —
/// nothing crosses — and an unknown tenant to the default; when tenant b's pipeline refuses
/// (its queue is full), tenant b's client gets the refusal with a retry hint while tenant a
/// is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_by_tenant_header_keeps_tenants_apart_and_refusals_reach_their_client() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let (a, other) = (dir.path().join("a.json"), dir.path().join("other.json"));
    // tenant b's exporter points at a port where nothing answers, with a queue of one batch
    // that refuses when full
    let dead = free_port();
    let config = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{}\n        include_metadata: true\nconnectors:\n  routing:\n    default_pipelines: [traces/other]\n    table:\n      - context: request\n        condition: request[\"X-Tenant\"] == \"a\"\n        pipelines: [traces/a]\n      - context: request\n        condition: request[\"X-Tenant\"] == \"b\"\n        pipelines: [traces/b]\nexporters:\n  file/a:\n    path: {}\n  file/other:\n    path: {}\n  otlphttp/b:\n    endpoint: http://127.0.0.1:{dead}\n    sending_queue: {{queue_size: 1, num_consumers: 1, block_on_overflow: false}}\n    retry_on_failure: {{initial_interval: 5s, max_interval: 5s, max_elapsed_time: 0s}}\nservice:\n  pipelines:\n    traces/in: {{receivers: [otlp], exporters: [routing]}}\n    traces/a: {{receivers: [routing], exporters: [file/a]}}\n    traces/b: {{receivers: [routing], exporters: [otlphttp/b]}}\n    traces/other: {{receivers: [routing], exporters: [file/other]}}\n{}",
        ports.http,
        a.display(),
        other.display(),
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(ports, gw_dir, &config);
    let send = |tenant: &'static str, seed: u64| {
        let port = gw.http_port;
        async move {
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .header("x-tenant", tenant)
                .body(testdata::traces(seed, 1, 3).encode_to_vec())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("a", 1).await.status().as_u16(), 200);
    assert_eq!(send("zz", 2).await.status().as_u16(), 200);
    // tenant b: the first batch fills the queue; later ones are refused with a retry hint
    let mut refused = None;
    for seed in 10..20 {
        let r = send("b", seed).await;
        if r.status().as_u16() == 429 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("tenant b refused once its queue is full");
    assert!(refused.headers().get("retry-after").is_some());
    // tenant a is still served, and nothing crossed
    assert_eq!(send("a", 3).await.status().as_u16(), 200);
    let spans =
        |p: &std::path::Path| count_items(&read_file_export(p), otelgw::data::Signal::Traces);
    wait_until(
        "tenant a and the default written",
        Duration::from_secs(10),
        || spans(&a) == 6 && spans(&other) == 3,
    );
}

/// The demo's RED path read by a real Prometheus 2.42: spans of known names and durations go
/// through `spanmetrics` to the `prometheus` exporter; PromQL gives exactly the calls per span
/// name, the bucket counts and the 95th percentile the test computes from what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spanmetrics_in_prometheus_match_the_spans_sent() {
    use std::collections::BTreeMap;
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let ports = Ports::new();
    let exp_port = free_port();
    let config = format!(
        "receivers:\n{}connectors:\n  spanmetrics:\n    metrics_flush_interval: 200ms\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [spanmetrics]}}\n    metrics: {{receivers: [spanmetrics], exporters: [prometheus]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(ports, gw_dir, &config);
    // three requests of 4 resources × 40 spans; names cycle over 16 routes, durations 1–6 ms
    let reqs: Vec<_> = (0..3).map(|i| testdata::traces(100 + i, 4, 40)).collect();
    let mut calls: BTreeMap<String, f64> = BTreeMap::new();
    let mut durations_ms: Vec<f64> = Vec::new();
    for r in &reqs {
        for rs in &r.resource_spans {
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    *calls.entry(s.name.clone()).or_default() += 1.0;
                    durations_ms.push((s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6);
                }
            }
        }
    }
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    for r in reqs {
        client.export(r).await.unwrap();
    }
    let (_prom, prom_port) = start_prometheus(&prom_bin, exp_port);
    let total = durations_ms.len() as f64;
    wait_until("prometheus has every call", Duration::from_secs(30), || {
        let r = prom_query(prom_port, "sum(traces_span_metrics_calls_total)");
        r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            == Some(total)
    });
    // calls per span name, exactly
    let r = prom_query(
        prom_port,
        "sum by (span_name) (traces_span_metrics_calls_total)",
    );
    let got: BTreeMap<String, f64> = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["span_name"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, calls);
    // bucket placement: the Collector's default bounds (ms), upper-inclusive
    let bounds = [2.0, 4.0, 6.0, 8.0, 10.0];
    for le in bounds {
        let want = durations_ms.iter().filter(|d| **d <= le).count() as f64;
        let q = format!("sum(traces_span_metrics_duration_milliseconds_bucket{{le=\"{le}\"}})");
        assert_eq!(prom_value(prom_port, &q), want, "le={le}");
    }
    // the 95th percentile as Prometheus interpolates it within its bucket
    let rank = 0.95 * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    let mut want = f64::NAN;
    for le in bounds {
        let cum = durations_ms.iter().filter(|d| **d <= le).count() as f64;
        if cum >= rank {
            want = lower + (le - lower) * (rank - below) / (cum - below);
            break;
        }
        (lower, below) = (le, cum);
    }
    let q = prom_value(
        prom_port,
        "histogram_quantile(0.95, sum by (le) (traces_span_metrics_duration_milliseconds_bucket))",
    );
    assert!((q - want).abs() < 1e-9, "p95 {q} vs {want}");
}
