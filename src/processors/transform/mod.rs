//! `transform`: OTTL statements ([`crate::ottl`]) that edit items, as the Collector's
//! transform processor.
//!
//! Keys: `error_mode` (`ignore` — otelgw's default, see below —, `silent`, `propagate`),
//! `trace_statements`, `metric_statements`, `log_statements`. Each list holds blocks
//! (`{context, conditions, statements, error_mode}`) or plain statements whose context is
//! inferred from their paths (`span.name`, `log.body`, `datapoint.attributes`, `resource.…`;
//! without a prefix: the signal's item — span, log, datapoint). A block runs its statements on
//! every item of its context for which one of its `conditions` holds (all, when none), blocks
//! in order. Statements are compiled at config load: a bad one is a config error with its path
//! and column.
//!
//! Fast path: when every block of the pipeline's signal works on the signal's item (span, log
//! record, data point) with statements that only read and write what an encoded item offers
//! ([`crate::ottl::Statement::on_wire`]) — the common case, e.g. the OTel demo's
//! `replace_pattern(name, …)` — the processor edits requests in their encoding
//! ([`Reads::Items`]) and nothing is decoded. Otherwise it works on the decoded request.
//!
//! `error_mode`: the Collector's default is `propagate`, which refuses the whole request on one
//! failing statement; otelgw defaults to `ignore` (the item keeps its other edits and goes on,
//! the error is counted in `otelgw_processor_ottl_errors_total`), so one odd item never costs a
//! request. `propagate` refuses only the failing items (`partial_success`).

use serde::{Deserialize, Serialize};

use super::{Processor, Reads, Rejections};
use crate::component::Diagnostics;
use crate::data::{RequestMeta, Signal, Telemetry};
use crate::ottl::{self, walk::walk, Condition, Context, ErrorMode, EvalError, Statement, Target};
use crate::telemetry::metrics::{names, Counter, Registry};
use crate::wire::ItemEdit;

/// One entry of a `*_statements` list: a block, or a statement with an inferred context.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatementsEntry {
    Statement(String),
    Block(Block),
}

/// `{context, conditions, statements, error_mode}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Block {
    /// `resource`, `scope`, `span`, `log`, `metric`, `datapoint` (inferred when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The statements run on an item when one of these holds (always when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    pub statements: Vec<String>,
    /// Overrides the processor's `error_mode` for this block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<ErrorMode>,
}

/// `processors.transform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    pub error_mode: ErrorMode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_statements: Vec<StatementsEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_statements: Vec<StatementsEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_statements: Vec<StatementsEntry>,
}

/// The signal's item context (the default for statements without a context).
pub(crate) fn item_context(signal: Signal) -> Context {
    match signal {
        Signal::Traces => Context::Span,
        Signal::Logs => Context::Log,
        Signal::Metrics => Context::DataPoint,
    }
}

/// The contexts a signal's statements may use.
pub(crate) fn allowed(signal: Signal, ctx: Context) -> bool {
    matches!(
        (signal, ctx),
        (_, Context::Resource | Context::Scope)
            | (Signal::Traces, Context::Span | Context::SpanEvent)
            | (Signal::Logs, Context::Log)
            | (Signal::Metrics, Context::Metric | Context::DataPoint)
    )
}

/// A statement's context from its paths' prefixes (`span.name`, `resource.attributes`): the
/// most specific context a path names, a path without a prefix counting as `default` (the
/// signal's item). A statement that does not parse gets `default` (compiling it reports why).
pub(crate) fn infer_context(text: &str, default: Context) -> Context {
    let Ok(s) = ottl::parse::statement(text) else {
        return default;
    };
    let rank = |c: Context| match c {
        Context::Span | Context::SpanEvent | Context::Log | Context::DataPoint => 3,
        Context::Metric => 2,
        Context::Scope => 1,
        Context::Resource => 0,
    };
    ottl::parse::path_prefixes(&s)
        .into_iter()
        .map(|p| p.and_then(|p| Context::parse(&p)).unwrap_or(default))
        .max_by_key(|c| rank(*c))
        .unwrap_or(default)
}

struct Group {
    ctx: Context,
    conditions: Vec<Condition>,
    statements: Vec<Statement>,
    error_mode: ErrorMode,
}

impl TransformConfig {
    fn entries(&self, signal: Signal) -> &[StatementsEntry] {
        match signal {
            Signal::Traces => &self.trace_statements,
            Signal::Metrics => &self.metric_statements,
            Signal::Logs => &self.log_statements,
        }
    }

