//! The persistent sending queue: a segmented, checksummed write-ahead log on local disk.
//!
//! **What comes in**: records (a signal tag, an item count and the batch's protobuf encoding)
//! appended by [`ExporterHandle::consume`](super::runner::ExporterHandle::consume).
//! **What goes out**: the same records, oldest first, to the exporter's consumers; a record is
//! removed only when a consumer [`acks`](PersistentQueue::ack) it (the backend accepted it, or
//! it failed permanently and was counted).
//!
//! **Layout** (one directory per exporter): segment files `<seq:016>.wal`, each starting with the
//! 8-byte magic `OGWWAL01`, then records `[len: u32 LE][crc32: u32 LE][payload: len bytes]`
//! where the payload is `[signal: u8][items: u32 LE][protobuf]`. Beside each segment an ack
//! file `<seq:016>.ack` lists the offsets (u64 LE) of its delivered records, in any order, so
//! several consumers may ack out of order. A segment rolls at `segment_size`; a sealed segment
//! whose records are all acked is deleted with its ack file.
//!
//! **Durability** (when [`append`](PersistentQueue::append) returns `Ok`, which is when the
//! receiver answers success):
//! - `Fsync::Always`: the record was written and `fdatasync`ed. Survives a process kill and a
//!   power loss. Appends that arrive together share one write and one sync (group commit: a
//!   single writer thread takes every waiting append, writes them, syncs once, wakes them all).
//! - `Fsync::Batch(interval)`: written with `write(2)` (in the OS page cache); synced at most
//!   `interval` later. Survives a process kill; a power loss may lose the last `interval`.
//! - `Fsync::Never`: written with `write(2)`; the OS syncs when it likes. Survives a process kill
//!   only.
//!
//! **Delivery is at-least-once**: an ack is a `write(2)` to the ack file, and a record whose
//! export succeeded but whose ack did not reach the file (kill -9 between the two, or power
//! loss with an unsynced ack file) is delivered again at the next start. A clean close syncs
//! every ack file, so a clean stop sends nothing twice.
//!
//! **Opening** scans every segment: records whose checksum fails are skipped, counted
//! (`corrupt`) and logged, and the rest is delivered. A length field that cannot be right
//! (zero, above [`MAX_RECORD`], or past the end of the file) makes the scan look for the next
//! offset where a record with a valid checksum starts (resync), counting one corrupt record for
//! the skipped span. In the newest segment, bytes at the end that do not form a complete record
//! are a torn write from a crash (the append never returned `Ok`, so no client was told its data
//! was kept): they are counted as `torn_bytes`, not as corrupt records.
//!
//! **Bounds**: `max_size` caps the bytes of segment files on disk. An append that would exceed
//! it fails with [`QueueError::Full`]; data already queued is never dropped to make room. In
//! memory the queue keeps 20 bytes per undelivered record (position, length, items), plus at most one
//! read-ahead run (256 records or 4 MiB) of payloads per consumer reading.
//!
//! One process per directory: nothing here locks the directory against a second otelgw.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

use crate::data::Signal;
use crate::telemetry::metrics::{Counter, Gauge};

const MAGIC: &[u8; 8] = b"OGWWAL01";
const SEGMENT_HEADER: u64 = MAGIC.len() as u64;
const RECORD_HEADER: u64 = 8;
/// The payload's own header: signal tag and item count.
const PAYLOAD_HEADER: usize = 5;
/// The largest record payload accepted (a sanity bound for the length field).
pub const MAX_RECORD: u32 = 256 << 20;
/// Records read back from disk by one blocking task at most.
const READ_AHEAD: usize = 256;
/// Bytes read back by one blocking task at most (one record always, however large).
const READ_AHEAD_BYTES: u64 = 4 << 20;
/// Appends written by one write(2) / fsync at most.
const MAX_GROUP: usize = 4096;

/// When the log is synced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Batch(Duration),
    Never,
}

/// How a queue is opened.
#[derive(Debug, Clone)]
pub struct Options {
    pub fsync: Fsync,
    /// Bytes of segment files on disk at most (0: no limit).
    pub max_size: u64,
    /// A segment rolls once it would grow past this.
    pub segment_size: u64,
}

