//! The `filelog` receiver (logs pipelines only, no listener), as the Collector's: every
//! `poll_interval` it expands the `include` globs (minus `exclude`), identifies each file by a
//! **fingerprint** (its first `fingerprint_size` bytes), reads what was appended since the
//! file's offset, splits it into records (lines, or `multiline` records), runs the stanza
//! `operators` over each record and hands the records to the pipelines as one request per batch.
//!
//! **Guarantees.**
//! - *Backpressure, never loss:* a batch is committed (its offsets advanced) only after every
//!   pipeline accepted it. When the pipelines refuse, reading pauses and the same batch is
//!   offered again with back-off (`retry_on_failure` intervals); nothing is dropped and at most
//!   one batch is held in memory. (The Collector drops a refused batch unless
//!   `retry_on_failure.enabled`; otelgw never does. With `enabled: true` and a non-zero
//!   `max_elapsed_time` a batch refused that long is dropped and counted, as the Collector.)
//! - *Restarts:* with `storage` (a `file_storage` extension) the fingerprints and committed
//!   offsets are written to `<directory>/receiver_<id>/checkpoints.json` after every poll that
//!   committed something and at shutdown (atomic rename). After a clean stop nothing is read
//!   twice; after a kill, what was committed since the last checkpoint is read again (at least
//!   once, never skipped). Without `storage` offsets live in memory and `start_at` applies at
//!   every start.
//! - *Rotation:* a file renamed (`app.log` → `app.log.1`) keeps its fingerprint and continues at
//!   its offset when the new name is also included; a tracked file that disappears from the
//!   globs (renamed away or deleted) is read to its end through the handle already open.
//!   Copy-truncate: the truncated file's new content has a new fingerprint and is read from 0;
//!   a file shorter than its offset is read again from 0.
//! - *Long lines:* a record longer than `max_log_size` is cut into `max_log_size` pieces (as
//!   the Collector; nothing skipped, at most `max_log_size` buffered), each cut counted in
//!   `otelgw_filelog_truncated_records_total`.
//! - Records still held by a `recombine` operator when otelgw is killed are read again only if
//!   their offsets were not yet committed; `recombine` holds them at most `force_flush_period`.
//!
//! Files: [`tail`] (discovery, fingerprints, offsets, checkpoints), [`split`] (records from
//! bytes), [`operators`] (stanza operators), [`run`] (the task: batches → pipelines); this file
//! the config.

pub mod operators;
pub mod run;
pub mod split;
pub mod tail;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::component::units::{ByteSize, Duration};
use crate::component::Diagnostics;

pub use run::spawn;

