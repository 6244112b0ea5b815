//! The persistent sending queue: a segmented, checksummed write-ahead log on local disk.
//!
//! **What comes in**: records (a signal tag, an item count and the batch's protobuf encoding)
//! appended by [`ExporterHandle::consume`](super::sending_queue::ExporterHandle::consume).
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
//!
//! Files: [`record`] holds the on-disk format (segment and record headers, checksums, file
//! names), [`recovery`] the start scan, [`writer`] the group-commit writer thread (appends,
//! rolls), [`reader`] the consumers' side (read-ahead runs, acks); this file the public API,
//! the shared state and `open` / `close`.

mod reader;
mod record;
mod recovery;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::component::Signal;
use crate::telemetry::metrics::{Counter, Gauge};

pub use record::MAX_RECORD;
use writer::Append;

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

impl PersistentQueue {
    /// Opens (or creates) the queue in `dir`, scanning what is there. Blocking I/O: call it
    /// from a blocking context.
    pub fn open(
        dir: &Path,
        opts: Options,
        metrics: QueueMetrics,
    ) -> Result<(Arc<PersistentQueue>, Recovery), QueueError> {
        fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
        let mut state = State {
            segments: BTreeMap::new(),
            pending: VecDeque::new(),
            read_ahead: VecDeque::new(),
            disk_bytes: 0,
            reading_stopped: false,
        };
        let (rec, newest) = recovery::recover(dir, &mut state)?;
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
}
