//! Client TLS settings shared by push exporters (the Collector's `configtls` keys), via rustls.

use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;

/// `tls` on a client.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// Plaintext (no TLS) when the endpoint has no scheme. `http://` endpoints are always
    /// plaintext and `https://` always TLS, whatever this says.
    pub insecure: bool,
    /// Skip server certificate verification (otlp_http only; for tests, never production).
    pub insecure_skip_verify: bool,
    /// PEM file of CA certificates to trust in addition to the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM client certificate for mutual TLS (with `key_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// PEM private key for `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Server name to verify instead of the endpoint's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name_override: Option<String>,
}

impl TlsClientConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.cert_file.is_some() != self.key_file.is_some() {
            diag.error(format!("{path}.tls"), "cert_file and key_file go together");
        }
    }

    /// Reads a configured PEM file.
    pub fn read(path: &Option<String>) -> Result<Option<Vec<u8>>, super::BuildError> {
        match path {
            None => Ok(None),
            Some(p) => std::fs::read(p)
                .map(Some)
                .map_err(|e| super::BuildError::File {
                    path: p.clone(),
                    reason: e.to_string(),
                }),
        }
    }
}

impl TlsClientConfig {
    /// An HTTP client (connection pool) with these TLS settings: extra CA roots, a client
    /// certificate for mutual TLS, optional verification skip.
    pub fn http_client(
        &self,
        timeout: std::time::Duration,
    ) -> Result<reqwest::Client, super::BuildError> {
        self.http_client_with(timeout, true)
    }

    /// [`Self::http_client`], following redirects (up to 10) or not.
    pub fn http_client_with(
        &self,
        timeout: std::time::Duration,
        follow_redirects: bool,
    ) -> Result<reqwest::Client, super::BuildError> {
        use super::BuildError;
        let mut b = reqwest::Client::builder()
            .redirect(if follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .danger_accept_invalid_certs(self.insecure_skip_verify);
        if let Some(ca) = Self::read(&self.ca_file)? {
            for c in reqwest::Certificate::from_pem_bundle(&ca)
                .map_err(|e| BuildError::Tls(e.to_string()))?
            {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(mut cert), Some(key)) =
            (Self::read(&self.cert_file)?, Self::read(&self.key_file)?)
        {
            cert.extend_from_slice(&key);
            b = b.identity(
                reqwest::Identity::from_pem(&cert).map_err(|e| BuildError::Tls(e.to_string()))?,
            );
        }
        b.build()
            .map_err(|e| BuildError::Other(format!("http client: {e}")))
    }
}

/// Whether an endpoint (with or without scheme) uses TLS, and the URI to dial.
pub fn resolve_endpoint(endpoint: &str, tls: &TlsClientConfig) -> (bool, String) {
    if let Some(rest) = endpoint.strip_prefix("http://") {
        (false, format!("http://{rest}"))
    } else if endpoint.starts_with("https://") {
        (true, endpoint.to_string())
    } else if tls.insecure {
        (false, format!("http://{endpoint}"))
    } else {
        (true, format!("https://{endpoint}"))
    }
}
