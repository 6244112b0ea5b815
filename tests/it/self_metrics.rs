//! Every component emits its self-metrics set under Collector-compatible names, labelled by
//! component id, so existing dashboards work: receivers per transport, exporters (sent,
//! send-failed, enqueue-failed, queue size and capacity), the batch processor, the memory
//! limiter, the persistent queue, and the Prometheus and Loki exporters' own counters.

use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use otelgw::data::Telemetry;
use prost::Message;

fn has_series(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().filter(|l| !l.starts_with('#')).any(|l| {
        let series = l.rsplit_once(' ').map(|(s, _)| s).unwrap_or("");
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
    })
}

#[test]
fn every_component_emits_its_metrics() {
    let ports = Ports::new();
    let (prom, dead) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("queue");
    let config = format!(
        r#"receivers:
{recv}processors:
  memory_limiter: {{limit_mib: 512, check_interval: 100ms}}
  batch: {{timeout: 50ms}}
exporters:
  otlp: {{endpoint: "http://127.0.0.1:{dead}", retry_on_failure: {{enabled: false}}}}
  otlp_http: {{endpoint: "http://127.0.0.1:{dead}", retry_on_failure: {{enabled: false}}}}
  prometheus: {{endpoint: "127.0.0.1:{prom}"}}
  loki: {{endpoint: "http://127.0.0.1:{dead}/loki/api/v1/push", retry_on_failure: {{enabled: false}}, sending_queue: {{storage: file_storage/q}}}}
  debug:
extensions:
  file_storage/q: {{directory: "{qdir}"}}
service:
  extensions: [file_storage/q]
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp, debug]}}
    metrics: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp_http, prometheus]}}
    logs: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [loki]}}
{tel}"#,
        recv = ports.otlp_receiver(),
        qdir = qdir.display(),
        tel = ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    let text = gw.metrics_text();
    for transport in ["grpc", "http"] {
        for noun in ["spans", "metric_points", "log_records"] {
            for kind in ["accepted", "refused"] {
                let name = format!("otelcol_receiver_{kind}_{noun}");
                assert!(
                    has_series(
                        &text,
                        &name,
                        &[("receiver", "otlp"), ("transport", transport)]
                    ),
                    "{name} {transport}"
                );
            }
        }
    }
    for exporter in ["otlp", "otlp_http", "prometheus", "loki", "debug"] {
        for noun in ["spans", "metric_points", "log_records"] {
            for kind in ["sent", "send_failed", "enqueue_failed"] {
                let name = format!("otelcol_exporter_{kind}_{noun}");
                assert!(
                    has_series(&text, &name, &[("exporter", exporter)]),
                    "{name} for {exporter}"
                );
            }
        }
        for name in [
            "otelcol_exporter_queue_size",
            "otelcol_exporter_queue_capacity",
            "otelgw_exporter_retries_total",
        ] {
            assert!(
                has_series(&text, name, &[("exporter", exporter)]),
                "{name} for {exporter}"
            );
        }
    }
    for pipeline in ["traces", "metrics", "logs"] {
        for name in [
            "otelcol_processor_batch_batch_send_size_count",
            "otelcol_processor_batch_batch_size_trigger_send",
            "otelcol_processor_batch_timeout_trigger_send",
            "otelcol_processor_batch_metadata_cardinality",
        ] {
            assert!(
                has_series(
                    &text,
                    name,
                    &[("processor", "batch"), ("pipeline", pipeline)]
                ),
                "{name} in {pipeline}"
            );
        }
    }
    for name in [
        "otelgw_memory_limiter_state",
        "otelgw_memory_limiter_usage_bytes",
        "otelgw_memory_limiter_refused_requests_total",
    ] {
        assert!(has_series(&text, name, &[]), "{name}");
    }
    assert!(has_series(
        &text,
        "otelgw_memory_limiter_limit_bytes",
        &[("limit", "hard")]
    ));
    for name in [
        "otelgw_prometheus_series",
        "otelgw_prometheus_scrapes_total",
        "otelgw_prometheus_expired_series_total",
    ] {
        assert!(
            has_series(&text, name, &[("exporter", "prometheus")]),
            "{name}"
        );
    }
    for reason in ["out_of_order", "type_conflict", "max_series"] {
        assert!(has_series(
            &text,
            "otelgw_prometheus_dropped_points_total",
            &[("exporter", "prometheus"), ("reason", reason)]
        ));
    }
    for name in [
        "otelgw_loki_labels_demoted_total",
        "otelgw_loki_lines_truncated_total",
        "otelgw_loki_lines_dropped_total",
        "otelgw_loki_entries_dropped_stream_limit_total",
    ] {
        assert!(has_series(&text, name, &[("exporter", "loki")]), "{name}");
    }
    // the persistent queue (loki's sending_queue has storage)
    for name in [
        "otelgw_exporter_persistent_queue_disk_bytes",
        "otelgw_exporter_persistent_queue_recovered_records_total",
        "otelgw_exporter_persistent_queue_corrupt_records_total",
    ] {
        assert!(has_series(&text, name, &[("exporter", "loki")]), "{name}");
    }
    assert!(has_series(&text, "otelcol_process_start_time_seconds", &[]));
    // the memory limiter's state is live: accepting
    assert_eq!(gw.metric("otelgw_memory_limiter_state", &[]), 0.0);
    assert_eq!(
        gw.metric("otelcol_exporter_queue_capacity", &[("exporter", "otlp")]),
        1000.0
    );
}

