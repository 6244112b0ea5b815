//! `filter`: drops items for which an OTTL condition ([`crate::ottl`]) holds, as the
//! Collector's filter processor.
//!
//! Keys: `error_mode`, `traces.span`, `traces.spanevent`, `metrics.metric`,
//! `metrics.datapoint`, `logs.log_record` (lists of conditions; an item goes when any holds; a
//! span event goes from its span, uncounted). Dropped items are counted in the
//! Collector's `otelcol_processor_filter_spans_filtered`, `…_logs_filtered` and
//! `…_datapoints_filtered` (`filter` = the processor id) and are not rejections: the client
//! hears success, they were dropped on purpose. A scope, metric or resource left without
//! items goes too, as in the Collector.
//!
//! Fast path: span, log record and data point conditions that read only what an encoded item
//! offers run on the encoding ([`Reads::Items`]): a request with nothing to drop is passed on
//! as the same bytes. `metrics.metric` conditions, and conditions that read more, work on the
//! decoded request.
//!
//! `error_mode` (default `ignore`, safer than the Collector's `propagate`, see
//! [`crate::ottl::ErrorMode`]): a condition that fails on an item counts as false (the item is
//! kept) and is counted in `otelgw_processor_ottl_errors_total`.

use serde::{Deserialize, Serialize};

use super::{Processor, Reads, Rejections};
use crate::component::Diagnostics;
use crate::data::{RequestMeta, Signal, Telemetry};
use crate::ottl::{self, walk::walk, Condition, Context, ErrorMode, EvalError, Target};
use crate::telemetry::metrics::{names, Counter, Registry};
use crate::wire::ItemEdit;

/// `filter.traces`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConditions {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub span: Vec<String>,
    /// Span events to drop (their span stays).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spanevent: Vec<String>,
}

/// `filter.metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConditions {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datapoint: Vec<String>,
}

/// `filter.logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConditions {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_record: Vec<String>,
}

/// `processors.filter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    pub error_mode: ErrorMode,
    pub traces: TracesConditions,
    pub metrics: MetricsConditions,
    pub logs: LogsConditions,
}

impl FilterConfig {
    /// The condition lists of a signal: (context, key, conditions).
    fn lists(&self, signal: Signal) -> Vec<(Context, &'static str, &[String])> {
        match signal {
            Signal::Traces => vec![
                (Context::Span, "traces.span", &self.traces.span),
                (
                    Context::SpanEvent,
                    "traces.spanevent",
                    &self.traces.spanevent,
                ),
            ],
            Signal::Logs => vec![(Context::Log, "logs.log_record", &self.logs.log_record)],
            Signal::Metrics => vec![
                (Context::Metric, "metrics.metric", &self.metrics.metric),
                (
                    Context::DataPoint,
                    "metrics.datapoint",
                    &self.metrics.datapoint,
                ),
            ],
        }
    }

    fn compile(
        &self,
        signal: Signal,
        path: &str,
        diag: &mut Diagnostics,
    ) -> Vec<(Context, Vec<Condition>)> {
        let mut out = Vec::new();
        for (ctx, key, list) in self.lists(signal) {
            let mut compiled = Vec::new();
            for (i, c) in list.iter().enumerate() {
                match ottl::compile_condition(ctx, c) {
                    Ok(c) => compiled.push(c),
                    Err(e) => diag.error(format!("{path}.{key}[{i}]"), format!("{c:?}: {e}")),
                }
            }
            if !compiled.is_empty() {
                out.push((ctx, compiled));
            }
        }
        out
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let mut any = false;
        for signal in Signal::ALL {
            any |= self.lists(signal).iter().any(|(_, _, l)| !l.is_empty());
            self.compile(signal, path, diag);
        }
        if !any {
            diag.error(path, "no conditions: give traces.span, traces.spanevent, metrics.metric, metrics.datapoint or logs.log_record");
        }
    }

    /// Builds the processor for one pipeline (the config was validated).
    pub fn build(&self, id: &str, signal: Signal, reg: &Registry) -> FilterProcessor {
        let lists = self.compile(signal, "", &mut Diagnostics::default());
        let on_wire = self.error_mode != ErrorMode::Propagate
            && lists.iter().all(|(ctx, l)| {
                *ctx == super::transform::item_context(signal) && l.iter().all(Condition::on_wire)
            });
        let filtered = match signal {
            Signal::Traces => names::PROCESSOR_FILTER_SPANS_FILTERED,
            Signal::Logs => names::PROCESSOR_FILTER_LOGS_FILTERED,
            Signal::Metrics => names::PROCESSOR_FILTER_DATAPOINTS_FILTERED,
        };
        FilterProcessor {
            lists,
            on_wire,
            error_mode: self.error_mode,
            filtered: reg.counter(
                filtered,
                "Items dropped by the filter processor.",
                &[("filter", id)],
            ),
            errors: reg.counter(
                names::PROCESSOR_OTTL_ERRORS,
                "OTTL statements and conditions that failed on an item, by processor.",
                &[("processor", id)],
            ),
        }
    }
}

/// The running `filter` processor for one pipeline.
pub struct FilterProcessor {
    lists: Vec<(Context, Vec<Condition>)>,
    on_wire: bool,
    error_mode: ErrorMode,
    filtered: Counter,
    errors: Counter,
}

impl FilterProcessor {
    /// True when some condition holds (the item goes); `Err` only in `propagate` mode.
    fn drops(&self, conditions: &[Condition], t: &dyn Target) -> Result<bool, EvalError> {
        for c in conditions {
            match c.matches(t) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => {
                    self.errors.inc();
                    match self.error_mode {
                        ErrorMode::Propagate => return Err(e),
                        ErrorMode::Ignore => {
                            tracing::debug!(error = %e, "filter condition failed; item kept")
                        }
                        ErrorMode::Silent => {}
                    }
                }
            }
        }
        Ok(false)
    }
}

impl Processor for FilterProcessor {
    fn reads(&self) -> Reads {
        if self.on_wire {
            Reads::Items
        } else {
            Reads::Decoded
        }
    }

    fn process(&self, data: &mut Telemetry, _meta: &RequestMeta, rejected: &mut Rejections) {
        for (ctx, conditions) in &self.lists {
            let mut failed = 0u64;
            let mut last = String::new();
            let removed = walk(data, *ctx, &mut |t| match self.drops(conditions, t) {
                Ok(drop) => !drop,
                Err(e) => {
                    failed += 1;
                    last = e.0;
                    false
                }
            });
            // items that failed in `propagate` mode are rejections, not filtered
            self.filtered.add(removed.saturating_sub(failed));
            rejected.add(failed, format!("filter condition failed: {last}"));
        }
    }

    fn edit_item(&self, item: &mut ItemEdit<'_, '_>, _meta: &RequestMeta) {
        let mut cache = Vec::new();
        let t = ottl::targets::WireTarget {
            item,
            cache: &mut cache,
        };
        let drop = self
            .lists
            .iter()
            .any(|(_, l)| self.drops(l, &t).unwrap_or(false));
        if drop {
            self.filtered.inc();
            item.remove();
        }
    }
}

#[cfg(test)]
mod tests;
