//! `headers_setter`: a client authenticator that sets the headers of every export of the
//! exporters that reference it (`auth: {authenticator: headers_setter}`), from fixed values or
//! from the context of the data (`from_context`: a request header the receiver kept with
//! `include_metadata`, or `auth.username`) — how multi-tenant Loki, Mimir and Tempo setups pass
//! `X-Scope-OrgID` on. With a `batch` processor, list the keys in its `metadata_keys` so each
//! batch holds one tenant's data. The Collector's keys; the rules run in
//! [`crate::net::auth::Authenticator::apply_client`].

use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;
use crate::net::auth::{Authenticator, HeaderAction, HeaderRule, HeaderSource};

/// `extensions.headers_setter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersSetterConfig {
    pub headers: Vec<HeaderConfig>,
}

/// One entry of `headers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderConfig {
    /// The header name.
    pub key: String,
    /// `insert`, `update`, `upsert` (default) or `delete`.
    pub action: HeaderAction,
    /// A fixed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A request metadata key (or `auth.username` / `auth.subject`) to take the value from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_context: Option<String>,
    /// The value when the context has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

impl HeadersSetterConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.headers.is_empty() {
            diag.error(format!("{path}.headers"), "at least one header is required");
        }
        for (i, h) in self.headers.iter().enumerate() {
            let p = format!("{path}.headers[{i}]");
            if http::HeaderName::from_bytes(h.key.as_bytes()).is_err() {
                diag.error(
                    format!("{p}.key"),
                    format!("{:?} is not a valid header name", h.key),
                );
            }
            let sources = h.value.is_some() as u8 + h.from_context.is_some() as u8;
            if h.action != HeaderAction::Delete && sources != 1 {
                diag.error(&p, "set exactly one of value or from_context");
            }
            if h.default_value.is_some() && h.from_context.is_none() {
                diag.error(
                    format!("{p}.default_value"),
                    "only applies with from_context",
                );
            }
        }
    }

    pub fn build(&self, id: &str) -> Authenticator {
        let rules = self
            .headers
            .iter()
            .filter_map(|h| {
                Some(HeaderRule {
                    header: http::HeaderName::from_bytes(h.key.to_ascii_lowercase().as_bytes())
                        .ok()?,
                    action: h.action,
                    source: match &h.from_context {
                        Some(k) => HeaderSource::Context {
                            key: k.to_ascii_lowercase(),
                            default: h.default_value.clone(),
                        },
                        None => HeaderSource::Value(h.value.clone().unwrap_or_default()),
                    },
                })
            })
            .collect();
        Authenticator::headers_setter(id, rules)
    }
}
