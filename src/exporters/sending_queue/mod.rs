//! The machinery around every exporter: queue → consumers → retry → export, with counts.
//!
//! Pipelines hand batches to an [`ExporterHandle`] (cheap to clone; one per exporter instance,
//! shared by every pipeline that names it: fan-in). Three queue kinds:
//! - **in memory** (`sending_queue.enabled`, no `storage`): `consume` enqueues and returns;
//!   `num_consumers` tasks drain the queue.
//! - **persistent** (`sending_queue.storage: file_storage/<name>`): `consume` appends the
//!   batch's protobuf encoding to a write-ahead log ([`super::persistent_queue`]) and returns
//!   only once it is as durable as the extension's `fsync` mode promises, so a receiver's
//!   success reply means "on disk". Consumers read records back, export them, and ack them
//!   (removing them) once the backend accepted them or they failed for good. What is on disk at
//!   start is delivered first. Request metadata (headers) is not persisted.
//! - **none** (`enabled: false`): `consume` exports inline, retries included, so the client waits
//!   for the backend.
//!
//! Capacity: `queue_size` in the `sizer`'s unit (requests, items, or encoded bytes). In memory it
//! counts batches waiting for a consumer; persistent, every record not yet acked (recovered ones
//! included). A full queue either blocks the caller up to `block_timeout` (`block_on_overflow:
//! true`) or refuses at once (`false`); a refusal carries a retry hint and counts as
//! enqueue-failed. A persistent queue at `max_size` on disk refuses the same way and never drops
//! what it holds.
//!
//! Every item handed in ends in exactly one counter: `otelcol_exporter_sent_*`,
//! `otelcol_exporter_send_failed_*` (permanent error, retries exhausted, peer's partial
//! rejection), `otelcol_exporter_enqueue_failed_*` (queue full, disk full), or
//! `otelgw_dropped_items{reason="shutdown_timeout"}` (still in an in-memory queue when the
//! drain deadline hit). Items in a persistent queue at shutdown are not counted: they are not
//! lost, they are delivered after the next start.
//!
//! Retries follow `retry_on_failure` in both queue kinds: a record whose retries run out
//! (`max_elapsed_time`; `0` retries forever) counts as send-failed and is removed, as in the
//! Collector. At shutdown a persistent queue stops retrying at once (the record stays on disk);
//! an export attempt already on the wire may finish until the drain deadline and is then acked,
//! so a clean stop sends nothing twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::persistent_queue::{PersistentQueue, QueueError, QueueMetrics};
use super::retry::{Backoff, ExportError, RetryConfig};
use super::{BuildError, Exporter, FullPolicy, QueueConfig, Sizer};
use crate::consumer::ConsumeError;
use crate::data::{Outgoing, RequestMeta, Signal, Telemetry};
use crate::extensions::file_storage::FileStorageConfig;
use crate::telemetry::metrics::{names, Counter, Gauge, Registry};

/// How long a refused client is asked to wait before retrying when a queue is full.
pub const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

struct PerSignal {
    sent: Counter,
    send_failed: Counter,
    enqueue_failed: Counter,
    dropped_shutdown: Counter,
}

struct Metrics {
    signals: [PerSignal; 3],
    queue_size: Gauge,
    retries: Counter,
}

fn idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl Metrics {
    fn new(reg: &Registry, id: &str, capacity: u64) -> Metrics {
        let per = |s: Signal| {
            let l = [("exporter", id)];
            PerSignal {
                sent: reg.counter(&names::exporter_sent(s), "Items successfully sent to the destination.", &l),
                send_failed: reg.counter(
                    &names::exporter_send_failed(s),
                    "Items that failed to be sent (permanent error, retries exhausted, or rejected by the peer).",
                    &l,
                ),
                enqueue_failed: reg.counter(
                    &names::exporter_enqueue_failed(s),
                    "Items refused because the sending queue was full.",
                    &l,
                ),
                dropped_shutdown: reg.counter(
                    names::DROPPED_ITEMS,
                    "Items dropped by otelgw, by component and reason.",
                    &[("component", id), ("reason", "shutdown_timeout"), ("signal", s.as_str())],
                ),
            }
        };
        let l = [("exporter", id)];
        reg.gauge(
            names::EXPORTER_QUEUE_CAPACITY,
            "Capacity of the sending queue, in the unit of its sizer (requests, items or bytes).",
            &l,
        )
        .set(capacity as i64);
        Metrics {
            signals: [per(Signal::Traces), per(Signal::Metrics), per(Signal::Logs)],
            queue_size: reg.gauge(
                names::EXPORTER_QUEUE_SIZE,
                "Size of the sending queue, in the unit of its sizer (persistent: not yet acked).",
                &l,
            ),
            retries: reg.counter(
                names::EXPORTER_RETRIES,
                "Export attempts that were retried.",
                &l,
            ),
        }
    }
    fn of(&self, s: Signal) -> &PerSignal {
        &self.signals[idx(s)]
    }
}

