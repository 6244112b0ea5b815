//! The sending queue every exporter sits behind (the Collector's `sending_queue`): queue →
//! consumers → retry → export, with counts. Files: `capacity` (room in the sizer's unit),
//! `consumers` (the tasks that drain the queue and deliver with retries), `counters` (the
//! `otelcol_exporter_*` self-metrics), `tests`.
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
//! `otelgw_dropped_items_total{reason="shutdown_timeout"}` (still in an in-memory queue when the
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
use super::retry::RetryConfig;
use super::{BuildError, Exporter, FullPolicy, QueueConfig, Sizer};
use crate::consumer::ConsumeError;
use crate::data::{Outgoing, Signal};
use crate::extensions::file_storage::FileStorageConfig;
use crate::telemetry::metrics::{names, Registry};

mod capacity;
mod consumers;
mod counters;

use capacity::{Capacity, TakeError};
use consumers::{deliver, memory_consumer, persistent_consumer, Failure};
use counters::{idx, Metrics};

/// The queue an exporter without `sending_queue` settings gets (`debug`, `file`,
/// `prometheus`): in memory, one consumer, 100 batches, `block`.
pub fn local_queue() -> QueueConfig {
    QueueConfig {
        num_consumers: 1,
        queue_size: 100,
        ..Default::default()
    }
}

/// The retry settings an exporter without `retry_on_failure` gets: none (a local exporter's
/// failure is not something a retry mends).
pub fn local_retry() -> RetryConfig {
    RetryConfig {
        enabled: false,
        ..Default::default()
    }
}

/// How long a refused client is asked to wait before retrying when a queue is full.
pub const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

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

#[cfg(test)]
mod tests;
