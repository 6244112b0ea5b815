//! The store's clock: a series' `updated` is a `u32` tick (milliseconds since the store
//! started, coarser only for a `metric_expiration` above 2^30 ms, so the expiration always fits
//! in 2^30 ticks), compared with wrapping arithmetic: the expiry timer runs at least every 10 s,
//! far inside the 2^31-tick window, so an age is always read right. Four bytes instead of a
//! 16-byte `Instant` in every series.

use std::time::{Duration, Instant};

/// The store's time in `u32` ticks (see the module docs).
pub struct Clock {
    epoch: Instant,
    /// Milliseconds per tick.
    unit_ms: u64,
    /// `metric_expiration` in ticks (at most 2^30).
    expiration: u32,
}

impl Clock {
    pub fn new(expiration: Duration) -> Clock {
        let ms = u64::try_from(expiration.as_millis()).unwrap_or(u64::MAX);
        let unit_ms = ms.div_ceil(1 << 30).max(1);
        Clock {
            epoch: Instant::now(),
            unit_ms,
            expiration: u32::try_from(ms.div_ceil(unit_ms)).unwrap_or(1 << 30),
        }
    }

    /// The current tick.
    pub fn now(&self) -> u32 {
        self.at(Instant::now())
    }

    fn at(&self, t: Instant) -> u32 {
        let ms =
            u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        // wraps on purpose: ticks are compared with wrapping arithmetic
        (ms / self.unit_ms) as u32
    }

    /// Whether a series last updated at tick `updated` has expired at tick `now`. A tick a
    /// little ahead of `now` (a concurrent ingest) is not expired.
    pub fn expired(&self, updated: u32, now: u32) -> bool {
        let age = now.wrapping_sub(updated) as i32;
        age > self.expiration as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_expire_like_instants_and_survive_wrapping() {
        let c = Clock::new(Duration::from_millis(100));
        assert_eq!((c.unit_ms, c.expiration), (1, 100));
        assert!(!c.expired(0, 100));
        assert!(c.expired(0, 101));
        assert!(!c.expired(5, 3), "a tick ahead of now is not expired");
        assert!(!c.expired(u32::MAX - 10, 50), "wrapped: 61 ticks old");
        assert!(c.expired(u32::MAX - 100, 50), "wrapped: 151 ticks old");
        let t = c.epoch + Duration::from_millis(1500);
        assert_eq!(c.at(t), 1500);
        // a long expiration uses coarser ticks, so it stays inside the wrapping window
        let long = Clock::new(Duration::from_secs(60 * 86_400));
        assert_eq!(long.unit_ms, 5);
        assert_eq!(long.expiration, 1_036_800_000);
        assert!(long.expiration <= 1 << 30);
    }
}
