//! Room in a sending queue, counted in the sizer's unit, with a wake-up for blocked callers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::telemetry::metrics::Gauge;

/// in when the queue is empty, so it is never refused forever.
/// Room in a queue, counted in the sizer's unit. A batch bigger than the whole capacity is let
/// in when the queue is empty, so it is never refused forever.
pub(super) struct Capacity {
    pub(super) used: AtomicU64,
    pub(super) cap: u64,
    pub(super) freed: Notify,
    pub(super) closed: AtomicBool,
    pub(super) gauge: Gauge,
}

pub(super) enum TakeError {
    Closed,
    Full,
}

impl Capacity {
    pub(super) fn try_take(&self, n: u64) -> Result<(), TakeError> {
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
    pub(super) async fn take(&self, n: u64, wait: Option<Duration>) -> Result<(), TakeError> {
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
    pub(super) fn add(&self, n: u64) {
        let now = self.used.fetch_add(n, Ordering::AcqRel) + n;
        self.gauge.set(now as i64);
    }

    pub(super) fn release(&self, n: u64) {
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

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.freed.notify_waiters();
    }
}
