//! Prometheus exporter: ingest of 100k data points into the store, and rendering a scrape of
//! 100k and 1M series (text, with and without gzip). Also prints the store's memory per series
//! (RSS growth over 1M series, allocator included), also when no two families share a label set.
//!
//! `cargo bench --bench prometheus`

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otelgw::exporters::prometheus::render::{render, Format};
use otelgw::exporters::prometheus::store::{Options, Store};
use otelgw::telemetry::metrics::Registry;
use otelgw::testdata::{kv, s};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `n` counter series: 100 metrics × n/100 label combinations, 5 labels each. The metrics
/// share their label sets (as an instrumentation's metrics usually do) unless `unique`.
fn request(n: usize, time: u64) -> ExportMetricsServiceRequest {
    request_with(n, time, false)
}

fn request_with(n: usize, time: u64, unique: bool) -> ExportMetricsServiceRequest {
    let per = (n / 100).max(1);
    let metrics = (0..100)
        .map(|m| Metric {
            name: format!("app.requests.{m}"),
            unit: "{request}".into(),
            data: Some(Data::Sum(Sum {
                data_points: (0..per)
                    .map(|i| NumberDataPoint {
                        attributes: vec![
                            kv("http.route", s(&format!("/api/v1/r{}", i % 50))),
                            kv("http.method", s("GET")),
                            kv("status", Value::IntValue(200 + (i % 5) as i64)),
                            kv("pod", s(&format!("pod-{}", i / 250))),
                            kv(
                                "series",
                                Value::IntValue(if unique { m * per + i } else { i } as i64),
                            ),
                        ],
                        start_time_unix_nano: 1,
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsInt(i as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("bench")),
                    kv("service.instance.id", s("i-1")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn store() -> Store {
    Store::new(
        Options {
            namespace: String::new(),
            const_labels: Default::default(),
            add_suffixes: true,
            resource_to_labels: false,
            max_series: 0,
            expiration: Duration::from_secs(300),
        },
        &Registry::new(),
        "bench",
    )
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("prometheus");
    g.sample_size(10);
    let req = request(100_000, 2);
    let st = store();
    st.ingest(&request(100_000, 1));
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("ingest_100k_points_existing_series", |b| {
        b.iter(|| st.ingest(&req))
    });
    // no label set shared between metrics: every point renders its own labels
    let unique = request_with(100_000, 2, true);
    let st_unique = store();
    st_unique.ingest(&request_with(100_000, 1, true));
    g.bench_function(
        "ingest_100k_points_existing_series_unique_label_sets",
        |b| b.iter(|| st_unique.ingest(&unique)),
    );
    g.bench_function("render_text_100k_series", |b| {
        b.iter(|| render(&st, Format::Text, false).len())
    });
    g.bench_function("render_text_gzip_100k_series", |b| {
        b.iter(|| {
            let text = render(&st, Format::Text, false);
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(text.as_bytes());
            e.finish().map(|v| v.len()).unwrap_or(0)
        })
    });

    // the request is built (and its pages touched) before the baseline, so the growth is the
    // store's own plus whatever ingest leaves behind in the allocator
    let big_req = request(1_000_000, 1);
    let before = rss();
    let big = store();
    big.ingest(&big_req);
    let per_series = (rss().saturating_sub(before)) as f64 / big.series_count() as f64;
    eprintln!(
        "store memory: {:.0} bytes per series ({} series, RSS growth)",
        per_series,
        big.series_count()
    );
    drop(big_req);

    // the worst case for shared label sets: no two families have one in common
    let unique_req = request_with(1_000_000, 1, true);
    let before = rss();
    let unique = store();
    unique.ingest(&unique_req);
    let per_series = (rss().saturating_sub(before)) as f64 / unique.series_count() as f64;
    eprintln!(
        "store memory, no label set shared between families: {:.0} bytes per series",
        per_series
    );
    drop(unique);
    drop(unique_req);

    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("render_text_1m_series", |b| {
        b.iter(|| render(&big, Format::Text, false).len())
    });
    g.finish();
}

criterion_group!(prom, benches);
criterion_main!(prom);
