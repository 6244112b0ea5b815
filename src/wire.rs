//! Checks and counts an OTLP request's protobuf encoding: [`scan`].
//!
//! This first version decodes with prost to answer (the reference behaviour); the allocation-free
//! walker that replaces it must accept exactly the same bytes.
use crate::data::{Signal, Telemetry};

/// What a scan found: items (spans, data points, log records) and how many of them have
/// malformed ids ([`crate::receivers::handle::drop_invalid_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    pub items: u64,
    pub bad_ids: u64,
}

/// Why bytes are not a valid request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

/// Checks `buf` as a `signal` export request.
pub fn scan(signal: Signal, buf: &[u8]) -> Result<Scan, WireError> {
    let mut t = Telemetry::decode_proto(signal, buf).map_err(|e| WireError(e.to_string()))?;
    let items = t.item_count();
    let mut r = crate::processors::Rejections::default();
    crate::receivers::handle::drop_invalid_ids(&mut t, &mut r);
    Ok(Scan {
        items,
        bad_ids: r.count,
    })
}
