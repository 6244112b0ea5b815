//! The `loadbalancing` exporter in front of three real otelgw backends (each writing what it
//! receives to a file): every trace lands whole on exactly one backend, shares are even within
//! a stated tolerance, and when a backend is killed (SIGKILL) mid-way its share goes to the
//! others with nothing acknowledged lost. Four in-process gRPC backends take 10,000 traces of
//! 1–50 spans (each whole on one backend, shares within bounds) and one answering UNAVAILABLE
//! for a while causes no duplicates; `streamID` routing keeps every series, cumulative, on one
//! gateway's Prometheus endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::*;
use otelgw::data::Telemetry;
use prost::Message;

/// `traces` traces of 1–20 spans, their spans spread over `requests` requests.
fn workload(seed: u64, traces: usize, requests: usize) -> (Vec<Vec<u8>>, u64) {
    let mut spans = Vec::new();
    for t in 0..traces {
        let n = 1 + (t * 7 + seed as usize) % 20;
        for s in 0..n {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&seed.to_be_bytes());
            trace_id[8..].copy_from_slice(&(t as u64).to_be_bytes());
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(t as u32).to_be_bytes());
            // never all zeros (an invalid span id)
            span_id[4..].copy_from_slice(&(s as u32 + 1).to_be_bytes());
            spans.push((trace_id.to_vec(), span_id.to_vec()));
        }
    }
    let total = spans.len() as u64;
    let mut bodies = Vec::new();
    for r in 0..requests {
        let mine: Vec<_> = spans
            .iter()
            .enumerate()
            .filter(|(i, _)| i % requests == r)
            .map(|(_, s)| s.clone())
            .collect();
        let mut req = otelgw::testdata::traces(seed + r as u64, 1, mine.len());
        for (span, (t, s)) in req.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .zip(mine)
        {
            span.trace_id = t;
            span.span_id = s;
        }
        bodies.push(req.encode_to_vec());
    }
    (bodies, total)
}

fn post(port: u16, body: &[u8]) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body.to_vec())
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Trace id → the spans of it each sink received.
fn spans_by_trace(path: &std::path::Path) -> BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> {
    let mut out: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for t in read_file_export(path) {
        let Telemetry::Traces(r) = t else { continue };
        for s in r
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            out.entry(s.trace_id.clone())
                .or_default()
                .insert(s.span_id.clone());
        }
    }
    out
}

#[test]
fn traces_land_whole_on_one_backend_and_a_killed_backend_loses_nothing() {
    let sinks: Vec<_> = (0..3).map(|_| file_sink()).collect();
    let hostnames: Vec<String> = sinks
        .iter()
        .map(|(g, _)| format!("127.0.0.1:{}", g.grpc_port))
        .collect();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    routing_key: traceID\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n        timeout: 2s\n        retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 60s}}\n    resolver:\n      static:\n        hostnames: [{}]\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        hostnames.join(", "),
        ports.telemetry()
    );
    let lb = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);

    let (bodies, total) = workload(1, 300, 12);
    for b in &bodies {
        assert_eq!(post(lb.http_port, b), 200);
    }
    // every span received, duplicates included
    let count = |sinks: &[(Gateway, std::path::PathBuf)]| -> u64 {
        sinks
            .iter()
            .map(|(_, p)| count_items(&read_file_export(p), otelgw::component::Signal::Traces))
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&sinks) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {total} spans at the backends; log:\n{}\n{}",
            count(&sinks),
            lb.logs()
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .collect::<Vec<_>>()
                .join("\n"),
            lb.metrics_text()
                .lines()
                .filter(|l| l.contains("loadbal") || l.contains("spans"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(&sinks), total, "nothing twice");
    let mut owner: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut shares = [0usize; 3];
    for (i, (_, p)) in sinks.iter().enumerate() {
        for (trace, spans) in spans_by_trace(p) {
            assert!(
                owner.insert(trace.clone(), i).is_none(),
                "a trace on two backends"
            );
            shares[i] += 1;
            let t = u64::from_be_bytes(trace[8..].try_into().unwrap()) as usize;
            assert_eq!(spans.len(), 1 + (t * 7 + 1) % 20, "trace {t} complete");
        }
    }
    assert_eq!(owner.len(), 300);
    for s in shares {
        // 300 traces over 3 backends: each within 1/3 ± 40%
        assert!((60..=140).contains(&s), "shares {shares:?}");
    }
    assert_eq!(
        lb.metric(
            "otelcol_loadbalancer_num_backends",
            &[("exporter", "loadbalancing")]
        ),
        3.0
    );

    // one backend dies: its share goes to the others, nothing acknowledged is lost
    let mut sinks = sinks;
    let (mut dead, _) = sinks.remove(0);
    dead.signal("KILL");
    dead.wait_exit(Duration::from_secs(10));
    let before = count(&sinks);
    let (bodies, total2) = workload(2, 300, 12);
    for b in &bodies {
        assert_eq!(post(lb.http_port, b), 200);
    }
    wait_until(
        "every new span at a live backend",
        Duration::from_secs(60),
        || count(&sinks) >= before + total2,
    );
    assert_eq!(count(&sinks), before + total2);
    assert!(
        lb.metric(
            "otelgw_loadbalancer_ejections_total",
            &[("exporter", "loadbalancing")]
        ) >= 1.0
    );
    assert!(
        lb.metric(
            "otelgw_loadbalancer_rerouted_items_total",
            &[("exporter", "loadbalancing")]
        ) >= 1.0
    );
    // every new trace is still whole on one live backend
    let mut owner: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for (i, (_, p)) in sinks.iter().enumerate() {
        for (trace, _) in spans_by_trace(p) {
            if trace[..8] == 2u64.to_be_bytes() {
                assert!(owner.insert(trace, i).is_none(), "a trace on two backends");
            }
        }
    }
    assert_eq!(owner.len(), 300);
}

