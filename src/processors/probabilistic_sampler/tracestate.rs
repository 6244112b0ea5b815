//! The W3C `tracestate` of a span, read as the OTel spec's tracestate handling describes it:
//! vendor entries kept in order, the `ot` entry split into `rv` (randomness), `th` (threshold)
//! and any other OTel keys (kept). Sampling information on log records (`sampling.threshold`,
//! `sampling.randomness` attributes) uses the same [`OtelEntry`].
//!
//! Written back as the Collector writes it: the `ot` entry first (`rv`, then `th`, then the
//! other keys), then the other vendors' entries in their order; empty members are dropped.

use super::threshold::{Randomness, SamplingError, Threshold};

/// W3C limits.
const MAX_LENGTH: usize = 1024;
const MAX_MEMBERS: usize = 32;
const MAX_KEY: usize = 256;
const MAX_TENANT: usize = 241;
const MAX_SYSTEM: usize = 14;
const MAX_VALUE: usize = 256;
/// The OTel entry's own limit.
const MAX_OTEL_LENGTH: usize = 256;

/// A parsed `tracestate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceState {
    pub ot: OtelEntry,
    others: Vec<(String, String)>,
}

/// The sampling state an item carries: the `ot=` tracestate entry, or a log record's
/// `sampling.*` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtelEntry {
    /// `rv`: as it was written (upper case passes through), or `None` text when this processor
    /// set it (written in lower case only if the item is kept).
    rv: Option<(Option<String>, Randomness)>,
    /// `th`, as it was written until this processor updates it.
    th: Option<(String, Threshold)>,
    extra: Vec<(String, String)>,
    /// Set by this processor (log records write only what changed).
    th_updated: bool,
}

impl TraceState {
    /// Parses a `tracestate` header value (empty is fine).
    pub fn parse(input: &str) -> Result<TraceState, SamplingError> {
        let mut ts = TraceState::default();
        if input.is_empty() {
            return Ok(ts);
        }
        if input.len() > MAX_LENGTH {
            return Err(SamplingError::TraceStateSize);
        }
        let mut members = 0;
        for member in input.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue; // W3C allows empty list members
            }
            members += 1;
            if members > MAX_MEMBERS {
                return Err(SamplingError::TraceStateCount);
            }
            let (key, value) = member.split_once('=').ok_or(SamplingError::Syntax)?;
            check_key(key)?;
            if !valid_value(value) {
                return Err(SamplingError::Syntax);
            }
            if key == "ot" {
                ts.ot = OtelEntry::parse(value)?;
            } else {
                ts.others.push((key.to_string(), value.to_string()));
            }
        }
        Ok(ts)
    }

    /// The header value.
    pub fn serialize(&self) -> String {
        let mut parts = Vec::with_capacity(self.others.len() + 1);
        if self.ot.has_any() {
            parts.push(format!("ot={}", self.ot.serialize()));
        }
        parts.extend(self.others.iter().map(|(k, v)| format!("{k}={v}")));
        parts.join(",")
    }
}

impl OtelEntry {
    /// Parses the value of the `ot` entry (`key:value` members separated by `;`).
    pub fn parse(input: &str) -> Result<OtelEntry, SamplingError> {
        if input.len() > MAX_OTEL_LENGTH {
            return Err(SamplingError::TraceStateSize);
        }
        if input.is_empty() || input.ends_with(';') {
            return Err(SamplingError::Syntax);
        }
        let mut e = OtelEntry::default();
        for member in input.split(';') {
            let (key, value) = member.split_once(':').ok_or(SamplingError::Syntax)?;
            if !valid_otel_key(key) || !value.bytes().all(otel_value_char) {
                return Err(SamplingError::Syntax);
            }
            match key {
                "rv" => e.rv = Some((Some(value.to_string()), Randomness::parse_rvalue(value)?)),
                "th" => e.th = Some((value.to_string(), Threshold::parse_tvalue(value)?)),
                _ => e.extra.push((key.to_string(), value.to_string())),
            }
        }
        Ok(e)
    }

