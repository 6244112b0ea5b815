//! A read-only walk over the data points of an encoded metrics request, with their context —
//! the resource's attributes, the scope, the metric name — for checks that read points but do
//! not edit them (`cardinality_limit` on a request whose series are all known).
//!
//! # Contract
//!
//! [`visit_points`] walks a request [`super::scan`] accepted and calls the [`PointVisitor`] for
//! each resource group, scope, metric and data point, with the values decoding the request
//! would give them. Nothing is copied and nothing is allocated. Where prost would *merge*
//! repeated occurrences of a message field into one value — a second `resource`, `scope` or
//! `data` field in one message, a second `value` in one attribute — the walk does not try to
//! reproduce the merge:
//!
//! - a repeated `resource`, `scope` or metric `data` field ends the walk with
//!   [`Walked::Unusual`] (the caller decodes the request; no encoder writes these);
//! - an attribute whose value is not a plain scalar (an array, a key-value list, a repeated
//!   `value` or oneof field, a field otelgw does not know) is handed as [`Attr::Encoded`]: the
//!   `KeyValue`'s encoding, for the caller to decode.
//!
//! Context comes before content: a group's resource is reported before its scopes even when
//! the encoding puts it after them (each message's fields are looked over once first), and a
//! metric's name before its points. Points come in encoding order.

use std::ops::ControlFlow;

use super::{delimited, key, varint, WT_FIXED64, WT_LEN, WT_VARINT};
use crate::wire::items::{last_str, next};

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walked {
    /// Every point was visited.
    Done,
    /// The visitor stopped it ([`ControlFlow::Break`]).
    Stopped,
    /// The request repeats a message field prost would merge (see the module contract), or
    /// its bytes are malformed (not reached after `scan`): decode it instead.
    Unusual,
}

/// An attribute's value when it is a plain scalar, read from the bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// No value (an absent `value`, or an `AnyValue` with no field set).
    Empty,
    /// A string's bytes (UTF-8: `scan` checked; not checked again on this hot path).
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
}

/// One attribute (`KeyValue`) of a point or resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attr<'a> {
    /// A key (its bytes, UTF-8 as `scan` checked) with a scalar value (the common case).
    Plain { key: &'a [u8], value: Scalar<'a> },
    /// Anything else: the `KeyValue` message's encoding, to decode.
    Encoded(&'a [u8]),
}

/// The attributes (`KeyValue` field `field`) of one encoded message.
#[derive(Clone, Copy)]
pub struct Attrs<'a> {
    msg: &'a [u8],
    field: u32,
}

impl<'a> Attrs<'a> {
    /// Calls `f` on each attribute in encoding order. `None` when the bytes are malformed.
    pub fn each(self, mut f: impl FnMut(Attr<'a>)) -> Option<()> {
        let mut rest = self.msg;
        while !rest.is_empty() {
            let (tag, wt) = key(&mut rest).ok()?;
            if tag == self.field && wt == WT_LEN {
                f(attr(delimited(&mut rest).ok()?));
            } else {
                next(wt, tag, &mut rest)?;
            }
        }
        Some(())
    }
}

/// Reads one `KeyValue`: its key (the last occurrence, as decoded) and scalar value.
fn attr(kv: &[u8]) -> Attr<'_> {
    let plain = || {
        let mut k: &[u8] = &[];
        let mut value = None;
        let mut rest = kv;
        while !rest.is_empty() {
            let (tag, wt) = key(&mut rest).ok()?;
            match (tag, wt) {
                (1, WT_LEN) => k = delimited(&mut rest).ok()?,
                // a second `value` merges into the first: not plain
                (2, WT_LEN) if value.is_none() => value = Some(scalar(delimited(&mut rest).ok()?)?),
                (1 | 2, _) => return None,
                _ => next(wt, tag, &mut rest)?,
            }
        }
        Some(Attr::Plain {
            key: k,
            value: value.unwrap_or(Scalar::Empty),
        })
    };
    plain().unwrap_or(Attr::Encoded(kv))
}

/// An `AnyValue` with at most one field, a scalar one; `None` otherwise.
fn scalar(any: &[u8]) -> Option<Scalar<'_>> {
    let mut rest = any;
    if rest.is_empty() {
        return Some(Scalar::Empty);
    }
    let (tag, wt) = key(&mut rest).ok()?;
    let v = match (tag, wt) {
        (1, WT_LEN) => Scalar::Str(delimited(&mut rest).ok()?),
        // prost reads a bool as "varint != 0" and an int64 as the varint's two's complement
        (2, WT_VARINT) => Scalar::Bool(varint(&mut rest).ok()? != 0),
        (3, WT_VARINT) => Scalar::Int(varint(&mut rest).ok()? as i64),
        (4, WT_FIXED64) => {
            let (b, tail) = rest.split_first_chunk::<8>()?;
            rest = tail;
            Scalar::Double(f64::from_le_bytes(*b))
        }
        (7, WT_LEN) => Scalar::Bytes(delimited(&mut rest).ok()?),
        _ => return None,
    };
    // more fields (a oneof switch, an unknown field): leave it to the decoder
    rest.is_empty().then_some(v)
}

