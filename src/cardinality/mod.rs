//! Series cardinality accounting, shared by the `cardinality_limit` processor and the
//! Prometheus exporter's `max_series` cap.
//!
//! Contract:
//! - A series is identified by one 64-bit hash of metric name, scope, the identifying resource
//!   attributes (`service.name`, `service.namespace`, `service.instance.id`) and the data point's
//!   attributes (order-independent, excluded labels left out). Hashing walks the attributes once
//!   and allocates nothing ([`series_key`]). Two different series share a key with probability
//!   ~n²/2⁶⁵ (10⁻⁸ at a million series); such a pair is treated as one series.
//! - [`tracker::Tracker::admit`] answers "may this series exist?": a known series (hit) is a
//!   shard read-lock lookup plus one relaxed atomic store of its `last_seen`; a new series (miss)
//!   reserves budget with compare-and-swap on the per-metric and global counters before it takes
//!   one shard's write lock. There is no global lock and no `len()` scan. First-seen series win:
//!   once admitted a series stays until it is idle for `series_ttl`.
//! - Memory is bounded by the configured limits and reported ([`tracker::Tracker::memory_bytes`]).
//! - A component that keeps a tracker exposes it (`Processor::cardinality_tracker`,
//!   `Exporter::cardinality_tracker`); the graph lists it on the app's [`report::Board`], which
//!   the admin listener renders as `GET /debug/cardinality` (shaped like Prometheus'
//!   `/api/v1/status/tsdb`). The self-metrics registry does not hold trackers.

pub mod report;
pub mod table;
pub mod tracker;

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::{Deserialize, Serialize};

/// What happens to points of a series the limits refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Fold into one series per metric carrying `otel.metric.overflow="true"`.
    #[default]
    Overflow,
    /// Remove the points (reported through `partial_success`).
    Drop,
    /// Remove the offending label and keep the point if the reduced series fits.
    StripLabel,
    /// Count only; the points pass unchanged (a rollout mode).
    Passive,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Overflow,
        Action::Drop,
        Action::StripLabel,
        Action::Passive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Overflow => "overflow",
            Action::Drop => "drop",
            Action::StripLabel => "strip_label",
            Action::Passive => "passive",
        }
    }
    pub fn idx(self) -> usize {
        self as usize
    }
}

/// Which limit refused a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The tracker's `max_series`.
    Global,
    /// The metric's own limit (`max_series_per_metric` or a `per_metric` override).
    PerMetric,
    /// A `label_value_limits` entry; the index names the label in the tracker's list.
    LabelValues(usize),
}

impl Reason {
    pub const NAMES: [&'static str; 3] = ["global", "per_metric", "label_values"];
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self.idx()]
    }
    pub fn idx(self) -> usize {
        match self {
            Reason::Global => 0,
            Reason::PerMetric => 1,
            Reason::LabelValues(_) => 2,
        }
    }
}

/// How the tracker accounts series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A hash set of series keys: exact counts, ~30 bytes per tracked series.
    #[default]
    Exact,
    /// Two rotating Bloom filters (one byte per series each, 5 hashes): ~2 bytes per series at
    /// `max_series`; a new series is wrongly taken for a known one (admitted over the limit)
    /// with probability ≤ ~2% per generation at full load, less below it.
    Probabilistic,
}

/// The attribute that marks an overflow series (OTel SDK convention).
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// Resource attributes that identify a series' source (the Prometheus `job` / `instance`).
pub const IDENTIFYING_RESOURCE_KEYS: [&str; 3] =
    ["service.name", "service.namespace", "service.instance.id"];

fn state() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6f74_656c_6777_0001)
}

/// Hash of a string (metric names).
pub fn hash_str(s: &str) -> u64 {
    let mut h = state().build_hasher();
    h.write(s.as_bytes());
    h.finish()
}

