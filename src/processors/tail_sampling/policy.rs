//! `tail_sampling` policies: their configuration (the Collector contrib
//! `tailsamplingprocessor`'s `policies` list, same YAML keys), its validation, and the
//! evaluation of a complete trace against them.
//!
//! # Configuration
//!
//! `policies` is a list of `{name, type, <type>: {...}}` ([`PolicyConfig`]). Types and keys:
//!
//! | type | block keys | samples when |
//! |---|---|---|
//! | `always_sample` | (none) | always |
//! | `latency` | `threshold_ms`, `upper_threshold_ms` | trace duration ≥ `threshold_ms`; with an upper bound, `threshold_ms` < duration ≤ `upper_threshold_ms` |
//! | `numeric_attribute` | `key`, `min_value`, `max_value`, `invert_match` | a resource or span attribute `key` is in `[min_value, max_value]` (0 = unbounded on that side) |
//! | `probabilistic` | `hash_salt`, `sampling_percentage` | FNV-1a 64 of salt + trace id ≤ `floor((2^64-1) × pct/100)` |
//! | `status_code` | `status_codes` (`ERROR`, `OK`, `UNSET`) | a span has one of the codes (no status = `UNSET`) |
//! | `string_attribute` | `key`, `values`, `enabled_regex_matching`, `cache_max_size`, `invert_match` | a resource or span attribute `key` equals (or, with regexes, contains a match of) one of `values` |
//! | `rate_limiting` | `spans_per_second` | the spans sampled by this policy in the current second, this trace included, stay *below* `spans_per_second` |
//! | `span_count` | `min_spans`, `max_spans` | `min_spans` ≤ span count ≤ `max_spans` (0 = no upper bound) |
//! | `trace_state` | `key`, `values` | a span's W3C `tracestate` has `key` with one of `values` |
//! | `boolean_attribute` | `key`, `value`, `invert_match` | a resource or span attribute `key` equals `value` |
//! | `ottl_condition` | `error_mode`, `span`, `spanevent` | the [`SpanMatcher`] otelgw builds from the block says so |
//! | `and` | `and_sub_policy` | every sub-policy samples |
//! | `composite` | `max_total_spans_per_second`, `policy_order`, `composite_sub_policy`, `rate_allocation` | see below |
//! | `drop` | `drop_sub_policy` | (returns `Dropped`) every sub-policy samples |
//!
//! Sub-policies have the same shape as policies. As in the Collector, `and` and `drop`
//! sub-policies must be plain types (not `and`, `composite` or `drop`), and `composite`
//! sub-policies may be plain types or `and` (whose own sub-policies are plain).
//!
//! Attribute policies look at resource attributes and span attributes (not scope or event
//! attributes); the first attribute with the key counts. Values are read the way the
//! Collector's pdata getters read them: `numeric_attribute` reads a non-integer value as 0,
//! `boolean_attribute` a non-boolean as `false`, `string_attribute` a non-string as `""`
//! (and an empty span value never matches, while an empty resource value is still tried).
//! Regular expressions are unanchored (`val` matches `interval`) and use the `regex` crate's
//! syntax, which is RE2's except that `\d`, `\w`, `\s`, `\b` are Unicode-aware. Regex results
//! are cached per attribute value in a bounded cache of `cache_max_size` entries (default
//! 128; CLOCK eviction, an approximation of the Collector's LRU; values over 4 KiB are not
//! cached).
//!
//! `latency` takes the earliest span start and the latest span end, span by span in arrival
//! order, and samples as soon as the running duration qualifies — as the Collector does, so
//! with `upper_threshold_ms` a trace whose *final* duration exceeds the upper bound is still
//! sampled if an earlier prefix of its spans fell inside the window.
//!
//! `composite` evaluates its sub-policies in `policy_order` (sub-policies it does not name
//! follow in list order). The first sub-policy that samples decides: the trace is sampled if
//! that sub-policy's spans this second, this trace included, stay within both its allocation
//! and `max_total_spans_per_second`, else it is not sampled (later sub-policies are not
//! tried). A sub-policy's allocation is `percent`% of `max_total_spans_per_second`, or an
//! equal share (`max / number of sub-policies`) for an entry with `percent: 0`; a sub-policy
//! without a `rate_allocation` entry gets 0 and never samples. Counters reset every second.
//!
//! Per-second windows (`rate_limiting`, `composite`) are whole seconds since the first
//! [`Policies::decide`] call, measured on the `now` passed in.
//!
//! # Decision and precedence
//!
//! Each top-level policy yields a [`Decision`]; `invert_match` policies yield
//! `InvertSampled` / `InvertNotSampled`. Inside `and`, `composite` and `drop`, inverted
//! decisions count as plain sampled / not sampled. Drop policies are evaluated first (in
//! list order), then the others (in list order); evaluation stops at the first `Dropped`,
//! so stateful policies (rate limits) are not charged for dropped traces. The final
//! decision, as in the Collector's `processor.go` (`makeDecision`; verified against
//! collector-contrib `processor/tailsamplingprocessor`, also stated in its README):
//!
//! 1. any `Dropped` → not sampled;
//! 2. else any `InvertNotSampled` → not sampled;
//! 3. else any `Sampled` → sampled;
//! 4. else any `InvertSampled` and no `NotSampled` → sampled;
//! 5. else not sampled.
//!
//! # Differences from the Collector
//!
//! - Validation is stricter and reports every problem with its path; configs the Collector
//!   accepts but that cannot work are errors: a missing type block, a block for another
//!   type, an empty sub-policy list / key / `values`, `sampling_percentage` or
//!   `percent` outside 0..=100 (the Collector clamps), `upper_threshold_ms` ≤
//!   `threshold_ms`, `min_value` > `max_value`, `spans_per_second` or
//!   `max_total_spans_per_second` ≤ 0, a composite without `rate_allocation`, allocations
//!   summing above 100 or naming unknown sub-policies, unknown `policy_order` names, bad
//!   regexes (the Collector panics), trace-state values the Collector silently ignores.
//! - `composite` honours `policy_order`; the Collector ignores it and uses list order
//!   (collector-contrib issue #36955).
//! - `rate_limiting` is the per-second window the Collector used until 2026; its newer
//!   token bucket (`burst_capacity`, PR #48226) is not implemented, and windows start at the
//!   first decision rather than at wall-clock second boundaries.
//! - Types `bytes_limiting`, `trace_flags`, `not`, `skip`, extension policies, and the
//!   processor options `sample_on_first_match` and the `disableinvertdecisions` feature gate
//!   are not supported; unknown types are errors.
//! - No `Error` decision: `ottl_condition` errors are the [`SpanMatcher`]'s business
//!   (`error_mode` is passed to it).
//! - [`Policies::decide`] reports policies skipped after a `Dropped` as `Dropped` (the
//!   Collector records nothing for them).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Instant;

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use regex::Regex;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Every policy type, in the order error messages list them (plain types first, then `and`,
/// `composite`, `drop`: the lists of types allowed in sub-policies are prefixes of it).
pub const POLICY_TYPES: &[&str] = &[
    "always_sample",
    "latency",
    "numeric_attribute",
    "probabilistic",
    "status_code",
    "string_attribute",
    "rate_limiting",
    "span_count",
    "trace_state",
    "boolean_attribute",
    "ottl_condition",
    "and",
    "composite",
    "drop",
];

/// Types allowed inside `and` and `drop` (and inside an `and` nested in a `composite`): the
/// plain ones, before `and` in [`POLICY_TYPES`].
const PLAIN_TYPES: &[&str] = POLICY_TYPES.split_at(11).0;

/// Types allowed inside `composite`: the plain ones and `and`.
const COMPOSITE_SUB_TYPES: &[&str] = POLICY_TYPES.split_at(12).0;

/// The status codes `status_code.status_codes` accepts, with their OTLP values.
const STATUS_CODES: &[(&str, i32)] = &[("ERROR", 2), ("OK", 1), ("UNSET", 0)];

/// `string_attribute.cache_max_size` when unset or ≤ 0 (the Collector's default).
const DEFAULT_REGEX_CACHE_SIZE: usize = 128;
/// Attribute values longer than this are matched but not cached (bounds the cache's bytes).
const MAX_CACHED_VALUE_LEN: usize = 4096;
/// `probabilistic.hash_salt` when empty (the Collector's default).
const DEFAULT_HASH_SALT: &str = "default-hash-seed";

/// One policy: an entry of `policies`, `and_sub_policy`, `drop_sub_policy` or
/// `composite_sub_policy`. Exactly the block named by `type` must be present
/// (`always_sample` has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Name of the policy: unique among top-level policies and among a composite's
    /// sub-policies; the metrics label and the `policy_order` / `rate_allocation` reference.
    #[serde(default)]
    pub name: String,
    /// Policy type, one of [`POLICY_TYPES`]; selects the block below that configures it.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Settings of a `latency` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyConfig>,
    /// Settings of a `numeric_attribute` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_attribute: Option<NumericAttributeConfig>,
    /// Settings of a `probabilistic` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic: Option<ProbabilisticConfig>,
    /// Settings of a `status_code` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodeConfig>,
    /// Settings of a `string_attribute` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_attribute: Option<StringAttributeConfig>,
    /// Settings of a `rate_limiting` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting: Option<RateLimitingConfig>,
    /// Settings of a `span_count` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_count: Option<SpanCountConfig>,
    /// Settings of a `trace_state` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<TraceStateConfig>,
    /// Settings of a `boolean_attribute` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    /// Settings of an `ottl_condition` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ottl_condition: Option<OttlConditionConfig>,
    /// Settings of an `and` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<AndConfig>,
    /// Settings of a `composite` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<CompositeConfig>,
    /// Settings of a `drop` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropConfig>,
}

/// `latency`: samples traces by duration (earliest span start to latest span end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Lower bound in milliseconds: inclusive without an upper bound, exclusive with one.
    pub threshold_ms: i64,
    /// Inclusive upper bound in milliseconds; 0 means none.
    pub upper_threshold_ms: i64,
}

/// `numeric_attribute`: samples traces with an integer attribute in a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumericAttributeConfig {
    /// Attribute key, looked up in resource and span attributes.
    pub key: String,
    /// Inclusive minimum; 0 means unbounded below (as in the Collector).
    pub min_value: i64,
    /// Inclusive maximum; 0 means unbounded above (as in the Collector).
    pub max_value: i64,
    /// Sample traces where no resource or span has the attribute in range (an inverted
    /// decision, see the module doc).
    pub invert_match: bool,
}

/// `probabilistic`: samples a percentage of traces by a hash of their trace id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    /// Salt hashed before the trace id; empty means the Collector's `default-hash-seed`.
    /// Tiers sampling at different rates should use different salts.
    pub hash_salt: String,
    /// Percentage of traces to sample, 0 to 100.
    pub sampling_percentage: f64,
}

/// `status_code`: samples traces with a span of one of the given status codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    /// Status codes to sample: `ERROR`, `OK`, `UNSET` (a span without status is `UNSET`).
    pub status_codes: Vec<String>,
}

/// `string_attribute`: samples traces with a string attribute matching values or regexes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StringAttributeConfig {
    /// Attribute key, looked up in resource and span attributes.
    pub key: String,
    /// Exact values, or regular expressions with `enabled_regex_matching`.
    pub values: Vec<String>,
    /// Treat `values` as unanchored regular expressions.
    pub enabled_regex_matching: bool,
    /// Entries of the regex result cache; ≤ 0 means 128. Unused without regexes.
    pub cache_max_size: i64,
    /// Sample traces where no resource or span has a matching value (an inverted decision,
    /// see the module doc).
    pub invert_match: bool,
}

/// `rate_limiting`: samples traces while this policy's spans in the current second stay
/// below a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    /// The limit; a trace is sampled only if the second's total, itself included, stays
    /// strictly below it (as in the Collector).
    pub spans_per_second: i64,
}

/// `span_count`: samples traces by their number of spans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    /// Inclusive minimum number of spans.
    pub min_spans: i32,
    /// Inclusive maximum number of spans; 0 means no maximum.
    pub max_spans: i32,
}

/// `trace_state`: samples traces with a span whose W3C `tracestate` has a key and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    /// The `tracestate` member key.
    pub key: String,
    /// Values to sample (exact match).
    pub values: Vec<String>,
}

/// `boolean_attribute`: samples traces with a boolean attribute of a given value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    /// Attribute key, looked up in resource and span attributes.
    pub key: String,
    /// The value to match.
    pub value: bool,
    /// Sample traces where no resource or span has the value (an inverted decision, see the
    /// module doc).
    pub invert_match: bool,
}

