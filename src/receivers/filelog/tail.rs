//! Which files are read and from where: discovery, fingerprints, offsets, checkpoints.
//!
//! A [`Tailer`] is owned by the receiver's task and used on a blocking thread. Each poll
//! ([`Tailer::begin_poll`]) expands the globs, opens every matched file (at most
//! `max_concurrent_files` per poll, taking turns when more match) and reads its fingerprint:
//! the first `fingerprint_size` bytes (of the decompressed content for gzip files). A file whose
//! fingerprint starts with a tracked one is that file (grown, or renamed) and continues at its
//! committed offset; otherwise it is new and starts at 0 — or at its end in the first poll
//! with `start_at: end`. A tracked file not matched any more (renamed away, deleted, truncated
//! and rewritten) is read to its end once through the handle it already had, then archived
//! (its fingerprint and offset remembered, so it resumes if it shows up again). Empty files are
//! skipped until they have a first byte.
//!
//! [`Tailer::next_batch`] reads until a batch is full and returns its records with the offsets
//! they reach; [`Tailer::commit`] applies those offsets once the pipelines accepted the batch.
//! [`Tailer::checkpoint`] is what `storage` persists: every tracked and archived file's
//! fingerprint, committed offset and record count.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::split::{Pending, Record, Splitter};
use super::{FileLogConfig, StartAt};

/// What a file is known as between polls and restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Known {
    /// The first bytes of the file, base64 in the checkpoint.
    #[serde(with = "b64")]
    pub fingerprint: Vec<u8>,
    /// Committed: every record before it was accepted by the pipelines.
    pub offset: u64,
    pub path: PathBuf,
    /// Records committed from this file (for `log.file.record_number`).
    pub records: u64,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// The checkpoint file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub files: Vec<Known>,
}

/// How many archived files are remembered at most.
const ARCHIVE: usize = 4096;
/// Bytes read from one file per read call.
const CHUNK: usize = 64 * 1024;

/// The tailing rules of one receiver.
#[derive(Debug, Clone)]
pub struct Options {
    pub include: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    pub exclude_older_than: Option<std::time::Duration>,
    pub fingerprint_size: usize,
    pub start_at_end: bool,
    pub gzip: Gzip,
    pub max_concurrent_files: usize,
    pub delete_after_read: bool,
    pub force_flush: std::time::Duration,
    pub splitter: Splitter,
    /// A batch closes at this many records…
    pub batch_records: usize,
    /// …or this many bytes of record bodies.
    pub batch_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gzip {
    Never,
    Always,
    /// For names ending in `.gz`.
    BySuffix,
}

impl Options {
    pub fn new(cfg: &FileLogConfig) -> Result<Options, String> {
        let exclude = cfg
            .exclude
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("exclude {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Options {
            include: cfg.include.clone(),
            exclude,
            exclude_older_than: cfg.exclude_older_than.map(|d| d.get()),
            fingerprint_size: usize::try_from(cfg.fingerprint_size.bytes()).unwrap_or(1000),
            start_at_end: cfg.start_at == StartAt::End,
            gzip: match cfg.compression.as_str() {
                "gzip" => Gzip::Always,
                "auto" => Gzip::BySuffix,
                _ => Gzip::Never,
            },
            max_concurrent_files: cfg.max_concurrent_files.max(1),
            delete_after_read: cfg.delete_after_read,
            force_flush: cfg.force_flush_period.get(),
            splitter: Splitter::new(cfg)?,
            batch_records: 1000,
            batch_bytes: 1024 * 1024,
        })
    }
}

/// The open side of a file.
enum Source {
    Plain(File),
    /// Decompressed from the start each poll in which the file grew (offsets count
    /// decompressed bytes).
    Gzip {
        file: File,
        decoder: Option<Box<flate2::read::MultiGzDecoder<File>>>,
        /// Compressed length when it was last read to its end.
        read_len: Option<u64>,
    },
}

/// A tracked file.
struct Reader {
    id: u64,
    known: Known,
    resolved: PathBuf,
    source: Source,
    /// Offset of `pending.buf[0]`: committed offset plus what was read but not yet committed.
    consumed: u64,
    pending: Pending,
    last_data: Instant,
    /// Read to its end in this poll.
    done: bool,
    /// Records handed out but not committed yet.
    handed: u64,
}

