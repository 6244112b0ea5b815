//! Editing the items of an encoded request — spans, log records, data points — on the wire:
//! every byte no edit touches is copied as it came, and nothing is decoded that no processor
//! asked for.
//!
//! # Contract
//!
//! [`edit_items`] walks a request [`super::scan`] accepted and hands each item to the caller as
//! an [`ItemEdit`]: a read-only [`ItemView`] (kind, name, severity, metric name, the group's
//! resource — each read from the bytes when asked) and the item's attributes as
//! [`WireAttrs`], which implement the same [`AttrsEdit`] interface as a decoded
//! `Vec<KeyValue>`, so one action engine serves both paths. The caller may edit the attributes
//! or remove the item. The result decodes to exactly what decoding the request, making the same
//! edits to the prost structs and encoding it again gives (property-tested in `tests`):
//!
//! - attribute order: kept slots stay where they were, a set value replaces its slot in place,
//!   appended keys follow the last original attribute — as `Vec::push` on the decoded item;
//! - a removed item leaves its scope; a scope (and a metric, and a resource group) that had
//!   items and has none left goes too, as the Collector's `filter` processor removes them;
//! - fields otelgw does not know (newer OTLP) are kept, in items and around them.
//!
//! A request with no edit comes back as the same `Bytes` (no copy). `None` means the bytes are
//! not a well-formed request (not reached after `scan`); the caller then decodes.
//!
//! # How
//!
//! The walk records *splices* — replace input bytes `from..to` with bytes written to a scratch
//! buffer — in input order, and each enclosing message whose content changed length gets a
//! splice for its length prefix, inserted before its content's splices. The output is then
//! written in one pass into a buffer of exactly the new size. Cost: one walk of the request
//! structure down to the items, a walk of each item's fields, and one copy of the request.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use super::{delimited, key, skip, varint, RECURSION_LIMIT, WT_LEN, WT_VARINT};
use crate::component::Signal;
use crate::data::attributes::{AttrsEdit, AttrsRead};

/// What an [`ItemEdit`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Span,
    LogRecord,
    /// A gauge or sum data point.
    NumberPoint,
    HistogramPoint,
    ExponentialHistogramPoint,
    SummaryPoint,
}

impl ItemKind {
    /// The field number of the item's `attributes`.
    fn attributes_field(self) -> u32 {
        match self {
            ItemKind::Span | ItemKind::HistogramPoint => 9,
            ItemKind::LogRecord => 6,
            ItemKind::NumberPoint | ItemKind::SummaryPoint => 7,
            ItemKind::ExponentialHistogramPoint => 1,
        }
    }

    /// The kind of the data points of `Metric.data` variant `field`.
    fn of_metric_data(field: u32) -> Option<ItemKind> {
        match field {
            5 | 7 => Some(ItemKind::NumberPoint),
            9 => Some(ItemKind::HistogramPoint),
            10 => Some(ItemKind::ExponentialHistogramPoint),
            11 => Some(ItemKind::SummaryPoint),
            _ => None,
        }
    }
}

/// What [`edit_items`] returns.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The edited request (the input itself when nothing changed).
    pub bytes: Bytes,
    /// Items removed ([`ItemEdit::remove`]).
    pub removed: u64,
}

/// Walks every item of the encoded export request `buf` of `signal`, calls `edit` on each, and
/// returns the edited request. See the module contract.
pub fn edit_items<F>(signal: Signal, buf: &Bytes, edit: F) -> Option<Edited>
where
    F: FnMut(&mut ItemEdit<'_, '_>),
{
    let mut sp = Splicer::default();
    let mut walk = Walk {
        signal,
        attrs: WireAttrs::default(),
        removed: 0,
        edit,
    };
    let request: &[u8] = buf;
    let top = children(
        &mut sp,
        request,
        0,
        |t| t == 1,
        |sp, _, group, at| walk.group(sp, group, at),
    )?;
    let len = buf.len().checked_add_signed(top.delta)?;
    Some(Edited {
        bytes: sp.apply(buf, len)?,
        removed: walk.removed,
    })
}

