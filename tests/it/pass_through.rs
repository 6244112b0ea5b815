//! Pass-through: when no component of a pipeline reads the contents (`memory_limiter`, `batch`,
//! OTLP exporters), the gateway forwards the protobuf bytes the client sent instead of decoding
//! and re-encoding them. What reaches the backend must be exactly those bytes — batched requests
//! are their concatenation — including fields newer than our proto definitions, which a decode
//! would drop. A pipeline whose processor edits items on the wire (`attributes`) writes only
//! what it changes; one whose processors edit only resources re-encodes just the resources. The backend is the
//! shared fake OTLP/HTTP backend (`common::Backend`), recording the bodies it receives.

use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otelgw::testdata;
use prost::Message;

/// A traces request followed by a field no OTLP version defines (number 1000, bytes): prost
/// skips it on decode and drops it on encode.
fn with_unknown_field(req: &ExportTraceServiceRequest, marker: &[u8]) -> Vec<u8> {
    let mut b = req.encode_to_vec();
    prost::encoding::bytes::encode(1000, &marker.to_vec(), &mut b);
    b
}

async fn post(port: u16, body: Vec<u8>) -> ExportTraceServiceResponse {
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    ExportTraceServiceResponse::decode(resp.bytes().await.unwrap().as_ref()).unwrap()
}

/// A gateway with the OTLP receiver, the admin listener, and `rest` (processors, exporters,
/// service.pipelines) in between.
fn gateway(rest: &str) -> Gateway {
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}{rest}{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    Gateway::start(ports, tempfile::tempdir().unwrap(), &config)
}

