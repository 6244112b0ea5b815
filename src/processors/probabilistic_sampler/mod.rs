//! `probabilistic_sampler`: keeps a percentage of spans and log records, deciding each item
//! statelessly from randomness the item carries, so every span of a trace gets the same
//! decision on every gateway configured alike. Keys, defaults and behaviour are the Collector
//! contrib processor's.
//!
//! Modes:
//! - `hash_seed` (the Collector's default): randomness is the FNV-1a hash of `hash_seed` and
//!   the trace id (logs: the trace id, or the `from_attribute` value); an item is kept when the
//!   hash's low 14 bits fall under `sampling_percentage` × 163.84. Gateways of one tier must
//!   share the seed. Kept spans get `ot=rv:<randomness>;th:<threshold>` in their tracestate
//!   (log records: `sampling.randomness` / `sampling.threshold` attributes). Spans that already
//!   carry `rv` or `th` are errors in this mode (see `fail_closed`).
//! - `proportional`: the OTel spec's consistent probability sampling: randomness is the last 56
//!   bits of the trace id (or an explicit `ot=rv`), and the item's probability is multiplied by
//!   the percentage — 25 % after an SDK's 50 % gives `th` for 12.5 %.
//! - `equalizing`: the same randomness, but the threshold is raised to the configured one only
//!   where it is lower (items sampled harder upstream pass as they are).
//!
//! In every mode a kept item records its threshold (`th`, `sampling_precision` hex digits) and
//! a threshold can only rise (probability only falls). Spans with `sampling.priority` 0 are
//! dropped and > 0 kept; log records with the `sampling_priority` attribute use its number as
//! their own percentage (0 drops, ≥ 100 keeps). An item without randomness (an all-zero trace
//! id, no attribute), with a broken `tracestate`, or whose arriving `th` contradicts its
//! randomness is an error: dropped with `fail_closed: true` (the default), kept otherwise.
//!
//! Dropped items are not rejections: the client is answered success, as the Collector does.
//! Each decision is counted in `otelcol_processor_probabilistic_sampler_count_traces_sampled`
//! / `..._count_logs_sampled` with `policy` (where the randomness came from) and `sampled`.
//!
//! Files: [`threshold`] holds the arithmetic (thresholds, randomness, FNV), [`tracestate`] the
//! W3C `tracestate` and the `ot` entry; this file the config, the decision and the processor.

pub mod threshold;
pub mod tracestate;

#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::{Deserialize, Serialize};

use super::{Processor, Rejections};
use crate::component::{Diagnostics, Signal};
use crate::data::{RequestMeta, Telemetry};
use crate::telemetry::metrics::{names, Counter, Registry};
use threshold::{hash_seed_threshold, Randomness, SamplingError, Threshold, MIN_PROBABILITY};
use tracestate::{OtelEntry, TraceState};

/// Log record attributes that carry sampling information (the Collector's names).
const LOG_THRESHOLD_KEY: &str = "sampling.threshold";
const LOG_RANDOMNESS_KEY: &str = "sampling.randomness";
/// The span attribute that forces a decision (OpenTracing's convention).
const SPAN_PRIORITY_KEY: &str = "sampling.priority";

/// `processors.probabilistic_sampler`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticSamplerConfig {
    /// Percentage of items kept (a 32-bit float, as in the Collector): 0 drops everything
    /// (sampling priority aside); 100 or more keeps everything.
    #[serde(serialize_with = "f32_as_written")]
    pub sampling_percentage: f32,
    /// The FNV seed of `hash_seed` mode; every gateway of a tier needs the same one.
    pub hash_seed: u32,
    /// `hash_seed` (default), `proportional` or `equalizing`.
    pub mode: SamplerMode,
    /// Items whose sampling information is missing or broken are dropped (true) or kept.
    pub fail_closed: bool,
    /// Hex digits of the threshold recorded in `th` (1..=14).
    pub sampling_precision: u32,
    /// Logs: `traceID` (the record's trace id, else `from_attribute`) or `record`
    /// (`from_attribute` only).
    pub attribute_source: AttributeSource,
    /// Logs, `hash_seed` mode: the record attribute hashed for randomness (e.g. a log id).
    pub from_attribute: String,
    /// Logs: a record attribute whose number is that record's own sampling percentage.
    pub sampling_priority: String,
}

