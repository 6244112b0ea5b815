//! OTLP → Prometheus names and labels, per the OpenTelemetry specification "Prometheus and
//! OpenMetrics Compatibility":
//! - metric names: characters outside `[a-zA-Z0-9_:]` become `_` (runs collapsed), a leading
//!   digit gets a `_` prefix, the `namespace` is prepended;
//! - unit suffixes (with `add_metric_suffixes`): UCUM units become words (`s` → `seconds`,
//!   `By` → `bytes`, …), `X/Y` becomes `X_per_Y`, `{annotations}` are dropped, gauges with unit
//!   `1` get `_ratio`, monotonic sums get `_total`; a suffix the name already ends with is not
//!   added twice;
//! - label names: characters outside `[a-zA-Z0-9_]` become `_`, a leading digit gets a `key_`
//!   prefix, a single leading `_` gets a `key` prefix; attributes whose sanitized names collide
//!   are joined into one label, values separated by `;` in the original keys' sorted order.

use std::borrow::Cow;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

fn sanitize(s: &str, allow_colon: bool) -> String {
    // the common case: nothing to replace
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (allow_colon && b == b':'))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut last_underscore = false;
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':');
        if ok {
            out.push(c);
            last_underscore = c == '_';
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    out
}

/// A Prometheus metric name from an OTLP name (without suffixes).
pub fn metric_name(name: &str, namespace: &str) -> String {
    let mut n = sanitize(name, true);
    if !namespace.is_empty() {
        n = format!("{}_{}", sanitize(namespace, true), n);
    }
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    if n.is_empty() {
        n.push('_');
    }
    n
}

/// A Prometheus label name from an attribute key.
pub fn label_name(key: &str) -> String {
    let mut n = sanitize(key, false);
    if n.is_empty() {
        return "key_".into();
    }
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert_str(0, "key_");
    } else if n.starts_with('_') && !n.starts_with("__") {
        n.insert_str(0, "key");
    }
    n
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "B" => "bytes",
        "KB" => "kilobytes",
        "MB" => "megabytes",
        "GB" => "gigabytes",
        "TB" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Removes `{annotations}` from a UCUM unit.
fn strip_annotations(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// The name suffix a unit asks for (`seconds`, `bytes_per_second`, …), empty for none.
pub fn unit_suffix(unit: &str) -> String {
    let unit = strip_annotations(unit);
    if unit.is_empty() {
        return String::new();
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.as_str(), None),
    };
    let main_word = unit_word(main)
        .map(str::to_string)
        .unwrap_or_else(|| sanitize(main, false));
    let per_word = per.filter(|p| !p.is_empty()).map(|p| {
        per_unit_word(p)
            .map(str::to_string)
            .unwrap_or_else(|| sanitize(p, false))
    });
    let s = match per_word {
        Some(p) if main_word.is_empty() => format!("per_{p}"),
        Some(p) => format!("{main_word}_per_{p}"),
        None => main_word,
    };
    s.trim_matches('_').to_string()
}

/// What the name is for: its suffixes depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Counter,
    Gauge,
    Other,
}

/// The full family name: sanitized, namespaced, with unit and type suffixes. Counters get the
/// `_total` suffix here too; the OpenMetrics renderer strips it from the family name.
pub fn family_name(
    name: &str,
    unit: &str,
    kind: NameKind,
    namespace: &str,
    add_suffixes: bool,
) -> String {
    let mut n = metric_name(name, namespace);
    if !add_suffixes {
        return n;
    }
    let suffix = unit_suffix(unit);
    let ends_with = |n: &str, s: &str| n == s || n.ends_with(&format!("_{s}"));
    if !suffix.is_empty() && !ends_with(&n, &suffix) {
        n = format!("{n}_{suffix}");
    }
    if kind == NameKind::Gauge && strip_annotations(unit) == "1" && !ends_with(&n, "ratio") {
        n.push_str("_ratio");
    }
    if kind == NameKind::Counter && !ends_with(&n, "total") {
        n.push_str("_total");
    }
    n
}

