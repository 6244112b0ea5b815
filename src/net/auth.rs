//! Request authentication for servers, and the credentials push exporters send.
//!
//! Contract:
//! - an [`Authenticator`] is built from a `bearertokenauth`, `basicauth` or `headers_setter`
//!   extension ([`crate::extensions`]) and referenced from a server or an exporter as
//!   `auth: {authenticator: <id>}` (`headers_setter` only from exporters);
//! - as a client, [`Authenticator::apply_client`] sets the outgoing headers of one export:
//!   the bearer token, the basic-auth credentials, or `headers_setter`'s rules, whose values may
//!   come from the request that carried the data (`from_context`: a request header kept with
//!   the receiver's `include_metadata`, or `auth.username` / `auth.subject`);
//! - [`Authenticator::check`] reads the request headers and answers the authenticated identity
//!   (the user for basic auth, the authenticator's id for a bearer token) or a refusal that
//!   carries no detail (the caller answers 401 / `UNAUTHENTICATED` and never says why);
//! - secrets are compared in constant time: both sides are hashed (SHA-256) and the digests
//!   compared with `subtle`, so neither content nor length leaks through timing;
//! - a bearer token `filename` is re-read when the file changes (checked at most once a
//!   second), so a rotated token takes effect without a restart;
//! - htpasswd entries may be bcrypt (`$2a$`/`$2b$`/`$2y$`), `{SHA}`, `{SSHA}` or plain text, as
//!   the Collector's `basicauth` accepts; MD5-crypt (`$apr1$`) and `crypt` are refused at
//!   validation (re-hash with `htpasswd -B`). A verified bcrypt credential is remembered (its
//!   SHA-256) for a minute, so a client does not pay a bcrypt per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::component::BuildError;

/// `auth` on a server: which authenticator extension checks its requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerAuthConfig {
    /// The id of a `bearertokenauth` or `basicauth` extension.
    pub authenticator: String,
}

/// `auth` on a client (an exporter): which authenticator extension supplies its credentials.
pub type ClientAuthConfig = ServerAuthConfig;

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    bool::from(digest(a).ct_eq(&digest(b)))
}

/// A hash from an htpasswd line.
#[derive(Debug)]
pub enum PasswordHash {
    Bcrypt(String),
    Sha1([u8; 20]),
    Ssha { digest: [u8; 20], salt: Vec<u8> },
    Plain(String),
}

impl PasswordHash {
    /// Parses the hash part of an htpasswd line.
    pub fn parse(h: &str) -> Result<PasswordHash, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$") {
            return Ok(PasswordHash::Bcrypt(h.to_string()));
        }
        if let Some(rest) = h.strip_prefix("{SHA}") {
            let raw = b64
                .decode(rest)
                .map_err(|_| "bad {SHA} hash (not base64)".to_string())?;
            let d: [u8; 20] = raw
                .try_into()
                .map_err(|_| "bad {SHA} hash (not 20 bytes)".to_string())?;
            return Ok(PasswordHash::Sha1(d));
        }
        if let Some(rest) = h.strip_prefix("{SSHA}") {
            let raw = b64
                .decode(rest)
                .map_err(|_| "bad {SSHA} hash (not base64)".to_string())?;
            if raw.len() <= 20 {
                return Err("bad {SSHA} hash (too short)".into());
            }
            let mut d = [0u8; 20];
            d.copy_from_slice(&raw[..20]);
            return Ok(PasswordHash::Ssha {
                digest: d,
                salt: raw[20..].to_vec(),
            });
        }
        if h.starts_with("$apr1$")
            || h.starts_with("$1$")
            || h.starts_with("$5$")
            || h.starts_with("$6$")
        {
            return Err(
                "crypt/MD5 hashes are not supported; re-hash with bcrypt (htpasswd -B)".into(),
            );
        }
        Ok(PasswordHash::Plain(h.to_string()))
    }

    fn verify(&self, password: &str) -> bool {
        use sha1::Digest as _;
        match self {
            PasswordHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            PasswordHash::Sha1(d) => {
                let got: [u8; 20] = sha1::Sha1::digest(password.as_bytes()).into();
                bool::from(got.ct_eq(d))
            }
            PasswordHash::Ssha { digest, salt } => {
                let mut h = sha1::Sha1::new();
                h.update(password.as_bytes());
                h.update(salt);
                let got: [u8; 20] = h.finalize().into();
                bool::from(got.ct_eq(digest))
            }
            PasswordHash::Plain(p) => same_secret(p.as_bytes(), password.as_bytes()),
        }
    }

    fn is_slow(&self) -> bool {
        matches!(self, PasswordHash::Bcrypt(_))
    }
}

