//! Running compiled statements and conditions against one item ([`Target`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};

use super::parse::{CmpOp, MathOp};
use super::program::{Co, Condition, Editor, Ex, Post, Statement, Strategy};
use super::{fail, funcs, EvalError, Place, Val};
use crate::data::attributes::AttrsEdit;

/// One item in its context, as statements see it: read a place, write a place, edit a map.
pub trait Target {
    /// The value at `place` (`nil` when absent).
    fn get(&self, place: &Place) -> Result<Val<'_>, EvalError>;
    /// Writes `value` at `place` (never `nil`: `set` skips those).
    fn set(&mut self, place: &Place, value: Val<'_>) -> Result<(), EvalError>;
    /// The map at `place` (a map place without a key).
    fn map(&mut self, place: &Place) -> Result<&mut dyn AttrsEdit, EvalError>;
}

impl Statement {
    /// Runs the statement on one item: its condition, then its editor.
    pub fn execute(&self, t: &mut dyn Target) -> Result<(), EvalError> {
        if let Some(c) = &self.condition {
            if !co(c, t)? {
                return Ok(());
            }
        }
        edit(&self.editor, t)
    }
}

impl Condition {
    /// True when the condition holds for the item.
    pub fn matches(&self, t: &dyn Target) -> Result<bool, EvalError> {
        co(&self.co, t)
    }
}

pub(super) fn co(c: &Co, t: &dyn Target) -> Result<bool, EvalError> {
    match c {
        Co::Or(v) => {
            for x in v {
                if co(x, t)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Co::And(v) => {
            for x in v {
                if !co(x, t)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Co::Not(x) => Ok(!co(x, t)?),
        Co::Cmp(a, op, b) => Ok(compare(&ex(a, t)?, *op, &ex(b, t)?)),
        Co::Value(e) => match ex(e, t)? {
            Val::Bool(b) => Ok(b),
            other => fail(format!("expected a boolean, got {}", other.type_name())),
        },
    }
}

/// OTTL comparison: numbers across int and double, strings and bytes by content, booleans
/// and maps only for (in)equality; different types are unequal; `nil` equals only `nil`.
pub(super) fn compare(a: &Val, op: CmpOp, b: &Val) -> bool {
    let ord = match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Float(y)) => (*x as f64).partial_cmp(y),
        (Val::Float(x), Val::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Nil, Val::Nil) | (Val::Bool(_), Val::Bool(_)) | (Val::Any(_), Val::Any(_)) => {
            return match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                _ => false,
            }
        }
        _ => return op == CmpOp::Ne,
    };
    let Some(ord) = ord else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

pub(super) fn ex<'t>(e: &'t Ex, t: &'t dyn Target) -> Result<Val<'t>, EvalError> {
    match e {
        Ex::Lit(v) => Ok(match v {
            Val::Str(s) => Val::Str(Cow::Borrowed(s)),
            other => other.clone(),
        }),
        Ex::Get(p) => t.get(p),
        Ex::Conv(c) => {
            let args = c
                .args
                .iter()
                .map(|a| ex(a, t))
                .collect::<Result<Vec<_>, _>>()?;
            funcs::call(c, args)
        }
        Ex::List(items) => {
            let values = items
                .iter()
                .map(|x| Ok(ex(x, t)?.to_any().unwrap_or_default()))
                .collect::<Result<Vec<_>, EvalError>>()?;
            Ok(Val::Any(Cow::Owned(AnyValue {
                value: Some(Any::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue { values },
                )),
            })))
        }
        Ex::Map(entries) => {
            let values = entries
                .iter()
                .map(|(k, x)| {
                    Ok(opentelemetry_proto::tonic::common::v1::KeyValue {
                        key: k.clone(),
                        value: ex(x, t)?.to_any(),
                        ..Default::default()
                    })
                })
                .collect::<Result<Vec<_>, EvalError>>()?;
            Ok(Val::Any(Cow::Owned(AnyValue {
                value: Some(Any::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList { values },
                )),
            })))
        }
        Ex::Math(a, op, b) => math(&ex(a, t)?, *op, &ex(b, t)?),
        Ex::Neg(a) => match ex(a, t)? {
            Val::Int(i) => Ok(Val::Int(i.wrapping_neg())),
            Val::Float(f) => Ok(Val::Float(-f)),
            other => fail(format!("cannot negate a {}", other.type_name())),
        },
        Ex::Cond(c) => Ok(Val::Bool(co(c, t)?)),
    }
}

fn math(a: &Val, op: MathOp, b: &Val) -> Result<Val<'static>, EvalError> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => {
            let r = match op {
                MathOp::Add => x.checked_add(*y),
                MathOp::Sub => x.checked_sub(*y),
                MathOp::Mul => x.checked_mul(*y),
                MathOp::Div => x.checked_div(*y),
            };
            r.map(Val::Int)
                .ok_or_else(|| EvalError("integer overflow or division by zero".into()))
        }
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            let f = |v: &Val| match v {
                Val::Int(i) => *i as f64,
                Val::Float(f) => *f,
                _ => 0.0,
            };
            let (x, y) = (f(a), f(b));
            Ok(Val::Float(match op {
                MathOp::Add => x + y,
                MathOp::Sub => x - y,
                MathOp::Mul => x * y,
                MathOp::Div if y == 0.0 => return fail("division by zero"),
                MathOp::Div => x / y,
            }))
        }
        _ => fail(format!(
            "math needs numbers, got {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn text(v: Val<'_>) -> Option<String> {
    match v {
        Val::Str(s) => Some(s.into_owned()),
        _ => None,
    }
}

fn edit(e: &Editor, t: &mut dyn Target) -> Result<(), EvalError> {
    match e {
        Editor::Set(p, v) => {
            let v = ex(v, t)?.into_owned();
            if v == Val::Nil {
                return Ok(());
            }
            t.set(p, v)
        }
        Editor::DeleteKey(p, k) => {
            let Some(key) = text(ex(k, t)?) else {
                return fail("delete_key: the key must be a string");
            };
            let m = t.map(p)?;
            while let Some(i) = m.position(&key) {
                m.remove_at(i);
            }
            Ok(())
        }
        Editor::DeleteMatchingKeys(p, re) => {
            t.map(p)?.remove_where(&mut |k| re.is_match(k));
            Ok(())
        }
        Editor::KeepKeys(p, keys) => {
            t.map(p)?
                .remove_where(&mut |k| !keys.iter().any(|x| x == k));
            Ok(())
        }
        Editor::KeepMatchingKeys(p, re) => {
            t.map(p)?.remove_where(&mut |k| !re.is_match(k));
            Ok(())
        }
        Editor::Limit(p, n, priority) => {
            let m = t.map(p)?;
            let live: Vec<String> = (0..m.slots())
                .filter_map(|i| m.key_at(i).map(str::to_string))
                .collect();
            if live.len() <= *n {
                return Ok(());
            }
            let mut keep: Vec<&str> = priority
                .iter()
                .filter(|k| live.contains(k))
                .map(String::as_str)
                .take(*n)
                .collect();
            for k in &live {
                if keep.len() >= *n {
                    break;
                }
                if !keep.contains(&k.as_str()) {
                    keep.push(k);
                }
            }
            m.remove_where(&mut |k| !keep.contains(&k));
            Ok(())
        }
        Editor::TruncateAll(p, n) => {
            let m = t.map(p)?;
            for i in 0..m.slots() {
                let cut = match m.value_at(i).as_deref() {
                    Some(AnyValue {
                        value: Some(Any::StringValue(s)),
                    }) if s.len() > *n => {
                        let mut end = *n;
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        s[..end].to_string()
                    }
                    _ => continue,
                };
                m.set_at(i, Cow::Owned(string(cut)));
            }
            Ok(())
        }
        Editor::ReplacePattern(p, re, r, pp) => {
            let Some(repl) = text(ex(r, t)?) else {
                return fail("replace_pattern: the replacement must be a string");
            };
            let new = match t.get(p)? {
                Val::Str(s) => match replace(re, &s, &repl, pp) {
                    Cow::Borrowed(_) => return Ok(()),
                    Cow::Owned(n) => n,
                },
                _ => return Ok(()),
            };
            t.set(p, Val::Str(Cow::Owned(new)))
        }
        Editor::ReplaceMatch(p, glob, r, pp) => {
            let Some(repl) = text(ex(r, t)?) else {
                return fail("replace_match: the replacement must be a string");
            };
            let hit = matches!(t.get(p)?, Val::Str(s) if glob.is_match(&s));
            if hit {
                t.set(p, Val::Str(Cow::Owned(post(pp, repl))))?;
            }
            Ok(())
        }
        Editor::ReplaceAllMatches(p, glob, r, pp) => {
            let Some(repl) = text(ex(r, t)?) else {
                return fail("replace_all_matches: the replacement must be a string");
            };
            let repl = post(pp, repl);
            let m = t.map(p)?;
            for i in 0..m.slots() {
                let hit = matches!(m.value_at(i).as_deref(), Some(AnyValue { value: Some(Any::StringValue(s)) }) if glob.is_match(s));
                if hit {
                    m.set_at(i, Cow::Owned(string(repl.clone())));
                }
            }
            Ok(())
        }
        Editor::ReplaceAllPatterns(p, keys, re, r, pp) => {
            let Some(repl) = text(ex(r, t)?) else {
                return fail("replace_all_patterns: the replacement must be a string");
            };
            let m = t.map(p)?;
            if !*keys {
                for i in 0..m.slots() {
                    let new = match m.value_at(i).as_deref() {
                        Some(AnyValue {
                            value: Some(Any::StringValue(s)),
                        }) => match replace(re, s, &repl, pp) {
                            Cow::Owned(n) => n,
                            Cow::Borrowed(_) => continue,
                        },
                        _ => continue,
                    };
                    m.set_at(i, Cow::Owned(string(new)));
                }
                return Ok(());
            }
            // keys: each renamed key moves to the end with its value
            let mut renamed = Vec::new();
            for i in 0..m.slots() {
                let Some(k) = m.key_at(i) else { continue };
                if let Cow::Owned(n) = replace(re, k, &repl, pp) {
                    renamed.push((k.to_string(), n, m.value_at(i).map(Cow::into_owned)));
                }
            }
            for (old, new, value) in renamed {
                if let Some(i) = m.position(&old) {
                    m.remove_at(i);
                }
                m.set(&new, Cow::Owned(value.unwrap_or_default()));
            }
            Ok(())
        }
        Editor::MergeMaps(p, src, strategy) => {
            let src = ex(src, t)?.into_owned();
            let Val::Any(src) = src else {
                return fail("merge_maps: the source must be a map");
            };
            let Some(Any::KvlistValue(kvs)) = src.into_owned().value else {
                return fail("merge_maps: the source must be a map");
            };
            let m = t.map(p)?;
            for kv in kvs.values {
                let exists = m.position(&kv.key).is_some();
                let go = match strategy {
                    Strategy::Insert => !exists,
                    Strategy::Update => exists,
                    Strategy::Upsert => true,
                };
                if go {
                    m.set(&kv.key, Cow::Owned(kv.value.unwrap_or_default()));
                }
            }
            Ok(())
        }
        Editor::Append(p, v, vs) => {
            let mut items: Vec<AnyValue> = match t.get(p)?.into_owned() {
                Val::Nil => Vec::new(),
                Val::Any(a) => match a.into_owned() {
                    AnyValue {
                        value: Some(Any::ArrayValue(arr)),
                    } => arr.values,
                    other => vec![other],
                },
                other => other.to_any().into_iter().collect(),
            };
            let before = items.len();
            if let Some(a) = ex(v, t)?.to_any() {
                items.push(a);
            }
            match ex(vs, t)?.into_owned() {
                Val::Nil => {}
                Val::Any(a) => match a.into_owned() {
                    AnyValue {
                        value: Some(Any::ArrayValue(arr)),
                    } => items.extend(arr.values),
                    _ => return fail("append: values must be a list"),
                },
                _ => return fail("append: values must be a list"),
            }
            if items.len() == before && before > 0 {
                return Ok(());
            }
            t.set(
                p,
                Val::Any(Cow::Owned(AnyValue {
                    value: Some(Any::ArrayValue(ArrayValue { values: items })),
                })),
            )
        }
        Editor::Flatten(p, prefix, depth) => {
            let m = t.map(p)?;
            let mut pairs = Vec::with_capacity(m.slots());
            for i in 0..m.slots() {
                if let (Some(k), Some(v)) = (m.key_at(i), m.value_at(i)) {
                    pairs.push((k.to_string(), v.into_owned()));
                }
            }
            let mut flat = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(key, v, depth.unwrap_or(usize::MAX), &mut flat);
            }
            m.remove_where(&mut |_| true);
            for (k, v) in flat {
                m.set(&k, Cow::Owned(v));
            }
            Ok(())
        }
    }
}

