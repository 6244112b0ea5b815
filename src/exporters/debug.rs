//! `debug` exporter (alias `logging`): writes what passes through to the log, for people.
//!
//! `basic`: one line per batch with counts. `normal`: one line per span / data point / log record
//! with its key fields. `detailed`: the whole batch as OTLP/JSON.

use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde::{Deserialize, Serialize};

use super::{ExportError, ExportOutcome, Exporter};
use crate::component::ComponentId;
use crate::data::{hex, Outgoing, Telemetry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

/// `exporters.debug`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// `basic` (default), `normal`, or `detailed`.
    pub verbosity: Verbosity,
    /// The Collector's log sampling (`sampling_initial`, `sampling_thereafter`) and
    /// `use_internal_logger`: accepted so its configs validate; otelgw logs every batch through
    /// its own logger (validation warns when they are set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_initial: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_thereafter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_internal_logger: Option<bool>,
}

impl DebugConfig {
    pub fn validate(&self, path: &str, diag: &mut crate::component::Diagnostics) {
        diag.warn_inert(
            path,
            &[
                ("sampling_initial", self.sampling_initial.is_some()),
                ("sampling_thereafter", self.sampling_thereafter.is_some()),
                ("use_internal_logger", self.use_internal_logger.is_some()),
            ],
        );
    }
}

pub struct DebugExporter {
    id: String,
    verbosity: Verbosity,
}

impl DebugExporter {
    pub fn new(id: &ComponentId, cfg: &DebugConfig) -> DebugExporter {
        DebugExporter {
            id: id.to_string(),
            verbosity: cfg.verbosity,
        }
    }
}

fn body_text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Renders the `normal` verbosity lines.
pub fn normal_lines(t: &Telemetry) -> Vec<String> {
    let mut out = Vec::new();
    match t {
        Telemetry::Traces(r) => {
            for s in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                out.push(format!(
                    "span {:?} trace_id={} span_id={} attributes={}",
                    s.name,
                    hex(&s.trace_id),
                    hex(&s.span_id),
                    s.attributes.len()
                ));
            }
        }
        Telemetry::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                out.push(format!(
                    "metric {:?} points={}",
                    m.name,
                    crate::data::metric_point_count(m)
                ));
            }
        }
        Telemetry::Logs(r) => {
            for l in r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
            {
                out.push(format!(
                    "log severity={:?} body={:?}",
                    l.severity_text,
                    body_text(&l.body)
                ));
            }
        }
    }
    out
}

impl Exporter for DebugExporter {
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            let signal = batch.signal();
            tracing::info!(exporter = %self.id, signal = %signal, items = batch.items(), "debug: {} {}", batch.items(), signal.item_noun());
            match self.verbosity {
                Verbosity::Basic => {}
                Verbosity::Normal => {
                    for line in normal_lines(batch.data()) {
                        tracing::info!(exporter = %self.id, "{line}");
                    }
                }
                Verbosity::Detailed => {
                    let json = batch
                        .data()
                        .to_json()
                        .map_err(|e| ExportError::permanent("encode", e.to_string()))?;
                    tracing::info!(exporter = %self.id, "{}", String::from_utf8_lossy(&json));
                }
            }
            Ok(ExportOutcome::default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn normal_verbosity_names_every_item() {
        let t = Telemetry::Traces(testdata::traces(1, 1, 3));
        let lines = normal_lines(&t);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("span \"GET /api/v1/orders/0\" trace_id="),
            "{}",
            lines[0]
        );
        let l = normal_lines(&Telemetry::Logs(testdata::logs(1, 1, 2)));
        assert!(
            l[1].starts_with("log severity=\"INFO\" body=\"request "),
            "{}",
            l[1]
        );
        let m = normal_lines(&Telemetry::Metrics(testdata::metrics(1, 1, 2)));
        assert_eq!(m[0], "metric \"http.server.requests\" points=2");
    }
}