/// `receivers.filelog`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileLogConfig {
    /// Glob patterns (`*`, `?`, `[...]`, `**`) of the files to read. Required.
    pub include: Vec<String>,
    /// Glob patterns of files not to read, applied to what `include` matched.
    pub exclude: Vec<String>,
    /// Skip files not modified for this long. Unset: no age limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_older_than: Option<Duration>,
    /// Where to start in the files found at startup: `end` (default) or `beginning`. Files
    /// that appear later are always read from the beginning.
    pub start_at: StartAt,
    /// Records spanning several lines (one of the two patterns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiline: Option<Multiline>,
    /// A partial record at the end of a file is emitted after this long without new data.
    pub force_flush_period: Duration,
    /// `utf-8` (default), `ascii` or `nop` (the body is the raw bytes).
    pub encoding: String,
    /// Keep leading whitespace of each record (trimmed by default, as the Collector).
    pub preserve_leading_whitespaces: bool,
    /// Keep trailing whitespace of each record.
    pub preserve_trailing_whitespaces: bool,
    /// Add `log.file.name`. Default true.
    pub include_file_name: bool,
    /// Add `log.file.path`.
    pub include_file_path: bool,
    /// Add `log.file.name_resolved` (after symlinks).
    pub include_file_name_resolved: bool,
    /// Add `log.file.path_resolved` (after symlinks).
    pub include_file_path_resolved: bool,
    /// Add `log.file.record_number` (1-based, counted from the start of the file).
    pub include_file_record_number: bool,
    /// Time between filesystem polls. Default 200ms.
    pub poll_interval: Duration,
    /// Bytes from the start of a file that identify it. Default 1KB.
    pub fingerprint_size: ByteSize,
    /// Accepted for compatibility (the read buffer grows as needed up to `max_log_size`).
    pub initial_buffer_size: ByteSize,
    /// The longest record; longer ones are cut here and counted. Default 1MiB.
    pub max_log_size: ByteSize,
    /// Files read in one round; more matched files are read in further rounds. Default 1024.
    pub max_concurrent_files: usize,
    /// Rounds of `max_concurrent_files` per poll at most (0: all).
    pub max_batches: usize,
    /// Delete each file once it is read to its end and committed (needs `start_at: beginning`).
    pub delete_after_read: bool,
    /// Accepted for compatibility; otelgw takes no advisory lock.
    pub acquire_fs_lock: bool,
    /// Attributes added to every record.
    pub attributes: BTreeMap<String, serde_norway::Value>,
    /// Resource attributes added to every record.
    pub resource: BTreeMap<String, serde_norway::Value>,
    /// Stanza operators run on every record, in order (see [`operators`]).
    pub operators: Vec<serde_norway::Value>,
    /// A `file_storage` extension keeping fingerprints and offsets across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Back-off while the pipelines refuse a batch.
    pub retry_on_failure: RetryOnFailure,
    /// `""` (none), `gzip`, or `auto` (gzip for names ending in `.gz`).
    pub compression: String,
    /// Not supported in otelgw (a validation error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<serde_norway::Value>,
    /// Not supported in otelgw (a validation error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_criteria: Option<serde_norway::Value>,
    /// Not supported in otelgw (a validation error).
    pub include_file_owner_name: bool,
    /// Not supported in otelgw (a validation error).
    pub include_file_owner_group_name: bool,
}

impl Default for FileLogConfig {
    fn default() -> Self {
        FileLogConfig {
            include: vec![],
            exclude: vec![],
            exclude_older_than: None,
            start_at: StartAt::End,
            multiline: None,
            force_flush_period: Duration::from_millis(500),
            encoding: "utf-8".into(),
            preserve_leading_whitespaces: false,
            preserve_trailing_whitespaces: false,
            include_file_name: true,
            include_file_path: false,
            include_file_name_resolved: false,
            include_file_path_resolved: false,
            include_file_record_number: false,
            poll_interval: Duration::from_millis(200),
            fingerprint_size: ByteSize(1000),
            initial_buffer_size: ByteSize(16 * 1024),
            max_log_size: ByteSize::mib(1),
            max_concurrent_files: 1024,
            max_batches: 0,
            delete_after_read: false,
            acquire_fs_lock: false,
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            operators: vec![],
            storage: None,
            retry_on_failure: RetryOnFailure::default(),
            compression: String::new(),
            header: None,
            ordering_criteria: None,
            include_file_owner_name: false,
            include_file_owner_group_name: false,
        }
    }
}

/// `start_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    Beginning,
    #[default]
    End,
}

/// `multiline`: exactly one pattern.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Multiline {
    /// A line matching this starts a new record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_start_pattern: Option<String>,
    /// A line matching this ends the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_end_pattern: Option<String>,
    /// Remove the matched pattern from the record.
    pub omit_pattern: bool,
}

/// `retry_on_failure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryOnFailure {
    /// With `true`, `max_elapsed_time` bounds how long a refused batch is retried. With
    /// `false` (default) otelgw still pauses and retries, without end (safer than the
    /// Collector, which drops the batch).
    pub enabled: bool,
    /// First wait after a refusal. Default 1s.
    pub initial_interval: Duration,
    /// Longest wait between attempts. Default 30s.
    pub max_interval: Duration,
    /// With `enabled`, drop (and count) a batch refused this long; `0`: never. Default 5m.
    pub max_elapsed_time: Duration,
}

