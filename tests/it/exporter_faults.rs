//! Fault fakes for push exporters: an in-process OTLP/HTTP server that answers with scripted
//! statuses. Retryable answers (429/503 with `Retry-After`) are retried after at least the hint
//! and the data then arrives; permanent answers (400) are not retried and are counted as
//! send-failed; a peer's `partial_success` is counted, not retried. The queue's `drop_newest`
//! policy refuses clients with 429 + `Retry-After` when the backend is stuck.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use otelgw::testdata;
use prost::Message;

/// One scripted answer: status, optional Retry-After, optional partial-success count.
#[derive(Clone, Copy)]
struct Answer(u16, Option<u64>, i64);

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    hits: Mutex<Vec<Instant>>,
    tenants: Mutex<Vec<String>>,
    /// When set, requests hang (a stuck backend).
    stall: std::sync::atomic::AtomicBool,
}

async fn fake_backend(script: Arc<Script>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let script = script.clone();
                        async move {
                            let tenant = req
                                .headers()
                                .get("x-scope-orgid")
                                .map(|v| v.to_str().unwrap().to_string());
                            script
                                .tenants
                                .lock()
                                .unwrap()
                                .push(tenant.unwrap_or_default());
                            let _ = req.into_body().collect().await;
                            script.hits.lock().unwrap().push(Instant::now());
                            while script.stall.load(std::sync::atomic::Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            let Answer(status, retry_after, rejected) = script
                                .answers
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or(Answer(200, None, 0));
                            let body = if status == 200 {
                                ExportTraceServiceResponse {
                                    partial_success: (rejected > 0).then(|| {
                                        ExportTracePartialSuccess {
                                            rejected_spans: rejected,
                                            error_message: "too old".into(),
                                        }
                                    }),
                                }
                                .encode_to_vec()
                            } else {
                                b"nope".to_vec()
                            };
                            let mut r = http::Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            r.headers_mut()
                                .insert("content-type", "application/x-protobuf".parse().unwrap());
                            if let Some(s) = retry_after {
                                r.headers_mut()
                                    .insert("retry-after", s.to_string().parse().unwrap());
                            }
                            Ok::<_, Infallible>(r)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    port
}

fn gateway(backend: u16, queue: &str) -> Gateway {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  otlphttp:\n    endpoint: http://127.0.0.1:{backend}\n    compression: none\n    headers:\n      X-Scope-OrgID: tenant-1\n    retry_on_failure:\n      initial_interval: 50ms\n      max_interval: 100ms\n      max_elapsed_time: 20s\n    sending_queue:\n{queue}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlphttp]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    Gateway::start(ports, dir, &config)
}

async fn post_spans(port: u16, seed: u64, n: usize) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(testdata::traces(seed, 1, n).encode_to_vec())
        .send()
        .await
        .unwrap()
}

async fn wait_metric(gw: &Gateway, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw.metric(name, labels) != want {
        assert!(
            Instant::now() < deadline,
            "{name} never reached {want} (now {})",
            gw.metric(name, labels)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_answers_are_retried_after_the_hint_and_permanent_ones_are_not() {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend([
        Answer(503, Some(1), 0),
        Answer(429, Some(1), 0),
        Answer(200, None, 0),
        Answer(400, None, 0),
        Answer(200, None, 3),
    ]);
    let port = fake_backend(script.clone()).await;
    let gw = gateway(port, "      queue_size: 10\n");

    assert_eq!(post_spans(gw.http_port, 1, 10).await.status().as_u16(), 200);
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        &[("exporter", "otlphttp")],
        10.0,
    )
    .await;
    let hits = script.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3, "two retries, then success");
    assert!(
        hits[1] - hits[0] >= Duration::from_millis(950),
        "Retry-After: 1 honoured: {:?}",
        hits[1] - hits[0]
    );
    assert!(
        hits[2] - hits[1] >= Duration::from_millis(950),
        "Retry-After: 1 honoured: {:?}",
        hits[2] - hits[1]
    );
    assert_eq!(
        gw.metric("otelgw_exporter_retries", &[("exporter", "otlphttp")]),
        2.0
    );
    let tenants = script.tenants.lock().unwrap().clone();
    assert!(
        tenants.len() == 3 && tenants.iter().all(|t| t == "tenant-1"),
        "configured headers are sent: {tenants:?}"
    );

    // 400 is permanent: one attempt, counted as failed
    assert_eq!(post_spans(gw.http_port, 2, 7).await.status().as_u16(), 200);
    wait_metric(
        &gw,
        "otelcol_exporter_send_failed_spans",
        &[("exporter", "otlphttp")],
        7.0,
    )
    .await;
    assert_eq!(script.hits.lock().unwrap().len(), 4);

    // partial success: 3 of 5 rejected by the peer are counted as failed, not retried
    assert_eq!(post_spans(gw.http_port, 3, 5).await.status().as_u16(), 200);
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        &[("exporter", "otlphttp")],
        12.0,
    )
    .await;
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_spans",
            &[("exporter", "otlphttp")]
        ),
        10.0
    );
    assert_eq!(script.hits.lock().unwrap().len(), 5);
    assert!(gw.logs().contains("peer rejected part of a batch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_with_drop_newest_refuses_clients_with_a_retry_hint() {
    let script = Arc::new(Script::default());
    script
        .stall
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let port = fake_backend(script.clone()).await;
    let gw = gateway(
        port,
        "      queue_size: 2\n      num_consumers: 1\n      block_on_overflow: false\n",
    );

    // one batch in flight at the stuck backend, two queued, then refusals
    let mut statuses = vec![];
    for seed in 0..6 {
        let r = post_spans(gw.http_port, seed, 4).await;
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        statuses.push((r.status().as_u16(), retry_after));
    }
    let accepted = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!((3..=4).contains(&accepted), "{statuses:?}");
    assert_eq!(accepted + refused.len(), 6, "{statuses:?}");
    assert!(
        refused.iter().all(|(_, ra)| ra.as_deref() == Some("1")),
        "{statuses:?}"
    );
    let refused_items = 4.0 * refused.len() as f64;
    assert_eq!(
        gw.metric(
            "otelcol_exporter_enqueue_failed_spans",
            &[("exporter", "otlphttp")]
        ),
        refused_items
    );
    assert_eq!(
        gw.metric("otelcol_receiver_refused_spans", &[("transport", "http")]),
        refused_items
    );
    assert_eq!(
        gw.metric(
            "otelcol_exporter_queue_capacity",
            &[("exporter", "otlphttp")]
        ),
        2.0
    );
    assert_eq!(
        gw.metric("otelcol_exporter_queue_size", &[("exporter", "otlphttp")]),
        2.0
    );

    // the backend recovers: everything that was accepted arrives
    script
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        &[("exporter", "otlphttp")],
        4.0 * accepted as f64,
    )
    .await;
    wait_metric(
        &gw,
        "otelcol_exporter_queue_size",
        &[("exporter", "otlphttp")],
        0.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_with_block_on_overflow_pushes_back_and_the_queue_stays_bounded() {
    let script = Arc::new(Script::default());
    script
        .stall
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let port = fake_backend(script.clone()).await;
    // Capacity in items: 12 spans; block_on_overflow is the default (true).
    let gw = gateway(
        port,
        "      queue_size: 12\n      sizer: items\n      num_consumers: 1\n      block_timeout: 300ms\n",
    );
    let exp = &[("exporter", "otlphttp")];
    // Concurrent clients: the first batch goes to the stuck backend, three more fill the
    // queue, the rest wait for room and are refused with a retry hint.
    let mut statuses = vec![];
    let clients: Vec<_> = (0..8u64)
        .map(|seed| {
            let http = gw.http_port;
            tokio::spawn(async move {
                let r = post_spans(http, seed, 4).await;
                let ra = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), ra)
            })
        })
        .collect();
    for c in clients {
        statuses.push(c.await.unwrap());
    }
    let accepted = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused = statuses.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(accepted + refused, 8, "{statuses:?}");
    assert!(
        refused >= 3,
        "backpressure reached the clients: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|(s, ra)| *s == 200 || ra.as_deref() == Some("1")),
        "{statuses:?}"
    );
    // Bounded: the queue holds at most its capacity in items, whatever the clients send.
    assert_eq!(gw.metric("otelcol_exporter_queue_capacity", exp), 12.0);
    assert!(gw.metric("otelcol_exporter_queue_size", exp) <= 12.0);
    assert_eq!(
        gw.metric("otelcol_exporter_enqueue_failed_spans", exp),
        4.0 * refused as f64
    );
    script
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        exp,
        4.0 * accepted as f64,
    )
    .await;
}
