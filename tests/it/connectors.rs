//! Connectors end to end: `forward` joins two source pipelines (one with its own processor)
//! into a common pipeline whose exporter is an in-process OTLP/HTTP backend; what arrives is
//! every span of both sources, edited by the processors on its way, still forwarded as the
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