/// Room in a queue, counted in the sizer's unit. A batch bigger than the whole capacity is let
/// in when the queue is empty, so it is never refused forever.
struct Capacity {
    used: AtomicU64,
    cap: u64,
    freed: Notify,
    closed: AtomicBool,
    gauge: Gauge,
}

enum TakeError {
    Closed,
    Full,
}

impl Capacity {
    fn try_take(&self, n: u64) -> Result<(), TakeError> {
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(TakeError::Closed);
            }
            if cur != 0 && cur + n > self.cap {
                return Err(TakeError::Full);
            }
            match self
                .used
                .compare_exchange(cur, cur + n, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.gauge.set((cur + n) as i64);
                    return Ok(());
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Waits for room up to `wait` (`None`: without limit).
    async fn take(&self, n: u64, wait: Option<Duration>) -> Result<(), TakeError> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.try_take(n) {
                Err(TakeError::Full) => {}
                other => return other,
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, freed).await.is_err() {
                        return Err(TakeError::Full);
                    }
                }
                None => freed.await,
            }
        }
    }

    /// Counts units that are already queued (records recovered from disk).
    fn add(&self, n: u64) {
        let now = self.used.fetch_add(n, Ordering::AcqRel) + n;
        self.gauge.set(now as i64);
    }

    fn release(&self, n: u64) {
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            let next = cur.saturating_sub(n);
            match self
                .used
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.gauge.set(next as i64);
                    break;
                }
                Err(now) => cur = now,
            }
        }
        self.freed.notify_waiters();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.freed.notify_waiters();
    }
}

enum Queue {
    /// `sending_queue.enabled: false`: export inline.
    Inline,
    /// Unbounded channel; `Capacity` bounds it. Each batch travels with its size in units.
    Memory(
        async_channel::Sender<(Outgoing, u64)>,
        async_channel::Receiver<(Outgoing, u64)>,
    ),
    Persistent(Arc<PersistentQueue>),
}

struct Shared {
    id: String,
    exporter: Arc<dyn Exporter>,
    retry: RetryConfig,
    policy: FullPolicy,
    /// How long `block` waits for room before refusing (zero: no limit).
    block_timeout: Duration,
    sizer: Sizer,
    queue: Queue,
    capacity: Capacity,
    metrics: Metrics,
    /// Items currently being exported by consumers (for shutdown accounting).
    in_flight: [AtomicU64; 3],
    /// Set at shutdown: persistent-queue consumers stop retrying and leave records on disk.
    stop: watch::Sender<bool>,
}

/// The handle pipelines use to reach one exporter.
#[derive(Clone)]
pub struct ExporterHandle {
    shared: Arc<Shared>,
}

/// A started exporter: the handle plus its consumer tasks.
pub struct RunningExporter {
    pub handle: ExporterHandle,
    consumers: Vec<JoinHandle<()>>,
}

/// The size of a batch in the sizer's unit (at least 1).
fn units(sizer: Sizer, items: u64, bytes: usize) -> u64 {
    match sizer {
        Sizer::Requests => 1,
        Sizer::Items => items.max(1),
        Sizer::Bytes => (bytes as u64).max(1),
    }
}

