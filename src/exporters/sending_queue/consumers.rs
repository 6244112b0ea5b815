//! The consumer tasks that drain a sending queue: each takes a batch, exports it with retries
//! ([`deliver`]) and counts how it ended; persistent-queue consumers ack what is done.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;

use super::counters::idx;
use super::{units, Shared};
use crate::data::{Outgoing, RequestMeta, Telemetry};
use crate::exporters::persistent_queue::PersistentQueue;
use crate::exporters::retry::{Backoff, ExportError};

pub(super) async fn memory_consumer(shared: &Shared, rx: async_channel::Receiver<(Outgoing, u64)>) {
    while let Ok((batch, n)) = rx.recv().await {
        shared.capacity.release(n);
        let i = idx(batch.signal());
        shared.in_flight[i].fetch_add(batch.items(), Ordering::Relaxed);
        let _ = deliver(shared, &batch, None).await;
        shared.in_flight[i].fetch_sub(batch.items(), Ordering::Relaxed);
    }
}

pub(super) async fn persistent_consumer(shared: &Shared, pq: Arc<PersistentQueue>) {
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

/// Why [`deliver`] did not deliver.
pub(super) enum Failure {
    /// Failed for good (permanent error or retries exhausted); counted as send-failed.
    Export(ExportError),
    /// Shutdown stopped the retries; nothing counted (the record stays in the persistent queue).
    Interrupted,
}

/// Exports one batch with retries; counts the outcome. With `stop`, a shutdown ends the
/// waiting between attempts.
pub(super) async fn deliver(
    s: &Shared,
    batch: &Outgoing,
    stop: Option<&watch::Sender<bool>>,
) -> Result<(), Failure> {
    let m = s.metrics.of(batch.signal());
    let mut backoff = Backoff::new(&s.retry);
    loop {
        let result = {
            // the attempt's own copy of the batch (send buffer, compressed or JSON body)
            let _copy = s.exporter.copies_to_send().then(|| batch.hold_send_copy());
            let started = std::time::Instant::now();
            let r = s.exporter.export(batch).await;
            s.metrics
                .send_duration
                .observe(started.elapsed().as_millis() as u64);
            r
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