impl Reader {
    /// The open handle and `path` are the same file (device and inode).
    fn same_file(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let handle = match &self.source {
            Source::Plain(f) | Source::Gzip { file: f, .. } => f.metadata(),
        };
        match (handle, std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// Records of one file in a batch.
#[derive(Debug)]
pub struct FileRecords {
    pub reader: u64,
    pub path: PathBuf,
    pub resolved: PathBuf,
    /// `log.file.record_number` of the first record.
    pub first_number: u64,
    pub records: Vec<Record>,
    /// The committed offset once these records are accepted.
    pub offset: u64,
}

/// One batch: records of one or more files.
#[derive(Debug, Default)]
pub struct Batch {
    pub files: Vec<FileRecords>,
}

impl Batch {
    pub fn records(&self) -> usize {
        self.files.iter().map(|f| f.records.len()).sum()
    }
}

pub struct Tailer {
    opts: Options,
    readers: Vec<Reader>,
    /// Tracked files no longer matched: read to their end, then archived.
    lost: Vec<Reader>,
    archive: VecDeque<Known>,
    first_poll: bool,
    /// Files matched in the first poll not opened yet (more than `max_concurrent_files`):
    /// `start_at` still applies to them.
    initial: std::collections::HashSet<PathBuf>,
    next_id: u64,
    /// Where the next poll starts in the sorted match list when more than
    /// `max_concurrent_files` match.
    rotate: usize,
    /// Files deleted after reading (delete_after_read), waiting for their commit.
    to_delete: Vec<(u64, PathBuf)>,
    pub stats: Stats,
}

/// What the task reports as self-metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub open_files: usize,
    pub truncated: u64,
    pub errors: u64,
}

impl Tailer {
    pub fn new(opts: Options, restored: Vec<Known>) -> Tailer {
        Tailer {
            opts,
            readers: Vec::new(),
            lost: Vec::new(),
            archive: restored.into_iter().collect(),
            first_poll: true,
            initial: Default::default(),
            next_id: 1,
            rotate: 0,
            to_delete: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The files the globs match now, sorted, minus `exclude` and files too old.
    fn matched(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let now = SystemTime::now();
        for pattern in &self.opts.include {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for p in paths.flatten() {
                if self.opts.exclude.iter().any(|x| x.matches_path(&p)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&p) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                if let (Some(age), Ok(m)) = (self.opts.exclude_older_than, meta.modified()) {
                    if now.duration_since(m).is_ok_and(|d| d > age) {
                        continue;
                    }
                }
                out.push(p);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn is_gzip(&self, path: &Path) -> bool {
        match self.opts.gzip {
            Gzip::Never => false,
            Gzip::Always => true,
            Gzip::BySuffix => path.extension().is_some_and(|e| e == "gz"),
        }
    }

    /// Starts a poll: finds the files and decides where each continues.
    pub fn begin_poll(&mut self) {
        let mut paths = self.matched();
        if self.first_poll && self.opts.start_at_end {
            self.initial = paths.iter().cloned().collect();
        }
        let limit = self.opts.max_concurrent_files;
        if paths.len() > limit {
            let start = self.rotate % paths.len();
            paths.rotate_left(start);
            paths.truncate(limit);
            self.rotate = start + limit;
        }
        let mut previous = std::mem::take(&mut self.readers);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for path in paths {
            let gz = self.is_gzip(&path);
            let Some((file, fp, len)) = open(&path, self.opts.fingerprint_size, gz) else {
                continue;
            };
            if fp.is_empty() || seen.contains(&fp) {
                // nothing to identify it by yet, or a copy of a file read in this poll
                continue;
            }
            seen.push(fp.clone());
            let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            // the same file seen in the previous poll (the same path first), then the archive
            let pos = previous
                .iter()
                .position(|r| r.known.path == path && fp.starts_with(&r.known.fingerprint))
                .or_else(|| {
                    previous
                        .iter()
                        .position(|r| fp.starts_with(&r.known.fingerprint))
                });
            let mut reader = if let Some(pos) = pos {
                let mut r = previous.swap_remove(pos);
                r.known.path = path.clone();
                r.resolved = resolved;
                r.source = source(file, gz, gzip_read_len(&r.source));
                r
            } else {
                let known = match self
                    .archive
                    .iter()
                    .position(|k| fp.starts_with(&k.fingerprint))
                    .and_then(|i| self.archive.remove(i))
                {
                    Some(mut k) => {
                        k.path = path.clone();
                        k
                    }
                    None => Known {
                        fingerprint: Vec::new(),
                        // start_at: end for what existed at startup (a gzip file's end counts
                        // decompressed bytes)
                        offset: match self.initial.remove(&path) {
                            true if gz => gzip_len(&path),
                            true => len,
                            false => 0,
                        },
                        path: path.clone(),
                        records: 0,
                    },
                };
                let id = self.next_id;
                self.next_id += 1;
                Reader {
                    id,
                    consumed: known.offset,
                    known,
                    resolved,
                    source: source(file, gz, None),
                    pending: Pending::default(),
                    last_data: Instant::now(),
                    done: false,
                    handed: 0,
                }
            };
            if fp.len() > reader.known.fingerprint.len() {
                reader.known.fingerprint = fp;
            }
            if len < reader.known.offset && !gz {
                // truncated (and maybe rewritten from the same first bytes): from the start
                reader.known.offset = 0;
                reader.known.records = 0;
                reader.consumed = 0;
                reader.pending.clear();
            }
            reader.done = false;
            self.readers.push(reader);
        }
        // what was tracked and is not matched any more: read to the end through the old handle
        for mut r in previous {
            r.done = false;
            self.lost.push(r);
        }
        self.first_poll = false;
        self.stats.open_files = self.readers.len() + self.lost.len();
    }

    /// Reads until a batch is full or every file of this poll is at its end; `None` when there
    /// is nothing (more) to read in this poll.
    pub fn next_batch(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        let mut bytes = 0usize;
        let mut records = 0usize;
        let now = Instant::now();
        let opts = &self.opts;
        for r in self.lost.iter_mut().chain(self.readers.iter_mut()) {
            if records >= opts.batch_records || bytes >= opts.batch_bytes {
                break;
            }
            if r.done {
                continue;
            }
            let mut out = Vec::new();
            let offset_before = r.consumed;
            let mut eof = false;
            while out.len() + records < opts.batch_records
                && out.iter().map(|x: &Record| x.bytes.len()).sum::<usize>() + bytes
                    < opts.batch_bytes
            {
                match read_chunk(r) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(_) => {
                        r.last_data = now;
                        r.consumed += opts.splitter.split(&mut r.pending, &mut out) as u64;
                    }
                    Err(e) => {
                        self.stats.errors += 1;
                        tracing::warn!(path = %r.known.path.display(), error = %e, "filelog: read failed");
                        eof = true;
                        break;
                    }
                }
            }
            if eof {
                let flush = !r.pending.buf.is_empty()
                    && (opts.delete_after_read
                        || now.duration_since(r.last_data) >= opts.force_flush);
                if flush {
                    r.consumed += opts.splitter.flush(&mut r.pending, &mut out) as u64;
                }
                r.done = true;
            }
            if r.consumed == offset_before && out.is_empty() {
                continue;
            }
            self.stats.truncated += out.iter().filter(|x| x.truncated).count() as u64;
            records += out.len();
            bytes += out.iter().map(|x| x.bytes.len()).sum::<usize>();
            let first_number = r.known.records + r.handed + 1;
            r.handed += out.len() as u64;
            batch.files.push(FileRecords {
                reader: r.id,
                path: r.known.path.clone(),
                resolved: r.resolved.clone(),
                first_number,
                records: out,
                offset: r.consumed,
            });
        }
        if opts.delete_after_read {
            for r in &self.readers {
                if r.done && r.pending.buf.is_empty() {
                    self.to_delete.push((r.id, r.known.path.clone()));
                }
            }
        }
        // lost files read to their end are archived
        let mut i = 0;
        while i < self.lost.len() {
            if self.lost[i].done && self.lost[i].handed == 0 {
                let r = self.lost.swap_remove(i);
                self.archive_known(r.known);
            } else {
                i += 1;
            }
        }
        if batch.files.is_empty() {
            // every file is at its end: delete what delete_after_read read fully
            for (id, path) in std::mem::take(&mut self.to_delete) {
                let committed = self
                    .readers
                    .iter()
                    .any(|r| r.id == id && r.handed == 0 && r.consumed == r.known.offset);
                // only the file that was read: the path may name a new file by now
                let same = self
                    .readers
                    .iter()
                    .any(|r| r.id == id && r.same_file(&path));
                if committed && !same {
                    tracing::warn!(path = %path.display(), "filelog: not deleted after read: the path names another file now");
                    self.readers.retain(|r| r.id != id);
                } else if committed {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            tracing::debug!(path = %path.display(), "filelog: deleted after read")
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "filelog: delete after read failed")
                        }
                    }
                    self.readers.retain(|r| r.id != id);
                }
            }
            self.stats.open_files = self.readers.len() + self.lost.len();
            return None;
        }
        Some(batch)
    }

    /// The pipelines accepted `batch`: its offsets become the committed ones.
    pub fn commit(&mut self, batch: &Batch) {
        for f in &batch.files {
            let n = f.records.len() as u64;
            for r in self.readers.iter_mut().chain(self.lost.iter_mut()) {
                if r.id == f.reader {
                    r.known.offset = r.known.offset.max(f.offset);
                    r.known.records += n;
                    r.handed = r.handed.saturating_sub(n);
                }
            }
            if let Some(k) = self.archive.iter_mut().find(|k| k.path == f.path) {
                k.offset = k.offset.max(f.offset);
            }
        }
        let mut i = 0;
        while i < self.lost.len() {
            if self.lost[i].done && self.lost[i].handed == 0 {
                let r = self.lost.swap_remove(i);
                self.archive_known(r.known);
            } else {
                i += 1;
            }
        }
    }

    fn archive_known(&mut self, k: Known) {
        if k.fingerprint.is_empty() {
            return;
        }
        self.archive.retain(|a| a.fingerprint != k.fingerprint);
        self.archive.push_back(k);
        while self.archive.len() > ARCHIVE {
            self.archive.pop_front();
        }
    }

    /// Every file's fingerprint and committed offset.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: 1,
            files: self
                .readers
                .iter()
                .chain(self.lost.iter())
                .map(|r| r.known.clone())
                .chain(self.archive.iter().cloned())
                .filter(|k| !k.fingerprint.is_empty())
                .collect(),
        }
    }
}

/// How far a gzip file was read (its compressed length then).
fn gzip_read_len(s: &Source) -> Option<u64> {
    match s {
        Source::Gzip { read_len, .. } => *read_len,
        Source::Plain(_) => None,
    }
}

/// The source for a freshly opened handle.
fn source(file: File, gz: bool, read_len: Option<u64>) -> Source {
    if gz {
        Source::Gzip {
            file,
            decoder: None,
            read_len,
        }
    } else {
        Source::Plain(file)
    }
}

/// The decompressed length of a gzip file (as far as it can be read).
fn gzip_len(path: &Path) -> u64 {
    File::open(path)
        .map(|f| {
            let mut d = flate2::read::MultiGzDecoder::new(f);
            let mut n = 0u64;
            let mut buf = vec![0u8; CHUNK];
            while let Ok(k) = read_some(&mut d, &mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            n
        })
        .unwrap_or(0)
}

/// Opens a file and reads its fingerprint and length.
fn open(path: &Path, fp_size: usize, gz: bool) -> Option<(File, Vec<u8>, u64)> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut fp = Vec::with_capacity(fp_size.min(4096));
    if gz {
        let f2 = file.try_clone().ok()?;
        let mut d = flate2::read::MultiGzDecoder::new(f2);
        // a gzip member still being written reads as far as it goes
        let _ = (&mut d).take(fp_size as u64).read_to_end(&mut fp);
        file.seek(SeekFrom::Start(0)).ok()?;
    } else {
        (&mut file).take(fp_size as u64).read_to_end(&mut fp).ok()?;
    }
    Some((file, fp, len))
}

/// Appends the next chunk of the file to its pending buffer: bytes read (0 at the end).
fn read_chunk(r: &mut Reader) -> std::io::Result<usize> {
    let old = r.pending.buf.len();
    let n = fill(r);
    // never leave the zeroed room behind: only what was read stays pending
    let keep = match &n {
        Ok(n) => old + n,
        Err(_) => old,
    };
    r.pending.buf.truncate(keep);
    n
}

/// Reads into room appended to the pending buffer (the caller trims it to what was read).
fn fill(r: &mut Reader) -> std::io::Result<usize> {
    let at = r.consumed + r.pending.buf.len() as u64;
    let old = r.pending.buf.len();
    r.pending.buf.resize(old + CHUNK, 0);
    let n = match &mut r.source {
        Source::Plain(f) => {
            f.seek(SeekFrom::Start(at))?;
            read_some(f, &mut r.pending.buf[old..])
        }
        Source::Gzip {
            file,
            decoder,
            read_len,
        } => {
            let len = file.metadata()?.len();
            if decoder.is_none() {
                if *read_len == Some(len) {
                    return Ok(0);
                }
                let mut f = file.try_clone()?;
                f.seek(SeekFrom::Start(0))?;
                let mut d = Box::new(flate2::read::MultiGzDecoder::new(f));
                // skip what was already read
                std::io::copy(&mut (&mut *d).take(at), &mut std::io::sink())?;
                *decoder = Some(d);
            }
            let n = match decoder.as_mut() {
                Some(d) => read_some(d.as_mut(), &mut r.pending.buf[old..]),
                None => Ok(0),
            };
            if matches!(n, Ok(0)) || n.is_err() {
                *decoder = None;
                *read_len = Some(len);
            }
            n
        }
    };
    n
}

fn read_some(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // a gzip member cut short (still being written) ends the read for now
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(0),
            other => return other,
        }
    }
}

/// Reads a checkpoint file; a missing file is an empty checkpoint.
pub fn load(path: &Path) -> Result<Vec<Known>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice::<Checkpoint>(&b)
            .map(|c| c.files)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes a checkpoint atomically (temporary file, optional fsync, rename).
pub fn save(path: &Path, c: &Checkpoint, sync: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(c).map_err(std::io::Error::other)?;
    let mut f = File::create(&tmp)?;
    f.write_all(&body)?;
    if sync {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if sync {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}
