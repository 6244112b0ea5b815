//! A validating, allocation-free walker over the protobuf encoding of an OTLP export request.
//!
//! [`scan`] reads the bytes of an `ExportTraceServiceRequest`, `ExportLogsServiceRequest` or
//! `ExportMetricsServiceRequest` without decoding them into prost structs, so the gateway can
//! check and count a request and then forward the client's original bytes.
//!
//! # Contract
//!
//! * **Accepts exactly what prost accepts.** `scan(signal, b).is_ok()` is true if and only if
//!   `Telemetry::decode_proto(signal, b)` (prost 0.14 with the `opentelemetry-proto` 0.33 types)
//!   succeeds. The walker checks what prost checks, and nothing more:
//!   - every key is a valid varint of at most `u32::MAX`, with a field number ≥ 1 and a wire
//!     type 0..=5;
//!   - a known field arrives with its declared wire type; repeated numeric fields
//!     (`bucket_counts`, `explicit_bounds`) accept both the packed and the unpacked form;
//!   - varints are at most 10 bytes, and a 10th byte above 1 overflows `u64`;
//!   - lengths fit in what is left of the buffer, fixed32/fixed64 values have their 4/8 bytes,
//!     and every nested message, packed run and unknown field ends exactly at its boundary
//!     (so packed fixed-width runs must be a multiple of the element size);
//!   - `string` fields are valid UTF-8 (`bytes` fields are not checked);
//!   - unknown fields are skipped by wire type, groups included (start and end tags must match;
//!     a stray end-group tag is an error);
//!   - the recursion limit of prost's `DecodeContext` (100): the fields of the request are
//!     merged with a budget of 100, each nested message and each group level costs one, a
//!     nested message needs a budget above 0, and so does skipping an unknown field — of any
//!     wire type.
//!
//!   Field values are never checked beyond that (enum values, lengths of ids, …), as prost
//!   does not check them either.
//! * **Counts items as otelgw does** ([`crate::data::Telemetry::item_count`]): spans, log
//!   records, and metric data points of every kind. A metric's data points are those of its
//!   `data` oneof as prost leaves it: occurrences of the same variant merge (their data points
//!   add up), a different variant replaces what came before.
//! * **Counts bad ids** as [`crate::receivers::handle::drop_invalid_ids`] would remove them:
//!   spans whose last `trace_id` is not 16 bytes with a non-zero byte, whose last `span_id` is
//!   not 8 bytes with a non-zero byte, or whose last `parent_span_id` is neither empty nor 8
//!   bytes; log records whose last `trace_id` is neither empty nor 16 bytes, or whose last
//!   `span_id` is neither empty nor 8 bytes. Metrics never have bad ids.
//!
//! # How
//!
//! One static schema per message type maps field numbers to what the field holds (a
//! [`Kind`]); one recursive function walks any message by its schema. Nothing is allocated.
//!
//! # Testing
//!
//! The tests compare `scan` with prost on valid requests from [`crate::testdata`], on
//! structure-aware and byte-level mutations of them (duplicated, dropped, re-tagged and
//! re-typed fields, random payloads and ids, unknown fields and groups, flipped, inserted and
//! truncated bytes), on random field soups and random bytes, and on targeted cases (invalid
//! UTF-8, the recursion limit from both sides, oneof switches, packed and unpacked repeated
//! fields): `is_ok` must agree, and when both succeed `items` and `bad_ids` must equal what
//! otelgw computes from the decoded request.

use crate::data::Signal;

/// What [`scan`] found in a request it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Spans, metric data points or log records, as [`crate::data::Telemetry::item_count`].
    pub items: u64,
    /// Items [`crate::receivers::handle::drop_invalid_ids`] would remove.
    pub bad_ids: u64,
}

impl Scan {
    #[inline(always)]
    fn add(&mut self, o: Scan) {
        self.items += o.items;
        self.bad_ids += o.bad_ids;
    }
}

/// Why [`scan`] refused a request (prost would refuse it too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub &'static str);

