//! The admission gate: a process-wide memory budget that receivers consult before reading or
//! decoding a request (configured by `memory_limiter`, see [`crate::processors::memory_limiter`]),
//! and the one place memory is priced.
//!
//! Usage is estimated as the RSS sampled every `check_interval`, moved between samples by the
//! bytes accounted since the sample. Every piece of memory a request holds on its way is on the
//! account, priced by [`Cost`] and held by a [`Reservation`] until it is freed:
//! - received bytes: an HTTP body, inflated bytes, a gRPC message ([`Cost::Bytes`]);
//! - a decoded request ([`Cost::Decoded`]: [`DECODED_FACTOR`]× its protobuf size), in the
//!   receiver, in a processor chain that decodes forwarded bytes, in an exporter that reads them;
//! - a request waiting in a batch stage, until the batch it joined is handed on;
//! - a batch in an exporter queue, until its export ends (forwarded bytes once per buffer,
//!   however many exporters share it);
//! - the copy an export in flight makes of its batch (the gRPC client's send buffer, a
//!   compressed or JSON body), while the attempt lasts.
//!
//! So a burst is seen at once, not one interval late, and memory freed by the allocator is seen
//! at the next sample. Above the soft limit the gate refuses; between samples it never admits
//! past the soft limit by more than the requests already being read.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::metrics::names;
use crate::telemetry::metrics::{Counter, Gauge, Registry};

/// Decoded OTLP structs take about this many bytes per byte of protobuf (measured on the
/// bench shapes: ~1.2 KiB per ~360-byte span), plus the cached re-encoding.
pub const DECODED_FACTOR: u64 = 5;

/// What the process really holds per byte accounted as [`Cost::Bytes`]: allocator size
/// classes and page slack, buffers around the bytes. Measured in the flood scenario of
/// `tests/it/memory_limiter.rs` (RSS growth over accounted bytes, 1.2–1.3×), priced at the top
/// of that range so the gate settles under the soft limit.
pub const BYTES_OVERHEAD_PERCENT: u64 = 130;

/// What a piece of a request costs in memory: the pricing rule, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Bytes held as they are (a body, protobuf, a send buffer): their length.
    Bytes(u64),
    /// A request decoded into prost structs from this many protobuf bytes.
    Decoded(u64),
    /// A scraped Prometheus page of `bytes` with at most `lines` samples, parsed and shaped:
    /// every sample is held at once as labels, strings and its OTLP point before the result
    /// is handed on (`benches/prometheus_native_allocs.rs` measures ~2 KB allocated per
    /// sample across the stages; what is held at once is priced at [`SCRAPED_SAMPLE_BYTES`]).
    Scrape { bytes: u64, lines: u64 },
}

/// What one scraped sample holds while its scrape is parsed, shaped and translated.
pub const SCRAPED_SAMPLE_BYTES: u64 = 1024;

impl Cost {
    /// The protobuf (or raw) size the cost is priced from.
    pub fn wire_bytes(self) -> u64 {
        match self {
            Cost::Bytes(n) | Cost::Decoded(n) | Cost::Scrape { bytes: n, .. } => n,
        }
    }

    /// The bytes this costs.
    pub fn bytes(self) -> u64 {
        match self {
            Cost::Bytes(n) => n.saturating_mul(BYTES_OVERHEAD_PERCENT) / 100,
            Cost::Decoded(wire) => wire.saturating_mul(DECODED_FACTOR),
            Cost::Scrape { bytes, lines } => {
                bytes.saturating_add(lines.saturating_mul(SCRAPED_SAMPLE_BYTES))
            }
        }
    }
}

/// Gate states, as the `otelgw_memory_limiter_state` gauge reports them.
pub const STATE_OK: u8 = 0;
pub const STATE_SOFT: u8 = 1;
pub const STATE_HARD: u8 = 2;

pub struct MemoryGate {
    hard: u64,
    soft: u64,
    interval: Duration,
    accounted: AtomicI64,
    rss_at_sample: AtomicU64,
    accounted_at_sample: AtomicI64,
    /// The average size of recent requests as read (see [`MemoryGate::note_request`]).
    recent_request: AtomicU64,
    state: AtomicU8,
    refused: Counter,
    g_state: Gauge,
    g_usage: Gauge,
    g_accounted: Gauge,
}

/// Bytes held on the gate's account; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    gate: Arc<MemoryGate>,
    bytes: i64,
}

