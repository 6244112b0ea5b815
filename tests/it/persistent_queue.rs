//! The persistent sending queue against a real receiving peer (a second otelgw writing what it
//! receives to a file): spans are identified one by one (unique span ids) and counted at the
//! peer. Covers a backend that is down and comes back (across a clean gateway restart), a
//! `kill -9` during a flood with `fsync: always`, flipped bytes in a segment, a full disk, and a
//! SIGHUP reload (the old graph closes the queue, the new one reopens it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelgw::data::Telemetry;
use otelgw::testdata;
use prost::Message;

/// A request of `n` spans whose span ids encode (`seed`, index), so every span is unique.
fn spans(seed: u64, n: usize) -> ExportTraceServiceRequest {
    let mut req = testdata::traces(seed, 1, n);
    for (i, s) in req.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        s.span_id = ((seed << 16) | i as u64).to_be_bytes().to_vec();
    }
    req
}

fn ids(req: &ExportTraceServiceRequest) -> Vec<Vec<u8>> {
    req.resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .map(|s| s.span_id.clone())
        .collect()
}

/// Every span id the peer wrote, with how often it arrived.
fn received(out: &Path) -> BTreeMap<Vec<u8>, u32> {
    let mut m = BTreeMap::new();
    for t in read_file_export(out) {
        if let Telemetry::Traces(r) = t {
            for id in ids(&r) {
                *m.entry(id).or_insert(0) += 1;
            }
        }
    }
    m
}

async fn post(client: &reqwest::Client, port: u16, req: &ExportTraceServiceRequest) -> Option<u16> {
    client
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The gateway under test: OTLP in, `otlp` (gRPC) out to `peer_grpc` through a persistent queue.
fn gateway(peer_grpc: u16, storage: &str) -> Gateway {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("queue");
    let config = format!(
        r#"receivers:
{recv}exporters:
  otlp/peer:
    endpoint: 127.0.0.1:{peer_grpc}
    tls: {{insecure: true}}
    compression: none
    timeout: 2s
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0s}}
    sending_queue: {{storage: file_storage/q, num_consumers: 4, queue_size: 100000}}
extensions:
  file_storage/q:
    directory: {qdir}
{storage}service:
  extensions: [file_storage/q]
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp/peer]}}
{tel}"#,
        recv = ports.otlp_receiver(),
        qdir = qdir.display(),
        tel = ports.telemetry()
    );
    Gateway::start(ports, dir, &config)
}

const EXP: &[(&str, &str)] = &[("exporter", "otlp/peer")];

fn segments(gw: &Gateway) -> Vec<PathBuf> {
    let d = gw.path("queue").join("exporter_otlp%2Fpeer");
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "wal"));
    v.sort();
    v
}

