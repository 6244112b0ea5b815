//! What every component shares, at the bottom of the import graph (the Collector's `component`
//! package): component and pipeline ids, the [`Diagnostics`] that validation collects problems
//! into, [`BuildError`] for starting a component, the typed-config helper every component's
//! `from_value` uses, the config value types ([`units`]: durations, byte sizes), and the three
//! OTLP [`Signal`]s.
//!
//! Components import this module, never the config loader ([`crate::config`]), which imports
//! them.

pub mod units;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_norway::Value;

use serde::Deserialize;

/// One problem found in a config, with the path it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors and warnings collected across the whole config.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl Diagnostics {
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }
    /// Warns at `path.key` for every key that is set but has no effect in otelgw (accepted so
    /// that Collector configs validate).
    pub fn warn_inert(&mut self, path: &str, keys: &[(&str, bool)]) {
        for (key, set) in keys {
            if *set {
                self.warn(
                    format!("{path}.{key}"),
                    "accepted for compatibility; no effect in otelgw",
                );
            }
        }
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// A component id, `type[/name]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        if !valid(kind) {
            return Err(format!(
                "invalid component id {s:?}: the type must be [a-zA-Z0-9_.-]+"
            ));
        }
        // as the Collector: the name is everything after the first '/', '/' included
        // (`transform/otlp/copy_service_resource_labels`)
        if let Some(n) = name {
            if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "invalid component id {s:?}: the name after '/' must be non-empty, without spaces"
                ));
            }
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// A pipeline id, `signal[/name]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => write!(f, "{}", self.signal),
        }
    }
}

/// Errors starting a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("tls: {0}")]
    Tls(String),
    #[error("cannot open {path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Deserializes `value` into `T`, reporting errors with their full path under `path`.
pub fn typed<T: DeserializeOwned + Default>(
    path: &str,
    value: Value,
    diag: &mut Diagnostics,
) -> Option<T> {
    if value.is_null() {
        return Some(T::default());
    }
    let mut value = value;
    // A number or boolean where a string is expected is taken as its text: an env reference
    // that expands to `1234` (`username: "${env:ID}"`) types as a number, and the Collector
    // decodes it into a string field all the same. Each retry fixes one such value.
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(v) => return Some(v),
            Err(e) => {
                let msg = e.inner().to_string();
                let scalar_for_string = msg.ends_with("expected a string")
                    && ["integer", "floating point", "boolean"]
                        .iter()
                        .any(|k| msg.starts_with(&format!("invalid type: {k}")));
                if scalar_for_string {
                    if let Some(node) = node_at(&mut value, e.path()) {
                        let text = match node {
                            Value::Number(n) => Some(n.to_string()),
                            Value::Bool(b) => Some(b.to_string()),
                            _ => None,
                        };
                        if let Some(text) = text {
                            *node = Value::String(text);
                            continue;
                        }
                    }
                }
                let inner = e.path().to_string();
                let full = if inner == "." || inner.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}.{inner}")
                };
                diag.error(full, msg);
                return None;
            }
        }
    }
    diag.error(path, "too many values of the wrong type");
    None
}

/// The value at a deserialization error's path.
fn node_at<'a>(v: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    use serde_path_to_error::Segment;
    let mut cur = v;
    for seg in path.iter() {
        cur = match seg {
            Segment::Map { key } => cur.as_mapping_mut()?.get_mut(key.as_str())?,
            Segment::Seq { index } => cur.as_sequence_mut()?.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(cur)
}

/// Serializes a component config for `print-config`.
pub fn to_value<T: Serialize>(c: &T) -> Value {
    serde_norway::to_value(c).unwrap_or(Value::Null)
}

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The item noun the Collector uses in its self-metric names
    /// (`otelcol_receiver_accepted_spans`, `…_metric_points`, `…_log_records`).
    pub fn item_noun(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
            Signal::Logs => "log_records",
        }
    }

    /// Parses the signal part of a pipeline id (`traces`, `metrics/internal`).
    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }

    /// The OTLP/HTTP path suffix for this signal (`v1/traces`).
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The gRPC method path for this signal's Export call.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Creds {
        username: String,
        password: Option<String>,
        port: u16,
        list: Vec<String>,
    }

    #[test]
    fn numbers_and_booleans_where_strings_go_are_taken_as_text() {
        let v: Value =
            serde_norway::from_str("{username: 1234, password: true, port: 80, list: [1.5, x]}")
                .unwrap();
        let mut d = Diagnostics::default();
        let c: Creds = typed("ext", v, &mut d).unwrap();
        assert!(d.errors.is_empty());
        assert_eq!(c.username, "1234");
        assert_eq!(c.password.as_deref(), Some("true"));
        assert_eq!(c.list, ["1.5", "x"]);
        // the other way round stays an error, with its path
        let v: Value = serde_norway::from_str("{port: abc}").unwrap();
        assert!(typed::<Creds>("ext", v, &mut d).is_none());
        assert_eq!(d.errors[0].path, "ext.port");
    }
}