/// Self-metric cells the queue keeps up to date.
#[derive(Clone, Default)]
pub struct QueueMetrics {
    pub disk_bytes: Gauge,
    pub corrupt: Counter,
    pub recovered: Counter,
}

/// Where a record lives: segment sequence number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    seg: u64,
    off: u64,
}

/// One record handed to a consumer.
#[derive(Debug)]
pub struct Record {
    pub id: RecordId,
    pub signal: Signal,
    pub items: u64,
    /// The batch's protobuf encoding.
    pub body: Bytes,
    /// Bytes of the body as appended (also for a damaged record, whose body is empty).
    pub body_len: usize,
    /// The record failed its checksum when read back (disk damage after the start scan): it
    /// was counted as corrupt and removed; only `items` and `body_len` are meaningful, so the
    /// caller can give back the queue capacity it held.
    pub damaged: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("persistent queue is full: {used} of {max} bytes on disk")]
    Full { used: u64, max: u64 },
    #[error("record of {0} bytes is larger than the persistent queue accepts")]
    TooLarge(usize),
    #[error("persistent queue i/o error: {0}")]
    Io(String),
    #[error("persistent queue is closed")]
    Closed,
}

impl QueueError {
    /// A low-cardinality label.
    pub fn kind(&self) -> &'static str {
        match self {
            QueueError::Full { .. } => "full",
            QueueError::TooLarge(_) => "too_large",
            QueueError::Io(_) => "io",
            QueueError::Closed => "closed",
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> QueueError {
    QueueError::Io(format!("{what} {}: {e}", path.display()))
}

/// What opening found on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Undelivered records found, delivered before anything new.
    pub records: u64,
    /// Records (or unreadable spans) skipped because their checksum or length was wrong.
    pub corrupt: u64,
    /// Bytes of an incomplete record at the end of the newest segment (a torn write).
    pub torn_bytes: u64,
    /// Items in the undelivered records (as their appends declared them).
    pub items: u64,
    /// Body bytes of the undelivered records.
    pub body_bytes: u64,
}

struct Segment {
    file: Arc<File>,
    ack: File,
    path: PathBuf,
    ack_path: PathBuf,
    /// Records written (or recovered) and not yet acked.
    unacked: u64,
    /// No more appends go here; deleted once `unacked` reaches zero.
    sealed: bool,
    bytes: u64,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    /// Records ready for a consumer, oldest first: (id, payload length).
    pending: VecDeque<(RecordId, u32, u32)>,
    /// Records already read back from disk, not yet handed out.
    read_ahead: VecDeque<Record>,
    disk_bytes: u64,
    reading_stopped: bool,
}

struct Append {
    signal: Signal,
    items: u64,
    body: Bytes,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// A persistent queue for one exporter.
pub struct PersistentQueue {
    dir: PathBuf,
    opts: Options,
    state: Mutex<State>,
    ready: Notify,
    writer_tx: Mutex<Option<std_mpsc::Sender<Append>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
    metrics: QueueMetrics,
}

fn tag(s: Signal) -> u8 {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

fn untag(t: u8) -> Option<Signal> {
    match t {
        0 => Some(Signal::Traces),
        1 => Some(Signal::Metrics),
        2 => Some(Signal::Logs),
        _ => None,
    }
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.wal"))
}

fn ack_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.ack"))
}

/// The checksum of a record's payload.
fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

/// Reads the record header at `off`: `Some((len, crc))` when it fits in `data`.
fn header_at(data: &[u8], off: usize) -> Option<(u32, u32)> {
    let h = data.get(off..off + RECORD_HEADER as usize)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Some((len, crc))
}

/// A complete record with a valid checksum starts at `off`: its payload length.
fn valid_at(data: &[u8], off: usize) -> Option<u32> {
    let (len, crc) = header_at(data, off)?;
    if len < PAYLOAD_HEADER as u32 || len > MAX_RECORD {
        return None;
    }
    let start = off + RECORD_HEADER as usize;
    let payload = data.get(start..start + len as usize)?;
    (checksum(payload) == crc && untag(payload[0]).is_some()).then_some(len)
}

impl PersistentQueue {
    /// Opens (or creates) the queue in `dir`, scanning what is there. Blocking I/O: call it
    /// from a blocking context.
    pub fn open(
        dir: &Path,
        opts: Options,
        metrics: QueueMetrics,
    ) -> Result<(Arc<PersistentQueue>, Recovery), QueueError> {
        fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
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
        let mut state = State {
            segments: BTreeMap::new(),
            pending: VecDeque::new(),
            read_ahead: VecDeque::new(),
            disk_bytes: 0,
            reading_stopped: false,
        };
        for &seq in &seqs {
            Self::recover_segment(dir, seq, Some(seq) == newest, &mut state, &mut rec)?;
        }
        metrics.recovered.add(rec.records);
        metrics.corrupt.add(rec.corrupt);
        let next_seq = newest.map_or(1, |s| s + 1);
        let q = Arc::new(PersistentQueue {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            state: Mutex::new(state),
            ready: Notify::new(),
            writer_tx: Mutex::new(None),
            writer: Mutex::new(None),
            closed: AtomicBool::new(false),
            metrics,
        });
        let active = q.create_segment(next_seq)?;
        let (tx, rx) = std_mpsc::channel();
        let writer = {
            let q = q.clone();
            std::thread::Builder::new()
                .name("otelgw-queue-writer".into())
                .spawn(move || q.writer_loop(rx, active))
                .map_err(|e| io_err("start writer thread for", dir, e))?
        };
        *q.lock_writer_tx() = Some(tx);
        if let Ok(mut w) = q.writer.lock() {
            *w = Some(writer);
        }
        q.publish_disk_bytes();
        Ok((q, rec))
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

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked while holding it; the state is still a
        // consistent set of counters and files, so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_writer_tx(&self) -> MutexGuard<'_, Option<std_mpsc::Sender<Append>>> {
        self.writer_tx.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_disk_bytes(&self) {
        let b = self.lock_state().disk_bytes;
        self.metrics.disk_bytes.set(b as i64);
    }

    /// Creates segment `seq` (header written) and registers it as the active segment.
    fn create_segment(&self, seq: u64) -> Result<ActiveSegment, QueueError> {
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

    fn delete_segment(st: &mut State, seq: u64) {
        if let Some(seg) = st.segments.remove(&seq) {
            if let Err(e) = fs::remove_file(&seg.path) {
                tracing::warn!(error = %e, segment = %seg.path.display(), "cannot delete a delivered segment");
            }
            let _ = fs::remove_file(&seg.ack_path);
            st.disk_bytes = st.disk_bytes.saturating_sub(seg.bytes);
        }
    }

    /// Records not yet acked (queued or being exported).
    pub fn unacked(&self) -> u64 {
        self.lock_state().segments.values().map(|s| s.unacked).sum()
    }

    /// Bytes of segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.lock_state().disk_bytes
    }

    /// Consumers waiting in [`next`](Self::next) return `None`; records stay on disk.
    pub fn stop_reading(&self) {
        self.lock_state().reading_stopped = true;
        self.ready.notify_waiters();
    }

    /// Stops appends, waits for the writer to sync, syncs every ack file, and deletes segments
    /// with nothing left to deliver. Blocking: call it from a blocking context.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop_reading();
        drop(self.lock_writer_tx().take());
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let mut st = self.lock_state();
        let mut done = Vec::new();
        for (seq, seg) in st.segments.iter_mut() {
            seg.sealed = true;
            if seg.unacked == 0 {
                done.push(*seq);
            } else if let Err(e) = seg.ack.sync_data() {
                tracing::warn!(error = %e, file = %seg.ack_path.display(), "cannot sync an ack file");
            }
        }
        for seq in done {
            Self::delete_segment(&mut st, seq);
        }
        let b = st.disk_bytes;
        drop(st);
        self.metrics.disk_bytes.set(b as i64);
    }