const E_VARINT: WireError = WireError("invalid varint");
const E_KEY: WireError = WireError("invalid key");
const E_TAG: WireError = WireError("invalid field number 0");
const E_WIRE_TYPE: WireError = WireError("invalid wire type");
const E_UNEXPECTED: WireError = WireError("unexpected wire type for field");
const E_LENGTH: WireError = WireError("length exceeds buffer");
const E_UNDERFLOW: WireError = WireError("buffer underflow");
const E_UTF8: WireError = WireError("string is not utf-8");
const E_RECURSION: WireError = WireError("recursion limit reached");
const E_END_GROUP: WireError = WireError("unexpected end group tag");
const E_PACKED: WireError = WireError("packed length is not a multiple of the element size");

/// prost's `RECURSION_LIMIT`: the budget the fields of the top-level message are merged with.
const RECURSION_LIMIT: u32 = 100;

/// Validates the protobuf encoding of an OTLP export request of `signal` exactly as prost's
/// decode would, and counts its items and the items with invalid ids.
pub fn scan(signal: Signal, buf: &[u8]) -> Result<Scan, WireError> {
    let schema = match signal {
        Signal::Traces => &TRACES_REQUEST,
        Signal::Metrics => &METRICS_REQUEST,
        Signal::Logs => &LOGS_REQUEST,
    };
    walk(schema, buf, RECURSION_LIMIT)
}

/// What one field number of a message holds.
#[derive(Clone, Copy)]
enum Kind {
    /// Not in the schema: skipped by wire type.
    Unknown,
    /// int32, int64, uint32, uint64, sint32, sint64, bool, enum.
    Varint,
    /// fixed32, sfixed32, float.
    Fixed32,
    /// fixed64, sfixed64, double.
    Fixed64,
    /// UTF-8 checked.
    Str,
    Bytes,
    /// A bytes field kept (last one wins) for the item's id check, in slot `n`.
    Id(u8),
    Msg(&'static Schema),
    /// A message variant of the oneof whose data points count (Metric.data): a different
    /// variant replaces what came before, the same one merges.
    Oneof(&'static Schema),
    /// repeated varint-encoded scalars: packed or not.
    RepVarint,
    /// repeated fixed64/double: packed or not.
    RepFixed64,
}

/// Whether a message is an item, and how its ids are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Item {
    No,
    /// Counted, ids not checked (metric data points).
    Plain,
    /// Slots: trace_id, span_id, parent_span_id.
    Span,
    /// Slots: trace_id, span_id.
    Log,
}

struct Schema {
    /// Indexed by field number; field numbers past the end are unknown.
    fields: &'static [Kind],
    item: Item,
}

/// Builds a field table from (field number, kind) pairs.
const fn table<const N: usize>(defs: &[(usize, Kind)]) -> [Kind; N] {
    let mut t = [Kind::Unknown; N];
    let mut i = 0;
    while i < defs.len() {
        t[defs[i].0] = defs[i].1;
        i += 1;
    }
    t
}

use Kind::{Bytes, Fixed32, Fixed64, Id, Msg, Oneof, RepFixed64, RepVarint, Str, Varint};

// ---- common.v1, resource.v1 ----

static ANY_VALUE: Schema = Schema {
    fields: &table::<9>(&[
        (1, Str),               // string_value
        (2, Varint),            // bool_value
        (3, Varint),            // int_value
        (4, Fixed64),           // double_value
        (5, Msg(&ARRAY_VALUE)), // array_value
        (6, Msg(&KV_LIST)),     // kvlist_value
        (7, Bytes),             // bytes_value
        (8, Varint),            // string_value_strindex
    ]),
    item: Item::No,
};
static ARRAY_VALUE: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&ANY_VALUE))]),
    item: Item::No,
};
static KV_LIST: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&KEY_VALUE))]),
    item: Item::No,
};
static KEY_VALUE: Schema = Schema {
    fields: &table::<4>(&[
        (1, Str),             // key
        (2, Msg(&ANY_VALUE)), // value
        (3, Varint),          // key_strindex
    ]),
    item: Item::No,
};
static SCOPE: Schema = Schema {
    fields: &table::<5>(&[
        (1, Str),             // name
        (2, Str),             // version
        (3, Msg(&KEY_VALUE)), // attributes
        (4, Varint),          // dropped_attributes_count
    ]),
    item: Item::No,
};
static ENTITY_REF: Schema = Schema {
    fields: &table::<5>(&[
        (1, Str), // schema_url
        (2, Str), // type
        (3, Str), // id_keys (repeated)
        (4, Str), // description_keys (repeated)
    ]),
    item: Item::No,
};
static RESOURCE: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&KEY_VALUE)),  // attributes
        (2, Varint),           // dropped_attributes_count
        (3, Msg(&ENTITY_REF)), // entity_refs
    ]),
    item: Item::No,
};

