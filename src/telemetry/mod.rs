//! Self-telemetry: metrics ([`metrics`]), the admin and health listeners ([`admin`]), logging
//! ([`logging`]), and the shared health state.

pub mod admin;
pub mod logging;
pub mod metrics;
pub mod push;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::admission::{MemoryGate, STATE_HARD};

/// Liveness is "the process answers"; readiness is "pipelines are running and memory is under
/// the hard limit".
#[derive(Debug, Default)]
pub struct Health {
    pipelines_running: AtomicBool,
    gate: Mutex<Option<Arc<MemoryGate>>>,
}

impl Health {
    pub fn set_running(&self, v: bool) {
        self.pipelines_running.store(v, Ordering::SeqCst)
    }
    pub fn set_gate(&self, gate: Option<Arc<MemoryGate>>) {
        *self.gate.lock().unwrap_or_else(|p| p.into_inner()) = gate;
    }
    pub fn ready(&self) -> bool {
        let memory_ok = self
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|g| g.state() != STATE_HARD);
        self.pipelines_running.load(Ordering::SeqCst) && memory_ok
    }
}
