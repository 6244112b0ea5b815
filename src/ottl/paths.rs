//! Paths and enums: what a path names in each context, and the OTLP enum values.

use super::parse::{self, Key};
use super::program::CompileError;
use super::{Context, Field, Owner, Place, SpanField};

fn err<T>(col: usize, message: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError {
        col,
        message: message.into(),
    })
}

/// Resolves a path for `ctx`.
pub(super) fn resolve(ctx: Context, p: &parse::Path) -> Result<Place, CompileError> {
    let segs: Vec<&str> = p.segments.iter().map(String::as_str).collect();
    // the newer syntax may name the context first: `span.name`, `log.body`
    let segs: &[&str] = match segs.split_first() {
        Some((first, rest))
            if !rest.is_empty()
                && Context::parse(first) == Some(ctx)
                && *first != "resource"
                && *first != "scope"
                && *first != "instrumentation_scope" =>
        {
            rest
        }
        _ => &segs,
    };
    let below = |c: Context| match c {
        Context::Resource => true,
        Context::Scope => ctx != Context::Resource,
        Context::Metric => ctx == Context::DataPoint,
        _ => false,
    };
    let field = match (ctx, segs) {
        (_, ["cache"]) => Field::Cache,
        (Context::Resource, ["attributes"]) => Field::Attributes(Owner::Item),
        (_, ["resource", "attributes"]) if below(Context::Resource) => {
            Field::Attributes(Owner::Resource)
        }
        (Context::Scope, ["attributes"]) => Field::Attributes(Owner::Item),
        (Context::Scope, ["name"]) => Field::ScopeName,
        (Context::Scope, ["version"]) => Field::ScopeVersion,
        (_, ["instrumentation_scope" | "scope", f]) if below(Context::Scope) => match *f {
            "name" => Field::ScopeName,
            "version" => Field::ScopeVersion,
            "attributes" => Field::Attributes(Owner::Scope),
            _ => return err(p.col, format!("unknown path {}", p.segments.join("."))),
        },
        (Context::SpanEvent, f) => match f {
            ["attributes"] => Field::Attributes(Owner::Item),
            ["name"] => Field::Name,
            ["time_unix_nano"] => Field::Time,
            ["span", "attributes"] => Field::Attributes(Owner::Span),
            ["span", rest @ ..] => Field::OfSpan(match rest {
                ["name"] => SpanField::Name,
                ["kind"] => SpanField::Kind,
                ["status", "code"] => SpanField::StatusCode,
                ["status", "message"] => SpanField::StatusMessage,
                ["trace_id"] => SpanField::TraceId,
                ["trace_id", "string"] => SpanField::TraceIdString,
                ["span_id"] => SpanField::SpanId,
                ["span_id", "string"] => SpanField::SpanIdString,
                ["parent_span_id"] => SpanField::ParentSpanId,
                ["parent_span_id", "string"] => SpanField::ParentSpanIdString,
                ["trace_state"] => SpanField::TraceState,
                ["start_time_unix_nano"] => SpanField::StartTime,
                ["end_time_unix_nano"] => SpanField::EndTime,
                _ => {
                    return err(
                        p.col,
                        format!("unknown path {} in the spanevent context", p.segments.join(".")),
                    )
                }
            }),
            _ => {
                return err(
                    p.col,
                    format!("unknown path {} in the spanevent context (otelgw has name, attributes, time_unix_nano, the span's span.* paths and the resource's and scope's paths)", p.segments.join(".")),
                )
            }
        },
        (Context::Span, f) => match f {
            ["attributes"] => Field::Attributes(Owner::Item),
            ["name"] => Field::Name,
            ["kind"] => Field::Kind,
            ["status", "code"] => Field::StatusCode,
            ["status", "message"] => Field::StatusMessage,
            ["trace_id"] => Field::TraceId,
            ["trace_id", "string"] => Field::TraceIdString,
            ["span_id"] => Field::SpanId,
            ["span_id", "string"] => Field::SpanIdString,
            ["parent_span_id"] => Field::ParentSpanId,
            ["parent_span_id", "string"] => Field::ParentSpanIdString,
            ["trace_state"] => Field::TraceState,
            ["start_time_unix_nano"] => Field::StartTime,
            ["end_time_unix_nano"] => Field::EndTime,
            _ => {
                return err(
                    p.col,
                    format!("unknown path {} in the span context", p.segments.join(".")),
                )
            }
        },
        (Context::Log, f) => match f {
            ["attributes"] => Field::Attributes(Owner::Item),
            ["body"] => Field::Body,
            ["severity_number"] => Field::SeverityNumber,
            ["severity_text"] => Field::SeverityText,
            ["time_unix_nano"] => Field::Time,
            ["observed_time_unix_nano"] => Field::ObservedTime,
            ["trace_id"] => Field::TraceId,
            ["trace_id", "string"] => Field::TraceIdString,
            ["span_id"] => Field::SpanId,
            ["span_id", "string"] => Field::SpanIdString,
            ["flags"] => Field::Flags,
            ["event_name"] => Field::EventName,
            _ => {
                return err(
                    p.col,
                    format!("unknown path {} in the log context", p.segments.join(".")),
                )
            }
        },
        (Context::DataPoint, f) => match f {
            ["attributes"] => Field::Attributes(Owner::Item),
            ["value_double"] => Field::ValueDouble,
            ["value_int"] => Field::ValueInt,
            ["start_time_unix_nano"] => Field::StartTime,
            ["time_unix_nano"] => Field::Time,
            ["flags"] => Field::Flags,
            ["metric", "name"] => Field::MetricName,
            ["metric", "type"] => Field::MetricType,
            ["metric", "unit"] => Field::MetricUnit,
            ["metric", "description"] => Field::MetricDescription,
            _ => {
                return err(
                    p.col,
                    format!(
                        "unknown path {} in the datapoint context",
                        p.segments.join(".")
                    ),
                )
            }
        },
        (Context::Metric, f) => match f {
            ["name"] => Field::MetricName,
            ["type"] => Field::MetricType,
            ["unit"] => Field::Unit,
            ["description"] => Field::Description,
            _ => {
                return err(
                    p.col,
                    format!(
                        "unknown path {} in the metric context",
                        p.segments.join(".")
                    ),
                )
            }
        },
        _ => {
            return err(
                p.col,
                format!(
                    "unknown path {} in the {} context",
                    p.segments.join("."),
                    ctx.name()
                ),
            )
        }
    };
    let (key, rest) = match p.keys.as_slice() {
        [] => (None, Vec::new()),
        [Key::Str(k), rest @ ..] if field.is_map() => (Some(k.clone()), rest.to_vec()),
        [Key::Str(_), ..] => return err(p.col, format!("{} is not a map", p.segments.join("."))),
        [Key::Int(_), ..] => {
            return err(
                p.col,
                format!("{} is a map: index it with a string", p.segments.join(".")),
            )
        }
    };
    Ok(Place { field, key, rest })
}