impl Default for ProbabilisticSamplerConfig {
    fn default() -> Self {
        ProbabilisticSamplerConfig {
            sampling_percentage: 0.0,
            hash_seed: 0,
            mode: SamplerMode::HashSeed,
            fail_closed: true,
            sampling_precision: 4,
            attribute_source: AttributeSource::TraceId,
            from_attribute: String::new(),
            sampling_priority: String::new(),
        }
    }
}

/// `print-config` shows the percentage as written (15.3, not the f32's 15.300000190734863).
fn f32_as_written<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(v.to_string().parse().unwrap_or(f64::from(*v)))
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerMode {
    HashSeed,
    Proportional,
    Equalizing,
}

/// `attribute_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeSource {
    #[serde(rename = "traceID")]
    TraceId,
    #[serde(rename = "record")]
    Record,
}

impl ProbabilisticSamplerConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let pct = self.sampling_percentage;
        let at = format!("{path}.sampling_percentage");
        if !pct.is_finite() {
            diag.error(at, "must be a finite number");
        } else if pct < 0.0 {
            diag.error(at, format!("must not be negative (got {pct})"));
        } else if pct == 0.0 {
            diag.warn(at, "0 drops every item (sampling priority aside)");
        } else if f64::from(pct) / 100.0 < MIN_PROBABILITY {
            diag.error(at, format!("{pct}% is too small (the least is 2^-56)"));
        }
        if !(1..=threshold::NUM_HEX_DIGITS).contains(&self.sampling_precision) {
            diag.error(
                format!("{path}.sampling_precision"),
                format!("must be between 1 and 14 (got {})", self.sampling_precision),
            );
        }
        let hashing = self.mode == SamplerMode::HashSeed;
        if self.attribute_source == AttributeSource::Record && self.from_attribute.is_empty() {
            diag.warn(
                format!("{path}.from_attribute"),
                "attribute_source: record needs from_attribute: without it no log record has \
                 randomness (see fail_closed)",
            );
        }
        if !hashing
            && (!self.from_attribute.is_empty() || self.attribute_source == AttributeSource::Record)
        {
            diag.warn(
                format!("{path}.from_attribute"),
                "used only in mode hash_seed: proportional and equalizing take randomness from \
                 the trace id",
            );
        }
        if !hashing && self.hash_seed != 0 {
            diag.warn(format!("{path}.hash_seed"), "used only in mode hash_seed");
        }
    }

    /// Builds the processor for one pipeline of `signal`.
    pub fn build(&self, id: &str, signal: Signal, reg: &Registry) -> ProbabilisticSampler {
        let sampler = self.sampler();
        let counters = Counters::new(id, signal, self, &sampler, reg);
        ProbabilisticSampler {
            id: id.to_string(),
            sampler,
            fail_closed: self.fail_closed,
            precision: self.sampling_precision,
            priority_attribute: (!self.sampling_priority.is_empty())
                .then(|| self.sampling_priority.clone()),
            counters,
        }
    }

    /// The decision rule (the Collector's `makeSampler`).
    fn sampler(&self) -> Sampler {
        let pct = self.sampling_percentage.min(100.0);
        if pct.is_nan() || pct <= 0.0 {
            return Sampler::Never;
        }
        let ratio = (f64::from(pct) / 100.0).max(MIN_PROBABILITY);
        match self.mode {
            SamplerMode::Equalizing => Sampler::Equalizing(
                Threshold::from_probability(ratio, self.sampling_precision)
                    .unwrap_or(Threshold::ALWAYS),
            ),
            SamplerMode::Proportional => Sampler::Proportional {
                ratio,
                precision: self.sampling_precision,
            },
            SamplerMode::HashSeed => match hash_seed_threshold(pct) {
                None => Sampler::Never,
                Some(threshold) => Sampler::Hash {
                    threshold,
                    seed: self.hash_seed,
                    logs_trace_id: self.attribute_source == AttributeSource::TraceId,
                    logs_attribute: (!self.from_attribute.is_empty())
                        .then(|| self.from_attribute.clone()),
                },
            },
        }
    }
}