    /// A log record's `sampling.threshold` / `sampling.randomness` values (empty = absent).
    pub fn from_attributes(th: &str, rv: &str) -> Result<OtelEntry, SamplingError> {
        let mut e = OtelEntry::default();
        let mut err = None;
        if !th.is_empty() {
            match Threshold::parse_tvalue(th) {
                Ok(t) => e.th = Some((th.to_string(), t)),
                Err(x) => err = Some(x),
            }
        }
        if !rv.is_empty() {
            match Randomness::parse_rvalue(rv) {
                Ok(r) => e.rv = Some((Some(rv.to_string()), r)),
                Err(x) => err = Some(x),
            }
        }
        match err {
            Some(x) => Err(x),
            None => Ok(e),
        }
    }

    pub fn threshold(&self) -> Option<Threshold> {
        self.th.as_ref().map(|(_, t)| *t)
    }

    pub fn randomness(&self) -> Option<Randomness> {
        self.rv.as_ref().map(|(_, r)| *r)
    }

    /// Records explicit randomness (`hash_seed` mode does, so later samplers can use it).
    pub fn set_randomness(&mut self, r: Randomness) {
        self.rv = Some((None, r));
    }

    /// Drops an arriving threshold that contradicts the item's randomness.
    pub fn clear_threshold(&mut self) {
        self.th = None;
    }

    /// Records the threshold the item was sampled at. Sampling probability may only fall: a
    /// threshold lower than the one the item arrived with is refused (and nothing changes).
    pub fn update_threshold(&mut self, th: Threshold) -> Result<(), SamplingError> {
        if self.threshold().is_some_and(|old| old > th) {
            return Err(SamplingError::InconsistentSampling);
        }
        let tv = th.tvalue();
        self.th = (!tv.is_empty()).then_some((tv, th));
        self.th_updated = true;
        Ok(())
    }

    /// `rv` and `th` as written, when this processor set them (log records write these back).
    pub fn changed(&self) -> (Option<String>, Option<&str>) {
        let rv = self
            .rv
            .as_ref()
            .filter(|(text, _)| text.is_none())
            .map(rv_text);
        let th = self
            .th
            .as_ref()
            .filter(|_| self.th_updated)
            .map(|(s, _)| s.as_str());
        (rv, th)
    }

    fn has_any(&self) -> bool {
        self.rv.is_some() || self.th.is_some() || !self.extra.is_empty()
    }

    fn serialize(&self) -> String {
        let mut parts = Vec::with_capacity(self.extra.len() + 2);
        if let Some(rv) = &self.rv {
            parts.push(format!("rv:{}", rv_text(rv)));
        }
        if let Some((th, _)) = &self.th {
            parts.push(format!("th:{th}"));
        }
        parts.extend(self.extra.iter().map(|(k, v)| format!("{k}:{v}")));
        parts.join(";")
    }
}

fn rv_text((text, r): &(Option<String>, Randomness)) -> String {
    text.clone().unwrap_or_else(|| r.rvalue())
}

/// `key = simple-key / multi-tenant-key` with the W3C length limits.
fn check_key(key: &str) -> Result<(), SamplingError> {
    if key.len() > MAX_KEY {
        return Err(SamplingError::TraceStateSize);
    }
    let b = key.as_bytes();
    let ok = match key.split_once('@') {
        Some((tenant, system)) => {
            if tenant.len() > MAX_TENANT || system.len() > MAX_SYSTEM {
                return Err(SamplingError::TraceStateSize);
            }
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            !t.is_empty()
                && !s.is_empty()
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && s[0].is_ascii_lowercase()
                && t[1..].iter().all(|c| key_char(*c))
                && s[1..].iter().all(|c| key_char(*c))
        }
        None => !b.is_empty() && b[0].is_ascii_lowercase() && b[1..].iter().all(|c| key_char(*c)),
    };
    if ok {
        Ok(())
    } else {
        Err(SamplingError::Syntax)
    }
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII but `,` and `=`; spaces inside only.
fn valid_value(v: &str) -> bool {
    let b = v.as_bytes();
    let nonblank = |c: u8| (0x21..=0x7e).contains(&c) && c != b',' && c != b'=';
    match b.split_last() {
        Some((last, rest)) if b.len() <= MAX_VALUE => {
            nonblank(*last) && rest.iter().all(|c| *c == b' ' || nonblank(*c))
        }
        _ => false,
    }
}

/// OTel entry keys: a lower-case letter, then lower-case letters and digits.
fn valid_otel_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn otel_value_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
}
