//! The attribute action engine shared by `attributes` (span, log record and data point
//! attributes) and `resource` (resource attributes): the `actions` / `attributes` entries as
//! configured ([`ActionConfig`]), compiled once ([`compile_all`]) and applied to one attribute
//! set at a time ([`apply`]). Keys, defaults and semantics are the Collector's.
//!
//! Actions run in the order listed, each on the result of the one before:
//! - `insert`: set the key only when it is absent; `update`: only when present; `upsert`: always.
//!   The value comes from `value` (typed from YAML), `from_attribute` (another key of the same
//!   set), or `from_context` (`metadata.<header>` — needs the receiver's `include_metadata` —
//!   or `client.address`). A missing source leaves the attributes unchanged.
//! - `delete`: remove `key`, and/or every key matching `pattern`.
//! - `hash`: replace the value of `key` / keys matching `pattern` with the lowercase hex SHA-256
//!   of its string form (strings as they are; other types as their OTLP/JSON text).
//! - `extract`: match `pattern` (named groups) against the string value of `key`; upsert one
//!   attribute per named group. No match: nothing changes.
//! - `convert`: `converted_type: int | double | string`; a value that does not convert is left
//!   as it is.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::component::Diagnostics;
use crate::data::attributes::AttrsEdit;
use crate::data::RequestMeta;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Insert,
    Update,
    Upsert,
    Delete,
    Hash,
    Extract,
    Convert,
}

/// One entry of `actions` (attributes) or `attributes` (resource).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// The attribute key acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A regular expression: keys to delete/hash, or named groups to extract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    pub action: ActionType,
    /// A literal value (string, int, double, bool, or a list of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_norway::Value>,
    /// Take the value from this attribute of the same set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_attribute: Option<String>,
    /// Take the value from the request: `metadata.<header>` or `client.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_context: Option<String>,
    /// For `convert`: `int`, `double` or `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_type: Option<String>,
}

