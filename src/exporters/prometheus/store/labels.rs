//! Label sets, each kept once and shared by the series that carry it.
//!
//! A series' labels are one rendered string ([`LabelSet`]), shared: every series with the same
//! labels — in OTel, the metrics of one instrumentation usually report the same attribute sets,
//! so a label set typically appears in several families — points at one copy kept by the
//! store's [`Interner`]. The map key is an 8-byte `Arc<Box<str>>` that compares by content, so
//! families stay ordered by their rendered labels exactly as with an owned string, and scrapes
//! copy the text as it is.
//!
//! Contract of the interner: a stored series' key always comes from [`Interner::intern`], and a
//! removed series' key goes back through [`Interner::release`] (which drops the shared copy when
//! that series was its last user). Lookups of existing series use the point's freshly rendered
//! `&str` and never touch the interner.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::telemetry::metrics::escape_label_value;

/// A series' labels as they are rendered — `name="escaped value"` pairs sorted by name and
/// joined by commas, without braces — shared by every series with the same labels (see the
/// module docs). Ordered, compared and hashed as the text.
/// A thin pointer (8 bytes, the text one hop further), so the B-tree's slots stay small.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet(Arc<Box<str>>);

impl LabelSet {
    /// The rendered pairs, without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Borrow<str> for LabelSet {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Renders `pairs`, which must be sorted by name and have distinct names, as a [`LabelSet`]'s
/// text.
pub fn render_pairs<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k.as_ref());
        out.push_str("=\"");
        escape_label_value(&mut out, v.as_ref());
        out.push('"');
    }
    out
}

/// The pairs of a [`LabelSet`]'s text, unescaped (the inverse of [`render_pairs`]). Text that
/// `render_pairs` did not make ends the parse early; what was read so far is returned.
pub fn parse_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => break,
                },
                c => value.push(c),
            }
        }
        let Some(end) = end else { break };
        out.push((name.to_string(), value));
        rest = after[end..].strip_prefix(',').unwrap_or("");
    }
    out
}

const SHARDS: usize = 16;

type Set = HashSet<LabelSet, foldhash::fast::RandomState>;

/// The store's label sets, each kept once (see the module docs), in shards so that ingest
/// threads creating series rarely wait for each other.
pub struct Interner {
    shards: Box<[Mutex<Set>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Interner {
    fn default() -> Interner {
        Interner {
            shards: (0..SHARDS).map(|_| Mutex::new(Set::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Interner {
    fn shard(&self, text: &str) -> MutexGuard<'_, Set> {
        let i = self.hasher.hash_one(text) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared copy of `text`, made if there is none.
    pub fn intern(&self, text: &str) -> LabelSet {
        let mut set = self.shard(text);
        if let Some(k) = set.get(text) {
            return k.clone();
        }
        let k = LabelSet(Arc::new(Box::from(text)));
        set.insert(k.clone());
        k
    }

    /// Gives back a removed series' key: the shared copy goes when no other series holds it.
    /// The key is dropped under the shard's lock, so two series of one label set released at
    /// the same time cannot both see the other as a remaining user.
    pub fn release(&self, key: LabelSet) {
        let mut set = self.shard(key.as_str());
        let last = set
            .get(key.as_str())
            .is_some_and(|k| Arc::ptr_eq(&k.0, &key.0) && Arc::strong_count(&k.0) == 2);
        if last {
            set.remove(key.as_str());
        }
        drop(key);
        drop(set);
    }

    /// Distinct label sets held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_sets_are_shared_and_freed_with_their_last_series() {
        let i = Interner::default();
        let a = i.intern("job=\"x\"");
        let b = i.intern("job=\"x\"");
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(i.len(), 1);
        i.release(a);
        assert_eq!(i.len(), 1, "b still holds it");
        i.release(b);
        assert_eq!(i.len(), 0);
        // released concurrently from many threads: nothing is left behind
        let keys: Vec<LabelSet> = (0..64).map(|_| i.intern("a=\"1\"")).collect();
        std::thread::scope(|s| {
            for k in keys {
                let i = &i;
                s.spawn(move || i.release(k));
            }
        });
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn parse_pairs_reads_back_what_render_pairs_wrote() {
        let pairs = vec![
            ("a".to_string(), "plain".to_string()),
            ("b".to_string(), "quote \" back \\ nl \n end".to_string()),
            ("c".to_string(), String::new()),
            ("d".to_string(), "=\",x=\"".to_string()),
            ("e".to_string(), "ünï".to_string()),
        ];
        let text = render_pairs(pairs.iter().map(|(k, v)| (k, v)));
        assert_eq!(parse_pairs(&text), pairs);
        assert!(parse_pairs("").is_empty());
        // cut short: what was complete is kept
        assert_eq!(parse_pairs("a=\"1\",b=\"2"), vec![("a".into(), "1".into())]);
    }
}
