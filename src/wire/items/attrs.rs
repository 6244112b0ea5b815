//! An encoded item's attributes, editable through the same interface as a decoded
//! `Vec<KeyValue>` ([`crate::data::attributes`]).

use std::borrow::Cow;
use std::ops::Range;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use super::{last_bytes, next, Splicer};
use crate::data::attributes::{AttrsEdit, AttrsRead};
use crate::wire::{delimited, key, WT_LEN};

/// An encoded item's attributes, editable through [`AttrsEdit`]: original slots borrow the
/// request's bytes; set values and appended keys are encoded into buffers reused from item to
/// item, so editing allocates nothing once the buffers have grown.
#[derive(Default)]
pub struct WireAttrs<'a> {
    /// The attributes' field number in this item.
    field: u32,
    /// The item's length (appended keys go at its end when it had no attributes).
    item_len: usize,
    slots: Vec<Slot<'a>>,
    /// Keys of appended slots.
    keys: String,
    /// Encoded `AnyValue`s of set and appended slots.
    values: Vec<u8>,
    changed: bool,
}

struct Slot<'a> {
    key: SlotKey<'a>,
    /// The original `KeyValue` field: its range in the item (key byte to end) and its content.
    orig: Option<(usize, usize, &'a [u8])>,
    /// A value set by an edit (a range of `values`).
    set: Option<Range<usize>>,
    removed: bool,
}

enum SlotKey<'a> {
    /// The key's bytes as they came (UTF-8: the scan checked; converted when read as text).
    Orig(&'a [u8]),
    /// A range of `keys`.
    Added(Range<usize>),
}

impl<'a> WireAttrs<'a> {
    /// Reads the attributes (`field`) of `item`; `None` when the item is malformed.
    pub(super) fn load(&mut self, field: u32, item: &'a [u8]) -> Option<()> {
        self.field = field;
        self.item_len = item.len();
        self.slots.clear();
        self.keys.clear();
        self.values.clear();
        self.changed = false;
        let mut rest = item;
        while !rest.is_empty() {
            let start = item.len() - rest.len();
            let (tag, wt) = key(&mut rest).ok()?;
            if tag == field && wt == WT_LEN {
                let kv = delimited(&mut rest).ok()?;
                let end = item.len() - rest.len();
                self.slots.push(Slot {
                    key: SlotKey::Orig(last_bytes(kv, 1).unwrap_or_default()),
                    orig: Some((start, end, kv)),
                    set: None,
                    removed: false,
                });
            } else {
                next(wt, tag, &mut rest)?;
            }
        }
        Some(())
    }

    fn key_of<'s>(keys: &'s str, slot: &'s Slot<'a>) -> &'s str {
        match &slot.key {
            // the scan checked every string is UTF-8, so this does not fail
            SlotKey::Orig(k) => std::str::from_utf8(k).unwrap_or_default(),
            // ranges are recorded from `keys` as it grows, and `keys` is only cleared by
            // `load` together with the slots
            SlotKey::Added(r) => keys.get(r.clone()).unwrap_or_default(),
        }
    }

    /// The key's bytes, without the UTF-8 check lookups do not need.
    fn key_bytes<'s>(keys: &'s str, slot: &'s Slot<'a>) -> &'s [u8] {
        match &slot.key {
            SlotKey::Orig(k) => k,
            SlotKey::Added(r) => keys.as_bytes().get(r.clone()).unwrap_or_default(),
        }
    }

    fn encode_value(&mut self, value: &AnyValue) -> Range<usize> {
        let start = self.values.len();
        value.encode_raw(&mut self.values);
        start..self.values.len()
    }

    /// Records the edits as splices of the item that starts at `at` in the request; returns
    /// the change of the item's length.
    pub(super) fn write(&self, sp: &mut Splicer, at: usize) -> isize {
        if !self.changed {
            return 0;
        }
        let value = |r: &Range<usize>| self.values.get(r.clone()).unwrap_or_default();
        let mut delta = 0isize;
        let mut last_end = None;
        for slot in &self.slots {
            let Some((from, to, kv)) = slot.orig else {
                continue;
            };
            last_end = Some(to);
            let old = (to - from) as isize;
            if slot.removed {
                delta -= old;
                sp.replace(at + from, at + to, |_| {});
            } else if let Some(r) = &slot.set {
                let written = sp.replace(at + from, at + to, |out| {
                    write_kv(out, self.field, KvKey::FromOrig(kv), value(r))
                });
                delta += written as isize - old;
            }
        }
        let mut added = self
            .slots
            .iter()
            .filter(|s| s.orig.is_none() && !s.removed)
            .peekable();
        if added.peek().is_some() {
            let pos = at + last_end.unwrap_or(self.item_len);
            let written = sp.replace(pos, pos, |out| {
                for slot in added {
                    let k = Self::key_of(&self.keys, slot);
                    let v = slot.set.as_ref().map(value).unwrap_or_default();
                    write_kv(out, self.field, KvKey::New(k), v);
                }
            });
            delta += written as isize;
        }
        delta
    }
}