// ---- trace.v1 ----

static TRACES_REQUEST: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&RESOURCE_SPANS))]),
    item: Item::No,
};
static RESOURCE_SPANS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&RESOURCE)),    // resource
        (2, Msg(&SCOPE_SPANS)), // scope_spans
        (3, Str),               // schema_url
    ]),
    item: Item::No,
};
static SCOPE_SPANS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&SCOPE)), // scope
        (2, Msg(&SPAN)),  // spans
        (3, Str),         // schema_url
    ]),
    item: Item::No,
};
static SPAN: Schema = Schema {
    fields: &table::<17>(&[
        (1, Id(0)),           // trace_id
        (2, Id(1)),           // span_id
        (3, Str),             // trace_state
        (4, Id(2)),           // parent_span_id
        (5, Str),             // name
        (6, Varint),          // kind
        (7, Fixed64),         // start_time_unix_nano
        (8, Fixed64),         // end_time_unix_nano
        (9, Msg(&KEY_VALUE)), // attributes
        (10, Varint),         // dropped_attributes_count
        (11, Msg(&EVENT)),    // events
        (12, Varint),         // dropped_events_count
        (13, Msg(&LINK)),     // links
        (14, Varint),         // dropped_links_count
        (15, Msg(&STATUS)),   // status
        (16, Fixed32),        // flags
    ]),
    item: Item::Span,
};
static EVENT: Schema = Schema {
    fields: &table::<5>(&[
        (1, Fixed64),         // time_unix_nano
        (2, Str),             // name
        (3, Msg(&KEY_VALUE)), // attributes
        (4, Varint),          // dropped_attributes_count
    ]),
    item: Item::No,
};
static LINK: Schema = Schema {
    fields: &table::<7>(&[
        (1, Bytes),           // trace_id
        (2, Bytes),           // span_id
        (3, Str),             // trace_state
        (4, Msg(&KEY_VALUE)), // attributes
        (5, Varint),          // dropped_attributes_count
        (6, Fixed32),         // flags
    ]),
    item: Item::No,
};
static STATUS: Schema = Schema {
    fields: &table::<4>(&[
        (2, Str),    // message
        (3, Varint), // code
    ]),
    item: Item::No,
};

// ---- logs.v1 ----

static LOGS_REQUEST: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&RESOURCE_LOGS))]),
    item: Item::No,
};
static RESOURCE_LOGS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&RESOURCE)),   // resource
        (2, Msg(&SCOPE_LOGS)), // scope_logs
        (3, Str),              // schema_url
    ]),
    item: Item::No,
};
static SCOPE_LOGS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&SCOPE)),      // scope
        (2, Msg(&LOG_RECORD)), // log_records
        (3, Str),              // schema_url
    ]),
    item: Item::No,
};
static LOG_RECORD: Schema = Schema {
    fields: &table::<13>(&[
        (1, Fixed64),         // time_unix_nano
        (2, Varint),          // severity_number
        (3, Str),             // severity_text
        (5, Msg(&ANY_VALUE)), // body
        (6, Msg(&KEY_VALUE)), // attributes
        (7, Varint),          // dropped_attributes_count
        (8, Fixed32),         // flags
        (9, Id(0)),           // trace_id
        (10, Id(1)),          // span_id
        (11, Fixed64),        // observed_time_unix_nano
        (12, Str),            // event_name
    ]),
    item: Item::Log,
};

