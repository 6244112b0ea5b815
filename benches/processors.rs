//! Processor hot paths: batch merge + split (send_batch_size 8192, send_batch_max_size 10000)
//! and five attribute actions on a 512-span request; the resource processor on decoded
//! requests and on encoded ones (only the resources re-encoded); `attributes` (upsert + delete)
//! on encoded requests of each signal, on the wire against decode + edit + encode; OTTL
//! (`transform` with the OTel demo's statements, a `filter`) on the wire and decoded.
//!
//! `cargo bench --bench processors`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otelgw::data::split::{merge, split_front};
use otelgw::data::{RequestMeta, Signal, Telemetry};
use otelgw::processors::attributes::AttributesConfig;
use otelgw::processors::resource::ResourceConfig;
use otelgw::processors::{Processor, Rejections};
use otelgw::testdata;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    // 20 requests of 512 spans = 10240 spans: merge them, then cut pieces of at most 10000,
    // as the batch processor does when 8192 is reached.
    let reqs: Vec<Telemetry> = (0..20)
        .map(|i| Telemetry::Traces(testdata::traces(i, 1, 512)))
        .collect();
    g.throughput(Throughput::Elements(20 * 512));
    g.bench_function("merge_20x512_split_at_10000", |b| {
        b.iter_batched(
            || reqs.clone(),
            |reqs| {
                let mut it = reqs.into_iter();
                let mut pending = it.next().unwrap_or(Telemetry::Traces(Default::default()));
                let mut sent = 0;
                for r in it {
                    let _ = merge(&mut pending, r);
                    if pending.item_count() >= 8192 {
                        while pending.item_count() > 10_000 {
                            sent += split_front(&mut pending, 10_000).item_count();
                        }
                        sent += pending.item_count();
                        pending = Telemetry::Traces(Default::default());
                    }
                }
                sent + pending.item_count()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn attributes(c: &mut Criterion) {
    let mut g = c.benchmark_group("attributes");
    let req = Telemetry::Traces(testdata::traces(3, 1, 512));
    let meta = RequestMeta::default();
    let attrs: AttributesConfig = serde_norway::from_str(
        r#"actions:
  - {key: environment, value: production, action: upsert}
  - {key: url.full, action: hash}
  - {key: url.full, pattern: '^(?P<scheme>[a-z]+)://(?P<host>[^/]+)', action: extract}
  - {key: network.peer.port, action: convert, converted_type: string}
  - {key: cache.hit, action: delete}"#,
    )
    .unwrap_or_default();
    let p = attrs.build();
    g.throughput(Throughput::Elements(512));
    g.bench_function("5_actions_512_spans", |b| {
        b.iter_batched(
            || req.clone(),
            |mut t| {
                p.process(&mut t, &meta, &mut Rejections::default());
                t
            },
            BatchSize::SmallInput,
        )
    });
    let res: ResourceConfig = serde_norway::from_str(
        "attributes: [{key: environment, value: production, action: upsert}, {key: service.namespace, value: shop, action: upsert}]",
    )
    .unwrap_or_default();
    let rp = res.build();
    g.bench_function("resource_2_upserts_512_spans", |b| {
        b.iter_batched(
            || req.clone(),
            |mut t| {
                rp.process(&mut t, &meta, &mut Rejections::default());
                t
            },
            BatchSize::SmallInput,
        )
    });
    // The same edit on a request that arrived as bytes: decode + edit + encode (what a
    // pipeline with any item-reading processor pays) against editing only the resources in
    // the encoding (what a pipeline of resource-only processors pays).
    let bytes = req.encode_to_bytes();
    g.throughput(Throughput::Elements(512));
    g.bench_function("resource_2_upserts_512_spans_decode_edit_encode", |b| {
        b.iter(|| {
            let mut t = Telemetry::decode_proto(Signal::Traces, &bytes).unwrap_or(req.clone());
            rp.process(&mut t, &meta, &mut Rejections::default());
            t.encode_to_bytes()
        })
    });
    g.bench_function("resource_2_upserts_512_spans_wire_edit", |b| {
        b.iter(|| otelgw::wire::edit_resources(&bytes, |r| rp.edit_resource(r, &meta)))
    });
    g.finish();
}

/// The performance issue's reading pipeline: `attributes` with one upsert and one delete on
/// every item of an encoded request, three ways: decode + edit + encode (the path before the
/// wire editor), the edit on the wire (`wire::edit_items`), and a bare decode + encode (the
/// codec ceiling the wire edit has to beat).
fn attributes_wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("attributes_wire");
    let meta = RequestMeta::default();
    let attrs: AttributesConfig = serde_norway::from_str(
        "actions: [{key: deployment.environment, value: bench, action: upsert}, {key: http.route, action: delete}]",
    )
    .unwrap_or_default();
    let p = attrs.build();
    for (signal, req) in [
        (
            Signal::Traces,
            Telemetry::Traces(testdata::traces(3, 1, 512)),
        ),
        (Signal::Logs, Telemetry::Logs(testdata::logs(3, 1, 512))),
        (
            Signal::Metrics,
            Telemetry::Metrics(testdata::metrics(3, 1, 500)),
        ),
    ] {
        let bytes = req.encode_to_bytes();
        let name = format!("{signal:?}").to_lowercase();
        g.throughput(Throughput::Elements(req.item_count()));
        g.bench_function(format!("{name}_codec_ceiling"), |b| {
            b.iter(|| {
                Telemetry::decode_proto(signal, &bytes)
                    .map(|t| t.encode_to_bytes())
                    .ok()
            })
        });
        g.bench_function(format!("{name}_decode_edit_encode"), |b| {
            b.iter(|| {
                let mut t = Telemetry::decode_proto(signal, &bytes).unwrap_or(req.clone());
                p.process(&mut t, &meta, &mut Rejections::default());
                t.encode_to_bytes()
            })
        });
        g.bench_function(format!("{name}_wire_edit"), |b| {
            b.iter(|| otelgw::wire::edit_items(signal, &bytes, |item| p.edit_item(item, &meta)))
        });
    }
    g.finish();
}

/// OTTL on 512 encoded spans: the OTel demo's two `replace_*` statements on span names
/// (`transform`), and a filter condition on an attribute that drops ~10% (`filter`), each on
/// the wire and on the decoded request (decode + run + encode).
fn ottl(c: &mut Criterion) {
    use otelgw::processors::filter::FilterConfig;
    use otelgw::processors::transform::TransformConfig;
    use otelgw::telemetry::metrics::Registry;
    let mut g = c.benchmark_group("ottl");
    let meta = RequestMeta::default();
    let reg = Registry::default();
    let mut req = testdata::traces(3, 1, 512);
    for (i, s) in req.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        s.name = match i % 3 {
            0 => format!("GET /api/products?currencyCode=USD&i={i}"),
            1 => format!("GET /api/products/P{i}"),
            _ => "POST /api/cart".to_string(),
        };
    }
    let req = Telemetry::Traces(req);
    let bytes = req.encode_to_bytes();
    let transform: TransformConfig = serde_norway::from_str(
        r#"trace_statements:
  - context: span
    statements:
      - replace_pattern(name, "\?.*", "")
      - replace_match(name, "GET /api/products/*", "GET /api/products/{productId}")"#,
    )
    .unwrap_or_default();
    let filter: FilterConfig =
        serde_norway::from_str("traces: {span: ['attributes[\"network.peer.port\"] < 6554']}")
            .unwrap_or_default();
    let procs: [(&str, Box<dyn Processor>); 2] = [
        (
            "transform_demo",
            Box::new(transform.build("transform", Signal::Traces, &reg)),
        ),
        (
            "filter_10pct",
            Box::new(filter.build("filter", Signal::Traces, &reg)),
        ),
    ];
    g.throughput(Throughput::Elements(512));
    for (name, p) in &procs {
        g.bench_function(format!("{name}_512_spans_wire"), |b| {
            b.iter(|| {
                otelgw::wire::edit_items(Signal::Traces, &bytes, |item| p.edit_item(item, &meta))
            })
        });
        g.bench_function(format!("{name}_512_spans_decode_run_encode"), |b| {
            b.iter(|| {
                let mut t = Telemetry::decode_proto(Signal::Traces, &bytes).unwrap_or(req.clone());
                p.process(&mut t, &meta, &mut Rejections::default());
                t.encode_to_bytes()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, batch, attributes, attributes_wire, ottl);
criterion_main!(benches);
