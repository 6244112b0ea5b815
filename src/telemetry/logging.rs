//! `tracing` setup from `service.telemetry.logs`: level (or a full filter directive) and
//! encoding (`console` or `json`), to stderr. `RUST_LOG`, when set, wins over the config.

use tracing_subscriber::EnvFilter;

use crate::config::{LogEncoding, LogsTelemetry};

/// Installs the global subscriber once; later calls (config reloads) are no-ops.
pub fn init(cfg: &LogsTelemetry) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match cfg.encoding {
        LogEncoding::Json => builder.json().try_init(),
        LogEncoding::Console => builder.try_init(),
    };
}
