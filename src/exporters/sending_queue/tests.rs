//! The sending queue's unit tests: capacity, full-policies, retries, persistent delivery.

use super::*;
use crate::component::units::{ByteSize, Duration as CfgDuration};
use crate::data::{RequestMeta, Telemetry};
use crate::exporters::retry::ExportError;
use crate::exporters::ExportOutcome;
use crate::extensions::file_storage::FsyncMode;
use futures_util::future::BoxFuture;
use std::sync::Mutex;

/// Records the first log body of every batch it accepts; refuses (retryable) while `down`.
#[derive(Default)]
struct Fake {
    down: AtomicBool,
    got: Mutex<Vec<String>>,
}

impl Exporter for Fake {
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(ExportError::retryable("unavailable", "down"));
            }
            if let Telemetry::Logs(r) = batch.data() {
                for rl in &r.resource_logs {
                    for sl in &rl.scope_logs {
                        for l in &sl.log_records {
                            if let Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) =
                                l.body.as_ref().and_then(|b| b.value.as_ref())
                            {
                                self.got.lock().unwrap().push(s.clone());
                            }
                        }
                    }
                }
            }
            Ok(ExportOutcome::default())
        })
    }
}

fn log_batch(id: &str, records: usize) -> Outgoing {
    let mut req = crate::testdata::logs(1, 1, records);
    for l in &mut req.resource_logs[0].scope_logs[0].log_records {
        l.body = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(crate::testdata::s(id)),
        });
    }
    Outgoing::new(Telemetry::Logs(req), Arc::new(RequestMeta::default()))
}

fn storage(dir: &std::path::Path, max: u64) -> FileStorageConfig {
    FileStorageConfig {
        directory: dir.display().to_string(),
        fsync: FsyncMode::Always,
        max_size: ByteSize(max),
        ..Default::default()
    }
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_interval: CfgDuration::from_millis(10),
        max_interval: CfgDuration::from_millis(20),
        max_elapsed_time: CfgDuration::from_secs(0),
        ..Default::default()
    }
}

async fn wait_for(f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5s");
}

#[tokio::test]
async fn persistent_queue_keeps_data_across_a_stop_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let fs = storage(dir.path(), 0);
    let q = QueueConfig {
        num_consumers: 3,
        ..Default::default()
    };
    let reg = Registry::new();
    let down = Arc::new(Fake::default());
    down.down.store(true, Ordering::SeqCst);
    let r = RunningExporter::start("otlp/x", down.clone(), &q, fast_retry(), &reg, Some(&fs))
        .await
        .unwrap();
    for i in 0..20 {
        r.handle
            .consume(log_batch(&format!("id-{i}"), 1))
            .await
            .unwrap();
    }
    // The backend is down: retries go on (max_elapsed_time 0) until the stop.
    wait_for(|| reg.value(names::EXPORTER_RETRIES, &[("exporter", "otlp/x")]) > Some(3)).await;
    r.drain(Instant::now() + Duration::from_secs(5)).await;
    assert!(down.got.lock().unwrap().is_empty());
    let failed = names::exporter_send_failed(Signal::Logs);
    assert_eq!(reg.value(&failed, &[("exporter", "otlp/x")]), Some(0));

    // Next start, the backend is up: everything arrives once, then a clean stop.
    let up = Arc::new(Fake::default());
    let reg = Registry::new();
    let r = RunningExporter::start("otlp/x", up.clone(), &q, fast_retry(), &reg, Some(&fs))
        .await
        .unwrap();
    let l = [("exporter", "otlp/x")];
    assert_eq!(reg.value(names::PERSISTENT_QUEUE_RECOVERED, &l), Some(20));
    r.handle.consume(log_batch("id-new", 1)).await.unwrap();
    wait_for(|| up.got.lock().unwrap().len() == 21).await;
    r.drain(Instant::now() + Duration::from_secs(5)).await;
    let mut got = up.got.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("id-{i}")).collect();
    want.push("id-new".into());
    want.sort();
    assert_eq!(got, want);
    assert_eq!(reg.value(names::PERSISTENT_QUEUE_DISK_BYTES, &l), Some(0));

    // A third start finds nothing to send again.
    let again = Arc::new(Fake::default());
    let reg = Registry::new();
    let r = RunningExporter::start("otlp/x", again.clone(), &q, fast_retry(), &reg, Some(&fs))
        .await
        .unwrap();
    assert_eq!(reg.value(names::PERSISTENT_QUEUE_RECOVERED, &l), Some(0));
    r.drain(Instant::now() + Duration::from_secs(5)).await;
    assert!(again.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_disk_refuses_new_batches_and_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let fs = storage(dir.path(), 4096);
    let reg = Registry::new();
    let down = Arc::new(Fake::default());
    down.down.store(true, Ordering::SeqCst);
    let r = RunningExporter::start(
        "loki",
        down.clone(),
        &QueueConfig::default(),
        fast_retry(),
        &reg,
        Some(&fs),
    )
    .await
    .unwrap();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..100 {
        let id = format!("id-{i}");
        match r.handle.consume(log_batch(&id, 2)).await {
            Ok(()) => accepted.push(id),
            Err(ConsumeError::Refused { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0 && !accepted.is_empty(), "{refused}");
    let enq = names::exporter_enqueue_failed(Signal::Logs);
    assert_eq!(reg.value(&enq, &[("exporter", "loki")]), Some(refused * 2));
    down.down.store(false, Ordering::SeqCst);
    wait_for(|| down.got.lock().unwrap().len() == accepted.len() * 2).await;
    r.drain(Instant::now() + Duration::from_secs(5)).await;
    let mut got = down.got.lock().unwrap().clone();
    got.sort();
    got.dedup();
    accepted.sort();
    assert_eq!(got, accepted);
}

#[tokio::test]
async fn items_sizer_bounds_the_memory_queue_in_items() {
    let reg = Registry::new();
    let down = Arc::new(Fake::default());
    down.down.store(true, Ordering::SeqCst);
    let q = QueueConfig {
        num_consumers: 1,
        queue_size: 10,
        sizer: Sizer::Items,
        block_on_overflow: false,
        ..Default::default()
    };
    let r = RunningExporter::start("otlp/m", down.clone(), &q, fast_retry(), &reg, None)
        .await
        .unwrap();
    // The consumer takes the first batch (and retries it); the queue then holds 10 items.
    r.handle.consume(log_batch("a", 4)).await.unwrap();
    let l = [("exporter", "otlp/m")];
    wait_for(|| reg.value(names::EXPORTER_QUEUE_SIZE, &l) == Some(0)).await;
    r.handle.consume(log_batch("b", 6)).await.unwrap();
    r.handle.consume(log_batch("c", 4)).await.unwrap();
    assert_eq!(reg.value(names::EXPORTER_QUEUE_SIZE, &l), Some(10));
    assert_eq!(reg.value(names::EXPORTER_QUEUE_CAPACITY, &l), Some(10));
    assert!(matches!(
        r.handle.consume(log_batch("d", 1)).await,
        Err(ConsumeError::Refused { .. })
    ));
    down.down.store(false, Ordering::SeqCst);
    wait_for(|| down.got.lock().unwrap().len() == 14).await;
    // A batch larger than the whole capacity still goes through an empty queue.
    r.handle.consume(log_batch("e", 25)).await.unwrap();
    wait_for(|| down.got.lock().unwrap().len() == 39).await;
    r.drain(Instant::now() + Duration::from_secs(5)).await;
}