// ---- metrics.v1 ----

static METRICS_REQUEST: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&RESOURCE_METRICS))]),
    item: Item::No,
};
static RESOURCE_METRICS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&RESOURCE)),      // resource
        (2, Msg(&SCOPE_METRICS)), // scope_metrics
        (3, Str),                 // schema_url
    ]),
    item: Item::No,
};
static SCOPE_METRICS: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&SCOPE)),  // scope
        (2, Msg(&METRIC)), // metrics
        (3, Str),          // schema_url
    ]),
    item: Item::No,
};
static METRIC: Schema = Schema {
    fields: &table::<13>(&[
        (1, Str),                    // name
        (2, Str),                    // description
        (3, Str),                    // unit
        (5, Oneof(&GAUGE)),          // gauge
        (7, Oneof(&SUM)),            // sum
        (9, Oneof(&HISTOGRAM)),      // histogram
        (10, Oneof(&EXP_HISTOGRAM)), // exponential_histogram
        (11, Oneof(&SUMMARY)),       // summary
        (12, Msg(&KEY_VALUE)),       // metadata
    ]),
    item: Item::No,
};
static GAUGE: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&NUMBER_POINT))]),
    item: Item::No,
};
static SUM: Schema = Schema {
    fields: &table::<4>(&[
        (1, Msg(&NUMBER_POINT)), // data_points
        (2, Varint),             // aggregation_temporality
        (3, Varint),             // is_monotonic
    ]),
    item: Item::No,
};
static HISTOGRAM: Schema = Schema {
    fields: &table::<3>(&[
        (1, Msg(&HISTOGRAM_POINT)), // data_points
        (2, Varint),                // aggregation_temporality
    ]),
    item: Item::No,
};
static EXP_HISTOGRAM: Schema = Schema {
    fields: &table::<3>(&[
        (1, Msg(&EXP_HISTOGRAM_POINT)), // data_points
        (2, Varint),                    // aggregation_temporality
    ]),
    item: Item::No,
};
static SUMMARY: Schema = Schema {
    fields: &table::<2>(&[(1, Msg(&SUMMARY_POINT))]),
    item: Item::No,
};
static NUMBER_POINT: Schema = Schema {
    fields: &table::<9>(&[
        (2, Fixed64),         // start_time_unix_nano
        (3, Fixed64),         // time_unix_nano
        (4, Fixed64),         // as_double
        (5, Msg(&EXEMPLAR)),  // exemplars
        (6, Fixed64),         // as_int (sfixed64)
        (7, Msg(&KEY_VALUE)), // attributes
        (8, Varint),          // flags
    ]),
    item: Item::Plain,
};
static HISTOGRAM_POINT: Schema = Schema {
    fields: &table::<13>(&[
        (2, Fixed64),         // start_time_unix_nano
        (3, Fixed64),         // time_unix_nano
        (4, Fixed64),         // count
        (5, Fixed64),         // sum
        (6, RepFixed64),      // bucket_counts
        (7, RepFixed64),      // explicit_bounds
        (8, Msg(&EXEMPLAR)),  // exemplars
        (9, Msg(&KEY_VALUE)), // attributes
        (10, Varint),         // flags
        (11, Fixed64),        // min
        (12, Fixed64),        // max
    ]),
    item: Item::Plain,
};
static EXP_HISTOGRAM_POINT: Schema = Schema {
    fields: &table::<15>(&[
        (1, Msg(&KEY_VALUE)), // attributes
        (2, Fixed64),         // start_time_unix_nano
        (3, Fixed64),         // time_unix_nano
        (4, Fixed64),         // count
        (5, Fixed64),         // sum
        (6, Varint),          // scale
        (7, Fixed64),         // zero_count
        (8, Msg(&BUCKETS)),   // positive
        (9, Msg(&BUCKETS)),   // negative
        (10, Varint),         // flags
        (11, Msg(&EXEMPLAR)), // exemplars
        (12, Fixed64),        // min
        (13, Fixed64),        // max
        (14, Fixed64),        // zero_threshold
    ]),
    item: Item::Plain,
};
static BUCKETS: Schema = Schema {
    fields: &table::<3>(&[
        (1, Varint),    // offset
        (2, RepVarint), // bucket_counts
    ]),
    item: Item::No,
};
static SUMMARY_POINT: Schema = Schema {
    fields: &table::<9>(&[
        (2, Fixed64),                 // start_time_unix_nano
        (3, Fixed64),                 // time_unix_nano
        (4, Fixed64),                 // count
        (5, Fixed64),                 // sum
        (6, Msg(&VALUE_AT_QUANTILE)), // quantile_values
        (7, Msg(&KEY_VALUE)),         // attributes
        (8, Varint),                  // flags
    ]),
    item: Item::Plain,
};
static VALUE_AT_QUANTILE: Schema = Schema {
    fields: &table::<3>(&[
        (1, Fixed64), // quantile
        (2, Fixed64), // value
    ]),
    item: Item::No,
};
static EXEMPLAR: Schema = Schema {
    fields: &table::<8>(&[
        (2, Fixed64),         // time_unix_nano
        (3, Fixed64),         // as_double
        (4, Bytes),           // span_id
        (5, Bytes),           // trace_id
        (6, Fixed64),         // as_int (sfixed64)
        (7, Msg(&KEY_VALUE)), // filtered_attributes
    ]),
    item: Item::No,
};