/// How a configured processor decides.
#[derive(Debug, Clone)]
enum Sampler {
    /// 0 %: nothing passes but what sampling priority forces.
    Never,
    Hash {
        threshold: Threshold,
        seed: u32,
        logs_trace_id: bool,
        logs_attribute: Option<String>,
    },
    Equalizing(Threshold),
    Proportional {
        ratio: f64,
        precision: u32,
    },
}

impl Sampler {
    /// The threshold for an item that arrived with `incoming` (its `th`, if any).
    fn threshold(&self, incoming: Option<Threshold>) -> Threshold {
        match self {
            Sampler::Never => Threshold::NEVER,
            Sampler::Hash { threshold, .. } => *threshold,
            Sampler::Equalizing(t) => match incoming {
                Some(arrived) if *t < arrived => arrived,
                _ => *t,
            },
            Sampler::Proportional { ratio, precision } => {
                let p = incoming.map_or(1.0, Threshold::probability);
                // below 2^-56 the item simply becomes unsampled
                Threshold::from_probability(p * ratio, *precision).unwrap_or(Threshold::NEVER)
            }
        }
    }
}

/// Where an item's randomness came from (the counters' `policy` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    MissingRandomness,
    TraceIdHash,
    TraceIdW3c,
    SamplingRandomness,
    /// `from_attribute` (labelled with the attribute's name).
    Attribute,
    SamplingPriority,
}

impl Policy {
    const ALL: [Policy; 6] = [
        Policy::MissingRandomness,
        Policy::TraceIdHash,
        Policy::TraceIdW3c,
        Policy::SamplingRandomness,
        Policy::Attribute,
        Policy::SamplingPriority,
    ];

    fn label(self, attribute: &str) -> &str {
        match self {
            Policy::MissingRandomness => "missing_randomness",
            Policy::TraceIdHash => "trace_id_hash",
            Policy::TraceIdW3c => "trace_id_w3c",
            Policy::SamplingRandomness => "sampling_randomness",
            Policy::Attribute => attribute,
            Policy::SamplingPriority => "sampling_priority",
        }
    }
}

/// An item's randomness and its source.
#[derive(Debug, Clone, Copy)]
struct Source {
    policy: Policy,
    rnd: Option<Randomness>,
}

impl Source {
    const MISSING: Source = Source {
        policy: Policy::MissingRandomness,
        rnd: None,
    };

    fn new(policy: Policy, rnd: Randomness) -> Source {
        Source {
            policy,
            rnd: Some(rnd),
        }
    }

    /// Missing randomness compares as "sampled at every probability".
    fn randomness(&self) -> Randomness {
        self.rnd.unwrap_or(Randomness::ALL)
    }
}

/// The decision counters, registered once per processor and signal for the policies its mode
/// can produce.
struct Counters {
    /// Indexed by `Policy as usize`: [not sampled, sampled].
    cells: [Option<[Counter; 2]>; 6],
}

impl Counters {
    fn new(
        id: &str,
        signal: Signal,
        cfg: &ProbabilisticSamplerConfig,
        sampler: &Sampler,
        reg: &Registry,
    ) -> Counters {
        let (name, help) = match signal {
            Signal::Traces => (
                names::PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_TRACES_SAMPLED,
                "Count of spans that were sampled or not.",
            ),
            Signal::Logs => (
                names::PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_LOGS_SAMPLED,
                "Count of logs that were sampled or not.",
            ),
            Signal::Metrics => {
                return Counters {
                    cells: Default::default(),
                }
            }
        };
        let logs = signal == Signal::Logs;
        let possible = |p: Policy| match (sampler, p) {
            (Sampler::Never, p) => p == Policy::SamplingPriority,
            (_, Policy::MissingRandomness) => true,
            (_, Policy::SamplingPriority) => !logs || !cfg.sampling_priority.is_empty(),
            (Sampler::Hash { logs_trace_id, .. }, Policy::TraceIdHash) => !logs || *logs_trace_id,
            (Sampler::Hash { logs_attribute, .. }, Policy::Attribute) => {
                logs && logs_attribute.is_some()
            }
            (Sampler::Hash { .. }, _) => false,
            (_, Policy::TraceIdW3c | Policy::SamplingRandomness) => true,
            (_, Policy::TraceIdHash | Policy::Attribute) => false,
        };
        let mut cells: [Option<[Counter; 2]>; 6] = Default::default();
        for p in Policy::ALL {
            if possible(p) {
                let label = p.label(&cfg.from_attribute);
                let counter = |sampled: &str| {
                    reg.counter(
                        name,
                        help,
                        &[("processor", id), ("policy", label), ("sampled", sampled)],
                    )
                };
                cells[p as usize] = Some([counter("false"), counter("true")]);
            }
        }
        Counters { cells }
    }

