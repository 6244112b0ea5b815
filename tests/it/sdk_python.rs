//! Real clients: the OpenTelemetry Python SDK sends traces, metrics and logs over gRPC,
//! HTTP/protobuf and HTTP/JSON (the `opentelemetry-exporter-otlp-json-http` package); a `file`
//! exporter's output is compared field by field with what the SDK says it sent.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otelgw::data::{Signal, Telemetry};

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(protocol: &str, python_var: &str) {
    let python = peer(python_var);
    let (gw, out) = file_sink();
    let endpoint = if protocol == "grpc" {
        format!("127.0.0.1:{}", gw.grpc_port)
    } else {
        format!("http://127.0.0.1:{}", gw.http_port)
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(protocol)
        .arg(&endpoint)
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python sender failed: {stderr}");
    let sent: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        sent["flushed"],
        serde_json::json!([true, true, true]),
        "sdk flush failed: {stderr}"
    );

    wait_until(
        "all three signals in the file",
        Duration::from_secs(10),
        || {
            let d = read_file_export(&out);
            count_items(&d, Signal::Traces) >= 2
                && count_items(&d, Signal::Logs) >= 1
                && count_items(&d, Signal::Metrics) >= 4
        },
    );
    let data = read_file_export(&out);

    // traces: ids, parentage, times, typed attributes, resource and scope
    let mut spans = vec![];
    for t in &data {
        if let Telemetry::Traces(r) = t {
            for rs in &r.resource_spans {
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        spans.push((
                            rs.resource.clone().unwrap_or_default(),
                            ss.scope.clone().unwrap_or_default(),
                            s.clone(),
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (res, scope, parent) = spans.iter().find(|(_, _, s)| s.name == "parent").unwrap();
    let (_, _, child) = spans.iter().find(|(_, _, s)| s.name == "child").unwrap();
    assert_eq!(hex(&parent.trace_id), sent["trace_id"]);
    assert_eq!(hex(&child.trace_id), sent["trace_id"]);
    assert_eq!(hex(&parent.span_id), sent["parent"]["span_id"]);
    assert_eq!(hex(&child.span_id), sent["child"]["span_id"]);
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(
        parent.start_time_unix_nano,
        sent["parent"]["start"].as_u64().unwrap()
    );
    assert_eq!(
        parent.end_time_unix_nano,
        sent["parent"]["end"].as_u64().unwrap()
    );
    assert_eq!(
        child.start_time_unix_nano,
        sent["child"]["start"].as_u64().unwrap()
    );
    assert_eq!(child.kind, 2, "SERVER");
    assert_eq!(
        attr(&parent.attributes, "http.method"),
        Some(&Value::StringValue("GET".into()))
    );
    assert_eq!(
        attr(&parent.attributes, "retries"),
        Some(&Value::IntValue(3))
    );
    assert_eq!(
        attr(&parent.attributes, "ratio"),
        Some(&Value::DoubleValue(0.25))
    );
    assert_eq!(
        attr(&parent.attributes, "ok"),
        Some(&Value::BoolValue(true))
    );
    assert_eq!(
        attr(&parent.attributes, "unicode"),
        Some(&Value::StringValue("héllo ✓".into()))
    );
    match attr(&parent.attributes, "tags") {
        Some(Value::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
        other => panic!("tags: {other:?}"),
    }
    // 2^53 + 1 survives only if 64-bit ints are carried exactly (JSON: as strings)
    assert_eq!(
        attr(&child.attributes, "big"),
        Some(&Value::IntValue(9007199254740993))
    );
    assert_eq!(
        attr(&res.attributes, "service.name"),
        Some(&Value::StringValue("py-svc".into()))
    );
    assert_eq!(
        attr(&res.attributes, "service.namespace"),
        Some(&Value::StringValue("shop".into()))
    );
    assert_eq!(scope.name, "otelgw.python.test");
    assert_eq!(scope.version, "1.2.3");

    // logs: body, severity, trace context
    let logs: Vec<_> = data
        .iter()
        .filter_map(|t| match t {
            Telemetry::Logs(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| r.resource_logs.iter())
        .flat_map(|rl| rl.scope_logs.iter())
        .flat_map(|sl| sl.log_records.iter())
        .collect();
    assert_eq!(logs.len(), 1);
    let l = logs[0];
    match l.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => assert_eq!(s, "payment failed for order o-17"),
        other => panic!("body {other:?}"),
    }
    assert_eq!(l.severity_text, "WARN");
    assert_eq!(l.severity_number, 13);
    assert_eq!(hex(&l.trace_id), sent["trace_id"]);
    assert_eq!(hex(&l.span_id), sent["child"]["span_id"]);

    // metrics: values and attributes
    let metrics: Vec<_> = data
        .iter()
        .filter_map(|t| match t {
            Telemetry::Metrics(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| r.resource_metrics.iter())
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter())
        .collect();
    let orders = metrics
        .iter()
        .find(|m| m.name == "orders")
        .expect("orders metric");
    assert_eq!(orders.unit, "1");
    assert_eq!(orders.description, "orders placed");
    match &orders.data {
        Some(Data::Sum(s)) => {
            assert!(s.is_monotonic);
            let total: i64 = s
                .data_points
                .iter()
                .map(|p| match p.value {
                    Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i),
                    ) => i,
                    _ => panic!("int expected"),
                })
                .sum();
            assert_eq!(total, 7);
            assert!(s
                .data_points
                .iter()
                .any(|p| attr(&p.attributes, "region") == Some(&Value::StringValue("eu".into()))));
        }
        other => panic!("orders: {other:?}"),
    }
    let latency = metrics
        .iter()
        .find(|m| m.name == "latency")
        .expect("latency metric");
    match &latency.data {
        Some(Data::Histogram(h)) => {
            assert_eq!(h.data_points.len(), 1);
            assert_eq!(h.data_points[0].count, 3);
            assert_eq!(h.data_points[0].sum, Some(260.0));
            assert_eq!(h.data_points[0].bucket_counts.iter().sum::<u64>(), 3);
        }
        other => panic!("latency: {other:?}"),
    }
    let depth = metrics
        .iter()
        .find(|m| m.name == "queue_depth")
        .expect("queue_depth");
    match &depth.data {
        Some(Data::Sum(s)) => assert!(!s.is_monotonic),
        other => panic!("queue_depth: {other:?}"),
    }

    let transport = if protocol == "grpc" { "grpc" } else { "http" };
    assert_eq!(
        gw.metric(
            "otelcol_receiver_accepted_spans",
            &[("transport", transport)]
        ),
        2.0
    );
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans", &[("exporter", "file")]),
        2.0
    );
}

#[test]
fn python_sdk_grpc() {
    run("grpc", "OTELGW_TEST_PYTHON");
}

#[test]
fn python_sdk_http_protobuf() {
    run("http/protobuf", "OTELGW_TEST_PYTHON");
}

#[test]
fn python_sdk_http_json() {
    run("http/json", "OTELGW_TEST_PYTHON_JSON");
}