fn yaml_to_any(v: &serde_norway::Value) -> Option<AnyValue> {
    let value = match v {
        serde_norway::Value::String(s) => Value::StringValue(s.clone()),
        serde_norway::Value::Bool(b) => Value::BoolValue(*b),
        serde_norway::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64()?),
        },
        serde_norway::Value::Sequence(items) => Value::ArrayValue(ArrayValue {
            values: items.iter().map(yaml_to_any).collect::<Option<Vec<_>>>()?,
        }),
        serde_norway::Value::Mapping(m) => Value::KvlistValue(KeyValueList {
            values: m
                .iter()
                .map(|(k, v)| {
                    Some(KeyValue {
                        key: k.as_str()?.to_string(),
                        value: Some(yaml_to_any(v)?),
                        ..Default::default()
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        }),
        _ => return None,
    };
    Some(AnyValue { value: Some(value) })
}

#[derive(Debug, Clone)]
enum Source {
    Value(AnyValue),
    Attribute(String),
    Metadata(String),
    ClientAddress,
    /// `auth.username` / `auth.subject`: the identity the receiver's authenticator vouched for.
    AuthIdentity,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Int,
    Double,
    Str,
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        insert: bool,
        update: bool,
        source: Source,
    },
    Delete,
    Hash,
    Extract(Regex),
    Convert(Target),
}

/// A compiled action.
#[derive(Debug, Clone)]
pub struct Action {
    key: Option<String>,
    pattern: Option<Regex>,
    op: Op,
}

impl ActionConfig {
    /// Checks and compiles the action; problems go to `diag` under `path`.
    pub fn compile(&self, path: &str, diag: &mut Diagnostics) -> Option<Action> {
        let before = diag.errors.len();
        let pattern = match &self.pattern {
            Some(p) => match Regex::new(p) {
                Ok(r) => Some(r),
                Err(e) => {
                    diag.error(
                        format!("{path}.pattern"),
                        format!("invalid regular expression: {e}"),
                    );
                    None
                }
            },
            None => None,
        };
        let need_key = |diag: &mut Diagnostics| {
            if self.key.as_deref().unwrap_or("").is_empty() {
                diag.error(
                    format!("{path}.key"),
                    format!("required for {:?}", self.action),
                );
            }
        };
        let op = match self.action {
            ActionType::Insert | ActionType::Update | ActionType::Upsert => {
                need_key(diag);
                let given = [
                    self.value.is_some(),
                    self.from_attribute.is_some(),
                    self.from_context.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if given != 1 {
                    diag.error(
                        path,
                        "give exactly one of value, from_attribute, from_context",
                    );
                }
                let source = if let Some(v) = &self.value {
                    match yaml_to_any(v) {
                        Some(a) => Source::Value(a),
                        None => {
                            diag.error(
                                format!("{path}.value"),
                                "unsupported value (use a string, number, bool, list or map)",
                            );
                            Source::Value(AnyValue::default())
                        }
                    }
                } else if let Some(a) = &self.from_attribute {
                    Source::Attribute(a.clone())
                } else {
                    match self.from_context.as_deref() {
                        Some("client.address") => Source::ClientAddress,
                        Some("auth.username" | "auth.subject") => Source::AuthIdentity,
                        Some(c) => match c.strip_prefix("metadata.") {
                            Some(h) if !h.is_empty() => Source::Metadata(h.to_ascii_lowercase()),
                            _ => {
                                diag.error(
                                    format!("{path}.from_context"),
                                    format!("unknown context {c:?} (use metadata.<header>, client.address, auth.username or auth.subject)"),
                                );
                                Source::ClientAddress
                            }
                        },
                        None => Source::ClientAddress,
                    }
                };
                Op::Set {
                    insert: self.action != ActionType::Update,
                    update: self.action != ActionType::Insert,
                    source,
                }
            }
            ActionType::Delete | ActionType::Hash => {
                if self.key.is_none() && self.pattern.is_none() {
                    diag.error(
                        path,
                        format!("{:?} needs key or pattern", self.action).to_lowercase(),
                    );
                }
                if self.action == ActionType::Delete {
                    Op::Delete
                } else {
                    Op::Hash
                }
            }
            ActionType::Extract => {
                need_key(diag);
                match &pattern {
                    Some(r) if r.capture_names().flatten().next().is_some() => {
                        Op::Extract(r.clone())
                    }
                    Some(_) => {
                        diag.error(
                            format!("{path}.pattern"),
                            "extract needs named groups, e.g. (?P<host>[^/]+)",
                        );
                        return None;
                    }
                    None => {
                        if self.pattern.is_none() {
                            diag.error(format!("{path}.pattern"), "required for extract");
                        }
                        return None;
                    }
                }
            }
            ActionType::Convert => {
                need_key(diag);
                match self.converted_type.as_deref() {
                    Some("int") => Op::Convert(Target::Int),
                    Some("double") => Op::Convert(Target::Double),
                    Some("string") => Op::Convert(Target::Str),
                    other => {
                        diag.error(
                            format!("{path}.converted_type"),
                            format!("{other:?}: use int, double or string"),
                        );
                        return None;
                    }
                }
            }
        };
        (diag.errors.len() == before).then(|| Action {
            key: self.key.clone(),
            pattern: if matches!(op, Op::Extract(_)) {
                None
            } else {
                pattern
            },
            op,
        })
    }
}

/// Compiles a list of actions, reporting problems at `path[i]`.
pub fn compile_all(actions: &[ActionConfig], path: &str, diag: &mut Diagnostics) -> Vec<Action> {
    actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.compile(&format!("{path}[{i}]"), diag))
        .collect()
}

/// The string form of a value: strings as they are, other types as their OTLP/JSON text.
pub(super) fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        _ => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn sha256_hex(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

fn string_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s)),
    }
}