// ---- the items, as the caller sees them ----

/// One item handed to the caller of [`edit_items`].
pub struct ItemEdit<'a, 'w> {
    /// The item as it came.
    pub view: ItemView<'a, 'w>,
    /// The item's attributes; edits are written out when the walk leaves the item.
    pub attributes: &'w mut WireAttrs<'a>,
    remove: bool,
}

impl ItemEdit<'_, '_> {
    /// Removes the item from the request.
    pub fn remove(&mut self) {
        self.remove = true;
    }
}

/// Read access to an encoded item and its context, each field read from the bytes when asked.
pub struct ItemView<'a, 'w> {
    kind: ItemKind,
    item: &'a [u8],
    group: &'w Group<'a>,
    metric: Option<&'a [u8]>,
}

impl<'a, 'w> ItemView<'a, 'w> {
    pub fn kind(&self) -> ItemKind {
        self.kind
    }

    /// The item's encoding (a `Span`, `LogRecord` or data point message).
    pub fn bytes(&self) -> &'a [u8] {
        self.item
    }

    /// The resource of the item's group, decoded the first time an item of the group asks
    /// (occurrences merged as prost merges them). An absent resource reads as empty.
    pub fn resource(&self) -> &'w Resource {
        self.group.resource()
    }

    /// A span's `name` (`""` when absent, as decoded); `None` for other items.
    pub fn span_name(&self) -> Option<&'a str> {
        (self.kind == ItemKind::Span).then(|| last_str(self.item, 5).unwrap_or(""))
    }

    /// A log record's `severity_number` (0 when absent, as decoded); `None` for other items.
    pub fn severity_number(&self) -> Option<i32> {
        // prost decodes an int32 / enum as the varint truncated to 32 bits
        (self.kind == ItemKind::LogRecord).then(|| last_varint(self.item, 2).unwrap_or(0) as i32)
    }

    /// A data point's metric `name` (`""` when absent); `None` for spans and log records.
    pub fn metric_name(&self) -> Option<&'a str> {
        self.metric.map(|m| last_str(m, 1).unwrap_or(""))
    }
}

/// A resource group (`ResourceSpans`, `ResourceLogs`, `ResourceMetrics`) and its resource,
/// decoded once when an item asks.
struct Group<'a> {
    bytes: &'a [u8],
    resource: OnceCell<Resource>,
}

impl Group<'_> {
    fn resource(&self) -> &Resource {
        self.resource.get_or_init(|| {
            let mut r = Resource::default();
            let mut rest = self.bytes;
            while !rest.is_empty() {
                let Ok((tag, wt)) = key(&mut rest) else { break };
                if tag == 1 && wt == WT_LEN {
                    let Ok(m) = delimited(&mut rest) else { break };
                    if r.merge(m).is_err() {
                        break;
                    }
                } else if skip(wt, tag, &mut rest, RECURSION_LIMIT).is_err() {
                    break;
                }
            }
            r
        })
    }
}

/// The last occurrence of string field `field` of `msg` (prost keeps the last).
fn last_str(msg: &[u8], field: u32) -> Option<&str> {
    std::str::from_utf8(last_bytes(msg, field)?).ok()
}

/// The last occurrence of length-delimited field `field` of `msg`.
#[inline]
fn last_bytes(msg: &[u8], field: u32) -> Option<&[u8]> {
    let mut found = None;
    let mut rest = msg;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == field && wt == WT_LEN {
            found = Some(delimited(&mut rest).ok()?);
        } else {
            next(wt, tag, &mut rest)?;
        }
    }
    found
}

/// Skips a field's value: the common wire types inline, groups (never sent by OTLP encoders)
/// through [`skip`]. The request was scanned, so the recursion budget is not checked again.
#[inline(always)]
fn next(wt: u32, tag: u32, buf: &mut &[u8]) -> Option<()> {
    match wt {
        WT_LEN => delimited(buf).ok().map(drop),
        WT_VARINT => varint(buf).ok().map(drop),
        super::WT_FIXED64 => super::take(buf, 8, super::Fail::Underflow).ok().map(drop),
        super::WT_FIXED32 => super::take(buf, 4, super::Fail::Underflow).ok().map(drop),
        _ => skip(wt, tag, buf, RECURSION_LIMIT).ok(),
    }
}

