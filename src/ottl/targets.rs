//! The items statements run on: decoded prost structs in every context, and encoded items on
//! the wire ([`WireTarget`]) for what [`super::Statement::on_wire`] allows.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, Metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;

use super::eval::Target;
use super::parse::Key;
use super::{fail, EvalError};
use super::{Field, Owner, Place, Val};
use crate::data::attributes::{AttrsEdit, AttrsRead};
use crate::wire::{ItemEdit, ItemKind};

fn hex(b: &[u8]) -> String {
    crate::data::hex(b)
}

/// The value at a place of a map: its key, then the further indexes into maps and lists.
fn read<'x, A: AttrsRead + ?Sized>(attrs: &'x A, p: &Place) -> Val<'x> {
    let mut v = read_key(attrs, p.key.as_deref());
    for k in &p.rest {
        v = match v {
            Val::Any(Cow::Borrowed(a)) => {
                child(a, k).map_or(Val::Nil, |x| Val::from_any(Cow::Borrowed(x)))
            }
            Val::Any(Cow::Owned(a)) => {
                child(&a, k).map_or(Val::Nil, |x| Val::from_any(Cow::Owned(x.clone())))
            }
            _ => Val::Nil,
        };
    }
    v
}

/// One index into a map (by key) or a list (by position).
fn child<'a>(a: &'a AnyValue, k: &Key) -> Option<&'a AnyValue> {
    match (&a.value, k) {
        (Some(Any::KvlistValue(kv)), Key::Str(s)) => kv
            .values
            .iter()
            .rev()
            .find(|x| &x.key == s)
            .and_then(|x| x.value.as_ref()),
        (Some(Any::ArrayValue(arr)), Key::Int(i)) => {
            usize::try_from(*i).ok().and_then(|i| arr.values.get(i))
        }
        _ => None,
    }
}

/// Sets `v` at `rest` inside `a`, making maps for missing string keys.
fn set_in(a: &mut AnyValue, rest: &[Key], v: AnyValue) -> Result<(), EvalError> {
    let Some((k, more)) = rest.split_first() else {
        *a = v;
        return Ok(());
    };
    match k {
        Key::Str(s) => {
            if !matches!(a.value, Some(Any::KvlistValue(_))) {
                a.value = Some(Any::KvlistValue(KeyValueList::default()));
            }
            let Some(Any::KvlistValue(kv)) = &mut a.value else {
                return fail("not a map");
            };
            let i = match kv.values.iter().rposition(|x| &x.key == s) {
                Some(i) => i,
                None => {
                    kv.values.push(KeyValue {
                        key: s.clone(),
                        value: Some(AnyValue::default()),
                        ..Default::default()
                    });
                    kv.values.len() - 1
                }
            };
            match kv.values.get_mut(i).and_then(|x| x.value.as_mut()) {
                Some(inner) => set_in(inner, more, v),
                None => fail("not a map"),
            }
        }
        Key::Int(i) => match (&mut a.value, usize::try_from(*i)) {
            (Some(Any::ArrayValue(arr)), Ok(i)) if i < arr.values.len() => {
                match arr.values.get_mut(i) {
                    Some(inner) => set_in(inner, more, v),
                    None => fail("index out of range"),
                }
            }
            _ => fail(format!("index {i} is not in a list")),
        },
    }
}

fn read_key<'x, A: AttrsRead + ?Sized>(attrs: &'x A, key: Option<&str>) -> Val<'x> {
    match key {
        Some(k) => attrs
            .position(k)
            .and_then(|i| attrs.value_at(i))
            .map_or(Val::Nil, Val::from_any),
        None => {
            let values = (0..attrs.slots())
                .filter_map(|i| {
                    Some(KeyValue {
                        key: attrs.key_at(i)?.to_string(),
                        value: attrs.value_at(i).map(Cow::into_owned),
                        ..Default::default()
                    })
                })
                .collect();
            Val::Any(Cow::Owned(AnyValue {
                value: Some(Any::KvlistValue(KeyValueList { values })),
            }))
        }
    }
}

