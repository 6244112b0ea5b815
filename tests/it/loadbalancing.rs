//! The `loadbalancing` exporter in front of three real otelgw backends (each writing what it
//! receives to a file): every trace lands whole on exactly one backend, shares are even within
//! a stated tolerance, and when a backend is killed (SIGKILL) mid-way its share goes to the
//! others with nothing acknowledged lost.

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