/// Parses htpasswd text (`user:hash` per line; blank lines and `#` comments skipped).
pub fn parse_htpasswd(text: &str) -> Result<HashMap<String, PasswordHash>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected user:password", i + 1))?;
        if user.is_empty() {
            return Err(format!("line {}: empty user name", i + 1));
        }
        let h = PasswordHash::parse(hash)
            .map_err(|e| format!("line {} (user {user:?}): {e}", i + 1))?;
        out.insert(user.to_string(), h);
    }
    Ok(out)
}

/// The header values a bearer authenticator accepts (`<scheme> <token>`), built once per token
/// set with their SHA-256, so a request costs one hash and no allocation.
struct Accepted {
    values: Vec<String>,
    digests: Vec<[u8; 32]>,
}

impl Accepted {
    fn new(scheme: &str, tokens: Vec<String>) -> Arc<Accepted> {
        let values: Vec<String> = tokens
            .into_iter()
            .map(|t| {
                if scheme.is_empty() {
                    t
                } else {
                    format!("{scheme} {t}")
                }
            })
            .collect();
        let digests = values.iter().map(|v| digest(v.as_bytes())).collect();
        Arc::new(Accepted { values, digests })
    }
}

/// Where a bearer authenticator's accepted tokens come from.
enum Tokens {
    Fixed(Arc<Accepted>),
    /// A file holding one token (surrounding whitespace trimmed), re-read when it changes.
    File {
        path: String,
        scheme: String,
        state: RwLock<(Option<SystemTime>, Arc<Accepted>)>,
        next_check: Mutex<Instant>,
    },
}

impl Tokens {
    fn read_file(path: &str, scheme: &str) -> Result<(Option<SystemTime>, Arc<Accepted>), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let t = text.trim().to_string();
        let tokens = if t.is_empty() { vec![] } else { vec![t] };
        Ok((mtime, Accepted::new(scheme, tokens)))
    }

    fn current(&self) -> Arc<Accepted> {
        match self {
            Tokens::Fixed(t) => t.clone(),
            Tokens::File {
                path,
                scheme,
                state,
                next_check,
            } => {
                let due = next_check
                    .lock()
                    .map(|mut n| {
                        let now = Instant::now();
                        let due = now >= *n;
                        if due {
                            *n = now + Duration::from_secs(1);
                        }
                        due
                    })
                    .unwrap_or(false);
                if due {
                    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                    let changed = state.read().map(|s| s.0 != mtime).unwrap_or(true);
                    if changed {
                        match Tokens::read_file(path, scheme) {
                            Ok(fresh) => {
                                if let Ok(mut s) = state.write() {
                                    *s = fresh;
                                    tracing::info!(file = %path, "bearer token file reloaded");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "bearer token file unreadable; keeping the previous token")
                            }
                        }
                    }
                }
                match state.read() {
                    Ok(s) => s.1.clone(),
                    Err(poisoned) => poisoned.into_inner().1.clone(),
                }
            }
        }
    }
}

/// The bearer-token authenticator (`bearertokenauth`).
pub struct BearerAuth {
    header: HeaderName,
    tokens: Tokens,
}

/// The basic-auth authenticator (`basicauth`).
pub struct BasicAuth {
    users: HashMap<String, PasswordHash>,
    /// SHA-256 of recently verified `user:password` pairs (bcrypt ones), and when they expire.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Credentials this authenticator sends as a client (`client_auth`).
    client: Option<(String, String)>,
}

/// What a `headers_setter` rule does to its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderAction {
    /// Set the header only when the request does not have it yet.
    Insert,
    /// Set the header only when the request has it already.
    Update,
    /// Set the header (the Collector's default).
    #[default]
    Upsert,
    Delete,
}

/// Where a `headers_setter` rule's value comes from.
#[derive(Debug, Clone)]
pub enum HeaderSource {
    Value(String),
    /// A request metadata key (lowercase header name) or `auth.username` / `auth.subject`,
    /// with the value used when the request has none.
    Context {
        key: String,
        default: Option<String>,
    },
}

/// One `headers_setter` rule.
#[derive(Debug, Clone)]
pub struct HeaderRule {
    pub header: HeaderName,
    pub action: HeaderAction,
    pub source: HeaderSource,
}

