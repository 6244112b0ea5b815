//! The arithmetic of consistent probability sampling (the OTel spec's "tracestate probability
//! sampling", OTEP 235) and of the Collector's `hash_seed` mode.
//!
//! - A [`Threshold`] is the number of 56-bit random values, out of 2^56, that are *rejected*:
//!   0 samples everything, 2^56 nothing. An item is sampled when `threshold <= randomness`.
//!   Encoded as the `th` value: up to 14 hex digits with trailing zeros dropped (`c` is
//!   0xc0000000000000, i.e. 25 %).
//! - A [`Randomness`] is 56 random bits: the last 7 bytes of a W3C trace id (trace context
//!   level 2), an explicit `rv` value (exactly 14 hex digits), or, in `hash_seed` mode, bits
//!   derived from the FNV-1a hash of the seed and the trace id (or a log attribute).

use std::fmt::Write as _;

/// 2^56: the number of distinct randomness values.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
/// Hex digits of a full-precision threshold or randomness value.
pub const NUM_HEX_DIGITS: u32 = 14;
/// The smallest sampling probability a threshold can express.
pub const MIN_PROBABILITY: f64 = 1.0 / MAX_ADJUSTED_COUNT as f64;

/// `hash_seed` mode keeps 14 bits of the hash (the Collector's `numHashBuckets`).
const HASH_BUCKETS_LG2: u32 = 14;
const HASH_BUCKETS: u32 = 1 << HASH_BUCKETS_LG2;
const HASH_MASK: u32 = HASH_BUCKETS - 1;

/// Why sampling information on an item could not be used. The messages are the Collector's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplingError {
    #[error("missing randomness")]
    MissingRandomness,
    #[error("inconsistent arriving threshold: item should not have been sampled")]
    InconsistentArrivingThreshold,
    #[error("item has sampling randomness, equalizing or proportional mode recommended")]
    RandomnessInUse,
    #[error("item has sampling threshold, equalizing or proportional mode recommended")]
    ThresholdInUse,
    #[error("cannot raise existing sampling probability")]
    InconsistentSampling,
    #[error("t-value exceeds 14 hex digits")]
    TValueSize,
    #[error("t-value is empty")]
    TValueEmpty,
    #[error("r-value must have 14 hex digits")]
    RValueSize,
    #[error("invalid tracestate size")]
    TraceStateSize,
    #[error("invalid tracestate item count")]
    TraceStateCount,
    #[error("invalid syntax")]
    Syntax,
}

/// Rejected randomness values out of 2^56 (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Threshold(u64);

impl Threshold {
    /// Samples everything (`th:0`).
    pub const ALWAYS: Threshold = Threshold(0);
    /// Samples nothing (has no `th` encoding).
    pub const NEVER: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// A threshold from its 56-bit value (`None` at 2^56 or above).
    pub fn from_unsigned(v: u64) -> Option<Threshold> {
        (v < MAX_ADJUSTED_COUNT).then_some(Threshold(v))
    }

    pub fn unsigned(self) -> u64 {
        self.0
    }

    /// The consistent decision: sampled when `threshold <= randomness`.
    pub fn should_sample(self, r: Randomness) -> bool {
        self.0 <= r.0
    }

    /// The sampling probability this threshold stands for.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// The `th` encoding: 14 hex digits without the trailing zeros; `0` for 100 %, empty for
    /// [`Threshold::NEVER`].
    pub fn tvalue(self) -> String {
        if self == Threshold::ALWAYS {
            return "0".into();
        }
        if self.0 >= MAX_ADJUSTED_COUNT {
            return String::new();
        }
        let mut s = hex14(self.0);
        let kept = s.trim_end_matches('0').len();
        s.truncate(kept);
        s
    }

    /// Parses a `th` value: 1 to 14 hex digits, the omitted trailing digits being zeros.
    pub fn parse_tvalue(s: &str) -> Result<Threshold, SamplingError> {
        if s.len() > NUM_HEX_DIGITS as usize {
            return Err(SamplingError::TValueSize);
        }
        if s.is_empty() {
            return Err(SamplingError::TValueEmpty);
        }
        let v = parse_hex(s)?;
        Ok(Threshold(v << (4 * (NUM_HEX_DIGITS - s.len() as u32))))
    }