// ---- the walker ----

const WT_VARINT: u32 = 0;
const WT_FIXED64: u32 = 1;
const WT_LEN: u32 = 2;
const WT_START_GROUP: u32 = 3;
const WT_END_GROUP: u32 = 4;
const WT_FIXED32: u32 = 5;

/// Decodes a varint as prost's `decode_varint` does: at most 10 bytes, and the 10th must be 0
/// or 1 (anything more overflows `u64`). Non-minimal encodings are fine.
#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    match buf.first() {
        Some(&b) if b < 0x80 => {
            *buf = &buf[1..];
            Ok(u64::from(b))
        }
        _ => varint_long(buf),
    }
}

#[inline(never)]
fn varint_long(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i == 9 && b > 1 {
                return Err(E_VARINT);
            }
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(E_VARINT)
}

/// Decodes a field key as prost's `decode_key`: (field number, wire type).
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, u32), WireError> {
    let k = varint(buf)?;
    if k > u64::from(u32::MAX) {
        return Err(E_KEY);
    }
    let k = k as u32;
    let wt = k & 7;
    if wt > 5 {
        return Err(E_WIRE_TYPE);
    }
    let tag = k >> 3;
    if tag == 0 {
        return Err(E_TAG);
    }
    Ok((tag, wt))
}

/// Takes `n` bytes off the front of `buf`.
#[inline(always)]
fn take<'a>(buf: &mut &'a [u8], n: usize, err: WireError) -> Result<&'a [u8], WireError> {
    if n > buf.len() {
        return Err(err);
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Takes a length-delimited payload.
#[inline(always)]
fn delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let len = varint(buf)?;
    if len > buf.len() as u64 {
        return Err(E_LENGTH);
    }
    take(buf, len as usize, E_LENGTH)
}

#[inline(always)]
fn expect(wt: u32, want: u32) -> Result<(), WireError> {
    if wt == want {
        Ok(())
    } else {
        Err(E_UNEXPECTED)
    }
}

/// Skips an unknown field as prost's `skip_field`, with the recursion budget of the message it
/// is in.
fn skip(wt: u32, tag: u32, buf: &mut &[u8], budget: u32) -> Result<(), WireError> {
    if budget == 0 {
        return Err(E_RECURSION);
    }
    match wt {
        WT_VARINT => varint(buf).map(|_| ()),
        WT_FIXED64 => take(buf, 8, E_UNDERFLOW).map(|_| ()),
        WT_FIXED32 => take(buf, 4, E_UNDERFLOW).map(|_| ()),
        WT_LEN => delimited(buf).map(|_| ()),
        WT_START_GROUP => loop {
            let (t, w) = key(buf)?;
            if w == WT_END_GROUP {
                return if t == tag { Ok(()) } else { Err(E_END_GROUP) };
            }
            skip(w, t, buf, budget - 1)?;
        },
        _ => Err(E_END_GROUP),
    }
}