/// `ottl_condition`: samples traces where a span or span event satisfies an OTTL condition.
/// Parsing and evaluation are otelgw's OTTL engine's, through [`SpanMatcher`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OttlConditionConfig {
    /// `ignore`, `silent` or `propagate` (case-insensitive); unset means the OTTL engine's
    /// default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<String>,
    /// Span conditions; any one true on any span samples the trace.
    pub span: Vec<String>,
    /// Span event conditions; any one true on any event samples the trace.
    pub spanevent: Vec<String>,
}

/// `and`: samples when every sub-policy samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    /// The sub-policies (plain types only).
    pub and_sub_policy: Vec<PolicyConfig>,
}

/// `drop`: decides `Dropped` (which overrides every other decision) when every sub-policy
/// samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    /// The sub-policies (plain types only).
    pub drop_sub_policy: Vec<PolicyConfig>,
}

/// `composite`: rate-limited sub-policies sharing a spans-per-second budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositeConfig {
    /// Budget shared by the sub-policies, in spans per second.
    pub max_total_spans_per_second: i64,
    /// Evaluation order, by sub-policy name; unnamed sub-policies follow in list order.
    pub policy_order: Vec<String>,
    /// The sub-policies (plain types or `and`).
    pub composite_sub_policy: Vec<PolicyConfig>,
    /// Each sub-policy's share of the budget; sub-policies without an entry get none.
    pub rate_allocation: Vec<RateAllocationConfig>,
}

/// One `composite.rate_allocation` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateAllocationConfig {
    /// Name of the sub-policy.
    pub policy: String,
    /// Percentage of `max_total_spans_per_second`, 0 to 100; 0 means an equal share.
    pub percent: i64,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Where validation problems go. In otelgw this is `Diagnostics`: swapping means changing
/// this alias, [`report`] and [`summary`].
type Errors = Vec<(String, String)>;

/// Records one problem at `path`.
fn report(errors: &mut Errors, path: impl Into<String>, message: impl Into<String>) {
    errors.push((path.into(), message.into()));
}

/// All recorded problems as one message, or `None` when there are none.
fn summary(errors: &Errors) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    let all: Vec<String> = errors.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    Some(all.join("; "))
}

/// Checks `policies` (the `policies` key under `path`, e.g. `processors.tail_sampling`) and
/// reports every problem with its path, e.g. `{path}.policies[3].latency.threshold_ms`.
///
/// Left to the caller (otelgw's `tail_sampling` config): that `policies` is not empty, and
/// the OTTL conditions of `ottl_condition` blocks (their presence and syntax), which only
/// the OTTL engine can judge.
pub fn validate(policies: &[PolicyConfig], path: &str, errors: &mut Vec<(String, String)>) {
    let base = if path.is_empty() {
        "policies".to_owned()
    } else {
        format!("{path}.policies")
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, p) in policies.iter().enumerate() {
        let pp = format!("{base}[{i}]");
        if p.name.is_empty() {
            report(errors, format!("{pp}.name"), "must not be empty");
        } else if let Some(first) = seen.get(p.name.as_str()) {
            report(
                errors,
                format!("{pp}.name"),
                format!(
                    "duplicate policy name \"{}\" (also policies[{first}])",
                    p.name
                ),
            );
        } else {
            seen.insert(p.name.as_str(), i);
        }
        validate_policy(p, &pp, Nesting::Top, errors);
    }
}

/// Where a policy sits, which decides the types it may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nesting {
    Top,
    And,
    Drop,
    Composite,
    AndInComposite,
}

impl Nesting {
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Nesting::Top => POLICY_TYPES,
            Nesting::And | Nesting::Drop | Nesting::AndInComposite => PLAIN_TYPES,
            Nesting::Composite => COMPOSITE_SUB_TYPES,
        }
    }

    fn place(self) -> &'static str {
        match self {
            Nesting::Top => "as a policy",
            Nesting::And => "inside an and policy",
            Nesting::Drop => "inside a drop policy",
            Nesting::Composite => "inside a composite policy",
            Nesting::AndInComposite => "inside an and policy within a composite policy",
        }
    }
}

/// The type blocks of `p`: (key, present).
fn blocks(p: &PolicyConfig) -> [(&'static str, bool); 13] {
    [
        ("latency", p.latency.is_some()),
        ("numeric_attribute", p.numeric_attribute.is_some()),
        ("probabilistic", p.probabilistic.is_some()),
        ("status_code", p.status_code.is_some()),
        ("string_attribute", p.string_attribute.is_some()),
        ("rate_limiting", p.rate_limiting.is_some()),
        ("span_count", p.span_count.is_some()),
        ("trace_state", p.trace_state.is_some()),
        ("boolean_attribute", p.boolean_attribute.is_some()),
        ("ottl_condition", p.ottl_condition.is_some()),
        ("and", p.and.is_some()),
        ("composite", p.composite.is_some()),
        ("drop", p.drop.is_some()),
    ]
}

fn validate_policy(p: &PolicyConfig, pp: &str, nesting: Nesting, errors: &mut Errors) {
    let kind = p.kind.as_str();
    let allowed = nesting.allowed().join(", ");
    if kind.is_empty() {
        report(
            errors,
            format!("{pp}.type"),
            format!("missing policy type (one of: {allowed})"),
        );
        return;
    }
    if !POLICY_TYPES.contains(&kind) {
        report(
            errors,
            format!("{pp}.type"),
            format!("unknown policy type \"{kind}\" (known: {allowed})"),
        );
        return;
    }
    if !nesting.allowed().contains(&kind) {
        report(
            errors,
            format!("{pp}.type"),
            format!(
                "policy type \"{kind}\" is not allowed {} (allowed: {allowed})",
                nesting.place()
            ),
        );
        return;
    }
    for (block, present) in blocks(p) {
        if present && block != kind {
            report(
                errors,
                format!("{pp}.{block}"),
                format!("{block} block given but the policy type is {kind}"),
            );
        }
    }
    let bp = format!("{pp}.{kind}");
    let missing = |errors: &mut Errors| {
        report(
            errors,
            bp.as_str(),
            format!("missing {kind} block for policy type {kind}"),
        );
    };
    match kind {
        "latency" => match &p.latency {
            Some(c) => validate_latency(c, &bp, errors),
            None => missing(errors),
        },
        "numeric_attribute" => match &p.numeric_attribute {
            Some(c) => validate_numeric(c, &bp, errors),
            None => missing(errors),
        },
        "probabilistic" => match &p.probabilistic {
            Some(c) => validate_probabilistic(c, &bp, errors),
            None => missing(errors),
        },
        "status_code" => match &p.status_code {
            Some(c) => validate_status_code(c, &bp, errors),
            None => missing(errors),
        },
        "string_attribute" => match &p.string_attribute {
            Some(c) => validate_string(c, &bp, errors),
            None => missing(errors),
        },
        "rate_limiting" => match &p.rate_limiting {
            Some(c) => {
                if c.spans_per_second <= 0 {
                    report(
                        errors,
                        format!("{bp}.spans_per_second"),
                        "must be greater than 0",
                    );
                }
            }
            None => missing(errors),
        },
        "span_count" => match &p.span_count {
            Some(c) => validate_span_count(c, &bp, errors),
            None => missing(errors),
        },
        "trace_state" => match &p.trace_state {
            Some(c) => validate_trace_state(c, &bp, errors),
            None => missing(errors),
        },
        "boolean_attribute" => match &p.boolean_attribute {
            Some(c) => {
                if c.key.is_empty() {
                    report(errors, format!("{bp}.key"), "must not be empty");
                }
            }
            None => missing(errors),
        },
        "ottl_condition" => match &p.ottl_condition {
            Some(c) => validate_ottl(c, &bp, errors),
            None => missing(errors),
        },
        "and" => match &p.and {
            Some(c) => {
                let inner = if nesting == Nesting::Composite {
                    Nesting::AndInComposite
                } else {
                    Nesting::And
                };
                validate_subs(
                    &c.and_sub_policy,
                    &format!("{bp}.and_sub_policy"),
                    inner,
                    errors,
                );
            }
            None => missing(errors),
        },
        "drop" => match &p.drop {
            Some(c) => {
                validate_subs(
                    &c.drop_sub_policy,
                    &format!("{bp}.drop_sub_policy"),
                    Nesting::Drop,
                    errors,
                );
            }
            None => missing(errors),
        },
        "composite" => match &p.composite {
            Some(c) => validate_composite(c, &bp, errors),
            None => missing(errors),
        },
        _ => {} // always_sample: no block
    }
}

fn validate_subs(subs: &[PolicyConfig], lp: &str, nesting: Nesting, errors: &mut Errors) {
    if subs.is_empty() {
        report(errors, lp, "at least one sub-policy is required");
    }
    for (i, sub) in subs.iter().enumerate() {
        validate_policy(sub, &format!("{lp}[{i}]"), nesting, errors);
    }
}

fn validate_latency(c: &LatencyConfig, bp: &str, errors: &mut Errors) {
    if c.threshold_ms < 0 {
        report(errors, format!("{bp}.threshold_ms"), "must not be negative");
    }
    if c.upper_threshold_ms < 0 {
        report(
            errors,
            format!("{bp}.upper_threshold_ms"),
            "must not be negative",
        );
    } else if c.upper_threshold_ms != 0 && c.upper_threshold_ms <= c.threshold_ms {
        report(
            errors,
            format!("{bp}.upper_threshold_ms"),
            format!(
                "must be greater than threshold_ms ({}), or 0 for no upper bound",
                c.threshold_ms
            ),
        );
    }
}

fn validate_numeric(c: &NumericAttributeConfig, bp: &str, errors: &mut Errors) {
    if c.key.is_empty() {
        report(errors, format!("{bp}.key"), "must not be empty");
    }
    if c.min_value == 0 && c.max_value == 0 {
        report(
            errors,
            bp,
            "set min_value and/or max_value (0 means unbounded on that side)",
        );
    } else if c.min_value != 0 && c.max_value != 0 && c.min_value > c.max_value {
        report(
            errors,
            format!("{bp}.max_value"),
            format!(
                "must be greater than or equal to min_value ({})",
                c.min_value
            ),
        );
    }
}

fn validate_probabilistic(c: &ProbabilisticConfig, bp: &str, errors: &mut Errors) {
    let pct = c.sampling_percentage;
    if !(0.0..=100.0).contains(&pct) {
        report(
            errors,
            format!("{bp}.sampling_percentage"),
            format!("must be between 0 and 100, got {pct}"),
        );
    }
}

fn validate_status_code(c: &StatusCodeConfig, bp: &str, errors: &mut Errors) {
    if c.status_codes.is_empty() {
        report(
            errors,
            format!("{bp}.status_codes"),
            "must list at least one of ERROR, OK, UNSET",
        );
    }
    for (i, code) in c.status_codes.iter().enumerate() {
        if !STATUS_CODES.iter().any(|(name, _)| name == code) {
            report(
                errors,
                format!("{bp}.status_codes[{i}]"),
                format!("unknown status code \"{code}\" (known: ERROR, OK, UNSET)"),
            );
        }
    }
}

fn validate_string(c: &StringAttributeConfig, bp: &str, errors: &mut Errors) {
    if c.key.is_empty() {
        report(errors, format!("{bp}.key"), "must not be empty");
    }
    if c.values.is_empty() {
        report(
            errors,
            format!("{bp}.values"),
            "must list at least one value",
        );
    }
    for (i, value) in c.values.iter().enumerate() {
        if c.enabled_regex_matching {
            if let Err(e) = Regex::new(value) {
                report(
                    errors,
                    format!("{bp}.values[{i}]"),
                    format!("invalid regular expression: {}", regex_error(&e)),
                );
            }
        } else if value.is_empty() {
            report(
                errors,
                format!("{bp}.values[{i}]"),
                "must not be empty (an empty value never matches)",
            );
        }
    }
    if c.cache_max_size < 0 {
        report(
            errors,
            format!("{bp}.cache_max_size"),
            "must not be negative (0 means the default, 128)",
        );
    }
}

/// The gist of a regex error, on one line.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn validate_span_count(c: &SpanCountConfig, bp: &str, errors: &mut Errors) {
    if c.min_spans < 0 {
        report(errors, format!("{bp}.min_spans"), "must not be negative");
    }
    if c.max_spans < 0 {
        report(errors, format!("{bp}.max_spans"), "must not be negative");
    } else if c.max_spans != 0 && c.max_spans < c.min_spans {
        report(
            errors,
            format!("{bp}.max_spans"),
            format!(
                "must be greater than or equal to min_spans ({}), or 0 for no maximum",
                c.min_spans
            ),
        );
    }
}

