//! The cardinality limiter's hot path (issue 5 targets: ≤ 60 ns per point on a hit, near-linear
//! scaling to 2 threads, ≤ 40 bytes per tracked series in exact mode).
//!
//! - `key`: hashing one point's identity (5 attributes), no allocation.
//! - `hit/{1,2}_threads`: admit on series already tracked, with 1M tracked series; with two
//!   threads each thread does the same number of lookups, so equal times mean linear scaling.
//! - `miss_admit`: admitting new series into a tracker with room.
//! - `miss_reject`: a new series when the metric is full (the flood case).
//! - `processor/…`: the whole processor on a 1000-point request (all hits), per point; the
//!   wire check on the same request encoded, beside decode + process + encode.
//! - memory per tracked series (exact and probabilistic) is printed before the benches run.
//!
//! `cargo bench --bench cardinality`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otelgw::cardinality::tracker::{Policy, Settings, Tracker, Verdict};
use otelgw::cardinality::{mix, series_key, Action, Mode};
use otelgw::data::{Encoded, RequestMeta, Signal, Telemetry};
use otelgw::processors::cardinality_limit::CardinalityLimitConfig;
use otelgw::processors::{Processor, Rejections};
use otelgw::telemetry::metrics::Registry;
use otelgw::testdata::{kv, s};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRACKED: u64 = 1_000_000;

fn tracker(mode: Mode, per_metric: u64) -> Tracker {
    Tracker::new(
        Settings {
            name: "bench".into(),
            mode,
            max_series: 2 * TRACKED,
            ttl: Duration::from_secs(600),
            value_limits: vec![],
            excluded_labels: vec![],
            policy: Box::new(move |_| Policy {
                limit: per_metric,
                action: Action::Drop,
                excluded: false,
            }),
        },
        &Registry::default(),
    )
}

fn filled(mode: Mode) -> Tracker {
    let t = tracker(mode, 0);
    let m = t.metric("m");
    for i in 0..TRACKED {
        t.admit(&m, mix(i), &[], 0);
    }
    t
}

fn attrs(i: u64) -> Vec<KeyValue> {
    vec![
        kv("http.route", s("/api/v1/orders/{id}")),
        kv("http.method", s("GET")),
        kv("http.status_code", s("200")),
        kv("region", s("eu-west-1")),
        kv("user_id", s(&format!("user-{i}"))),
    ]
}

fn memory_report() {
    for mode in [Mode::Exact, Mode::Probabilistic] {
        let t = filled(mode);
        eprintln!(
            "memory {mode:?}: {} tracked series, {:.1} bytes per series",
            TRACKED,
            t.memory_bytes() as f64 / TRACKED as f64
        );
    }
}

fn key(c: &mut Criterion) {
    memory_report();
    let a = attrs(7);
    let mut g = c.benchmark_group("cardinality");
    g.throughput(Throughput::Elements(1));
    g.bench_function("key_5_attributes", |b| {
        b.iter(|| series_key(std::hint::black_box(42), std::hint::black_box(&a), &[]))
    });
    g.finish();
}

