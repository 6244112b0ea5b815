//! What every detector shares: the context it runs in ([`Cx`]: environment variables, files,
//! one HTTP client), why a detector found nothing ([`Miss`]), the attribute builder that honours
//! the `resource_attributes` switches ([`Attrs`]), and HTTP helpers that tell an endpoint that is
//! not there (absent) from one that answers wrongly (failed).

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use serde::de::DeserializeOwned;

use super::{enabled, AttrDefault, Flags};

/// The longest a metadata endpoint may take to accept a connection: one that is there answers
/// in milliseconds (it is on the host or the next hop).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a detector added nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The platform is not there: no endpoint, no socket, not on Kubernetes (a warning).
    Absent(String),
    /// The platform is there and detection failed: a refused request, a malformed answer or
    /// value (an error).
    Failed(String),
}

/// Reads one environment variable.
pub type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where detectors look: the environment, the filesystem (under `root`), and one HTTP client
/// that uses no proxy and gives up on a connection after a second and on a request after the
/// processor's `timeout`.
pub struct Cx {
    env: Box<EnvFn>,
    root: PathBuf,
    pub(crate) client: reqwest::Client,
}

impl Cx {
    /// This process's environment and filesystem.
    pub fn from_process(timeout: Duration) -> Result<Cx, String> {
        Cx::new(
            Box::new(|k: &str| std::env::var(k).ok()),
            PathBuf::from("/"),
            timeout,
        )
    }

    /// A context over the given environment and filesystem root (tests use a map and a temp
    /// dir).
    pub fn new(env: Box<EnvFn>, root: PathBuf, timeout: Duration) -> Result<Cx, String> {
        // metadata endpoints are plain HTTP: no proxy, and no root certificates to load
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .timeout(timeout)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Cx { env, root, client })
    }

    /// An environment variable, trimmed; unset and empty are the same.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The path of an absolute system path (`/etc/hosts`) under the root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A file's contents, trimmed; missing, unreadable and empty are the same.
    pub fn file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// Collects a detector's attributes, keeping only those switched on.
pub struct Attrs<'a> {
    flags: &'a Flags,
    defaults: &'static [AttrDefault],
    out: Vec<KeyValue>,
}

impl<'a> Attrs<'a> {
    pub fn new(flags: &'a Flags, defaults: &'static [AttrDefault]) -> Attrs<'a> {
        Attrs {
            flags,
            defaults,
            out: Vec::new(),
        }
    }

    /// Whether `name` is switched on.
    pub fn on(&self, name: &str) -> bool {
        enabled(self.flags, self.defaults, name)
    }

    /// Sets a string attribute (when on).
    pub fn str(&mut self, name: &str, value: impl Into<String>) {
        let v = any_value::Value::StringValue(value.into());
        self.put(name, v);
    }

    /// Sets a list-of-strings attribute (when on).
    pub fn list(&mut self, name: &str, values: Vec<String>) {
        let values = values
            .into_iter()
            .map(|v| AnyValue {
                value: Some(any_value::Value::StringValue(v)),
            })
            .collect();
        self.put(name, any_value::Value::ArrayValue(ArrayValue { values }));
    }

    fn put(&mut self, name: &str, value: any_value::Value) {
        if !self.on(name) {
            return;
        }
        let value = Some(AnyValue { value: Some(value) });
        match self.out.iter_mut().find(|kv| kv.key == name) {
            Some(kv) => kv.value = value,
            None => self.out.push(KeyValue {
                key: name.to_string(),
                value,
                ..Default::default()
            }),
        }
    }

    pub fn finish(self) -> Vec<KeyValue> {
        self.out
    }
}

/// An error with its causes (reqwest's own message names only the URL).
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Sends `req`. No answer (refused, unknown name, no connection or answer in time) is
/// [`Miss::Absent`]; an answer other than 2xx is [`Miss::Failed`].
pub async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, Miss> {
    let resp = req.send().await.map_err(|e| {
        if e.is_connect() || e.is_timeout() {
            Miss::Absent(format!("{what} is not reachable ({})", describe(&e)))
        } else {
            Miss::Failed(format!("{what}: {}", describe(&e)))
        }
    })?;
    if !resp.status().is_success() {
        return Err(Miss::Failed(format!(
            "{what} answered {} ({})",
            resp.status(),
            resp.url()
        )));
    }
    Ok(resp)
}

/// The body of a 2xx answer to `req`, as text.
pub async fn text(req: reqwest::RequestBuilder, what: &str) -> Result<String, Miss> {
    let resp = send(req, what).await?;
    read_text(resp, what).await
}

/// The body of an answer, as text.
pub async fn read_text(resp: reqwest::Response, what: &str) -> Result<String, Miss> {
    resp.text()
        .await
        .map_err(|e| Miss::Failed(format!("{what}: cannot read the answer ({})", describe(&e))))
}

/// The body of a 2xx answer to `req`, as JSON.
pub async fn json<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<T, Miss> {
    let body = text(req, what).await?;
    serde_json::from_str(&body)
        .map_err(|e| Miss::Failed(format!("{what}: the answer is not the expected JSON ({e})")))
}