/// `service.telemetry.metrics.readers[].periodic`: a gateway pushes its own metrics by OTLP
/// (one reader over gRPC, one over HTTP) to a second otelgw, which writes them to a file.
#[test]
fn periodic_readers_push_self_metrics_by_otlp_to_a_second_gateway() {
    let (sink, out) = file_sink();
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"receivers:
{recv}exporters:
  debug: {{}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
  telemetry:
    resource: {{service.name: edge-gw, deployment.environment: test}}
    metrics:
      address: 127.0.0.1:{admin}
      readers:
        - periodic:
            interval: 300
            exporter: {{otlp: {{protocol: grpc, endpoint: "http://127.0.0.1:{grpc}"}}}}
        - periodic:
            interval: 300ms
            exporter: {{otlp_http: {{endpoint: "http://127.0.0.1:{http}"}}}}
"#,
        recv = ports.otlp_receiver(),
        admin = ports.admin,
        grpc = sink.grpc_port,
        http = sink.http_port,
    );
    let gw = Gateway::start(ports, dir, &config);
    // some traffic, so the receiver's counters move
    let status = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
        .header("content-type", "application/x-protobuf")
        .body(otelgw::testdata::traces(1, 1, 5).encode_to_vec())
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut seen = (false, false);
    wait_until(
        "pushed self-metrics with the accepted spans",
        Duration::from_secs(10),
        || {
            let mut pushes = 0;
            for t in read_file_export(&out) {
                let Telemetry::Metrics(m) = t else { continue };
                for rm in &m.resource_metrics {
                    let svc = rm
                        .resource
                        .as_ref()
                        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                        .and_then(|kv| kv.value.clone()?.value);
                    if svc != Some(Value::StringValue("edge-gw".into())) {
                        continue;
                    }
                    pushes += 1;
                    for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                        if m.name == "otelcol_receiver_accepted_spans" {
                            if let Some(Data::Sum(s)) = &m.data {
                                seen.0 |= s.is_monotonic
                                    && s.data_points.iter().any(|p| {
                                        p.value == Some(number_data_point::Value::AsInt(5))
                                    });
                            }
                        }
                        seen.1 |= m.name == "otelcol_process_start_time_seconds";
                    }
                }
            }
            pushes >= 4 && seen.0 && seen.1
        },
    );
    drop(gw);
}

/// `service.telemetry.metrics.level` as the Collector's: `basic` keeps what every operator
/// needs (items in and out, queues, drops); `normal` and `detailed` show every metric (the
/// batch processor's, the listeners'); a reload changes it.
#[test]
fn the_metrics_level_selects_which_self_metrics_exist() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = |level: &str| {
        format!(
            "receivers:\n{}processors:\n  batch: {{timeout: 50ms}}\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [debug]}}\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{}\n      level: {level}\n",
            ports.otlp_receiver(),
            ports.admin
        )
    };
    let basic = config("basic");
    let detailed = config("detailed");
    let mut gw = Gateway::start(ports, dir, &basic);
    let body = testdata_traces();
    let post = |port: u16| {
        reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{port}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(gw.http_port), 200);
    wait_until("spans counted", Duration::from_secs(10), || {
        gw.metric("otelcol_exporter_sent_spans", &[("exporter", "debug")]) == 3.0
    });
    let text = gw.metrics_text();
    assert!(
        has_series(&text, "otelcol_receiver_accepted_spans", &[]),
        "{text}"
    );
    assert!(
        !text.contains("otelcol_processor_batch_batch_send_size"),
        "{text}"
    );
    assert!(!text.contains("otelgw_listener_connections"), "{text}");

    std::fs::write(&gw.config_path, &detailed).unwrap();
    gw.signal("HUP");
    wait_until("the reload", Duration::from_secs(10), || {
        gw.logs().contains("config reloaded")
    });
    assert_eq!(post(gw.http_port), 200);
    wait_until("batch metrics shown", Duration::from_secs(10), || {
        gw.metrics_text()
            .contains("# TYPE otelcol_processor_batch_batch_send_size histogram")
    });
    assert!(gw.metrics_text().contains("otelgw_listener_connections"));
    gw.stop();
    // a level the Collector does not have is a config error at its path
    let bad = basic.replace("level: basic", "level: verbose");
    std::fs::write(&gw.config_path, bad).unwrap();
    let out = std::process::Command::new(otelgw_bin())
        .args(["validate", "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("service.telemetry.metrics.level"));
}

fn testdata_traces() -> Vec<u8> {
    otelgw::testdata::traces(5, 1, 3).encode_to_vec()
}