fn validate_trace_state(c: &TraceStateConfig, bp: &str, errors: &mut Errors) {
    if c.key.is_empty() {
        report(errors, format!("{bp}.key"), "must not be empty");
    } else if !valid_tracestate_key(&c.key) {
        report(
            errors,
            format!("{bp}.key"),
            format!("\"{}\" is not a valid W3C tracestate key", c.key),
        );
    }
    if c.values.is_empty() {
        report(
            errors,
            format!("{bp}.values"),
            "must list at least one value",
        );
    }
    for (i, v) in c.values.iter().enumerate() {
        if v.is_empty() {
            report(errors, format!("{bp}.values[{i}]"), "must not be empty");
        } else if c.key.len() + v.len() >= 256 {
            report(
                errors,
                format!("{bp}.values[{i}]"),
                "key and value together must be shorter than 256 characters",
            );
        } else if !valid_tracestate_value(v) {
            report(
                errors,
                format!("{bp}.values[{i}]"),
                format!("\"{v}\" is not a valid W3C tracestate value"),
            );
        }
    }
}

fn validate_ottl(c: &OttlConditionConfig, bp: &str, errors: &mut Errors) {
    if let Some(mode) = &c.error_mode {
        let lower = mode.to_ascii_lowercase();
        if !matches!(lower.as_str(), "ignore" | "silent" | "propagate") {
            report(
                errors,
                format!("{bp}.error_mode"),
                format!("unknown error mode \"{mode}\" (known: ignore, silent, propagate)"),
            );
        }
    }
}

fn validate_composite(c: &CompositeConfig, bp: &str, errors: &mut Errors) {
    if c.max_total_spans_per_second <= 0 {
        report(
            errors,
            format!("{bp}.max_total_spans_per_second"),
            "must be greater than 0",
        );
    }
    let lp = format!("{bp}.composite_sub_policy");
    validate_subs(&c.composite_sub_policy, &lp, Nesting::Composite, errors);
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, sub) in c.composite_sub_policy.iter().enumerate() {
        if sub.name.is_empty() {
            report(errors, format!("{lp}[{i}].name"), "must not be empty");
        } else if let Some(first) = names.get(sub.name.as_str()) {
            report(
                errors,
                format!("{lp}[{i}].name"),
                format!(
                    "duplicate sub-policy name \"{}\" (also composite_sub_policy[{first}])",
                    sub.name
                ),
            );
        } else {
            names.insert(sub.name.as_str(), i);
        }
    }
    let mut known: Vec<&str> = c
        .composite_sub_policy
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    known.dedup();
    let known_list = known.join(", ");
    let mut ordered: HashSet<&str> = HashSet::new();
    for (i, name) in c.policy_order.iter().enumerate() {
        if !names.contains_key(name.as_str()) {
            report(
                errors,
                format!("{bp}.policy_order[{i}]"),
                format!("unknown sub-policy \"{name}\" (sub-policies: {known_list})"),
            );
        } else if !ordered.insert(name.as_str()) {
            report(
                errors,
                format!("{bp}.policy_order[{i}]"),
                format!("\"{name}\" is listed twice"),
            );
        }
    }
    if c.rate_allocation.is_empty() && !c.composite_sub_policy.is_empty() {
        report(
            errors,
            format!("{bp}.rate_allocation"),
            "must allocate a share to at least one sub-policy (sub-policies without an allocation never sample)",
        );
    }
    let mut allocated: HashSet<&str> = HashSet::new();
    let mut total: i64 = 0;
    for (i, ra) in c.rate_allocation.iter().enumerate() {
        let rp = format!("{bp}.rate_allocation[{i}]");
        if !names.contains_key(ra.policy.as_str()) {
            report(
                errors,
                format!("{rp}.policy"),
                format!(
                    "unknown sub-policy \"{}\" (sub-policies: {known_list})",
                    ra.policy
                ),
            );
        } else if !allocated.insert(ra.policy.as_str()) {
            report(
                errors,
                format!("{rp}.policy"),
                format!("\"{}\" is allocated twice", ra.policy),
            );
        }
        if !(0..=100).contains(&ra.percent) {
            report(
                errors,
                format!("{rp}.percent"),
                format!("must be between 0 and 100, got {}", ra.percent),
            );
        } else {
            total += ra.percent;
        }
    }
    if total > 100 {
        report(
            errors,
            format!("{bp}.rate_allocation"),
            format!("percentages sum to {total}, more than 100"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation: public types
// ---------------------------------------------------------------------------------------------

/// A policy's verdict on a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The policy does not sample the trace.
    NotSampled,
    /// The policy samples the trace.
    Sampled,
    /// An `invert_match` policy found no match: samples unless some policy says `NotSampled`.
    InvertSampled,
    /// An `invert_match` policy found a match: the trace is not sampled unless dropped
    /// anyway, whatever other policies say.
    InvertNotSampled,
    /// A `drop` policy matched: the trace is not sampled, whatever other policies say.
    Dropped,
}

impl Decision {
    /// The Collector's `decision` metric label: `sampled`, `not_sampled` or `dropped`
    /// (inverted decisions count as their plain form).
    pub fn label(self) -> &'static str {
        match self {
            Decision::Sampled | Decision::InvertSampled => "sampled",
            Decision::NotSampled | Decision::InvertNotSampled => "not_sampled",
            Decision::Dropped => "dropped",
        }
    }
}

/// One complete trace, as the policies see it.
#[derive(Debug, Clone, Copy)]
pub struct Trace<'a> {
    /// The trace id (hashed by `probabilistic`).
    pub trace_id: [u8; 16],
    /// This trace's spans only, in arrival order.
    pub spans: &'a [ResourceSpans],
    /// Number of spans received for the trace (`span_count`, `rate_limiting`, `composite`).
    pub span_count: u64,
}

