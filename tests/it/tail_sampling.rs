//! `tail_sampling` behind `loadbalancing`: the two tiers teams build. A first otelgw routes by
//! trace id to three gateways that sample by the Collector's policies and write what they keep
//! to files. Exactly the traces the policies select arrive, complete, each once; late spans
//! follow their trace's decision; a flood of new traces keeps the table at `num_traces` and
//! loses nothing (the oldest are decided early).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Status};
use otelgw::data::Telemetry;
use prost::Message;

const BASE_NS: u64 = 1_700_000_000_000_000_000;

/// What makes a trace interesting: `t % 4` → 0 an error span, 1 slow (6 s), 2 a `customer:
/// vip` span attribute, 3 noise (fast, OK, no attribute).
fn kind(t: usize) -> usize {
    t % 4
}

fn spans_of(t: usize) -> usize {
    1 + (t * 7) % 20
}

fn trace_id(seed: u64, t: usize) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&seed.to_be_bytes());
    id[8..].copy_from_slice(&(t as u64).to_be_bytes());
    id.to_vec()
}

/// The spans of `traces` traces, spread round-robin over `requests` requests: the spans of
/// one trace arrive in several requests. With `mark`, one span of each trace carries its kind
/// (so a policy must look at the whole trace): the one in the trace's first request, so the
/// mark is there however late the rest arrives (later spans follow the decision).
fn workload(
    seed: u64,
    traces: usize,
    requests: usize,
    first_span: usize,
    mark: bool,
) -> Vec<Vec<u8>> {
    let mut spans = Vec::new();
    for t in 0..traces {
        let first = spans.len();
        for s in first_span..spans_of(t) + first_span {
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(t as u32).to_be_bytes());
            span_id[4..].copy_from_slice(&(s as u32 + 1).to_be_bytes());
            spans.push((t, false, span_id.to_vec()));
        }
        if mark {
            // the span that goes in the lowest-numbered request
            let marked = (first..spans.len())
                .min_by_key(|i| i % requests)
                .expect("a trace has spans");
            spans[marked].1 = true;
        }
    }
    let mut bodies = Vec::new();
    for r in 0..requests {
        let mine: Vec<_> = spans
            .iter()
            .enumerate()
            .filter(|(i, _)| i % requests == r)
            .map(|(_, s)| s.clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut req = otelgw::testdata::traces(seed + r as u64, 1, mine.len());
        for (span, (t, marked, span_id)) in req.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .zip(mine)
        {
            span.trace_id = trace_id(seed, t);
            span.span_id = span_id;
            span.start_time_unix_nano = BASE_NS;
            span.end_time_unix_nano = BASE_NS + 10_000_000;
            span.status = Some(Status {
                code: StatusCode::Ok as i32,
                message: String::new(),
            });
            span.attributes.retain(|kv| kv.key != "customer");
            if marked {
                match kind(t) {
                    0 => span.status.as_mut().unwrap().code = StatusCode::Error as i32,
                    1 => span.end_time_unix_nano = BASE_NS + 6_000_000_000,
                    2 => span.attributes.push(KeyValue {
                        key: "customer".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("vip".into())),
                        }),
                        ..Default::default()
                    }),
                    _ => {}
                }
            }
        }
        bodies.push(req.encode_to_vec());
    }
    bodies
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

/// Trace id → every span id a sink received (a list: duplicates show).
fn received(path: &std::path::Path) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
    let mut out: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
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
                .push(s.span_id.clone());
        }
    }
    out
}

const POLICIES: &str = "      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n      - {name: slow, type: latency, latency: {threshold_ms: 5000}}\n      - {name: vip, type: string_attribute, string_attribute: {key: customer, values: [vip]}}\n";

const WAIT_2S: &str = "    decision_wait: 2s\n";

/// A gateway: OTLP in, `tail_sampling` with [`POLICIES`], the kept spans to a file.
fn sampling_gateway(extra: &str) -> (Gateway, std::path::PathBuf) {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kept.jsonl");
    let config = format!(
        "receivers:\n{}processors:\n  tail_sampling:\n{extra}    policies:\n{POLICIES}  batch: {{timeout: 50ms}}\nexporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [tail_sampling, batch], exporters: [file]}}\n{}",
        ports.otlp_receiver(),
        out.display(),
        ports.telemetry()
    );
    (Gateway::start(ports, dir, &config), out)
}

