//! Consistent hashing: each backend owns [`VNODES`] points on a 64-bit ring (the first 8 bytes
//! of `md5("<endpoint>#<i>")`); a key belongs to the first point at or after its hash,
//! wrapping around. When a backend joins a ring of N, it takes about 1/(N+1) of the keys, all
//! from the others; when one leaves, only its keys move (to the points after its own). The
//! property test below checks both bounds.

use md5::{Digest, Md5};

/// Points per backend: with 150 the largest share of 4 backends stays within ~10% of 1/4.
pub const VNODES: usize = 150;

#[derive(Debug, Clone, Default)]
pub struct Ring {
    /// (point, index into `backends`), sorted by point.
    points: Vec<(u64, usize)>,
    pub backends: Vec<String>,
}

impl Ring {
    pub fn new(mut backends: Vec<String>) -> Ring {
        backends.sort();
        backends.dedup();
        let mut points = Vec::with_capacity(backends.len() * VNODES);
        for (i, b) in backends.iter().enumerate() {
            for v in 0..VNODES {
                let d = Md5::digest(format!("{b}#{v}").as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&d[..8]);
                points.push((u64::from_be_bytes(first), i));
            }
        }
        points.sort_unstable();
        Ring { points, backends }
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The backend (index) a key hash belongs to; `None` on an empty ring.
    pub fn get(&self, hash: u64) -> Option<usize> {
        let i = self.points.partition_point(|(p, _)| *p < hash);
        self.points
            .get(i)
            .or_else(|| self.points.first())
            .map(|(_, b)| *b)
    }
}

/// A well-mixed 64-bit hash of a key's bytes (FNV-1a, then the splitmix64 finaliser so that
/// similar keys land far apart).
pub fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut h = KeyHasher::new();
    for p in parts {
        h.part(p);
    }
    h.finish()
}

/// [`key_hash`] fed part by part (no buffer to build a key in).
pub struct KeyHasher(u64);

impl KeyHasher {
    pub fn new() -> KeyHasher {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }

    /// Adds one part; parts are separated, so ("ab", "c") and ("a", "bc") differ.
    pub fn part(&mut self, p: &[u8]) {
        for b in p {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    pub fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn owner(r: &Ring, k: u64) -> String {
        r.backends[r.get(key_hash(&[&k.to_le_bytes()])).unwrap()].clone()
    }

    #[test]
    fn shares_are_even_within_a_stated_tolerance() {
        let r = Ring::new((0..4).map(|i| format!("10.0.0.{i}:4317")).collect());
        let mut counts = std::collections::BTreeMap::new();
        for k in 0..100_000u64 {
            *counts.entry(owner(&r, k)).or_insert(0u32) += 1;
        }
        for (b, n) in &counts {
            assert!((20_000..30_000).contains(n), "{b}: {n} of 100000");
        }
        assert!(Ring::new(vec![]).get(1).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// A backend joining N takes ≈1/(N+1) of the keys and only from others; one leaving
        /// moves only its own keys.
        #[test]
        fn membership_changes_move_about_one_nth(n in 2usize..8, seed in any::<u64>()) {
            let names: Vec<String> = (0..=n).map(|i| format!("b{seed}-{i}:4317")).collect();
            let before = Ring::new(names[..n].to_vec());
            let after = Ring::new(names.clone());
            let keys = 20_000u64;
            let mut moved = 0;
            for k in 0..keys {
                let (a, b) = (owner(&before, k ^ seed), owner(&after, k ^ seed));
                if a != b {
                    prop_assert_eq!(&b, &names[n], "a key moved between two old backends");
                    moved += 1;
                }
            }
            let share = moved as f64 / keys as f64;
            let ideal = 1.0 / (n as f64 + 1.0);
            prop_assert!((share - ideal).abs() < ideal * 0.35, "moved {share:.3}, ideal {ideal:.3}");
            // and back: removing it moves exactly the keys it had
            let mut back = 0;
            for k in 0..keys {
                if owner(&after, k ^ seed) != owner(&before, k ^ seed) {
                    back += 1;
                }
            }
            prop_assert_eq!(back, moved);
        }
    }
}
