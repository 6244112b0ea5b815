//! The start scan: lists the segments in the directory, drops ack files whose segment is gone,
//! and walks every segment's records — skipping and counting corrupt ones, resyncing past an
//! impossible length, and ignoring a torn write at the end of the newest segment — so the
//! undelivered records are queued again (see "Opening" in the module docs of [`super`]).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::record::{
    ack_path, checksum, header_at, seg_path, untag, valid_at, MAGIC, MAX_RECORD, PAYLOAD_HEADER,
    RECORD_HEADER, SEGMENT_HEADER,
};
use super::{io_err, QueueError, RecordId, Recovery, Segment, State};

/// Scans `dir`: every undelivered record goes into `state`. Returns what was found and the
/// newest segment's sequence number.
pub(super) fn recover(
    dir: &Path,
    state: &mut State,
) -> Result<(Recovery, Option<u64>), QueueError> {
    let mut seqs = Vec::new();
    let mut acks = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err("read directory", dir, e))? {
        let entry = entry.map_err(|e| io_err("read directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            seqs.push(seq);
        } else if let Some(seq) = name
            .strip_suffix(".ack")
            .and_then(|s| s.parse::<u64>().ok())
        {
            acks.push(seq);
        }
    }
    seqs.sort_unstable();
    // Ack files whose segment is gone belong to a segment deleted just before a crash.
    for seq in acks {
        if seqs.binary_search(&seq).is_err() {
            let _ = fs::remove_file(ack_path(dir, seq));
        }
    }
    let newest = seqs.last().copied();
    let mut rec = Recovery::default();
    for &seq in &seqs {
        recover_segment(dir, seq, Some(seq) == newest, state, &mut rec)?;
    }
    Ok((rec, newest))
}

fn recover_segment(
    dir: &Path,
    seq: u64,
    newest: bool,
    state: &mut State,
    rec: &mut Recovery,
) -> Result<(), QueueError> {
    let path = seg_path(dir, seq);
    let apath = ack_path(dir, seq);
    let data = fs::read(&path).map_err(|e| io_err("read segment", &path, e))?;
    let acked: HashSet<u64> = match fs::read(&apath) {
        // A torn final ack entry (fewer than 8 bytes) is ignored: that record comes again.
        Ok(b) => b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        Err(_) => HashSet::new(),
    };
    if data.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        tracing::error!(segment = %path.display(), "persistent queue segment has a bad header; scanning it for valid records");
    }
    let mut unacked = 0u64;
    let mut off = SEGMENT_HEADER as usize;
    while off < data.len() {
        match header_at(&data, off) {
            Some((len, crc))
                if len >= PAYLOAD_HEADER as u32
                    && len <= MAX_RECORD
                    && off + RECORD_HEADER as usize + len as usize <= data.len() =>
            {
                let start = off + RECORD_HEADER as usize;
                let payload = &data[start..start + len as usize];
                if checksum(payload) != crc || untag(payload[0]).is_none() {
                    rec.corrupt += 1;
                    tracing::error!(segment = %path.display(), offset = off, "persistent queue record fails its checksum; skipped");
                } else if !acked.contains(&(off as u64)) {
                    let items =
                        u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                    state.pending.push_back((
                        RecordId {
                            seg: seq,
                            off: off as u64,
                        },
                        len,
                        items,
                    ));
                    unacked += 1;
                    rec.records += 1;
                    rec.items += items as u64;
                    rec.body_bytes += (len as usize - PAYLOAD_HEADER) as u64;
                }
                off = start + len as usize;
            }
            _ => {
                // The length cannot be right: find the next record that checks out.
                match (off + 1..data.len()).find(|&p| valid_at(&data, p).is_some()) {
                    Some(next) => {
                        rec.corrupt += 1;
                        tracing::error!(segment = %path.display(), offset = off, skipped_bytes = next - off, "persistent queue record has an impossible length; skipped to the next valid record");
                        off = next;
                    }
                    None if newest => {
                        rec.torn_bytes += (data.len() - off) as u64;
                        tracing::warn!(segment = %path.display(), offset = off, bytes = data.len() - off, "incomplete record at the end of the newest segment (torn write); ignored");
                        break;
                    }
                    None => {
                        rec.corrupt += 1;
                        tracing::error!(segment = %path.display(), offset = off, skipped_bytes = data.len() - off, "persistent queue segment ends in unreadable bytes; skipped");
                        break;
                    }
                }
            }
        }
    }
    if unacked == 0 {
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(&apath);
        return Ok(());
    }
    let file = File::open(&path).map_err(|e| io_err("open segment", &path, e))?;
    let ack = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&apath)
        .map_err(|e| io_err("open ack file", &apath, e))?;
    state.disk_bytes += data.len() as u64;
    state.segments.insert(
        seq,
        Segment {
            file: Arc::new(file),
            ack,
            path,
            ack_path: apath,
            unacked,
            sealed: true,
            bytes: data.len() as u64,
        },
    );
    Ok(())
}
