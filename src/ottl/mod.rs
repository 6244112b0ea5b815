//! OTTL, the OpenTelemetry Transformation Language, as the Collector's `transform` and `filter`
//! processors use it.
//!
//! # Contract
//!
//! - [`parse`] turns a statement (`editor(args) where condition`) or a condition into an
//!   untyped AST (winnow grammar; errors carry the column).
//! - [`compile`] resolves it once, at config load, for one [`Context`] (`span`, `spanevent`, `log`,
//!   `datapoint`, `metric`, `resource`, `scope`): every path to a [`Place`], every function to
//!   an editor or converter with its arity and literal arguments checked (regular expressions
//!   compiled). An unknown path or function, a wrong arity or type, a bad regex: a config error
//!   with the statement's column. Functions otelgw does not implement are errors, never no-ops.
//! - [`eval`] runs compiled statements against a [`Target`]: one item in its context. Two
//!   kinds of target exist ([`targets`]): the decoded prost structs, and an encoded item on the
//!   wire ([`crate::wire::ItemEdit`]). A statement says whether it can run on the wire
//!   ([`Statement::on_wire`]: it reads and writes only what the wire view offers); a processor
//!   whose statements all can never decodes the request.
//! - Reading a path allocates nothing when the value is a string, number or bool in the item
//!   (values are [`Val`]s borrowing from the target); writes own their value.
//!
//! Semantics follow the Collector's OTTL documentation: comparisons of different types are
//! false (numbers compare across int and double), `nil` equals only `nil`; `set` with a `nil`
//! value does nothing; a missing map key reads as `nil`.

pub mod compile;
pub mod eval;
mod funcs;
mod on_wire;
pub mod parse;
mod paths;
mod program;
pub mod targets;
pub mod walk;

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::AnyValue;

pub use compile::{compile_condition, compile_statement, Condition, Statement};
pub use eval::Target;

/// Why a statement failed on one item (handled by the processor's `error_mode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}

/// What a processor does when a statement or condition fails on an item (`error_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// Count it, log it (at debug level: a bad statement would flood the log), go on with the
    /// next statement.
    #[default]
    Ignore,
    /// Count it, go on.
    Silent,
    /// Remove the item and report it to the client as rejected (`partial_success`). The
    /// Collector refuses the whole request; otelgw refuses only the items that failed.
    Propagate,
}

/// The context a statement runs in: which item its paths start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Resource,
    Scope,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    Log,
}

impl Context {
    pub fn parse(s: &str) -> Option<Context> {
        Some(match s {
            "resource" => Context::Resource,
            "scope" | "instrumentation_scope" => Context::Scope,
            "span" => Context::Span,
            "spanevent" => Context::SpanEvent,
            "metric" => Context::Metric,
            "datapoint" => Context::DataPoint,
            "log" => Context::Log,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Context::Resource => "resource",
            Context::Scope => "scope",
            Context::Span => "span",
            Context::SpanEvent => "spanevent",
            Context::Metric => "metric",
            Context::DataPoint => "datapoint",
            Context::Log => "log",
        }
    }
}

/// Whose attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The context's own item (span, log record, data point, or the resource / scope in those
    /// contexts).
    Item,
    Resource,
    Scope,
    /// The span around a span event (the spanevent context's `span.attributes`).
    Span,
}

/// A field a path names, resolved for its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Attributes(Owner),
    Cache,
    /// span name, metric name (metric context), scope name (scope context)
    Name,
    Kind,
    StatusCode,
    StatusMessage,
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    StartTime,
    EndTime,
    Time,
    ObservedTime,
    Body,
    SeverityNumber,
    SeverityText,
    EventName,
    Flags,
    ValueDouble,
    ValueInt,
    MetricName,
    MetricType,
    MetricUnit,
    MetricDescription,
    Description,
    Unit,
    ScopeName,
    ScopeVersion,
    /// A field of the span around a span event (the spanevent context's `span.*` paths).
    OfSpan(SpanField),
}

/// The span fields the spanevent context reads through `span.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanField {
    Name,
    Kind,
    StatusCode,
    StatusMessage,
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    StartTime,
    EndTime,
}

