//! `spanmetrics`: what aggregating a span costs against what decoding it costs. A 512-span
//! request (the load bench's shape, 8 services' worth of names, kinds and statuses) is added to
//! the aggregator (calls + explicit-bucket duration histogram, default dimensions, and with two
//! extra dimensions), next to a prost decode of the same request's bytes; and one flush of the
//! resulting series.
//!
//! `cargo bench --bench spanmetrics`

// a bench whose setup fails must stop loudly, like a test
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelgw::connectors::spanmetrics::{Aggregator, SpanMetricsConfig};
use otelgw::testdata;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn spanmetrics(c: &mut Criterion) {
    let req = testdata::traces(7, 1, 512);
    let bytes = req.encode_to_vec();
    let plain = SpanMetricsConfig::default();
    let dims: SpanMetricsConfig = serde_norway::from_str(
        "{dimensions: [{name: http.method, default: GET}, {name: http.status_code}]}",
    )
    .unwrap();
    let mut g = c.benchmark_group("spanmetrics");
    g.throughput(Throughput::Elements(512));
    g.bench_function("decode_512_spans (reference)", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap())
    });
    let agg = Aggregator::new(&plain);
    g.bench_function("aggregate_512_spans", |b| {
        b.iter(|| agg.add_at(&req, 1_700_000_000_000_000_000))
    });
    let agg_dims = Aggregator::new(&dims);
    g.bench_function("aggregate_512_spans_2_dimensions", |b| {
        b.iter(|| agg_dims.add_at(&req, 1_700_000_000_000_000_000))
    });
    g.throughput(Throughput::Elements(agg.series() as u64));
    g.bench_function("flush_all_series", |b| {
        b.iter(|| {
            agg.flush(1_700_000_000_000_000_000)
                .map(|m| m.encoded_len())
        })
    });
    g.finish();
}

criterion_group!(benches, spanmetrics);
criterion_main!(benches);
