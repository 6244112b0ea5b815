//! Server TLS for every listener (the Collector's `configtls` server keys), via rustls.
//!
//! Contract:
//! - the certificate and key come from files (`cert_file`/`key_file`) or inline PEM
//!   (`cert_pem`/`key_pem`); `client_ca_file` (or `client_ca_pem`) turns on mutual TLS: a client
//!   without a certificate signed by one of those CAs is refused at the handshake;
//! - `min_version`/`max_version` are `"1.2"` or `"1.3"` (rustls speaks nothing older; the
//!   Collector's default minimum is 1.2 as well); `cipher_suites` takes the IANA names the
//!   Collector takes, and restricts TLS 1.2 suites (TLS 1.3 suites only when one is named, as
//!   Go does not let TLS 1.3 suites be chosen);
//! - with `reload_interval`, the files are checked at most that often (on the next accept) and,
//!   when their content changed, the next handshake uses the new certificate; established
//!   connections keep theirs. A file that fails to load keeps the previous certificate and logs
//!   a warning (a certificate renewer writing the pair non-atomically must not take the
//!   listener down);
//! - ALPN offers `h2` and `http/1.1`, so gRPC clients (which require `h2`) and HTTP/1.1 clients
//!   share one listener.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::component::units::Duration;
use crate::component::{BuildError, Diagnostics};

/// `tls` on a server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// PEM certificate chain file (or `cert_pem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// PEM certificate chain, inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    /// PEM private key file (or `key_pem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// PEM private key, inline (redacted by `print-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
    /// CA certificates that sign client certificates: mutual TLS, clients without one are
    /// refused at the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<String>,
    /// Inline form of `client_ca_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_pem: Option<String>,
    /// Accepted for compatibility: with `reload_interval`, the client CAs are re-read together
    /// with the certificate (the Collector watches the file when this is true).
    pub client_ca_file_reload: bool,
    /// Lowest TLS version: `"1.2"` (default) or `"1.3"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Highest TLS version: `"1.3"` (default) or `"1.2"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Cipher suites by IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); empty: rustls'
    /// safe defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// How often to check the certificate files for a new certificate; 0 (default): never.
    pub reload_interval: Duration,
    /// Server CA settings the Collector accepts but a server does not use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_system_ca_certs_pool: Option<bool>,
    /// Key exchange groups; rustls chooses its own (accepted with a warning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub curve_preferences: Vec<String>,
}

fn version(v: &str) -> Option<&'static rustls::SupportedProtocolVersion> {
    match v {
        "1.2" => Some(&rustls::version::TLS12),
        "1.3" => Some(&rustls::version::TLS13),
        _ => None,
    }
}

