//! The group-commit writer: one thread takes every waiting append, writes them with one
//! `write(2)` per segment touched, syncs as the `fsync` mode says, rolls segments at
//! `segment_size` (or early, under disk pressure, when the active one is all delivered), then
//! makes the records visible to consumers and answers every caller.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::record::{
    ack_path, seg_path, tag, MAGIC, MAX_RECORD, PAYLOAD_HEADER, RECORD_HEADER, SEGMENT_HEADER,
};
use super::{io_err, Fsync, PersistentQueue, QueueError, RecordId, Segment};
use crate::component::Signal;

/// Appends written by one write(2) / fsync at most.
const MAX_GROUP: usize = 4096;

/// One append waiting for the writer thread.
pub(super) struct Append {
    signal: Signal,
    items: u64,
    body: Bytes,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

impl PersistentQueue {
    /// Creates segment `seq` (header written) and registers it as the active segment.
    pub(super) fn create_segment(&self, seq: u64) -> Result<ActiveSegment, QueueError> {
        let path = seg_path(&self.dir, seq);
        let apath = ack_path(&self.dir, seq);
        let mut w = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_err("create segment", &path, e))?;
        w.write_all(MAGIC)
            .map_err(|e| io_err("write segment", &path, e))?;
        let r = File::open(&path).map_err(|e| io_err("open segment", &path, e))?;
        let ack = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&apath)
            .map_err(|e| io_err("create ack file", &apath, e))?;
        if self.opts.fsync != Fsync::Never {
            // A synced record in a file whose directory entry was never synced can vanish with
            // a power loss: make the new names durable before anything is written into them.
            w.sync_all().map_err(|e| io_err("sync segment", &path, e))?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("sync directory", &self.dir, e))?;
        }
        let mut st = self.lock_state();
        st.disk_bytes += SEGMENT_HEADER;
        st.segments.insert(
            seq,
            Segment {
                file: Arc::new(r),
                ack,
                path: path.clone(),
                ack_path: apath,
                unacked: 0,
                sealed: false,
                bytes: SEGMENT_HEADER,
            },
        );
        Ok(ActiveSegment {
            seq,
            file: w,
            path,
            size: SEGMENT_HEADER,
        })
    }

    /// Appends a record; returns once it is as durable as the `fsync` mode promises.
    pub async fn append(&self, signal: Signal, items: u64, body: Bytes) -> Result<(), QueueError> {
        if body.len() + PAYLOAD_HEADER > MAX_RECORD as usize {
            return Err(QueueError::TooLarge(body.len()));
        }
        let (reply, rx) = oneshot::channel();
        {
            let tx = self.lock_writer_tx();
            let Some(tx) = tx.as_ref() else {
                return Err(QueueError::Closed);
            };
            tx.send(Append {
                signal,
                items,
                body,
                reply,
            })
            .map_err(|_| QueueError::Closed)?;
        }
        rx.await.map_err(|_| QueueError::Closed)?
    }

    pub(super) fn writer_loop(
        self: Arc<Self>,
        rx: std_mpsc::Receiver<Append>,
        mut active: ActiveSegment,
    ) {
        let mut dirty_since: Option<Instant> = None;
        loop {
            let first = match (self.opts.fsync, dirty_since) {
                (Fsync::Batch(interval), Some(since)) => {
                    match rx.recv_timeout(interval.saturating_sub(since.elapsed())) {
                        Ok(a) => a,
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {
                            active.sync();
                            dirty_since = None;
                            continue;
                        }
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match rx.recv() {
                    Ok(a) => a,
                    Err(_) => break,
                },
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(a) => group.push(a),
                    Err(_) => break,
                }
            }
            self.write_group(&mut active, group);
            if let Fsync::Batch(interval) = self.opts.fsync {
                let since = *dirty_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= interval {
                    active.sync();
                    dirty_since = None;
                }
            }
        }
        if self.opts.fsync != Fsync::Never {
            active.sync();
        }
    }

    /// Writes a group of appends with one write(2) per segment touched (one sync with
    /// `Always`), then publishes the records and answers every caller.
    fn write_group(&self, active: &mut ActiveSegment, group: Vec<Append>) {
        let mut buf: Vec<u8> = Vec::new();
        // (id, payload len, reply) for records in `buf` or already written this round.
        let mut placed: Vec<Placed> = Vec::with_capacity(group.len());
        let mut failed: Option<QueueError> = None;
        if self.opts.max_size > 0 && active.size > SEGMENT_HEADER {
            // Under disk pressure, a delivered active segment is rolled away so its space comes
            // back (otherwise a queue smaller than one segment would stay full forever).
            let wanted: u64 = group
                .iter()
                .map(|a| RECORD_HEADER + (PAYLOAD_HEADER + a.body.len()) as u64)
                .sum();
            let (pressure, delivered) = {
                let st = self.lock_state();
                (
                    st.disk_bytes + wanted > self.opts.max_size,
                    st.segments.get(&active.seq).is_some_and(|s| s.unacked == 0),
                )
            };
            if pressure && delivered {
                if let Err(e) = self.roll(active, &mut buf, &mut placed) {
                    tracing::error!(error = %e, "persistent queue cannot roll to a new segment");
                }
            }
        }
        for a in group {
            let len = (PAYLOAD_HEADER + a.body.len()) as u32;
            let rec_bytes = RECORD_HEADER + len as u64;
            if let Some(e) = &failed {
                let _ = a.reply.send(Err(e.clone()));
                continue;
            }
            {
                let mut st = self.lock_state();
                if self.opts.max_size > 0 && st.disk_bytes + rec_bytes > self.opts.max_size {
                    let used = st.disk_bytes;
                    drop(st);
                    let _ = a.reply.send(Err(QueueError::Full {
                        used,
                        max: self.opts.max_size,
                    }));
                    continue;
                }
                st.disk_bytes += rec_bytes;
            }
            let pos = active.size + buf.len() as u64;
            if pos > SEGMENT_HEADER && pos + rec_bytes > self.opts.segment_size {
                // Roll: finish the current segment, then continue in a new one.
                if let Err(e) = self.roll(active, &mut buf, &mut placed) {
                    tracing::error!(error = %e, "persistent queue cannot roll to a new segment");
                    self.lock_state().disk_bytes -= rec_bytes;
                    let _ = a.reply.send(Err(e.clone()));
                    failed = Some(e);
                    continue;
                }
            }
            let off = active.size + buf.len() as u64;
            let mut h = crc32fast::Hasher::new();
            let items = u32::try_from(a.items).unwrap_or(u32::MAX).to_le_bytes();
            let tagb = [tag(a.signal)];
            h.update(&tagb);
            h.update(&items);
            h.update(&a.body);
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&h.finalize().to_le_bytes());
            buf.extend_from_slice(&tagb);
            buf.extend_from_slice(&items);
            buf.extend_from_slice(&a.body);
            placed.push((
                RecordId {
                    seg: active.seq,
                    off,
                },
                len,
                u32::from_le_bytes(items),
                a.reply,
            ));
        }
        let res = active.write(&buf).and_then(|_| match self.opts.fsync {
            Fsync::Always => active.sync_result(),
            _ => Ok(()),
        });
        self.publish(active.seq, placed, res);
    }

    /// Writes `buf` to the active segment, syncs it (unless `Never`), seals it, starts the next.
    fn roll(
        &self,
        active: &mut ActiveSegment,
        buf: &mut Vec<u8>,
        placed: &mut Vec<Placed>,
    ) -> Result<(), QueueError> {
        let res = active.write(buf).and_then(|_| match self.opts.fsync {
            Fsync::Never => Ok(()),
            _ => active.sync_result(),
        });
        buf.clear();
        self.publish(active.seq, std::mem::take(placed), res.clone());
        res?;
        let next = self.create_segment(active.seq + 1)?;
        let old = std::mem::replace(active, next);
        let mut st = self.lock_state();
        let mut empty = false;
        if let Some(seg) = st.segments.get_mut(&old.seq) {
            seg.sealed = true;
            empty = seg.unacked == 0;
        }
        if empty {
            Self::delete_segment(&mut st, old.seq);
        }
        Ok(())
    }

    /// Makes written records visible to consumers and answers their callers.
    fn publish(&self, seq: u64, placed: Vec<Placed>, res: Result<(), QueueError>) {
        if placed.is_empty() {
            return;
        }
        let mut st = self.lock_state();
        match &res {
            Ok(()) => {
                let mut added = 0u64;
                for (id, len, items, _) in &placed {
                    st.pending.push_back((*id, *len, *items));
                    added += RECORD_HEADER + *len as u64;
                }
                if let Some(seg) = st.segments.get_mut(&seq) {
                    seg.unacked += placed.len() as u64;
                    seg.bytes += added;
                }
            }
            Err(_) => {
                let lost: u64 = placed
                    .iter()
                    .map(|(_, len, _, _)| RECORD_HEADER + *len as u64)
                    .sum();
                st.disk_bytes = st.disk_bytes.saturating_sub(lost);
            }
        }
        let b = st.disk_bytes;
        drop(st);
        self.metrics.disk_bytes.set(b as i64);
        self.ready.notify_waiters();
        for (_, _, _, reply) in placed {
            let _ = reply.send(res.clone());
        }
    }
}

/// A record written in this group: its id, payload length, and the caller waiting for it.
type Placed = (RecordId, u32, u32, oneshot::Sender<Result<(), QueueError>>);

/// The segment the writer appends to.
pub(super) struct ActiveSegment {
    seq: u64,
    file: File,
    path: PathBuf,
    size: u64,
}

impl ActiveSegment {
    fn write(&mut self, buf: &[u8]) -> Result<(), QueueError> {
        if buf.is_empty() {
            return Ok(());
        }
        match self.file.write_all(buf) {
            Ok(()) => {
                self.size += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut a partial write off so the next record starts at a known offset.
                let _ = self.file.set_len(self.size);
                let _ = std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.size));
                Err(io_err("write segment", &self.path, e))
            }
        }
    }

    fn sync_result(&mut self) -> Result<(), QueueError> {
        self.file
            .sync_data()
            .map_err(|e| io_err("sync segment", &self.path, e))
    }

    fn sync(&mut self) {
        if let Err(e) = self.sync_result() {
            tracing::error!(error = %e, "persistent queue sync failed");
        }
    }
}
