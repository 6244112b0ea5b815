//! `loadbalancing`: what routing costs per item — a 512-span request split by trace id over a
//! ring of 4 backends (every span looked up), decoded and on the wire (the request as it came,
//! each part as spliced bytes), a 512-point metrics request split by stream,
//! and, for reference, a prost decode and encode of the same spans (the exporter reads decoded
//! items; each part is encoded again to be sent).
//!
//! `cargo bench --bench loadbalancing`

// a bench whose setup fails must stop loudly, like a test
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelgw::data::Telemetry;
use otelgw::exporters::loadbalancing::ring::Ring;
use otelgw::exporters::loadbalancing::split::{split, split_encoded_traces};
use otelgw::exporters::loadbalancing::RoutingKey;
use otelgw::testdata;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn loadbalancing(c: &mut Criterion) {
    let ring = Ring::new((0..4).map(|i| format!("gateway-{i}:4317")).collect());
    let mut traces = testdata::traces(11, 4, 128);
    for (i, s) in traces
        .resource_spans
        .iter_mut()
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans)
        .enumerate()
    {
        s.trace_id[..8].copy_from_slice(&(i as u64 / 8).to_be_bytes());
    }
    let bytes = traces.encode_to_vec();
    let metrics = testdata::metrics(3, 4, 128);
    let mut g = c.benchmark_group("loadbalancing");
    g.throughput(Throughput::Elements(512));
    g.bench_function("decode_encode_512_spans (reference)", |b| {
        b.iter(|| {
            ExportTraceServiceRequest::decode(bytes.as_slice())
                .unwrap()
                .encode_to_vec()
        })
    });
    let encoded = otelgw::data::Encoded {
        signal: otelgw::component::Signal::Traces,
        items: 512,
        bytes: bytes::Bytes::from(bytes.clone()),
    };
    g.bench_function("split_512_encoded_spans_by_trace_id_over_4 (wire)", |b| {
        b.iter(|| split_encoded_traces(&encoded, &ring).unwrap().len())
    });
    g.bench_function("split_512_spans_by_trace_id_over_4", |b| {
        b.iter_batched(
            || Telemetry::Traces(traces.clone()),
            |t| split(t, RoutingKey::TraceId, &[], &ring).len(),
            BatchSize::SmallInput,
        )
    });
    let points = Telemetry::Metrics(metrics.clone()).item_count();
    g.throughput(Throughput::Elements(points));
    g.bench_function("split_metrics_by_stream_over_4", |b| {
        b.iter_batched(
            || Telemetry::Metrics(metrics.clone()),
            |t| split(t, RoutingKey::StreamId, &[], &ring).len(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, loadbalancing);
criterion_main!(benches);
