//! One interface over an attribute set, whichever form the request is in: the prost
//! `Vec<KeyValue>` of a decoded item, or the encoded attributes of an item edited on the wire
//! ([`crate::wire::WireAttrs`]). The attribute actions (`processors::actions`) and the
//! include/exclude matching of `attributes` are written once against these traits, so the
//! decoded path and the wire path cannot drift apart.
//!
//! Contract: slots keep their order, and an index is valid until the next
//! [`AttrsEdit::remove_where`] (a wire set keeps removed slots as gaps whose
//! [`AttrsRead::key_at`] is `None`; a `Vec` closes them). Setting an existing
//! key replaces its value in place; a new key is appended. Lookups find the first live slot with
//! the key (as a linear search of a `Vec<KeyValue>` does).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Reading an attribute set.
pub trait AttrsRead {
    /// Number of slots (live or removed).
    fn slots(&self) -> usize;
    /// The key of slot `i`, `None` when it was removed (or out of range).
    fn key_at(&self, i: usize) -> Option<&str>;
    /// The value of slot `i` (`None` when absent): borrowed when the set holds it decoded,
    /// decoded on demand otherwise.
    fn value_at(&self, i: usize) -> Option<Cow<'_, AnyValue>>;
    /// The first live slot with `key`.
    fn position(&self, key: &str) -> Option<usize> {
        (0..self.slots()).find(|&i| self.key_at(i) == Some(key))
    }
}

/// Editing an attribute set.
pub trait AttrsEdit: AttrsRead {
    /// Replaces the value of live slot `i`.
    fn set_at(&mut self, i: usize, value: Cow<'_, AnyValue>);
    /// Appends `key` with `value`.
    fn push(&mut self, key: &str, value: Cow<'_, AnyValue>);
    /// Removes live slot `i`.
    fn remove_at(&mut self, i: usize);
    /// Removes every live slot whose key `drop` accepts.
    fn remove_where(&mut self, drop: &mut dyn FnMut(&str) -> bool);
    /// Sets `key`: in place when present, appended otherwise.
    fn set(&mut self, key: &str, value: Cow<'_, AnyValue>) {
        match self.position(key) {
            Some(i) => self.set_at(i, value),
            None => self.push(key, value),
        }
    }
}

impl AttrsRead for [KeyValue] {
    fn slots(&self) -> usize {
        self.len()
    }
    fn key_at(&self, i: usize) -> Option<&str> {
        self.get(i).map(|kv| kv.key.as_str())
    }
    fn value_at(&self, i: usize) -> Option<Cow<'_, AnyValue>> {
        self.get(i)?.value.as_ref().map(Cow::Borrowed)
    }
    fn position(&self, key: &str) -> Option<usize> {
        self.iter().position(|kv| kv.key == key)
    }
}

impl AttrsRead for Vec<KeyValue> {
    fn slots(&self) -> usize {
        self.len()
    }
    fn key_at(&self, i: usize) -> Option<&str> {
        self.as_slice().key_at(i)
    }
    fn value_at(&self, i: usize) -> Option<Cow<'_, AnyValue>> {
        self.as_slice().value_at(i)
    }
    fn position(&self, key: &str) -> Option<usize> {
        self.as_slice().position(key)
    }
}

impl AttrsEdit for Vec<KeyValue> {
    fn set_at(&mut self, i: usize, value: Cow<'_, AnyValue>) {
        if let Some(kv) = self.get_mut(i) {
            kv.value = Some(value.into_owned());
        }
    }
    fn push(&mut self, key: &str, value: Cow<'_, AnyValue>) {
        Vec::push(
            self,
            KeyValue {
                key: key.to_string(),
                value: Some(value.into_owned()),
                ..Default::default()
            },
        );
    }
    fn remove_at(&mut self, i: usize) {
        if i < self.len() {
            self.remove(i);
        }
    }
    fn remove_where(&mut self, drop: &mut dyn FnMut(&str) -> bool) {
        self.retain(|kv| !drop(&kv.key));
    }
}