    fn writer_loop(self: Arc<Self>, rx: std_mpsc::Receiver<Append>, mut active: ActiveSegment) {
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
struct ActiveSegment {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(fsync: Fsync) -> Options {
        Options {
            fsync,
            max_size: 0,
            segment_size: 4 << 20,
        }
    }

    fn body(i: u32) -> Bytes {
        Bytes::from(format!("record-{i:05}").into_bytes())
    }

    async fn drain(q: &PersistentQueue, n: usize, ack: bool) -> Vec<Bytes> {
        let mut out = Vec::new();
        for _ in 0..n {
            let r = tokio::time::timeout(Duration::from_secs(5), q.next())
                .await
                .expect("record within 5s")
                .expect("queue open");
            out.push(r.body.clone());
            if ack {
                q.ack(r.id);
            }
        }
        out
    }

    fn open(dir: &Path, o: Options) -> (Arc<PersistentQueue>, Recovery, QueueMetrics) {
        let m = QueueMetrics::default();
        let (q, r) = PersistentQueue::open(dir, o, m.clone()).unwrap();
        (q, r, m)
    }

    #[tokio::test]
    async fn delivers_in_order_and_replays_only_unacked_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (q, rec, _) = open(dir.path(), opts(Fsync::Always));
        assert_eq!(rec, Recovery::default());
        for i in 0..10 {
            q.append(Signal::Logs, 3, body(i)).await.unwrap();
        }
        let first = q.next().await.unwrap();
        assert_eq!(first.body, body(0));
        assert_eq!((first.signal, first.items), (Signal::Logs, 3));
        // Ack out of order: records 1 and 3 delivered, 0 and 2 taken but not acked.
        let r1 = q.next().await.unwrap();
        let _r2 = q.next().await.unwrap();
        let r3 = q.next().await.unwrap();
        q.ack(r3.id);
        q.ack(r1.id);
        assert_eq!(q.unacked(), 8);
        q.close();
        let (q2, rec, m) = open(dir.path(), opts(Fsync::Always));
        assert_eq!(rec.records, 8);
        assert_eq!(m.recovered.get(), 8);
        let got = drain(&q2, 8, true).await;
        let want: Vec<Bytes> = [0, 2, 4, 5, 6, 7, 8, 9].into_iter().map(body).collect();
        assert_eq!(got, want);
        q2.close();
        // Everything delivered: the directory holds no segments.
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn segments_roll_and_go_once_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            segment_size: 256,
            ..opts(Fsync::Batch(Duration::from_millis(10)))
        };
        let (q, _, m) = open(dir.path(), o);
        for i in 0..40 {
            q.append(Signal::Traces, 1, body(i)).await.unwrap();
        }
        let segs = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "wal")
                .count()
        };
        assert!(segs() > 3, "{}", segs());
        assert_eq!(m.disk_bytes.get() as u64, q.disk_bytes());
        let got = drain(&q, 40, true).await;
        assert_eq!(got, (0..40).map(body).collect::<Vec<_>>());
        assert_eq!(segs(), 1, "only the active segment remains");
        q.close();
        assert_eq!(segs(), 0);
        assert_eq!(m.disk_bytes.get(), 0);
    }