/// Writes at a place of a map; below a further index the enclosing value is rebuilt.
fn write(attrs: &mut dyn AttrsEdit, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
    let (Some(key), false) = (p.key.as_deref(), p.rest.is_empty()) else {
        return write_key(attrs, p.key.as_deref(), v);
    };
    let Some(v) = v.to_any() else {
        return Ok(());
    };
    let mut top = attrs
        .position(key)
        .and_then(|i| attrs.value_at(i))
        .map(Cow::into_owned)
        .unwrap_or_default();
    set_in(&mut top, &p.rest, v)?;
    attrs.set(key, Cow::Owned(top));
    Ok(())
}

fn write_key(attrs: &mut dyn AttrsEdit, key: Option<&str>, v: Val<'_>) -> Result<(), EvalError> {
    match key {
        Some(k) => {
            if let Some(a) = v.to_any() {
                attrs.set(k, Cow::Owned(a));
            }
            Ok(())
        }
        None => match v {
            Val::Any(a) => match a.into_owned().value {
                Some(Any::KvlistValue(kv)) => {
                    attrs.remove_where(&mut |_| true);
                    for x in kv.values {
                        attrs.set(&x.key, Cow::Owned(x.value.unwrap_or_default()));
                    }
                    Ok(())
                }
                _ => fail("a map can only be set to a map"),
            },
            other => fail(format!(
                "a map can only be set to a map, not a {}",
                other.type_name()
            )),
        },
    }
}

fn int(v: &Val) -> Result<i64, EvalError> {
    match v {
        Val::Int(i) => Ok(*i),
        other => fail(format!("expected an int, got {}", other.type_name())),
    }
}

fn text<'v>(v: &'v Val) -> Result<&'v str, EvalError> {
    match v {
        Val::Str(s) => Ok(s),
        other => fail(format!("expected a string, got {}", other.type_name())),
    }
}

fn id(v: &Val, len: usize) -> Result<Vec<u8>, EvalError> {
    match v {
        Val::Bytes(b) if b.len() == len => Ok(b.to_vec()),
        _ => fail(format!("expected {len} bytes")),
    }
}

fn unsigned(v: &Val) -> Result<u64, EvalError> {
    u64::try_from(int(v)?).or_else(|_| fail("expected a non-negative int"))
}

/// What every decoded item context can reach besides its item: its resource, its scope, and
/// the statement cache.
pub struct Outer<'t> {
    pub resource: &'t mut Option<Resource>,
    pub scope: Option<&'t mut Option<InstrumentationScope>>,
    pub cache: &'t mut Vec<KeyValue>,
}

impl Outer<'_> {
    fn get(&self, p: &Place) -> Option<Val<'_>> {
        let empty: &[KeyValue] = &[];
        let scope = self.scope.as_deref().and_then(Option::as_ref);
        Some(match p.field {
            Field::Attributes(Owner::Resource) => read(
                self.resource
                    .as_ref()
                    .map_or(empty, |r| r.attributes.as_slice()),
                p,
            ),
            Field::Attributes(Owner::Scope) => {
                read(scope.map_or(empty, |s| s.attributes.as_slice()), p)
            }
            Field::Cache => read(self.cache.as_slice(), p),
            Field::ScopeName => Val::Str(Cow::Borrowed(scope.map_or("", |s| s.name.as_str()))),
            Field::ScopeVersion => {
                Val::Str(Cow::Borrowed(scope.map_or("", |s| s.version.as_str())))
            }
            _ => return None,
        })
    }

    fn map(&mut self, p: &Place) -> Option<&mut Vec<KeyValue>> {
        match p.field {
            Field::Attributes(Owner::Resource) => Some(
                &mut self
                    .resource
                    .get_or_insert_with(Default::default)
                    .attributes,
            ),
            Field::Attributes(Owner::Scope) => Some(
                &mut self
                    .scope
                    .as_deref_mut()?
                    .get_or_insert_with(Default::default)
                    .attributes,
            ),
            Field::Cache => Some(self.cache),
            _ => None,
        }
    }

    fn set(&mut self, p: &Place, v: &Val) -> Option<Result<(), EvalError>> {
        match p.field {
            Field::ScopeName | Field::ScopeVersion => {
                let s = match text(v) {
                    Ok(s) => s.to_string(),
                    Err(e) => return Some(Err(e)),
                };
                let scope = self
                    .scope
                    .as_deref_mut()?
                    .get_or_insert_with(Default::default);
                if p.field == Field::ScopeName {
                    scope.name = s;
                } else {
                    scope.version = s;
                }
                Some(Ok(()))
            }
            _ => {
                let m = self.map(p)?;
                Some(write(m, p, v.clone()))
            }
        }
    }
}