enum Kind {
    Bearer(BearerAuth),
    Basic(BasicAuth),
    Headers(Vec<HeaderRule>),
}

/// One authenticator extension, shared by every server and exporter that references it.
pub struct Authenticator {
    id: String,
    kind: Kind,
}

/// How long a verified bcrypt credential is remembered.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Most remembered credentials (cleared when full).
const VERIFIED_MAX: usize = 4096;

impl Authenticator {
    /// A bearer authenticator. `filename` (when given) wins over `tokens`.
    pub fn bearer(
        id: &str,
        scheme: &str,
        header: &str,
        tokens: Vec<String>,
        filename: Option<&str>,
    ) -> Result<Authenticator, BuildError> {
        let header = HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
            .map_err(|e| BuildError::Other(format!("{id}: header {header:?}: {e}")))?;
        let tokens = match filename {
            Some(path) => {
                let first = Tokens::read_file(path, scheme).map_err(|reason| BuildError::File {
                    path: path.to_string(),
                    reason,
                })?;
                Tokens::File {
                    path: path.to_string(),
                    scheme: scheme.to_string(),
                    state: RwLock::new(first),
                    next_check: Mutex::new(Instant::now() + Duration::from_secs(1)),
                }
            }
            None => Tokens::Fixed(Accepted::new(scheme, tokens)),
        };
        Ok(Authenticator {
            id: id.to_string(),
            kind: Kind::Bearer(BearerAuth { header, tokens }),
        })
    }

    /// A basic-auth authenticator from htpasswd text, and the credentials it sends as a client.
    pub fn basic(
        id: &str,
        htpasswd: &str,
        client: Option<(String, String)>,
    ) -> Result<Authenticator, BuildError> {
        let users = parse_htpasswd(htpasswd)
            .map_err(|e| BuildError::Other(format!("{id}: htpasswd: {e}")))?;
        Ok(Authenticator {
            id: id.to_string(),
            kind: Kind::Basic(BasicAuth {
                users,
                verified: Mutex::new(HashMap::new()),
                client,
            }),
        })
    }

    /// The `headers_setter` authenticator (client side only).
    pub fn headers_setter(id: &str, rules: Vec<HeaderRule>) -> Authenticator {
        Authenticator {
            id: id.to_string(),
            kind: Kind::Headers(rules),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether servers can check requests with it (`headers_setter` cannot).
    pub fn is_server(&self) -> bool {
        !matches!(self.kind, Kind::Headers(_))
    }

    /// The `WWW-Authenticate` challenge for a 401.
    pub fn challenge(&self) -> &'static str {
        match self.kind {
            Kind::Bearer(_) => "Bearer realm=\"otelgw\"",
            Kind::Basic(_) | Kind::Headers(_) => "Basic realm=\"otelgw\"",
        }
    }

    /// Checks a request's credentials: `Some(identity)` when they are valid.
    pub async fn check(&self, headers: &HeaderMap) -> Option<Arc<str>> {
        match &self.kind {
            Kind::Headers(_) => None,
            Kind::Bearer(b) => {
                let got = digest(headers.get(&b.header)?.as_bytes());
                let accepted = b.tokens.current();
                let mut ok = false;
                for d in &accepted.digests {
                    // every token is compared, so the time does not tell which one matched
                    ok |= bool::from(d.ct_eq(&got));
                }
                ok.then(|| Arc::from(self.id.as_str()))
            }
            Kind::Basic(b) => {
                let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
                let (scheme, rest) = v.split_once(' ')?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return None;
                }
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()?;
                let text = String::from_utf8(raw).ok()?;
                let (user, password) = text.split_once(':')?;
                let hash = b.users.get(user)?;
                if !hash.is_slow() {
                    return hash.verify(password).then(|| Arc::from(user));
                }
                let key = digest(text.as_bytes());
                let now = Instant::now();
                let remembered = b
                    .verified
                    .lock()
                    .map(|m| m.get(&key).is_some_and(|exp| *exp > now))
                    .unwrap_or(false);
                if remembered {
                    return Some(Arc::from(user));
                }
                // bcrypt takes tens of milliseconds: off the request threads
                let (h, pw) = match hash {
                    PasswordHash::Bcrypt(h) => (h.clone(), password.to_string()),
                    _ => return None,
                };
                let ok =
                    tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false))
                        .await
                        .unwrap_or(false);
                if ok {
                    if let Ok(mut m) = b.verified.lock() {
                        if m.len() >= VERIFIED_MAX {
                            m.clear();
                        }
                        m.insert(key, now + VERIFIED_TTL);
                    }
                }
                ok.then(|| Arc::from(user))
            }
        }
    }

    /// Sets the headers of one outgoing export (`meta`: the context of the data it carries).
    pub fn apply_client(&self, headers: &mut HeaderMap, meta: &crate::data::RequestMeta) {
        if let Kind::Headers(rules) = &self.kind {
            for r in rules {
                let value = match &r.source {
                    HeaderSource::Value(v) => Some(v.clone()),
                    HeaderSource::Context { key, default } => context_value(meta, key)
                        .map(str::to_string)
                        .or_else(|| default.clone()),
                };
                let exists = headers.contains_key(&r.header);
                match r.action {
                    HeaderAction::Delete => {
                        headers.remove(&r.header);
                    }
                    HeaderAction::Insert if exists => {}
                    HeaderAction::Update if !exists => {}
                    _ => {
                        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                            headers.insert(r.header.clone(), v);
                        }
                    }
                }
            }
            return;
        }
        if let Some((k, v)) = self.client_header() {
            headers.insert(k, v);
        }
    }

    /// The header a client using this authenticator sends, if it has client credentials.
    pub fn client_header(&self) -> Option<(HeaderName, HeaderValue)> {
        match &self.kind {
            Kind::Headers(_) => None,
            Kind::Bearer(b) => {
                let accepted = b.tokens.current();
                let mut v = HeaderValue::from_str(accepted.values.first()?).ok()?;
                v.set_sensitive(true);
                Some((b.header.clone(), v))
            }
            Kind::Basic(b) => {
                let (user, pw) = b.client.as_ref()?;
                let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
                let mut v = HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
                v.set_sensitive(true);
                Some((http::header::AUTHORIZATION, v))
            }
        }
    }
}

