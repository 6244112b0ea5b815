//! Prometheus-native paths, per sample: a scrape of a 100k-sample page (text 0.0.4: counters,
//! gauges and histograms with 4 labels) through parsing, shaping (target labels, limits) and
//! translation to OTLP; and remote write of the same metrics: translation through the store,
//! requests cut by size, protobuf encode + snappy.
//!
//! `cargo bench --bench prometheus_native` (allocations per sample:
//! `cargo bench --bench prometheus_native_allocs`; Prometheus' own scrape of the same page:
//! `benches/prometheus_scrape.sh`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "prometheus_native/page.rs"]
mod page;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn scrape(c: &mut Criterion) {
    let text = page::page();
    let fx = page::Fixture::new();
    let (samples, n) = fx.samples(&text);
    let mut g = c.benchmark_group("scrape_100k");
    g.throughput(Throughput::Elements(n as u64));
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.bench_function("parse", |b| {
        b.iter(|| page::parse(&text));
    });
    g.bench_function("parse_and_shape", |b| {
        b.iter(|| fx.samples(&text));
    });
    let mut state = page::state();
    let _ = page::translate(&mut state, samples.clone());
    g.bench_function("translate_warm", |b| {
        b.iter_batched(
            || samples.clone(),
            |s| page::translate(&mut state, s),
            criterion::BatchSize::LargeInput,
        );
    });
    g.bench_function("scrape_total_warm", |b| {
        b.iter(|| {
            let (s, _) = fx.samples(&text);
            page::translate(&mut state, s)
        });
    });
    g.finish();

    let rw = page::RemoteWrite::new();
    let rm = page::translate(&mut state, samples);
    let series = rw.points(&rm);
    let n_series: usize = series.iter().map(|p| p.series.len()).sum();
    let mut g = c.benchmark_group("remote_write_100k");
    g.throughput(Throughput::Elements(n_series as u64));
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.bench_function("translate_through_store", |b| b.iter(|| rw.points(&rm)));
    g.bench_function("cut_encode_snappy", |b| {
        b.iter_batched(
            || series.clone(),
            page::encode,
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