/// What [`visit_points`] reports, level by level.
pub trait PointVisitor<'a> {
    /// A resource group starts: its resource's attributes (none when it has no resource).
    fn resource(&mut self, attrs: Attrs<'a>);
    /// A scope starts: its `(name, version)`, `None` when the scope message is absent.
    fn scope(&mut self, scope: Option<(&'a str, &'a str)>);
    /// A metric starts; `false` skips its points.
    fn metric(&mut self, name: &'a str) -> bool;
    /// One data point's attributes.
    fn point(&mut self, attrs: Attrs<'a>) -> ControlFlow<()>;
}

/// Walks every data point of the encoded `ExportMetricsServiceRequest` `buf`. See the module
/// contract.
pub fn visit_points<'a>(buf: &'a [u8], v: &mut impl PointVisitor<'a>) -> Walked {
    match request(buf, v) {
        Some(ControlFlow::Continue(())) => Walked::Done,
        Some(ControlFlow::Break(())) => Walked::Stopped,
        None => Walked::Unusual,
    }
}

type Flow = Option<ControlFlow<()>>;

/// Calls `f` on each occurrence of length-delimited field `field` of `msg`.
fn each<'a>(msg: &'a [u8], field: u32, mut f: impl FnMut(&'a [u8]) -> Flow) -> Flow {
    let mut rest = msg;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == field && wt == WT_LEN {
            if f(delimited(&mut rest).ok()?)?.is_break() {
                return Some(ControlFlow::Break(()));
            }
        } else {
            next(wt, tag, &mut rest)?;
        }
    }
    Some(ControlFlow::Continue(()))
}

/// The single occurrence of message field `field` of `msg` (`Some(None)` when absent); `None`
/// when it occurs more than once (prost would merge the occurrences) or `msg` is malformed.
fn single(msg: &[u8], field: u32) -> Option<Option<&[u8]>> {
    let mut found = None;
    let mut rest = msg;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == field && wt == WT_LEN {
            if found.is_some() {
                return None;
            }
            found = Some(delimited(&mut rest).ok()?);
        } else {
            next(wt, tag, &mut rest)?;
        }
    }
    Some(found)
}

/// String field `field` as decoded: its last occurrence, `""` when absent (the request was
/// scanned, so it is well-formed UTF-8).
fn name_or_empty(msg: &[u8], field: u32) -> &str {
    last_str(msg, field).unwrap_or("")
}

fn request<'a>(buf: &'a [u8], v: &mut impl PointVisitor<'a>) -> Flow {
    each(buf, 1, |group| {
        let resource = single(group, 1)?.unwrap_or_default();
        v.resource(Attrs {
            msg: resource,
            field: 1,
        });
        each(group, 2, |scope| {
            let s = single(scope, 1)?.map(|s| (name_or_empty(s, 1), name_or_empty(s, 2)));
            v.scope(s);
            each(scope, 2, |metric| self::metric(metric, v))
        })
    })
}

fn metric<'a>(metric: &'a [u8], v: &mut impl PointVisitor<'a>) -> Flow {
    // the `data` oneof: gauge 5, sum 7, histogram 9, exponential histogram 10, summary 11
    let mut data = None;
    let mut rest = metric;
    while !rest.is_empty() {
        let (tag, wt) = key(&mut rest).ok()?;
        match (tag, wt) {
            (5 | 7 | 9 | 10 | 11, WT_LEN) => {
                if data.is_some() {
                    return None;
                }
                data = Some((tag, delimited(&mut rest).ok()?));
            }
            (5 | 7 | 9 | 10 | 11, _) => return None,
            _ => next(wt, tag, &mut rest)?,
        }
    }
    if !v.metric(name_or_empty(metric, 1)) {
        return Some(ControlFlow::Continue(()));
    }
    let Some((tag, data)) = data else {
        return Some(ControlFlow::Continue(()));
    };
    // the attributes' field number in each point type
    let field = match tag {
        5 | 7 | 11 => 7,
        9 => 9,
        _ => 1,
    };
    each(data, 1, |point| Some(v.point(Attrs { msg: point, field })))
}

#[cfg(test)]
mod tests;
