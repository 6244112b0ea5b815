//! Real clients: the `opentelemetry-otlp` crate (gRPC via tonic, HTTP protobuf and HTTP JSON via
//! reqwest) sends spans, logs and metrics; the `file` exporter's output is compared with what the
//! SDK created (ids from the SDK's own span contexts).

use std::time::Duration;

use crate::common::*;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use otelgw::data::{Signal, Telemetry};

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("rust-svc")
        .with_attribute(KeyValue::new("host.name", "h1"))
        .build()
}

/// Sends one span with the given exporter; returns (trace_id, span_id) as hex.
fn send_span(exporter: SpanExporter, name: &'static str) -> (String, String) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer("otelgw.rust.test");
    let mut span = tracer
        .span_builder(name)
        .with_attributes(vec![
            KeyValue::new("answer", 42i64),
            KeyValue::new("path", "/checkout"),
        ])
        .start(&tracer);
    let ctx = span.span_context().clone();
    span.end();
    provider.force_flush().unwrap();
    provider.shutdown().unwrap();
    (ctx.trace_id().to_string(), ctx.span_id().to_string())
}

fn find_span(
    out: &std::path::Path,
    name: &str,
) -> (opentelemetry_proto::tonic::trace::v1::Span, String) {
    let mut found = None;
    wait_until(&format!("span {name}"), Duration::from_secs(10), || {
        for t in read_file_export(out) {
            if let Telemetry::Traces(r) = t {
                for rs in &r.resource_spans {
                    for ss in &rs.scope_spans {
                        for s in &ss.spans {
                            if s.name == name {
                                let svc = rs
                                    .resource
                                    .as_ref()
                                    .and_then(|r| {
                                        r.attributes.iter().find(|kv| kv.key == "service.name")
                                    })
                                    .and_then(|kv| kv.value.clone()?.value)
                                    .map(|v| format!("{v:?}"))
                                    .unwrap_or_default();
                                found = Some((s.clone(), svc));
                                return true;
                            }
                        }
                    }
                }
            }
        }
        false
    });
    found.unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn rust_sdk_traces_over_grpc_http_protobuf_and_http_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (gw, out) = file_sink();
    let cases = [
        (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("http://127.0.0.1:{}", gw.grpc_port))
                .build()
                .unwrap(),
            "via-grpc",
        ),
        (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
                .build()
                .unwrap(),
            "via-http-protobuf",
        ),
        (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .with_endpoint(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
                .with_headers([("x-test".to_string(), "1".to_string())].into())
                .build()
                .unwrap(),
            "via-http-json",
        ),
    ];
    for (exporter, name) in cases {
        let (trace_id, span_id) = send_span(exporter, name);
        let (span, svc) = find_span(&out, name);
        assert_eq!(hex(&span.trace_id), trace_id, "{name}");
        assert_eq!(hex(&span.span_id), span_id, "{name}");
        assert!(svc.contains("rust-svc"), "{name}: {svc}");
        let answer = span
            .attributes
            .iter()
            .find(|kv| kv.key == "answer")
            .and_then(|kv| kv.value.clone()?.value);
        assert_eq!(answer, Some(Value::IntValue(42)), "{name}");
        assert!(
            span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0
        );
    }
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "grpc")]),
        1.0
    );
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "http")]),
        2.0
    );
}

#[test]
fn rust_sdk_logs_and_metrics_over_grpc() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (gw, out) = file_sink();
    let endpoint = format!("http://127.0.0.1:{}", gw.grpc_port);

    let logs = SdkLoggerProvider::builder()
        .with_simple_exporter(
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(&endpoint)
                .build()
                .unwrap(),
        )
        .with_resource(resource())
        .build();
    let logger = logs.logger("otelgw.rust.test");
    let mut rec = logger.create_log_record();
    rec.set_body("disk almost full".into());
    rec.set_severity_number(Severity::Warn);
    rec.set_severity_text("WARN");
    rec.add_attribute("disk", "/dev/sda");
    logger.emit(rec);
    logs.force_flush().unwrap();

    let meters = SdkMeterProvider::builder()
        .with_periodic_exporter(
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&endpoint)
                .build()
                .unwrap(),
        )
        .with_resource(resource())
        .build();
    let counter = meters
        .meter("otelgw.rust.test")
        .u64_counter("jobs_done")
        .build();
    counter.add(3, &[KeyValue::new("queue", "a")]);
    counter.add(4, &[KeyValue::new("queue", "a")]);
    meters.force_flush().unwrap();

    wait_until("log and metric in file", Duration::from_secs(10), || {
        let d = read_file_export(&out);
        count_items(&d, Signal::Logs) >= 1 && count_items(&d, Signal::Metrics) >= 1
    });
    let data = read_file_export(&out);
    let mut saw_log = false;
    let mut saw_metric = false;
    for t in &data {
        match t {
            Telemetry::Logs(r) => {
                let l = &r.resource_logs[0].scope_logs[0].log_records[0];
                assert_eq!(
                    l.body.clone().and_then(|b| b.value),
                    Some(Value::StringValue("disk almost full".into()))
                );
                assert_eq!(l.severity_number, Severity::Warn as i32);
                assert_eq!(l.attributes[0].key, "disk");
                saw_log = true;
            }
            Telemetry::Metrics(r) => {
                for m in r
                    .resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                {
                    if m.name == "jobs_done" {
                        if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) =
                            &m.data
                        {
                            assert_eq!(
                                s.data_points[0].value,
                                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(7))
                            );
                            saw_metric = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert!(saw_log && saw_metric);
    let _ = logs.shutdown();
    let _ = meters.shutdown();
}