/// The evaluation of an `ottl_condition` block, supplied by otelgw: true when any span
/// condition holds for a span, or any span-event condition for an event, of the trace.
pub trait SpanMatcher: Send + Sync {
    /// Whether the trace satisfies the conditions.
    fn matches(&self, trace: &Trace<'_>) -> bool;
}

/// Built policies, ready to decide. Stateful (`rate_limiting`, `composite`, regex caches),
/// hence `&mut self` in [`Policies::decide`].
pub struct Policies {
    /// Top-level policies in configuration order.
    policies: Vec<TopPolicy>,
    /// Evaluation order: indexes of drop policies, then of the others.
    order: Vec<usize>,
    /// The `now` of the first decision; per-second windows count from it.
    epoch: Option<Instant>,
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

/// How [`Policies::build`] gets the matcher of an `ottl_condition` block.
type OttlBuilder<'a> = dyn Fn(&OttlConditionConfig) -> Result<Box<dyn SpanMatcher>, String> + 'a;

struct TopPolicy {
    name: String,
    eval: Evaluator,
}

impl Policies {
    /// Validates `cfgs` and builds the policies; `ottl` builds the matcher of each
    /// `ottl_condition` block (sub-policies included). Errors name every problem with its
    /// path (`policies[2].latency.threshold_ms: ...`), joined by `; `.
    #[allow(clippy::type_complexity)] // the signature otelgw's mod.rs is written against
    pub fn build(
        cfgs: &[PolicyConfig],
        ottl: &dyn Fn(&OttlConditionConfig) -> Result<Box<dyn SpanMatcher>, String>,
    ) -> Result<Policies, String> {
        let mut errors = Errors::default();
        validate(cfgs, "", &mut errors);
        if let Some(message) = summary(&errors) {
            return Err(message);
        }
        let mut policies = Vec::with_capacity(cfgs.len());
        let mut problems = Vec::new();
        for (i, cfg) in cfgs.iter().enumerate() {
            match build_evaluator(cfg, &format!("policies[{i}]"), ottl) {
                Ok(eval) => policies.push(TopPolicy {
                    name: cfg.name.clone(),
                    eval,
                }),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let drops = cfgs.iter().enumerate().filter(|(_, c)| c.kind == "drop");
        let others = cfgs.iter().enumerate().filter(|(_, c)| c.kind != "drop");
        let order = drops.chain(others).map(|(i, _)| i).collect();
        Ok(Policies {
            policies,
            order,
            epoch: None,
        })
    }

    /// Top-level policy names, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.name.clone()).collect()
    }

    /// Evaluates every top-level policy (per-policy decisions in order, for self-metrics) and
    /// the final decision: true = sample.
    ///
    /// The decisions are in configuration order ([`Policies::names`]). Drop policies run
    /// first and evaluation stops at the first `Dropped`; the policies that were not
    /// evaluated then are reported as `Dropped`. `now` drives the per-second windows of
    /// `rate_limiting` and `composite`.
    pub fn decide(&mut self, trace: &Trace<'_>, now: Instant) -> (bool, Vec<Decision>) {
        let epoch = *self.epoch.get_or_insert(now);
        let ctx = Ctx {
            trace,
            second: now.saturating_duration_since(epoch).as_secs(),
            span_count: i64::try_from(trace.span_count).unwrap_or(i64::MAX),
        };
        let mut decisions = vec![Decision::Dropped; self.policies.len()];
        for &i in &self.order {
            let Some(policy) = self.policies.get_mut(i) else {
                continue;
            };
            let decision = policy.eval.evaluate(&ctx);
            if let Some(slot) = decisions.get_mut(i) {
                *slot = decision;
            }
            if decision == Decision::Dropped {
                break;
            }
        }
        (final_decision(&decisions), decisions)
    }
}

/// The Collector's precedence (see the module doc).
fn final_decision(decisions: &[Decision]) -> bool {
    let any = |d: Decision| decisions.contains(&d);
    if any(Decision::Dropped) || any(Decision::InvertNotSampled) {
        false
    } else if any(Decision::Sampled) {
        true
    } else {
        any(Decision::InvertSampled) && !any(Decision::NotSampled)
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation: internals
// ---------------------------------------------------------------------------------------------

/// What every evaluator sees.
struct Ctx<'t, 'a> {
    trace: &'t Trace<'a>,
    /// Whole seconds since the first decision.
    second: u64,
    span_count: i64,
}

enum Evaluator {
    AlwaysSample,
    Latency {
        threshold_ms: i64,
        upper_threshold_ms: i64,
    },
    Numeric {
        key: String,
        min: i64,
        max: i64,
        invert: bool,
    },
    Probabilistic {
        salt: Vec<u8>,
        threshold: u64,
    },
    StatusCode {
        codes: Vec<i32>,
    },
    StringAttribute {
        key: String,
        matcher: StringMatcher,
        invert: bool,
    },
    RateLimiting {
        spans_per_second: i64,
        second: Option<u64>,
        spans_in_second: i64,
    },
    SpanCount {
        min: i64,
        max: i64,
    },
    TraceState {
        key: String,
        values: HashSet<String>,
    },
    Boolean {
        key: String,
        value: bool,
        invert: bool,
    },
    Ottl(Box<dyn SpanMatcher>),
    And(Vec<Evaluator>),
    Drop(Vec<Evaluator>),
    Composite(Composite),
}

struct Composite {
    max_total: i64,
    /// Sub-policies in evaluation order.
    subs: Vec<CompositeSub>,
    second: Option<u64>,
}

struct CompositeSub {
    eval: Evaluator,
    /// Spans per second allocated.
    allocated: i64,
    /// Spans sampled in the current second.
    used: i64,
}

fn build_evaluator(
    cfg: &PolicyConfig,
    path: &str,
    ottl: &OttlBuilder<'_>,
) -> Result<Evaluator, String> {
    let missing = || format!("{path}.{}: missing {} block", cfg.kind, cfg.kind);
    let subs = |list: &[PolicyConfig], key: &str| -> Result<Vec<Evaluator>, String> {
        list.iter()
            .enumerate()
            .map(|(i, s)| build_evaluator(s, &format!("{path}.{}.{key}[{i}]", cfg.kind), ottl))
            .collect()
    };
    Ok(match cfg.kind.as_str() {
        "always_sample" => Evaluator::AlwaysSample,
        "latency" => {
            let c = cfg.latency.as_ref().ok_or_else(missing)?;
            Evaluator::Latency {
                threshold_ms: c.threshold_ms,
                upper_threshold_ms: c.upper_threshold_ms,
            }
        }
        "numeric_attribute" => {
            let c = cfg.numeric_attribute.as_ref().ok_or_else(missing)?;
            Evaluator::Numeric {
                key: c.key.clone(),
                min: if c.min_value == 0 {
                    i64::MIN
                } else {
                    c.min_value
                },
                max: if c.max_value == 0 {
                    i64::MAX
                } else {
                    c.max_value
                },
                invert: c.invert_match,
            }
        }
        "probabilistic" => {
            let c = cfg.probabilistic.as_ref().ok_or_else(missing)?;
            let salt = if c.hash_salt.is_empty() {
                DEFAULT_HASH_SALT
            } else {
                c.hash_salt.as_str()
            };
            Evaluator::Probabilistic {
                salt: salt.as_bytes().to_vec(),
                threshold: probabilistic_threshold(c.sampling_percentage),
            }
        }
        "status_code" => {
            let c = cfg.status_code.as_ref().ok_or_else(missing)?;
            let codes = c
                .status_codes
                .iter()
                .filter_map(|s| STATUS_CODES.iter().find(|(n, _)| n == s).map(|(_, v)| *v))
                .collect();
            Evaluator::StatusCode { codes }
        }
        "string_attribute" => {
            let c = cfg.string_attribute.as_ref().ok_or_else(missing)?;
            let matcher = if c.enabled_regex_matching {
                let mut patterns = Vec::with_capacity(c.values.len());
                for (i, v) in c.values.iter().enumerate() {
                    let re = Regex::new(v).map_err(|e| {
                        format!(
                            "{path}.string_attribute.values[{i}]: invalid regular expression: {}",
                            regex_error(&e)
                        )
                    })?;
                    patterns.push(re);
                }
                let cap = usize::try_from(c.cache_max_size)
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or(DEFAULT_REGEX_CACHE_SIZE);
                StringMatcher::Regex {
                    patterns,
                    cache: MatchCache::new(cap),
                }
            } else {
                StringMatcher::Exact(c.values.iter().filter(|v| !v.is_empty()).cloned().collect())
            };
            Evaluator::StringAttribute {
                key: c.key.clone(),
                matcher,
                invert: c.invert_match,
            }
        }
        "rate_limiting" => {
            let c = cfg.rate_limiting.as_ref().ok_or_else(missing)?;
            Evaluator::RateLimiting {
                spans_per_second: c.spans_per_second,
                second: None,
                spans_in_second: 0,
            }
        }
        "span_count" => {
            let c = cfg.span_count.as_ref().ok_or_else(missing)?;
            Evaluator::SpanCount {
                min: i64::from(c.min_spans),
                max: i64::from(c.max_spans),
            }
        }
        "trace_state" => {
            let c = cfg.trace_state.as_ref().ok_or_else(missing)?;
            let values = c
                .values
                .iter()
                .filter(|v| !v.is_empty() && c.key.len() + v.len() < 256)
                .cloned()
                .collect();
            Evaluator::TraceState {
                key: c.key.clone(),
                values,
            }
        }
        "boolean_attribute" => {
            let c = cfg.boolean_attribute.as_ref().ok_or_else(missing)?;
            Evaluator::Boolean {
                key: c.key.clone(),
                value: c.value,
                invert: c.invert_match,
            }
        }
        "ottl_condition" => {
            let c = cfg.ottl_condition.as_ref().ok_or_else(missing)?;
            Evaluator::Ottl(ottl(c).map_err(|e| format!("{path}.ottl_condition: {e}"))?)
        }
        "and" => {
            let c = cfg.and.as_ref().ok_or_else(missing)?;
            Evaluator::And(subs(&c.and_sub_policy, "and_sub_policy")?)
        }
        "drop" => {
            let c = cfg.drop.as_ref().ok_or_else(missing)?;
            Evaluator::Drop(subs(&c.drop_sub_policy, "drop_sub_policy")?)
        }
        "composite" => {
            let c = cfg.composite.as_ref().ok_or_else(missing)?;
            build_composite(c, path, ottl)?
        }
        other => return Err(format!("{path}.type: unknown policy type \"{other}\"")),
    })
}

fn build_composite(
    c: &CompositeConfig,
    path: &str,
    ottl: &OttlBuilder<'_>,
) -> Result<Evaluator, String> {
    // Allocations as the Collector computes them: percent of the total, or an equal share
    // for percent ≤ 0; later entries for the same name win; truncated to whole spans.
    let total = c.max_total_spans_per_second as f64;
    let default_share = total / c.composite_sub_policy.len().max(1) as f64;
    let mut shares: HashMap<&str, f64> = HashMap::new();
    for ra in &c.rate_allocation {
        let share = if ra.percent > 0 {
            ra.percent as f64 / 100.0 * total
        } else {
            default_share
        };
        shares.insert(ra.policy.as_str(), share);
    }
    // Evaluation order: policy_order first, then the unnamed ones in list order.
    let mut order: Vec<usize> = Vec::with_capacity(c.composite_sub_policy.len());
    for name in &c.policy_order {
        if let Some(i) = c.composite_sub_policy.iter().position(|s| &s.name == name) {
            if !order.contains(&i) {
                order.push(i);
            }
        }
    }
    for i in 0..c.composite_sub_policy.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    let mut subs = Vec::with_capacity(order.len());
    for i in order {
        let Some(sub) = c.composite_sub_policy.get(i) else {
            continue;
        };
        let eval = build_evaluator(
            sub,
            &format!("{path}.composite.composite_sub_policy[{i}]"),
            ottl,
        )?;
        let allocated = shares.get(sub.name.as_str()).map_or(0, |s| *s as i64);
        subs.push(CompositeSub {
            eval,
            allocated,
            used: 0,
        });
    }
    Ok(Evaluator::Composite(Composite {
        max_total: c.max_total_spans_per_second,
        subs,
        second: None,
    }))
}

impl Evaluator {
    fn evaluate(&mut self, ctx: &Ctx<'_, '_>) -> Decision {
        let trace = ctx.trace;
        match self {
            Evaluator::AlwaysSample => Decision::Sampled,
            Evaluator::Latency {
                threshold_ms,
                upper_threshold_ms,
            } => sampled_if(latency_matches(trace, *threshold_ms, *upper_threshold_ms)),
            Evaluator::Numeric {
                key,
                min,
                max,
                invert,
            } => {
                let matched = any_attributes(trace, |attrs, _| {
                    find_attribute(attrs, key).is_some_and(|v| {
                        let n = value_int(v);
                        *min <= n && n <= *max
                    })
                });
                attribute_decision(matched, *invert)
            }
            Evaluator::Probabilistic { salt, threshold } => {
                sampled_if(fnv1a64(salt, &trace.trace_id) <= *threshold)
            }
            Evaluator::StatusCode { codes } => sampled_if(all_spans(trace).any(|s| {
                let code = s.status.as_ref().map_or(0, |st| st.code);
                codes.contains(&code)
            })),
            Evaluator::StringAttribute {
                key,
                matcher,
                invert,
            } => {
                let matched = any_attributes(trace, |attrs, is_span| {
                    match find_attribute(attrs, key) {
                        Some(v) => {
                            let s = value_str(v);
                            // The Collector skips empty span values but not resource ones.
                            !(is_span && s.is_empty()) && matcher.matches(s)
                        }
                        None => false,
                    }
                });
                attribute_decision(matched, *invert)
            }
            Evaluator::RateLimiting {
                spans_per_second,
                second,
                spans_in_second,
            } => {
                if *second != Some(ctx.second) {
                    *second = Some(ctx.second);
                    *spans_in_second = 0;
                }
                let next = spans_in_second.saturating_add(ctx.span_count);
                if next < *spans_per_second {
                    *spans_in_second = next;
                    Decision::Sampled
                } else {
                    Decision::NotSampled
                }
            }
            Evaluator::SpanCount { min, max } => {
                let n = ctx.span_count;
                sampled_if(n >= *min && (*max == 0 || n <= *max))
            }
            Evaluator::TraceState { key, values } => {
                sampled_if(all_spans(trace).any(|s| {
                    tracestate_get(&s.trace_state, key).is_some_and(|v| values.contains(v))
                }))
            }
            Evaluator::Boolean { key, value, invert } => {
                let matched = any_attributes(trace, |attrs, _| {
                    find_attribute(attrs, key).is_some_and(|v| value_bool(v) == *value)
                });
                attribute_decision(matched, *invert)
            }
            Evaluator::Ottl(matcher) => sampled_if(matcher.matches(trace)),
            Evaluator::And(subs) => {
                for sub in subs.iter_mut() {
                    if matches!(
                        sub.evaluate(ctx),
                        Decision::NotSampled | Decision::InvertNotSampled
                    ) {
                        return Decision::NotSampled;
                    }
                }
                Decision::Sampled
            }
            Evaluator::Drop(subs) => {
                for sub in subs.iter_mut() {
                    if matches!(
                        sub.evaluate(ctx),
                        Decision::NotSampled | Decision::InvertNotSampled
                    ) {
                        return Decision::NotSampled;
                    }
                }
                Decision::Dropped
            }
            Evaluator::Composite(c) => c.evaluate(ctx),
        }
    }
}

impl Composite {
    fn evaluate(&mut self, ctx: &Ctx<'_, '_>) -> Decision {
        if self.second != Some(ctx.second) {
            self.second = Some(ctx.second);
            for sub in &mut self.subs {
                sub.used = 0;
            }
        }
        for sub in &mut self.subs {
            if matches!(
                sub.eval.evaluate(ctx),
                Decision::Sampled | Decision::InvertSampled
            ) {
                // The first sub-policy that samples decides, within its allocation.
                let next = sub.used.saturating_add(ctx.span_count);
                if next <= sub.allocated && next <= self.max_total {
                    sub.used = next;
                    return Decision::Sampled;
                }
                return Decision::NotSampled;
            }
        }
        Decision::NotSampled
    }
}

fn sampled_if(matched: bool) -> Decision {
    if matched {
        Decision::Sampled
    } else {
        Decision::NotSampled
    }
}

/// The Collector's attribute-policy decision: a match samples, or with `invert_match` a match
/// is `InvertNotSampled` and no match `InvertSampled`.
fn attribute_decision(matched: bool, invert: bool) -> Decision {
    match (invert, matched) {
        (false, true) => Decision::Sampled,
        (false, false) => Decision::NotSampled,
        (true, true) => Decision::InvertNotSampled,
        (true, false) => Decision::InvertSampled,
    }
}

fn all_spans<'t>(trace: &Trace<'t>) -> impl Iterator<Item = &'t Span> {
    trace
        .spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
}

/// Calls `check(attributes, is_span)` on each resource's attributes, then on each of its
/// spans' attributes, resource by resource, until one returns true.
fn any_attributes(trace: &Trace<'_>, mut check: impl FnMut(&[KeyValue], bool) -> bool) -> bool {
    for rs in trace.spans {
        let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        if check(resource, false) {
            return true;
        }
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                if check(&span.attributes, true) {
                    return true;
                }
            }
        }
    }
    false
}

/// The first attribute named `key`: `Some(None)` for an attribute without a value.
fn find_attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<Option<&'a any_value::Value>> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref().and_then(|v| v.value.as_ref()))
}