    fn groups(&self, signal: Signal, path: &str, diag: &mut Diagnostics) -> Vec<Group> {
        let key = match signal {
            Signal::Traces => "trace_statements",
            Signal::Metrics => "metric_statements",
            Signal::Logs => "log_statements",
        };
        let mut groups = Vec::new();
        for (i, entry) in self.entries(signal).iter().enumerate() {
            let at = format!("{path}.{key}[{i}]");
            let (ctx, conditions, statements, mode, spath) = match entry {
                StatementsEntry::Statement(s) => (
                    infer_context(s, item_context(signal)),
                    &[][..],
                    std::slice::from_ref(s),
                    None,
                    None,
                ),
                StatementsEntry::Block(b) => {
                    let ctx = match b.context.as_deref() {
                        None => b.statements.first().map_or(item_context(signal), |s| {
                            infer_context(s, item_context(signal))
                        }),
                        Some(c) => match Context::parse(c) {
                            Some(ctx) => ctx,
                            None => {
                                diag.error(
                                    format!("{at}.context"),
                                    format!("unknown context {c:?}"),
                                );
                                continue;
                            }
                        },
                    };
                    if b.statements.is_empty() {
                        diag.error(
                            format!("{at}.statements"),
                            "at least one statement is required",
                        );
                    }
                    (
                        ctx,
                        b.conditions.as_slice(),
                        b.statements.as_slice(),
                        b.error_mode,
                        Some(()),
                    )
                }
            };
            if !allowed(signal, ctx) {
                diag.error(
                    &at,
                    format!("the {} context does not apply to {key}", ctx.name()),
                );
                continue;
            }
            let mut g = Group {
                ctx,
                conditions: Vec::new(),
                statements: Vec::new(),
                error_mode: mode.unwrap_or(self.error_mode),
            };
            for (j, c) in conditions.iter().enumerate() {
                match ottl::compile_condition(ctx, c) {
                    Ok(c) => g.conditions.push(c),
                    Err(e) => diag.error(format!("{at}.conditions[{j}]"), format!("{c:?}: {e}")),
                }
            }
            for (j, s) in statements.iter().enumerate() {
                let p = match spath {
                    Some(()) => format!("{at}.statements[{j}]"),
                    None => at.clone(),
                };
                match ottl::compile_statement(ctx, s) {
                    Ok(s) => g.statements.push(s),
                    Err(e) => diag.error(p, format!("{s:?}: {e}")),
                }
            }
            groups.push(g);
        }
        groups
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if Signal::ALL.iter().all(|s| self.entries(*s).is_empty()) {
            diag.error(
                path,
                "no statements: give trace_statements, metric_statements or log_statements",
            );
        }
        for signal in Signal::ALL {
            self.groups(signal, path, diag);
        }
    }

    /// Builds the processor for one pipeline (the config was validated).
    pub fn build(&self, id: &str, signal: Signal, reg: &Registry) -> TransformProcessor {
        let groups = self.groups(signal, "", &mut Diagnostics::default());
        let item = item_context(signal);
        let on_wire = groups.iter().all(|g| {
            g.ctx == item
                && g.error_mode != ErrorMode::Propagate
                && g.statements.iter().all(Statement::on_wire)
                && g.conditions.iter().all(Condition::on_wire)
        });
        TransformProcessor {
            groups,
            on_wire,
            errors: reg.counter(
                names::PROCESSOR_OTTL_ERRORS,
                "OTTL statements and conditions that failed on an item, by processor.",
                &[("processor", id)],
            ),
        }
    }
}

/// The running `transform` processor for one pipeline.
pub struct TransformProcessor {
    groups: Vec<Group>,
    on_wire: bool,
    errors: Counter,
}

impl Group {
    /// Runs the block on one item; `Err` only in `propagate` mode.
    fn run(&self, t: &mut dyn Target, errors: &Counter) -> Result<(), EvalError> {
        let failed = |e: EvalError| -> Result<(), EvalError> {
            errors.inc();
            match self.error_mode {
                ErrorMode::Propagate => Err(e),
                ErrorMode::Ignore => {
                    tracing::debug!(error = %e, "transform statement failed; item kept");
                    Ok(())
                }
                ErrorMode::Silent => Ok(()),
            }
        };
        if !self.conditions.is_empty() {
            let mut any = false;
            for c in &self.conditions {
                match c.matches(t) {
                    Ok(true) => {
                        any = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => failed(e)?,
                }
            }
            if !any {
                return Ok(());
            }
        }
        for s in &self.statements {
            if let Err(e) = s.execute(t) {
                failed(e)?;
            }
        }
        Ok(())
    }
}

impl Processor for TransformProcessor {
    fn reads(&self) -> Reads {
        if self.on_wire {
            Reads::Items
        } else {
            Reads::Decoded
        }
    }

    fn process(&self, data: &mut Telemetry, _meta: &RequestMeta, rejected: &mut Rejections) {
        for g in &self.groups {
            let mut last = String::new();
            // in `propagate` mode a failing item goes (resources and scopes are not removed:
            // their errors are only counted); what went is what the client hears of
            let removed = walk(data, g.ctx, &mut |t| match g.run(t, &self.errors) {
                Ok(()) => true,
                Err(e) => {
                    last = e.0;
                    false
                }
            });
            rejected.add(removed, format!("transform statement failed: {last}"));
        }
    }

    fn edit_item(&self, item: &mut ItemEdit<'_, '_>, _meta: &RequestMeta) {
        let mut cache = Vec::new();
        let mut t = ottl::targets::WireTarget {
            item,
            cache: &mut cache,
        };
        for g in &self.groups {
            // not `propagate` on the wire path, so this never fails
            let _ = g.run(&mut t, &self.errors);
        }
    }
}

#[cfg(test)]
mod tests;