/// A decoded span.
pub struct SpanTarget<'t> {
    pub span: &'t mut Span,
    pub outer: Outer<'t>,
}

impl Target for SpanTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        if let Some(v) = self.outer.get(p) {
            return Ok(v);
        }
        Ok(span_get(self.span, p, p.field))
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        if let Some(r) = self.outer.set(p, &v) {
            return r;
        }
        let s = &mut *self.span;
        match p.field {
            Field::Attributes(_) => return write(&mut s.attributes, p, v),
            Field::Name => s.name = text(&v)?.to_string(),
            Field::Kind => s.kind = int(&v)? as i32,
            Field::StatusCode => {
                s.status.get_or_insert_with(Status::default).code = int(&v)? as i32
            }
            Field::StatusMessage => {
                s.status.get_or_insert_with(Status::default).message = text(&v)?.to_string()
            }
            Field::TraceId => s.trace_id = id(&v, 16)?,
            Field::SpanId => s.span_id = id(&v, 8)?,
            Field::ParentSpanId => s.parent_span_id = id(&v, 8)?,
            Field::TraceState => s.trace_state = text(&v)?.to_string(),
            Field::StartTime => s.start_time_unix_nano = unsigned(&v)?,
            Field::EndTime => s.end_time_unix_nano = unsigned(&v)?,
            _ => return fail("this path cannot be set in the span context"),
        }
        Ok(())
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        match p.field {
            Field::Attributes(Owner::Item) => Ok(&mut self.span.attributes),
            _ => self
                .outer
                .map(p)
                .map(|m| m as &mut dyn AttrsEdit)
                .ok_or_else(|| EvalError("not a map".into())),
        }
    }
}

/// A span's field (`field` names which; attributes at `p`'s key): the span context's reads, and
/// the spanevent context's `span.*`.
fn span_get<'s>(s: &'s Span, p: &Place, field: Field) -> Val<'s> {
    let status = s.status.as_ref();
    match field {
        Field::Attributes(_) => read(&s.attributes, p),
        Field::Name => Val::Str(Cow::Borrowed(&s.name)),
        Field::Kind => Val::Int(i64::from(s.kind)),
        Field::StatusCode => Val::Int(status.map_or(0, |x| i64::from(x.code))),
        Field::StatusMessage => Val::Str(Cow::Borrowed(status.map_or("", |x| x.message.as_str()))),
        Field::TraceId => Val::Bytes(Cow::Borrowed(&s.trace_id)),
        Field::TraceIdString => Val::Str(Cow::Owned(hex(&s.trace_id))),
        Field::SpanId => Val::Bytes(Cow::Borrowed(&s.span_id)),
        Field::SpanIdString => Val::Str(Cow::Owned(hex(&s.span_id))),
        Field::ParentSpanId => Val::Bytes(Cow::Borrowed(&s.parent_span_id)),
        Field::ParentSpanIdString => Val::Str(Cow::Owned(hex(&s.parent_span_id))),
        Field::TraceState => Val::Str(Cow::Borrowed(&s.trace_state)),
        Field::StartTime => Val::Int(s.start_time_unix_nano as i64),
        Field::EndTime => Val::Int(s.end_time_unix_nano as i64),
        _ => Val::Nil,
    }
}

/// A decoded span event.
pub struct SpanEventTarget<'t> {
    pub event: &'t mut opentelemetry_proto::tonic::trace::v1::span::Event,
    /// The span around it (its events taken out while they run): `span.*`, read-only.
    pub span: &'t Span,
    pub outer: Outer<'t>,
}

