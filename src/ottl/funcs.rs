//! The converters: functions that return a value.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use sha2::{Digest, Sha256};

use super::program::{Case, Conv, ConvFn, Hash, TimeFormat};
use super::{fail, EvalError, Val};

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

/// The string form of a value, as `String()` and `Concat` give it.
fn to_text(v: &Val) -> String {
    match v {
        Val::Nil => String::new(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Str(s) => s.to_string(),
        Val::Bytes(b) => hex(b),
        Val::Any(a) => serde_json::to_string(&json(a)).unwrap_or_default(),
    }
}

/// An OTLP value as plain JSON (maps as objects, lists as arrays).
fn json(a: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &a.value {
        None => J::Null,
        Some(Any::StringValue(s)) => J::String(s.clone()),
        Some(Any::BoolValue(b)) => J::Bool(*b),
        Some(Any::IntValue(i)) => J::from(*i),
        Some(Any::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(Any::BytesValue(b)) => J::String(hex(b)),
        Some(Any::ArrayValue(arr)) => J::Array(arr.values.iter().map(json).collect()),
        Some(Any::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, json)))
                .collect(),
        ),
        Some(Any::StringValueStrindex(_)) => J::Null,
    }
}

/// JSON as an OTLP value (numbers: int when integral, double otherwise).
fn from_json(j: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let v = match j {
        J::Null => None,
        J::Bool(b) => Some(Any::BoolValue(b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Some(Any::IntValue(i)),
            None => n.as_f64().map(Any::DoubleValue),
        },
        J::String(s) => Some(Any::StringValue(s)),
        J::Array(a) => Some(Any::ArrayValue(ArrayValue {
            values: a.into_iter().map(from_json).collect(),
        })),
        J::Object(o) => Some(Any::KvlistValue(KeyValueList {
            values: o
                .into_iter()
                .map(|(key, v)| KeyValue {
                    key,
                    value: Some(from_json(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value: v }
}

fn owned(a: AnyValue) -> Val<'static> {
    Val::from_any(Cow::Owned(a))
}

/// Runs converter `c` on its evaluated arguments (in signature order).
pub(super) fn call<'t>(c: &Conv, args: Vec<Val<'t>>) -> Result<Val<'t>, EvalError> {
    let mut args: Vec<Option<Val<'t>>> = args.into_iter().map(Some).collect();
    let mut arg = |i: usize| -> Result<Val<'t>, EvalError> {
        Ok(args.get_mut(i).and_then(Option::take).unwrap_or(Val::Nil))
    };
    let v = match &c.f {
        ConvFn::Concat => {
            let delim = arg(1)?;
            let Some(delim) = delim.as_str() else {
                return fail("Concat: the delimiter must be a string");
            };
            let parts = match arg(0)? {
                Val::Any(a) => match &a.value {
                    Some(Any::ArrayValue(arr)) => arr
                        .values
                        .iter()
                        .map(|v| to_text(&Val::from_any(Cow::Borrowed(v))))
                        .collect::<Vec<_>>(),
                    _ => return fail("Concat: the values must be a list"),
                },
                _ => return fail("Concat: the values must be a list"),
            };
            Val::Str(Cow::Owned(parts.join(delim)))
        }
        ConvFn::ConvertCase(case) => match arg(0)? {
            Val::Str(s) => Val::Str(Cow::Owned(convert_case(&s, *case))),
            Val::Nil => Val::Nil,
            other => {
                return fail(format!(
                    "ConvertCase: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::Int => match arg(0)? {
            Val::Int(i) => Val::Int(i),
            Val::Float(f) if f.is_finite() => Val::Int(f.trunc() as i64),
            Val::Bool(b) => Val::Int(i64::from(b)),
            Val::Str(s) => s.trim().parse::<i64>().map_or(Val::Nil, Val::Int),
            _ => Val::Nil,
        },
        ConvFn::Double => match arg(0)? {
            Val::Int(i) => Val::Float(i as f64),
            Val::Float(f) => Val::Float(f),
            Val::Bool(b) => Val::Float(if b { 1.0 } else { 0.0 }),
            Val::Str(s) => s.trim().parse::<f64>().map_or(Val::Nil, Val::Float),
            _ => Val::Nil,
        },
        ConvFn::String => match arg(0)? {
            Val::Nil => Val::Nil,
            v => Val::Str(Cow::Owned(to_text(&v))),
        },
        ConvFn::IsMatch(re) => match arg(0)? {
            Val::Str(s) => Val::Bool(re.is_match(&s)),
            Val::Nil => Val::Bool(false),
            v @ (Val::Int(_) | Val::Float(_) | Val::Bool(_)) => {
                Val::Bool(re.is_match(&to_text(&v)))
            }
            other => {
                return fail(format!(
                    "IsMatch: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::IsString => Val::Bool(matches!(arg(0)?, Val::Str(_))),
        ConvFn::IsInt => Val::Bool(matches!(arg(0)?, Val::Int(_))),
        ConvFn::IsDouble => Val::Bool(matches!(arg(0)?, Val::Float(_))),
        ConvFn::IsBool => Val::Bool(matches!(arg(0)?, Val::Bool(_))),
        ConvFn::IsMap => Val::Bool(
            matches!(arg(0)?, Val::Any(a) if matches!(a.value, Some(Any::KvlistValue(_)))),
        ),
        ConvFn::IsList => {
            Val::Bool(matches!(arg(0)?, Val::Any(a) if matches!(a.value, Some(Any::ArrayValue(_)))))
        }
        ConvFn::Len => match arg(0)? {
            Val::Str(s) => Val::Int(s.chars().count() as i64),
            Val::Bytes(b) => Val::Int(b.len() as i64),
            Val::Any(a) => match &a.value {
                Some(Any::ArrayValue(x)) => Val::Int(x.values.len() as i64),
                Some(Any::KvlistValue(x)) => Val::Int(x.values.len() as i64),
                _ => Val::Int(0),
            },
            other => {
                return fail(format!(
                    "Len: expected a string, list or map, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::Hash(h) => match arg(0)? {
            Val::Str(s) => hash(*h, &s),
            other => {
                return fail(format!(
                    "{h:?}: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::Trim => {
            let cut = match arg(1)? {
                Val::Nil => " ".to_string(),
                Val::Str(c) => c.into_owned(),
                _ => return fail("Trim: the replacement must be a string"),
            };
            match arg(0)? {
                Val::Str(s) => {
                    let chars: Vec<char> = cut.chars().collect();
                    Val::Str(Cow::Owned(s.trim_matches(chars.as_slice()).to_string()))
                }
                other => {
                    return fail(format!(
                        "Trim: expected a string, got {}",
                        other.type_name()
                    ))
                }
            }
        }
        ConvFn::Format => {
            let Val::Str(f) = arg(0)? else {
                return fail("Format: the format must be a string");
            };
            let args: Vec<Val> = match arg(1)? {
                Val::Any(a) => match &a.value {
                    Some(Any::ArrayValue(arr)) => arr
                        .values
                        .iter()
                        .map(|v| Val::from_any(Cow::Borrowed(v)).into_owned())
                        .collect(),
                    _ => return fail("Format: the arguments must be a list"),
                },
                Val::Nil => Vec::new(),
                _ => return fail("Format: the arguments must be a list"),
            };
            Val::Str(Cow::Owned(go_format(&f, &args)))
        }
        ConvFn::Now => Val::Int(now_ns()),
        ConvFn::Time(tf) => match arg(0)? {
            Val::Str(s) => match parse_time(tf, &s) {
                Some(ns) => Val::Int(ns),
                None => return fail(format!("Time: {s:?} does not match the format")),
            },
            other => {
                return fail(format!(
                    "Time: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::Unix => {
            let (Val::Int(s), nanos) = (arg(0)?, arg(1)?) else {
                return fail("Unix: seconds must be an int");
            };
            let n = match nanos {
                Val::Int(n) => n,
                Val::Nil => 0,
                _ => return fail("Unix: nanoseconds must be an int"),
            };
            Val::Int(s.saturating_mul(1_000_000_000).saturating_add(n))
        }
        ConvFn::UnixPart(div) => match arg(0)? {
            Val::Int(ns) => Val::Int(ns.div_euclid(*div)),
            other => {
                return fail(format!(
                    "expected a time (Unix nanoseconds), got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::Substring => {
            let (Val::Str(s), Val::Int(start), Val::Int(len)) = (arg(0)?, arg(1)?, arg(2)?) else {
                return fail("Substring: expected (string, int, int)");
            };
            let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(len)) else {
                return fail("Substring: start and length must not be negative");
            };
            match s.get(start..start.saturating_add(len)) {
                Some(sub) => Val::Str(Cow::Owned(sub.to_string())),
                None => return fail("Substring: out of range"),
            }
        }
        ConvFn::Split => {
            let (Val::Str(s), Val::Str(d)) = (arg(0)?, arg(1)?) else {
                return fail("Split: expected (string, string)");
            };
            let values = s
                .split(d.as_ref())
                .map(|p| AnyValue {
                    value: Some(Any::StringValue(p.to_string())),
                })
                .collect();
            owned(AnyValue {
                value: Some(Any::ArrayValue(ArrayValue { values })),
            })
        }
        ConvFn::ParseJson => match arg(0)? {
            Val::Str(s) => match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(j) => owned(from_json(j)),
                Err(e) => return fail(format!("ParseJSON: {e}")),
            },
            other => {
                return fail(format!(
                    "ParseJSON: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::ExtractPatterns(re) => match arg(0)? {
            Val::Str(s) => {
                let mut values = Vec::new();
                if let Some(caps) = re.captures(&s) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            values.push(KeyValue {
                                key: name.to_string(),
                                value: Some(AnyValue {
                                    value: Some(Any::StringValue(m.as_str().to_string())),
                                }),
                                ..Default::default()
                            });
                        }
                    }
                }
                owned(AnyValue {
                    value: Some(Any::KvlistValue(KeyValueList { values })),
                })
            }
            other => {
                return fail(format!(
                    "ExtractPatterns: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        ConvFn::TraceId | ConvFn::SpanId => {
            let want = if matches!(c.f, ConvFn::TraceId) {
                16
            } else {
                8
            };
            match arg(0)? {
                Val::Bytes(b) if b.len() == want => Val::Bytes(Cow::Owned(b.into_owned())),
                _ => return fail(format!("expected {want} bytes")),
            }
        }
        ConvFn::Hex => match arg(0)? {
            Val::Bytes(b) => Val::Str(Cow::Owned(hex(&b))),
            Val::Str(s) => Val::Str(Cow::Owned(hex(s.as_bytes()))),
            Val::Int(i) => Val::Str(Cow::Owned(hex(&i.to_be_bytes()))),
            other => return fail(format!("Hex: cannot encode a {}", other.type_name())),
        },
    };
    match &c.key {
        None => Ok(v),
        Some(k) => Ok(match v {
            Val::Any(a) => match a.into_owned().value {
                Some(Any::KvlistValue(kv)) => kv
                    .values
                    .into_iter()
                    .find(|x| &x.key == k)
                    .and_then(|x| x.value)
                    .map_or(Val::Nil, owned),
                _ => return fail("only a map can be indexed by a string"),
            },
            _ => return fail("only a map can be indexed by a string"),
        }),
    }
}

/// A hash of a string, as the Collector's converters give it: hex for the digests, an int for
/// `FNV` (64-bit FNV-1a).
pub(super) fn hash(h: Hash, s: &str) -> Val<'static> {
    use sha1::Sha1;
    use sha2::Sha512;
    let b = s.as_bytes();
    Val::Str(Cow::Owned(match h {
        Hash::Sha1 => hex(&Sha1::digest(b)),
        Hash::Sha256 => hex(&Sha256::digest(b)),
        Hash::Sha512 => hex(&Sha512::digest(b)),
        Hash::Md5 => hex(&md5::Md5::digest(b)),
        Hash::Fnv => {
            let mut x: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in b {
                x ^= u64::from(*byte);
                x = x.wrapping_mul(0x0100_0000_01b3);
            }
            return Val::Int(x as i64);
        }
    }))
}

fn now_ns() -> i64 {
    let ns = crate::data::unix_nanos(std::time::SystemTime::now());
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Parses `s` with `Time`'s format: Unix nanoseconds, `None` when it does not match.
fn parse_time(tf: &TimeFormat, s: &str) -> Option<i64> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    if tf.has_offset {
        return chrono::DateTime::parse_from_str(s, &tf.chrono)
            .ok()?
            .timestamp_nanos_opt();
    }
    let naive = NaiveDateTime::parse_from_str(s, &tf.chrono)
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, &tf.chrono)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    if tf.local {
        return chrono::Local
            .from_local_datetime(&naive)
            .earliest()?
            .timestamp_nanos_opt();
    }
    let offset = chrono::FixedOffset::east_opt(tf.offset_secs)?;
    offset
        .from_local_datetime(&naive)
        .single()?
        .timestamp_nanos_opt()
}

/// Go's `fmt.Sprintf` for the verbs OTTL configs use: `%s %v %d %f %.Nf %x %X %q %t %%`; a verb
/// without an argument or of the wrong type is written as Go writes it (`%!d(MISSING)`, …).
fn go_format(f: &str, args: &[Val]) -> String {
    let mut out = String::with_capacity(f.len() + 16);
    let mut next = args.iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = digits.parse().ok();
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match (verb, v) {
            ('s' | 'v', v) => to_text(v),
            ('d', Val::Int(i)) => i.to_string(),
            ('f' | 'F', Val::Float(x)) => format!("{x:.*}", precision.unwrap_or(6)),
            ('f' | 'F', Val::Int(i)) => format!("%!f(int64={i})"),
            ('x', Val::Int(i)) => format!("{i:x}"),
            ('X', Val::Int(i)) => format!("{i:X}"),
            ('x', Val::Str(s)) => hex(s.as_bytes()),
            ('x', Val::Bytes(b)) => hex(b),
            ('q', v) => format!("{:?}", to_text(v)),
            ('t', Val::Bool(b)) => b.to_string(),
            (verb, v) => format!("%!{verb}({}={})", v.type_name(), to_text(v)),
        };
        out.push_str(&text);
    }
    if next.next().is_some() {
        out.push_str("%!(EXTRA)");
    }
    out
}

fn convert_case(s: &str, case: Case) -> String {
    match case {
        Case::Lower => s.to_lowercase(),
        Case::Upper => s.to_uppercase(),
        Case::Snake => {
            let mut out = String::with_capacity(s.len() + 4);
            let mut prev_lower = false;
            for c in s.chars() {
                if c.is_uppercase() {
                    if prev_lower {
                        out.push('_');
                    }
                    out.extend(c.to_lowercase());
                    prev_lower = false;
                } else if c == '-' || c == ' ' {
                    out.push('_');
                    prev_lower = false;
                } else {
                    out.push(c);
                    prev_lower = c.is_lowercase() || c.is_ascii_digit();
                }
            }
            out
        }
        Case::Camel => {
            let mut out = String::with_capacity(s.len());
            let mut upper = true;
            for c in s.chars() {
                if c == '_' || c == '-' || c == ' ' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}
