//! `extensions.file_storage`: where persistent sending queues keep their write-ahead logs and
//! the `filelog` receiver its checkpoints (`receiver_<id>/checkpoints.json`).
//!
//! The extension itself runs nothing. An exporter whose `sending_queue.storage` names it opens
//! its queue in `<directory>/<exporter id, escaped>/` (one subdirectory per exporter, so two
//! exporters never share a log), with this extension's `fsync`, `max_size` and `segment_size`.
//! What each `fsync` mode guarantees is stated in
//! [`persistent_queue`](crate::exporters::persistent_queue).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::component::units::{ByteSize, Duration};
use crate::component::Diagnostics;
use crate::exporters::persistent_queue::{Fsync, Options};

/// When appended records are synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Before the client is answered (group commit: concurrent requests share one sync).
    /// Acknowledged data survives a process kill and a power loss.
    #[default]
    Always,
    /// Every `fsync_interval`. Acknowledged data survives a process kill; a power loss may lose
    /// up to one interval.
    Batch,
    /// Never explicitly. Acknowledged data survives a process kill only.
    Never,
}

/// `extensions.file_storage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileStorageConfig {
    /// The directory holding one subdirectory per exporter queue; created if missing.
    pub directory: String,
    /// `always` (default), `batch` or `never`.
    pub fsync: FsyncMode,
    /// With `fsync: batch`, the longest time written data stays unsynced.
    pub fsync_interval: Duration,
    /// Bytes of log segments on disk per exporter queue at most; a full queue refuses new data
    /// (clients get a retry hint) and never drops what it holds. `0`: no limit.
    pub max_size: ByteSize,
    /// A segment file rolls once it would grow past this; delivered segments are deleted whole.
    pub segment_size: ByteSize,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        FileStorageConfig {
            directory: "/var/lib/otelgw/file_storage".into(),
            fsync: FsyncMode::Always,
            fsync_interval: Duration::from_millis(200),
            max_size: ByteSize::mib(1024),
            segment_size: ByteSize::mib(8),
        }
    }
}

impl FileStorageConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.directory.trim().is_empty() {
            diag.error(format!("{path}.directory"), "must not be empty");
        }
        if self.fsync == FsyncMode::Batch && self.fsync_interval.is_zero() {
            diag.error(
                format!("{path}.fsync_interval"),
                "must be greater than 0 with fsync: batch",
            );
        }
        if self.segment_size.bytes() < 4096 {
            diag.error(format!("{path}.segment_size"), "must be at least 4KiB");
        }
        if self.max_size.bytes() != 0 && self.max_size.bytes() < 4096 {
            diag.error(
                format!("{path}.max_size"),
                "must be at least 4KiB (or 0 for no limit)",
            );
        }
    }

    /// The queue directory of one exporter: its id with every byte outside `[A-Za-z0-9_-]`
    /// written as `%XX`, so distinct ids never share a directory.
    pub fn queue_dir(&self, exporter_id: &str) -> PathBuf {
        self.component_dir("exporter", exporter_id)
    }

    /// The directory of one component's state (`<kind>_<escaped id>`): a receiver's
    /// checkpoints, an exporter's queue.
    pub fn component_dir(&self, kind: &str, id: &str) -> PathBuf {
        let mut name = format!("{kind}_");
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        PathBuf::from(&self.directory).join(name)
    }

    pub fn options(&self) -> Options {
        Options {
            fsync: match self.fsync {
                FsyncMode::Always => Fsync::Always,
                FsyncMode::Batch => Fsync::Batch(self.fsync_interval.get()),
                FsyncMode::Never => Fsync::Never,
            },
            max_size: self.max_size.bytes(),
            segment_size: self.segment_size.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_dirs_of_distinct_ids_differ() {
        let c = FileStorageConfig {
            directory: "/q".into(),
            ..Default::default()
        };
        assert_eq!(
            c.queue_dir("otlp_grpc/tempo"),
            PathBuf::from("/q/exporter_otlp_grpc%2Ftempo")
        );
        assert_ne!(c.queue_dir("otlp/a_b"), c.queue_dir("otlp_a/b"));
        assert_ne!(c.queue_dir("otlp/a%2F"), c.queue_dir("otlp/a/"));
    }
}
