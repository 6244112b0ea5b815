//! The consumers' side: [`PersistentQueue::next`] reads records back in shared read-ahead runs
//! (checking each checksum again: damage after the start scan is reported, not delivered), and
//! [`PersistentQueue::ack`] records a delivery and deletes a sealed segment once all of it is
//! delivered.

use std::io::Write;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

use super::record::{untag, valid_at, PAYLOAD_HEADER, RECORD_HEADER};
use super::{PersistentQueue, Record, RecordId};
use crate::component::Signal;

/// Records read back from disk by one blocking task at most.
const READ_AHEAD: usize = 256;
/// Bytes read back by one blocking task at most (one record always, however large).
const READ_AHEAD_BYTES: u64 = 4 << 20;

impl PersistentQueue {
    /// The next undelivered record, oldest first; waits for one. `None` once reading stopped.
    ///
    /// Records are read back in runs (up to [`READ_AHEAD`] records or [`READ_AHEAD_BYTES`]) by
    /// one blocking task, and the run is shared by every consumer: one thread hop per run
    /// instead of per record. Read-ahead records are still on disk and unacked until delivered.
    pub async fn next(&self) -> Option<Record> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let run = {
                let mut st = self.lock_state();
                if st.reading_stopped {
                    return None;
                }
                if let Some(r) = st.read_ahead.pop_front() {
                    return Some(r);
                }
                let mut run = Vec::new();
                let mut bytes = 0u64;
                while run.len() < READ_AHEAD && (run.is_empty() || bytes < READ_AHEAD_BYTES) {
                    let Some((id, len, items)) = st.pending.pop_front() else {
                        break;
                    };
                    if let Some(seg) = st.segments.get(&id.seg) {
                        bytes += len as u64;
                        run.push((id, len, items, seg.file.clone()));
                    }
                }
                run
            };
            if run.is_empty() {
                notified.await;
                continue;
            }
            let read = tokio::task::spawn_blocking(move || {
                run.into_iter()
                    .map(|(id, len, items, file)| {
                        let mut buf = vec![0u8; RECORD_HEADER as usize + len as usize];
                        let res = file.read_exact_at(&mut buf, id.off).map(|_| buf);
                        (id, len, items, res)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(read) = read else { return None };
            let mut records = Vec::with_capacity(read.len());
            for (id, len, items, res) in read {
                // What a damaged record still tells its consumer: how big it was.
                let damaged = Record {
                    id,
                    signal: Signal::Traces,
                    items: items as u64,
                    body: Bytes::new(),
                    body_len: (len as usize).saturating_sub(PAYLOAD_HEADER),
                    damaged: true,
                };
                match res {
                    Ok(buf) if valid_at(&buf, 0).is_some() => {
                        let payload = Bytes::from(buf).slice(RECORD_HEADER as usize..);
                        let signal = untag(payload[0]).unwrap_or(Signal::Traces);
                        let items =
                            u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                        records.push(Record {
                            id,
                            signal,
                            items: items as u64,
                            body_len: payload.len() - PAYLOAD_HEADER,
                            body: payload.slice(PAYLOAD_HEADER..),
                            damaged: false,
                        });
                    }
                    Ok(_) => {
                        tracing::error!(
                            segment = id.seg,
                            offset = id.off,
                            "persistent queue record fails its checksum on read; skipped"
                        );
                        self.metrics.corrupt.inc();
                        self.ack(id);
                        records.push(damaged);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, segment = id.seg, offset = id.off, "cannot read persistent queue record; skipped");
                        self.metrics.corrupt.inc();
                        self.ack(id);
                        records.push(damaged);
                    }
                }
            }
            let mut records = records.into_iter();
            let first = records.next();
            let more = {
                let mut st = self.lock_state();
                // Ahead of anything another consumer read later, behind what it read earlier.
                st.read_ahead.extend(records);
                !st.read_ahead.is_empty()
            };
            if more {
                self.ready.notify_waiters();
            }
            if let Some(r) = first {
                return Some(r);
            }
        }
    }

    /// Marks a record delivered. Its segment goes once every record in it is acked.
    pub fn ack(&self, id: RecordId) {
        let mut st = self.lock_state();
        let mut gone = None;
        if let Some(seg) = st.segments.get_mut(&id.seg) {
            if let Err(e) = seg.ack.write_all(&id.off.to_le_bytes()) {
                tracing::error!(error = %e, file = %seg.ack_path.display(), "cannot record a delivered record; it may be delivered again after a restart");
            }
            seg.unacked = seg.unacked.saturating_sub(1);
            if seg.sealed && seg.unacked == 0 {
                gone = Some(id.seg);
            }
        }
        if let Some(seq) = gone {
            Self::delete_segment(&mut st, seq);
        }
        let b = st.disk_bytes;
        drop(st);
        self.metrics.disk_bytes.set(b as i64);
    }
}
