//! Loki exporter: building, encoding and snappy-compressing a push request from 512 log records
//! (~300-byte lines, 50 streams).
//!
//! `cargo bench --bench loki`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otelgw::exporters::loki::{LokiConfig, LokiExporter};
use otelgw::telemetry::metrics::Registry;
use otelgw::testdata::{self, kv, s};
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    // 52 streams: 13 pods × 4 severity levels
    let mut req = testdata::logs(1, 13, 40);
    for (i, rl) in req.resource_logs.iter_mut().enumerate() {
        if let Some(r) = rl.resource.as_mut() {
            r.attributes
                .push(kv("k8s.pod.name", s(&format!("pod-{i}"))));
        }
    }
    let cfg = LokiConfig {
        endpoint: "http://127.0.0.1:3100/loki/api/v1/push".into(),
        ..Default::default()
    };
    let Ok(ex) = LokiExporter::new("loki", &cfg, &Registry::new(), None) else {
        return;
    };
    let (pushes, _) = ex.build(&req);
    let streams: usize = pushes.iter().map(|(_, p)| p.streams.len()).sum();
    eprintln!("{} records in {streams} streams", 520);
    let mut g = c.benchmark_group("loki");
    g.throughput(Throughput::Elements(520));
    g.bench_function("build_encode_snappy_520_records", |b| {
        b.iter(|| {
            let (pushes, _) = ex.build(&req);
            pushes
                .iter()
                .map(|(_, p)| {
                    snap::raw::Encoder::new()
                        .compress_vec(&p.encode_to_vec())
                        .map(|v| v.len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(loki, bench);
criterion_main!(loki);