    fn count(&self, policy: Policy, sampled: bool) {
        if let Some(c) = &self.cells[policy as usize] {
            c[usize::from(sampled)].inc();
        }
    }
}

/// The running processor.
pub struct ProbabilisticSampler {
    id: String,
    sampler: Sampler,
    fail_closed: bool,
    precision: u32,
    priority_attribute: Option<String>,
    counters: Counters,
}

impl Processor for ProbabilisticSampler {
    fn process(&self, data: &mut Telemetry, _meta: &RequestMeta, _rejected: &mut Rejections) {
        match data {
            Telemetry::Traces(req) => {
                for rs in &mut req.resource_spans {
                    for ss in &mut rs.scope_spans {
                        ss.spans.retain_mut(|s| self.sample_span(s));
                    }
                    rs.scope_spans.retain(|ss| !ss.spans.is_empty());
                }
                req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
            }
            Telemetry::Logs(req) => {
                for rl in &mut req.resource_logs {
                    for sl in &mut rl.scope_logs {
                        sl.log_records.retain_mut(|r| self.sample_log(r));
                    }
                    rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
                }
                req.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
            }
            // validation keeps the sampler out of metrics pipelines
            Telemetry::Metrics(_) => {}
        }
    }
}

impl ProbabilisticSampler {
    /// Decides one span; a kept span's tracestate records the threshold.
    pub fn sample_span(&self, span: &mut Span) -> bool {
        let (src, mut ts, err) = self.span_source(span);
        let th = self.decide(&src, ts.as_mut().map(|t| &mut t.ot), err, "traces sampler");
        let (src, th) = match span_priority(&span.attributes) {
            Some(forced) => (priority_source(src), forced),
            None => (src, th),
        };
        let sampled = th.should_sample(src.randomness());
        if sampled {
            if let Some(mut ts) = ts {
                if let Err(e) = ts.ot.update_threshold(th) {
                    tracing::debug!(processor = %self.id, error = %e, "traces sampler");
                }
                span.trace_state = ts.serialize();
            }
        }
        self.counters.count(src.policy, sampled);
        sampled
    }

    /// Decides one log record; a kept record's attributes record the threshold.
    pub fn sample_log(&self, rec: &mut LogRecord) -> bool {
        let (src, mut carrier, err) = self.log_source(rec);
        let th = self.decide(&src, carrier.as_mut(), err, "logs sampler");
        let (src, th) = match self.log_priority(&rec.attributes) {
            Some(forced) => (priority_source(src), forced),
            None => (src, th),
        };
        let sampled = th.should_sample(src.randomness());
        if sampled {
            if let Some(mut c) = carrier {
                if let Err(e) = c.update_threshold(th) {
                    tracing::debug!(processor = %self.id, error = %e, "logs sampler");
                }
                let (rv, tv) = c.changed();
                if let Some(rv) = rv {
                    put_str(&mut rec.attributes, LOG_RANDOMNESS_KEY, &rv);
                }
                if let Some(tv) = tv {
                    put_str(&mut rec.attributes, LOG_THRESHOLD_KEY, tv);
                }
            }
        }
        self.counters.count(src.policy, sampled);
        sampled
    }

