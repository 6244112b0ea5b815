//! OTLP decode and encode of realistic requests (spans with 8 attributes; ~300-byte log lines;
//! every metric kind), the cost floor of any gateway that decodes everything.
//!
//! `cargo bench --bench codec`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use otelgw::data::{Signal, Telemetry};
use otelgw::testdata;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn traces(c: &mut Criterion) {
    let mut g = c.benchmark_group("otlp_traces");
    for spans in [100usize, 512] {
        let req = testdata::traces(42, 1, spans);
        let bytes = req.encode_to_vec();
        g.throughput(Throughput::Elements(spans as u64));
        g.bench_with_input(BenchmarkId::new("decode", spans), &bytes, |b, bytes| {
            b.iter(|| Telemetry::decode_proto(Signal::Traces, bytes).map(|t| t.item_count()))
        });
        let t = Telemetry::Traces(req.clone());
        g.bench_with_input(BenchmarkId::new("encode", spans), &t, |b, t| {
            b.iter(|| t.encode_to_bytes().len())
        });
        // prost's own Message::encode, for comparison with otelgw's one-pass envelope encoder
        g.bench_with_input(BenchmarkId::new("encode_prost", spans), &req, |b, r| {
            b.iter(|| r.encode_to_vec().len())
        });
        g.bench_with_input(
            BenchmarkId::new("decode_encode", spans),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    Telemetry::decode_proto(Signal::Traces, bytes)
                        .map(|t| t.encode_to_bytes().len())
                        .unwrap_or(0)
                })
            },
        );
        let json = serde_json::to_vec(&req).unwrap_or_default();
        g.bench_with_input(BenchmarkId::new("decode_json", spans), &json, |b, json| {
            b.iter(|| Telemetry::decode_json(Signal::Traces, json).map(|t| t.item_count()))
        });
    }
    g.finish();
}

fn logs_and_metrics(c: &mut Criterion) {
    let mut g = c.benchmark_group("otlp_logs_metrics");
    let logs = testdata::logs(7, 1, 512).encode_to_vec();
    g.throughput(Throughput::Elements(512));
    g.bench_function("logs_decode_512", |b| {
        b.iter(|| Telemetry::decode_proto(Signal::Logs, &logs).map(|t| t.item_count()))
    });
    let metrics_req = testdata::metrics(7, 1, 100);
    let metrics = metrics_req.encode_to_vec();
    g.throughput(Throughput::Elements(500));
    g.bench_function("metrics_decode_500_points", |b| {
        b.iter(|| Telemetry::decode_proto(Signal::Metrics, &metrics).map(|t| t.item_count()))
    });
    g.finish();
}

criterion_group!(benches, traces, logs_and_metrics);
criterion_main!(benches);
