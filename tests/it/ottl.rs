//! `transform` and `filter` end to end: the OpenTelemetry Python SDK sends spans named as the
//! OTel demo's frontend names them, plus health checks, to a gateway whose pipeline runs the
//! demo's `transform` block and a `filter` that drops `/healthz` spans — both on the encoded
//! requests, since the pipeline forwards OTLP — and forwards to a second gateway that writes
//! what it receives to a `file` exporter. The file is compared span by span with what the SDK
//! says it sent.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otelgw::data::{Signal, Telemetry};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_demo_transform_and_a_health_check_filter_with_the_python_sdk() {
    let python = peer("OTELGW_TEST_PYTHON");
    let (sink, out) = file_sink();
    let ports = Ports::new();
    let config = format!(
        r#"receivers:
{receiver}processors:
  transform:
    error_mode: ignore
    trace_statements:
      - context: span
        statements:
          - replace_pattern(name, "\\?.*", "")
          - replace_match(name, "GET /api/products/*", "GET /api/products/{{productId}}")
  filter/health:
    error_mode: ignore
    traces:
      span:
        - 'attributes["http.route"] == "/healthz"'
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink}
    tls: {{insecure: true}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [filter/health, transform], exporters: [otlp]}}
{telemetry}"#,
        receiver = ports.otlp_receiver(),
        sink = sink.grpc_port,
        telemetry = ports.telemetry(),
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_spans.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(format!("127.0.0.1:{}", gw.grpc_port))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python sender failed: {stderr}");
    let sent: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sent["flushed"], true, "{stderr}");
    let sent = sent["spans"].as_array().unwrap().clone();

    wait_until("three spans in the file", Duration::from_secs(10), || {
        count_items(&read_file_export(&out), Signal::Traces) >= 3
    });
    std::thread::sleep(Duration::from_millis(300)); // nothing more arrives
    let mut got = Vec::new();
    for t in read_file_export(&out) {
        if let Telemetry::Traces(r) = t {
            for rs in r.resource_spans {
                for ss in rs.scope_spans {
                    got.extend(ss.spans);
                }
            }
        }
    }
    let expected: Vec<(&str, &str)> = vec![
        ("GET /api/products", "/api/products"),
        ("GET /api/products/{productId}", "/api/products/{productId}"),
        ("POST /api/cart", "/api/cart"),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (want_name, route) in expected {
        let s = sent
            .iter()
            .find(|s| s["route"] == route)
            .unwrap_or_else(|| panic!("sent {route}"));
        let span = got
            .iter()
            .find(|g| hex(&g.span_id) == s["span_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("span for {route} not delivered"));
        assert_eq!(span.name, want_name);
        assert_eq!(hex(&span.trace_id), s["trace_id"].as_str().unwrap());
        let r = span
            .attributes
            .iter()
            .find(|kv| kv.key == "http.route")
            .unwrap();
        assert_eq!(
            r.value.as_ref().unwrap().value,
            Some(Value::StringValue(route.into()))
        );
    }
    // the health checks were filtered and counted, not refused
    let metrics = gw.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("otelcol_processor_filter_spans_filtered") && l.ends_with(" 2")),
        "{metrics}"
    );
}
