//! Fault fakes for push exporters: an in-process OTLP/HTTP server that answers with scripted
//! statuses. Retryable answers (429/503 with `Retry-After`) are retried after at least the hint
//! and the data then arrives; permanent answers (400) are not retried and are counted as
//! send-failed; a peer's `partial_success` is counted, not retried. The queue's `drop_newest`
//! policy refuses clients with 429 + `Retry-After` when the backend is stuck.

use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use otelgw::testdata;
use prost::Message;

/// One scripted answer: status, optional Retry-After, partial-success count (for a 200).
fn answer(status: u16, retry_after: Option<u64>, rejected: i64) -> Reply {
    let body = if status == 200 {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec()
    } else {
        b"nope".to_vec()
    };
    let reply = Reply::status(status).body(Bytes::from(body)).protobuf();
    match retry_after {
        Some(s) => reply.retry_after(s),
        None => reply,
    }
}

/// A backend that holds every request until released (stuck); bounded, far past any test.
fn stuck() -> Script {
    Script::always(answer(200, None, 0)).slow(Duration::from_secs(60))
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
    let backend = Backend::start(Script::flaky(
        [
            answer(503, Some(1), 0),
            answer(429, Some(1), 0),
            answer(200, None, 0),
            answer(400, None, 0),
            answer(200, None, 3),
        ],
        answer(200, None, 0),
    ))
    .await;
    let gw = gateway(backend.port, "      queue_size: 10\n");

    assert_eq!(post_spans(gw.http_port, 1, 10).await.status().as_u16(), 200);
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        &[("exporter", "otlphttp")],
        10.0,
    )
    .await;
    let hits: Vec<Instant> = backend.requests().iter().map(|r| r.at).collect();
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
        gw.metric("otelgw_exporter_retries_total", &[("exporter", "otlphttp")]),
        2.0
    );
    let tenants: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.header("x-scope-orgid").unwrap_or_default())
        .collect();
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
    assert_eq!(backend.count(), 4);

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
    assert_eq!(backend.count(), 5);
    assert!(gw.logs().contains("peer rejected part of a batch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_with_drop_newest_refuses_clients_with_a_retry_hint() {
    let backend = Backend::start(stuck()).await;
    let gw = gateway(
        backend.port,
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
    backend.release();
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
    let backend = Backend::start(stuck()).await;
    // Capacity in items: 12 spans; block_on_overflow is the default (true).
    let gw = gateway(
        backend.port,
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
    backend.release();
    wait_metric(
        &gw,
        "otelcol_exporter_sent_spans",
        exp,
        4.0 * accepted as f64,
    )
    .await;
}
