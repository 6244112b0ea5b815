//! `tracing` setup from `service.telemetry.logs`: level (or a full filter directive), encoding
//! (`console` or `json`) and output (`stderr`, or `stdout`). `RUST_LOG`, when set, wins over the
//! config. Console logs are coloured only when they go to a terminal: a file or a pipe gets
//! plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogEncoding, LogsTelemetry};

/// Installs the global subscriber once; later calls (config reloads) are no-ops.
pub fn init(cfg: &LogsTelemetry) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match (cfg.encoding, cfg.to_stdout()) {
        (LogEncoding::Json, false) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogEncoding::Json, true) => builder.json().with_writer(std::io::stdout).try_init(),
        (LogEncoding::Console, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
        (LogEncoding::Console, true) => builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .try_init(),
    };
}