fn hash_any(h: &mut impl Hasher, v: Option<&AnyValue>) {
    use crate::wire::points::Scalar;
    let Some(v) = v.and_then(|v| v.value.as_ref()) else {
        return hash_scalar(h, Scalar::Empty);
    };
    match v {
        any_value::Value::StringValue(s) => hash_scalar(h, Scalar::Str(s.as_bytes())),
        any_value::Value::BoolValue(b) => hash_scalar(h, Scalar::Bool(*b)),
        any_value::Value::IntValue(i) => hash_scalar(h, Scalar::Int(*i)),
        any_value::Value::DoubleValue(d) => hash_scalar(h, Scalar::Double(*d)),
        any_value::Value::BytesValue(b) => hash_scalar(h, Scalar::Bytes(b)),
        any_value::Value::ArrayValue(a) => {
            h.write_u8(7);
            for v in &a.values {
                hash_any(h, Some(v));
            }
        }
        any_value::Value::KvlistValue(l) => {
            h.write_u8(8);
            h.write_u64(attrs_hash(&l.values, &[]));
        }
        any_value::Value::StringValueStrindex(i) => {
            h.write_u8(9);
            h.write_i32(*i);
        }
    }
}

/// Hashes a scalar value: the one definition the decoded and the encoded paths share.
fn hash_scalar(h: &mut impl Hasher, v: crate::wire::points::Scalar<'_>) {
    use crate::wire::points::Scalar;
    match v {
        Scalar::Empty => h.write_u8(0),
        Scalar::Str(s) => {
            h.write_u8(1);
            h.write(s);
        }
        Scalar::Bool(b) => h.write_u8(2 + b as u8),
        Scalar::Int(i) => {
            h.write_u8(4);
            h.write_i64(i);
        }
        Scalar::Double(d) => {
            h.write_u8(5);
            h.write_u64(d.to_bits());
        }
        Scalar::Bytes(b) => {
            h.write_u8(6);
            h.write(b);
        }
    }
}

/// Hash of one attribute (key and value).
pub fn kv_hash(kv: &KeyValue) -> u64 {
    let mut h = state().build_hasher();
    h.write(kv.key.as_bytes());
    h.write_u8(0xff);
    hash_any(&mut h, kv.value.as_ref());
    h.finish()
}

/// [`kv_hash`] of an attribute read from an encoded request, and its key's bytes; `None` for
/// an attribute that does not decode (not reached after `wire::scan`).
pub fn wire_kv_hash(a: crate::wire::points::Attr<'_>) -> Option<(u64, Cow<'_, [u8]>)> {
    use crate::wire::points::Attr;
    match a {
        Attr::Plain { key, value } => {
            let mut h = state().build_hasher();
            h.write(key);
            h.write_u8(0xff);
            hash_scalar(&mut h, value);
            Some((h.finish(), Cow::Borrowed(key)))
        }
        Attr::Encoded(b) => {
            let kv = <KeyValue as prost::Message>::decode(b).ok()?;
            Some((kv_hash(&kv), Cow::Owned(kv.key.into_bytes())))
        }
    }
}

/// [`attrs_hash`] of attributes read from an encoded request.
pub fn wire_attrs_hash(attrs: crate::wire::points::Attrs<'_>, excluded: &[String]) -> Option<u64> {
    wire_sum(attrs, |k| !excluded.iter().any(|e| e.as_bytes() == k))
}

/// [`resource_hash`] of a resource's attributes read from an encoded request.
pub fn wire_resource_hash(attrs: crate::wire::points::Attrs<'_>) -> Option<u64> {
    wire_sum(attrs, |k| {
        IDENTIFYING_RESOURCE_KEYS.iter().any(|i| i.as_bytes() == k)
    })
    .map(mix)
}

/// The sum of [`wire_kv_hash`] over the attributes whose key `keep` accepts.
fn wire_sum(attrs: crate::wire::points::Attrs<'_>, keep: impl Fn(&[u8]) -> bool) -> Option<u64> {
    let mut sum = 0u64;
    let mut ok = true;
    attrs.each(|a| match wire_kv_hash(a) {
        Some((h, k)) if keep(&k) => sum = sum.wrapping_add(h),
        Some(_) => {}
        None => ok = false,
    })?;
    ok.then_some(sum)
}

