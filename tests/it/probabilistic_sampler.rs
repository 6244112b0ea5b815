//! `probabilistic_sampler` in a running gateway: 2000 traces of 3 spans, each trace's spans in
//! three different requests, go through two traces pipelines at 25 % — `hash_seed` mode (seed
//! 22) and `proportional` mode — to `file` exporters. Each pipeline keeps whole traces only,
//! about a quarter of them, and exactly the ones the algorithms' definitions select (computed
//! here independently: FNV-1a of the seed and trace id under 4096 of 16384; the trace id's last
//! 56 bits at or above 0xc0000000000000). Kept spans carry the threshold in their tracestate,
//! and every decision is counted in the Collector's self-metric.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelgw::data::{Signal, Telemetry};
use otelgw::testdata::{kv, s, Rng};
use prost::Message;

const TRACES: usize = 2000;
const SPANS_PER_TRACE: usize = 3;
const PER_REQUEST: usize = 100;
const SEED: u32 = 22;
const METRIC: &str = "otelcol_processor_probabilistic_sampler_count_traces_sampled";

/// FNV-1a (32 bits) over the seed's little-endian bytes and the trace id.
fn fnv1a(seed: u32, data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in seed.to_le_bytes().iter().chain(data) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn hash_seed_keeps(tid: &[u8]) -> bool {
    // 25 % of the 2^14 buckets
    fnv1a(SEED, tid) & 0x3fff < 4096
}

fn proportional_keeps(tid: &[u8]) -> bool {
    // the W3C randomness: the last 7 bytes of the trace id; 25 % is th:c
    let r = tid[9..]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    r >= 0xc0_0000_0000_0000
}

/// Spans by trace id in a file export, with their tracestates.
fn spans_by_trace(path: &std::path::Path) -> HashMap<Vec<u8>, Vec<String>> {
    let mut out: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    for t in read_file_export(path) {
        let Telemetry::Traces(r) = t else { continue };
        for rs in r.resource_spans {
            for ss in rs.scope_spans {
                for sp in ss.spans {
                    out.entry(sp.trace_id).or_default().push(sp.trace_state);
                }
            }
        }
    }
    out
}

fn requests(trace_ids: &[Vec<u8>]) -> Vec<ExportTraceServiceRequest> {
    // span k of every trace, then span k+1: one trace's spans land in different requests
    let mut rng = Rng::new(99);
    let spans: Vec<Span> = (0..SPANS_PER_TRACE)
        .flat_map(|k| trace_ids.iter().map(move |id| (k, id)))
        .map(|(k, id)| Span {
            trace_id: id.clone(),
            span_id: rng.bytes(8),
            name: format!("step {k}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_001_000_000,
            ..Default::default()
        })
        .collect();
    spans
        .chunks(PER_REQUEST)
        .map(|chunk| {
            // two resources per request
            let (a, b) = chunk.split_at(chunk.len() / 2);
            let rs = |svc: &str, spans: &[Span]| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s(svc))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            ExportTraceServiceRequest {
                resource_spans: vec![rs("front", a), rs("back", b)],
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_a_quarter_of_whole_traces_in_hash_seed_and_proportional_modes() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let hash_out = dir.path().join("hash.jsonl");
    let prop_out = dir.path().join("proportional.jsonl");
    let config = format!(
        "receivers:\n{}processors:\n  probabilistic_sampler:\n    sampling_percentage: 25\n    hash_seed: {SEED}\n  probabilistic_sampler/prop:\n    sampling_percentage: 25\n    mode: proportional\nexporters:\n  file/hash:\n    path: {}\n  file/prop:\n    path: {}\nservice:\n  pipelines:\n    traces/hash: {{receivers: [otlp], processors: [probabilistic_sampler], exporters: [file/hash]}}\n    traces/prop: {{receivers: [otlp], processors: [probabilistic_sampler/prop], exporters: [file/prop]}}\n{}",
        ports.otlp_receiver(),
        hash_out.display(),
        prop_out.display(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);

    let mut rng = Rng::new(2024);
    let trace_ids: Vec<Vec<u8>> = (0..TRACES).map(|_| rng.bytes(16)).collect();
    let client = reqwest::Client::new();
    for req in requests(&trace_ids) {
        let status = client
            .post(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "sampled-out spans are not refused");
    }

    let total = (TRACES * SPANS_PER_TRACE) as f64;
    let mut checked = 0;
    for (processor, policy, out, keeps) in [
        (
            "probabilistic_sampler",
            "trace_id_hash",
            hash_out,
            hash_seed_keeps as fn(&[u8]) -> bool,
        ),
        (
            "probabilistic_sampler/prop",
            "trace_id_w3c",
            prop_out,
            proportional_keeps as fn(&[u8]) -> bool,
        ),
    ] {
        let count = |sampled: &str| {
            gw.metric(
                METRIC,
                &[
                    ("processor", processor),
                    ("policy", policy),
                    ("sampled", sampled),
                ],
            )
        };
        // every decision is made (and counted) before the client's answer
        let (kept, dropped) = (count("true"), count("false"));
        assert_eq!(kept + dropped, total, "{processor}: decisions counted");
        let o = out.clone();
        tokio::task::spawn_blocking(move || {
            wait_until(
                "the kept spans in the file",
                Duration::from_secs(20),
                || count_items(&read_file_export(&o), Signal::Traces) as f64 == kept,
            )
        })
        .await
        .unwrap();

        let got = spans_by_trace(&out);
        let fraction = got.len() as f64 / TRACES as f64;
        assert!(
            (0.21..=0.29).contains(&fraction),
            "{processor}: kept {fraction} of the traces"
        );
        assert!(
            got.values().all(|spans| spans.len() == SPANS_PER_TRACE),
            "{processor}: a trace was split"
        );
        let want: HashSet<&Vec<u8>> = trace_ids.iter().filter(|id| keeps(id)).collect();
        let have: HashSet<&Vec<u8>> = got.keys().collect();
        assert_eq!(
            have, want,
            "{processor}: not the traces the algorithm selects"
        );
        for states in got.values() {
            for ts in states {
                if policy == "trace_id_hash" {
                    let rv = ts
                        .strip_prefix("ot=rv:")
                        .and_then(|r| r.strip_suffix(";th:c"))
                        .unwrap_or_else(|| panic!("{processor}: tracestate {ts:?}"));
                    assert!(rv.len() == 14 && rv.bytes().all(|b| b.is_ascii_hexdigit()));
                } else {
                    assert_eq!(ts, "ot=th:c", "{processor}");
                }
            }
        }
        checked += got.len();
    }
    assert!(checked > 0);
}
