//! `pprof`: CPU profiles of the running process in the pprof format (the Collector's
//! extension, default endpoint `localhost:1777`), so `go tool pprof` and every pprof reader
//! open them:
//!
//! - `/debug/pprof/profile?seconds=N` samples every thread's stack 99 times a second for `N`
//!   seconds (default 30, at most 60) with the `pprof` crate (`SIGPROF` timer, symbolised in
//!   process) and answers the gzipped `profile.proto`, as Go's endpoint does. One profile at a
//!   time: a second request while one runs gets 429.
//! - `/debug/pprof/` lists what is there.
//!
//! Go-specific keys (`block_profile_fraction`, `mutex_profile_fraction`) and `save_to_file` are
//! accepted with a warning; heap profiles are not available (the allocator, mimalloc, keeps no
//! sampled allocation sites): `/debug/pprof/heap` answers 501 saying so.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;

/// `extensions.pprof`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PprofConfig {
    /// Listen address. Default `127.0.0.1:1777` (the Collector: `localhost:1777`).
    pub endpoint: String,
    /// Go runtime settings: accepted, no effect (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_profile_fraction: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutex_profile_fraction: Option<i64>,
    /// The Collector writes a CPU profile of the whole run here: accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_to_file: Option<String>,
}

impl Default for PprofConfig {
    fn default() -> Self {
        PprofConfig {
            endpoint: "127.0.0.1:1777".into(),
            block_profile_fraction: None,
            mutex_profile_fraction: None,
            save_to_file: None,
        }
    }
}

impl PprofConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if let Err(e) = crate::net::check_endpoint(&self.endpoint) {
            diag.error(format!("{path}.endpoint"), e);
        }
        diag.warn_inert(
            path,
            &[
                (
                    "block_profile_fraction",
                    self.block_profile_fraction.is_some(),
                ),
                (
                    "mutex_profile_fraction",
                    self.mutex_profile_fraction.is_some(),
                ),
                ("save_to_file", self.save_to_file.is_some()),
            ],
        );
    }
}

/// The longest profile one request may ask for.
pub const MAX_SECONDS: u64 = 60;
const DEFAULT_SECONDS: u64 = 30;
const FREQUENCY: i32 = 99;

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `seconds=N` from a query string: default 30, 1..=60.
pub fn seconds(query: Option<&str>) -> Result<u64, String> {
    let Some(v) = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="))
    else {
        return Ok(DEFAULT_SECONDS);
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=MAX_SECONDS).contains(&n) => Ok(n),
        _ => Err(format!("seconds must be 1 to {MAX_SECONDS}, got {v:?}")),
    }
}

/// One CPU profile: gzipped pprof protobuf.
async fn profile(secs: u64) -> Result<Vec<u8>, String> {
    use pprof::protos::Message as _;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("cannot start the profiler: {e}"))?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("cannot build the report: {e}"))?;
    drop(guard);
    let profile = report
        .pprof()
        .map_err(|e| format!("cannot encode the profile: {e}"))?;
    let raw = profile.encode_to_vec();
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)
        .and_then(|_| z.finish())
        .map_err(|e| format!("gzip: {e}"))
}

/// The extension's routes; `busy` allows one profile at a time.
async fn route(
    path: String,
    query: Option<String>,
    busy: Arc<AtomicBool>,
) -> Response<Full<Bytes>> {
    match path.as_str() {
        "/debug/pprof" | "/debug/pprof/" => text(
            StatusCode::OK,
            "otelgw pprof\n\n/debug/pprof/profile?seconds=N  CPU profile (pprof protobuf, gzipped), N ≤ 60, default 30\n",
        ),
        "/debug/pprof/profile" => {
            let secs = match seconds(query.as_deref()) {
                Ok(s) => s,
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            };
            if busy.swap(true, Ordering::SeqCst) {
                return text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "a profile is already being taken; try again when it is done\n",
                );
            }
            let result = profile(secs).await;
            busy.store(false, Ordering::SeqCst);
            match result {
                Ok(body) => {
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    r.headers_mut().insert(
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment; filename=\"profile\""),
                    );
                    r
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pprof: profile failed");
                    text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
                }
            }
        }
        "/debug/pprof/heap" | "/debug/pprof/allocs" => text(
            StatusCode::NOT_IMPLEMENTED,
            "heap profiles are not available: the allocator (mimalloc) keeps no sampled allocation sites; see otelgw_memory_limiter_* and process metrics on /metrics\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; CPU profiles are at /debug/pprof/profile?seconds=N\n",
        ),
    }
}

/// Serves the extension until `stop`.
pub fn serve(
    edge: crate::net::Edge,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let busy = Arc::new(AtomicBool::new(false));
    crate::net::serve(edge, listener, stop, move |_| {
        let busy = busy.clone();
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let (path, query) = (
                req.uri().path().to_string(),
                req.uri().query().map(str::to_string),
            );
            let busy = busy.clone();
            async move { Ok::<_, Infallible>(route(path, query, busy).await) }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded() {
        assert_eq!(seconds(None), Ok(30));
        assert_eq!(seconds(Some("debug=1&seconds=5")), Ok(5));
        assert!(seconds(Some("seconds=0")).is_err());
        assert!(seconds(Some("seconds=61")).is_err());
        assert!(seconds(Some("seconds=x")).is_err());
    }

    #[test]
    fn go_keys_warn_and_a_bad_endpoint_is_an_error() {
        let c: PprofConfig = serde_norway::from_str(
            "endpoint: nope\nblock_profile_fraction: 3\nsave_to_file: /tmp/x\n",
        )
        .unwrap();
        let mut diag = Diagnostics::default();
        c.validate("extensions.pprof", &mut diag);
        assert_eq!(diag.errors.len(), 1);
        assert_eq!(diag.warnings.len(), 2);
    }
}