    #[tokio::test]
    async fn full_disk_refuses_new_records_and_keeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            max_size: 8 + 5 * (8 + 5 + 12),
            ..opts(Fsync::Never)
        };
        let (q, _, _) = open(dir.path(), o.clone());
        for i in 0..5 {
            q.append(Signal::Logs, 1, body(i)).await.unwrap();
        }
        let e = q.append(Signal::Logs, 1, body(5)).await.unwrap_err();
        assert_eq!(e.kind(), "full");
        // Nothing old was dropped to make room.
        q.close();
        let (q2, rec, _) = open(dir.path(), o);
        assert_eq!(rec.records, 5);
        assert_eq!(
            drain(&q2, 5, true).await,
            (0..5).map(body).collect::<Vec<_>>()
        );
        // Once delivered, the space comes back, also when the queue is smaller than a segment.
        for i in 10..15 {
            q2.append(Signal::Logs, 1, body(i)).await.unwrap();
        }
        assert_eq!(
            drain(&q2, 5, true).await,
            (10..15).map(body).collect::<Vec<_>>()
        );
        for i in 20..25 {
            q2.append(Signal::Logs, 1, body(i)).await.unwrap();
        }
        q2.close();
    }

    /// Offsets of every record in a segment file, walking the format.
    fn record_offsets(data: &[u8]) -> Vec<usize> {
        let mut offs = Vec::new();
        let mut off = 8;
        while off < data.len() {
            offs.push(off);
            let (len, _) = header_at(data, off).unwrap();
            off += 8 + len as usize;
        }
        offs
    }

    #[tokio::test]
    async fn corrupt_records_are_skipped_counted_and_the_rest_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _, _) = open(dir.path(), opts(Fsync::Always));
        for i in 0..10 {
            q.append(Signal::Logs, 1, body(i)).await.unwrap();
        }
        q.close();
        let seg = seg_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        let offs = record_offsets(&data);
        assert_eq!(offs.len(), 10);
        // Record 2: a flipped payload byte (checksum fails, length sane).
        data[offs[2] + 8 + 7] ^= 0xff;
        // Record 6: an impossible length (resync to record 7).
        data[offs[6] + 3] = 0x7f;
        fs::write(&seg, &data).unwrap();
        let (q2, rec, m) = open(dir.path(), opts(Fsync::Always));
        assert_eq!(rec.corrupt, 2);
        assert_eq!(m.corrupt.get(), 2);
        assert_eq!(rec.records, 8);
        let got = drain(&q2, 8, true).await;
        let want: Vec<Bytes> = [0, 1, 3, 4, 5, 7, 8, 9].into_iter().map(body).collect();
        assert_eq!(got, want);
        q2.close();
    }

    #[tokio::test]
    async fn damage_after_the_start_scan_is_reported_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _, m) = open(dir.path(), opts(Fsync::Always));
        for i in 0..3 {
            q.append(Signal::Logs, 4, body(i)).await.unwrap();
        }
        let seg = seg_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        let offs = record_offsets(&data);
        data[offs[1] + 8 + 9] ^= 1;
        fs::write(&seg, &data).unwrap();
        let r0 = q.next().await.unwrap();
        let r1 = q.next().await.unwrap();
        let r2 = q.next().await.unwrap();
        assert!(!r0.damaged && !r2.damaged);
        assert_eq!(r2.body, body(2));
        assert!(r1.damaged);
        assert_eq!((r1.items, r1.body_len), (4, 12));
        assert_eq!(m.corrupt.get(), 1);
        q.ack(r0.id);
        q.ack(r2.id);
        assert_eq!(q.unacked(), 0, "the damaged record was removed");
        q.close();
    }

    #[tokio::test]
    async fn torn_tail_is_ignored_not_counted_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _, _) = open(dir.path(), opts(Fsync::Always));
        for i in 0..3 {
            q.append(Signal::Metrics, 2, body(i)).await.unwrap();
        }
        q.close();
        let seg = seg_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        // Half of a fourth record, as a kill during write(2) leaves it.
        data.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]);
        fs::write(&seg, &data).unwrap();
        let (q2, rec, _) = open(dir.path(), opts(Fsync::Always));
        assert_eq!(
            rec,
            Recovery {
                records: 3,
                corrupt: 0,
                torn_bytes: 11,
                items: 6,
                body_bytes: 36,
            }
        );
        assert_eq!(
            drain(&q2, 3, true).await,
            (0..3).map(body).collect::<Vec<_>>()
        );
        q2.close();
    }

    #[tokio::test]
    async fn concurrent_appends_share_syncs_and_all_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _, _) = open(dir.path(), opts(Fsync::Always));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let q = q.clone();
                tokio::spawn(async move { q.append(Signal::Traces, 1, body(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut got = drain(&q, 200, true).await;
        got.sort();
        assert_eq!(got, (0..200).map(body).collect::<Vec<_>>());
        q.close();
    }

    #[tokio::test]
    async fn stop_reading_wakes_waiting_consumers_and_close_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _, _) = open(dir.path(), opts(Fsync::Never));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await.is_none() })
        };
        tokio::task::yield_now().await;
        q.stop_reading();
        assert!(waiter.await.unwrap());
        q.close();
        let e = q.append(Signal::Logs, 1, body(0)).await.unwrap_err();
        assert_eq!(e.kind(), "closed");
    }
}
