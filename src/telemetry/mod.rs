//! Self-telemetry: metrics ([`metrics`]), the admin and health listeners ([`admin`]), logging
//! ([`logging`]), and the shared health state.

pub mod admin;
pub mod logging;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};

/// Liveness is "the process answers"; readiness is "pipelines are running".
#[derive(Debug, Default)]
pub struct Health {
    pipelines_running: AtomicBool,
}

impl Health {
    pub fn set_running(&self, v: bool) {
        self.pipelines_running.store(v, Ordering::SeqCst)
    }
    pub fn ready(&self) -> bool {
        self.pipelines_running.load(Ordering::SeqCst)
    }
}