    /// The threshold before sampling priority: the mode's, or — when the item's sampling
    /// information is missing, broken or inconsistent — never (`fail_closed`) or always.
    fn decide(
        &self,
        src: &Source,
        mut carrier: Option<&mut OtelEntry>,
        err: Option<SamplingError>,
        what: &'static str,
    ) -> Threshold {
        let err = err.or_else(|| consistency_check(src, carrier.as_deref_mut()));
        match err {
            Some(e) => {
                tracing::debug!(processor = %self.id, error = %e, "{what}");
                if self.fail_closed {
                    Threshold::NEVER
                } else {
                    Threshold::ALWAYS
                }
            }
            None => self
                .sampler
                .threshold(carrier.as_deref().and_then(OtelEntry::threshold)),
        }
    }

    /// A span's randomness, its parsed tracestate (`None` when it must not be rewritten) and
    /// the error that makes the decision fail open or closed.
    fn span_source(&self, span: &Span) -> (Source, Option<TraceState>, Option<SamplingError>) {
        let parsed = TraceState::parse(&span.trace_state);
        let tid = valid_trace_id(&span.trace_id);
        match &self.sampler {
            Sampler::Never => never_source(parsed),
            Sampler::Hash { seed, .. } => {
                let src = tid.map_or(Source::MISSING, |t| {
                    Source::new(Policy::TraceIdHash, Randomness::from_hash(*seed, t))
                });
                match parsed {
                    Err(e) => (src, None, Some(e)),
                    Ok(ts) if ts.ot.randomness().is_some() => {
                        (src, None, Some(SamplingError::RandomnessInUse))
                    }
                    Ok(ts) if ts.ot.threshold().is_some() => {
                        (src, None, Some(SamplingError::ThresholdInUse))
                    }
                    Ok(mut ts) => {
                        // the Collector records the randomness it used (all-ones when missing)
                        ts.ot.set_randomness(src.randomness());
                        (src, Some(ts), None)
                    }
                }
            }
            Sampler::Equalizing(_) | Sampler::Proportional { .. } => match parsed {
                Err(e) => (Source::MISSING, None, Some(e)),
                Ok(ts) => (consistent_source(&ts.ot, tid), Some(ts), None),
            },
        }
    }

    /// A log record's randomness, its sampling attributes and the error, as for spans.
    fn log_source(&self, rec: &LogRecord) -> (Source, Option<OtelEntry>, Option<SamplingError>) {
        let parsed = OtelEntry::from_attributes(
            str_attr(&rec.attributes, LOG_THRESHOLD_KEY),
            str_attr(&rec.attributes, LOG_RANDOMNESS_KEY),
        );
        let tid = valid_trace_id(&rec.trace_id);
        match &self.sampler {
            Sampler::Never => never_source(parsed),
            Sampler::Hash {
                seed,
                logs_trace_id,
                logs_attribute,
                ..
            } => {
                let mut src = match tid {
                    Some(t) if *logs_trace_id => {
                        Source::new(Policy::TraceIdHash, Randomness::from_hash(*seed, t))
                    }
                    _ => Source::MISSING,
                };
                if let (None, Some(name)) = (src.rnd, logs_attribute) {
                    let bytes = attr(&rec.attributes, name)
                        .map(value_bytes)
                        .unwrap_or_default();
                    if !bytes.is_empty() {
                        src = Source::new(Policy::Attribute, Randomness::from_hash(*seed, &bytes));
                    }
                }
                match parsed {
                    Err(e) => (src, None, Some(e)),
                    Ok(c) if c.randomness().is_some() => {
                        (src, None, Some(SamplingError::RandomnessInUse))
                    }
                    Ok(c) if c.threshold().is_some() => {
                        (src, None, Some(SamplingError::ThresholdInUse))
                    }
                    Ok(mut c) => {
                        if let Some(r) = src.rnd {
                            c.set_randomness(r);
                        }
                        (src, Some(c), None)
                    }
                }
            }
            Sampler::Equalizing(_) | Sampler::Proportional { .. } => match parsed {
                Err(e) => (Source::MISSING, None, Some(e)),
                Ok(c) => (consistent_source(&c, tid), Some(c), None),
            },
        }
    }