impl RunningExporter {
    /// Starts consumers for `exporter`; with `storage`, opens (and recovers) the persistent
    /// queue in the extension's directory first.
    pub async fn start(
        id: &str,
        exporter: Arc<dyn Exporter>,
        queue: &QueueConfig,
        retry: RetryConfig,
        reg: &Registry,
        storage: Option<&FileStorageConfig>,
    ) -> Result<RunningExporter, BuildError> {
        let capacity = if queue.enabled {
            (queue.queue_size as u64).max(1)
        } else {
            0
        };
        let metrics = Metrics::new(reg, id, capacity);
        let cap = Capacity {
            used: AtomicU64::new(0),
            cap: capacity,
            freed: Notify::new(),
            closed: AtomicBool::new(false),
            gauge: metrics.queue_size.clone(),
        };
        cap.gauge.set(0);
        let q = match (queue.enabled, storage) {
            (false, _) => Queue::Inline,
            (true, None) => {
                let (tx, rx) = async_channel::unbounded();
                Queue::Memory(tx, rx)
            }
            (true, Some(fs)) => {
                let dir = fs.queue_dir(id);
                let l = [("exporter", id)];
                let qm = QueueMetrics {
                    disk_bytes: reg.gauge(
                        names::PERSISTENT_QUEUE_DISK_BYTES,
                        "Bytes of persistent-queue segment files on disk.",
                        &l,
                    ),
                    corrupt: reg.counter(
                        names::PERSISTENT_QUEUE_CORRUPT,
                        "Persistent-queue records skipped because their checksum or length was wrong.",
                        &l,
                    ),
                    recovered: reg.counter(
                        names::PERSISTENT_QUEUE_RECOVERED,
                        "Undelivered persistent-queue records found on disk at start.",
                        &l,
                    ),
                };
                let opts = fs.options();
                let open_dir = dir.clone();
                let (pq, rec) =
                    tokio::task::spawn_blocking(move || PersistentQueue::open(&open_dir, opts, qm))
                        .await
                        .map_err(|e| BuildError::Other(format!("persistent queue: {e}")))?
                        .map_err(|e| BuildError::File {
                            path: dir.display().to_string(),
                            reason: e.to_string(),
                        })?;
                cap.add(match queue.sizer {
                    Sizer::Requests => rec.records,
                    Sizer::Items => rec.items,
                    Sizer::Bytes => rec.body_bytes,
                });
                if rec.records > 0 || rec.corrupt > 0 || rec.torn_bytes > 0 {
                    tracing::info!(exporter = %id, directory = %dir.display(), records = rec.records, corrupt = rec.corrupt, torn_bytes = rec.torn_bytes, "persistent queue recovered; delivering what was on disk first");
                }
                Queue::Persistent(pq)
            }
        };
        let shared = Arc::new(Shared {
            id: id.to_string(),
            exporter,
            retry,
            policy: queue.policy(),
            block_timeout: queue.block_timeout.get(),
            sizer: queue.sizer,
            queue: q,
            capacity: cap,
            metrics,
            in_flight: Default::default(),
            stop: watch::channel(false).0,
        });
        let mut consumers = Vec::new();
        let n = if queue.enabled {
            queue.num_consumers.max(1)
        } else {
            0
        };
        for _ in 0..n {
            let shared = shared.clone();
            consumers.push(tokio::spawn(async move {
                match &shared.queue {
                    Queue::Memory(_, rx) => memory_consumer(&shared, rx.clone()).await,
                    Queue::Persistent(pq) => persistent_consumer(&shared, pq.clone()).await,
                    Queue::Inline => {}
                }
            }));
        }
        Ok(RunningExporter {
            handle: ExporterHandle { shared },
            consumers,
        })
    }

    /// Stops taking batches. In memory: delivers what is queued until `deadline`, then gives up
    /// on the rest (counted as dropped with reason `shutdown_timeout`). Persistent: stops
    /// reading and retrying, lets export attempts on the wire finish until `deadline` (and acks
    /// them), and leaves the rest on disk for the next start. Then flushes the exporter.
    pub async fn drain(self, deadline: Instant) {
        let shared = self.handle.shared.clone();
        shared.capacity.close();
        match &shared.queue {
            Queue::Memory(tx, _) => {
                tx.close();
            }
            Queue::Persistent(pq) => {
                let _ = shared.stop.send(true);
                pq.stop_reading();
            }
            Queue::Inline => {}
        }
        let mut consumers = self.consumers;
        let all = futures_util::future::join_all(consumers.iter_mut());
        if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
            for c in &consumers {
                c.abort();
            }
            match &shared.queue {
                Queue::Memory(_, rx) => {
                    let mut lost = [0u64; 3];
                    while let Ok((b, n)) = rx.try_recv() {
                        shared.capacity.release(n);
                        lost[idx(b.signal())] += b.items();
                    }
                    for s in Signal::ALL {
                        let n = lost[idx(s)] + shared.in_flight[idx(s)].swap(0, Ordering::Relaxed);
                        if n > 0 {
                            shared.metrics.of(s).dropped_shutdown.add(n);
                            tracing::error!(exporter = %shared.id, signal = %s, items = n, "drain deadline reached; items not delivered");
                        }
                    }
                }
                Queue::Persistent(_) => {
                    let n: u64 = shared
                        .in_flight
                        .iter()
                        .map(|a| a.swap(0, Ordering::Relaxed))
                        .sum();
                    if n > 0 {
                        tracing::warn!(exporter = %shared.id, items = n, "drain deadline reached during an export; its records stay on disk and are sent again after the next start");
                    }
                }
                Queue::Inline => {}
            }
        }
        if let Queue::Persistent(pq) = &shared.queue {
            let pq = pq.clone();
            let _ = tokio::task::spawn_blocking(move || pq.close()).await;
        }
        let _ = tokio::time::timeout_at(deadline.into(), shared.exporter.shutdown()).await;
    }
}