fn suite_name(s: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

impl TlsServerConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let path = format!("{path}.tls");
        match (&self.cert_file, &self.cert_pem) {
            (None, None) => diag.error(&path, "cert_file (or cert_pem) is required"),
            (Some(_), Some(_)) => diag.error(&path, "set cert_file or cert_pem, not both"),
            _ => {}
        }
        match (&self.key_file, &self.key_pem) {
            (None, None) => diag.error(&path, "key_file (or key_pem) is required"),
            (Some(_), Some(_)) => diag.error(&path, "set key_file or key_pem, not both"),
            _ => {}
        }
        if self.client_ca_file.is_some() && self.client_ca_pem.is_some() {
            diag.error(&path, "set client_ca_file or client_ca_pem, not both");
        }
        for (key, v) in [
            ("min_version", &self.min_version),
            ("max_version", &self.max_version),
        ] {
            if let Some(v) = v {
                if version(v).is_none() {
                    diag.error(
                        format!("{path}.{key}"),
                        format!("unsupported TLS version {v:?}: use \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are not offered)"),
                    );
                }
            }
        }
        if self.min_version.as_deref() == Some("1.3") && self.max_version.as_deref() == Some("1.2")
        {
            diag.error(&path, "min_version is above max_version");
        }
        let known: Vec<String> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(suite_name)
            .collect();
        for s in &self.cipher_suites {
            if !known.contains(s) {
                diag.error(
                    format!("{path}.cipher_suites"),
                    format!(
                        "unknown or unsupported cipher suite {s:?} (supported: {})",
                        known.join(", ")
                    ),
                );
            }
        }
        if !self.curve_preferences.is_empty() {
            diag.warn(format!("{path}.curve_preferences"), "accepted for compatibility, no effect in otelgw: rustls chooses the key exchange groups");
        }
        if self.ca_file.is_some()
            || self.ca_pem.is_some()
            || self.include_system_ca_certs_pool.is_some()
        {
            diag.warn(&path, "accepted for compatibility, no effect in otelgw: ca_file, ca_pem and include_system_ca_certs_pool verify servers, not clients (use client_ca_file for mutual TLS)");
        }
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.client_ca_file.is_some() || self.client_ca_pem.is_some()
    }

    /// The PEM material as configured: `(certificate chain, key, client CAs)`.
    fn material(&self) -> Result<Material, BuildError> {
        fn read(file: &Option<String>, inline: &Option<String>) -> Result<Vec<u8>, BuildError> {
            match (file, inline) {
                (Some(p), _) => std::fs::read(p).map_err(|e| BuildError::File {
                    path: p.clone(),
                    reason: e.to_string(),
                }),
                (None, Some(pem)) => Ok(pem.as_bytes().to_vec()),
                (None, None) => Ok(Vec::new()),
            }
        }
        Ok(Material {
            cert: read(&self.cert_file, &self.cert_pem)?,
            key: read(&self.key_file, &self.key_pem)?,
            client_ca: if self.mutual() {
                Some(read(&self.client_ca_file, &self.client_ca_pem)?)
            } else {
                None
            },
        })
    }

    fn build(&self, m: &Material) -> Result<rustls::ServerConfig, BuildError> {
        let where_ = |what: &str, file: &Option<String>| match file {
            Some(f) => format!("{what} {f}"),
            None => format!("inline {what}"),
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&m.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                BuildError::Tls(format!("{}: {e}", where_("certificate", &self.cert_file)))
            })?;
        if certs.is_empty() {
            return Err(BuildError::Tls(format!(
                "{}: no certificate found",
                where_("certificate", &self.cert_file)
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(&m.key)
            .map_err(|e| BuildError::Tls(format!("{}: {e}", where_("key", &self.key_file))))?;
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let names_13 = self.cipher_suites.iter().any(|n| {
                provider
                    .cipher_suites
                    .iter()
                    .any(|s| suite_name(s) == *n && s.tls13().is_some())
            });
            provider.cipher_suites.retain(|s| {
                (s.tls13().is_some() && !names_13) || self.cipher_suites.contains(&suite_name(s))
            });
        }
        let min = self
            .min_version
            .as_deref()
            .and_then(version)
            .unwrap_or(&rustls::version::TLS12);
        let max = self
            .max_version
            .as_deref()
            .and_then(version)
            .unwrap_or(&rustls::version::TLS13);
        let versions: Vec<&'static rustls::SupportedProtocolVersion> =
            [&rustls::version::TLS12, &rustls::version::TLS13]
                .into_iter()
                .filter(|v| {
                    let rank = |x: &rustls::SupportedProtocolVersion| u16::from(x.version);
                    rank(v) >= rank(min) && rank(v) <= rank(max)
                })
                .collect();
        let provider = Arc::new(provider);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| BuildError::Tls(e.to_string()))?;
        let builder = match &m.client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem) {
                    let c = c.map_err(|e| {
                        BuildError::Tls(format!(
                            "{}: {e}",
                            where_("client CA", &self.client_ca_file)
                        ))
                    })?;
                    roots.add(c).map_err(|e| {
                        BuildError::Tls(format!(
                            "{}: {e}",
                            where_("client CA", &self.client_ca_file)
                        ))
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| BuildError::Tls(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|e| BuildError::Tls(e.to_string()))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Loads the certificate now (a bad one fails the build) and returns the listener's TLS.
    pub fn server(&self) -> Result<Arc<ServerTls>, BuildError> {
        let m = self.material()?;
        let cfg = Arc::new(self.build(&m)?);
        Ok(Arc::new(ServerTls {
            config: self.clone(),
            current: RwLock::new((cfg, m.fingerprint())),
            next_check: Mutex::new(Instant::now() + self.reload_interval.get()),
        }))
    }
}

struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Material {
    fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            &self.cert,
            &self.key,
            self.client_ca.as_ref().unwrap_or(&Vec::new()),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// A listener's TLS: the current rustls config, swapped when the files change.
pub struct ServerTls {
    config: TlsServerConfig,
    current: RwLock<(Arc<rustls::ServerConfig>, [u8; 32])>,
    next_check: Mutex<Instant>,
}

impl ServerTls {
    /// The acceptor for the next connection (after a reload check when one is due).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.maybe_reload();
        let cfg = match self.current.read() {
            Ok(g) => g.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        };
        tokio_rustls::TlsAcceptor::from(cfg)
    }

    fn maybe_reload(&self) {
        let interval = self.config.reload_interval.get();
        if interval.is_zero() {
            return;
        }
        let now = Instant::now();
        {
            let Ok(mut next) = self.next_check.lock() else {
                return;
            };
            if now < *next {
                return;
            }
            *next = now + interval;
        }
        let loaded = self.config.material().and_then(|m| {
            let fp = m.fingerprint();
            let unchanged = self.current.read().map(|g| g.1 == fp).unwrap_or(false);
            if unchanged {
                Ok(None)
            } else {
                self.config.build(&m).map(|c| Some((c, fp)))
            }
        });
        match loaded {
            Ok(None) => {}
            Ok(Some((cfg, fp))) => {
                if let Ok(mut g) = self.current.write() {
                    *g = (Arc::new(cfg), fp);
                    tracing::info!(
                        cert_file = self.config.cert_file.as_deref().unwrap_or("inline"),
                        "tls certificate reloaded"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "tls certificate reload failed; keeping the previous certificate")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn inline_pem_versions_and_suites_build_the_rustls_config() {
        let (cert, key) = pem_pair();
        let cfg = TlsServerConfig {
            cert_pem: Some(cert.clone()),
            key_pem: Some(key.clone()),
            min_version: Some("1.3".into()),
            ..Default::default()
        };
        let mut d = Diagnostics::default();
        cfg.validate("r", &mut d);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let built = cfg.build(&cfg.material().unwrap()).unwrap();
        assert_eq!(
            built.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let suites = TlsServerConfig {
            cert_pem: Some(cert),
            key_pem: Some(key),
            max_version: Some("1.2".into()),
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()],
            ..Default::default()
        };
        assert!(suites.build(&suites.material().unwrap()).is_ok());
        let bad = TlsServerConfig {
            cert_pem: Some("not a certificate".into()),
            key_pem: Some("not a key".into()),
            ..Default::default()
        };
        let e = bad.build(&bad.material().unwrap()).unwrap_err().to_string();
        assert!(e.contains("inline certificate"), "{e}");
    }

    #[test]
    fn unsupported_versions_and_suites_are_named_at_their_paths() {
        let cfg = TlsServerConfig {
            cert_file: Some("/c".into()),
            key_file: Some("/k".into()),
            min_version: Some("1.0".into()),
            cipher_suites: vec!["TLS_RSA_WITH_RC4_128_SHA".into()],
            ..Default::default()
        };
        let mut d = Diagnostics::default();
        cfg.validate("r", &mut d);
        let paths: Vec<_> = d.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["r.tls.min_version", "r.tls.cipher_suites"]);
    }
}