impl Reservation {
    /// The gate this is held on (so what holds memory can put more on the same account).
    pub fn gate(&self) -> &Arc<MemoryGate> {
        &self.gate
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.gate.accounted.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for MemoryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGate")
            .field("hard", &self.hard)
            .field("soft", &self.soft)
            .finish()
    }
}

/// Resident set size of this process.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl MemoryGate {
    pub fn new(hard: u64, soft: u64, interval: Duration, reg: &Registry) -> Arc<MemoryGate> {
        reg.gauge(
            names::MEMORY_LIMITER_LIMIT_BYTES,
            "The memory limiter's hard limit.",
            &[("limit", "hard")],
        )
        .set(hard as i64);
        reg.gauge(
            names::MEMORY_LIMITER_LIMIT_BYTES,
            "The memory limiter's hard limit.",
            &[("limit", "soft")],
        )
        .set(soft as i64);
        let gate = Arc::new(MemoryGate {
            hard,
            soft,
            interval,
            accounted: AtomicI64::new(0),
            rss_at_sample: AtomicU64::new(rss_bytes().unwrap_or(0)),
            accounted_at_sample: AtomicI64::new(0),
            recent_request: AtomicU64::new(0),
            state: AtomicU8::new(STATE_OK),
            refused: reg.counter(
                names::MEMORY_LIMITER_REFUSED_REQUESTS,
                "Requests refused by the memory limiter before they were read.",
                &[],
            ),
            g_state: reg.gauge(
                names::MEMORY_LIMITER_STATE,
                "0 accepting, 1 above the soft limit (refusing), 2 above the hard limit.",
                &[],
            ),
            g_usage: reg.gauge(
                names::MEMORY_LIMITER_USAGE_BYTES,
                "Estimated memory in use.",
                &[],
            ),
            g_accounted: reg.gauge(
                names::MEMORY_LIMITER_ACCOUNTED_BYTES,
                "Bytes held by requests in flight and queued batches.",
                &[],
            ),
        });
        gate.sample();
        gate
    }

    /// Estimated usage now.
    pub fn usage(&self) -> u64 {
        let delta = self.accounted.load(Ordering::Relaxed)
            - self.accounted_at_sample.load(Ordering::Relaxed);
        (self.rss_at_sample.load(Ordering::Relaxed) as i64 + delta).max(0) as u64
    }

    /// How long a refused client should wait.
    pub fn retry_after(&self) -> Duration {
        self.interval.max(Duration::from_secs(1))
    }

    /// Admits a new request expected to hold `expected` bytes once read (an HTTP body's
    /// declared length; else [`MemoryGate::expected_request`]), or says how long to wait.
    /// Counts refusals. The expected bytes go on the account at once, in the returned ticket,
    /// so requests admitted together see each other: the gate admits only what fits under the
    /// soft limit, instead of everything that arrives before the first of them is read. Keep
    /// the ticket until the request is answered.
    pub fn admit(self: &Arc<Self>, expected: u64) -> Result<Reservation, Duration> {
        let ticket = self.reserve(expected);
        if self.usage() > self.soft {
            drop(ticket);
            self.refused.inc();
            return Err(self.retry_after());
        }
        Ok(ticket)
    }

    /// What a request whose size is not known before it is read (gRPC) is expected to hold:
    /// the average size of recent requests.
    pub fn expected_request(&self) -> u64 {
        self.recent_request.load(Ordering::Relaxed)
    }

    /// Notes the size of a request that was read, for [`MemoryGate::expected_request`]
    /// (an exponential average, 1/8 weight for the newest).
    pub fn note_request(&self, bytes: u64) {
        let old = self.recent_request.load(Ordering::Relaxed);
        let new = if old == 0 {
            bytes
        } else {
            old - old / 8 + bytes / 8
        };
        self.recent_request.store(new, Ordering::Relaxed);
    }

    /// Holds what `cost` prices on the account until the reservation is dropped.
    pub fn hold(self: &Arc<Self>, cost: Cost) -> Reservation {
        self.reserve(cost.bytes())
    }

    /// Accounts `bytes` until the reservation is dropped.
    fn reserve(self: &Arc<Self>, bytes: u64) -> Reservation {
        let bytes = bytes.min(i64::MAX as u64) as i64;
        self.accounted.fetch_add(bytes, Ordering::Relaxed);
        Reservation {
            gate: self.clone(),
            bytes,
        }
    }

    pub fn state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// Takes a new RSS sample and updates the state. Above the soft limit it first asks the
    /// allocator to return memory the program has freed ([`crate::allocator`]), so the sample
    /// counts what is in use rather than what the allocator kept.
    pub fn sample(&self) {
        if self.state.load(Ordering::Relaxed) != STATE_OK {
            crate::allocator::release_free_memory();
        }
        let rss = rss_bytes().unwrap_or(0);
        self.accounted_at_sample
            .store(self.accounted.load(Ordering::Relaxed), Ordering::Relaxed);
        self.rss_at_sample.store(rss, Ordering::Relaxed);
        let usage = self.usage();
        let state = if usage > self.hard {
            STATE_HARD
        } else if usage > self.soft {
            STATE_SOFT
        } else {
            STATE_OK
        };
        let before = self.state.swap(state, Ordering::Relaxed);
        if before != state {
            match state {
                STATE_OK => tracing::info!(
                    usage_mib = usage >> 20,
                    "memory below the soft limit; accepting again"
                ),
                STATE_SOFT => tracing::warn!(
                    usage_mib = usage >> 20,
                    soft_mib = self.soft >> 20,
                    "memory above the soft limit; refusing new requests"
                ),
                _ => tracing::error!(
                    usage_mib = usage >> 20,
                    hard_mib = self.hard >> 20,
                    "memory above the hard limit; not ready"
                ),
            }
        }
        self.g_state.set(state as i64);
        self.g_usage.set(usage as i64);
        self.g_accounted.set(self.accounted.load(Ordering::Relaxed));
    }

    /// Samples every `check_interval` until `stop` fires.
    pub fn spawn_sampler(
        self: &Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let gate = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gate.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => gate.sample(),
                    _ = stop.changed() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_move_usage_between_samples_and_refuse_above_soft() {
        let reg = Registry::new();
        let rss = rss_bytes().unwrap();
        let gate = MemoryGate::new(
            rss + (100 << 20),
            rss + (50 << 20),
            Duration::from_secs(3600),
            &reg,
        );
        assert!(gate.admit(0).is_ok());
        let r = gate.reserve(60 << 20);
        assert!(gate.usage() >= rss + (60 << 20) - (8 << 20));
        assert_eq!(gate.admit(0).err(), Some(Duration::from_secs(3600)));
        drop(r);
        assert!(gate.admit(0).is_ok(), "released bytes count at once");
        assert_eq!(
            reg.value("otelgw_memory_limiter_refused_requests_total", &[]),
            Some(1)
        );
        let _big = gate.reserve(200 << 20);
        assert!(gate.admit(0).is_err());
        // the reservation was an over-estimate (nothing was allocated): the next RSS sample
        // corrects it and the gate opens again
        gate.sample();
        assert_eq!(gate.state(), STATE_OK);
        assert!(gate.admit(0).is_ok());
    }

    #[test]
    fn tickets_of_admitted_requests_count_so_only_what_fits_is_admitted() {
        let reg = Registry::new();
        let rss = rss_bytes().unwrap();
        // room for about ten 4 MiB requests above the current RSS (give or take its drift)
        let gate = MemoryGate::new(
            rss + (100 << 20),
            rss + (40 << 20),
            Duration::from_secs(3600),
            &reg,
        );
        let mut held = Vec::new();
        while let Ok(t) = gate.admit(4 << 20) {
            held.push(t);
            assert!(held.len() < 100, "the gate never closed");
        }
        assert!((8..=11).contains(&held.len()), "{}", held.len());
        assert!(gate.usage() <= rss + (40 << 20) + (8 << 20));
        // a refused ticket is not left on the account
        let before = gate.accounted.load(Ordering::Relaxed);
        assert!(gate.admit(4 << 20).is_err());
        assert_eq!(gate.accounted.load(Ordering::Relaxed), before);
        held.clear();
        assert!(
            gate.admit(4 << 20).is_ok(),
            "answered requests give their room back"
        );
    }

    #[test]
    fn expected_request_follows_recent_sizes() {
        let reg = Registry::new();
        let gate = MemoryGate::new(1 << 40, 1 << 39, Duration::from_secs(3600), &reg);
        assert_eq!(gate.expected_request(), 0);
        gate.note_request(8000);
        assert_eq!(gate.expected_request(), 8000);
        for _ in 0..64 {
            gate.note_request(800);
        }
        assert!((800..900).contains(&gate.expected_request()));
    }
}