/// An attribute value as a label value.
pub fn value_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(_) => v
            .as_ref()
            .and_then(|v| serde_json::to_string(v).ok())
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// [`label_name`], borrowing the key when it is a valid label name already (the common case).
fn label_name_cow(key: &str) -> Cow<'_, str> {
    let valid = key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        // a single leading `_` gets a `key` prefix
        && (!key.starts_with('_') || key.starts_with("__"))
        && !key.is_empty();
    if valid {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(label_name(key))
    }
}

/// [`value_string`], borrowing string values.
fn value_cow(v: &Option<AnyValue>) -> Cow<'_, str> {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => Cow::Borrowed(s),
        _ => Cow::Owned(value_string(v)),
    }
}

/// Attributes as labels sorted by name; colliding sanitized names are joined with `;` (values
/// in the original keys' sorted order). Borrows names and values where nothing changes them.
pub fn sorted_labels(attrs: &[KeyValue]) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut named: Vec<(Cow<'_, str>, &str, Cow<'_, str>)> = attrs
        .iter()
        .map(|kv| {
            (
                label_name_cow(&kv.key),
                kv.key.as_str(),
                value_cow(&kv.value),
            )
        })
        .collect();
    // by name, then key; stable, so equal keys keep their order
    named.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut out: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(named.len());
    for (name, _, value) in named {
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                let j = joined.to_mut();
                j.push(';');
                j.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

/// Attributes as sorted labels; colliding sanitized names are joined with `;`.
pub fn labels(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    sorted_labels(attrs)
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{kv, s};

    #[test]
    fn names_follow_the_spec() {
        let table = [
            // (name, unit, kind, namespace, expected)
            (
                "http.server.duration",
                "s",
                NameKind::Other,
                "",
                "http_server_duration_seconds",
            ),
            (
                "http.server.requests",
                "{request}",
                NameKind::Counter,
                "",
                "http_server_requests_total",
            ),
            (
                "requests_total",
                "1",
                NameKind::Counter,
                "",
                "requests_total",
            ),
            (
                "cpu.utilization",
                "1",
                NameKind::Gauge,
                "",
                "cpu_utilization_ratio",
            ),
            (
                "memory.usage",
                "By",
                NameKind::Gauge,
                "app",
                "app_memory_usage_bytes",
            ),
            (
                "throughput",
                "By/s",
                NameKind::Gauge,
                "",
                "throughput_bytes_per_second",
            ),
            (
                "packets",
                "{packet}/s",
                NameKind::Counter,
                "",
                "packets_per_second_total",
            ),
            (
                "latency_seconds",
                "s",
                NameKind::Other,
                "",
                "latency_seconds",
            ),
            ("2xx.count", "", NameKind::Counter, "", "_2xx_count_total"),
            ("weird--name!!", "", NameKind::Gauge, "", "weird_name_"),
            ("temp", "Cel", NameKind::Gauge, "", "temp_celsius"),
            ("custom", "widgets", NameKind::Gauge, "", "custom_widgets"),
            ("ratio", "1", NameKind::Gauge, "", "ratio"),
        ];
        for (name, unit, kind, ns, want) in table {
            assert_eq!(
                family_name(name, unit, kind, ns, true),
                want,
                "{name} [{unit}]"
            );
        }
        assert_eq!(
            family_name("http.server.duration", "s", NameKind::Other, "", false),
            "http_server_duration"
        );
    }

    #[test]
    fn labels_sanitize_and_join_collisions() {
        let l = labels(&[
            kv("http.method", s("GET")),
            kv("http_method", s("POST")),
            kv("2fa", s("yes")),
            kv("_hidden", s("x")),
            kv(
                "code",
                opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(200),
            ),
        ]);
        assert_eq!(l["http_method"], "GET;POST");
        assert_eq!(l["key_2fa"], "yes");
        assert_eq!(l["key_hidden"], "x");
        assert_eq!(l["code"], "200");
        assert_eq!(label_name("service.instance.id"), "service_instance_id");
    }
}
