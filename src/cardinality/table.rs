//! The exact tracker's shard table: open addressing with linear probing over 12-byte entries
//! (48 bits of the key, metric index, `last_seen`) in one array, so a lookup usually touches one
//! cache line — a general-purpose map keeps control bytes and entries apart and pays two misses
//! on a large table — and a million series fit in a 32 MiB L3. Keys are well-mixed 64-bit
//! hashes; the tracker picks the shard from the top 6 bits and the table keeps bits 0–47, so a
//! series is identified by 54 bits (two of a million series share an identity with probability
//! ~3·10⁻⁵). Metric index `u16::MAX` marks an empty entry. The load factor stays at or below 3/4,
//! so a probe always ends at an empty entry; removal shifts the following run back (no
//! tombstones).
//!
//! Readers share the table under the shard's read lock and only touch `last_seen` (atomic);
//! every structural change happens under the write lock.

use std::sync::atomic::{AtomicU32, Ordering};

const EMPTY: u16 = u16::MAX;

pub struct Entry {
    lo: u32,
    hi: u16,
    metric: u16,
    pub last_seen: AtomicU32,
}

impl Entry {
    fn empty() -> Entry {
        Entry {
            lo: 0,
            hi: 0,
            metric: EMPTY,
            last_seen: AtomicU32::new(0),
        }
    }
    fn is_empty(&self) -> bool {
        self.metric == EMPTY
    }
    fn is(&self, (lo, hi): (u32, u16)) -> bool {
        self.lo == lo && self.hi == hi && !self.is_empty()
    }
    pub fn metric(&self) -> u32 {
        u32::from(self.metric)
    }
}

#[derive(Default)]
pub struct Table {
    entries: Vec<Entry>,
    len: usize,
}

/// The stored part of a key: bits 0–31 (also the home slot) and 32–47.
fn split(key: u64) -> (u32, u16) {
    (key as u32, (key >> 32) as u16)
}

/// Metric indexes above this share one accounting slot (the tracker caps metrics well below).
pub const MAX_METRIC: u32 = EMPTY as u32 - 1;

impl Table {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the entry array.
    pub fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// The slot holding `key`, probing from its home slot to the first empty one.
    fn slot(&self, key: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let k = split(key);
        let mask = self.mask();
        let mut i = k.0 as usize & mask;
        loop {
            let e = &self.entries[i];
            if e.is(k) {
                return Some(i);
            }
            if e.is_empty() {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, key: u64) -> Option<&Entry> {
        self.slot(key).map(|i| &self.entries[i])
    }

    /// Inserts `key` unless present; returns the entry and whether it is new.
    pub fn insert(&mut self, key: u64, now: u32, metric: u32) -> (&Entry, bool) {
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let k = split(key);
        let mask = self.mask();
        let mut i = k.0 as usize & mask;
        loop {
            if self.entries[i].is(k) {
                return (&self.entries[i], false);
            }
            if self.entries[i].is_empty() {
                self.entries[i] = Entry {
                    lo: k.0,
                    hi: k.1,
                    metric: metric.min(MAX_METRIC) as u16,
                    last_seen: AtomicU32::new(now),
                };
                self.len += 1;
                return (&self.entries[i], true);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(16);
        let old = std::mem::replace(
            &mut self.entries,
            (0..cap).map(|_| Entry::empty()).collect(),
        );
        self.len = 0;
        for e in old.into_iter().filter(|e| !e.is_empty()) {
            self.place(e);
        }
    }

    /// Puts an entry known to be absent (rehash).
    fn place(&mut self, e: Entry) {
        let mask = self.mask();
        let mut i = e.lo as usize & mask;
        while !self.entries[i].is_empty() {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
        self.len += 1;
    }

    /// Removes `key`; returns its metric index.
    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let i = self.slot(key)?;
        let mask = self.mask();
        let metric = self.entries[i].metric();
        // backward-shift: move later members of the run into the hole when their home allows
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            if self.entries[j].is_empty() {
                break;
            }
            let home = self.entries[j].lo as usize & mask;
            // can the entry at j move to hole? yes if home is not in (hole, j] cyclically
            let in_range = if hole <= j {
                home > hole && home <= j
            } else {
                home > hole || home <= j
            };
            if !in_range {
                self.entries.swap(hole, j);
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.entries[hole] = Entry::empty();
        self.len -= 1;
        Some(metric)
    }

    /// Keeps entries for which `keep(last_seen)` holds; returns the metric indexes removed.
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) -> Vec<u32> {
        let mut removed = Vec::new();
        if self
            .entries
            .iter()
            .all(|e| e.is_empty() || keep(e.last_seen.load(Ordering::Relaxed)))
        {
            return removed;
        }
        let cap = self.entries.len();
        let old = std::mem::replace(
            &mut self.entries,
            (0..cap).map(|_| Entry::empty()).collect(),
        );
        self.len = 0;
        for e in old.into_iter().filter(|e| !e.is_empty()) {
            if keep(e.last_seen.load(Ordering::Relaxed)) {
                self.place(e);
            } else {
                removed.push(e.metric());
            }
        }
        removed
    }

    /// Every live entry's `last_seen` (tests).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The table behaves like a map under any mix of inserts and removals, including keys
        /// that collide on their home slot.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u64..64), 0..400)) {
            let mut t = Table::default();
            let mut m: HashMap<u64, u32> = HashMap::new();
            for (op, k) in ops {
                // few distinct low bits: long collision runs
                // few distinct low bits: long collision runs; high bits keep keys distinct
                let key = (k << 32) | (k % 5);
                match op {
                    0 | 1 => {
                        let (_, new) = t.insert(key, 0, k as u32);
                        prop_assert_eq!(new, !m.contains_key(&key));
                        m.entry(key).or_insert(k as u32);
                    }
                    _ => prop_assert_eq!(t.remove(key), m.remove(&key)),
                }
                prop_assert_eq!(t.len(), m.len());
                for (k, v) in &m {
                    prop_assert_eq!(t.get(*k).map(|e| e.metric()), Some(*v));
                }
            }
        }
    }

    #[test]
    fn retain_drops_old_entries_and_keeps_the_rest_findable() {
        let mut t = Table::default();
        for k in 1..1000u64 {
            t.insert(crate::cardinality::mix(k), (k % 2) as u32, 7);
        }
        let removed = t.retain(|seen| seen == 1);
        assert_eq!(removed.len(), 499);
        assert!(removed.iter().all(|m| *m == 7));
        assert_eq!(t.len(), 500);
        for k in 1..1000u64 {
            assert_eq!(t.get(crate::cardinality::mix(k)).is_some(), k % 2 == 1);
        }
    }

    #[test]
    fn keys_differing_only_above_bit_48_are_one_series() {
        // documented: the table keeps 48 bits (the tracker adds 6 through the shard)
        let mut t = Table::default();
        assert!(t.insert(7, 0, 1).1);
        assert!(!t.insert(7 | (1 << 50), 0, 1).1);
    }

    #[test]
    fn key_zero_is_storable() {
        let mut t = Table::default();
        assert!(t.insert(0, 0, 3).1);
        assert_eq!(t.get(0).map(|e| e.metric()), Some(3));
        assert_eq!(t.remove(0), Some(3));
        assert!(t.get(0).is_none());
    }
}