/// Hash of an attribute value alone (distinct-value counting).
pub fn value_hash(v: &Option<AnyValue>) -> u64 {
    let mut h = state().build_hasher();
    hash_any(&mut h, v.as_ref());
    h.finish()
}

/// Order-independent hash of an attribute set, leaving out `excluded` keys. Sums per-attribute
/// hashes (commutative), so no sorting and no allocation.
pub fn attrs_hash(attrs: &[KeyValue], excluded: &[String]) -> u64 {
    let mut sum = 0u64;
    for kv in attrs {
        if !excluded.is_empty() && excluded.contains(&kv.key) {
            continue;
        }
        sum = sum.wrapping_add(kv_hash(kv));
    }
    sum
}

/// Hash of the identifying resource attributes (see [`IDENTIFYING_RESOURCE_KEYS`]).
pub fn resource_hash(res: Option<&Resource>) -> u64 {
    let mut sum = 0u64;
    if let Some(r) = res {
        for kv in &r.attributes {
            if IDENTIFYING_RESOURCE_KEYS.contains(&kv.key.as_str()) {
                sum = sum.wrapping_add(kv_hash(kv));
            }
        }
    }
    mix(sum)
}

/// Combines parts into one well-mixed 64-bit key.
pub fn combine(a: u64, b: u64) -> u64 {
    mix(a ^ b.rotate_left(23).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A 64-bit finaliser (splitmix64).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The identity of one series: `base` (metric name, scope, resource identity combined by the
/// caller) plus the point's attributes.
pub fn series_key(base: u64, attrs: &[KeyValue], excluded: &[String]) -> u64 {
    combine(base, attrs_hash(attrs, excluded))
}

/// A short `{k="v",…}` rendering of attributes, for sample offending values in reports.
pub fn render_attrs(attrs: &[KeyValue], max_len: usize) -> String {
    let mut out = String::from("{");
    for (i, kv) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&kv.key);
        out.push_str("=\"");
        out.push_str(&crate::exporters::prometheus::translate::value_string(
            &kv.value,
        ));
        out.push('"');
        if out.len() > max_len {
            let mut cut = max_len;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            return out;
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{kv, s};

    #[test]
    fn attribute_order_does_not_change_the_key() {
        let a = vec![kv("a", s("1")), kv("b", s("2"))];
        let b = vec![kv("b", s("2")), kv("a", s("1"))];
        assert_eq!(series_key(7, &a, &[]), series_key(7, &b, &[]));
        let c = vec![kv("a", s("2")), kv("b", s("1"))];
        assert_ne!(series_key(7, &a, &[]), series_key(7, &c, &[]));
        assert_ne!(series_key(7, &a, &[]), series_key(8, &a, &[]));
    }

    #[test]
    fn excluded_labels_do_not_count() {
        let a = vec![kv("a", s("1")), kv("tenant", s("x"))];
        let b = vec![kv("a", s("1")), kv("tenant", s("y"))];
        let ex = vec!["tenant".to_string()];
        assert_eq!(series_key(1, &a, &ex), series_key(1, &b, &ex));
        assert_ne!(series_key(1, &a, &[]), series_key(1, &b, &[]));
    }

    #[test]
    fn value_types_are_distinguished() {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let a = vec![kv("a", Value::IntValue(1))];
        let b = vec![kv("a", s("1"))];
        assert_ne!(attrs_hash(&a, &[]), attrs_hash(&b, &[]));
    }

    #[test]
    fn render_truncates_on_char_boundary() {
        let a = vec![kv("k", s("ééééééééééééé"))];
        let r = render_attrs(&a, 8);
        assert!(r.ends_with('…'), "{r}");
        assert!(r.len() <= 8 + '…'.len_utf8());
    }
}
