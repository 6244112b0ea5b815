//! The converters: functions that return a value.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use sha2::{Digest, Sha256};

use super::program::{Case, Conv, ConvFn};
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
        ConvFn::Sha256 => match arg(0)? {
            Val::Str(s) => Val::Str(Cow::Owned(hex(&Sha256::digest(s.as_bytes())))),
            other => {
                return fail(format!(
                    "SHA256: expected a string, got {}",
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