/// A `from_context` key's value in a request's context.
fn context_value<'a>(meta: &'a crate::data::RequestMeta, key: &str) -> Option<&'a str> {
    match key {
        "auth.username" | "auth.subject" => meta.auth.as_deref(),
        k => {
            let k = k.strip_prefix("metadata.").unwrap_or(k);
            meta.headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secrets
        f.debug_struct("Authenticator")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(k: &str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn bearer_accepts_only_the_configured_tokens_with_the_scheme() {
        let a = Authenticator::bearer(
            "bearertokenauth",
            "Bearer",
            "Authorization",
            vec!["s3cret".into(), "other".into()],
            None,
        )
        .unwrap();
        assert!(a
            .check(&headers("authorization", "Bearer s3cret"))
            .await
            .is_some());
        assert!(a
            .check(&headers("authorization", "Bearer other"))
            .await
            .is_some());
        assert!(a
            .check(&headers("authorization", "Bearer s3cre"))
            .await
            .is_none());
        assert!(a.check(&headers("authorization", "s3cret")).await.is_none());
        assert!(a
            .check(&headers("x-token", "Bearer s3cret"))
            .await
            .is_none());
        assert!(a.check(&HeaderMap::new()).await.is_none());
        let custom = Authenticator::bearer("b", "", "X-Token", vec!["t".into()], None).unwrap();
        assert!(custom.check(&headers("x-token", "t")).await.is_some());
    }

    #[tokio::test]
    async fn bearer_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "first\n").unwrap();
        let a = Authenticator::bearer("b", "Bearer", "authorization", vec![], p.to_str()).unwrap();
        assert!(a
            .check(&headers("authorization", "Bearer first"))
            .await
            .is_some());
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&p, "second").unwrap();
        // make the change visible even on coarse mtime clocks
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(later)
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(a
            .check(&headers("authorization", "Bearer second"))
            .await
            .is_some());
        assert!(a
            .check(&headers("authorization", "Bearer first"))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn basic_auth_verifies_bcrypt_sha_ssha_and_plain_entries() {
        let bcrypt_hash = bcrypt::hash("pw-b", 4).unwrap();
        let sha = format!(
            "{{SHA}}{}",
            base64::engine::general_purpose::STANDARD
                .encode(<sha1::Sha1 as sha1::Digest>::digest(b"pw-s"))
        );
        let mut ssha_raw = <sha1::Sha1 as sha1::Digest>::digest(b"pw-xsalt").to_vec();
        ssha_raw.extend_from_slice(b"salt");
        let ssha = format!(
            "{{SSHA}}{}",
            base64::engine::general_purpose::STANDARD.encode(ssha_raw)
        );
        let text = format!("# users\nb:{bcrypt_hash}\ns:{sha}\nx:{ssha}\np:plainpw\n");
        let a = Authenticator::basic("basicauth", &text, None).unwrap();
        let basic = |u: &str, p: &str| {
            headers(
                "authorization",
                &format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ),
            )
        };
        for (u, p) in [
            ("b", "pw-b"),
            ("s", "pw-s"),
            ("x", "pw-x"),
            ("p", "plainpw"),
        ] {
            assert_eq!(a.check(&basic(u, p)).await.as_deref(), Some(u), "user {u}");
            assert!(a.check(&basic(u, "wrong")).await.is_none(), "user {u}");
        }
        // remembered bcrypt credential still checks the password
        assert!(a.check(&basic("b", "pw-b")).await.is_some());
        assert!(a.check(&basic("b", "pw-c")).await.is_none());
        assert!(a.check(&basic("nobody", "pw-b")).await.is_none());
        assert!(a
            .check(&headers("authorization", "Bearer x"))
            .await
            .is_none());
        assert!(a
            .check(&headers("authorization", "Basic !!!"))
            .await
            .is_none());
    }

    #[test]
    fn htpasswd_refuses_unsupported_hashes_and_bad_lines() {
        assert!(parse_htpasswd("u:$apr1$abc$def")
            .unwrap_err()
            .contains("bcrypt"));
        assert!(parse_htpasswd("nocolon").unwrap_err().contains("line 1"));
        assert!(parse_htpasswd(":pw").is_err());
        assert!(parse_htpasswd("u:{SHA}notbase64!").is_err());
    }

    #[test]
    fn headers_setter_applies_its_rules_from_values_and_context() {
        let rule = |h: &str, action, source| HeaderRule {
            header: HeaderName::from_bytes(h.as_bytes()).unwrap(),
            action,
            source,
        };
        let a = Authenticator::headers_setter(
            "headers_setter",
            vec![
                rule(
                    "x-scope-orgid",
                    HeaderAction::Upsert,
                    HeaderSource::Context {
                        key: "tenant".into(),
                        default: Some("anonymous".into()),
                    },
                ),
                rule(
                    "x-user",
                    HeaderAction::Insert,
                    HeaderSource::Context {
                        key: "auth.username".into(),
                        default: None,
                    },
                ),
                rule(
                    "x-static",
                    HeaderAction::Update,
                    HeaderSource::Value("v".into()),
                ),
                rule(
                    "x-drop",
                    HeaderAction::Delete,
                    HeaderSource::Value(String::new()),
                ),
            ],
        );
        assert!(!a.is_server());
        let mut meta = crate::data::RequestMeta {
            client_address: None,
            headers: vec![("tenant".into(), "acme".into())],
            wire_size: 0,
            auth: Some(Arc::from("alice")),
        };
        let mut h = headers("x-drop", "1");
        a.apply_client(&mut h, &meta);
        assert_eq!(h["x-scope-orgid"], "acme");
        assert_eq!(h["x-user"], "alice");
        assert!(
            !h.contains_key("x-static"),
            "update sets only an existing header"
        );
        assert!(!h.contains_key("x-drop"));
        meta.headers.clear();
        meta.auth = None;
        let mut h = headers("x-static", "old");
        h.insert("x-user", HeaderValue::from_static("kept"));
        a.apply_client(&mut h, &meta);
        assert_eq!(h["x-scope-orgid"], "anonymous");
        assert_eq!(h["x-user"], "kept", "insert keeps an existing header");
        assert_eq!(h["x-static"], "v");
    }

    #[test]
    fn client_headers_carry_the_credentials() {
        let a = Authenticator::bearer("b", "Bearer", "Authorization", vec!["tok".into()], None)
            .unwrap();
        let (k, v) = a.client_header().unwrap();
        assert_eq!(k, http::header::AUTHORIZATION);
        assert_eq!(v.to_str().unwrap(), "Bearer tok");
        assert!(v.is_sensitive());
        let b = Authenticator::basic("basicauth", "", Some(("u".into(), "p".into()))).unwrap();
        let (_, v) = b.client_header().unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic dTpw");
        assert!(format!("{b:?}").contains("basicauth") && !format!("{a:?}").contains("tok"));
    }
}
