//! `file` exporter: one OTLP/JSON export request per line, appended to `path`.
//!
//! Each batch is written and flushed before it counts as sent, so a reader (or a test) sees every
//! acknowledged line. Lines are the same JSON an OTLP/HTTP JSON client would post.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{BuildError, ExportError, ExportOutcome, Exporter};
use crate::component::Diagnostics;
use crate::data::Outgoing;

/// `exporters.file`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// File to append to (created if missing).
    pub path: String,
}

impl FileConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.path.is_empty() {
            diag.error(format!("{path}.path"), "required");
        }
    }
}

pub struct FileExporter {
    path: PathBuf,
    file: Mutex<Option<tokio::fs::File>>,
}

impl FileExporter {
    pub fn new(cfg: &FileConfig) -> Result<FileExporter, BuildError> {
        // Open synchronously at build so a bad path fails the start, not the first export.
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.path)
            .map_err(|e| BuildError::File {
                path: cfg.path.clone(),
                reason: e.to_string(),
            })?;
        Ok(FileExporter {
            path: PathBuf::from(&cfg.path),
            file: Mutex::new(Some(tokio::fs::File::from_std(f))),
        })
    }
}

impl Exporter for FileExporter {
    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(async move {
            let mut line = batch.data().to_json().map_err(|e| {
                ExportError::permanent("encode", format!("json encoding failed: {e}"))
            })?;
            line.push(b'\n');
            let mut guard = self.file.lock().await;
            let Some(f) = guard.as_mut() else {
                return Err(ExportError::permanent(
                    "closed",
                    "file exporter is shut down",
                ));
            };
            let res = async {
                f.write_all(&line).await?;
                f.flush().await
            }
            .await;
            res.map_err(|e| {
                ExportError::retryable(
                    "io",
                    format!("write to {} failed: {e}", self.path.display()),
                )
            })?;
            Ok(ExportOutcome::default())
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(f) = self.file.lock().await.take() {
                let _ = f.sync_all().await;
            }
        })
    }
}
