//! Replacements of an encoded item's scalar and message fields (a span's name, a log
//! record's severity or body), written as splices when the walk leaves the item.

use std::ops::Range;

use prost::encoding::encode_varint;

use super::{next, Splicer};
use crate::wire::{key, varint, WT_LEN};

/// Field replacements of one item: the new encoded field (key and payload) per field number,
/// in a buffer reused from item to item.
#[derive(Default)]
pub(super) struct FieldEdits {
    /// (field number, the encoded field, its payload) — ranges of `buf`.
    edits: Vec<(u32, Range<usize>, Range<usize>)>,
    buf: Vec<u8>,
}

impl FieldEdits {
    pub(super) fn clear(&mut self) {
        self.edits.clear();
        self.buf.clear();
    }

    pub(super) fn get(&self, tag: u32) -> Option<&[u8]> {
        let (_, _, payload) = self.edits.iter().rev().find(|(t, _, _)| *t == tag)?;
        self.buf.get(payload.clone())
    }

    pub(super) fn set(&mut self, tag: u32, wt: u32, payload: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        encode_varint(u64::from(tag << 3 | wt), &mut self.buf);
        let body = self.buf.len();
        payload(&mut self.buf);
        // a payload for a length-delimited field is written with its length first
        let payload_start = if wt == WT_LEN {
            let mut p = self.buf.get(body..).unwrap_or_default();
            let before = p.len();
            let _ = varint(&mut p);
            body + (before - p.len())
        } else {
            body
        };
        let end = self.buf.len();
        self.edits.retain(|(t, _, _)| *t != tag);
        self.edits.push((tag, start..end, payload_start..end));
    }

    /// Records the replacements as splices of the item at `at`: every occurrence of an edited
    /// field goes, the new fields follow the item's last byte. Returns the length change.
    pub(super) fn write(&self, sp: &mut Splicer, item: &[u8], at: usize) -> Option<isize> {
        if self.edits.is_empty() {
            return Some(0);
        }
        let mut delta = 0isize;
        let mut rest = item;
        while !rest.is_empty() {
            let from = item.len() - rest.len();
            let (tag, wt) = key(&mut rest).ok()?;
            next(wt, tag, &mut rest)?;
            if self.edits.iter().any(|(t, _, _)| *t == tag) {
                let to = item.len() - rest.len();
                sp.replace(at + from, at + to, |_| {});
                delta -= (to - from) as isize;
            }
        }
        let end = at + item.len();
        let written = sp.replace(end, end, |out| {
            for (_, field, _) in &self.edits {
                out.extend_from_slice(self.buf.get(field.clone()).unwrap_or_default());
            }
        });
        Some(delta + written as isize)
    }
}
