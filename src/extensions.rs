//! Extensions: components outside the data path. `health_check` serves liveness and readiness
//! on its own endpoint (the Collector's default `:13133`), from the same health state as the
//! admin listener.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::config::{parse_listen_addr, typed, ComponentId, Diagnostics};

#[derive(Debug, Clone)]
pub enum ExtensionConfig {
    HealthCheck(HealthCheckConfig),
}

pub const EXTENSION_TYPES: &[&str] = &["health_check"];

impl ExtensionConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ExtensionConfig> {
        match id.kind.as_str() {
            "health_check" => typed(path, v, diag).map(ExtensionConfig::HealthCheck),
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
                if let Err(e) = parse_listen_addr(&c.endpoint) {
                    diag.error(format!("{path}.endpoint"), e);
                }
                if !c.path.starts_with('/') {
                    diag.error(format!("{path}.path"), "must start with '/'");
                }
            }
        }
    }

    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        match self {
            ExtensionConfig::HealthCheck(c) => vec![("endpoint", c.endpoint.as_str())],
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ExtensionConfig::HealthCheck(c) => crate::config::to_value(c),
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
