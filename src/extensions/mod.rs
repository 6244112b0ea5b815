//! Extensions: components outside the data path. `health_check` serves liveness and readiness
//! on its own endpoint (the Collector's default `:13133`), from the same health state as the
//! admin listener. `file_storage` ([`file_storage`]) is where persistent sending queues live.
//! `bearertokenauth` ([`bearertokenauth`]) and `basicauth` ([`basicauth`]) are authenticators:
//! servers check requests with them and exporters send their credentials
//! ([`authenticators`] builds them once for everything that references them).

pub mod basicauth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod headers_setter;
pub mod pprof;
pub mod zpages;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::{typed, BuildError, ComponentId, Diagnostics};
use crate::net::auth::Authenticator;
use crate::net::check_endpoint;
use crate::net::tls::TlsServerConfig;

#[derive(Debug, Clone)]
pub enum ExtensionConfig {
    HealthCheck(HealthCheckConfig),
    FileStorage(file_storage::FileStorageConfig),
    BearerTokenAuth(bearertokenauth::BearerTokenAuthConfig),
    BasicAuth(basicauth::BasicAuthConfig),
    HeadersSetter(headers_setter::HeadersSetterConfig),
    Zpages(zpages::ZpagesConfig),
    Pprof(pprof::PprofConfig),
}

pub const EXTENSION_TYPES: &[&str] = &[
    "health_check",
    "file_storage",
    "bearertokenauth",
    "basicauth",
    "headers_setter",
    "zpages",
    "pprof",
];

/// The authenticators of the started extensions, by extension id.
pub type Authenticators = HashMap<String, Arc<Authenticator>>;

/// Builds every started authenticator extension once (token files and htpasswd files are read
/// here).
pub fn authenticators<'a>(
    started: impl IntoIterator<Item = (&'a ComponentId, &'a ExtensionConfig)>,
) -> Result<Authenticators, BuildError> {
    let mut out = HashMap::new();
    for (id, ext) in started {
        let id = id.to_string();
        let a = match ext {
            ExtensionConfig::BearerTokenAuth(c) => c.build(&id)?,
            ExtensionConfig::BasicAuth(c) => c.build(&id)?,
            ExtensionConfig::HeadersSetter(c) => c.build(&id),
            _ => continue,
        };
        out.insert(id, Arc::new(a));
    }
    Ok(out)
}

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
            "bearertokenauth" => typed(path, v, diag).map(ExtensionConfig::BearerTokenAuth),
            "basicauth" => typed(path, v, diag).map(ExtensionConfig::BasicAuth),
            "headers_setter" => typed(path, v, diag).map(ExtensionConfig::HeadersSetter),
            "zpages" => typed(path, v, diag).map(ExtensionConfig::Zpages),
            "pprof" => typed(path, v, diag).map(ExtensionConfig::Pprof),
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
                if let Some(t) = &c.tls {
                    t.validate(path, diag);
                }
            }
            ExtensionConfig::FileStorage(c) => c.validate(path, diag),
            ExtensionConfig::BearerTokenAuth(c) => c.validate(path, diag),
            ExtensionConfig::BasicAuth(c) => c.validate(path, diag),
            ExtensionConfig::HeadersSetter(c) => c.validate(path, diag),
            ExtensionConfig::Zpages(c) => c.validate(path, diag),
            ExtensionConfig::Pprof(c) => c.validate(path, diag),
        }
    }

    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        match self {
            ExtensionConfig::HealthCheck(c) => vec![("endpoint", c.endpoint.as_str())],
            ExtensionConfig::Zpages(c) => vec![("endpoint", c.endpoint.as_str())],
            ExtensionConfig::Pprof(c) => vec![("endpoint", c.endpoint.as_str())],
            ExtensionConfig::FileStorage(_)
            | ExtensionConfig::BearerTokenAuth(_)
            | ExtensionConfig::BasicAuth(_)
            | ExtensionConfig::HeadersSetter(_) => vec![],
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ExtensionConfig::HealthCheck(c) => crate::component::to_value(c),
            ExtensionConfig::FileStorage(c) => crate::component::to_value(c),
            ExtensionConfig::BearerTokenAuth(c) => crate::component::to_value(c),
            ExtensionConfig::BasicAuth(c) => crate::component::to_value(c),
            ExtensionConfig::HeadersSetter(c) => crate::component::to_value(c),
            ExtensionConfig::Zpages(c) => crate::component::to_value(c),
            ExtensionConfig::Pprof(c) => crate::component::to_value(c),
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
    /// Serve over TLS (the Collector's `tls` keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<TlsServerConfig>>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "127.0.0.1:13133".into(),
            path: "/".into(),
            tls: None,
        }
    }
}