async fn memory_consumer(shared: &Shared, rx: async_channel::Receiver<(Outgoing, u64)>) {
    while let Ok((batch, n)) = rx.recv().await {
        shared.capacity.release(n);
        let i = idx(batch.signal());
        shared.in_flight[i].fetch_add(batch.items(), Ordering::Relaxed);
        let _ = deliver(shared, &batch, None).await;
        shared.in_flight[i].fetch_sub(batch.items(), Ordering::Relaxed);
    }
}

async fn persistent_consumer(shared: &Shared, pq: Arc<PersistentQueue>) {
    let mut stop = shared.stop.subscribe();
    loop {
        let rec = tokio::select! {
            r = pq.next() => r,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(rec) = rec else { break };
        let n = units(shared.sizer, rec.items, rec.body_len);
        if rec.damaged {
            // Counted as corrupt and removed by the queue; only its capacity comes back here.
            shared.capacity.release(n);
            continue;
        }
        let meta = Arc::new(RequestMeta::default());
        let batch = if !shared.exporter.reads_items() {
            // the OTLP exporters send the stored bytes as they are: no decode
            Outgoing::from_encoded(rec.signal, rec.items, meta, rec.body)
        } else {
            match Telemetry::decode_proto(rec.signal, &rec.body) {
                Ok(d) => Outgoing::new(d, meta),
                Err(e) => {
                    // The checksum matched, so these bytes are what was appended; they cannot
                    // become valid by waiting.
                    tracing::error!(exporter = %shared.id, error = %e, items = rec.items, "persistent queue record does not decode; removed");
                    shared.metrics.of(rec.signal).send_failed.add(rec.items);
                    pq.ack(rec.id);
                    shared.capacity.release(n);
                    continue;
                }
            }
        };
        let i = idx(batch.signal());
        shared.in_flight[i].fetch_add(batch.items(), Ordering::Relaxed);
        let res = deliver(shared, &batch, Some(&shared.stop)).await;
        shared.in_flight[i].fetch_sub(batch.items(), Ordering::Relaxed);
        match res {
            Err(Failure::Interrupted) => {
                tracing::info!(exporter = %shared.id, items = batch.items(), "stopping; record left in the persistent queue for the next start");
            }
            Ok(()) | Err(Failure::Export(_)) => pq.ack(rec.id),
        }
        shared.capacity.release(n);
    }
}

impl ExporterHandle {
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// True when the exporter reads the items ([`Exporter::reads_items`]); false when it
    /// sends the protobuf encoding as is.
    pub fn reads_items(&self) -> bool {
        self.shared.exporter.reads_items()
    }

    /// Hands a batch to the exporter: enqueue (in memory or durably on disk), or export inline
    /// when the queue is disabled. `Ok` is what lets the receiver answer success.
    pub async fn consume(&self, batch: Outgoing) -> Result<(), ConsumeError> {
        let s = &self.shared;
        let n = match (&s.queue, s.sizer) {
            (Queue::Inline, _) => {
                return match deliver(s, &batch, None).await {
                    Ok(()) => Ok(()),
                    Err(Failure::Export(e)) => Err(ConsumeError::ExportFailed {
                        component: s.id.clone(),
                        retryable: e.is_retryable(),
                        message: e.to_string(),
                    }),
                    Err(Failure::Interrupted) => Err(ConsumeError::ShuttingDown),
                };
            }
            (_, Sizer::Bytes) => units(Sizer::Bytes, batch.items(), batch.encoded().len()),
            (_, sizer) => units(sizer, batch.items(), 0),
        };
        let items = batch.items();
        let signal = batch.signal();
        let taken = match s.policy {
            FullPolicy::Block => {
                let wait = (!s.block_timeout.is_zero()).then_some(s.block_timeout);
                s.capacity.take(n, wait).await
            }
            FullPolicy::DropNewest => s.capacity.try_take(n),
        };
        match taken {
            Ok(()) => {}
            Err(TakeError::Closed) => return Err(ConsumeError::ShuttingDown),
            Err(TakeError::Full) => {
                s.metrics.of(signal).enqueue_failed.add(items);
                let message = match s.policy {
                    FullPolicy::Block => format!(
                        "sending queue of exporter {} stayed full for {:?}",
                        s.id, s.block_timeout
                    ),
                    FullPolicy::DropNewest => {
                        format!("sending queue of exporter {} is full", s.id)
                    }
                };
                return Err(ConsumeError::Refused {
                    component: s.id.clone(),
                    retry_after: QUEUE_FULL_RETRY_AFTER,
                    message,
                });
            }
        }
        match &s.queue {
            Queue::Memory(tx, _) => tx.send((batch, n)).await.map_err(|_| {
                s.capacity.release(n);
                ConsumeError::ShuttingDown
            }),
            Queue::Persistent(pq) => {
                let body = batch.encoded().clone();
                drop(batch);
                match pq.append(signal, items, body).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        s.capacity.release(n);
                        match e {
                            QueueError::Closed => Err(ConsumeError::ShuttingDown),
                            QueueError::TooLarge(_) => {
                                s.metrics.of(signal).enqueue_failed.add(items);
                                Err(ConsumeError::Invalid {
                                    message: e.to_string(),
                                })
                            }
                            QueueError::Full { .. } | QueueError::Io(_) => {
                                s.metrics.of(signal).enqueue_failed.add(items);
                                tracing::warn!(exporter = %s.id, error = %e, kind = e.kind(), items, "persistent queue refused a batch");
                                Err(ConsumeError::Refused {
                                    component: s.id.clone(),
                                    retry_after: QUEUE_FULL_RETRY_AFTER,
                                    message: e.to_string(),
                                })
                            }
                        }
                    }
                }
            }
            Queue::Inline => Ok(()),
        }
    }
}