/// A peer that is started, then stopped (its ports stay reserved for its restart).
fn stopped_peer() -> (Gateway, PathBuf) {
    let (mut peer, out) = file_sink();
    peer.stop();
    (peer, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_then_up_every_span_arrives_once_even_across_a_gateway_restart() {
    let (mut peer, out) = stopped_peer();
    let mut gw = gateway(
        peer.grpc_port,
        "    fsync: batch\n    fsync_interval: 100ms\n",
    );
    let client = reqwest::Client::new();
    let mut sent = BTreeSet::new();
    for seed in 1..=20 {
        let req = spans(seed, 5);
        assert_eq!(post(&client, gw.http_port, &req).await, Some(200));
        sent.extend(ids(&req));
    }
    wait_until(
        "retries against the stopped peer",
        Duration::from_secs(10),
        || gw.metric("otelgw_exporter_retries_total", EXP) >= 4.0,
    );
    assert_eq!(gw.metric("otelcol_exporter_queue_size", EXP), 20.0);
    assert!(gw.metric("otelgw_exporter_persistent_queue_disk_bytes", EXP) > 0.0);

    // A clean stop with the peer still down keeps everything on disk.
    assert!(gw.stop().success());
    gw.spawn();
    assert_eq!(
        gw.metric(
            "otelgw_exporter_persistent_queue_recovered_records_total",
            EXP
        ),
        20.0
    );
    for seed in 21..=25 {
        let req = spans(seed, 5);
        assert_eq!(post(&client, gw.http_port, &req).await, Some(200));
        sent.extend(ids(&req));
    }

    peer.spawn();
    wait_until("all 125 spans at the peer", Duration::from_secs(30), || {
        received(&out).len() == sent.len()
    });
    wait_until("queue empty", Duration::from_secs(10), || {
        gw.metric("otelcol_exporter_queue_size", EXP) == 0.0
    });
    assert!(gw.stop().success());
    assert!(peer.stop().success());
    let got = received(&out);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), sent);
    assert!(
        got.values().all(|&n| n == 1),
        "nothing sent twice on a clean stop: {:?}",
        got.values().filter(|&&n| n > 1).count()
    );
    assert!(segments(&gw).is_empty(), "delivered segments are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_flood_loses_nothing_that_was_acknowledged() {
    let (mut peer, out) = stopped_peer();
    let mut gw = gateway(peer.grpc_port, "    fsync: always\n");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let port = gw.http_port;
    let flood: Vec<_> = (0..4u64)
        .map(|t| {
            let acked = acked.clone();
            let killed = killed.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for k in 0..20_000u64 {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let req = spans(t * 100_000 + k + 1, 3);
                    match post(&client, port, &req).await {
                        Some(200) => acked.lock().unwrap().extend(ids(&req)),
                        Some(_) => {}
                        None => break,
                    }
                }
            })
        })
        .collect();
    wait_until("600 acknowledged spans", Duration::from_secs(60), || {
        acked.lock().unwrap().len() >= 600
    });
    // Requests are still in flight: the kill lands in the middle of appends and syncs.
    gw.signal("KILL");
    killed.store(true, Ordering::SeqCst);
    gw.wait_exit(Duration::from_secs(10));
    for f in flood {
        f.await.unwrap();
    }
    let acked: BTreeSet<Vec<u8>> = acked.lock().unwrap().iter().cloned().collect();

    gw.spawn();
    let recovered = gw.metric(
        "otelgw_exporter_persistent_queue_recovered_records_total",
        EXP,
    );
    assert!(
        recovered * 3.0 >= acked.len() as f64,
        "every acknowledged request is on disk: {recovered} records for {} spans",
        acked.len()
    );
    peer.spawn();
    wait_until(
        "every acknowledged span at the peer",
        Duration::from_secs(60),
        || {
            let got = received(&out);
            acked.iter().all(|id| got.contains_key(id))
        },
    );
    wait_until("queue empty", Duration::from_secs(20), || {
        gw.metric("otelcol_exporter_queue_size", EXP) == 0.0
    });
    // No corruption from a kill: a torn tail is not a corrupt record.
    assert_eq!(
        gw.metric(
            "otelgw_exporter_persistent_queue_corrupt_records_total",
            EXP
        ),
        0.0
    );
    assert!(gw.stop().success());
    let got = received(&out);
    let duplicates: u32 = got.values().map(|n| n - 1).sum();
    let unacked_extra = got.keys().filter(|id| !acked.contains(*id)).count();
    eprintln!(
        "kill -9: {} spans acknowledged, {} received, {} duplicates, {} received without an acknowledgement (in flight at the kill)",
        acked.len(),
        got.len(),
        duplicates,
        unacked_extra
    );
    assert!(acked.iter().all(|id| got.contains_key(id)));
    drop(peer);
}