/// pdata `Value.Str()`: the string, or "" for any other type.
fn value_str(v: Option<&any_value::Value>) -> &str {
    match v {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

/// pdata `Value.Int()`: the integer, or 0 for any other type.
fn value_int(v: Option<&any_value::Value>) -> i64 {
    match v {
        Some(any_value::Value::IntValue(n)) => *n,
        _ => 0,
    }
}

/// pdata `Value.Bool()`: the boolean, or false for any other type.
fn value_bool(v: Option<&any_value::Value>) -> bool {
    matches!(v, Some(any_value::Value::BoolValue(true)))
}

/// The Collector's latency check: running earliest start / latest end over the spans in
/// order (a 0 timestamp counts as unset), sampled as soon as the running duration
/// qualifies.
fn latency_matches(trace: &Trace<'_>, threshold_ms: i64, upper_threshold_ms: i64) -> bool {
    let (mut min, mut max) = (0u64, 0u64);
    for span in all_spans(trace) {
        if min == 0 || span.start_time_unix_nano < min {
            min = span.start_time_unix_nano;
        }
        if max == 0 || span.end_time_unix_nano > max {
            max = span.end_time_unix_nano;
        }
        let nanos = i128::from(max) - i128::from(min);
        // Truncated toward zero, as Go's Duration.Milliseconds().
        let ms = i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX);
        let hit = if upper_threshold_ms == 0 {
            ms >= threshold_ms
        } else {
            threshold_ms < ms && ms <= upper_threshold_ms
        };
        if hit {
            return true;
        }
    }
    false
}

/// FNV-1a 64 of `salt` followed by `id`.
fn fnv1a64(salt: &[u8], id: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().chain(id) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The Collector's `calculateThreshold(pct / 100)`: `MaxUint64 × ratio` computed as a
/// `big.Float` of 64-bit precision (round to nearest even), then truncated to an integer;
/// ≤ 0 gives 0 and ≥ 1 gives `u64::MAX`. A trace is sampled when its hash is ≤ this.
fn probabilistic_threshold(percentage: f64) -> u64 {
    let ratio = percentage / 100.0;
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }
    // ratio = mantissa × 2^exp exactly.
    let bits = ratio.to_bits();
    let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    // Exact product (< 2^117), then rounded to 64 significant bits.
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    let len = 128 - product.leading_zeros();
    let (mut kept, shift) = if len > 64 {
        let s = len - 64;
        let kept = product >> s;
        let rest = product & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        let up = rest > half || (rest == half && kept & 1 == 1);
        (kept + u128::from(up), i32::try_from(s).unwrap_or(0))
    } else {
        (product, 0)
    };
    let scale = shift + exp;
    if scale >= 0 {
        // Cannot happen for ratio < 1; saturate rather than overflow.
        kept = kept.checked_shl(scale.unsigned_abs()).unwrap_or(u128::MAX);
    } else {
        let down = scale.unsigned_abs();
        kept = if down >= 128 { 0 } else { kept >> down };
    }
    u64::try_from(kept).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// string_attribute matching
// ---------------------------------------------------------------------------------------------

enum StringMatcher {
    /// Exact values (empty ones removed: the Collector never matches them).
    Exact(HashSet<String>),
    /// Regexes, any of which may match, with cached results per value.
    Regex {
        patterns: Vec<Regex>,
        cache: MatchCache,
    },
}

impl StringMatcher {
    fn matches(&mut self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(values) => values.contains(value),
            StringMatcher::Regex { patterns, cache } => {
                if let Some(hit) = cache.get(value) {
                    return hit;
                }
                let hit = patterns.iter().any(|re| re.is_match(value));
                cache.insert(value, hit);
                hit
            }
        }
    }
}

/// A bounded map from attribute value to regex result, evicting with the CLOCK
/// (second-chance) algorithm: O(1) amortized, close to LRU.
struct MatchCache {
    capacity: usize,
    slots: Vec<CacheSlot>,
    index: HashMap<String, usize>,
    hand: usize,
}

struct CacheSlot {
    key: String,
    hit: bool,
    referenced: bool,
}

impl MatchCache {
    fn new(capacity: usize) -> Self {
        MatchCache {
            capacity,
            slots: Vec::new(),
            index: HashMap::new(),
            hand: 0,
        }
    }

    fn get(&mut self, key: &str) -> Option<bool> {
        let i = *self.index.get(key)?;
        let slot = self.slots.get_mut(i)?;
        slot.referenced = true;
        Some(slot.hit)
    }

    fn insert(&mut self, key: &str, hit: bool) {
        if self.capacity == 0 || key.len() > MAX_CACHED_VALUE_LEN || self.index.contains_key(key) {
            return;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(key.to_owned(), self.slots.len());
            self.slots.push(CacheSlot {
                key: key.to_owned(),
                hit,
                referenced: false,
            });
            return;
        }
        // Sweep: clear reference bits until an unreferenced slot turns up (two rounds at most).
        let len = self.slots.len();
        for _ in 0..=2 * len {
            let Some(slot) = self.slots.get_mut(self.hand) else {
                self.hand = 0;
                continue;
            };
            if slot.referenced {
                slot.referenced = false;
                self.hand = (self.hand + 1) % len;
                continue;
            }
            let old = std::mem::replace(&mut slot.key, key.to_owned());
            slot.hit = hit;
            self.index.remove(&old);
            self.index.insert(key.to_owned(), self.hand);
            self.hand = (self.hand + 1) % len;
            return;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }
}

// ---------------------------------------------------------------------------------------------
// W3C tracestate
// ---------------------------------------------------------------------------------------------

/// The value of `key` in a W3C `tracestate` header, or `None` when the key is absent or the
/// header is invalid — validated as Go's `go.opentelemetry.io/otel/trace.ParseTraceState`
/// does (the Collector's parser): members split on `,` (empty ones skipped), `key=value`
/// with leading blanks of the key and trailing blanks of the value trimmed, W3C key and value
/// syntax, no duplicate keys, at most 32 members.
fn tracestate_get<'s>(header: &'s str, key: &str) -> Option<&'s str> {
    let mut seen: Vec<&str> = Vec::new();
    let mut found = None;
    for member in header.split(',') {
        if member.is_empty() {
            continue;
        }
        let (k, v) = member.split_once('=')?;
        let k = k.trim_start_matches([' ', '\t']);
        let v = v.trim_end_matches([' ', '\t']);
        if !valid_tracestate_key(k) || !valid_tracestate_value(v) || seen.contains(&k) {
            return None;
        }
        seen.push(k);
        if seen.len() > 32 {
            return None;
        }
        if k == key {
            found = Some(v);
        }
    }
    found
}

fn key_rest_ok(rest: &str) -> bool {
    rest.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
    })
}

/// A W3C tracestate key: `lcalpha 0*255(keychar)`, or `tenant@system` with a tenant of
/// `(lcalpha / DIGIT) 0*240(keychar)` and a system of `lcalpha 0*13(keychar)`.
fn valid_tracestate_key(key: &str) -> bool {
    let part = |s: &str, max_rest: usize, digit_first: bool| {
        let mut bytes = s.bytes();
        match bytes.next() {
            Some(b) if b.is_ascii_lowercase() || (digit_first && b.is_ascii_digit()) => {}
            _ => return false,
        }
        let rest = s.get(1..).unwrap_or("");
        rest.len() <= max_rest && key_rest_ok(rest)
    };
    match key.split_once('@') {
        None => part(key, 255, false),
        Some((tenant, system)) => part(tenant, 240, true) && part(system, 13, false),
    }
}

