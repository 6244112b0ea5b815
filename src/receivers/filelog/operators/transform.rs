//! `move`, `copy`, `add`, `remove`, `retain` and `flatten`.

use super::expr::Expr;
use super::field::{Field, Root};
use super::{yaml_to_json, Cfg, Entry, COMMON};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Transform {
    /// `from` → `to` (removing `from`).
    Move { from: Field, to: Field },
    /// `from` → `to` (keeping `from`).
    Copy { from: Field, to: Field },
    /// `field` = `value` (a literal, or `EXPR(...)` evaluated per entry).
    Add { field: Field, value: AddValue },
    /// Deletes `field`.
    Remove(Field),
    /// Keeps only `fields` within each root (body/attributes/resource) that any of them names.
    Retain(Vec<Field>),
    /// Lifts the keys of the map at `field` (a body field) one level up.
    Flatten(Field),
}

#[derive(Debug, Clone)]
pub enum AddValue {
    Lit(Value),
    Expr(Expr),
}

fn required(c: &mut Cfg, k: &str) -> Option<Field> {
    if c.get(k).is_none() {
        c.err(k, "required");
        return None;
    }
    c.field(k)
}

/// The inside of `EXPR(...)`.
fn expr_body(s: &str) -> Option<&str> {
    s.trim().strip_prefix("EXPR(")?.strip_suffix(')')
}

pub fn parse(ty: &str, c: &mut Cfg) -> Option<Transform> {
    match ty {
        "move" | "copy" => {
            c.allow(&[COMMON, &["from", "to"]]);
            let (from, to) = (required(c, "from"), required(c, "to"));
            let (from, to) = (from?, to?);
            Some(if ty == "move" {
                Transform::Move { from, to }
            } else {
                Transform::Copy { from, to }
            })
        }
        "add" => {
            c.allow(&[COMMON, &["field", "value"]]);
            let field = required(c, "field");
            let value = match c.m.get("value") {
                None => {
                    c.err("value", "required");
                    None
                }
                Some(serde_norway::Value::String(s)) if expr_body(s).is_some() => {
                    let inner = expr_body(s).unwrap_or_default();
                    match Expr::compile(inner) {
                        Ok(x) => Some(AddValue::Expr(x)),
                        Err(e) => {
                            c.err("value", format!("expression {inner:?}: {e}"));
                            None
                        }
                    }
                }
                Some(v) => Some(AddValue::Lit(yaml_to_json(v))),
            };
            Some(Transform::Add {
                field: field?,
                value: value?,
            })
        }
        "remove" => {
            c.allow(&[COMMON, &["field"]]);
            Some(Transform::Remove(required(c, "field")?))
        }
        "flatten" => {
            c.allow(&[COMMON, &["field"]]);
            let f = required(c, "field")?;
            if f.root != Root::Body || f.path.is_empty() {
                c.err("field", "must be a field inside body, e.g. body.nested");
                return None;
            }
            Some(Transform::Flatten(f))
        }
        _ => {
            c.allow(&[COMMON, &["fields"]]);
            let Some(serde_norway::Value::Sequence(items)) = c.get("fields") else {
                c.err("fields", "required: a list of fields");
                return None;
            };
            let mut fields = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(Field::parse) {
                    Some(Ok(f)) => fields.push(f),
                    Some(Err(e)) => c.err(&format!("fields[{i}]"), e),
                    None => c.err(&format!("fields[{i}]"), "must be a string"),
                }
            }
            Some(Transform::Retain(fields))
        }
    }
}

impl Transform {
    pub fn apply(&self, e: &mut Entry) -> Result<(), String> {
        match self {
            Transform::Move { from, to } => {
                let v = from.delete(e).ok_or_else(|| format!("{from} is missing"))?;
                to.set(e, v)
            }
            Transform::Copy { from, to } => {
                let v = from.get(e).ok_or_else(|| format!("{from} is missing"))?;
                to.set(e, v)
            }
            Transform::Add { field, value } => {
                let v = match value {
                    AddValue::Lit(v) => v.clone(),
                    AddValue::Expr(x) => x.eval(e),
                };
                field.set(e, v)
            }
            Transform::Remove(f) => f
                .delete(e)
                .map(|_| ())
                .ok_or_else(|| format!("{f} is missing")),
            Transform::Flatten(f) => {
                let Some(Value::Object(m)) = f.get(e) else {
                    return Err(format!("{f} is not a map"));
                };
                f.delete(e);
                let parent = Field {
                    root: f.root,
                    path: f.path[..f.path.len().saturating_sub(1)].to_vec(),
                };
                for (k, v) in m {
                    let mut target = parent.clone();
                    target.path.push(k);
                    target.set(e, v)?;
                }
                Ok(())
            }
            Transform::Retain(fields) => {
                let mut kept = Entry::default();
                for root in [Root::Body, Root::Attributes, Root::Resource] {
                    let mine: Vec<&Field> = fields.iter().filter(|f| f.root == root).collect();
                    if mine.is_empty() {
                        continue;
                    }
                    for f in &mine {
                        if let Some(v) = f.get(e) {
                            f.set(&mut kept, v)?;
                        }
                    }
                    match root {
                        Root::Body => e.body = std::mem::take(&mut kept.body),
                        Root::Attributes => e.attributes = std::mem::take(&mut kept.attributes),
                        Root::Resource => e.resource = std::mem::take(&mut kept.resource),
                    }
                }
                Ok(())
            }
        }
    }
}
