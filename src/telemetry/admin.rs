//! The admin listener (`service.telemetry.metrics.address`, default `127.0.0.1:8888`):
//! `/metrics` (self-metrics, Prometheus text 0.0.4), `/healthz` (live), `/readyz` (pipelines
//! running: 200, else 503), `/debug/cardinality?limit=N` (series accounting of every
//! cardinality tracker as JSON, see [`crate::cardinality::report`]). The `health_check` extension serves the same health routes, plus its
//! configured path, on its own endpoint.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;

use super::metrics::Registry;
use super::Health;

/// What one admin-style listener serves.
#[derive(Clone)]
pub struct Routes {
    /// Serve `/metrics` from this registry.
    pub registry: Option<Arc<Registry>>,
    /// Serve `/debug/cardinality` from these trackers (the app's board).
    pub cardinality: Option<Arc<crate::cardinality::report::Board>>,
    pub health: Arc<Health>,
    /// An extra liveness path (the health_check extension's `path`).
    pub live_path: Option<String>,
}

fn text(status: StatusCode, ct: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

fn route(req: &Request<hyper::body::Incoming>, routes: &Routes) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match path {
        "/metrics" if routes.registry.is_some() => {
            let body = routes
                .registry
                .as_ref()
                .map(|r| r.render())
                .unwrap_or_default();
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        "/debug/cardinality" if routes.registry.is_some() => {
            let limit = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("limit="))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(10)
                .clamp(1, 10_000);
            let body = routes
                .cardinality
                .as_ref()
                .map(|b| b.render(limit).to_string())
                .unwrap_or_default();
            text(StatusCode::OK, "application/json", body)
        }
        "/readyz" => {
            if routes.health.ready() {
                text(StatusCode::OK, "application/json", r#"{"status":"ready"}"#)
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"status":"not ready"}"#,
                )
            }
        }
        "/healthz" => text(
            StatusCode::OK,
            "application/json",
            r#"{"status":"Server available"}"#,
        ),
        p if Some(p) == routes.live_path.as_deref() || p == "/" => {
            if routes.health.ready() {
                text(
                    StatusCode::OK,
                    "application/json",
                    r#"{"status":"Server available"}"#,
                )
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"status":"Server not available"}"#,
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Serves `routes` on `listener`, behind `edge` (TLS, limits), until `stop` fires.
pub fn serve(
    edge: crate::net::Edge,
    listener: TcpListener,
    routes: Routes,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::net::serve(edge, listener, stop, move |_| {
        let routes = routes.clone();
        hyper::service::service_fn(move |req| {
            let r = route(&req, &routes);
            async move { Ok::<_, Infallible>(r) }
        })
    })
}

/// The address to probe for an admin listener bound to `listen`: a wildcard host (`0.0.0.0`,
/// `[::]`, empty) is probed on loopback.
pub fn probe_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    }
}

/// `otelgw healthcheck`: one plain HTTP/1.1 GET of `url` (`http://host:port/path`), answered
/// 200 within `timeout`. Blocking and runtime-free: it runs as a container's health command.
pub fn probe(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// urls are probed")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // the status line is all that is read (at most 64 bytes)
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match s.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if head[..n].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(format!(
            "answered {:?}",
            line.lines().next().unwrap_or("nothing")
        ))
    }
}
