//! Stanza field references (`body`, `body.a.b`, `attributes["k.with.dots"]`, `resource.x`,
//! `$body`…) and get/set/delete on an [`Entry`].

use super::Entry;
use serde_json::{Map, Value};

/// Which part of the entry a field lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Body,
    Attributes,
    Resource,
}

/// A parsed field reference: a root plus a (possibly empty) key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub root: Root,
    pub path: Vec<String>,
}

impl Field {
    pub fn body() -> Self {
        Field {
            root: Root::Body,
            path: Vec::new(),
        }
    }
    pub fn attr(key: &str) -> Self {
        Field {
            root: Root::Attributes,
            path: vec![key.to_string()],
        }
    }
    pub fn root_name(name: &str) -> Option<Root> {
        match name.strip_prefix('$').unwrap_or(name) {
            "body" => Some(Root::Body),
            "attributes" => Some(Root::Attributes),
            "resource" => Some(Root::Resource),
            _ => None,
        }
    }

    /// Parses `root(.key|["key"]|['key'])*`.
    pub fn parse(s: &str) -> Result<Field, String> {
        let s = s.trim();
        let end = s.find(['.', '[']).unwrap_or(s.len());
        let (head, mut rest) = s.split_at(end);
        let root = Self::root_name(head).ok_or_else(|| {
            format!("invalid field {s:?}: must start with body, attributes or resource")
        })?;
        let mut path = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() {
                    return Err(format!("invalid field {s:?}: empty key"));
                }
                path.push(key.to_string());
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let quote = r.chars().next().filter(|c| *c == '"' || *c == '\'');
                let Some(q) = quote else {
                    return Err(format!("invalid field {s:?}: bracketed key must be quoted"));
                };
                let body = &r[1..];
                let close = body
                    .find(q)
                    .ok_or_else(|| format!("invalid field {s:?}: unterminated quote"))?;
                path.push(body[..close].to_string());
                rest = body[close + 1..]
                    .strip_prefix(']')
                    .ok_or_else(|| format!("invalid field {s:?}: expected ']'"))?;
            } else {
                return Err(format!("invalid field {s:?}"));
            }
        }
        Ok(Field { root, path })
    }

    /// The value at this field (the whole map for a bare `attributes`/`resource`).
    pub fn get(&self, e: &Entry) -> Option<Value> {
        self.get_ref(e).map(|v| v.into_owned())
    }

    fn get_ref<'a>(&self, e: &'a Entry) -> Option<std::borrow::Cow<'a, Value>> {
        use std::borrow::Cow;
        let (first, rest): (&Value, &[String]) = match self.root {
            Root::Body => (&e.body, &self.path[..]),
            Root::Attributes | Root::Resource => {
                let m = if self.root == Root::Attributes {
                    &e.attributes
                } else {
                    &e.resource
                };
                let Some((k, rest)) = self.path.split_first() else {
                    return Some(Cow::Owned(Value::Object(m.clone())));
                };
                (m.get(k)?, rest)
            }
        };
        let mut cur = first;
        for k in rest {
            cur = cur.as_object()?.get(k)?;
        }
        Some(Cow::Borrowed(cur))
    }

    /// The value as a string, if it is one.
    pub fn get_str<'a>(&self, e: &'a Entry) -> Option<&'a str> {
        match self.get_ref(e)? {
            std::borrow::Cow::Borrowed(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Sets the field, creating intermediate maps. A map set at a bare `attributes`/`resource`
    /// is merged into it; any other value there is an error.
    pub fn set(&self, e: &mut Entry, v: Value) -> Result<(), String> {
        let (map, path): (&mut Map<String, Value>, &[String]) = match self.root {
            Root::Body => {
                let Some((last, init)) = self.path.split_last() else {
                    e.body = v;
                    return Ok(());
                };
                let mut cur = &mut e.body;
                for k in init {
                    cur = object_mut(cur)?.entry(k.clone()).or_insert(Value::Null);
                }
                object_mut(cur)?.insert(last.clone(), v);
                return Ok(());
            }
            Root::Attributes => (&mut e.attributes, &self.path[..]),
            Root::Resource => (&mut e.resource, &self.path[..]),
        };
        let Some((last, init)) = path.split_last() else {
            return match v {
                Value::Object(m) => {
                    map.extend(m);
                    Ok(())
                }
                other => Err(format!("cannot set a non-map value {other} at {self}")),
            };
        };
        let mut m = map;
        for k in init {
            m = object_mut(m.entry(k.clone()).or_insert(Value::Null))?;
        }
        m.insert(last.clone(), v);
        Ok(())
    }

    /// Removes and returns the field (a bare root is cleared).
    pub fn delete(&self, e: &mut Entry) -> Option<Value> {
        let (map, path): (&mut Map<String, Value>, &[String]) = match self.root {
            Root::Body => {
                let Some((last, init)) = self.path.split_last() else {
                    return Some(std::mem::take(&mut e.body));
                };
                let mut cur = &mut e.body;
                for k in init {
                    cur = cur.as_object_mut()?.get_mut(k)?;
                }
                return cur.as_object_mut()?.remove(last);
            }
            Root::Attributes => (&mut e.attributes, &self.path[..]),
            Root::Resource => (&mut e.resource, &self.path[..]),
        };
        let Some((last, init)) = path.split_last() else {
            return Some(Value::Object(std::mem::take(map)));
        };
        let mut m = map;
        for k in init {
            m = m.get_mut(k)?.as_object_mut()?;
        }
        m.remove(last)
    }
}

/// Turns `v` into a map (replacing a non-map value) and returns it.
fn object_mut(v: &mut Value) -> Result<&mut Map<String, Value>, String> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
        .ok_or_else(|| "internal: not a map".to_string())
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.root {
            Root::Body => "body",
            Root::Attributes => "attributes",
            Root::Resource => "resource",
        })?;
        for k in &self.path {
            if k.contains(['.', '[', ']', '"', ' ']) {
                write!(f, "[{k:?}]")?;
            } else {
                write!(f, ".{k}")?;
            }
        }
        Ok(())
    }
}
