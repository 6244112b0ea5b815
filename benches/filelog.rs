//! `filelog`: records per second on one core, from a file on disk (page cache) to the
//! `ExportLogsServiceRequest`s the pipelines receive — discovery, fingerprint, read, split,
//! file attributes, operators, OTLP records — for plain lines and for docker JSON lines through
//! the `container` + `json_parser` operators. Throughput is in records (`elem/s`); divide the
//! file size by the time for bytes/s.
//!
//! `cargo bench --bench filelog`

// a bench whose setup fails must stop loudly, like a test
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otelgw::receivers::filelog::run::Build;
use otelgw::receivers::filelog::tail::{Options, Tailer};
use otelgw::receivers::filelog::FileLogConfig;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES: usize = 100_000;

/// Reads every file the config matches once, as the receiver does: records produced.
fn read_all(cfg: &FileLogConfig) -> usize {
    let mut tailer = Tailer::new(Options::new(cfg).unwrap(), vec![]);
    let mut build = Build::new(cfg).unwrap();
    tailer.begin_poll();
    let mut records = 0;
    let mut bytes = 0;
    while let Some(batch) = tailer.next_batch() {
        if let Some(req) = build.request(&batch, 1_700_000_000_000_000_000) {
            records += req
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum::<usize>();
            bytes += req.encoded_len();
        }
        tailer.commit(&batch);
    }
    assert!(bytes > 0);
    records
}

fn filelog(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(plain.join("app.log")).unwrap());
    for i in 0..LINES {
        writeln!(
            f,
            "2024-05-01T10:00:00.{:03}Z INFO request {i} served path=/api/v1/orders/{} status=200 duration_ms=12",
            i % 1000,
            i % 97
        )
        .unwrap();
    }
    drop(f);
    let pod = dir
        .path()
        .join("pods/shop_web-7d9c_0123456789abcdef0123456789abcdef/web");
    std::fs::create_dir_all(&pod).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(pod.join("0.log")).unwrap());
    for i in 0..LINES {
        let inner = format!(
            r#"{{\"level\":\"info\",\"msg\":\"request {i} served\",\"path\":\"/api/v1/orders/{}\",\"status\":200}}\n"#,
            i % 97
        );
        writeln!(
            f,
            r#"{{"log":"{inner}","stream":"stdout","time":"2024-05-01T10:00:00.{:09}Z"}}"#,
            i
        )
        .unwrap();
    }
    drop(f);
    let plain_cfg: FileLogConfig = serde_norway::from_str(&format!(
        "{{include: ['{}/*.log'], start_at: beginning}}",
        plain.display()
    ))
    .unwrap();
    let container_cfg: FileLogConfig = serde_norway::from_str(&format!(
        "{{include: ['{}/*.log'], start_at: beginning, include_file_path: true, \
          operators: [{{type: container, format: docker}}, {{type: json_parser, parse_from: body, parse_to: attributes}}]}}",
        pod.display()
    ))
    .unwrap();
    assert_eq!(read_all(&plain_cfg), LINES);
    assert_eq!(read_all(&container_cfg), LINES);

    let mut g = c.benchmark_group("filelog");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("plain_lines", |b| b.iter(|| read_all(&plain_cfg)));
    g.bench_function("docker_json_container_json_parser", |b| {
        b.iter(|| read_all(&container_cfg))
    });
    g.finish();
}

criterion_group!(benches, filelog);
criterion_main!(benches);