/// A W3C tracestate value: 1 to 256 printable ASCII characters other than `,` and `=`, not
/// ending with a space.
fn valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let Some((last, init)) = bytes.split_last() else {
        return false;
    };
    let ok = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    bytes.len() <= 256 && init.iter().all(|b| ok(*b)) && ok(*last) && *last != b' '
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Status};
    use std::time::Duration;

    // --- builders -----------------------------------------------------------------------

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }
    fn s(key: &str, v: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(v.into()))
    }
    fn i(key: &str, v: i64) -> KeyValue {
        kv(key, any_value::Value::IntValue(v))
    }
    fn b(key: &str, v: bool) -> KeyValue {
        kv(key, any_value::Value::BoolValue(v))
    }
    fn d(key: &str, v: f64) -> KeyValue {
        kv(key, any_value::Value::DoubleValue(v))
    }

    const MS: u64 = 1_000_000;
    const BASE: u64 = 1_700_000_000_000 * MS;

    fn span(start_ms: u64, end_ms: u64) -> Span {
        Span {
            start_time_unix_nano: BASE + start_ms * MS,
            end_time_unix_nano: BASE + end_ms * MS,
            ..Default::default()
        }
    }
    fn span_attrs(attrs: Vec<KeyValue>) -> Span {
        Span {
            attributes: attrs,
            ..span(0, 10)
        }
    }
    fn span_status(code: i32) -> Span {
        Span {
            status: Some(Status {
                message: String::new(),
                code,
            }),
            ..span(0, 10)
        }
    }
    fn rs(resource: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }
    fn spans_of(rss: &[ResourceSpans]) -> u64 {
        rss.iter()
            .flat_map(|r| &r.scope_spans)
            .map(|ss| ss.spans.len() as u64)
            .sum()
    }
    fn trace(rss: &[ResourceSpans]) -> Trace<'_> {
        Trace {
            trace_id: [7; 16],
            spans: rss,
            span_count: spans_of(rss),
        }
    }

    fn parse(yaml: &str) -> Vec<PolicyConfig> {
        serde_norway::from_str(yaml).unwrap()
    }
    fn no_ottl(_: &OttlConditionConfig) -> Result<Box<dyn SpanMatcher>, String> {
        Err("ottl is not available in this test".into())
    }
    fn build(yaml: &str) -> Policies {
        Policies::build(&parse(yaml), &no_ottl).unwrap()
    }
    /// The decision of a one-policy config on a trace.
    fn one(yaml: &str, rss: &[ResourceSpans]) -> Decision {
        let mut p = build(yaml);
        let (_, ds) = p.decide(&trace(rss), Instant::now());
        assert_eq!(ds.len(), 1);
        ds[0]
    }
    fn errors_of(yaml: &str) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        validate(&parse(yaml), "processors.tail_sampling", &mut errors);
        errors
    }
    fn has_error(errors: &[(String, String)], path: &str, needle: &str) -> bool {
        errors.iter().any(|(p, m)| p == path && m.contains(needle))
    }

    use Decision::*;

    // --- leaf policies ------------------------------------------------------------------

    #[test]
    fn always_sample_samples_even_empty_traces() {
        assert_eq!(one("[{name: a, type: always_sample}]", &[]), Sampled);
    }

    #[test]
    fn latency_without_upper_bound_is_inclusive() {
        let p = "[{name: l, type: latency, latency: {threshold_ms: 5000}}]";
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 6000)])]), Sampled);
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 5000)])]), Sampled);
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 4999)])]), NotSampled);
        assert_eq!(one(p, &[]), NotSampled);
    }

    #[test]
    fn latency_spans_earliest_start_to_latest_end_across_resources() {
        let p = "[{name: l, type: latency, latency: {threshold_ms: 5000}}]";
        // No single span lasts 5 s, the trace does.
        let rss = [
            rs(vec![], vec![span(1000, 4000)]),
            rs(vec![], vec![span(3000, 6500)]),
        ];
        assert_eq!(one(p, &rss), Sampled);
    }

    #[test]
    fn latency_with_upper_bound_is_exclusive_below_inclusive_above() {
        let p =
            "[{name: l, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000}}]";
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 7000)])]), Sampled);
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 10000)])]), Sampled);
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 5000)])]), NotSampled);
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 12000)])]), NotSampled);
        // The Collector's running check: the first span alone falls in the window.
        assert_eq!(
            one(p, &[rs(vec![], vec![span(0, 7000), span(0, 20000)])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span(0, 20000), span(0, 7000)])]),
            NotSampled
        );
    }

    #[test]
    fn numeric_attribute_on_spans_and_resources() {
        let p = "[{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 400, max_value: 499}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("code", 404)])])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![i("code", 400)], vec![span(0, 1)])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("code", 500)])])]),
            NotSampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("other", 404)])])]),
            NotSampled
        );
        // pdata reads a double as 0: out of range here.
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![d("code", 404.0)])])]),
            NotSampled
        );
    }

    #[test]
    fn numeric_attribute_zero_bound_is_unbounded() {
        let p = "[{name: n, type: numeric_attribute, numeric_attribute: {key: k, min_value: 50}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("k", i64::MAX)])])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("k", 49)])])]),
            NotSampled
        );
        let p = "[{name: n, type: numeric_attribute, numeric_attribute: {key: k, max_value: 10}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("k", -1000)])])]),
            Sampled
        );
        // A double reads as 0, which is in (-inf, 10].
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![d("k", 99.5)])])]),
            Sampled
        );
    }

    #[test]
    fn numeric_attribute_invert_match() {
        let p = "[{name: n, type: numeric_attribute, numeric_attribute: {key: k, min_value: 1, max_value: 5, invert_match: true}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("k", 3)])])]),
            InvertNotSampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("k", 9)])])]),
            InvertSampled
        );
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 1)])]), InvertSampled);
        // One matching span among others is enough to invert-not-sample.
        assert_eq!(
            one(
                p,
                &[rs(
                    vec![],
                    vec![span_attrs(vec![i("k", 9)]), span_attrs(vec![i("k", 2)])]
                )]
            ),
            InvertNotSampled
        );
    }

    #[test]
    fn probabilistic_extremes_and_known_values() {
        assert_eq!(probabilistic_threshold(100.0), u64::MAX);
        assert_eq!(probabilistic_threshold(150.0), u64::MAX);
        assert_eq!(probabilistic_threshold(0.0), 0);
        assert_eq!(probabilistic_threshold(-3.0), 0);
        // 0.5 × (2^64 − 1) = 2^63 − 0.5 exactly, truncated.
        assert_eq!(probabilistic_threshold(50.0), (1u64 << 63) - 1);
        // Close to the real-valued product elsewhere.
        for pct in [0.1, 1.0, 10.0, 33.3, 99.9] {
            let exact = pct / 100.0 * 18_446_744_073_709_551_615.0_f64;
            let got = probabilistic_threshold(pct) as f64;
            assert!(
                (got - exact).abs() / exact < 1e-12,
                "{pct}: {got} vs {exact}"
            );
        }
        // FNV-1a 64 reference vector.
        assert_eq!(fnv1a64(b"a", b""), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"", b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            one(
                "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 100}}]",
                &[]
            ),
            Sampled
        );
        assert_eq!(
            one(
                "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 0}}]",
                &[]
            ),
            NotSampled
        );
    }

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn probabilistic_rate_over_10k_random_trace_ids() {
        // 25 % of 10 000: σ ≈ 43 traces; the tolerance of ±150 (±1.5 points) is 3.5 σ.
        for salt in ["", "tier-2"] {
            let yaml = format!(
                "[{{name: p, type: probabilistic, probabilistic: {{sampling_percentage: 25, hash_salt: \"{salt}\"}}}}]"
            );
            let mut p = build(&yaml);
            let now = Instant::now();
            let mut state = 42u64;
            let mut sampled = 0;
            for _ in 0..10_000 {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&splitmix(&mut state).to_le_bytes());
                id[8..].copy_from_slice(&splitmix(&mut state).to_le_bytes());
                let t = Trace {
                    trace_id: id,
                    spans: &[],
                    span_count: 0,
                };
                if p.decide(&t, now).0 {
                    sampled += 1;
                }
            }
            assert!((2350..=2650).contains(&sampled), "salt {salt:?}: {sampled}");
        }
    }

    #[test]
    fn probabilistic_is_deterministic_and_salt_dependent() {
        let mut a =
            build("[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 50}}]");
        let mut b2 = build("[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 50, hash_salt: other}}]");
        let now = Instant::now();
        let mut differ = 0;
        for n in 0..200u8 {
            let t = Trace {
                trace_id: [n; 16],
                spans: &[],
                span_count: 1,
            };
            let first = a.decide(&t, now).0;
            assert_eq!(first, a.decide(&t, now).0);
            let expected = fnv1a64(DEFAULT_HASH_SALT.as_bytes(), &[n; 16]) < (1u64 << 63);
            assert_eq!(first, expected);
            if first != b2.decide(&t, now).0 {
                differ += 1;
            }
        }
        assert!(differ > 50, "salts should decorrelate decisions: {differ}");
    }

    #[test]
    fn status_code_policy() {
        let p = "[{name: e, type: status_code, status_code: {status_codes: [ERROR]}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_status(1), span_status(2)])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_status(1), span(0, 1)])]),
            NotSampled
        );
        let p = "[{name: u, type: status_code, status_code: {status_codes: [UNSET]}}]";
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 1)])]), Sampled); // no status = UNSET
        assert_eq!(one(p, &[rs(vec![], vec![span_status(2)])]), NotSampled);
    }

    #[test]
    fn string_attribute_exact() {
        let p = "[{name: s, type: string_attribute, string_attribute: {key: svc, values: [a, b]}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![s("svc", "b")])])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![s("svc", "a")], vec![span(0, 1)])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![s("svc", "ab")])])]),
            NotSampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![i("svc", 1)])])]),
            NotSampled
        );
    }

    #[test]
    fn string_attribute_regex_is_unanchored_and_cached() {
        let p = r#"[{name: s, type: string_attribute, string_attribute: {key: path, values: ["/health$", "^/v1/name/.+"], enabled_regex_matching: true, cache_max_size: 2}}]"#;
        assert_eq!(
            one(
                p,
                &[rs(vec![], vec![span_attrs(vec![s("path", "/api/health")])])]
            ),
            Sampled
        );
        assert_eq!(
            one(
                p,
                &[rs(vec![], vec![span_attrs(vec![s("path", "/v1/name/x")])])]
            ),
            Sampled
        );
        assert_eq!(
            one(
                p,
                &[rs(vec![], vec![span_attrs(vec![s("path", "/healthz")])])]
            ),
            NotSampled
        );
        // Empty span values are skipped, but an empty resource value is tried.
        let any = r#"[{name: s, type: string_attribute, string_attribute: {key: k, values: [".*"], enabled_regex_matching: true}}]"#;
        assert_eq!(
            one(any, &[rs(vec![], vec![span_attrs(vec![s("k", "")])])]),
            NotSampled
        );
        assert_eq!(one(any, &[rs(vec![i("k", 3)], vec![span(0, 1)])]), Sampled);
        // The same policy keeps answering correctly as its 2-entry cache churns.
        let mut pol = build(p);
        let now = Instant::now();
        for round in 0..3 {
            for (value, want) in [
                ("/a/health", true),
                ("/b", false),
                ("/v1/name/q", true),
                ("/c", false),
            ] {
                let rss = [rs(vec![], vec![span_attrs(vec![s("path", value)])])];
                assert_eq!(
                    pol.decide(&trace(&rss), now).0,
                    want,
                    "{value} round {round}"
                );
            }
        }
        if let Evaluator::StringAttribute {
            matcher: StringMatcher::Regex { cache, .. },
            ..
        } = &pol.policies[0].eval
        {
            assert_eq!(cache.len(), 2);
        } else {
            panic!("expected a regex matcher");
        }
    }

    #[test]
    fn match_cache_is_bounded_and_keeps_referenced_entries() {
        let mut c = MatchCache::new(3);
        c.insert("a", true);
        c.insert("b", false);
        c.insert("c", true);
        assert_eq!(c.get("a"), Some(true)); // a gets a second chance
        c.insert("d", false); // evicts b (first unreferenced from the hand)
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a"), Some(true));
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("d"), Some(false));
        for n in 0..100 {
            c.insert(&format!("k{n}"), n % 2 == 0);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.slots.len(), 3);
        c.insert(&"x".repeat(MAX_CACHED_VALUE_LEN + 1), true);
        assert_eq!(c.get(&"x".repeat(MAX_CACHED_VALUE_LEN + 1)), None);
    }

    #[test]
    fn string_attribute_invert_match() {
        let p = "[{name: s, type: string_attribute, string_attribute: {key: team, values: [team_a], invert_match: true}}]";
        assert_eq!(
            one(p, &[rs(vec![s("team", "team_a")], vec![span(0, 1)])]),
            InvertNotSampled
        );
        assert_eq!(
            one(p, &[rs(vec![s("team", "team_b")], vec![span(0, 1)])]),
            InvertSampled
        );
        assert_eq!(one(p, &[rs(vec![], vec![span(0, 1)])]), InvertSampled);
        assert_eq!(one(p, &[]), InvertSampled);
    }

    #[test]
    fn rate_limiting_across_two_seconds() {
        let mut p =
            build("[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 10}}]");
        let rss = [rs(
            vec![],
            vec![span(0, 1), span(0, 1), span(0, 1), span(0, 1)],
        )];
        let t = trace(&rss); // 4 spans
        let t0 = Instant::now();
        assert!(p.decide(&t, t0).0); // 4 < 10
        assert!(p.decide(&t, t0 + Duration::from_millis(300)).0); // 8 < 10
        assert!(!p.decide(&t, t0 + Duration::from_millis(600)).0); // 12: over
        assert!(!p.decide(&t, t0 + Duration::from_millis(999)).0);
        // Next second: the window resets.
        assert!(p.decide(&t, t0 + Duration::from_millis(1000)).0);
        assert!(p.decide(&t, t0 + Duration::from_millis(1500)).0);
        assert!(!p.decide(&t, t0 + Duration::from_millis(1999)).0);
        // Strictly below the limit, as in the Collector: 10 spans never fit 10/s.
        let mut p =
            build("[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 10}}]");
        let ten = Trace {
            trace_id: [1; 16],
            spans: &[],
            span_count: 10,
        };
        assert!(!p.decide(&ten, t0).0);
    }

    #[test]
    fn span_count_policy() {
        let p = "[{name: c, type: span_count, span_count: {min_spans: 2, max_spans: 3}}]";
        let t = |n: u64| Trace {
            trace_id: [1; 16],
            spans: &[],
            span_count: n,
        };
        let mut pol = build(p);
        let now = Instant::now();
        assert_eq!(pol.decide(&t(1), now).1, vec![NotSampled]);
        assert_eq!(pol.decide(&t(2), now).1, vec![Sampled]);
        assert_eq!(pol.decide(&t(3), now).1, vec![Sampled]);
        assert_eq!(pol.decide(&t(4), now).1, vec![NotSampled]);
        let mut open = build("[{name: c, type: span_count, span_count: {min_spans: 2}}]");
        assert_eq!(open.decide(&t(1_000_000), now).1, vec![Sampled]);
    }

    #[test]
    fn trace_state_policy() {
        let p = "[{name: t, type: trace_state, trace_state: {key: congo, values: [t61rcWkgMzE]}}]";
        let with = |ts: &str| {
            vec![rs(
                vec![],
                vec![Span {
                    trace_state: ts.into(),
                    ..span(0, 1)
                }],
            )]
        };
        assert_eq!(
            one(p, &with("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")),
            Sampled
        );
        assert_eq!(one(p, &with("rojo=1, congo=t61rcWkgMzE ")), Sampled);
        assert_eq!(one(p, &with("congo=other")), NotSampled);
        assert_eq!(one(p, &with("")), NotSampled);
        // Invalid headers never match: uppercase key, duplicate key, missing '='.
        assert_eq!(one(p, &with("Rojo=1,congo=t61rcWkgMzE")), NotSampled);
        assert_eq!(one(p, &with("congo=t61rcWkgMzE,congo=x")), NotSampled);
        assert_eq!(one(p, &with("rojo,congo=t61rcWkgMzE")), NotSampled);
        assert_eq!(tracestate_get("a@b=1,x=2", "a@b"), Some("1"));
        assert_eq!(tracestate_get("1a@b=1", "1a@b"), Some("1"));
        assert_eq!(tracestate_get("1a=1", "1a"), None);
        let many: Vec<String> = (0..33).map(|n| format!("k{n}=v")).collect();
        assert_eq!(tracestate_get(&many.join(","), "k0"), None);
        assert_eq!(tracestate_get(&many[..32].join(","), "k0"), Some("v"));
    }

    #[test]
    fn boolean_attribute_policy() {
        let p =
            "[{name: f, type: boolean_attribute, boolean_attribute: {key: force, value: true}}]";
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![b("force", true)])])]),
            Sampled
        );
        assert_eq!(one(p, &[rs(vec![b("force", true)], vec![])]), Sampled);
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![b("force", false)])])]),
            NotSampled
        );
        assert_eq!(
            one(p, &[rs(vec![], vec![span_attrs(vec![s("force", "true")])])]),
            NotSampled
        );
        // pdata reads a non-boolean as false.
        let f =
            "[{name: f, type: boolean_attribute, boolean_attribute: {key: force, value: false}}]";
        assert_eq!(
            one(f, &[rs(vec![], vec![span_attrs(vec![s("force", "yes")])])]),
            Sampled
        );
        let inv = "[{name: f, type: boolean_attribute, boolean_attribute: {key: force, value: true, invert_match: true}}]";
        assert_eq!(
            one(inv, &[rs(vec![], vec![span_attrs(vec![b("force", true)])])]),
            InvertNotSampled
        );
        assert_eq!(
            one(
                inv,
                &[rs(vec![], vec![span_attrs(vec![b("force", false)])])]
            ),
            InvertSampled
        );
    }

    struct NameIs(String);
    impl SpanMatcher for NameIs {
        fn matches(&self, trace: &Trace<'_>) -> bool {
            all_spans(trace).any(|s| s.name == self.0)
        }
    }

    #[test]
    fn ottl_condition_delegates_to_the_matcher() {
        let cfgs = parse(
            r#"[{name: o, type: ottl_condition, ottl_condition: {error_mode: ignore, span: ['name == "checkout"']}}]"#,
        );
        let seen = std::cell::RefCell::new(Vec::new());
        let factory = |c: &OttlConditionConfig| -> Result<Box<dyn SpanMatcher>, String> {
            seen.borrow_mut().push(c.clone());
            Ok(Box::new(NameIs("checkout".into())))
        };
        let mut p = Policies::build(&cfgs, &factory).unwrap();
        assert_eq!(seen.borrow().len(), 1);
        assert_eq!(seen.borrow()[0].error_mode.as_deref(), Some("ignore"));
        assert_eq!(
            seen.borrow()[0].span,
            vec![r#"name == "checkout""#.to_string()]
        );
        let now = Instant::now();
        let hit = [rs(
            vec![],
            vec![Span {
                name: "checkout".into(),
                ..span(0, 1)
            }],
        )];
        let miss = [rs(
            vec![],
            vec![Span {
                name: "cart".into(),
                ..span(0, 1)
            }],
        )];
        assert_eq!(p.decide(&trace(&hit), now), (true, vec![Sampled]));
        assert_eq!(p.decide(&trace(&miss), now), (false, vec![NotSampled]));
        // A factory error fails the build, with the policy's path.
        let err = Policies::build(&cfgs, &no_ottl).unwrap_err();
        assert_eq!(
            err,
            "policies[0].ottl_condition: ottl is not available in this test"
        );
    }

    // --- combinators --------------------------------------------------------------------

    #[test]
    fn and_policy() {
        let p = "[{name: and1, type: and, and: {and_sub_policy: [
            {name: a, type: numeric_attribute, numeric_attribute: {key: k, min_value: 1, max_value: 5}},
            {name: b, type: string_attribute, string_attribute: {key: svc, values: [x]}}]}}]";
        let both = [rs(vec![s("svc", "x")], vec![span_attrs(vec![i("k", 3)])])];
        let one_only = [rs(vec![s("svc", "y")], vec![span_attrs(vec![i("k", 3)])])];
        assert_eq!(one(p, &both), Sampled);
        assert_eq!(one(p, &one_only), NotSampled);
        // Inverted sub-decisions become plain ones.
        let inv = "[{name: and1, type: and, and: {and_sub_policy: [
            {name: a, type: string_attribute, string_attribute: {key: svc, values: [x], invert_match: true}},
            {name: b, type: always_sample}]}}]";
        assert_eq!(one(inv, &one_only), Sampled);
        assert_eq!(one(inv, &both), NotSampled);
    }

    #[test]
    fn drop_policy_wins_over_everything() {
        let p = "[{name: keep, type: always_sample},
                  {name: d, type: drop, drop: {drop_sub_policy: [
                    {name: h, type: string_attribute, string_attribute: {key: url.path, values: ['\\/health'], enabled_regex_matching: true}},
                    {name: e, type: status_code, status_code: {status_codes: [UNSET]}}]}}]";
        let health = [rs(vec![], vec![span_attrs(vec![s("url.path", "/health")])])];
        let api = [rs(vec![], vec![span_attrs(vec![s("url.path", "/api")])])];
        let mut pol = build(p);
        let now = Instant::now();
        assert_eq!(
            pol.decide(&trace(&health), now),
            (false, vec![Dropped, Dropped])
        );
        assert_eq!(
            pol.decide(&trace(&api), now),
            (true, vec![Sampled, NotSampled])
        );
        // Every sub-policy must sample: the path matches (on the resource), but without
        // spans the status_code sub-policy does not, so the trace is not dropped.
        let resource_only = [rs(vec![s("url.path", "/health")], vec![])];
        assert_eq!(
            pol.decide(&trace(&resource_only), now),
            (true, vec![Sampled, NotSampled])
        );
    }

    #[test]
    fn dropped_traces_do_not_charge_rate_limits() {
        let p = "[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 3}},
                  {name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: boolean_attribute, boolean_attribute: {key: noise, value: true}}]}}]";
        let mut pol = build(p);
        let noisy = [rs(vec![b("noise", true)], vec![span(0, 1), span(0, 1)])];
        let quiet = [rs(vec![], vec![span(0, 1), span(0, 1)])];
        let now = Instant::now();
        assert_eq!(pol.names(), vec!["r".to_string(), "d".to_string()]);
        // The drop policy runs first; the rate limiter is skipped and reported as Dropped.
        assert_eq!(
            pol.decide(&trace(&noisy), now),
            (false, vec![Dropped, Dropped])
        );
        assert_eq!(
            pol.decide(&trace(&noisy), now),
            (false, vec![Dropped, Dropped])
        );
        // Its budget (2 of < 3) is still whole.
        assert_eq!(
            pol.decide(&trace(&quiet), now),
            (true, vec![Sampled, NotSampled])
        );
        assert_eq!(
            pol.decide(&trace(&quiet), now),
            (false, vec![NotSampled, NotSampled])
        );
    }

    #[test]
    fn composite_allocates_by_percent_in_policy_order() {
        let p = "[{name: comp, type: composite, composite: {
            max_total_spans_per_second: 10,
            policy_order: [errors, everything],
            composite_sub_policy: [
              {name: everything, type: always_sample},
              {name: errors, type: status_code, status_code: {status_codes: [ERROR]}},
              {name: unallocated, type: always_sample}],
            rate_allocation: [{policy: errors, percent: 50}, {policy: everything, percent: 30}]}}]";
        let mut pol = build(p);
        let err3 = [rs(vec![], vec![span_status(2), span(0, 1), span(0, 1)])];
        let ok2 = [rs(vec![], vec![span(0, 1), span(0, 1)])];
        let t0 = Instant::now();
        // errors: 5 spans/s; everything: 3 spans/s.
        assert!(pol.decide(&trace(&err3), t0).0); // errors 3 ≤ 5
        assert!(!pol.decide(&trace(&err3), t0).0); // errors 6 > 5: not sampled, `everything` not tried
        assert!(pol.decide(&trace(&ok2), t0).0); // everything 2 ≤ 3
        assert!(!pol.decide(&trace(&ok2), t0).0); // everything 4 > 3
        let later = t0 + Duration::from_secs(1);
        assert!(pol.decide(&trace(&err3), later).0);
        assert!(pol.decide(&trace(&ok2), later).0);
        // A sub-policy without allocation never samples.
        let p = "[{name: comp, type: composite, composite: {max_total_spans_per_second: 100,
            composite_sub_policy: [{name: a, type: always_sample}, {name: b, type: always_sample}],
            policy_order: [b],
            rate_allocation: [{policy: a, percent: 50}]}}]";
        assert_eq!(one(p, &ok2), NotSampled);
        // percent 0 means an equal share: 100 / 2 = 50.
        let p = "[{name: comp, type: composite, composite: {max_total_spans_per_second: 100,
            composite_sub_policy: [{name: a, type: always_sample}, {name: b, type: always_sample}],
            rate_allocation: [{policy: a, percent: 0}]}}]";
        let mut pol = build(p);
        let t49 = Trace {
            trace_id: [1; 16],
            spans: &[],
            span_count: 49,
        };
        let t2 = Trace {
            trace_id: [1; 16],
            spans: &[],
            span_count: 2,
        };
        assert!(pol.decide(&t49, t0).0);
        assert!(!pol.decide(&t2, t0).0); // 51 > 50
        assert!(
            pol.decide(
                &Trace {
                    span_count: 1,
                    ..t2
                },
                t0
            )
            .0
        ); // 50 ≤ 50
    }

    #[test]
    fn composite_accepts_and_sub_policies_and_inverted_samples() {
        let p = "[{name: comp, type: composite, composite: {max_total_spans_per_second: 100,
            composite_sub_policy: [
              {name: both, type: and, and: {and_sub_policy: [
                 {name: x, type: boolean_attribute, boolean_attribute: {key: x, value: true}},
                 {name: y, type: always_sample}]}},
              {name: not_team, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}}],
            rate_allocation: [{policy: both, percent: 50}, {policy: not_team, percent: 50}]}}]";
        assert_eq!(one(p, &[rs(vec![b("x", true)], vec![span(0, 1)])]), Sampled);
        assert_eq!(
            one(p, &[rs(vec![s("team", "b")], vec![span(0, 1)])]),
            Sampled
        );
        assert_eq!(
            one(p, &[rs(vec![s("team", "a")], vec![span(0, 1)])]),
            NotSampled
        );
    }

    // --- precedence ---------------------------------------------------------------------

    #[test]
    fn nested_type_lists_are_the_right_prefixes() {
        assert_eq!(PLAIN_TYPES.last(), Some(&"ottl_condition"));
        assert_eq!(COMPOSITE_SUB_TYPES.last(), Some(&"and"));
        assert_eq!(POLICY_TYPES.len(), 14);
    }

    #[test]
    fn final_decision_precedence() {
        assert!(!final_decision(&[Sampled, Dropped, InvertSampled]));
        assert!(!final_decision(&[Sampled, InvertNotSampled]));
        assert!(final_decision(&[NotSampled, Sampled]));
        assert!(final_decision(&[InvertSampled]));
        assert!(final_decision(&[InvertSampled, Sampled, NotSampled]));
        assert!(!final_decision(&[InvertSampled, NotSampled]));
        assert!(!final_decision(&[NotSampled]));
        assert!(!final_decision(&[]));
    }

    #[test]
    fn invert_not_sampled_beats_sampled_end_to_end() {
        let p = "[{name: all, type: always_sample},
                  {name: not_a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}},
                  {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]";
        let mut pol = build(p);
        let now = Instant::now();
        let team_a = [rs(vec![s("team", "a")], vec![span(0, 1)])];
        let team_b = [rs(vec![s("team", "b")], vec![span(0, 1)])];
        assert_eq!(
            pol.decide(&trace(&team_a), now),
            (false, vec![Sampled, InvertNotSampled, NotSampled])
        );
        assert_eq!(
            pol.decide(&trace(&team_b), now),
            (true, vec![Sampled, InvertSampled, NotSampled])
        );
        // Without always_sample, InvertSampled loses to the NotSampled of `errors`…
        let mut pol = build(
            "[{name: not_a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}},
              {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
        );
        assert_eq!(
            pol.decide(&trace(&team_b), now),
            (false, vec![InvertSampled, NotSampled])
        );
        // …and wins alone.
        let mut pol = build(
            "[{name: not_a, type: string_attribute, string_attribute: {key: team, values: [a], invert_match: true}}]",
        );
        assert_eq!(
            pol.decide(&trace(&team_b), now),
            (true, vec![InvertSampled])
        );
        assert_eq!(Decision::InvertNotSampled.label(), "not_sampled");
        assert_eq!(Decision::InvertSampled.label(), "sampled");
        assert_eq!(Decision::Dropped.label(), "dropped");
    }

    // --- configuration ------------------------------------------------------------------

    /// The collector-contrib README example (minus `bytes_limiting`, which otelgw lacks).
    const README: &str = r#"
