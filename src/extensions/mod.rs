//! Extensions: components outside the data path. `health_check` serves liveness and readiness
//! on its own endpoint (the Collector's default `:13133`), from the same health state as the
//! admin listener. `file_storage` ([`file_storage`]) is where persistent sending queues live.

pub mod file_storage;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::{typed, ComponentId, Diagnostics};
use crate::net::check_endpoint;

#[derive(Debug, Clone)]
pub enum ExtensionConfig {
    HealthCheck(HealthCheckConfig),
    FileStorage(file_storage::FileStorageConfig),
}

pub const EXTENSION_TYPES: &[&str] = &["health_check", "file_storage"];

impl ExtensionConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ExtensionConfig> {
        match id.kind.as_str() {
            "health_check" => typed(path, v, diag).map(ExtensionConfig::HealthCheck),
            "file_storage" => typed(path, v, diag).map(ExtensionConfig::FileStorage),
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown extension type {other:?} (known: {})",
                        EXTENSION_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ExtensionConfig::HealthCheck(c) => {
                if let Err(e) = check_endpoint(&c.endpoint) {
                    diag.error(format!("{path}.endpoint"), e);
                }
                if !c.path.starts_with('/') {
                    diag.error(format!("{path}.path"), "must start with '/'");
                }
            }
            ExtensionConfig::FileStorage(c) => c.validate(path, diag),
        }
    }

    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        match self {
            ExtensionConfig::HealthCheck(c) => vec![("endpoint", c.endpoint.as_str())],
            ExtensionConfig::FileStorage(_) => vec![],
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ExtensionConfig::HealthCheck(c) => crate::component::to_value(c),
            ExtensionConfig::FileStorage(c) => crate::component::to_value(c),
        }
    }
}

/// `extensions.health_check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Listen address. Default `127.0.0.1:13133`.
    pub endpoint: String,
    /// Liveness path besides `/healthz` (default `/`). `/readyz` is always served.
    pub path: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "127.0.0.1:13133".into(),
            path: "/".into(),
        }
    }
}