/// The last occurrence of varint field `field` of `msg`.
fn last_varint(msg: &[u8], field: u32) -> Option<u64> {
    let mut found = None;
    let mut rest = msg;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == field && wt == WT_VARINT {
            found = Some(varint(&mut rest).ok()?);
        } else {
            next(wt, tag, &mut rest)?;
        }
    }
    found
}

// ---- attributes on the wire ----

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
    fn load(&mut self, field: u32, item: &'a [u8]) -> Option<()> {
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
    fn write(&self, sp: &mut Splicer, at: usize) -> isize {
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

    fn remove_where(&mut self, mut drop: impl FnMut(&str) -> bool) {
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

// ---- the walk ----

/// How a child message changed.
enum Change {
    /// Its content grew (or shrank) by this many bytes.
    Delta(isize),
    /// It goes, with its key and length.
    Remove,
}

/// What happened to the children of a message.
struct Kids {
    /// Change of the message's content length.
    delta: isize,
    kept: usize,
    removed: usize,
}

impl Kids {
    /// A container that had children and lost them all goes too.
    fn change(&self) -> Change {
        if self.kept == 0 && self.removed > 0 {
            Change::Remove
        } else {
            Change::Delta(self.delta)
        }
    }
}

/// Walks the fields of `msg` (starting at offset `at` of the request); each length-delimited
/// field whose number `is_child` accepts goes to `child`, which records its content's splices
/// and says how it changed. Records the child's new length prefix (or its removal).
fn children<'a>(
    sp: &mut Splicer,
    msg: &'a [u8],
    at: usize,
    is_child: impl Fn(u32) -> bool,
    mut child: impl FnMut(&mut Splicer, u32, &'a [u8], usize) -> Option<Change>,
) -> Option<Kids> {
    let mut kids = Kids {
        delta: 0,
        kept: 0,
        removed: 0,
    };
    let mut rest = msg;
    while !rest.is_empty() {
        let field_start = at + (msg.len() - rest.len());
        let (tag, wt) = key(&mut rest).ok()?;
        if wt != WT_LEN || !is_child(tag) {
            next(wt, tag, &mut rest)?;
            continue;
        }
        let len_start = at + (msg.len() - rest.len());
        let content = delimited(&mut rest).ok()?;
        let end = at + (msg.len() - rest.len());
        let content_at = end - content.len();
        let first_splice = sp.splices.len();
        match child(sp, tag, content, content_at)? {
            Change::Delta(0) => kids.kept += 1,
            Change::Delta(d) => {
                kids.kept += 1;
                let new_len = u64::try_from(content.len() as isize + d).ok()?;
                let grew = encoded_len_varint(new_len) as isize - (content_at - len_start) as isize;
                sp.length_at(first_splice, len_start, content_at, new_len);
                kids.delta += d + grew;
            }
            Change::Remove => {
                kids.removed += 1;
                sp.splices.truncate(first_splice);
                sp.replace(field_start, end, |_| {});
                kids.delta -= (end - field_start) as isize;
            }
        }
    }
    Some(kids)
}

struct Walk<'a, F> {
    signal: Signal,
    attrs: WireAttrs<'a>,
    removed: u64,
    edit: F,
}

impl<'a, F: FnMut(&mut ItemEdit<'_, '_>)> Walk<'a, F> {
    /// A `ResourceSpans` / `ResourceLogs` / `ResourceMetrics`: its scopes are field 2.
    fn group(&mut self, sp: &mut Splicer, group: &'a [u8], at: usize) -> Option<Change> {
        let g = Group {
            bytes: group,
            resource: OnceCell::new(),
        };
        let kids = children(
            sp,
            group,
            at,
            |t| t == 2,
            |sp, _, scope, at| self.scope(sp, &g, scope, at),
        )?;
        Some(kids.change())
    }

    /// A `ScopeSpans` / `ScopeLogs` / `ScopeMetrics`: its items (or metrics) are field 2.
    fn scope(
        &mut self,
        sp: &mut Splicer,
        g: &Group<'a>,
        scope: &'a [u8],
        at: usize,
    ) -> Option<Change> {
        let kids = match self.signal {
            Signal::Traces => children(
                sp,
                scope,
                at,
                |t| t == 2,
                |sp, _, item, at| self.item(sp, ItemKind::Span, g, None, item, at),
            ),
            Signal::Logs => children(
                sp,
                scope,
                at,
                |t| t == 2,
                |sp, _, item, at| self.item(sp, ItemKind::LogRecord, g, None, item, at),
            ),
            Signal::Metrics => children(
                sp,
                scope,
                at,
                |t| t == 2,
                |sp, _, metric, at| self.metric(sp, g, metric, at),
            ),
        }?;
        Some(kids.change())
    }

    /// A `Metric`: each variant of its `data` holds data points in field 1.
    fn metric(
        &mut self,
        sp: &mut Splicer,
        g: &Group<'a>,
        metric: &'a [u8],
        at: usize,
    ) -> Option<Change> {
        let is_data = |t| ItemKind::of_metric_data(t).is_some();
        let kids = children(sp, metric, at, is_data, |sp, tag, data, at| {
            let kind = ItemKind::of_metric_data(tag)?;
            let points = children(
                sp,
                data,
                at,
                |t| t == 1,
                |sp, _, point, at| self.item(sp, kind, g, Some(metric), point, at),
            )?;
            Some(points.change())
        })?;
        Some(kids.change())
    }

    fn item(
        &mut self,
        sp: &mut Splicer,
        kind: ItemKind,
        group: &Group<'a>,
        metric: Option<&'a [u8]>,
        item: &'a [u8],
        at: usize,
    ) -> Option<Change> {
        self.attrs.load(kind.attributes_field(), item)?;
        let mut e = ItemEdit {
            view: ItemView {
                kind,
                item,
                group,
                metric,
            },
            attributes: &mut self.attrs,
            remove: false,
        };
        (self.edit)(&mut e);
        if e.remove {
            self.removed += 1;
            return Some(Change::Remove);
        }
        Some(Change::Delta(self.attrs.write(sp, at)))
    }
}

// ---- splices ----

/// Replace input bytes `from..to` with `with` (a range of the scratch buffer).
struct Splice {
    from: usize,
    to: usize,
    with: Range<usize>,
}

/// The edits of one request, in input order.
#[derive(Default)]
struct Splicer {
    splices: Vec<Splice>,
    scratch: Vec<u8>,
}

impl Splicer {
    /// Replaces `from..to` with what `write` appends; returns how many bytes it wrote.
    fn replace(&mut self, from: usize, to: usize, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let start = self.scratch.len();
        write(&mut self.scratch);
        self.splices.push(Splice {
            from,
            to,
            with: start..self.scratch.len(),
        });
        self.scratch.len() - start
    }

    /// Replaces a length prefix (`from..to`) with `len`, placed at index `idx` of the list:
    /// before the splices of the content it measures.
    fn length_at(&mut self, idx: usize, from: usize, to: usize, len: u64) {
        let start = self.scratch.len();
        encode_varint(len, &mut self.scratch);
        let with = start..self.scratch.len();
        self.splices.insert(idx, Splice { from, to, with });
    }

    /// The input with every splice applied, `len` bytes long; the input itself when there is
    /// nothing to apply. `None` if the splices are out of order (a bug; the caller decodes).
    fn apply(&self, input: &Bytes, len: usize) -> Option<Bytes> {
        if self.splices.is_empty() {
            return Some(input.clone());
        }
        let mut out = Vec::with_capacity(len);
        let mut at = 0;
        for s in &self.splices {
            out.extend_from_slice(input.get(at..s.from)?);
            out.extend_from_slice(self.scratch.get(s.with.clone())?);
            at = s.to;
        }
        out.extend_from_slice(input.get(at..)?);
        (out.len() == len).then(|| Bytes::from(out))
    }
}

#[cfg(test)]
mod tests;
