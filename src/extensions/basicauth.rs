//! `basicauth`: HTTP basic authentication. As a server authenticator it checks users against
//! htpasswd entries (`htpasswd.file` and/or `htpasswd.inline`); as a client authenticator it
//! sends `client_auth.username`/`password`. The Collector's keys. The check itself is
//! [`crate::net::auth`].

use serde::{Deserialize, Serialize};

use crate::component::{BuildError, Diagnostics};
use crate::net::auth::{parse_htpasswd, Authenticator};

/// `extensions.basicauth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<Htpasswd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
}

/// `basicauth.htpasswd`: users a server accepts (bcrypt, `{SHA}`, `{SSHA}` or plain entries).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Htpasswd {
    /// An htpasswd file, read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// htpasswd lines inline (redacted by `print-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// `basicauth.client_auth`: the credentials an exporter sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuth {
    pub username: String,
    /// Redacted by `print-config`.
    pub password: String,
}

impl BasicAuthConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.htpasswd.is_none() && self.client_auth.is_none() {
            diag.error(path, "set htpasswd (server) or client_auth (client)");
        }
        if let Some(h) = &self.htpasswd {
            if h.file.is_none() && h.inline.is_none() {
                diag.error(format!("{path}.htpasswd"), "set file or inline");
            }
            if let Some(text) = &h.inline {
                if let Err(e) = parse_htpasswd(text) {
                    diag.error(format!("{path}.htpasswd.inline"), e);
                }
            }
        }
        if let Some(c) = &self.client_auth {
            if c.username.is_empty() || c.username.contains(':') {
                diag.error(
                    format!("{path}.client_auth.username"),
                    "must be non-empty and without ':'",
                );
            }
        }
    }

    pub fn build(&self, id: &str) -> Result<Authenticator, BuildError> {
        let mut text = String::new();
        if let Some(h) = &self.htpasswd {
            if let Some(f) = &h.file {
                text = std::fs::read_to_string(f).map_err(|e| BuildError::File {
                    path: f.clone(),
                    reason: e.to_string(),
                })?;
                text.push('\n');
            }
            if let Some(i) = &h.inline {
                text.push_str(i);
            }
        }
        let client = self
            .client_auth
            .as_ref()
            .map(|c| (c.username.clone(), c.password.clone()));
        Authenticator::basic(id, &text, client)
    }
}
