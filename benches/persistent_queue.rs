//! Persistent sending queue: append + read + ack throughput and append latency, on the disk
//! under `target/` (this machine's real disk, not tmpfs), for each `fsync` mode.
//!
//! - `persistent_queue/throughput_64_appenders/<mode>`: 64 concurrent appenders (as 64 client
//!   requests in flight) and one consumer that reads and acks every record; one iteration = one
//!   1 KiB record appended, read back and acked. Shows group commit: with `always`, appends that
//!   wait together share one `fdatasync`.
//! - `persistent_queue/append_latency_1_appender/<mode>`: one appender, one record at a time;
//!   the time per iteration is the latency a request gains from the queue.
//!
//! `cargo bench --bench persistent_queue`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otelgw::data::Signal;
use otelgw::exporters::persistent_queue::{Fsync, Options, PersistentQueue, QueueMetrics};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORD: usize = 1024;
const APPENDERS: u64 = 64;

fn modes() -> [(&'static str, Fsync); 3] {
    [
        ("always", Fsync::Always),
        ("batch_200ms", Fsync::Batch(Duration::from_millis(200))),
        ("never", Fsync::Never),
    ]
}

fn open(fsync: Fsync) -> Option<(tempfile::TempDir, Arc<PersistentQueue>)> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).ok()?;
    let opts = Options {
        fsync,
        max_size: 0,
        segment_size: 8 << 20,
    };
    let (q, _) = PersistentQueue::open(dir.path(), opts, QueueMetrics::default()).ok()?;
    Some((dir, q))
}

/// Appends `n` records from `APPENDERS` tasks while one consumer reads and acks them all.
async fn run(q: &Arc<PersistentQueue>, n: u64) -> Duration {
    let body = Bytes::from(vec![7u8; RECORD]);
    let start = Instant::now();
    let consumer = {
        let q = q.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                match q.next().await {
                    Some(r) => q.ack(r.id),
                    None => return,
                }
            }
        })
    };
    let per = n.div_ceil(APPENDERS);
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|a| {
            let q = q.clone();
            let body = body.clone();
            let count = per.min(n.saturating_sub(a * per));
            tokio::spawn(async move {
                for _ in 0..count {
                    let _ = q.append(Signal::Traces, 1, body.clone()).await;
                }
            })
        })
        .collect();
    for a in appenders {
        let _ = a.await;
    }
    let _ = consumer.await;
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let mut g = c.benchmark_group("persistent_queue");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(RECORD as u64));
    for (name, fsync) in modes() {
        let Some((_dir, q)) = open(fsync) else {
            return;
        };
        g.bench_function(format!("throughput_64_appenders/{name}"), |b| {
            b.iter_custom(|iters| rt.block_on(run(&q, iters)))
        });
        q.close();
    }
    for (name, fsync) in modes() {
        let Some((_dir, q)) = open(fsync) else {
            return;
        };
        let body = Bytes::from(vec![7u8; RECORD]);
        g.bench_function(format!("append_latency_1_appender/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let _ = q.append(Signal::Traces, 1, body.clone()).await;
                    }
                    let spent = start.elapsed();
                    // Drain outside the timed part so the log does not grow without bound.
                    for _ in 0..iters {
                        if let Some(r) = q.next().await {
                            q.ack(r.id);
                        }
                    }
                    spent
                })
            })
        });
        q.close();
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
