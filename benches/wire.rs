//! `wire::scan` (validate and count without decoding) against prost's decode of the same
//! request: 512 spans, 512 log records, 500 metric data points.
//!
//! `cargo bench --bench wire`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelgw::data::Signal;
use otelgw::{testdata, wire};
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn scan_vs_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");

    let traces = testdata::traces(42, 1, 512).encode_to_vec();
    g.throughput(Throughput::Elements(512));
    g.bench_function("traces_scan_512", |b| {
        b.iter(|| wire::scan(Signal::Traces, black_box(&traces)))
    });
    g.bench_function("traces_decode_512", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&traces[..])).is_ok())
    });

    let logs = testdata::logs(7, 1, 512).encode_to_vec();
    g.bench_function("logs_scan_512", |b| {
        b.iter(|| wire::scan(Signal::Logs, black_box(&logs)))
    });
    g.bench_function("logs_decode_512", |b| {
        b.iter(|| ExportLogsServiceRequest::decode(black_box(&logs[..])).is_ok())
    });

    let metrics = testdata::metrics(7, 1, 100).encode_to_vec();
    g.throughput(Throughput::Elements(500));
    g.bench_function("metrics_scan_500_points", |b| {
        b.iter(|| wire::scan(Signal::Metrics, black_box(&metrics)))
    });
    g.bench_function("metrics_decode_500_points", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(black_box(&metrics[..])).is_ok())
    });
    g.finish();
}

criterion_group!(benches, scan_vs_decode);
criterion_main!(benches);