impl Default for RetryOnFailure {
    fn default() -> Self {
        RetryOnFailure {
            enabled: false,
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// How file bytes become record bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Text; invalid UTF-8 replaced by U+FFFD.
    Utf8,
    /// Raw bytes (bytes body).
    Nop,
}

impl FileLogConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.include.is_empty() {
            diag.error(
                format!("{path}.include"),
                "at least one pattern is required",
            );
        }
        for (key, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, p) in list.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(p) {
                    diag.error(
                        format!("{path}.{key}[{i}]"),
                        format!("invalid glob {p:?}: {e}"),
                    );
                }
            }
        }
        if let Some(m) = &self.multiline {
            match (&m.line_start_pattern, &m.line_end_pattern) {
                (Some(_), Some(_)) | (None, None) => diag.error(
                    format!("{path}.multiline"),
                    "exactly one of line_start_pattern and line_end_pattern is required",
                ),
                (Some(p), None) | (None, Some(p)) => {
                    if let Err(e) = regex::Regex::new(p) {
                        let key = if m.line_start_pattern.is_some() {
                            "line_start_pattern"
                        } else {
                            "line_end_pattern"
                        };
                        diag.error(
                            format!("{path}.multiline.{key}"),
                            format!("invalid regex: {e}"),
                        );
                    }
                }
            }
        }
        if self.encoding().is_none() {
            diag.error(
                format!("{path}.encoding"),
                format!(
                    "unsupported encoding {:?} (otelgw reads utf-8, ascii and nop)",
                    self.encoding
                ),
            );
        }
        if !matches!(self.compression.as_str(), "" | "gzip" | "auto") {
            diag.error(
                format!("{path}.compression"),
                format!(
                    "unknown compression {:?} (\"\", gzip or auto)",
                    self.compression
                ),
            );
        }
        if self.poll_interval.is_zero() {
            diag.error(format!("{path}.poll_interval"), "must be greater than 0");
        }
        if self.fingerprint_size.bytes() < 16 {
            diag.error(
                format!("{path}.fingerprint_size"),
                "must be at least 16 bytes",
            );
        }
        if self.max_log_size.bytes() == 0 {
            diag.error(format!("{path}.max_log_size"), "must be greater than 0");
        }
        if self.max_concurrent_files < 1 {
            diag.error(format!("{path}.max_concurrent_files"), "must be at least 1");
        }
        if self.delete_after_read && self.start_at == StartAt::End {
            diag.error(
                format!("{path}.delete_after_read"),
                "needs start_at: beginning (a file would be deleted unread)",
            );
        }
        let r = &self.retry_on_failure;
        if r.initial_interval.is_zero() || r.max_interval < r.initial_interval {
            diag.error(
                format!("{path}.retry_on_failure"),
                "initial_interval must be greater than 0 and at most max_interval",
            );
        }
        for (key, set) in [
            ("header", self.header.is_some()),
            ("ordering_criteria", self.ordering_criteria.is_some()),
            ("include_file_owner_name", self.include_file_owner_name),
            (
                "include_file_owner_group_name",
                self.include_file_owner_group_name,
            ),
        ] {
            if set {
                diag.error(
                    format!("{path}.{key}"),
                    "not supported by otelgw's filelog receiver",
                );
            }
        }
        diag.warn_inert(path, &[("acquire_fs_lock", self.acquire_fs_lock)]);
        if self.encoding() == Some(Encoding::Nop) && !self.operators.is_empty() {
            diag.error(
                format!("{path}.operators"),
                "operators need a text encoding (utf-8 or ascii), not nop",
            );
        }
        operators::OperatorsConfig::parse(
            &format!("{path}.operators"),
            &serde_norway::Value::Sequence(self.operators.clone()),
            diag,
        );
    }

    pub fn encoding(&self) -> Option<Encoding> {
        match self.encoding.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "ascii" | "us-ascii" | "" => Some(Encoding::Utf8),
            "nop" => Some(Encoding::Nop),
            _ => None,
        }
    }
}