    /// The threshold for sampling probability `fraction` with `precision` significant hex
    /// digits (0 means 14), rounded to nearest; `None` when `fraction` is outside
    /// [2^-56, 1]. Near 0 and near 1 the precision grows by one digit per leading `f` or `0`
    /// the threshold would have, so the relative error stays small (the Collector's
    /// `ProbabilityToThresholdWithPrecision`).
    pub fn from_probability(fraction: f64, precision: u32) -> Option<Threshold> {
        let mut precision = if precision == 0 {
            NUM_HEX_DIGITS
        } else {
            precision.min(NUM_HEX_DIGITS)
        } as i32;
        if !(MIN_PROBABILITY..=1.0).contains(&fraction) {
            return None;
        }
        if fraction == 1.0 {
            return Some(Threshold::ALWAYS);
        }
        let exp_f = frexp_exponent(fraction);
        let exp_r = frexp_exponent(1.0 - fraction);
        precision =
            (NUM_HEX_DIGITS as i32).min((precision + exp_f / -4).max(precision + exp_r / -4));
        // fraction · 2^56 is exact (a power-of-two scale); rounding half away from zero
        let scaled = (fraction * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let mut threshold = MAX_ADJUSTED_COUNT - scaled.min(MAX_ADJUSTED_COUNT);
        let shift = 4 * (NUM_HEX_DIGITS as i32 - precision);
        if shift > 0 {
            let half = 1u64 << (shift - 1);
            threshold = ((threshold + half) >> shift) << shift;
        }
        Some(Threshold(threshold.min(MAX_ADJUSTED_COUNT)))
    }
}

/// 56 random bits (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Randomness(u64);

impl Randomness {
    /// Sampled at every probability (what an item without randomness is compared with, so only
    /// [`Threshold::NEVER`] refuses it).
    pub const ALL: Randomness = Randomness(MAX_ADJUSTED_COUNT - 1);

    pub fn from_unsigned(v: u64) -> Option<Randomness> {
        (v < MAX_ADJUSTED_COUNT).then_some(Randomness(v))
    }

    pub fn unsigned(self) -> u64 {
        self.0
    }

    /// The randomness of a W3C trace id: its last 7 bytes, big-endian.
    pub fn from_trace_id(id: &[u8; 16]) -> Randomness {
        let mut low = [0u8; 8];
        low.copy_from_slice(&id[8..]);
        Randomness(u64::from_be_bytes(low) & (MAX_ADJUSTED_COUNT - 1))
    }

    /// Parses an `rv` value: exactly 14 hex digits (either case).
    pub fn parse_rvalue(s: &str) -> Result<Randomness, SamplingError> {
        if s.len() != NUM_HEX_DIGITS as usize {
            return Err(SamplingError::RValueSize);
        }
        Ok(Randomness(parse_hex(s)?))
    }

    /// The `rv` encoding: 14 lower-case hex digits.
    pub fn rvalue(self) -> String {
        hex14(self.0)
    }

    /// `hash_seed` mode: the FNV-1a hash of the seed and `data`, laid out so that the spec's
    /// `threshold <= randomness` test makes the Collector's legacy decision
    /// (`hash & 0x3fff < percentage · 163.84`). Most to least significant: 14 bits
    /// `0x3fff - hashed`, 28 bits mixed from the 18 unused hash bits, 14 bits `hashed`.
    pub fn from_hash(seed: u32, data: &[u8]) -> Randomness {
        let h = fnv1a_32(seed, data);
        let hashed = u64::from(h & HASH_MASK);
        let rprime = u64::from(HASH_MASK) - hashed;
        let unused18 = u64::from(h >> HASH_BUCKETS_LG2);
        let mixed28 = unused18 ^ (unused18 << 10);
        Randomness((rprime << 42) | (mixed28 << 14) | hashed)
    }
}

/// FNV-1a, 32 bits, over the seed's 4 little-endian bytes followed by `data` (the Collector's
/// `computeHash`).
pub fn fnv1a_32(seed: u32, data: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    seed.to_le_bytes()
        .iter()
        .chain(data)
        .fold(OFFSET, |h, b| (h ^ u32::from(*b)).wrapping_mul(PRIME))
}

/// `hash_seed` mode's threshold for a percentage (already capped at 100): the Collector scales
/// it to 14 bits in 32-bit float arithmetic and truncates (kept for decisions identical to every
/// Collector release). `None` when nothing can be sampled.
pub fn hash_seed_threshold(percentage: f32) -> Option<Threshold> {
    // 163.84 = 2^14 / 100, multiplied as f32 exactly as the Collector does
    let scaled = (percentage * 163.84_f32) as u32;
    if scaled == 0 {
        return None;
    }
    let reject = HASH_BUCKETS.saturating_sub(scaled);
    Some(Threshold(u64::from(reject) << 42))
}

/// The binary exponent of `x` > 0 as C's `frexp` reports it (`x = m · 2^e`, 0.5 ≤ m < 1).
fn frexp_exponent(x: f64) -> i32 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        // subnormal: normalise first (not reached for probabilities ≥ 2^-56)
        return frexp_exponent(x * f64::from(1u32 << 31) * f64::from(1u32 << 23)) - 54;
    }
    e - 1022
}

fn hex14(v: u64) -> String {
    let mut s = String::with_capacity(NUM_HEX_DIGITS as usize);
    let _ = write!(s, "{v:014x}");
    s
}

/// Hex digits only (no sign, no prefix), at most 16 of them (callers check the length).
fn parse_hex(s: &str) -> Result<u64, SamplingError> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SamplingError::Syntax);
    }
    u64::from_str_radix(s, 16).map_err(|_| SamplingError::Syntax)
}
