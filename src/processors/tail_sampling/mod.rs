//! `tail_sampling`: keeps or drops whole traces once their spans have arrived, by the
//! Collector's policies ([`policy`]).
//!
//! Keys (the Collector's, same defaults): `decision_wait` (30s), `num_traces` (50000),
//! `expected_new_traces_per_sec` (0; sizes the trace table up front), `decision_cache`
//! (`sampled_cache_size`, `non_sampled_cache_size`, both 0 = off) and `policies`.
//!
//! Contract:
//! - A trace is decided `decision_wait` after its first span arrived: every policy is
//!   evaluated on the spans held for it, and the trace is either sent on whole (one request per
//!   decision round) or dropped. Dropping is the point of the processor, not a failure: the
//!   client heard success and nothing counts it as refused.
//! - Late spans (after the decision) follow it: they are sent on at once when the trace was
//!   sampled and dropped when it was not, as long as the trace is still among the last
//!   `num_traces` traces or in the decision caches.
//! - **Memory is bounded by `num_traces`**: the table holds at most that many traces (waiting or
//!   decided). When it is full, the oldest trace leaves it; if it was still waiting, it is
//!   decided early on the spans it has (the Collector drops it instead; otelgw evaluates it, so
//!   an error trace is not lost to a burst) and counted in
//!   `otelcol_processor_tail_sampling_sampling_trace_dropped_too_early`. What a trace costs:
//!   its decoded spans (held on the memory limiter's account, so a flood of large traces
//!   back-pressures the receivers instead of growing the heap) plus ~120 bytes of table entry.
//! - At shutdown, waiting traces are decided at once and sent on (the Collector drops them).
//!
//! Where it sits: like `batch`, it is a stage with its own bounded input queue (full-policy
//! `block`), run by the pipeline ([`crate::pipeline::tail_sampling`]); processors listed
//! before it run inline on the request path, processors after it run in its task, before the
//! exporters. Requests are decoded and split by trace on the request path (in parallel); the
//! stage's task only files the pieces and decides.
//!
//! Self-metrics, the Collector's names (`processor` = id): `…_count_traces_sampled{policy,
//! sampled}`, `…_global_count_traces_sampled{sampled}`, `…_sampling_trace_dropped_too_early`,
//! `…_sampling_late_span_age` (seconds since the decision), `…_sampling_traces_on_memory`,
//! `…_new_trace_id_received`, all prefixed `otelcol_processor_tail_sampling`.

pub mod policy;

use serde::{Deserialize, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;

/// `tail_sampling.decision_cache`: trace ids whose decision is remembered after the trace left
/// the table, so later spans still follow it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    /// Ids of sampled traces remembered (0 = none).
    pub sampled_cache_size: usize,
    /// Ids of traces not sampled remembered (0 = none).
    pub non_sampled_cache_size: usize,
}

/// `processors.tail_sampling`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// How long after its first span a trace is decided.
    pub decision_wait: Duration,
    /// Most traces held at once (waiting or decided).
    pub num_traces: u64,
    /// Expected new traces per second (sizes the table up front; 0 = grow as needed).
    pub expected_new_traces_per_sec: u64,
    /// Decisions remembered after a trace left the table.
    pub decision_cache: DecisionCacheConfig,
    /// The policies, evaluated in order on every trace.
    pub policies: Vec<policy::PolicyConfig>,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        TailSamplingConfig {
            decision_wait: Duration::from_secs(30),
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            decision_cache: DecisionCacheConfig::default(),
            policies: Vec::new(),
        }
    }
}

/// The most `num_traces` accepted: the table is sized from it, so it is capped well above any
/// real deployment (the Collector's default is 50,000).
pub const MAX_NUM_TRACES: u64 = 10_000_000;

impl TailSamplingConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.decision_wait.is_zero() {
            diag.error(format!("{path}.decision_wait"), "must be above 0");
        }
        if self.num_traces == 0 || self.num_traces > MAX_NUM_TRACES {
            diag.error(
                format!("{path}.num_traces"),
                format!("must be between 1 and {MAX_NUM_TRACES}"),
            );
        }
        for (key, n) in [
            ("sampled_cache_size", self.decision_cache.sampled_cache_size),
            (
                "non_sampled_cache_size",
                self.decision_cache.non_sampled_cache_size,
            ),
        ] {
            if n as u64 > MAX_NUM_TRACES {
                diag.error(
                    format!("{path}.decision_cache.{key}"),
                    format!("must be at most {MAX_NUM_TRACES}"),
                );
            }
        }
        if self.policies.is_empty() {
            diag.error(
                format!("{path}.policies"),
                "no policies: give at least one (e.g. {name: all, type: always_sample})",
            );
        }
        let mut problems = Vec::new();
        policy::validate(&self.policies, path, &mut problems);
        for (p, m) in problems {
            diag.error(p, m);
        }
        let mut ottl = Vec::new();
        visit_ottl(&self.policies, &format!("{path}.policies"), &mut ottl);
        for (p, c) in ottl {
            if let Err(e) = ottl_matcher(c) {
                diag.error(p, e);
            }
        }
    }

    /// The policies, ready to decide (the config was validated).
    pub fn policies(&self) -> Result<policy::Policies, String> {
        policy::Policies::build(&self.policies, &ottl_matcher)
    }
}