processors:
  tail_sampling:
    decision_wait: 10s
    num_traces: 100
    expected_new_traces_per_sec: 10
    decision_cache:
      sampled_cache_size: 100_000
      non_sampled_cache_size: 100_000
    policies:
      [
          {
            name: test-policy-1,
            type: always_sample
          },
          {
            name: test-policy-2,
            type: latency,
            latency: {threshold_ms: 5000, upper_threshold_ms: 10000}
          },
          {
            name: test-policy-3,
            type: numeric_attribute,
            numeric_attribute: {key: key1, min_value: 50, max_value: 100}
          },
          {
            name: test-policy-4,
            type: probabilistic,
            probabilistic: {sampling_percentage: 10}
          },
          {
            name: test-policy-5,
            type: status_code,
            status_code: {status_codes: [ERROR, UNSET]}
          },
          {
            name: test-policy-6,
            type: string_attribute,
            string_attribute: {key: key2, values: [value1, value2]}
          },
          {
            name: test-policy-7,
            type: string_attribute,
            string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10}
          },
          {
            name: test-policy-8,
            type: rate_limiting,
            rate_limiting: {spans_per_second: 35}
         },
         {
            name: test-policy-10,
            type: span_count,
            span_count: {min_spans: 2, max_spans: 20}
         },
         {
             name: test-policy-11,
             type: trace_state,
             trace_state: { key: key3, values: [value1, value2] }
         },
         {
              name: test-policy-12,
              type: boolean_attribute,
              boolean_attribute: {key: key4, value: true}
         },
         {
              name: test-policy-13,
              type: ottl_condition,
              ottl_condition: {
                   error_mode: ignore,
                   span: [
                        "attributes[\"test_attr_key_1\"] == \"test_attr_val_1\"",
                        "attributes[\"test_attr_key_2\"] != \"test_attr_val_1\"",
                   ],
                   spanevent: [
                        "name != \"test_span_event_name\"",
                        "attributes[\"test_event_attr_key_2\"] != \"test_event_attr_val_1\"",
                   ]
              }
         },
         {
            name: and-policy-1,
            type: and,
            and: {
              and_sub_policy:
              [
                {
                  name: test-and-policy-1,
                  type: numeric_attribute,
                  numeric_attribute: { key: key1, min_value: 50, max_value: 100 }
                },
                {
                    name: test-and-policy-2,
                    type: string_attribute,
                    string_attribute: { key: key2, values: [ value1, value2 ] }
                },
              ]
            }
         },
         {
            name: drop-policy-1,
            type: drop,
            drop: {
              drop_sub_policy:
              [
                {
                    name: test-drop-policy-1,
                    type: string_attribute,
                    string_attribute: {key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true}
                }
              ]
            }
         },
         {
            name: composite-policy-1,
            type: composite,
            composite:
              {
                max_total_spans_per_second: 1000,
                policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3],
                composite_sub_policy:
                  [
                    {
                      name: test-composite-policy-1,
                      type: numeric_attribute,
                      numeric_attribute: {key: key1, min_value: 50}
                    },
                    {
                      name: test-composite-policy-2,
                      type: string_attribute,
                      string_attribute: {key: key2, values: [value1, value2]}
                    },
                    {
                      name: test-composite-policy-3,
                      type: always_sample
                    }
                  ],
                rate_allocation:
                  [
                    {
                      policy: test-composite-policy-1,
                      percent: 50
                    },
                    {
                      policy: test-composite-policy-2,
                      percent: 25
                    }
                  ]
              }
          },
        ]