impl SpanField {
    /// The same field in the span context.
    pub fn field(self) -> Field {
        match self {
            SpanField::Name => Field::Name,
            SpanField::Kind => Field::Kind,
            SpanField::StatusCode => Field::StatusCode,
            SpanField::StatusMessage => Field::StatusMessage,
            SpanField::TraceId => Field::TraceId,
            SpanField::TraceIdString => Field::TraceIdString,
            SpanField::SpanId => Field::SpanId,
            SpanField::SpanIdString => Field::SpanIdString,
            SpanField::ParentSpanId => Field::ParentSpanId,
            SpanField::ParentSpanIdString => Field::ParentSpanIdString,
            SpanField::TraceState => Field::TraceState,
            SpanField::StartTime => Field::StartTime,
            SpanField::EndTime => Field::EndTime,
        }
    }
}

impl Field {
    /// True for the maps (attributes, cache): editors such as `delete_key` take them.
    pub fn is_map(self) -> bool {
        matches!(self, Field::Attributes(_) | Field::Cache)
    }
}

/// A path resolved: a field and, for a map, the key indexed, then any further indexes into
/// the value found there (`attributes["a"]["b"][0]`: key `a`, rest `["b", 0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub field: Field,
    pub key: Option<String>,
    pub rest: Vec<parse::Key>,
}

impl Place {
    /// A map's value at `key` (one level).
    pub fn at(field: Field, key: Option<String>) -> Place {
        Place {
            field,
            key,
            rest: Vec::new(),
        }
    }
}

/// An OTTL value. Strings, bytes and maps borrow from the item when they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// A map or a list (an OTLP `kvlist_value` / `array_value`).
    Any(Cow<'a, AnyValue>),
}

impl Val<'_> {
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Nil => Val::Nil,
            Val::Bool(b) => Val::Bool(b),
            Val::Int(i) => Val::Int(i),
            Val::Float(f) => Val::Float(f),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Bytes(b) => Val::Bytes(Cow::Owned(b.into_owned())),
            Val::Any(a) => Val::Any(Cow::Owned(a.into_owned())),
        }
    }

    /// The value as an OTLP `AnyValue` (`None` for nil).
    pub fn to_any(&self) -> Option<AnyValue> {
        let v = match self {
            Val::Nil => return None,
            Val::Bool(b) => Any::BoolValue(*b),
            Val::Int(i) => Any::IntValue(*i),
            Val::Float(f) => Any::DoubleValue(*f),
            Val::Str(s) => Any::StringValue(s.to_string()),
            Val::Bytes(b) => Any::BytesValue(b.to_vec()),
            Val::Any(a) => return Some(a.clone().into_owned()),
        };
        Some(AnyValue { value: Some(v) })
    }

    /// An OTLP value as an OTTL value (an empty `AnyValue` is nil).
    pub fn from_any(a: Cow<'_, AnyValue>) -> Val<'_> {
        match a {
            Cow::Borrowed(a) => match &a.value {
                None => Val::Nil,
                Some(Any::StringValue(s)) => Val::Str(Cow::Borrowed(s)),
                Some(Any::BoolValue(b)) => Val::Bool(*b),
                Some(Any::IntValue(i)) => Val::Int(*i),
                Some(Any::DoubleValue(d)) => Val::Float(*d),
                Some(Any::BytesValue(b)) => Val::Bytes(Cow::Borrowed(b)),
                Some(_) => Val::Any(Cow::Borrowed(a)),
            },
            Cow::Owned(a) => match a.value {
                None => Val::Nil,
                Some(Any::StringValue(s)) => Val::Str(Cow::Owned(s)),
                Some(Any::BoolValue(b)) => Val::Bool(b),
                Some(Any::IntValue(i)) => Val::Int(i),
                Some(Any::DoubleValue(d)) => Val::Float(d),
                Some(Any::BytesValue(b)) => Val::Bytes(Cow::Owned(b)),
                Some(v) => Val::Any(Cow::Owned(AnyValue { value: Some(v) })),
            },
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "double",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::Any(a) => match a.value {
                Some(Any::KvlistValue(_)) => "map",
                _ => "slice",
            },
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