/// Every `ottl_condition` block, sub-policies included, with its path (the conditions are
/// compiled at validation, so a bad one is reported with the rest).
fn visit_ottl<'c>(
    policies: &'c [policy::PolicyConfig],
    path: &str,
    out: &mut Vec<(String, &'c policy::OttlConditionConfig)>,
) {
    for (i, p) in policies.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if let Some(c) = &p.ottl_condition {
            out.push((format!("{here}.ottl_condition"), c));
        }
        if let Some(a) = &p.and {
            visit_ottl(
                &a.and_sub_policy,
                &format!("{here}.and.and_sub_policy"),
                out,
            );
        }
        if let Some(d) = &p.drop {
            visit_ottl(
                &d.drop_sub_policy,
                &format!("{here}.drop.drop_sub_policy"),
                out,
            );
        }
        if let Some(c) = &p.composite {
            visit_ottl(
                &c.composite_sub_policy,
                &format!("{here}.composite.composite_sub_policy"),
                out,
            );
        }
    }
}

/// `ottl_condition`: a trace matches when one of its spans matches a `span` condition or one of
/// its span events matches a `spanevent` condition ([`crate::ottl`]). A condition that fails on
/// a span counts as false, except with `error_mode: propagate`, where the whole policy then
/// does not sample.
pub fn ottl_matcher(
    cfg: &policy::OttlConditionConfig,
) -> Result<Box<dyn policy::SpanMatcher>, String> {
    use crate::ottl::{compile_condition, Context};
    let compile = |ctx: Context, key: &str, list: &[String]| {
        list.iter()
            .enumerate()
            .map(|(i, c)| compile_condition(ctx, c).map_err(|e| format!("{key}[{i}] {c:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
    };
    let span = compile(Context::Span, "span", &cfg.span)?;
    let spanevent = compile(Context::SpanEvent, "spanevent", &cfg.spanevent)?;
    if span.is_empty() && spanevent.is_empty() {
        return Err("no conditions: give span or spanevent".into());
    }
    Ok(Box::new(OttlMatcher {
        span,
        spanevent,
        propagate: cfg
            .error_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("propagate")),
    }))
}

struct OttlMatcher {
    span: Vec<crate::ottl::Condition>,
    spanevent: Vec<crate::ottl::Condition>,
    propagate: bool,
}

impl OttlMatcher {
    /// `Some(answer)` once the trace is decided (a match, or an error under `propagate`).
    fn any(
        &self,
        conditions: &[crate::ottl::Condition],
        t: &dyn crate::ottl::Target,
    ) -> Option<bool> {
        for c in conditions {
            match c.matches(t) {
                Ok(true) => return Some(true),
                Ok(false) => {}
                Err(_) if self.propagate => return Some(false),
                Err(_) => {}
            }
        }
        None
    }
}

impl policy::SpanMatcher for OttlMatcher {
    fn matches(&self, trace: &policy::Trace<'_>) -> bool {
        use crate::ottl::targets::{Outer, SpanEventTarget, SpanTarget};
        // The OTTL targets edit in place; conditions only read, so they run on copies of one
        // resource, scope and span at a time.
        let mut cache = Vec::new();
        for rs in trace.spans {
            let mut resource = rs.resource.clone();
            for ss in &rs.scope_spans {
                let mut scope = ss.scope.clone();
                for s in &ss.spans {
                    let mut span = s.clone();
                    if !self.span.is_empty() {
                        let t = SpanTarget {
                            span: &mut span,
                            outer: Outer {
                                resource: &mut resource,
                                scope: Some(&mut scope),
                                cache: &mut cache,
                            },
                        };
                        if let Some(answer) = self.any(&self.span, &t) {
                            return answer;
                        }
                    }
                    let mut events = std::mem::take(&mut span.events);
                    for event in &mut events {
                        let t = SpanEventTarget {
                            event,
                            span: &span,
                            outer: Outer {
                                resource: &mut resource,
                                scope: Some(&mut scope),
                                cache: &mut cache,
                            },
                        };
                        if let Some(answer) = self.any(&self.spanevent, &t) {
                            return answer;
                        }
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
