//! The on-disk format: segment files (`<seq:016>.wal`, magic header), ack files
//! (`<seq:016>.ack`), and records `[len][crc32][signal][items][protobuf]` with their checksum
//! checks. Pure functions and constants; no I/O.

use std::path::{Path, PathBuf};

use crate::component::Signal;

pub(super) const MAGIC: &[u8; 8] = b"OGWWAL01";
pub(super) const SEGMENT_HEADER: u64 = MAGIC.len() as u64;
pub(super) const RECORD_HEADER: u64 = 8;
/// The payload's own header: signal tag and item count.
pub(super) const PAYLOAD_HEADER: usize = 5;
/// The largest record payload accepted (a sanity bound for the length field).
pub const MAX_RECORD: u32 = 256 << 20;

pub(super) fn tag(s: Signal) -> u8 {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

pub(super) fn untag(t: u8) -> Option<Signal> {
    match t {
        0 => Some(Signal::Traces),
        1 => Some(Signal::Metrics),
        2 => Some(Signal::Logs),
        _ => None,
    }
}

pub(super) fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.wal"))
}

pub(super) fn ack_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.ack"))
}

/// The checksum of a record's payload.
pub(super) fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

/// Reads the record header at `off`: `Some((len, crc))` when it fits in `data`.
pub(super) fn header_at(data: &[u8], off: usize) -> Option<(u32, u32)> {
    let h = data.get(off..off + RECORD_HEADER as usize)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Some((len, crc))
}

/// A complete record with a valid checksum starts at `off`: its payload length.
pub(super) fn valid_at(data: &[u8], off: usize) -> Option<u32> {
    let (len, crc) = header_at(data, off)?;
    if len < PAYLOAD_HEADER as u32 || len > MAX_RECORD {
        return None;
    }
    let start = off + RECORD_HEADER as usize;
    let payload = data.get(start..start + len as usize)?;
    (checksum(payload) == crc && untag(payload[0]).is_some()).then_some(len)
}
