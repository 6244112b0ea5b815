//! Real receivers: otelgw's `otlp_grpc` and `otlp_http` exporters deliver to a second otelgw and
//! to rotel (an independent OTLP implementation, `pip install rotel`); what arrives is compared
//! with what was sent: same ids, attributes, timestamps, resource and scope.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;
use otelgw::data::{Signal, Telemetry};
use otelgw::testdata;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otelgw_to_otelgw_over_grpc_http_proto_and_http_json_is_lossless() {
    let (b, out) = file_sink();
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"receivers:
{recv}exporters:
  otlp/b:
    endpoint: 127.0.0.1:{bg}
    tls: {{insecure: true}}
    compression: gzip
  otlphttp/b:
    endpoint: http://127.0.0.1:{bh}
    compression: zstd
  otlp_http/json:
    endpoint: http://127.0.0.1:{bh}/
    encoding: json
    compression: none
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/b]
    traces/copy:
      receivers: [otlp]
      exporters: [otlp/b]
    logs:
      receivers: [otlp]
      exporters: [otlphttp/b]
    metrics/internal:
      receivers: [otlp]
      exporters: [otlp_http/json]
{tel}"#,
        recv = ports.otlp_receiver(),
        bg = b.grpc_port,
        bh = b.http_port,
        tel = ports.telemetry()
    );
    let a = Gateway::start(ports, dir, &config);
    let ep = format!("http://127.0.0.1:{}", a.grpc_port);

    let traces = testdata::traces(1, 3, 20);
    let logs = testdata::logs(2, 2, 15);
    let metrics = testdata::metrics(3, 2, 4);
    TraceServiceClient::connect(ep.clone())
        .await
        .unwrap()
        .export(traces.clone())
        .await
        .unwrap();
    LogsServiceClient::connect(ep.clone())
        .await
        .unwrap()
        .export(logs.clone())
        .await
        .unwrap();
    MetricsServiceClient::connect(ep.clone())
        .await
        .unwrap()
        .export(metrics.clone())
        .await
        .unwrap();

    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("everything at B", Duration::from_secs(15), || {
            let d = read_file_export(&out2);
            count_items(&d, Signal::Traces) == 120
                && count_items(&d, Signal::Logs) == 30
                && count_items(&d, Signal::Metrics) == 40
        })
    })
    .await
    .unwrap();
    let received = read_file_export(&out);
    // fan-out (two trace pipelines) and fan-in (one shared exporter): two identical copies
    let got_traces: Vec<_> = received
        .iter()
        .filter(|t| t.signal() == Signal::Traces)
        .collect();
    assert_eq!(got_traces.len(), 2);
    for t in got_traces {
        assert_eq!(
            t,
            &Telemetry::Traces(traces.clone()),
            "traces changed in transit"
        );
    }
    assert!(
        received.contains(&Telemetry::Logs(logs.clone())),
        "logs changed in transit (otlp_http proto + zstd)"
    );
    assert!(
        received.contains(&Telemetry::Metrics(metrics.clone())),
        "metrics changed in transit (otlp_http json)"
    );
    assert_eq!(
        a.metric("otelcol_exporter_sent_spans", &[("exporter", "otlp/b")]),
        120.0
    );
    assert_eq!(
        a.metric(
            "otelcol_exporter_sent_log_records",
            &[("exporter", "otlphttp/b")]
        ),
        30.0
    );
    assert_eq!(
        a.metric(
            "otelcol_exporter_sent_metric_points",
            &[("exporter", "otlp_http/json")]
        ),
        40.0
    );
    assert_eq!(
        a.metric(
            "otelcol_exporter_send_failed_spans",
            &[("exporter", "otlp/b")]
        ),
        0.0
    );
}

struct Rotel(Child);

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_rotel(grpc: u16, http: u16, export_to_grpc: u16, log: &std::path::Path) -> Rotel {
    let bin = peer("OTELGW_TEST_ROTEL");
    let child = Command::new(bin)
        .args([
            "start",
            "--otlp-grpc-endpoint",
            &format!("127.0.0.1:{grpc}"),
        ])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .args(["--exporter", "otlp", "--otlp-exporter-protocol", "grpc"])
        .args([
            "--otlp-exporter-endpoint",
            &format!("http://127.0.0.1:{export_to_grpc}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let r = Rotel(child);
    wait_until("rotel listening", Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
    });
    r
}

fn spans_by_id(data: &[Telemetry]) -> Vec<(Vec<u8>, Span, String)> {
    let mut v = vec![];
    for t in data {
        if let Telemetry::Traces(r) = t {
            for rs in &r.resource_spans {
                let res = format!("{:?}", rs.resource);
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        v.push((s.span_id.clone(), s.clone(), res.clone()));
                    }
                }
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otelgw_exports_to_rotel_over_grpc_and_http() {
    // otelgw A --otlp_grpc (traces) / otlp_http (logs)--> rotel --otlp grpc--> otelgw B --> file
    let (b, out) = file_sink();
    let (rg, rh) = (free_port(), free_port());
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let _rotel = start_rotel(rg, rh, b.grpc_port, &dir.path().join("rotel.log"));
    let config = format!(
        r#"receivers:
{recv}exporters:
  otlp_grpc/rotel:
    endpoint: http://127.0.0.1:{rg}
  otlp_http/rotel:
    endpoint: http://127.0.0.1:{rh}
    compression: gzip
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp_grpc/rotel]}}
    logs: {{receivers: [otlp], exporters: [otlp_http/rotel]}}
{tel}"#,
        recv = ports.otlp_receiver(),
        tel = ports.telemetry()
    );
    let a = Gateway::start(ports, dir, &config);
    let ep = format!("http://127.0.0.1:{}", a.grpc_port);
    let traces = testdata::traces(7, 2, 25);
    let logs = testdata::logs(8, 1, 10);
    TraceServiceClient::connect(ep.clone())
        .await
        .unwrap()
        .export(traces.clone())
        .await
        .unwrap();
    LogsServiceClient::connect(ep.clone())
        .await
        .unwrap()
        .export(logs.clone())
        .await
        .unwrap();

    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "rotel forwarded everything to B",
            Duration::from_secs(20),
            || {
                let d = read_file_export(&out2);
                count_items(&d, Signal::Traces) >= 50 && count_items(&d, Signal::Logs) >= 10
            },
        )
    })
    .await
    .unwrap();
    let received = read_file_export(&out);
    let sent = spans_by_id(&[Telemetry::Traces(traces)]);
    let got = spans_by_id(&received);
    assert_eq!(got.len(), sent.len());
    for ((_, s1, r1), (_, s2, r2)) in sent.iter().zip(got.iter()) {
        assert_eq!(s1, s2, "span changed through otelgw -> rotel -> otelgw");
        assert_eq!(r1, r2, "resource changed");
    }
    let got_logs: Vec<_> = received
        .iter()
        .filter_map(|t| match t {
            Telemetry::Logs(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| {
            r.resource_logs
                .iter()
                .flat_map(|rl| rl.scope_logs.iter().flat_map(|sl| sl.log_records.clone()))
        })
        .collect();
    let sent_logs: Vec<_> = logs.resource_logs[0].scope_logs[0].log_records.clone();
    assert_eq!(got_logs, sent_logs);
    assert_eq!(
        a.metric(
            "otelcol_exporter_sent_spans",
            &[("exporter", "otlp_grpc/rotel")]
        ),
        50.0
    );
    assert_eq!(
        a.metric(
            "otelcol_exporter_sent_log_records",
            &[("exporter", "otlp_http/rotel")]
        ),
        10.0
    );
}
