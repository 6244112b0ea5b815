//! The batch processor in a running gateway: size and timeout triggers, splitting above
//! `send_batch_max_size`, per-tenant batches with `metadata_keys` (and the cardinality limit),
//! the Collector's batch self-metrics, and a flush of pending batches at SIGTERM.

use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otelgw::data::{Signal, Telemetry};
use otelgw::testdata;
use prost::Message;

fn gateway(batch: &str) -> (Gateway, std::path::PathBuf) {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{}\n        include_metadata: true\nprocessors:\n  batch:\n{batch}\n  noop:\n  noop/after:\nexporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [noop, batch, noop/after], exporters: [file]}}\n{}",
        ports.http,
        out.display(),
        ports.telemetry()
    );
    (Gateway::start(ports, dir, &config), out)
}

async fn post(port: u16, seed: u64, n: usize, tenant: Option<&str>) -> u16 {
    let mut req = testdata::traces(seed, 1, n);
    if let Some(t) = tenant {
        req.resource_spans[0].resource.as_mut().unwrap().attributes[0] =
            testdata::kv("service.name", testdata::s(t));
    }
    let mut r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec());
    if let Some(t) = tenant {
        r = r.header("x-tenant", t);
    }
    r.send().await.unwrap().status().as_u16()
}

fn batch_sizes(out: &std::path::Path) -> Vec<u64> {
    read_file_export(out)
        .iter()
        .map(|t| t.item_count())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_trigger_split_and_timeout_trigger() {
    let (gw, out) =
        gateway("    send_batch_size: 100\n    send_batch_max_size: 150\n    timeout: 500ms");
    // 3 × 70 = 210 spans: the batch reaches 140 ≥ 100 → sent (140 ≤ 150); then 70 wait for the
    // timeout. One request of 400 → split into 150, 150, 100 ... after merging with what waits.
    for seed in 0..3 {
        assert_eq!(post(gw.http_port, seed, 70, None).await, 200);
    }
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("timeout flush", Duration::from_secs(10), || {
            batch_sizes(&o).iter().sum::<u64>() == 210
        })
    })
    .await
    .unwrap();
    assert_eq!(batch_sizes(&out), vec![140, 70]);
    assert_eq!(post(gw.http_port, 9, 400, None).await, 200);
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("split batches", Duration::from_secs(10), || {
            batch_sizes(&o).iter().sum::<u64>() == 610
        })
    })
    .await
    .unwrap();
    assert_eq!(batch_sizes(&out), vec![140, 70, 150, 150, 100]);
    let labels = [("processor", "batch")];
    assert_eq!(
        gw.metric("otelcol_processor_batch_batch_size_trigger_send", &labels),
        2.0
    );
    assert_eq!(
        gw.metric("otelcol_processor_batch_timeout_trigger_send", &labels),
        1.0
    );
    assert_eq!(
        gw.metric("otelcol_processor_batch_batch_send_size_count", &labels),
        5.0
    );
    assert_eq!(
        gw.metric("otelcol_processor_batch_batch_send_size_sum", &labels),
        610.0
    );
    // every span exactly once
    let mut ids: Vec<Vec<u8>> = read_file_export(&out)
        .iter()
        .flat_map(|t| match t {
            Telemetry::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| {
                    rs.scope_spans
                        .iter()
                        .flat_map(|ss| ss.spans.iter().map(|s| s.span_id.clone()))
                })
                .collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 610);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_keys_batch_tenants_apart_and_cap_their_number() {
    let (gw, out) = gateway("    send_batch_size: 1000\n    timeout: 300ms\n    metadata_keys: [x-tenant]\n    metadata_cardinality_limit: 2");
    for (seed, tenant) in [(1, "a"), (2, "b"), (3, "a"), (4, "b")] {
        assert_eq!(post(gw.http_port, seed, 10, Some(tenant)).await, 200);
    }
    assert_eq!(
        post(gw.http_port, 5, 10, Some("c")).await,
        400,
        "a third tenant is past the limit"
    );
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("two tenant batches", Duration::from_secs(10), || {
            batch_sizes(&o).iter().sum::<u64>() == 40
        })
    })
    .await
    .unwrap();
    let data = read_file_export(&out);
    assert_eq!(data.len(), 2, "one batch per tenant");
    for t in &data {
        let Telemetry::Traces(r) = t else { panic!() };
        let services: std::collections::BTreeSet<String> = r
            .resource_spans
            .iter()
            .map(|rs| {
                match &rs.resource.as_ref().unwrap().attributes[0]
                    .value
                    .as_ref()
                    .unwrap()
                    .value
                {
                    Some(Value::StringValue(s)) => s.clone(),
                    _ => String::new(),
                }
            })
            .collect();
        assert_eq!(
            services.len(),
            1,
            "a batch never mixes tenants: {services:?}"
        );
        assert_eq!(t.item_count(), 20);
    }
    assert_eq!(
        gw.metric(
            "otelcol_processor_batch_metadata_cardinality",
            &[("processor", "batch")]
        ),
        2.0
    );
}

#[test]
fn sigterm_flushes_pending_batches() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut gw, out) = gateway("    send_batch_size: 1000\n    timeout: 1h");
    assert_eq!(rt.block_on(post(gw.http_port, 1, 25, None)), 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count_items(&read_file_export(&out), Signal::Traces),
        0,
        "still pending"
    );
    assert!(gw.stop().success());
    assert_eq!(count_items(&read_file_export(&out), Signal::Traces), 25);
}