impl WireAttrs<'_> {
    /// The value of live slot `i` when it is a string, read from the bytes without a copy.
    pub fn str_at(&self, i: usize) -> Option<&str> {
        let slot = self.slots.get(i).filter(|s| !s.removed)?;
        let any = match (&slot.set, slot.orig) {
            (Some(r), _) => self.values.get(r.clone())?,
            (None, Some((_, _, kv))) => last_bytes(kv, 2)?,
            (None, None) => return None,
        };
        any_str(any)
    }
}

/// The string of an encoded `AnyValue` whose value is a string (the oneof's last field wins).
pub fn any_str(any: &[u8]) -> Option<&str> {
    let mut found = None;
    let mut rest = any;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == 1 && wt == WT_LEN {
            found = Some(delimited(&mut rest).ok()?);
        } else {
            next(wt, tag, &mut rest)?;
            if (2..=8).contains(&tag) {
                found = None;
            }
        }
    }
    std::str::from_utf8(found?).ok()
}

impl AttrsRead for WireAttrs<'_> {
    fn slots(&self) -> usize {
        self.slots.len()
    }

    fn key_at(&self, i: usize) -> Option<&str> {
        let slot = self.slots.get(i).filter(|s| !s.removed)?;
        Some(Self::key_of(&self.keys, slot))
    }

    fn position(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.slots
            .iter()
            .position(|s| !s.removed && Self::key_bytes(&self.keys, s) == key)
    }

    fn value_at(&self, i: usize) -> Option<Cow<'_, AnyValue>> {
        let slot = self.slots.get(i).filter(|s| !s.removed)?;
        match (&slot.set, slot.orig) {
            (Some(r), _) => AnyValue::decode(self.values.get(r.clone())?)
                .ok()
                .map(Cow::Owned),
            (None, Some((_, _, kv))) => KeyValue::decode(kv).ok()?.value.map(Cow::Owned),
            (None, None) => None,
        }
    }
}

impl AttrsEdit for WireAttrs<'_> {
    fn set_at(&mut self, i: usize, value: Cow<'_, AnyValue>) {
        if self.slots.get(i).is_some_and(|s| !s.removed) {
            let r = self.encode_value(&value);
            if let Some(slot) = self.slots.get_mut(i) {
                slot.set = Some(r);
                self.changed = true;
            }
        }
    }

    fn push(&mut self, key: &str, value: Cow<'_, AnyValue>) {
        let start = self.keys.len();
        self.keys.push_str(key);
        let k = start..self.keys.len();
        let v = self.encode_value(&value);
        self.slots.push(Slot {
            key: SlotKey::Added(k),
            orig: None,
            set: Some(v),
            removed: false,
        });
        self.changed = true;
    }

    fn remove_at(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i).filter(|s| !s.removed) {
            slot.removed = true;
            self.changed = true;
        }
    }

    fn remove_where(&mut self, drop: &mut dyn FnMut(&str) -> bool) {
        for slot in self.slots.iter_mut().filter(|s| !s.removed) {
            if drop(Self::key_of(&self.keys, slot)) {
                slot.removed = true;
                self.changed = true;
            }
        }
    }
}

/// Where a written `KeyValue` takes its key from.
enum KvKey<'k> {
    /// Every field of the original `KeyValue` but its value (the key, `key_strindex`, fields
    /// of newer OTLP versions).
    FromOrig(&'k [u8]),
    New(&'k str),
}

/// Writes one attributes field (`field`): a `KeyValue` with `key` and the encoded `AnyValue`
/// `value` (always present, as prost writes `Some(value)`).
fn write_kv(out: &mut Vec<u8>, field: u32, key: KvKey<'_>, value: &[u8]) {
    let value_field = 1 + encoded_len_varint(value.len() as u64) + value.len();
    let key_len = match key {
        KvKey::FromOrig(kv) => kv_fields_except_value(kv).map(|r| r.len()).sum(),
        KvKey::New("") => 0,
        KvKey::New(k) => 1 + encoded_len_varint(k.len() as u64) + k.len(),
    };
    encode_varint(u64::from(field << 3 | WT_LEN), out);
    encode_varint((key_len + value_field) as u64, out);
    match key {
        KvKey::FromOrig(kv) => {
            for r in kv_fields_except_value(kv) {
                out.extend_from_slice(r);
            }
        }
        KvKey::New("") => {}
        KvKey::New(k) => {
            out.push(0x0a);
            encode_varint(k.len() as u64, out);
            out.extend_from_slice(k.as_bytes());
        }
    }
    out.push(0x12);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// The encoded fields of a `KeyValue` other than its value (field 2), in order.
fn kv_fields_except_value(kv: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = kv;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let field = rest;
        let (tag, wt) = key(&mut rest).ok()?;
        next(wt, tag, &mut rest)?;
        if !(tag == 2 && wt == WT_LEN) {
            return Some(&field[..field.len() - rest.len()]);
        }
    })
}
