//! The memory limiter's promise, end to end: with `limit_mib: 64`, an exporter whose peer stops
//! reading (the peer, a second otelgw, is SIGSTOPped), and clients flooding all three signals
//! for a bounded time, otelgw's RSS stays under the limit plus a small margin, health checks keep
//! answering, clients get refusals (429 / RESOURCE_EXHAUSTED with a retry hint) rather than
//! timeouts, and once the peer resumes everything that was accepted is delivered (counted by ids).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otelgw::data::Telemetry;
use otelgw::testdata;
use prost::Message;

/// The margin over `limit_mib` RSS may reach (documented in ARCHITECTURE.md): the gate refuses
/// above the soft limit (limit − spike), so the margin only has to cover requests already being
/// read when the gate closed, and allocator slack.
const MARGIN: f64 = 1.10;

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

#[derive(Default)]
struct Tally {
    span_ids: Mutex<HashSet<Vec<u8>>>,
    log_ids: Mutex<HashSet<Vec<u8>>>,
    metric_points: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    timeouts: AtomicU64,
    other: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_under_the_limit_with_a_stalled_exporter_and_nothing_accepted_is_lost() {
    let (b, out) = file_sink();
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"receivers:
{recv}processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 64
    spike_limit_mib: 16
exporters:
  otlp/b:
    endpoint: http://127.0.0.1:{bg}
    compression: none
    timeout: 2s
    retry_on_failure: {{initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 0}}
    sending_queue: {{queue_size: 100000, num_consumers: 4, block_timeout: 2s}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp/b]}}
    metrics: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp/b]}}
    logs: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp/b]}}
{tel}"#,
        recv = ports.otlp_receiver(),
        bg = b.grpc_port,
        tel = ports.telemetry()
    );
    let a = Gateway::start(ports, dir, &config);
    let idle_rss = rss_of(a.pid());
    b.signal("STOP");

    // watch RSS and health while the flood runs
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let health_failures = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak, hf) = (stop.clone(), peak.clone(), health_failures.clone());
        let (pid, admin) = (a.pid(), format!("127.0.0.1:{}", a.admin_port));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                n += 1;
                if n % 5 == 0 && !matches!(http_get(&admin, "/healthz"), Some((200, _))) {
                    hf.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut tasks = vec![];
    for w in 0..3u64 {
        // traces over gRPC
        let (t, ep) = (tally.clone(), format!("http://127.0.0.1:{}", a.grpc_port));
        tasks.push(tokio::spawn(async move {
            let mut c = TraceServiceClient::connect(ep).await.unwrap();
            let mut seed = w * 1_000_000;
            while Instant::now() < deadline {
                seed += 1;
                let req = testdata::traces(seed, 1, 200);
                let mut r = tonic::Request::new(req.clone());
                r.set_timeout(Duration::from_secs(10));
                match c.export(r).await {
                    Ok(_) => {
                        t.accepted.fetch_add(1, Ordering::Relaxed);
                        let mut ids = t.span_ids.lock().unwrap();
                        for s in &req.resource_spans[0].scope_spans[0].spans {
                            ids.insert(s.span_id.clone());
                        }
                    }
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                        t.refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s)
                        if s.code() == tonic::Code::DeadlineExceeded
                            || s.code() == tonic::Code::Cancelled =>
                    {
                        t.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) => t.other.lock().unwrap().push(format!("grpc traces: {s:?}")),
                }
            }
        }));
        // logs over HTTP
        let (t, url) = (
            tally.clone(),
            format!("http://127.0.0.1:{}/v1/logs", a.http_port),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut seed = 10_000_000 + w * 1_000_000;
            while Instant::now() < deadline {
                seed += 1;
                let req = testdata::logs(seed, 1, 200);
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        t.accepted.fetch_add(1, Ordering::Relaxed);
                        let mut ids = t.log_ids.lock().unwrap();
                        for l in &req.resource_logs[0].scope_logs[0].log_records {
                            ids.insert(l.span_id.clone());
                        }
                    }
                    Ok(r) if r.status() == 429 => {
                        assert!(
                            r.headers().get("retry-after").is_some(),
                            "429 without Retry-After"
                        );
                        t.refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(r) => t
                        .other
                        .lock()
                        .unwrap()
                        .push(format!("http logs: {}", r.status())),
                    Err(e) if e.is_timeout() => {
                        t.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => t.other.lock().unwrap().push(format!("http logs: {e}")),
                }
            }
        }));
        // metrics over gRPC
        let (t, ep) = (tally.clone(), format!("http://127.0.0.1:{}", a.grpc_port));
        tasks.push(tokio::spawn(async move {
            let mut c = MetricsServiceClient::connect(ep).await.unwrap();
            let mut seed = 20_000_000 + w * 1_000_000;
            while Instant::now() < deadline {
                seed += 1;
                let req = testdata::metrics(seed, 1, 40);
                let n = Telemetry::Metrics(req.clone()).item_count();
                let mut r = tonic::Request::new(req);
                r.set_timeout(Duration::from_secs(10));
                match c.export(r).await {
                    Ok(_) => {
                        t.accepted.fetch_add(1, Ordering::Relaxed);
                        t.metric_points.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                        t.refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s)
                        if s.code() == tonic::Code::DeadlineExceeded
                            || s.code() == tonic::Code::Cancelled =>
                    {
                        t.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) => t.other.lock().unwrap().push(format!("grpc metrics: {s:?}")),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ready_during_pressure =
        http_get(&format!("127.0.0.1:{}", a.admin_port), "/readyz").map(|(s, _)| s);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let peak = peak.load(Ordering::Relaxed);
    let limit = 64u64 << 20;
    let ratio = peak as f64 / limit as f64;
    eprintln!(
        "memory_limiter: idle rss {:.1} MiB, peak rss {:.1} MiB = {:.2} of limit_mib; accepted {} refused {} timeouts {} readyz {:?}",
        idle_rss as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        ratio,
        tally.accepted.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.timeouts.load(Ordering::Relaxed),
        ready_during_pressure
    );
    assert!(
        tally.refused.load(Ordering::Relaxed) > 0,
        "the flood never reached the limit"
    );
    assert!(tally.accepted.load(Ordering::Relaxed) > 0);
    assert_eq!(
        tally.timeouts.load(Ordering::Relaxed),
        0,
        "clients must see refusals, not timeouts"
    );
    assert!(
        tally.other.lock().unwrap().is_empty(),
        "{:?}",
        tally.other.lock().unwrap()
    );
    assert_eq!(
        health_failures.load(Ordering::Relaxed),
        0,
        "health checks kept answering"
    );
    assert!(ratio <= MARGIN, "peak RSS {peak} exceeds limit × {MARGIN}");
    assert!(a.metric("otelgw_memory_limiter_refused_requests_total", &[]) > 0.0);

    // the peer resumes: everything accepted arrives
    b.signal("CONT");
    let want_spans = tally.span_ids.lock().unwrap().clone();
    let want_logs = tally.log_ids.lock().unwrap().clone();
    let want_points = tally.metric_points.load(Ordering::Relaxed);
    let out2 = out.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut last = (0, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let mut spans = HashSet::new();
            let mut logs = HashSet::new();
            let mut points = 0;
            for t in read_file_export(&out2) {
                match t {
                    Telemetry::Traces(r) => r
                        .resource_spans
                        .iter()
                        .flat_map(|rs| &rs.scope_spans)
                        .flat_map(|ss| &ss.spans)
                        .for_each(|s| {
                            spans.insert(s.span_id.clone());
                        }),
                    Telemetry::Logs(r) => r
                        .resource_logs
                        .iter()
                        .flat_map(|rl| &rl.scope_logs)
                        .flat_map(|sl| &sl.log_records)
                        .for_each(|l| {
                            logs.insert(l.span_id.clone());
                        }),
                    m @ Telemetry::Metrics(_) => points += m.item_count(),
                }
            }
            last = (
                want_spans.difference(&spans).count(),
                want_logs.difference(&logs).count(),
                points,
            );
            if last.0 == 0 && last.1 == 0 && points >= want_points {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "missing spans {}, missing logs {}, metric points {} of {}",
            last.0, last.1, last.2, want_points
        ))
    })
    .await
    .unwrap();
    result.unwrap();
}

/// A peer that completes TCP handshakes and never reads a byte: the worst backend for memory,
/// since everything sent to it stays with the sender. Connections are held until the returned
/// sender is dropped (or 120 s pass).
async fn never_reading_peer() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(120));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Ok((sock, _)) = listener.accept() => held.push(sock),
                _ = &mut stopped => return,
                _ = &mut deadline => return,
            }
        }
    });
    (port, stop)
}