/// Offsets of the records in a segment (8-byte header, then `[len][crc][payload]`).
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 8;
    while off + 8 <= data.len() {
        offs.push(off);
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        off += 8 + len;
    }
    offs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_skip_exactly_the_damaged_records_and_the_rest_arrives() {
    let (mut peer, out) = stopped_peer();
    let mut gw = gateway(peer.grpc_port, "    fsync: always\n");
    let client = reqwest::Client::new();
    let mut by_request = Vec::new();
    for seed in 1..=10 {
        let req = spans(seed, 4);
        assert_eq!(post(&client, gw.http_port, &req).await, Some(200));
        by_request.push(ids(&req));
    }
    assert!(gw.stop().success());
    let segs = segments(&gw);
    assert_eq!(segs.len(), 1, "{segs:?}");
    let mut data = std::fs::read(&segs[0]).unwrap();
    let offs = record_offsets(&data);
    assert_eq!(offs.len(), 10);
    // Requests arrive one by one, so record k holds request k. Damage records 3 and 7.
    for k in [3, 7] {
        data[offs[k] + 8 + 20] ^= 0x5a;
    }
    std::fs::write(&segs[0], &data).unwrap();

    gw.spawn();
    assert_eq!(
        gw.metric(
            "otelgw_exporter_persistent_queue_corrupt_records_total",
            EXP
        ),
        2.0
    );
    assert_eq!(
        gw.metric(
            "otelgw_exporter_persistent_queue_recovered_records_total",
            EXP
        ),
        8.0
    );
    assert!(gw.logs().contains("fails its checksum"));
    peer.spawn();
    let want: BTreeSet<Vec<u8>> = by_request
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 3 && *k != 7)
        .flat_map(|(_, ids)| ids.iter().cloned())
        .collect();
    wait_until("the 8 undamaged requests", Duration::from_secs(30), || {
        received(&out).len() == want.len()
    });
    assert!(gw.stop().success());
    let got = received(&out);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(segments(&gw).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_clients_and_drops_nothing_already_queued() {
    let (mut peer, out) = stopped_peer();
    let mut gw = gateway(
        peer.grpc_port,
        "    fsync: always\n    max_size: 16KiB\n    segment_size: 4KiB\n",
    );
    let client = reqwest::Client::new();
    let mut accepted = BTreeSet::new();
    let mut refused = 0;
    for seed in 1..=60 {
        let req = spans(seed, 5);
        match post(&client, gw.http_port, &req).await {
            Some(200) => accepted.extend(ids(&req)),
            Some(429) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refused > 0 && !accepted.is_empty(), "{refused} refused");
    assert_eq!(
        gw.metric("otelcol_exporter_enqueue_failed_spans", EXP),
        5.0 * refused as f64
    );
    assert!(gw.metric("otelgw_exporter_persistent_queue_disk_bytes", EXP) <= 16384.0);
    assert!(gw.logs().contains("persistent queue refused a batch"));

    peer.spawn();
    wait_until(
        "every accepted span at the peer",
        Duration::from_secs(30),
        || received(&out).len() == accepted.len(),
    );
    // Once delivered, the space comes back.
    wait_until("queue empty", Duration::from_secs(10), || {
        gw.metric("otelcol_exporter_queue_size", EXP) == 0.0
    });
    let req = spans(1000, 5);
    assert_eq!(post(&client, gw.http_port, &req).await, Some(200));
    accepted.extend(ids(&req));
    wait_until("the late request", Duration::from_secs(30), || {
        received(&out).len() == accepted.len()
    });
    assert!(gw.stop().success());
    let got = received(&out);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_closes_and_reopens_the_queue_without_losing_or_repeating() {
    let (mut peer, out) = stopped_peer();
    let mut gw = gateway(peer.grpc_port, "    fsync: batch\n");
    let client = reqwest::Client::new();
    let mut sent = BTreeSet::new();
    for seed in 1..=10 {
        let req = spans(seed, 3);
        assert_eq!(post(&client, gw.http_port, &req).await, Some(200));
        sent.extend(ids(&req));
    }
    gw.signal("HUP");
    wait_until("the reload", Duration::from_secs(15), || {
        gw.metric("otelgw_config_reloads_total", &[("result", "applied")]) == 1.0
    });
    // The new graph found the old graph's records on disk.
    assert_eq!(
        gw.metric(
            "otelgw_exporter_persistent_queue_recovered_records_total",
            EXP
        ),
        10.0
    );
    peer.spawn();
    wait_until("all 30 spans at the peer", Duration::from_secs(30), || {
        received(&out).len() == sent.len()
    });
    assert!(gw.stop().success());
    assert!(peer.stop().success());
    let got = received(&out);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), sent);
    assert!(got.values().all(|&n| n == 1));
}
