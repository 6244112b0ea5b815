//! The exact tracker's shard table: open addressing with linear probing over 16-byte entries
//! (key, `last_seen`, metric index) in one array, so a lookup usually touches one cache line —
//! a general-purpose map keeps control bytes and entries apart and pays two misses on a large
//! table. Keys are already well-mixed 64-bit hashes; key 0 marks an empty entry (a real 0 is
//! stored as 1). The load factor stays at or below 3/4, so a probe always ends at an empty
//! entry; removal shifts the following run back (no tombstones).
//!
//! Readers share the table under the shard's read lock and only touch `last_seen` (atomic);
//! every structural change happens under the write lock.

use std::sync::atomic::{AtomicU32, Ordering};

pub struct Entry {
    key: u64,
    pub last_seen: AtomicU32,
    pub metric: u32,
}

impl Entry {
    fn empty() -> Entry {
        Entry {
            key: 0,
            last_seen: AtomicU32::new(0),
            metric: 0,
        }
    }
}

#[derive(Default)]
pub struct Table {
    entries: Vec<Entry>,
    len: usize,
}

fn stored(key: u64) -> u64 {
    key.max(1)
}

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

    pub fn get(&self, key: u64) -> Option<&Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let key = stored(key);
        let mask = self.mask();
        let mut i = key as usize & mask;
        loop {
            let e = &self.entries[i];
            if e.key == key {
                return Some(e);
            }
            if e.key == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Inserts `key` unless present; returns the entry and whether it is new.
    pub fn insert(&mut self, key: u64, now: u32, metric: u32) -> (&Entry, bool) {
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let key = stored(key);
        let mask = self.mask();
        let mut i = key as usize & mask;
        loop {
            if self.entries[i].key == key {
                return (&self.entries[i], false);
            }
            if self.entries[i].key == 0 {
                self.entries[i] = Entry {
                    key,
                    last_seen: AtomicU32::new(now),
                    metric,
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
        for e in old.into_iter().filter(|e| e.key != 0) {
            self.place(e);
        }
    }

    /// Puts an entry known to be absent (rehash).
    fn place(&mut self, e: Entry) {
        let mask = self.mask();
        let mut i = e.key as usize & mask;
        while self.entries[i].key != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
        self.len += 1;
    }

    /// Removes `key`; returns its metric index.
    pub fn remove(&mut self, key: u64) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let key = stored(key);
        let mask = self.mask();
        let mut i = key as usize & mask;
        loop {
            let k = self.entries[i].key;
            if k == 0 {
                return None;
            }
            if k == key {
                break;
            }
            i = (i + 1) & mask;
        }
        let metric = self.entries[i].metric;
        // backward-shift: move later members of the run into the hole when their home allows
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let k = self.entries[j].key;
            if k == 0 {
                break;
            }
            let home = k as usize & mask;
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
            .all(|e| e.key == 0 || keep(e.last_seen.load(Ordering::Relaxed)))
        {
            return removed;
        }
        let cap = self.entries.len();
        let old = std::mem::replace(
            &mut self.entries,
            (0..cap).map(|_| Entry::empty()).collect(),
        );
        self.len = 0;
        for e in old.into_iter().filter(|e| e.key != 0) {
            if keep(e.last_seen.load(Ordering::Relaxed)) {
                self.place(e);
            } else {
                removed.push(e.metric);
            }
        }
        removed
    }

    /// Every live entry's `last_seen` (tests).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.key != 0)
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
                let key = (k << 40) | (k % 5);
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
                    prop_assert_eq!(t.get(*k).map(|e| e.metric), Some(*v));
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
    fn key_zero_is_storable() {
        let mut t = Table::default();
        assert!(t.insert(0, 0, 3).1);
        assert_eq!(t.get(0).map(|e| e.metric), Some(3));
        assert_eq!(t.remove(0), Some(3));
        assert!(t.get(0).is_none());
    }
}