impl Target for SpanEventTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        if let Some(v) = self.outer.get(p) {
            return Ok(v);
        }
        let e = &*self.event;
        Ok(match p.field {
            Field::Attributes(Owner::Span) => read(&self.span.attributes, p),
            Field::OfSpan(f) => span_get(self.span, p, f.field()),
            Field::Attributes(_) => read(&e.attributes, p),
            Field::Name => Val::Str(Cow::Borrowed(&e.name)),
            Field::Time => Val::Int(e.time_unix_nano as i64),
            _ => Val::Nil,
        })
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        if let Some(r) = self.outer.set(p, &v) {
            return r;
        }
        let e = &mut *self.event;
        match p.field {
            Field::Attributes(Owner::Span) | Field::OfSpan(_) => {
                return fail("the span's paths are read-only in the spanevent context")
            }
            Field::Attributes(_) => return write(&mut e.attributes, p, v),
            Field::Name => e.name = text(&v)?.to_string(),
            Field::Time => e.time_unix_nano = unsigned(&v)?,
            _ => return fail("this path cannot be set in the spanevent context"),
        }
        Ok(())
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        match p.field {
            Field::Attributes(Owner::Item) => Ok(&mut self.event.attributes),
            _ => self
                .outer
                .map(p)
                .map(|m| m as &mut dyn AttrsEdit)
                .ok_or_else(|| EvalError("not a map".into())),
        }
    }
}

/// A decoded log record.
pub struct LogTarget<'t> {
    pub log: &'t mut LogRecord,
    pub outer: Outer<'t>,
}

impl Target for LogTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        if let Some(v) = self.outer.get(p) {
            return Ok(v);
        }
        let l = &*self.log;
        Ok(match p.field {
            Field::Attributes(_) => read(&l.attributes, p),
            Field::Body => l
                .body
                .as_ref()
                .map_or(Val::Nil, |b| Val::from_any(Cow::Borrowed(b))),
            Field::SeverityNumber => Val::Int(i64::from(l.severity_number)),
            Field::SeverityText => Val::Str(Cow::Borrowed(&l.severity_text)),
            Field::Time => Val::Int(l.time_unix_nano as i64),
            Field::ObservedTime => Val::Int(l.observed_time_unix_nano as i64),
            Field::TraceId => Val::Bytes(Cow::Borrowed(&l.trace_id)),
            Field::TraceIdString => Val::Str(Cow::Owned(hex(&l.trace_id))),
            Field::SpanId => Val::Bytes(Cow::Borrowed(&l.span_id)),
            Field::SpanIdString => Val::Str(Cow::Owned(hex(&l.span_id))),
            Field::Flags => Val::Int(i64::from(l.flags)),
            Field::EventName => Val::Str(Cow::Borrowed(&l.event_name)),
            _ => Val::Nil,
        })
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        if let Some(r) = self.outer.set(p, &v) {
            return r;
        }
        let l = &mut *self.log;
        match p.field {
            Field::Attributes(_) => return write(&mut l.attributes, p, v),
            Field::Body => l.body = v.to_any(),
            Field::SeverityNumber => l.severity_number = int(&v)? as i32,
            Field::SeverityText => l.severity_text = text(&v)?.to_string(),
            Field::Time => l.time_unix_nano = unsigned(&v)?,
            Field::ObservedTime => l.observed_time_unix_nano = unsigned(&v)?,
            Field::TraceId => l.trace_id = id(&v, 16)?,
            Field::SpanId => l.span_id = id(&v, 8)?,
            Field::Flags => l.flags = int(&v)? as u32,
            Field::EventName => l.event_name = text(&v)?.to_string(),
            _ => return fail("this path cannot be set in the log context"),
        }
        Ok(())
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        match p.field {
            Field::Attributes(Owner::Item) => Ok(&mut self.log.attributes),
            _ => self
                .outer
                .map(p)
                .map(|m| m as &mut dyn AttrsEdit)
                .ok_or_else(|| EvalError("not a map".into())),
        }
    }
}

/// A decoded metric (the `metric` context).
pub struct MetricTarget<'t> {
    pub metric: &'t mut Metric,
    pub outer: Outer<'t>,
}

fn metric_type(data: &Option<Data>) -> i64 {
    match data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    }
}

impl Target for MetricTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        if let Some(v) = self.outer.get(p) {
            return Ok(v);
        }
        let m = &*self.metric;
        Ok(match p.field {
            Field::MetricName => Val::Str(Cow::Borrowed(&m.name)),
            Field::Description => Val::Str(Cow::Borrowed(&m.description)),
            Field::Unit => Val::Str(Cow::Borrowed(&m.unit)),
            Field::MetricType => Val::Int(metric_type(&m.data)),
            _ => Val::Nil,
        })
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        if let Some(r) = self.outer.set(p, &v) {
            return r;
        }
        let m = &mut *self.metric;
        match p.field {
            Field::MetricName => m.name = text(&v)?.to_string(),
            Field::Description => m.description = text(&v)?.to_string(),
            Field::Unit => m.unit = text(&v)?.to_string(),
            _ => return fail("this path cannot be set in the metric context"),
        }
        Ok(())
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        self.outer
            .map(p)
            .map(|m| m as &mut dyn AttrsEdit)
            .ok_or_else(|| EvalError("not a map".into()))
    }
}

