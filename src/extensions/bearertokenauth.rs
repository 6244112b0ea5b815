//! `bearertokenauth`: a bearer token checked on servers that reference it
//! (`auth: {authenticator: bearertokenauth}`) and sent by exporters that reference it. The
//! Collector's keys: `scheme` (default `Bearer`), `token`, `tokens`, `filename` (one token,
//! re-read when the file changes), `header` (default `Authorization`). The check itself is
//! [`crate::net::auth`].

use serde::{Deserialize, Serialize};

use crate::component::{BuildError, Diagnostics};
use crate::net::auth::Authenticator;

/// `extensions.bearertokenauth`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BearerTokenAuthConfig {
    /// Scheme before the token in the header (`Bearer`); empty: the header is the bare token.
    pub scheme: String,
    /// Header carrying the token.
    pub header: String,
    /// The token (redacted by `print-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Several accepted tokens (servers accept any; clients send the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// A file holding the token; re-read when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl Default for BearerTokenAuthConfig {
    fn default() -> Self {
        BearerTokenAuthConfig {
            scheme: "Bearer".into(),
            header: "Authorization".into(),
            token: None,
            tokens: Vec::new(),
            filename: None,
        }
    }
}

impl BearerTokenAuthConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let sources = [
            self.token.is_some(),
            !self.tokens.is_empty(),
            self.filename.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if sources == 0 {
            diag.error(path, "set one of token, tokens or filename");
        } else if sources > 1 {
            diag.error(path, "set only one of token, tokens or filename");
        }
        if self.token.as_deref() == Some("") || self.tokens.iter().any(|t| t.is_empty()) {
            diag.error(path, "a token must not be empty");
        }
        if http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            diag.error(
                format!("{path}.header"),
                format!("{:?} is not a valid header name", self.header),
            );
        }
    }

    pub fn build(&self, id: &str) -> Result<Authenticator, BuildError> {
        let mut tokens = self.tokens.clone();
        if let Some(t) = &self.token {
            tokens.insert(0, t.clone());
        }
        Authenticator::bearer(
            id,
            &self.scheme,
            &self.header,
            tokens,
            self.filename.as_deref(),
        )
    }
}