#[test]
fn two_tiers_keep_exactly_the_selected_traces_whole_and_once() {
    let gateways: Vec<_> = (0..3).map(|_| sampling_gateway(WAIT_2S)).collect();
    let hostnames: Vec<String> = gateways
        .iter()
        .map(|(g, _)| format!("127.0.0.1:{}", g.grpc_port))
        .collect();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n{}exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        tls: {{insecure: true}}\n    resolver:\n      static:\n        hostnames: [{}]\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [loadbalancing]}}\n{}",
        ports.otlp_receiver(),
        hostnames.join(", "),
        ports.telemetry()
    );
    let lb = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);

    let traces = 400;
    for b in workload(7, traces, 12, 0, true) {
        assert_eq!(post(lb.http_port, &b), 200);
    }
    let selected: BTreeSet<Vec<u8>> = (0..traces)
        .filter(|&t| kind(t) != 3)
        .map(|t| trace_id(7, t))
        .collect();
    let expected_spans: usize = (0..traces).filter(|&t| kind(t) != 3).map(spans_of).sum();
    let total = |gws: &[(Gateway, std::path::PathBuf)]| -> usize {
        gws.iter()
            .map(|(_, p)| received(p).values().map(Vec::len).sum::<usize>())
            .sum()
    };
    wait_until("the selected traces", Duration::from_secs(30), || {
        total(&gateways) >= expected_spans
    });
    // decisions of every trace are out (decision_wait 2 s): nothing more comes
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(total(&gateways), expected_spans, "no span twice, no noise");

    let mut owner: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for (i, (_, p)) in gateways.iter().enumerate() {
        for (trace, spans) in received(p) {
            assert!(
                owner.insert(trace.clone(), i).is_none(),
                "a trace on two gateways"
            );
            assert!(selected.contains(&trace), "a noise trace was kept");
            let t = u64::from_be_bytes(trace[8..].try_into().unwrap()) as usize;
            let distinct: BTreeSet<_> = spans.iter().collect();
            assert_eq!(distinct.len(), spans.len(), "trace {t}: a span twice");
            assert_eq!(spans.len(), spans_of(t), "trace {t} complete");
        }
    }
    assert_eq!(owner.len(), selected.len());
    // every gateway decided its share, and says so per policy
    let mut sampled = 0.0;
    let mut not_sampled = 0.0;
    for (g, _) in &gateways {
        let global = |s: &str| {
            g.metric(
                "otelcol_processor_tail_sampling_global_count_traces_sampled",
                &[("processor", "tail_sampling"), ("sampled", s)],
            )
        };
        assert!(global("true") > 0.0, "every gateway got a share");
        sampled += global("true");
        not_sampled += global("false");
    }
    assert_eq!(sampled as usize, selected.len());
    assert_eq!(not_sampled as usize, traces - selected.len());
    let errors: f64 = gateways
        .iter()
        .map(|(g, _)| {
            g.metric(
                "otelcol_processor_tail_sampling_count_traces_sampled",
                &[
                    ("processor", "tail_sampling"),
                    ("policy", "errors"),
                    ("sampled", "true"),
                ],
            )
        })
        .sum();
    assert_eq!(
        errors as usize,
        (0..traces).filter(|&t| kind(t) == 0).count()
    );
}

#[test]
fn late_spans_follow_the_decision_of_their_trace() {
    let (gw, out) = sampling_gateway(WAIT_2S);
    let traces = 40;
    for b in workload(9, traces, 3, 0, true) {
        assert_eq!(post(gw.http_port, &b), 200);
    }
    let first: usize = (0..traces).filter(|&t| kind(t) != 3).map(spans_of).sum();
    wait_until("the first decisions", Duration::from_secs(20), || {
        received(&out).values().map(Vec::len).sum::<usize>() >= first
    });
    // more spans of every trace, after the decisions; none of them marks its trace, so a new
    // decision would drop them all: they must follow the first one
    let late: usize = (0..traces)
        .filter(|&t| kind(t) != 3)
        .map(|t| spans_of(t) - 1)
        .sum();
    for b in workload(9, traces, 2, 1, false) {
        assert_eq!(post(gw.http_port, &b), 200);
    }
    let want = first + late + (0..traces).filter(|&t| kind(t) != 3).count();
    wait_until(
        "the late spans of sampled traces",
        Duration::from_secs(20),
        || received(&out).values().map(Vec::len).sum::<usize>() >= want,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let got = received(&out);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), want);
    for trace in got.keys() {
        let t = u64::from_be_bytes(trace[8..].try_into().unwrap()) as usize;
        assert_ne!(kind(t), 3, "a late span revived a dropped trace");
    }
    let dropped_late: usize = (0..traces).filter(|&t| kind(t) == 3).map(spans_of).sum();
    assert_eq!(
        gw.metric(
            "otelgw_processor_tail_sampling_late_spans_dropped_total",
            &[("processor", "tail_sampling")]
        ) as usize,
        dropped_late
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_flood_of_new_traces_keeps_the_table_at_num_traces_and_loses_nothing() {
    let (gw, out) = sampling_gateway("    decision_wait: 10s\n    num_traces: 500\n");
    let before = rss_kib(gw.pid());
    // 20,000 traces, half errors (kept), in 100 requests, far faster than decision_wait
    let mut peak = 0.0f64;
    for r in 0..100u64 {
        let mut req = otelgw::testdata::traces(r, 1, 200);
        for (i, span) in req.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .enumerate()
        {
            span.trace_id = trace_id(1000 + r, i);
            span.status = Some(Status {
                code: if i % 2 == 0 {
                    StatusCode::Error as i32
                } else {
                    StatusCode::Ok as i32
                },
                message: String::new(),
            });
            span.start_time_unix_nano = BASE_NS;
            span.end_time_unix_nano = BASE_NS + 1000;
            span.attributes.retain(|kv| kv.key != "customer");
        }
        assert_eq!(post(gw.http_port, &req.encode_to_vec()), 200);
        peak = peak.max(gw.metric(
            "otelcol_processor_tail_sampling_sampling_traces_on_memory",
            &[("processor", "tail_sampling")],
        ));
    }
    assert!(peak <= 500.0, "table at {peak} traces, over num_traces");
    wait_until("every error trace", Duration::from_secs(30), || {
        received(&out).len() >= 10_000
    });
    let got = received(&out);
    assert_eq!(got.len(), 10_000);
    assert!(got.values().all(|s| s.len() == 1));
    let early = gw.metric(
        "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
        &[("processor", "tail_sampling")],
    );
    assert!(early >= 19_000.0, "{early} traces decided early");
    let grown = rss_kib(gw.pid()).saturating_sub(before);
    assert!(grown < 64 * 1024, "rss grew {grown} KiB");
}