/// Waits (bounded) until what the backend received (path, body) satisfies `done`; returns it.
async fn wait_for(
    backend: &Backend,
    what: &'static str,
    done: impl Fn(&[(String, Bytes)]) -> bool,
) -> Vec<(String, Bytes)> {
    let received = || -> Vec<(String, Bytes)> {
        backend
            .requests()
            .into_iter()
            .map(|r| (r.path, r.body))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(&received()) {
        assert!(
            Instant::now() < deadline,
            "timed out after 15s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_bytes_are_the_clients_and_processors_still_decode() {
    let backend = Backend::start(Script::recording()).await;
    // two requests per batch: the size trigger fires on the second one, so each batch holds
    // exactly the two requests sent back to back
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("out.jsonl");
    let gw = gateway(&format!(
        r#"processors:
  memory_limiter: {{limit_mib: 512, spike_limit_mib: 64, check_interval: 100ms}}
  batch: {{send_batch_size: 10, timeout: 30s}}
  attributes/tag:
    actions: [{{key: edited, value: "yes", action: insert}}]
  resource/env:
    attributes: [{{key: deployment.environment, value: test, action: upsert}}]
exporters:
  otlphttp/raw:
    endpoint: http://127.0.0.1:{port}/raw
    compression: none
  otlphttp/edited:
    endpoint: http://127.0.0.1:{port}/edited
    compression: none
  otlphttp/resource:
    endpoint: http://127.0.0.1:{port}/resource
    compression: none
  file:
    path: {file}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/raw]
    traces/edited:
      receivers: [otlp]
      processors: [attributes/tag]
      exporters: [otlphttp/edited]
    traces/resource:
      receivers: [otlp]
      processors: [resource/env]
      exporters: [otlphttp/resource]
    traces/file:
      receivers: [otlp]
      exporters: [file]
"#,
        port = backend.port,
        file = file.display()
    ));

    let a = testdata::traces(1, 2, 3); // 6 spans
    let b = testdata::traces(2, 1, 5); // 5 spans
    let a_bytes = with_unknown_field(&a, b"from-the-future-a");
    let b_bytes = with_unknown_field(&b, b"from-the-future-b");
    assert!(post(gw.http_port, a_bytes.clone())
        .await
        .partial_success
        .is_none());
    // the second over gRPC: both transports forward bytes
    // gzip: tonic inflates, the bytes forwarded are the inflated message
    let mut raw = raw_grpc(gw.grpc_port)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    raw.ready().await.unwrap();
    raw.unary::<Bytes, ExportTraceServiceResponse, _>(
        tonic::Request::new(Bytes::from(b_bytes.clone())),
        tonic::codegen::http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        ),
        otelgw::grpc::codec::raw_request(),
    )
    .await
    .unwrap();

    let g = wait_for(&backend, "every pipeline delivered", |g| {
        let n = |prefix: &str| g.iter().filter(|(p, _)| p.starts_with(prefix)).count();
        n("/raw") == 1 && n("/edited") == 2 && n("/resource") == 2
    })
    .await;
    let raw_body = &g.iter().find(|(p, _)| p.starts_with("/raw")).unwrap().1;
    // the batch is the two requests' bytes, end to end, unknown fields and all
    let mut expected = a_bytes.clone();
    expected.extend_from_slice(&b_bytes);
    assert_eq!(raw_body.as_ref(), expected.as_slice());
    let merged = ExportTraceServiceRequest::decode(raw_body.as_ref()).unwrap();
    assert_eq!(
        merged.resource_spans,
        [a.resource_spans.clone(), b.resource_spans.clone()].concat()
    );

    // `attributes` edits the spans in their encoding (`wire::edit_items`): the attribute is
    // there, and so is the unknown field (a decode would have dropped it)
    for (_, body) in g.iter().filter(|(p, _)| p.starts_with("/edited")) {
        assert!(body
            .windows(b"from-the-future".len())
            .any(|w| w == b"from-the-future"));
        let req = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            let edited = s.attributes.iter().find(|kv| kv.key == "edited").unwrap();
            assert_eq!(
                edited.value.as_ref().unwrap().value,
                Some(Value::StringValue("yes".into()))
            );
        }
    }
    // an exporter that reads the contents (file) got the bytes and decoded them itself
    let file2 = file.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("file export", Duration::from_secs(15), || {
            count_items(&read_file_export(&file2), otelgw::data::Signal::Traces) == 11
        })
    })
    .await
    .unwrap();
    let exported: Vec<_> = read_file_export(&file);
    assert!(exported.contains(&otelgw::data::Telemetry::Traces(a.clone())));
    assert!(exported.contains(&otelgw::data::Telemetry::Traces(b.clone())));
    // a processor that edits only resources keeps the request encoded: its resource is
    // re-encoded, every other byte (spans, the unknown field) is the client's
    for (sent, req) in [(&a_bytes, &a), (&b_bytes, &b)] {
        let body = g
            .iter()
            .filter(|(p, _)| p.starts_with("/resource"))
            .map(|(_, b)| b)
            .find(|b| {
                let d = ExportTraceServiceRequest::decode(b.as_ref()).unwrap();
                d.resource_spans[0].scope_spans == req.resource_spans[0].scope_spans
            })
            .expect("each request reaches the resource pipeline");
        assert!(
            body.ends_with(&sent[sent.len() - 20..]),
            "the unknown field stays"
        );
        let d = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        let mut want = req.clone();
        for rs in &mut want.resource_spans {
            let r = rs.resource.get_or_insert_with(Default::default);
            r.attributes.retain(|kv| kv.key != "deployment.environment");
            r.attributes
                .push(testdata::kv("deployment.environment", testdata::s("test")));
        }
        assert_eq!(d, want);
    }
    // counted once the backend has answered
    wait_until("sent counted", Duration::from_secs(5), || {
        gw.metric(
            "otelcol_exporter_sent_spans",
            &[("exporter", "otlphttp/raw")],
        ) == 11.0
    });
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "http")]),
        6.0
    );
    for transport in ["http", "grpc"] {
        assert_eq!(
            gw.metric(
                "otelgw_receiver_forwarded_requests_total",
                &[("transport", transport), ("signal", "traces")]
            ),
            1.0,
            "{transport}"
        );
    }
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "grpc")]),
        5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_bad_ids_is_decoded_and_only_the_bad_spans_go() {
    let backend = Backend::start(Script::recording()).await;
    let gw = gateway(&format!(
        r#"exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{port}
    compression: none
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"#,
        port = backend.port
    ));
    let mut req = testdata::traces(3, 1, 4);
    req.resource_spans[0].scope_spans[0].spans[0].parent_span_id = vec![9; 3];
    let good = req.resource_spans[0].scope_spans[0].spans[1..].to_vec();
    let resp = post(gw.http_port, req.encode_to_vec()).await;
    assert_eq!(resp.partial_success.unwrap().rejected_spans, 1);
    let body = wait_for(&backend, "delivered", |g| !g.is_empty()).await[0]
        .1
        .clone();
    let sent = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
    assert_eq!(sent.resource_spans[0].scope_spans[0].spans, good);
    // decoded, so only the bad span went: not counted as forwarded
    assert_eq!(
        gw.metric(
            "otelgw_receiver_forwarded_requests_total",
            &[("transport", "http")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_max_size_sends_whole_requests_and_cuts_only_a_request_above_it() {
    let backend = Backend::start(Script::recording()).await;
    let gw = gateway(&format!(
        r#"processors:
  batch: {{send_batch_size: 10, send_batch_max_size: 12, timeout: 30s}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{port}
    compression: none
    # one consumer: batches reach the backend in the order the batch processor sent them
    sending_queue: {{num_consumers: 1}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}
"#,
        port = backend.port
    ));
    let a = testdata::traces(1, 1, 6);
    let b = testdata::traces(2, 1, 7);
    let c = testdata::traces(3, 2, 15); // 30 spans: above the limit on its own
    let d = testdata::traces(4, 1, 10);
    // a + b = 13 ≥ 10 flushes; 13 > 12, so a and b leave as they came
    post(gw.http_port, a.encode_to_vec()).await;
    post(gw.http_port, b.encode_to_vec()).await;
    // c alone: cut into 12 + 12 + 6; then d (10) on its own
    post(gw.http_port, c.encode_to_vec()).await;
    post(gw.http_port, d.encode_to_vec()).await;
    let bodies: Vec<Bytes> = wait_for(&backend, "six batches", |g| g.len() == 6)
        .await
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(bodies[0].as_ref(), a.encode_to_vec().as_slice());
    assert_eq!(bodies[1].as_ref(), b.encode_to_vec().as_slice());
    let pieces: Vec<ExportTraceServiceRequest> = bodies[2..5]
        .iter()
        .map(|b| ExportTraceServiceRequest::decode(b.as_ref()).unwrap())
        .collect();
    let count = |r: &ExportTraceServiceRequest| -> usize {
        r.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    };
    assert_eq!(pieces.iter().map(count).collect::<Vec<_>>(), [12, 12, 6]);
    let spans = |r: &ExportTraceServiceRequest| -> Vec<_> {
        r.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    };
    assert_eq!(pieces.iter().flat_map(spans).collect::<Vec<_>>(), spans(&c));
    assert_eq!(bodies[5].as_ref(), d.encode_to_vec().as_slice());
}