fn converted(target: Target, current: &AnyValue) -> Option<AnyValue> {
    let value = match (target, current.value.as_ref()?) {
        (Target::Int, Value::StringValue(s)) => Value::IntValue(s.trim().parse::<i64>().ok()?),
        (Target::Int, Value::DoubleValue(d)) if d.is_finite() => Value::IntValue(d.trunc() as i64),
        (Target::Int, Value::BoolValue(b)) => Value::IntValue(*b as i64),
        (Target::Double, Value::StringValue(s)) => {
            Value::DoubleValue(s.trim().parse::<f64>().ok()?)
        }
        (Target::Double, Value::IntValue(i)) => Value::DoubleValue(*i as f64),
        (Target::Str, _) => Value::StringValue(any_to_string(current)),
        _ => return None,
    };
    Some(AnyValue { value: Some(value) })
}

impl Action {
    fn selects(&self, key: &str) -> bool {
        self.key.as_deref() == Some(key) || self.pattern.as_ref().is_some_and(|p| p.is_match(key))
    }
}

/// Applies `actions` in order to one attribute set: a decoded item's `Vec<KeyValue>` or an
/// encoded item's [`crate::wire::WireAttrs`] (one engine for both, see
/// [`crate::data::attributes`]).
pub fn apply<A: AttrsEdit + ?Sized>(actions: &[Action], attrs: &mut A, meta: &RequestMeta) {
    for a in actions {
        let key = a.key.as_deref().unwrap_or("");
        match &a.op {
            Op::Set {
                insert,
                update,
                source,
            } => {
                let exists = attrs.position(key).is_some();
                if (exists && !update) || (!exists && !insert) {
                    continue;
                }
                let value = match source {
                    Source::Value(v) => Some(Cow::Borrowed(v)),
                    Source::Attribute(from) => attrs
                        .position(from)
                        .and_then(|i| attrs.value_at(i))
                        .map(|v| Cow::Owned(v.into_owned())),
                    Source::Metadata(h) => meta
                        .headers
                        .iter()
                        .find(|(k, _)| k == h)
                        .map(|(_, v)| Cow::Owned(string_value(v.clone()))),
                    Source::ClientAddress => meta
                        .client_address
                        .map(|a| Cow::Owned(string_value(a.ip().to_string()))),
                    Source::AuthIdentity => meta
                        .auth
                        .as_ref()
                        .map(|i| Cow::Owned(string_value(i.to_string()))),
                };
                if let Some(v) = value {
                    attrs.set(key, v);
                }
            }
            // a key alone is found by comparison (every occurrence), a pattern tests each key
            Op::Delete if a.pattern.is_none() => {
                while let Some(i) = attrs.position(key) {
                    attrs.remove_at(i);
                }
            }
            Op::Delete => attrs.remove_where(&mut |k| a.selects(k)),
            Op::Hash => {
                for i in 0..attrs.slots() {
                    if attrs.key_at(i).is_some_and(|k| a.selects(k)) {
                        let text = attrs
                            .value_at(i)
                            .map(|v| any_to_string(&v))
                            .unwrap_or_default();
                        attrs.set_at(i, Cow::Owned(string_value(sha256_hex(&text))));
                    }
                }
            }
            Op::Extract(re) => {
                let Some(i) = attrs.position(key) else {
                    continue;
                };
                let text = match attrs.value_at(i).as_deref() {
                    Some(AnyValue {
                        value: Some(Value::StringValue(s)),
                    }) => s.clone(),
                    _ => continue,
                };
                if let Some(caps) = re.captures(&text) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            attrs.set(name, Cow::Owned(string_value(m.as_str().to_string())));
                        }
                    }
                }
            }
            Op::Convert(target) => {
                let Some(i) = attrs.position(key) else {
                    continue;
                };
                if let Some(v) = attrs.value_at(i).and_then(|v| converted(*target, &v)) {
                    attrs.set_at(i, Cow::Owned(v));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