/// A decoded data point of any kind, with its metric's name, unit, description and type.
pub struct PointTarget<'t> {
    pub attributes: &'t mut Vec<KeyValue>,
    /// A gauge or sum point's value (`None` for other kinds).
    pub number: Option<&'t mut Option<number_data_point::Value>>,
    pub start: &'t mut u64,
    pub time: &'t mut u64,
    pub metric_name: &'t str,
    pub metric_unit: &'t str,
    pub metric_description: &'t str,
    pub metric_type: i64,
    pub outer: Outer<'t>,
}

impl Target for PointTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        if let Some(v) = self.outer.get(p) {
            return Ok(v);
        }
        use number_data_point::Value as N;
        let number = self.number.as_deref().and_then(Option::as_ref);
        Ok(match p.field {
            Field::Attributes(_) => read(self.attributes.as_slice(), p),
            Field::ValueDouble => match number {
                Some(N::AsDouble(d)) => Val::Float(*d),
                _ => Val::Float(0.0),
            },
            Field::ValueInt => match number {
                Some(N::AsInt(i)) => Val::Int(*i),
                _ => Val::Int(0),
            },
            Field::StartTime => Val::Int(*self.start as i64),
            Field::Time => Val::Int(*self.time as i64),
            Field::MetricName => Val::Str(Cow::Borrowed(self.metric_name)),
            Field::MetricUnit => Val::Str(Cow::Borrowed(self.metric_unit)),
            Field::MetricDescription => Val::Str(Cow::Borrowed(self.metric_description)),
            Field::MetricType => Val::Int(self.metric_type),
            _ => Val::Nil,
        })
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        if let Some(r) = self.outer.set(p, &v) {
            return r;
        }
        use number_data_point::Value as N;
        match p.field {
            Field::Attributes(_) => return write(self.attributes, p, v),
            Field::ValueDouble | Field::ValueInt => {
                let Some(n) = self.number.as_deref_mut() else {
                    return fail("only gauge and sum points have value_double / value_int");
                };
                *n = Some(match (p.field, &v) {
                    (Field::ValueDouble, Val::Float(f)) => N::AsDouble(*f),
                    (Field::ValueDouble, Val::Int(i)) => N::AsDouble(*i as f64),
                    (Field::ValueInt, Val::Int(i)) => N::AsInt(*i),
                    _ => return fail(format!("cannot set a point value to a {}", v.type_name())),
                });
            }
            Field::StartTime => *self.start = unsigned(&v)?,
            Field::Time => *self.time = unsigned(&v)?,
            _ => return fail("this path cannot be set in the datapoint context"),
        }
        Ok(())
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        match p.field {
            Field::Attributes(Owner::Item) => Ok(self.attributes),
            _ => self
                .outer
                .map(p)
                .map(|m| m as &mut dyn AttrsEdit)
                .ok_or_else(|| EvalError("not a map".into())),
        }
    }
}

/// A decoded resource or scope (the `resource` and `scope` contexts): [`Outer`] alone, its
/// own attributes being the resource's or the scope's.
pub struct OuterTarget<'t> {
    pub outer: Outer<'t>,
    pub own: Owner,
}

impl OuterTarget<'_> {
    fn own(&self, p: &Place) -> Place {
        match p.field {
            Field::Attributes(Owner::Item) => Place {
                field: Field::Attributes(self.own),
                key: p.key.clone(),
                rest: p.rest.clone(),
            },
            _ => p.clone(),
        }
    }
}

impl Target for OuterTarget<'_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        Ok(self.outer.get(&self.own(p)).unwrap_or(Val::Nil))
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        let p = self.own(p);
        self.outer
            .set(&p, &v)
            .unwrap_or_else(|| fail("this path cannot be set here"))
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        let p = self.own(p);
        self.outer
            .map(&p)
            .map(|m| m as &mut dyn AttrsEdit)
            .ok_or_else(|| EvalError("not a map".into()))
    }
}

