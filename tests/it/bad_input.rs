//! Bad input matrix: every malformed request gets the right status and a `google.rpc.Status`
//! body in the request's encoding, the process keeps serving, and counters show the refusals.
//! Also: `partial_success` for invalid items, over HTTP and gRPC.

use std::io::Write;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otelgw::grpc::status::RpcStatus;
use otelgw::testdata;
use prost::Message;

/// A gateway whose trace pipeline either decodes every request (the `debug` exporter reads
/// the contents) or forwards the client's bytes (`otlp` to a port nobody listens on: only
/// `wire::scan` checks them). Bad input must be refused the same way on both paths.
fn gateway(pass_through: bool) -> Gateway {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let exporter = if pass_through {
        format!(
            "otlp:\n    endpoint: 127.0.0.1:{}\n    tls: {{insecure: true}}\n    retry_on_failure: {{enabled: false}}",
            free_port()
        )
    } else {
        "debug: {}".to_string()
    };
    let name = if pass_through { "otlp" } else { "debug" };
    let config = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{}\n        max_recv_msg_size_mib: 1\n      http:\n        endpoint: 127.0.0.1:{}\n        max_request_body_size: 1MiB\nexporters:\n  {exporter}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [{name}]}}\n{}",
        ports.grpc,
        ports.http,
        ports.telemetry()
    );
    Gateway::start(ports, dir, &config)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    content_type: Option<&'static str>,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_status_and_the_gateway_keeps_serving() {
    let gw = gateway(false);
    assert!(!gw.logs().contains("forwards protobuf as received"));
    bad_requests(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_alike_when_the_pipeline_forwards_bytes() {
    let gw = gateway(true);
    assert!(gw.logs().contains("forwards protobuf as received"));
    bad_requests(gw).await;
}

async fn bad_requests(gw: Gateway) {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let valid = testdata::traces(1, 1, 3).encode_to_vec();
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let big_gz = gzip(&valid);
    // a span whose name is not UTF-8 (field 5 = 0xff 0xfe), nested by hand in its messages
    let bad_utf8 = vec![0x0a, 8, 0x12, 6, 0x12, 4, 0x2a, 2, 0xff, 0xfe];
    use reqwest::Method;
    let pb = Some("application/x-protobuf");
    let json = Some("application/json");
    let cases = vec![
        Case {
            name: "corrupt protobuf",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: None,
            body: vec![0xff, 0xff, 0xff, 0x01],
            status: 400,
        },
        Case {
            name: "bad json",
            method: Method::POST,
            path: "/v1/traces",
            content_type: json,
            encoding: None,
            body: b"{\"resourceSpans\": [".to_vec(),
            status: 400,
        },
        Case {
            name: "wrong content type",
            method: Method::POST,
            path: "/v1/traces",
            content_type: Some("text/plain"),
            encoding: None,
            body: valid.clone(),
            status: 415,
        },
        Case {
            name: "missing content type",
            method: Method::POST,
            path: "/v1/traces",
            content_type: None,
            encoding: None,
            body: valid.clone(),
            status: 415,
        },
        Case {
            name: "wrong method",
            method: Method::GET,
            path: "/v1/traces",
            content_type: pb,
            encoding: None,
            body: vec![],
            status: 405,
        },
        Case {
            name: "unknown path",
            method: Method::POST,
            path: "/v1/spans",
            content_type: pb,
            encoding: None,
            body: valid.clone(),
            status: 404,
        },
        Case {
            name: "signal without pipeline",
            method: Method::POST,
            path: "/v1/logs",
            content_type: pb,
            encoding: None,
            body: vec![],
            status: 404,
        },
        Case {
            name: "oversized body",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: None,
            body: vec![0u8; 2 << 20],
            status: 413,
        },
        Case {
            name: "gzip bomb",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: Some("gzip"),
            body: bomb,
            status: 413,
        },
        Case {
            name: "truncated gzip",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: Some("gzip"),
            body: big_gz[..big_gz.len() / 2].to_vec(),
            status: 400,
        },
        Case {
            name: "unsupported encoding",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: Some("br"),
            body: valid.clone(),
            status: 415,
        },
        Case {
            name: "empty json body",
            method: Method::POST,
            path: "/v1/traces",
            content_type: json,
            encoding: None,
            body: vec![],
            status: 400,
        },
        Case {
            name: "invalid utf-8 string",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: None,
            body: bad_utf8,
            status: 400,
        },
        // An empty protobuf body is a valid, empty ExportTraceServiceRequest.
        Case {
            name: "empty protobuf body",
            method: Method::POST,
            path: "/v1/traces",
            content_type: pb,
            encoding: None,
            body: vec![],
            status: 200,
        },
    ];
    let mut sink_failures = 0;
    for c in &cases {
        let mut req = client
            .request(c.method.clone(), format!("{base}{}", c.path))
            .body(c.body.clone());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(e) = c.encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(resp.status().as_u16(), c.status, "{}", c.name);
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if c.method == Method::GET {
            assert_eq!(resp.headers().get("allow").unwrap(), "POST");
        }
        let body = resp.bytes().await.unwrap();
        if c.status != 200 {
            // error bodies are google.rpc.Status in the request's encoding
            let message = if ct == "application/x-protobuf" {
                RpcStatus::decode(body.as_ref())
                    .unwrap_or_else(|e| panic!("{}: {e}", c.name))
                    .message
            } else {
                let v: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
                assert!(v["code"].as_i64().is_some(), "{}", c.name);
                v["message"].as_str().unwrap().to_string()
            };
            assert!(!message.is_empty(), "{}", c.name);
            if c.path == "/v1/traces" {
                sink_failures += 1;
            }
        }
        // still serving: a valid request right after each bad one
        let ok = client
            .post(format!("{base}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(valid.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200, "after {}", c.name);
    }
    assert_eq!(
        gw.metric(
            "otelgw_receiver_requests_total",
            &[("transport", "http"), ("outcome", "failed")]
        ),
        sink_failures as f64
    );
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "http")]),
        3.0 * cases.len() as f64
    );

    // gRPC: a message above max_recv_msg_size_mib is refused, the server keeps serving
    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    let huge = testdata::traces(2, 1, 5000);
    assert!(huge.encoded_len() > 1 << 20);
    let err = grpc.export(huge).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    // a gzip bomb over gRPC stops at the cap too
    let mut gz = TraceServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let mut bombish = testdata::traces(3, 1, 1);
    bombish.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(8 << 20);
    assert!(gz.export(bombish).await.is_err());
    // bytes that are not protobuf: INVALID_ARGUMENT (tonic would say INTERNAL, a server fault)
    let mut raw = raw_grpc(gw.grpc_port).await;
    raw.ready().await.unwrap();
    let err = raw
        .unary::<bytes::Bytes, ExportTraceServiceResponse, _>(
            tonic::Request::new(bytes::Bytes::from_static(
                b"\x0a\xff\xff\xff\x0fnot protobuf",
            )),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            otelgw::grpc::codec::raw_request(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(grpc.export(testdata::traces(4, 1, 2)).await.is_ok());
    assert!(gw.logs().contains("otlp http receiver listening"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_items_are_reported_through_partial_success() {
    invalid_items(gateway(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_items_are_reported_alike_when_the_pipeline_forwards_bytes() {
    invalid_items(gateway(true)).await;
}

async fn invalid_items(gw: Gateway) {
    let mut req = testdata::traces(5, 1, 4);
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    req.resource_spans[0].scope_spans[0].spans[2].span_id = vec![0; 8];

    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    let resp = grpc.export(req.clone()).await.unwrap().into_inner();
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 2);
    assert!(
        ps.error_message.contains("trace_id"),
        "{}",
        ps.error_message
    );

    let http = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(http.status().as_u16(), 200);
    let body = ExportTraceServiceResponse::decode(http.bytes().await.unwrap().as_ref()).unwrap();
    assert_eq!(body.partial_success.unwrap().rejected_spans, 2);

    let json = serde_json::to_vec(&req).unwrap();
    let http = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&http.bytes().await.unwrap()).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], serde_json::json!("2"));

    assert_eq!(
        gw.metric("otelcol_receiver_refused_spans", &[("transport", "grpc")]),
        2.0
    );
    assert_eq!(
        gw.metric("otelcol_receiver_refused_spans", &[("transport", "http")]),
        4.0
    );
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans", &[("transport", "http")]),
        4.0
    );
}