/// The OTLP enums OTTL names.
pub(super) fn enum_value(name: &str) -> Option<i64> {
    let v = match name {
        "SPAN_KIND_UNSPECIFIED" => 0,
        "SPAN_KIND_INTERNAL" => 1,
        "SPAN_KIND_SERVER" => 2,
        "SPAN_KIND_CLIENT" => 3,
        "SPAN_KIND_PRODUCER" => 4,
        "SPAN_KIND_CONSUMER" => 5,
        "STATUS_CODE_UNSET" => 0,
        "STATUS_CODE_OK" => 1,
        "STATUS_CODE_ERROR" => 2,
        "METRIC_DATA_TYPE_NONE" => 0,
        "METRIC_DATA_TYPE_GAUGE" => 1,
        "METRIC_DATA_TYPE_SUM" => 2,
        "METRIC_DATA_TYPE_HISTOGRAM" => 3,
        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM" => 4,
        "METRIC_DATA_TYPE_SUMMARY" => 5,
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => 0,
        "AGGREGATION_TEMPORALITY_DELTA" => 1,
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
        "SEVERITY_NUMBER_UNSPECIFIED" => 0,
        _ => {
            let rest = name.strip_prefix("SEVERITY_NUMBER_")?;
            let (base, n) = match rest.find(|c: char| c.is_ascii_digit()) {
                Some(i) => (
                    &rest[..i],
                    rest[i..]
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (2..=4).contains(n))?,
                ),
                None => (rest, 1),
            };
            let first = match base {
                "TRACE" => 1,
                "DEBUG" => 5,
                "INFO" => 9,
                "WARN" => 13,
                "ERROR" => 17,
                "FATAL" => 21,
                _ => return None,
            };
            first + n - 1
        }
    };
    Some(v)
}