"#;

    #[derive(Deserialize)]
    struct Root {
        processors: Processors,
    }
    #[derive(Deserialize)]
    struct Processors {
        tail_sampling: TailSampling,
    }
    #[derive(Deserialize)]
    struct TailSampling {
        policies: Vec<PolicyConfig>,
    }

    #[test]
    fn parses_validates_and_builds_the_readme_example() {
        let root: Root = serde_norway::from_str(README).unwrap();
        let policies = root.processors.tail_sampling.policies;
        assert_eq!(policies.len(), 15);
        assert_eq!(
            policies[1].latency,
            Some(LatencyConfig {
                threshold_ms: 5000,
                upper_threshold_ms: 10000
            })
        );
        assert_eq!(
            policies[3]
                .probabilistic
                .as_ref()
                .unwrap()
                .sampling_percentage,
            10.0
        );
        let regex = policies[6].string_attribute.as_ref().unwrap();
        assert!(regex.enabled_regex_matching);
        assert_eq!(regex.cache_max_size, 10);
        assert_eq!(regex.values, vec!["value1", "val*"]);
        let ottl = policies[11].ottl_condition.as_ref().unwrap();
        assert_eq!(
            ottl.span[0],
            r#"attributes["test_attr_key_1"] == "test_attr_val_1""#
        );
        assert_eq!(ottl.spanevent.len(), 2);
        let drop = &policies[13].drop.as_ref().unwrap().drop_sub_policy[0];
        assert_eq!(
            drop.string_attribute.as_ref().unwrap().values,
            vec![r"\/health", r"\/metrics"]
        );
        let comp = policies[14].composite.as_ref().unwrap();
        assert_eq!(comp.max_total_spans_per_second, 1000);
        assert_eq!(
            comp.rate_allocation[1],
            RateAllocationConfig {
                policy: "test-composite-policy-2".into(),
                percent: 25
            }
        );

        let mut errors = Vec::new();
        validate(&policies, "processors.tail_sampling", &mut errors);
        assert_eq!(errors, vec![]);

        let factory = |_: &OttlConditionConfig| -> Result<Box<dyn SpanMatcher>, String> {
            Ok(Box::new(NameIs("never".into())))
        };
        let mut built = Policies::build(&policies, &factory).unwrap();
        assert_eq!(built.names().len(), 15);
        assert_eq!(built.names()[13], "drop-policy-1");
        let now = Instant::now();
        let health = [rs(vec![], vec![span_attrs(vec![s("url.path", "/health")])])];
        let (keep, ds) = built.decide(&trace(&health), now);
        assert!(!keep);
        assert_eq!(ds[13], Dropped);
        let other = [rs(vec![], vec![span_attrs(vec![s("url.path", "/api")])])];
        let (keep, ds) = built.decide(&trace(&other), now);
        assert!(keep);
        assert_eq!(ds[0], Sampled);
        assert_eq!(ds[13], NotSampled);

        // Serializing and parsing back gives the same config.
        let yaml = serde_norway::to_string(&policies).unwrap();
        let again: Vec<PolicyConfig> = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(again, policies);
    }

    #[test]
    fn unknown_keys_are_rejected_when_parsing() {
        let err = serde_norway::from_str::<Vec<PolicyConfig>>(
            "[{name: a, type: latency, latency: {threshold_ms: 1, treshold: 2}}]",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `treshold`"),
            "{err}"
        );
        let err = serde_norway::from_str::<Vec<PolicyConfig>>(
            "[{name: a, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1}}]",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `bytes_limiting`"),
            "{err}"
        );
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let errors = errors_of(
            r#"
- {name: a, type: always_sample}
- {name: a, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 100}}
- {name: typo, type: lateny}
- {name: nob, type: probabilistic}
- {name: mixed, type: status_code, status_code: {status_codes: [ERROR, FATAL]}, latency: {threshold_ms: 1}}
- {name: rx, type: string_attribute, string_attribute: {key: "", values: ["(unclosed"], enabled_regex_matching: true}}
- {name: pct, type: probabilistic, probabilistic: {sampling_percentage: 150}}
- {name: "", type: numeric_attribute, numeric_attribute: {key: k}}
- name: comp
  type: composite
  composite:
    max_total_spans_per_second: 0
    policy_order: [one, nope]
    composite_sub_policy:
      - {name: one, type: always_sample}
      - {name: two, type: drop, drop: {drop_sub_policy: [{name: x, type: always_sample}]}}
    rate_allocation: [{policy: one, percent: 80}, {policy: ghost, percent: 30}, {policy: two, percent: 101}]
- {name: and1, type: and, and: {and_sub_policy: [{name: inner, type: and, and: {and_sub_policy: []}}, {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 0}}]}}
- {name: d, type: drop, drop: {drop_sub_policy: []}}
- {name: sc, type: span_count, span_count: {min_spans: 5, max_spans: 2}}
- {name: ts, type: trace_state, trace_state: {key: Bad, values: ["a,b"]}}
- {name: o, type: ottl_condition, ottl_condition: {error_mode: loud}}
"#,
        );
        let p = "processors.tail_sampling.policies";
        let expected: &[(&str, &str)] = &[
            ("[1].name", "duplicate policy name \"a\" (also policies[0])"),
            (
                "[1].latency.upper_threshold_ms",
                "must be greater than threshold_ms (500)",
            ),
            (
                "[2].type",
                "unknown policy type \"lateny\" (known: always_sample, latency,",
            ),
            (
                "[3].probabilistic",
                "missing probabilistic block for policy type probabilistic",
            ),
            (
                "[4].status_code.status_codes[1]",
                "unknown status code \"FATAL\"",
            ),
            (
                "[4].latency",
                "latency block given but the policy type is status_code",
            ),
            ("[5].string_attribute.key", "must not be empty"),
            (
                "[5].string_attribute.values[0]",
                "invalid regular expression: unclosed group",
            ),
            (
                "[6].probabilistic.sampling_percentage",
                "must be between 0 and 100, got 150",
            ),
            ("[7].name", "must not be empty"),
            ("[7].numeric_attribute", "set min_value and/or max_value"),
            (
                "[8].composite.max_total_spans_per_second",
                "must be greater than 0",
            ),
            (
                "[8].composite.composite_sub_policy[1].type",
                "policy type \"drop\" is not allowed inside a composite policy",
            ),
            (
                "[8].composite.policy_order[1]",
                "unknown sub-policy \"nope\" (sub-policies: one, two)",
            ),
            (
                "[8].composite.rate_allocation[1].policy",
                "unknown sub-policy \"ghost\"",
            ),
            (
                "[8].composite.rate_allocation[2].percent",
                "must be between 0 and 100, got 101",
            ),
            (
                "[8].composite.rate_allocation",
                "percentages sum to 110, more than 100",
            ),
            (
                "[9].and.and_sub_policy[0].type",
                "policy type \"and\" is not allowed inside an and policy",
            ),
            (
                "[9].and.and_sub_policy[1].rate_limiting.spans_per_second",
                "must be greater than 0",
            ),
            (
                "[10].drop.drop_sub_policy",
                "at least one sub-policy is required",
            ),
            (
                "[11].span_count.max_spans",
                "must be greater than or equal to min_spans (5)",
            ),
            ("[12].trace_state.key", "is not a valid W3C tracestate key"),
            (
                "[12].trace_state.values[0]",
                "is not a valid W3C tracestate value",
            ),
            (
                "[13].ottl_condition.error_mode",
                "unknown error mode \"loud\"",
            ),
        ];
        for (path, needle) in expected {
            assert!(
                has_error(&errors, &format!("{p}{path}"), needle),
                "missing {path}: {needle}\nall: {errors:#?}"
            );
        }
        assert_eq!(
            errors.len(),
            expected.len(),
            "unexpected extra errors: {errors:#?}"
        );
        // Messages are lowercase-initial.
        for (_, m) in &errors {
            assert!(!m.starts_with(|c: char| c.is_uppercase()), "{m}");
        }
    }

    #[test]
    fn validation_of_nesting_and_empty_lists() {
        // An empty list and OTTL conditions are the caller's to judge.
        assert_eq!(errors_of("[]"), vec![]);
        assert_eq!(
            errors_of("[{name: o, type: ottl_condition, ottl_condition: {}}]"),
            vec![]
        );
        // and inside composite is allowed (Collector), but not deeper.
        let errors = errors_of(
            "[{name: c, type: composite, composite: {max_total_spans_per_second: 10,
               composite_sub_policy: [{name: a, type: and, and: {and_sub_policy: [
                  {name: deep, type: composite, composite: {max_total_spans_per_second: 1}}]}}],
               rate_allocation: [{policy: a, percent: 100}]}}]",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(
            errors[0].0,
            "processors.tail_sampling.policies[0].composite.composite_sub_policy[0].and.and_sub_policy[0].type"
        );
        assert!(errors[0]
            .1
            .contains("not allowed inside an and policy within a composite policy"));
        let errors = errors_of(
            "[{name: d, type: drop, drop: {drop_sub_policy: [{name: c, type: composite}]}}]",
        );
        assert!(has_error(
            &errors,
            "processors.tail_sampling.policies[0].drop.drop_sub_policy[0].type",
            "not allowed inside a drop policy"
        ));
        let errors = errors_of("[{name: c, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: a, type: always_sample}]}}]");
        assert!(has_error(
            &errors,
            "processors.tail_sampling.policies[0].composite.rate_allocation",
            "at least one sub-policy"
        ));
        let errors = errors_of("[{name: x}]");
        assert!(has_error(
            &errors,
            "processors.tail_sampling.policies[0].type",
            "missing policy type"
        ));
    }

    #[test]
    fn build_rejects_invalid_configs_without_panicking() {
        let err = Policies::build(
            &parse(
                "[{name: l, type: latency, latency: {threshold_ms: -1}}, {name: l, type: what}]",
            ),
            &no_ottl,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "policies[0].latency.threshold_ms: must not be negative; \
             policies[1].name: duplicate policy name \"l\" (also policies[0]); \
             policies[1].type: unknown policy type \"what\" (known: always_sample, latency, \
             numeric_attribute, probabilistic, status_code, string_attribute, rate_limiting, \
             span_count, trace_state, boolean_attribute, ottl_condition, and, composite, drop)"
        );
    }

    #[test]
    fn odd_traces_do_not_panic() {
        let mut pol = build(
            "[{name: l, type: latency, latency: {threshold_ms: 1}},
              {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 9223372036854775807}},
              {name: c, type: composite, composite: {max_total_spans_per_second: 9223372036854775807,
                 composite_sub_policy: [{name: a, type: always_sample}], rate_allocation: [{policy: a, percent: 100}]}},
              {name: s, type: string_attribute, string_attribute: {key: k, values: ['.'], enabled_regex_matching: true}}]",
        );
        let weird = [
            ResourceSpans::default(),
            rs(
                vec![KeyValue {
                    key: "k".into(),
                    value: None,
                    ..Default::default()
                }],
                vec![Span {
                    start_time_unix_nano: u64::MAX,
                    end_time_unix_nano: 0,
                    ..Default::default()
                }],
            ),
        ];
        let t = Trace {
            trace_id: [0; 16],
            spans: &weird,
            span_count: u64::MAX,
        };
        let t0 = Instant::now();
        for n in 0..3 {
            let (_, ds) = pol.decide(&t, t0 + Duration::from_secs(n));
            assert_eq!(ds.len(), 4);
        }
        // `now` going backwards is fine too.
        let (_, ds) = pol.decide(&t, t0.checked_sub(Duration::from_secs(5)).unwrap_or(t0));
        assert_eq!(ds.len(), 4);
    }
}