/// `resolver.dns` with `localhost`: the backends are what the name resolves to (127.0.0.1, and
/// ::1 where the hosts file has it — nothing listens there, so that backend is ejected and its
/// share re-routed); every span arrives.
#[test]
fn the_dns_resolver_finds_the_backends_and_routes_around_a_dead_address() {
    let (sink, out) = file_sink();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  load_balancing:\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n        timeout: 1s\n        retry_on_failure: {{initial_interval: 20ms, max_interval: 50ms, max_elapsed_time: 30s}}\n    resolver:\n      dns: {{hostname: localhost, port: {}, interval: 200ms}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [load_balancing]}}\n{}",
        ports.otlp_receiver(),
        sink.grpc_port,
        ports.telemetry()
    );
    let lb = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    wait_until("a resolution", Duration::from_secs(10), || {
        lb.metric(
            "otelcol_loadbalancer_num_resolutions",
            &[("exporter", "load_balancing"), ("success", "true")],
        ) >= 1.0
    });
    let (bodies, total) = workload(3, 100, 4);
    for b in &bodies {
        assert_eq!(post(lb.http_port, b), 200);
    }
    wait_until("every span", Duration::from_secs(30), || {
        spans_by_trace(&out)
            .values()
            .map(|s| s.len() as u64)
            .sum::<u64>()
            >= total
    });
    assert_eq!(
        spans_by_trace(&out)
            .values()
            .map(|s| s.len() as u64)
            .sum::<u64>(),
        total
    );
    assert!(lb.logs().contains("endpoint=127.0.0.1:"), "{}", lb.logs());
}

/// (trace id, span id) → how many times it arrived.
type SpanCounts = BTreeMap<(Vec<u8>, Vec<u8>), u32>;