/// Why [`deliver`] did not deliver.
enum Failure {
    /// Failed for good (permanent error or retries exhausted); counted as send-failed.
    Export(ExportError),
    /// Shutdown stopped the retries; nothing counted (the record stays in the persistent queue).
    Interrupted,
}

/// Exports one batch with retries; counts the outcome. With `stop`, a shutdown ends the
/// waiting between attempts.
async fn deliver(
    s: &Shared,
    batch: &Outgoing,
    stop: Option<&watch::Sender<bool>>,
) -> Result<(), Failure> {
    let m = s.metrics.of(batch.signal());
    let mut backoff = Backoff::new(&s.retry);
    loop {
        let result = {
            // the attempt's own copy of the batch (send buffer, compressed or JSON body)
            let _copy = s
                .exporter
                .copies_to_send()
                .then(|| batch.hold_send_copy());
            s.exporter.export(batch).await
        };
        match result {
            Ok(outcome) => {
                let rejected = outcome.rejected.min(batch.items());
                m.sent.add(batch.items() - rejected);
                if rejected > 0 {
                    m.send_failed.add(rejected);
                    tracing::warn!(exporter = %s.id, rejected, message = %outcome.message, "peer rejected part of a batch");
                }
                return Ok(());
            }
            Err(e) => {
                let hint = match &e {
                    ExportError::Retryable { retry_after, .. } => *retry_after,
                    ExportError::Permanent { .. } => None,
                };
                let next = if e.is_retryable() {
                    backoff.next_delay(hint)
                } else {
                    None
                };
                match next {
                    Some(delay) => {
                        s.metrics.retries.inc();
                        tracing::debug!(exporter = %s.id, error = %e, kind = e.kind(), delay_ms = delay.as_millis() as u64, "export failed; will retry");
                        match stop {
                            Some(stop) => {
                                let mut stop = stop.subscribe();
                                tokio::select! {
                                    _ = tokio::time::sleep(delay) => {}
                                    _ = stop.wait_for(|s| *s) => return Err(Failure::Interrupted),
                                }
                            }
                            None => tokio::time::sleep(delay).await,
                        }
                    }
                    None => {
                        m.send_failed.add(batch.items());
                        tracing::error!(exporter = %s.id, error = %e, kind = e.kind(), items = batch.items(), retryable = e.is_retryable(), "export failed; items dropped");
                        return Err(Failure::Export(e));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{ByteSize, Duration as CfgDuration};
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
}
