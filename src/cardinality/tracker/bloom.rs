//! The probabilistic mode's Bloom filter: one byte per series, five probes, lock-free (atomic
//! words). Two of them make the rotating generations of [`super::Tracker`].

use std::sync::atomic::{AtomicU64, Ordering};

pub(super) struct Bloom {
    bits: Box<[AtomicU64]>,
    mask: u64,
}

const BLOOM_K: u64 = 5;

impl Bloom {
    pub(super) fn new(series: u64) -> Bloom {
        // one byte (8 bits) per series, rounded up to a power of two
        let bits = (series.max(64) * 8).next_power_of_two();
        Bloom {
            bits: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
        }
    }
    fn positions(&self, key: u64) -> impl Iterator<Item = u64> + '_ {
        let h2 = crate::cardinality::mix(key) | 1;
        (0..BLOOM_K).map(move |i| key.wrapping_add(i.wrapping_mul(h2)) & self.mask)
    }
    pub(super) fn contains(&self, key: u64) -> bool {
        self.positions(key)
            .all(|b| self.bits[(b / 64) as usize].load(Ordering::Relaxed) & (1 << (b % 64)) != 0)
    }
    pub(super) fn insert(&self, key: u64) {
        for b in self.positions(key) {
            self.bits[(b / 64) as usize].fetch_or(1 << (b % 64), Ordering::Relaxed);
        }
    }
    pub(super) fn clear(&self) {
        for w in self.bits.iter() {
            w.store(0, Ordering::Relaxed);
        }
    }
    pub(super) fn bytes(&self) -> usize {
        self.bits.len() * 8
    }
}