/// An in-process OTLP/gRPC backend that counts every (trace id, span id) it accepts, and refuses
/// with `UNAVAILABLE` (gRPC's 503) while `refusing` is set.
#[derive(Clone, Default)]
struct CountingBackend {
    spans: std::sync::Arc<std::sync::Mutex<SpanCounts>>,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for CountingBackend
{
    async fn export(
        &self,
        req: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        use std::sync::atomic::Ordering;
        if self.refusing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::unavailable("refusing for the test"));
        }
        let mut spans = self.spans.lock().unwrap();
        for s in req
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            *spans
                .entry((s.trace_id.clone(), s.span_id.clone()))
                .or_default() += 1;
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

impl CountingBackend {
    async fn start() -> (CountingBackend, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        CountingBackend::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> (CountingBackend, u16) {
        let b = CountingBackend::default();
        let port = listener.local_addr().unwrap().port();
        let svc = opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer::new(b.clone())
            .max_decoding_message_size(64 << 20)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (b, port)
    }

    fn total(&self) -> u64 {
        self.spans
            .lock()
            .unwrap()
            .values()
            .map(|&n| u64::from(n))
            .sum()
    }
}

/// Three [`CountingBackend`]s on 127.0.0.2–4 and one port free on all three (what a DNS name or
/// a Service's endpoints give: several addresses, one port).
async fn three_backends_on_one_port() -> (Vec<CountingBackend>, u16) {
    for _ in 0..20 {
        let port = free_port();
        let mut ls = Vec::new();
        for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
            match tokio::net::TcpListener::bind((ip, port)).await {
                Ok(l) => ls.push(l),
                Err(_) => break,
            }
        }
        if ls.len() == 3 {
            let backends = ls
                .into_iter()
                .map(|l| CountingBackend::serve(l).0)
                .collect();
            return (backends, port);
        }
    }
    panic!("no port free on 127.0.0.2-4");
}

/// `traces` traces of 1–50 spans (trace ids carry `seed`), spread round-robin over requests of
/// about `per_request` spans: the spans of one trace arrive in several requests.
fn big_workload(
    seed: u64,
    traces: usize,
    per_request: usize,
) -> (
    Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
    BTreeMap<Vec<u8>, usize>,
) {
    let mut spans = Vec::new();
    let mut sizes = BTreeMap::new();
    for t in 0..traces {
        let n = 1 + (t * 13 + seed as usize) % 50;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&seed.to_be_bytes());
        trace_id[8..].copy_from_slice(&(t as u64).to_be_bytes());
        sizes.insert(trace_id.to_vec(), n);
        for s in 0..n {
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(t as u32).to_be_bytes());
            span_id[4..].copy_from_slice(&(s as u32 + 1).to_be_bytes());
            spans.push((trace_id.to_vec(), span_id.to_vec()));
        }
    }
    let requests = spans.len().div_ceil(per_request);
    let mut out = Vec::new();
    for r in 0..requests {
        let mine: Vec<_> = spans.iter().skip(r).step_by(requests).cloned().collect();
        let mut req = otelgw::testdata::traces(seed + r as u64, 1, mine.len());
        for (span, (t, s)) in req.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .zip(mine)
        {
            span.trace_id = t;
            span.span_id = s;
        }
        out.push(req);
    }
    (out, sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_backends_keep_ten_thousand_traces_whole_and_a_refusing_one_causes_no_duplicates() {
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(CountingBackend::start().await);
    }
    let hostnames: Vec<String> = backends
        .iter()
        .map(|(_, p)| format!("127.0.0.1:{p}"))
        .collect();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n        retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 60s}}\n    resolver:\n      static:\n        hostnames: [{}]\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        hostnames.join(", "),
        ports.telemetry()
    );
    let lb = tokio::task::spawn_blocking(move || {
        Gateway::start(ports, tempfile::tempdir().unwrap(), &config)
    })
    .await
    .unwrap();
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://127.0.0.1:{}", lb.grpc_port),
    )
    .await
    .unwrap();
    let sum = |bs: &[(CountingBackend, u16)]| bs.iter().map(|(b, _)| b.total()).sum::<u64>();
    let wait_for = |bs: &[(CountingBackend, u16)], want: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while sum(bs) < want && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // all healthy: 10,000 traces of 1–50 spans, each whole on exactly one backend
    let (reqs, sizes) = big_workload(11, 10_000, 2000);
    let total: u64 = sizes.values().map(|&n| n as u64).sum();
    for r in reqs {
        client.export(r).await.unwrap();
    }
    tokio::task::block_in_place(|| wait_for(&backends, total));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sum(&backends),
        total,
        "every span once; log:\n{}",
        lb.logs()
            .lines()
            .filter(|l| !l.contains("DEBUG"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut owner: BTreeMap<Vec<u8>, (usize, usize)> = BTreeMap::new();
    let mut shares = [0usize; 4];
    for (i, (b, _)) in backends.iter().enumerate() {
        for ((trace, _), n) in b.spans.lock().unwrap().iter() {
            assert_eq!(*n, 1, "a span twice");
            let e = owner.entry(trace.clone()).or_insert((i, 0));
            assert_eq!(e.0, i, "a trace on two backends");
            if e.1 == 0 {
                shares[i] += 1;
            }
            e.1 += 1;
        }
    }
    assert_eq!(owner.len(), 10_000);
    for (trace, (_, n)) in &owner {
        assert_eq!(*n, sizes[trace], "a trace incomplete");
    }
    // 150 virtual nodes per backend: each within 25% ± 7.5 points of the traces
    for s in shares {
        assert!((1750..=3250).contains(&s), "shares {shares:?}");
    }

    // one backend answers UNAVAILABLE for a while: its parts are retried or re-routed, and
    // nothing another backend accepted is sent twice
    let refusing = &backends[2].0;
    refusing
        .refusing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (reqs, sizes2) = big_workload(12, 2000, 1000);
    let total2: u64 = sizes2.values().map(|&n| n as u64).sum();
    let flip = refusing.clone();
    let recover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        flip.refusing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    });
    for r in reqs {
        client.export(r).await.unwrap();
    }
    recover.await.unwrap();
    tokio::task::block_in_place(|| wait_for(&backends, total + total2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        refusing.refused.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the backend refused something"
    );
    assert_eq!(sum(&backends), total + total2, "every span once, none lost");
    for (b, _) in &backends {
        assert!(
            b.spans.lock().unwrap().values().all(|&n| n == 1),
            "a span twice"
        );
    }
    // the recovered backend is re-admitted after its back-off (15 s) and gets its share again
    let ejected = lb.metric(
        "otelgw_loadbalancer_ejections_total",
        &[("exporter", "loadbalancing")],
    );
    assert!(ejected >= 1.0, "refusing in a row ejects");
    let had = refusing.total();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut round = 13;
    while refusing.total() == had {
        assert!(
            std::time::Instant::now() < deadline,
            "the recovered backend never got traffic again"
        );
        let (reqs, _) = big_workload(round, 200, 1000);
        for r in reqs {
            client.export(r).await.unwrap();
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    assert!(lb.logs().contains("backend re-admitted"), "{}", lb.logs());
    drop(lb);
}

/// `routing_key: streamID` in front of three gateways with a `prometheus` exporter: every series
/// is served by exactly one gateway, with the right cumulative value after deltas summed over
/// many requests.
#[test]
fn stream_id_routing_keeps_each_series_cumulative_on_one_gateway() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        Sum,
    };
    let gateways: Vec<(Gateway, u16)> = (0..3)
        .map(|_| {
            let ports = Ports::new();
            let prom = free_port();
            let config = format!(
                "receivers:\n{}exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{prom}\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [prometheus]}}\n{}",
                ports.otlp_receiver(),
                ports.telemetry()
            );
            (Gateway::start(ports, tempfile::tempdir().unwrap(), &config), prom)
        })
        .collect();
    let hostnames: Vec<String> = gateways
        .iter()
        .map(|(g, _)| format!("127.0.0.1:{}", g.grpc_port))
        .collect();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    routing_key: streamID\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n    resolver:\n      static:\n        hostnames: [{}]\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        hostnames.join(", "),
        ports.telemetry()
    );
    let lb = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    let series = 60;
    let rounds = 20;
    for round in 0..rounds {
        let points = (0..series)
            .map(|i| NumberDataPoint {
                attributes: vec![otelgw::testdata::kv(
                    "series",
                    otelgw::testdata::s(&format!("s{i}")),
                )],
                // consecutive deltas: each starts where the last ended
                start_time_unix_nano: 1_000 + round * 10,
                time_unix_nano: 1_000 + (round + 1) * 10,
                value: Some(number_data_point::Value::AsInt(1 + (i % 3) as i64)),
                ..Default::default()
            })
            .collect();
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![otelgw::testdata::kv(
                        "service.name",
                        otelgw::testdata::s("checkout"),
                    )],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "logins".into(),
                        data: Some(Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: 1, // delta
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let status = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{}/v1/metrics", lb.http_port))
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }
    // series "sN" → (gateway, value)
    let scrape = || -> BTreeMap<String, Vec<(usize, f64)>> {
        let mut out: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
        for (i, (_, prom)) in gateways.iter().enumerate() {
            let Some((200, text)) = http_get(&format!("127.0.0.1:{prom}"), "/metrics") else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with("logins_total{")) {
                let Some(start) = line.find("series=\"") else {
                    continue;
                };
                let rest = &line[start + 8..];
                let name = rest[..rest.find('"').unwrap()].to_string();
                let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                out.entry(name).or_default().push((i, value));
            }
        }
        out
    };
    let expect = |i: usize| (rounds as f64) * (1 + (i % 3)) as f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let _ = std::iter::from_fn(|| (std::time::Instant::now() < deadline).then_some(())).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        let got = scrape();
        (0..series).all(|i| {
            got.get(&format!("s{i}"))
                .is_some_and(|v| v.iter().map(|(_, x)| x).sum::<f64>() >= expect(i))
        })
    });
    let got = scrape();
    let mut used = std::collections::BTreeSet::new();
    for i in 0..series {
        let v = &got[&format!("s{i}")];
        assert_eq!(v.len(), 1, "series s{i} on more than one gateway: {v:?}");
        assert_eq!(v[0].1, expect(i), "series s{i} cumulative");
        used.insert(v[0].0);
    }
    assert!(
        used.len() >= 2,
        "the series spread over the gateways: {used:?}"
    );
}

