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
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            diag.error(full, e.into_inner().to_string());
            None
        }
    }
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
