//! The machinery around every exporter: queue → consumers → retry → export, with counts.
//!
//! Pipelines hand batches to an [`ExporterHandle`] (cheap to clone; one per exporter instance,
//! shared by every pipeline that names it: fan-in). With a sending queue, `consume` enqueues into
//! a bounded MPMC channel and returns; `num_consumers` tasks drain it. A full queue either blocks
//! the caller (`block`) or refuses the batch (`drop_newest`, counted as enqueue-failed). Without
//! a queue, `consume` exports inline, retries included, so the client waits for the backend.
//!
//! Every item handed in ends in exactly one counter: `otelcol_exporter_sent_*`,
//! `otelcol_exporter_send_failed_*` (permanent error, retries exhausted, peer's partial
//! rejection), `otelcol_exporter_enqueue_failed_*` (queue full), or
//! `otelgw_dropped_items{reason="shutdown_timeout"}` (still queued when the drain deadline hit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::retry::{Backoff, ExportError, RetryConfig};
use super::{Exporter, FullPolicy, QueueConfig};
use crate::data::{Batch, Signal};
use crate::pipeline::PipelineError;
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
    fn new(reg: &Registry, id: &str, capacity: usize) -> Metrics {
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
            "Capacity of the sending queue, in batches.",
            &l,
        )
        .set(capacity as i64);
        Metrics {
            signals: [per(Signal::Traces), per(Signal::Metrics), per(Signal::Logs)],
            queue_size: reg.gauge(
                names::EXPORTER_QUEUE_SIZE,
                "Batches currently in the sending queue.",
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

struct Shared {
    id: String,
    exporter: Arc<dyn Exporter>,
    retry: RetryConfig,
    policy: FullPolicy,
    /// How long `block` waits for room before refusing (zero: no limit).
    block_timeout: Duration,
    queue: Option<(async_channel::Sender<Batch>, async_channel::Receiver<Batch>)>,
    metrics: Metrics,
    /// Items currently being exported by consumers (for shutdown accounting).
    in_flight: [AtomicU64; 3],
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

impl RunningExporter {
    /// Starts consumers for `exporter`.
    pub fn start(
        id: &str,
        exporter: Arc<dyn Exporter>,
        queue: &QueueConfig,
        retry: RetryConfig,
        reg: &Registry,
    ) -> RunningExporter {
        let capacity = if queue.enabled {
            queue.queue_size.max(1)
        } else {
            0
        };
        let chan = queue.enabled.then(|| async_channel::bounded(capacity));
        let shared = Arc::new(Shared {
            id: id.to_string(),
            exporter,
            retry,
            policy: queue.policy(),
            block_timeout: queue.block_timeout.get(),
            queue: chan,
            metrics: Metrics::new(reg, id, capacity),
            in_flight: Default::default(),
        });
        let mut consumers = Vec::new();
        if let Some((_, rx)) = &shared.queue {
            for _ in 0..queue.num_consumers.max(1) {
                let rx = rx.clone();
                let shared = shared.clone();
                consumers.push(tokio::spawn(async move {
                    while let Ok(batch) = rx.recv().await {
                        shared.metrics.queue_size.add(-1);
                        let i = idx(batch.signal());
                        shared.in_flight[i].fetch_add(batch.items(), Ordering::Relaxed);
                        let _ = deliver(&shared, &batch).await;
                        shared.in_flight[i].fetch_sub(batch.items(), Ordering::Relaxed);
                    }
                }));
            }
        }
        RunningExporter {
            handle: ExporterHandle { shared },
            consumers,
        }
    }

    /// Stops taking batches, delivers what is queued until `deadline`, then gives up on the rest
    /// (counted as dropped with reason `shutdown_timeout`) and flushes the exporter.
    pub async fn drain(self, deadline: Instant) {
        let shared = self.handle.shared.clone();
        if let Some((tx, _)) = &shared.queue {
            tx.close();
        }
        let mut consumers = self.consumers;
        let all = futures_util::future::join_all(consumers.iter_mut());
        if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
            for c in &consumers {
                c.abort();
            }
            let mut lost = [0u64; 3];
            if let Some((_, rx)) = &shared.queue {
                while let Ok(b) = rx.try_recv() {
                    shared.metrics.queue_size.add(-1);
                    lost[idx(b.signal())] += b.items();
                }
            }
            for s in Signal::ALL {
                let n = lost[idx(s)] + shared.in_flight[idx(s)].swap(0, Ordering::Relaxed);
                if n > 0 {
                    shared.metrics.of(s).dropped_shutdown.add(n);
                    tracing::error!(exporter = %shared.id, signal = %s, items = n, "drain deadline reached; items not delivered");
                }
            }
        }
        let _ = tokio::time::timeout_at(deadline.into(), shared.exporter.shutdown()).await;
    }
}

impl ExporterHandle {
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Hands a batch to the exporter: enqueue (or export inline when the queue is disabled).
    pub async fn consume(&self, batch: Batch) -> Result<(), PipelineError> {
        let s = &self.shared;
        match &s.queue {
            None => deliver(s, &batch)
                .await
                .map_err(|e| PipelineError::ExportFailed {
                    component: s.id.clone(),
                    retryable: e.is_retryable(),
                    message: e.to_string(),
                }),
            Some((tx, _)) => {
                let items = batch.items();
                let signal = batch.signal();
                let res = match s.policy {
                    FullPolicy::Block if s.block_timeout.is_zero() => tx
                        .send(batch)
                        .await
                        .map_err(|_| PipelineError::ShuttingDown),
                    FullPolicy::Block => {
                        match tokio::time::timeout(s.block_timeout, tx.send(batch)).await {
                            Ok(r) => r.map_err(|_| PipelineError::ShuttingDown),
                            Err(_) => {
                                s.metrics.of(signal).enqueue_failed.add(items);
                                Err(PipelineError::Refused {
                                    component: s.id.clone(),
                                    retry_after: QUEUE_FULL_RETRY_AFTER,
                                    message: format!(
                                        "sending queue of exporter {} stayed full for {:?}",
                                        s.id, s.block_timeout
                                    ),
                                })
                            }
                        }
                    }
                    FullPolicy::DropNewest => tx.try_send(batch).map_err(|e| match e {
                        async_channel::TrySendError::Full(_) => {
                            s.metrics.of(signal).enqueue_failed.add(items);
                            PipelineError::Refused {
                                component: s.id.clone(),
                                retry_after: QUEUE_FULL_RETRY_AFTER,
                                message: format!("sending queue of exporter {} is full", s.id),
                            }
                        }
                        async_channel::TrySendError::Closed(_) => PipelineError::ShuttingDown,
                    }),
                };
                if res.is_ok() {
                    s.metrics.queue_size.add(1);
                }
                res
            }
        }
    }
}

/// Exports one batch with retries; counts the outcome.
async fn deliver(s: &Shared, batch: &Batch) -> Result<(), ExportError> {
    let m = s.metrics.of(batch.signal());
    let mut backoff = Backoff::new(&s.retry);
    loop {
        match s.exporter.export(batch).await {
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
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        m.send_failed.add(batch.items());
                        tracing::error!(exporter = %s.id, error = %e, kind = e.kind(), items = batch.items(), retryable = e.is_retryable(), "export failed; items dropped");
                        return Err(e);
                    }
                }
            }
        }
    }
}
