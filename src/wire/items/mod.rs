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

use std::cell::OnceCell;
use std::ops::Range;

use bytes::Bytes;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use super::{delimited, key, skip, varint, RECURSION_LIMIT, WT_LEN, WT_VARINT};

mod attrs;
mod fields;

use crate::component::Signal;
pub use attrs::{any_str, WireAttrs};
use fields::FieldEdits;

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
        fields: FieldEdits::default(),
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
    fields: &'w mut FieldEdits,
    remove: bool,
}

impl<'a> ItemEdit<'a, '_> {
    /// Removes the item from the request.
    pub fn remove(&mut self) {
        self.remove = true;
    }

    /// String field `tag` as edited so far (the last occurrence as it came otherwise).
    pub fn str_field(&self, tag: u32) -> Option<&str> {
        match self.fields.get(tag) {
            Some(payload) => std::str::from_utf8(payload).ok(),
            None => last_str(self.view.item, tag),
        }
    }

    /// Varint field `tag` as edited so far.
    pub fn varint_field(&self, tag: u32) -> Option<u64> {
        match self.fields.get(tag) {
            Some(mut payload) => varint(&mut payload).ok(),
            None => last_varint(self.view.item, tag),
        }
    }

    /// Length-delimited field `tag` (a nested message's encoding) as edited so far.
    pub fn bytes_field(&self, tag: u32) -> Option<&[u8]> {
        match self.fields.get(tag) {
            Some(payload) => Some(payload),
            None => last_bytes(self.view.item, tag),
        }
    }

    /// Replaces every occurrence of string (or bytes, or message) field `tag` with `value`.
    pub fn set_bytes_field(&mut self, tag: u32, value: &[u8]) {
        self.fields.set(tag, WT_LEN, |out| {
            encode_varint(value.len() as u64, out);
            out.extend_from_slice(value);
        });
    }

    /// Replaces every occurrence of varint field `tag` with `value`.
    pub fn set_varint_field(&mut self, tag: u32, value: u64) {
        self.fields
            .set(tag, WT_VARINT, |out| encode_varint(value, out));
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
pub(in crate::wire) fn last_str(msg: &[u8], field: u32) -> Option<&str> {
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
pub(in crate::wire) fn next(wt: u32, tag: u32, buf: &mut &[u8]) -> Option<()> {
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
    fields: FieldEdits,
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
        self.fields.clear();
        let mut e = ItemEdit {
            view: ItemView {
                kind,
                item,
                group,
                metric,
            },
            attributes: &mut self.attrs,
            fields: &mut self.fields,
            remove: false,
        };
        (self.edit)(&mut e);
        if e.remove {
            self.removed += 1;
            return Some(Change::Remove);
        }
        let first = sp.splices.len();
        let delta = self.attrs.write(sp, at) + self.fields.write(sp, item, at)?;
        // the two writers each record in item order; merged here (an insertion before a
        // removal that starts at the same byte)
        if let Some(mine) = sp.splices.get_mut(first..) {
            mine.sort_by_key(|s| (s.from, s.to));
        }
        Some(Change::Delta(delta))
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