    /// The record's own percentage from the `sampling_priority` attribute (int or double):
    /// 0 → never, ≥ 100 → always; negative, non-numeric or absent → no override.
    fn log_priority(&self, attrs: &[KeyValue]) -> Option<Threshold> {
        let name = self.priority_attribute.as_deref()?;
        let pct = match attr(attrs, name)? {
            any_value::Value::IntValue(i) => *i as f64,
            any_value::Value::DoubleValue(d) => *d,
            _ => return None,
        };
        if pct == 0.0 {
            Some(Threshold::NEVER)
        } else if pct >= 100.0 {
            Some(Threshold::ALWAYS)
        } else if pct > 0.0 {
            Threshold::from_probability(pct / 100.0, self.precision)
        } else {
            None
        }
    }
}

/// The 0 % sampler's source: no randomness is needed (nothing passes but priority).
fn never_source<C>(parsed: Result<C, SamplingError>) -> (Source, Option<C>, Option<SamplingError>) {
    let src = Source::new(Policy::SamplingPriority, Randomness::ALL);
    match parsed {
        Ok(c) => (src, Some(c), None),
        Err(e) => (src, None, Some(e)),
    }
}

/// `proportional` / `equalizing`: explicit `rv` first, else the trace id's 56 bits.
fn consistent_source(carried: &OtelEntry, tid: Option<&[u8; 16]>) -> Source {
    match (carried.randomness(), tid) {
        (Some(r), _) => Source::new(Policy::SamplingRandomness, r),
        (None, Some(t)) => Source::new(Policy::TraceIdW3c, Randomness::from_trace_id(t)),
        (None, None) => Source::MISSING,
    }
}

/// An arriving threshold the item's randomness would not have passed is dropped (the spec
/// says so) and makes the item an error.
fn consistency_check(src: &Source, carrier: Option<&mut OtelEntry>) -> Option<SamplingError> {
    let Some(r) = src.rnd else {
        return Some(SamplingError::MissingRandomness);
    };
    let c = carrier?;
    match c.threshold() {
        Some(t) if !t.should_sample(r) => {
            c.clear_threshold();
            Some(SamplingError::InconsistentArrivingThreshold)
        }
        _ => None,
    }
}

fn priority_source(src: Source) -> Source {
    Source {
        policy: Policy::SamplingPriority,
        ..src
    }
}

/// `sampling.priority` on a span: 0 → never, > 0 → always (int, double or numeric string).
fn span_priority(attrs: &[KeyValue]) -> Option<Threshold> {
    let v = match attr(attrs, SPAN_PRIORITY_KEY)? {
        any_value::Value::IntValue(i) => *i as f64,
        any_value::Value::DoubleValue(d) => *d,
        any_value::Value::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if v == 0.0 {
        Some(Threshold::NEVER)
    } else if v > 0.0 {
        Some(Threshold::ALWAYS)
    } else {
        None
    }
}

/// A trace id that carries randomness: 16 bytes, not all zero.
fn valid_trace_id(id: &[u8]) -> Option<&[u8; 16]> {
    let id: &[u8; 16] = id.try_into().ok()?;
    id.iter().any(|b| *b != 0).then_some(id)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A string attribute's value; "" when absent or not a string.
fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a str {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

/// The bytes `hash_seed` mode hashes for an attribute: bytes as they are, scalars as the
/// Collector prints them (`AsString`); lists and maps give nothing (no randomness).
fn value_bytes(v: &any_value::Value) -> Vec<u8> {
    match v {
        any_value::Value::BytesValue(b) => b.clone(),
        any_value::Value::StringValue(s) => s.clone().into_bytes(),
        any_value::Value::IntValue(i) => i.to_string().into_bytes(),
        any_value::Value::BoolValue(b) => b.to_string().into_bytes(),
        any_value::Value::DoubleValue(d) => go_float_string(*d).into_bytes(),
        _ => Vec::new(),
    }
}

/// A double as Go's pdata `AsString` writes it (ES6 number-to-string: plain digits between
/// 1e-6 and 1e21, else an exponent with its sign).
fn go_float_string(d: f64) -> String {
    let a = d.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{d}")
    }
}

fn put_str(attrs: &mut Vec<KeyValue>, key: &str, value: &str) {
    let v = Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    });
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = v,
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value: v,
            ..Default::default()
        }),
    }
}
