//! Expiry and accounting: forgetting one series, the periodic sweep (idle series in exact mode,
//! generation rotation in probabilistic mode, idle label values), and the active-series and
//! memory figures it refreshes.

use std::sync::atomic::Ordering;

use super::{release, Hll, MetricState, Table, Tracker};

impl Tracker {
    /// Forgets one series (the Prometheus exporter removed it). Exact mode only.
    pub fn forget(&self, key: u64) {
        if let Table::Exact(shards) = &self.table {
            let shard = &shards[(key >> 58) as usize];
            let removed = shard.write().unwrap_or_else(|p| p.into_inner()).remove(key);
            if let Some(metric) = removed {
                self.release_slot(metric);
            }
        }
    }

    fn release_slot(&self, metric: u32) {
        if let Some(m) = self
            .states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(metric as usize)
        {
            release(&m.active);
        }
        release(&self.active);
    }

    /// Removes idle series (exact) or rotates generations (probabilistic); forgets label
    /// values idle for a TTL. Returns how many series were expired.
    pub fn sweep(&self) -> u64 {
        let now = self.now();
        let ttl = self.settings.ttl.as_secs().min(u64::from(u32::MAX)) as u32;
        let mut expired = 0u64;
        match &self.table {
            Table::Exact(shards) => {
                for shard in shards.iter() {
                    let per_metric = shard
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|seen| now.saturating_sub(seen) <= ttl);
                    for m in per_metric {
                        self.release_slot(m);
                        expired += 1;
                    }
                }
            }
            Table::Probabilistic {
                gens,
                cur,
                prev,
                migrated,
                rotated,
            } => {
                if now.saturating_sub(rotated.load(Ordering::Relaxed)) >= ttl {
                    // the previous generation is emptied and becomes the current one; a lookup
                    // racing with the clear may take a known series for new (counted again):
                    // within the documented approximation of this mode
                    let c = cur.load(Ordering::Acquire) & 1;
                    gens[1 - c].clear();
                    cur.store(1 - c, Ordering::Release);
                    rotated.store(now, Ordering::Relaxed);
                    let old_prev = prev.load(Ordering::Relaxed);
                    let gone = old_prev.saturating_sub(migrated.load(Ordering::Relaxed));
                    expired += gone;
                    let cur = self.active.swap(0, Ordering::Relaxed);
                    prev.store(cur, Ordering::Relaxed);
                    migrated.store(0, Ordering::Relaxed);
                    for m in self.metrics() {
                        let c = m.active.swap(0, Ordering::Relaxed);
                        m.prev.store(c, Ordering::Relaxed);
                        m.migrated.store(0, Ordering::Relaxed);
                    }
                }
            }
        }
        if !self.settings.value_limits.is_empty() {
            for m in self.metrics() {
                for v in &m.values {
                    v.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|_, seen| now.saturating_sub(*seen) <= ttl);
                }
            }
        }
        self.metrics.expired.add(expired);
        self.metrics
            .active
            .set(self.active_including_pending() as i64);
        self.metrics.memory.set(self.memory_bytes() as i64);
        expired
    }

    /// Active series; in probabilistic mode including last generation's not yet seen again.
    pub fn active_including_pending(&self) -> u64 {
        match &self.table {
            Table::Exact(_) => self.active(),
            Table::Probabilistic { prev, migrated, .. } => {
                self.active()
                    + prev
                        .load(Ordering::Relaxed)
                        .saturating_sub(migrated.load(Ordering::Relaxed))
            }
        }
    }

    /// Bytes held by the tracking structures (tables at capacity, filters, metric states).
    pub fn memory_bytes(&self) -> usize {
        let table = match &self.table {
            Table::Exact(shards) => shards
                .iter()
                .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).bytes())
                .sum(),
            Table::Probabilistic { gens, .. } => gens[0].bytes() + gens[1].bytes(),
        };
        let states = self.states.read().unwrap_or_else(|p| p.into_inner());
        let per_state: usize = states
            .iter()
            .map(|m| {
                std::mem::size_of::<MetricState>()
                    + m.name.len()
                    + m.labels.read().map(|l| l.len()).unwrap_or(0)
                        * (std::mem::size_of::<Hll>() + 48)
                    + m.values
                        .iter()
                        .map(|v| v.lock().map(|v| v.capacity() * 13).unwrap_or(0))
                        .sum::<usize>()
            })
            .sum();
        table + per_state
    }
}