/// Walks one message whose fields prost would merge with recursion budget `budget`.
fn walk(schema: &Schema, mut buf: &[u8], budget: u32) -> Result<Scan, WireError> {
    let mut out = Scan::default();
    // The oneof whose data points count: the field number of the variant seen last, and the
    // items of that variant's run of occurrences.
    let mut oneof_tag = 0u32;
    let mut oneof = Scan::default();
    let mut ids: [&[u8]; 3] = [&[], &[], &[]];
    while !buf.is_empty() {
        let (tag, wt) = key(&mut buf)?;
        let kind = schema
            .fields
            .get(tag as usize)
            .copied()
            .unwrap_or(Kind::Unknown);
        match kind {
            Kind::Unknown => skip(wt, tag, &mut buf, budget)?,
            Kind::Varint => {
                expect(wt, WT_VARINT)?;
                varint(&mut buf)?;
            }
            Kind::Fixed64 => {
                expect(wt, WT_FIXED64)?;
                take(&mut buf, 8, E_UNDERFLOW)?;
            }
            Kind::Fixed32 => {
                expect(wt, WT_FIXED32)?;
                take(&mut buf, 4, E_UNDERFLOW)?;
            }
            Kind::Str => {
                expect(wt, WT_LEN)?;
                let s = delimited(&mut buf)?;
                if std::str::from_utf8(s).is_err() {
                    return Err(E_UTF8);
                }
            }
            Kind::Bytes => {
                expect(wt, WT_LEN)?;
                delimited(&mut buf)?;
            }
            Kind::Id(slot) => {
                expect(wt, WT_LEN)?;
                let v = delimited(&mut buf)?;
                if let Some(s) = ids.get_mut(slot as usize) {
                    *s = v;
                }
            }
            Kind::Msg(sub) => {
                expect(wt, WT_LEN)?;
                if budget == 0 {
                    return Err(E_RECURSION);
                }
                let m = delimited(&mut buf)?;
                out.add(walk(sub, m, budget - 1)?);
            }
            Kind::Oneof(sub) => {
                expect(wt, WT_LEN)?;
                if budget == 0 {
                    return Err(E_RECURSION);
                }
                let m = delimited(&mut buf)?;
                let s = walk(sub, m, budget - 1)?;
                if tag != oneof_tag {
                    oneof_tag = tag;
                    oneof = Scan::default();
                }
                oneof.add(s);
            }
            Kind::RepVarint => match wt {
                WT_VARINT => {
                    varint(&mut buf)?;
                }
                WT_LEN => {
                    let mut packed = delimited(&mut buf)?;
                    while !packed.is_empty() {
                        varint(&mut packed)?;
                    }
                }
                _ => return Err(E_UNEXPECTED),
            },
            Kind::RepFixed64 => match wt {
                WT_FIXED64 => {
                    take(&mut buf, 8, E_UNDERFLOW)?;
                }
                WT_LEN => {
                    if delimited(&mut buf)?.len() % 8 != 0 {
                        return Err(E_PACKED);
                    }
                }
                _ => return Err(E_UNEXPECTED),
            },
        }
    }
    out.add(oneof);
    match schema.item {
        Item::No => {}
        Item::Plain => out.items += 1,
        Item::Span => {
            out.items += 1;
            let [trace, span, parent] = ids;
            let ok = trace.len() == 16
                && trace.iter().any(|b| *b != 0)
                && span.len() == 8
                && span.iter().any(|b| *b != 0)
                && (parent.is_empty() || parent.len() == 8);
            out.bad_ids += u64::from(!ok);
        }
        Item::Log => {
            out.items += 1;
            let [trace, span, _] = ids;
            let ok =
                (trace.is_empty() || trace.len() == 16) && (span.is_empty() || span.len() == 8);
            out.bad_ids += u64::from(!ok);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