fn hits(c: &mut Criterion) {
    let mut g = c.benchmark_group("cardinality");
    g.throughput(Throughput::Elements(1));
    for mode in [Mode::Exact, Mode::Probabilistic] {
        let t = Arc::new(filled(mode));
        for threads in [1u64, 2] {
            let name = format!("hit_{mode:?}_{threads}_threads").to_lowercase();
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let hs: Vec<_> = (0..threads)
                        .map(|th| {
                            let t = t.clone();
                            std::thread::spawn(move || {
                                let m = t.metric("m");
                                let mut ok = 0u64;
                                for i in 0..iters {
                                    // spread over the 1M tracked keys, different per thread
                                    let k = mix((i * 7919 + th * 500_000) % TRACKED);
                                    ok += (t.admit(&m, k, &[], 1) == Verdict::Admitted) as u64;
                                }
                                ok
                            })
                        })
                        .collect();
                    for h in hs {
                        assert_eq!(h.join().unwrap_or(0), iters);
                    }
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

fn misses(c: &mut Criterion) {
    let mut g = c.benchmark_group("cardinality");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("miss_admit_1000_new_series", |b| {
        let mut next = 0u64;
        b.iter_batched(
            || tracker(Mode::Exact, 0),
            |t| {
                let m = t.metric("m");
                for _ in 0..1000 {
                    next += 1;
                    t.admit(&m, mix(next), &[], 0);
                }
                t
            },
            BatchSize::SmallInput,
        )
    });
    let full = tracker(Mode::Exact, 10);
    let m = full.metric("m");
    for i in 0..10 {
        full.admit(&m, mix(i), &[], 0);
    }
    let a = attrs(1);
    g.throughput(Throughput::Elements(1));
    let mut i = 100u64;
    g.bench_function("miss_reject_full_metric", |b| {
        b.iter(|| {
            i += 1;
            full.admit(&m, mix(i), &a, 0)
        })
    });
    g.finish();
}

fn request(points: u64, offset: u64) -> Telemetry {
    let mut r = otelgw::testdata::metrics(1, 1, 1);
    if let Some(m) = r.resource_metrics[0].scope_metrics[0].metrics.first_mut() {
        use opentelemetry_proto::tonic::metrics::v1::{metric::Data, NumberDataPoint, Sum};
        m.name = "orders".into();
        m.data = Some(Data::Sum(Sum {
            data_points: (0..points)
                .map(|i| NumberDataPoint {
                    attributes: attrs(i + offset),
                    time_unix_nano: 1,
                    value: Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(1),
                    ),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 1,
            is_monotonic: true,
        }));
    }
    r.resource_metrics[0].scope_metrics[0].metrics.truncate(1);
    Telemetry::Metrics(r)
}

fn processor(c: &mut Criterion) {
    let mut g = c.benchmark_group("cardinality");
    g.throughput(Throughput::Elements(1000));
    let cfg: CardinalityLimitConfig =
        serde_norway::from_str("max_series_per_metric: 2000").unwrap_or_default();
    let p = cfg.build("bench", &Registry::default());
    let meta = RequestMeta::default();
    let hits = request(1000, 0);
    // warm: admit the 1000 series
    let mut warm = hits.clone();
    p.process(&mut warm, &meta, &mut Rejections::default());
    g.bench_function("processor_1000_points_all_hits", |b| {
        b.iter_batched(
            || hits.clone(),
            |mut r| {
                p.process(&mut r, &meta, &mut Rejections::default());
                r
            },
            BatchSize::SmallInput,
        )
    });
    // the same request encoded, as a pipeline that forwards OTLP holds it: the wire check
    // hashes each point's series from the bytes and passes the request uncopied
    let enc = Encoded {
        signal: Signal::Metrics,
        items: hits.item_count(),
        bytes: hits.encode_to_bytes(),
    };
    assert!(
        p.edit_encoded(&enc, &meta).is_some(),
        "every series is known"
    );
    g.bench_function("wire_check_1000_points_all_hits", |b| {
        b.iter(|| p.edit_encoded(&enc, &meta))
    });
    // what the wire check saves: decode, process, encode again
    g.bench_function("decode_process_encode_1000_points_all_hits", |b| {
        b.iter(|| {
            let mut r =
                Telemetry::decode_proto(Signal::Metrics, &enc.bytes).unwrap_or(hits.clone());
            p.process(&mut r, &meta, &mut Rejections::default());
            r.encode_to_bytes()
        })
    });
    g.bench_function("clone_only_1000_points_baseline", |b| {
        b.iter_batched(|| hits.clone(), |r| r, BatchSize::SmallInput)
    });
    // a flood: 1000 new series per request against a full metric, folded into overflow
    let mut offset = 10_000u64;
    g.bench_function("processor_1000_points_all_overflow", |b| {
        b.iter_batched(
            || {
                offset += 1000;
                request(1000, offset)
            },
            |mut r| {
                p.process(&mut r, &meta, &mut Rejections::default());
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, key, hits, misses, processor);
criterion_main!(benches);
