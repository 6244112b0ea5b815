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