/// `resolver.dns` while a backend leaves DNS under load. The load balancer runs in a mount
/// namespace of its own with a test hosts file bind-mounted over `/etc/hosts` (glibc reads it
/// on every lookup): `backends.test` has the three backends' addresses (127.0.0.2–4, one port).
/// One address is removed mid-load: no acknowledged span is lost or doubled, a trace whose
/// backend stayed never moves, and only the removed backend's share (~1/3) moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_removed_from_dns_under_load_moves_only_its_traces() {
    // one port free on all three addresses
    let (backends, port) = three_backends_on_one_port().await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let all = "127.0.0.1 localhost\n127.0.0.2 backends.test\n127.0.0.3 backends.test\n127.0.0.4 backends.test\n";
    std::fs::write(&hosts, all).unwrap();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n        retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 60s}}\n    resolver:\n      dns: {{hostname: backends.test, port: {port}, interval: 200ms}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let mount = format!(
        "mount --bind {} /etc/hosts && exec \"$0\" \"$@\"",
        hosts.display()
    );
    let lb = tokio::task::spawn_blocking(move || {
        Gateway::start_wrapped(
            ports,
            tempfile::tempdir().unwrap(),
            &config,
            &["unshare", "--mount", "sh", "-c", &mount],
        )
    })
    .await
    .unwrap();
    let num_backends = |lb: &Gateway| {
        lb.metric(
            "otelcol_loadbalancer_num_backends",
            &[("exporter", "loadbalancing")],
        )
    };
    tokio::task::block_in_place(|| {
        wait_until("three backends resolved", Duration::from_secs(10), || {
            num_backends(&lb) == 3.0
        })
    });
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://127.0.0.1:{}", lb.grpc_port),
    )
    .await
    .unwrap();
    // round k: one new span of each of 600 traces (span ids carry the round), in 4 requests
    let traces = 600usize;
    let round = |k: u32| -> Vec<_> {
        (0..4)
            .map(|r| {
                let mine: Vec<usize> = (0..traces).filter(|t| t % 4 == r).collect();
                let mut req = otelgw::testdata::traces(u64::from(k) * 10 + r as u64, 1, mine.len());
                for (span, t) in req.resource_spans[0].scope_spans[0]
                    .spans
                    .iter_mut()
                    .zip(mine)
                {
                    // never all zeros (an invalid trace id, rejected at the receiver)
                    let mut id = [1u8; 16];
                    id[8..].copy_from_slice(&(t as u64).to_be_bytes());
                    span.trace_id = id.to_vec();
                    let mut sid = [0u8; 8];
                    sid[..4].copy_from_slice(&(t as u32).to_be_bytes());
                    sid[4..].copy_from_slice(&(k + 1).to_be_bytes());
                    span.span_id = sid.to_vec();
                }
                req
            })
            .collect()
    };
    let sum = |bs: &[CountingBackend]| bs.iter().map(CountingBackend::total).sum::<u64>();
    // before: every backend resolved
    let mut sent = 0u64;
    for req in round(0) {
        client.export(req).await.unwrap();
    }
    sent += traces as u64;
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while sum(&backends) < sent {
            assert!(
                std::time::Instant::now() < deadline,
                "round 0: {} of {sent} spans; log:\n{}",
                sum(&backends),
                lb.logs()
                    .lines()
                    .filter(|l| !l.contains("DEBUG"))
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let owner_of = |bs: &[CountingBackend], round: u32| -> BTreeMap<Vec<u8>, usize> {
        let mut out = BTreeMap::new();
        for (i, b) in bs.iter().enumerate() {
            for (trace, span) in b.spans.lock().unwrap().keys() {
                if span[4..] == (round + 1).to_be_bytes() {
                    out.insert(trace.clone(), i);
                }
            }
        }
        out
    };
    let before = owner_of(&backends, 0);
    assert_eq!(before.len(), traces);
    // under load: rounds 1..=20 while 127.0.0.4 leaves DNS after round 5
    for k in 1..=20u32 {
        for req in round(k) {
            client.export(req).await.unwrap();
        }
        sent += traces as u64;
        if k == 5 {
            std::fs::write(
                &hosts,
                "127.0.0.1 localhost\n127.0.0.2 backends.test\n127.0.0.3 backends.test\n",
            )
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::block_in_place(|| {
        wait_until("two backends resolved", Duration::from_secs(10), || {
            num_backends(&lb) == 2.0
        })
    });
    // after: the ring has two backends
    for req in round(21) {
        client.export(req).await.unwrap();
    }
    sent += traces as u64;
    tokio::task::block_in_place(|| {
        wait_until("every span", Duration::from_secs(30), || {
            sum(&backends) >= sent
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sum(&backends), sent, "every acknowledged span once");
    for b in &backends {
        assert!(
            b.spans.lock().unwrap().values().all(|&n| n == 1),
            "a span twice"
        );
    }
    // a trace whose backend stayed is on it alone, in every round
    let mut moved = 0;
    for (i, b) in backends.iter().enumerate() {
        for (trace, _) in b.spans.lock().unwrap().keys() {
            let first = before[trace];
            if first != 2 {
                assert_eq!(i, first, "a trace of a backend that stayed moved");
            }
        }
    }
    let after = owner_of(&backends, 21);
    assert_eq!(after.len(), traces);
    for (trace, &now) in &after {
        assert_ne!(now, 2, "the removed backend still gets new traces");
        if before[trace] != now {
            moved += 1;
        }
    }
    let removed_share = before.values().filter(|&&b| b == 2).count();
    assert_eq!(
        moved, removed_share,
        "exactly the removed backend's traces moved"
    );
    assert!(
        (traces / 5..=traces / 2).contains(&moved),
        "{moved} of {traces} traces moved; expected about a third"
    );
}

/// A stand-in for the Kubernetes API server (none can run here): HTTPS with a private CA, and
/// the documented rules of the one call the k8s resolver makes — `GET
/// /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D<svc>`
/// with `Authorization: Bearer <the service account token>` (401 otherwise, 404 for another
/// path) — answering an `EndpointSliceList` of the addresses in `ready` (plus one endpoint that
/// is not ready, which must be left out). Answers HTTP/1.1, one request per connection.
async fn fake_api_server(
    dir: &std::path::Path,
    token: &'static str,
    ready: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    lists: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca, cert, key) = certs(dir);
    std::fs::write(dir.join("ca.crt"), ca).unwrap();
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let ready = ready.clone();
            let lists = lists.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let line = head.lines().next().unwrap_or("").to_string();
                let authorized = head.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("authorization:")
                        && l.trim_end().ends_with(&format!("Bearer {token}"))
                });
                let want = "GET /apis/discovery.k8s.io/v1/namespaces/observability/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dotelgw-gateway HTTP/1.1";
                let (status, body) = if !authorized {
                    (
                        "401 Unauthorized",
                        r#"{"kind":"Status","code":401}"#.to_string(),
                    )
                } else if line != want {
                    (
                        "404 Not Found",
                        r#"{"kind":"Status","code":404}"#.to_string(),
                    )
                } else {
                    lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut eps: Vec<serde_json::Value> = ready
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|a| serde_json::json!({"addresses": [a], "conditions": {"ready": true}}))
                        .collect();
                    eps.push(serde_json::json!({"addresses": ["127.0.0.9"], "conditions": {"ready": false}}));
                    let list = serde_json::json!({
                        "kind": "EndpointSliceList",
                        "apiVersion": "discovery.k8s.io/v1",
                        "items": [{
                            "kind": "EndpointSlice",
                            "metadata": {"labels": {"kubernetes.io/service-name": "otelgw-gateway"}},
                            "addressType": "IPv4",
                            "endpoints": eps,
                            "ports": [{"name": "otlp-grpc", "port": 4317, "protocol": "TCP"}]
                        }]
                    });
                    ("200 OK", list.to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// `resolver.k8s` against the API server stand-in: the ready endpoints of the Service become
/// the backends (the not-ready one never does), every span arrives, and an endpoint that stops
/// being ready leaves the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k8s_resolver_follows_the_services_ready_endpoints() {
    let (backends, port) = three_backends_on_one_port().await;
    let sa = tempfile::tempdir().unwrap();
    std::fs::write(sa.path().join("token"), "s3cret-token\n").unwrap();
    std::fs::write(sa.path().join("namespace"), "observability").unwrap();
    let ready = std::sync::Arc::new(std::sync::Mutex::new(vec![
        "127.0.0.2".to_string(),
        "127.0.0.3".to_string(),
        "127.0.0.4".to_string(),
    ]));
    let lists = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let api_port = fake_api_server(sa.path(), "s3cret-token", ready.clone(), lists.clone()).await;
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n    resolver:\n      k8s: {{service: otelgw-gateway, ports: [{port}], interval: 200ms}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let sa_dir = sa.path().display().to_string();
    let api_port_s = api_port.to_string();
    let lb = tokio::task::spawn_blocking(move || {
        Gateway::start_with_env(
            ports,
            tempfile::tempdir().unwrap(),
            &config,
            &[
                ("KUBERNETES_SERVICE_HOST", "localhost"),
                ("KUBERNETES_SERVICE_PORT", &api_port_s),
                ("OTELGW_K8S_SERVICEACCOUNT_DIR", &sa_dir),
            ],
        )
    })
    .await
    .unwrap();
    let num_backends = |lb: &Gateway| {
        lb.metric(
            "otelcol_loadbalancer_num_backends",
            &[("exporter", "loadbalancing")],
        )
    };
    tokio::task::block_in_place(|| {
        wait_until("the three ready endpoints", Duration::from_secs(10), || {
            num_backends(&lb) == 3.0
        })
    });
    assert!(
        lb.logs().contains(&format!("endpoint=127.0.0.2:{port}")),
        "{}",
        lb.logs()
    );
    assert!(
        !lb.logs().contains("127.0.0.9"),
        "a not-ready endpoint became a backend"
    );
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://127.0.0.1:{}", lb.grpc_port),
    )
    .await
    .unwrap();
    let (reqs, sizes) = big_workload(21, 300, 500);
    let total: u64 = sizes.values().map(|&n| n as u64).sum();
    for r in reqs {
        client.export(r).await.unwrap();
    }
    let sum = |bs: &[CountingBackend]| bs.iter().map(CountingBackend::total).sum::<u64>();
    tokio::task::block_in_place(|| {
        wait_until("every span", Duration::from_secs(30), || {
            sum(&backends) >= total
        })
    });
    assert_eq!(sum(&backends), total);
    assert!(
        backends.iter().filter(|b| b.total() > 0).count() == 3,
        "every ready endpoint got a share"
    );
    // one endpoint stops being ready: it leaves the ring
    ready.lock().unwrap().retain(|a| a != "127.0.0.4");
    tokio::task::block_in_place(|| {
        wait_until("two backends", Duration::from_secs(10), || {
            num_backends(&lb) == 2.0
        })
    });
    let before = backends[2].total();
    let (reqs, sizes) = big_workload(22, 300, 500);
    let total2: u64 = sizes.values().map(|&n| n as u64).sum();
    for r in reqs {
        client.export(r).await.unwrap();
    }
    tokio::task::block_in_place(|| {
        wait_until("every new span", Duration::from_secs(30), || {
            sum(&backends) >= total + total2
        })
    });
    assert_eq!(sum(&backends), total + total2);
    assert_eq!(
        backends[2].total(),
        before,
        "the endpoint that left got nothing new"
    );
    assert!(lists.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert!(
        lb.metric(
            "otelcol_loadbalancer_num_resolutions",
            &[
                ("exporter", "loadbalancing"),
                ("resolver", "k8s"),
                ("success", "true")
            ],
        ) >= 2.0
    );
}
