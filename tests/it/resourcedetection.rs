//! `resourcedetection` in a running gateway: with `OTEL_RESOURCE_ATTRIBUTES` in otelgw's
//! environment and `detectors: [env, system]`, every resource delivered to the backend carries
//! the detected attributes (env first, so its `host.name` wins over the system's; percent-escapes
//! decoded), replacing the client's own values with `override: true` and keeping them with
//! `override: false`. The pipelines still forward the client's bytes (only resources are
//! re-encoded: the receiver counts the requests as forwarded), detection runs once per
//! processor however many pipelines use it, and again at a reload.

use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otelgw::testdata;
use prost::Message;

const ENV: &str = "deployment.environment=prod%2Ceu, service.namespace=shop,host.name=from-env";

async fn post(port: u16, signal: &str, body: Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/{signal}"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// The string attributes of a resource, as `key → value`.
fn strings(attrs: &[KeyValue]) -> std::collections::BTreeMap<String, String> {
    attrs
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// Waits (bounded) until the backend has a request at `path`; returns its body.
async fn body_at(backend: &Backend, path: &str) -> Bytes {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(r) = backend.requests().into_iter().find(|r| r.path == path) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "nothing reached {path} in 15s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detected_attributes_reach_the_backend_and_requests_stay_forwarded() {
    let backend = Backend::start(Script::recording()).await;
    let ports = Ports::new();
    let config = format!(
        r#"receivers:
{receiver}processors:
  resourcedetection:
    detectors: [env, system]
    system: {{hostname_sources: [os]}}
  resource_detection/keep:
    detectors: [env]
    override: false
exporters:
  otlphttp/override:
    endpoint: http://127.0.0.1:{port}/override
    compression: none
  otlphttp/keep:
    endpoint: http://127.0.0.1:{port}/keep
    compression: none
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resourcedetection]
      exporters: [otlphttp/override]
    traces/keep:
      receivers: [otlp]
      processors: [resource_detection/keep]
      exporters: [otlphttp/keep]
    logs:
      receivers: [otlp]
      processors: [resourcedetection]
      exporters: [otlphttp/override]
{telemetry}"#,
        receiver = ports.otlp_receiver(),
        port = backend.port,
        telemetry = ports.telemetry(),
    );
    let gw = Gateway::start_with_env(
        ports,
        tempfile::tempdir().unwrap(),
        &config,
        &[("OTEL_RESOURCE_ATTRIBUTES", ENV)],
    );

    // the client's own resource: its service, an environment the detector overrides
    let mut traces = testdata::traces(3, 2, 3);
    for rs in &mut traces.resource_spans {
        let r = rs.resource.get_or_insert_with(Default::default);
        r.attributes.retain(|kv| kv.key != "deployment.environment");
        r.attributes
            .push(testdata::kv("deployment.environment", testdata::s("dev")));
    }
    let logs = testdata::logs(4, 1, 2);
    post(gw.http_port, "traces", traces.encode_to_vec()).await;
    post(gw.http_port, "logs", logs.encode_to_vec()).await;

    let got =
        ExportTraceServiceRequest::decode(body_at(&backend, "/override/v1/traces").await).unwrap();
    assert_eq!(got.resource_spans.len(), traces.resource_spans.len());
    for (got, sent) in got.resource_spans.iter().zip(&traces.resource_spans) {
        // the spans are the client's
        assert_eq!(got.scope_spans, sent.scope_spans);
        let a = strings(&got.resource.as_ref().unwrap().attributes);
        assert_eq!(a["deployment.environment"], "prod,eu", "override: true");
        assert_eq!(a["service.namespace"], "shop");
        assert_eq!(a["host.name"], "from-env", "env is listed first");
        assert_eq!(a["os.type"], "linux", "from the system detector");
        // the client's other attributes stay; its host.name is replaced
        let own = strings(&sent.resource.as_ref().unwrap().attributes);
        assert!(own.contains_key("host.name"));
        for (k, v) in &own {
            if !["deployment.environment", "host.name"].contains(&k.as_str()) {
                assert_eq!(&a[k], v, "{k}");
            }
        }
    }
    let kept =
        ExportTraceServiceRequest::decode(body_at(&backend, "/keep/v1/traces").await).unwrap();
    for (rs, sent) in kept.resource_spans.iter().zip(&traces.resource_spans) {
        let a = strings(&rs.resource.as_ref().unwrap().attributes);
        let own = strings(&sent.resource.as_ref().unwrap().attributes);
        assert_eq!(a["deployment.environment"], "dev", "override: false");
        assert_eq!(a["host.name"], own["host.name"], "override: false");
        assert_eq!(a["service.namespace"], "shop");
        assert!(!a.contains_key("os.type"), "this one runs env only");
    }
    let got_logs =
        ExportLogsServiceRequest::decode(body_at(&backend, "/override/v1/logs").await).unwrap();
    for (got, sent) in got_logs.resource_logs.iter().zip(&logs.resource_logs) {
        assert_eq!(got.scope_logs, sent.scope_logs);
        let a = strings(&got.resource.as_ref().unwrap().attributes);
        assert_eq!(a["service.namespace"], "shop");
        assert_eq!(a["os.type"], "linux");
    }

    // nothing on these pipelines reads items: each request was forwarded as the client's bytes
    for signal in ["traces", "logs"] {
        assert_eq!(
            gw.metric(
                "otelgw_receiver_forwarded_requests_total",
                &[("transport", "http"), ("signal", signal)]
            ),
            1.0,
            "{signal}"
        );
    }
    // detected once per processor, though `resourcedetection` serves two pipelines
    let results = |detector: &str| {
        gw.metric(
            "otelcol_resourcedetection_detector_results",
            &[
                ("processor", "resourcedetection"),
                ("detector", detector),
                ("outcome", "success"),
            ],
        )
    };
    assert_eq!(results("env"), 1.0);
    assert_eq!(results("system"), 1.0);
    assert_eq!(
        gw.metric(
            "otelcol_resourcedetection_detector_results",
            &[
                ("processor", "resource_detection/keep"),
                ("detector", "env"),
                ("outcome", "success"),
            ],
        ),
        1.0
    );
    assert!(gw.logs().contains("resource detection done"));

    // a reload builds the processors again, and detects again
    gw.signal("HUP");
    wait_until(
        "detection after the reload",
        Duration::from_secs(15),
        || results("env") == 2.0 && results("system") == 2.0,
    );
}