/// `key: value` with nested maps and lists moved up as `key.sub` / `key.0`, `depth` levels deep.
fn flatten_into(key: String, v: AnyValue, depth: usize, out: &mut Vec<(String, AnyValue)>) {
    match v.value {
        Some(Any::KvlistValue(kv)) if depth > 0 => {
            for x in kv.values {
                flatten_into(
                    format!("{key}.{}", x.key),
                    x.value.unwrap_or_default(),
                    depth - 1,
                    out,
                );
            }
        }
        Some(Any::ArrayValue(arr)) if depth > 0 => {
            for (i, x) in arr.values.into_iter().enumerate() {
                flatten_into(format!("{key}.{i}"), x, depth - 1, out);
            }
        }
        value => out.push((key, AnyValue { value })),
    }
}

/// The `replace_*` editors' replacement after the optional hash and `replacementFormat`.
fn post(pp: &Post, r: String) -> String {
    if pp.is_identity() {
        return r;
    }
    let r = match pp.hash {
        Some(h) => match funcs::hash(h, &r) {
            Val::Str(s) => s.into_owned(),
            Val::Int(i) => i.to_string(),
            _ => r,
        },
        None => r,
    };
    match &pp.format {
        Some(f) => f.replacen("%s", &r, 1),
        None => r,
    }
}

/// Every match of `re` in `s` replaced by `repl` (with `$1` expansion), then hashed and
/// formatted when the editor has a `function` / `replacementFormat`.
fn replace<'s>(re: &regex::Regex, s: &'s str, repl: &str, pp: &Post) -> Cow<'s, str> {
    if pp.is_identity() {
        return re.replace_all(s, repl);
    }
    re.replace_all(s, |caps: &regex::Captures<'_>| {
        let mut expanded = String::new();
        caps.expand(repl, &mut expanded);
        post(pp, expanded)
    })
}

pub(super) fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(Any::StringValue(s)),
    }
}