/// The architecture issue's scenario: `memory_limiter` (64 MiB, spike 16) → the default `batch`
/// → an `otlp` exporter (timeout 30 s, no compression) whose peer accepts TCP and never reads;
/// three clients flood (traces over OTLP/HTTP, logs over OTLP/gRPC, metrics over OTLP/HTTP,
/// 512 items per request, 3 requests in flight each). Peak RSS stays within 1.10 × the limit,
/// and once the flood is refused RSS settles at the soft limit (limit − spike): what the gate
/// admitted is what the process holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_signal_flood_into_a_peer_that_never_reads_stays_under_the_limit() {
    let (peer, _stop_peer) = never_reading_peer().await;
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"receivers:
{recv}processors:
  memory_limiter: {{check_interval: 100ms, limit_mib: 64, spike_limit_mib: 16}}
  batch: {{}}
exporters:
  otlp:
    endpoint: http://127.0.0.1:{peer}
    timeout: 30s
    compression: none
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp]}}
    metrics: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp]}}
    logs: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp]}}
{tel}"#,
        recv = ports.otlp_receiver(),
        tel = ports.telemetry()
    );
    let a = Gateway::start(ports, dir, &config);
    let pid = a.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut tasks = vec![];
    for c in 0..3u64 {
        for (path, signal) in [("/v1/traces", "traces"), ("/v1/metrics", "metrics")] {
            let (ok, no) = (accepted.clone(), refused.clone());
            let url = format!("http://127.0.0.1:{}{path}", a.http_port);
            let bodies: Vec<Vec<u8>> = (0..8)
                .map(|i| match signal {
                    "traces" => testdata::traces(c * 100 + i, 1, 512).encode_to_vec(),
                    _ => testdata::metrics(c * 100 + i, 1, 100).encode_to_vec(),
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    i += 1;
                    let r = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(bodies[i % bodies.len()].clone())
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match r.map(|r| r.status().as_u16()) {
                        Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(429) => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            no.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("{signal} over http: {other:?}"),
                    };
                }
            }));
        }
        let (ok, no) = (accepted.clone(), refused.clone());
        let ep = format!("http://127.0.0.1:{}", a.grpc_port);
        tasks.push(tokio::spawn(async move {
            use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
            let mut client = LogsServiceClient::connect(ep).await.unwrap();
            let reqs: Vec<_> = (0..8).map(|i| testdata::logs(c * 100 + i, 1, 512)).collect();
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let mut r = tonic::Request::new(reqs[i % reqs.len()].clone());
                r.set_timeout(Duration::from_secs(10));
                match client.export(r).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        no.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(s) => panic!("logs over grpc: {s:?}"),
                };
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // the flood is over and refused; give the gate a few samples to settle
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = rss_of(pid);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let mib = |b: u64| b as f64 / 1048576.0;
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "memory_limiter flood: peak {:.1} MiB ({:.2} of limit_mib), settled {:.1} MiB (soft limit 48), accepted {} refused {}",
        mib(peak),
        mib(peak) / 64.0,
        mib(settled),
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert!(accepted.load(Ordering::Relaxed) > 0);
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the flood never reached the limit"
    );
    assert!(mib(peak) <= 64.0 * MARGIN, "peak RSS {:.1} MiB", mib(peak));
    // settles at the soft limit: within what one more sample's admissions can add
    assert!(
        mib(settled) <= 48.0 * 1.05,
        "RSS settled at {:.1} MiB, above the soft limit (48 MiB)",
        mib(settled)
    );
    assert!(a.metric("otelgw_memory_limiter_refused_requests_total", &[]) > 0.0);
}