/// An encoded span, log record or data point ([`crate::wire::edit_items`]): reads and writes
/// what [`super::Statement::on_wire`] allows, straight from and to the bytes.
pub struct WireTarget<'e, 'a, 'w> {
    pub item: &'e mut ItemEdit<'a, 'w>,
    pub cache: &'e mut Vec<KeyValue>,
}

impl WireTarget<'_, '_, '_> {
    fn ids(&self) -> (u32, u32) {
        match self.item.view.kind() {
            ItemKind::LogRecord => (9, 10),
            _ => (1, 2),
        }
    }
}

impl Target for WireTarget<'_, '_, '_> {
    fn get(&self, p: &Place) -> Result<Val<'_>, EvalError> {
        let item = &*self.item;
        let kind = item.view.kind();
        Ok(match p.field {
            Field::Attributes(Owner::Item) => match &p.key {
                Some(k) => match item.attributes.position(k) {
                    Some(i) => match item.attributes.str_at(i) {
                        Some(s) => Val::Str(Cow::Borrowed(s)),
                        None => item.attributes.value_at(i).map_or(Val::Nil, Val::from_any),
                    },
                    None => Val::Nil,
                },
                None => read_key(&*item.attributes, None),
            },
            Field::Attributes(Owner::Resource) => {
                read(item.view.resource().attributes.as_slice(), p)
            }
            Field::Cache => read(self.cache.as_slice(), p),
            Field::Name if kind == ItemKind::Span => {
                Val::Str(Cow::Borrowed(item.str_field(5).unwrap_or("")))
            }
            Field::Kind if kind == ItemKind::Span => {
                Val::Int(item.varint_field(6).unwrap_or(0) as i32 as i64)
            }
            Field::Body if kind == ItemKind::LogRecord => match item.bytes_field(5) {
                None => Val::Nil,
                Some(b) => match crate::wire::any_str(b) {
                    Some(s) => Val::Str(Cow::Borrowed(s)),
                    None => AnyValue::decode(b).map_or(Val::Nil, |a| Val::from_any(Cow::Owned(a))),
                },
            },
            Field::SeverityNumber if kind == ItemKind::LogRecord => {
                Val::Int(item.varint_field(2).unwrap_or(0) as i32 as i64)
            }
            Field::SeverityText if kind == ItemKind::LogRecord => {
                Val::Str(Cow::Borrowed(item.str_field(3).unwrap_or("")))
            }
            Field::MetricName => Val::Str(Cow::Borrowed(item.view.metric_name().unwrap_or(""))),
            Field::TraceIdString => Val::Str(Cow::Owned(hex(item
                .bytes_field(self.ids().0)
                .unwrap_or_default()))),
            Field::SpanIdString => Val::Str(Cow::Owned(hex(item
                .bytes_field(self.ids().1)
                .unwrap_or_default()))),
            _ => return fail("this path is not readable on an encoded item"),
        })
    }

    fn set(&mut self, p: &Place, v: Val<'_>) -> Result<(), EvalError> {
        let kind = self.item.view.kind();
        match p.field {
            Field::Attributes(Owner::Item) => write(&mut *self.item.attributes, p, v),
            Field::Cache => write(self.cache, p, v),
            Field::Name if kind == ItemKind::Span => {
                self.item.set_bytes_field(5, text(&v)?.as_bytes());
                Ok(())
            }
            Field::SeverityNumber if kind == ItemKind::LogRecord => {
                self.item.set_varint_field(2, int(&v)? as i32 as i64 as u64);
                Ok(())
            }
            Field::SeverityText if kind == ItemKind::LogRecord => {
                self.item.set_bytes_field(3, text(&v)?.as_bytes());
                Ok(())
            }
            Field::Body if kind == ItemKind::LogRecord => {
                let any = v.to_any().unwrap_or_default();
                self.item.set_bytes_field(5, &any.encode_to_vec());
                Ok(())
            }
            _ => fail("this path is not writable on an encoded item"),
        }
    }

    fn map(&mut self, p: &Place) -> Result<&mut dyn AttrsEdit, EvalError> {
        match p.field {
            Field::Attributes(Owner::Item) => Ok(&mut *self.item.attributes),
            Field::Cache => Ok(self.cache),
            _ => fail("not a map on an encoded item"),
        }
    }
}
