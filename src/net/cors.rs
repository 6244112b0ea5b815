//! CORS for browser clients of the OTLP/HTTP receiver (the Collector's `cors` keys).
//!
//! Contract (as the Collector's `rs/cors` handler behaves):
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
//!   before authentication, with 204: for an allowed origin, method (`POST`) and headers it
//!   carries `Access-Control-Allow-Origin` (the origin), `Access-Control-Allow-Methods`,
//!   `Access-Control-Allow-Headers` (the requested ones) and `Access-Control-Max-Age` (when
//!   `max_age` is set); for anything else it carries no `Access-Control-*` header, so the browser
//!   blocks the request;
//! - an actual request from an allowed origin gets `Access-Control-Allow-Origin` on its answer;
//!   every answer to a request with an `Origin` varies on it (`Vary: Origin`);
//! - `allowed_origins` entries may hold one `*` wildcard (`https://*.example.com`,
//!   `http://*`); `"*"` alone allows every origin. Headers that are CORS-safelisted
//!   (`Accept`, `Accept-Language`, `Content-Language`, `Content-Type`) and `Origin`,
//!   `X-Requested-With` are always allowed; `allowed_headers` adds more (`"*"`: any).

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;

/// `cors` on an HTTP server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to send (`https://app.example.com`, `https://*.example.com`, `*`).
    pub allowed_origins: Vec<String>,
    /// Request headers allowed besides the always-allowed ones (`*`: any).
    pub allowed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer (0: not sent).
    pub max_age: u64,
}

const ALWAYS_ALLOWED: &[&str] = &[
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "origin",
    "x-requested-with",
];

impl CorsConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        for o in &self.allowed_origins {
            if o.matches('*').count() > 1 {
                diag.error(
                    format!("{path}.cors.allowed_origins"),
                    format!("{o:?}: at most one '*' wildcard per origin"),
                );
            }
        }
        if self.allowed_origins.is_empty() {
            diag.warn(
                format!("{path}.cors"),
                "allowed_origins is empty: no browser origin is allowed",
            );
        }
    }
}

/// A built CORS policy.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
    any_header: bool,
    headers: Vec<String>,
    max_age: u64,
}

fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(origin),
        Some((pre, post)) => {
            origin.len() >= pre.len() + post.len()
                && origin[..pre.len()].eq_ignore_ascii_case(pre)
                && origin.is_char_boundary(origin.len() - post.len())
                && origin[origin.len() - post.len()..].eq_ignore_ascii_case(post)
        }
    }
}

impl Cors {
    pub fn new(c: &CorsConfig) -> Cors {
        Cors {
            origins: c.allowed_origins.clone(),
            any_header: c.allowed_headers.iter().any(|h| h == "*"),
            headers: c
                .allowed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            max_age: c.max_age,
        }
    }

    /// The request's `Origin` when it is allowed.
    pub fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let v = headers.get(header::ORIGIN)?;
        let o = v.to_str().ok()?;
        self.origins
            .iter()
            .any(|p| origin_matches(p, o))
            .then_some(v)
    }

    /// Whether this request is a preflight to answer here.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    fn header_allowed(&self, h: &str) -> bool {
        let h = h.trim().to_ascii_lowercase();
        h.is_empty()
            || self.any_header
            || ALWAYS_ALLOWED.contains(&h.as_str())
            || self.headers.contains(&h)
    }

    /// The answer to a preflight.
    pub fn preflight<B: Default>(&self, headers: &HeaderMap) -> Response<B> {
        let mut r = Response::new(B::default());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let Some(origin) = self.allowed_origin(headers) else {
            return r;
        };
        let method_ok = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        let requested = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let headers_ok = requested.split(',').all(|x| self.header_allowed(x));
        if !method_ok || !headers_ok {
            return r;
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        if !requested.trim().is_empty() {
            if let Ok(v) = HeaderValue::from_str(&requested.to_ascii_lowercase()) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        if self.max_age > 0 {
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(self.max_age),
            );
        }
        r
    }

    /// Adds the CORS headers to the answer of an actual request.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if !request.contains_key(header::ORIGIN) {
            return;
        }
        response.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(o) = self.allowed_origin(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn wildcards_match_as_the_collector_documents() {
        assert!(origin_matches("http://*", "http://localhost:8080"));
        assert!(origin_matches(
            "https://*.example.com",
            "https://app.example.com"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "https://example.com.evil.org"
        ));
        assert!(!origin_matches("https://*", "http://x"));
        assert!(origin_matches("*", "null"));
        assert!(origin_matches("https://A.example", "https://a.example"));
    }

    #[test]
    fn preflight_allows_only_allowed_origins_methods_and_headers() {
        let c = Cors::new(&CorsConfig {
            allowed_origins: vec!["http://*".into(), "https://*".into()],
            allowed_headers: vec!["X-Custom".into()],
            max_age: 7200,
        });
        let ok: http::Response<String> = c.preflight(&req(&[
            ("origin", "http://localhost:3000"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-custom"),
        ]));
        assert_eq!(ok.status(), 204);
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(h["access-control-allow-headers"], "content-type, x-custom");
        assert_eq!(h["access-control-max-age"], "7200");

        for bad in [
            req(&[
                ("origin", "ftp://x"),
                ("access-control-request-method", "POST"),
            ]),
            req(&[
                ("origin", "http://x"),
                ("access-control-request-method", "DELETE"),
            ]),
            req(&[
                ("origin", "http://x"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-secret"),
            ]),
        ] {
            let r: http::Response<String> = c.preflight(&bad);
            assert_eq!(r.status(), 204);
            assert!(r
                .headers()
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")));
        }
    }

    #[test]
    fn actual_requests_get_the_origin_only_when_allowed() {
        let c = Cors::new(&CorsConfig {
            allowed_origins: vec!["https://app.example.com".into()],
            ..Default::default()
        });
        let mut out = HeaderMap::new();
        c.decorate(&req(&[("origin", "https://app.example.com")]), &mut out);
        assert_eq!(
            out["access-control-allow-origin"],
            "https://app.example.com"
        );
        let mut out = HeaderMap::new();
        c.decorate(&req(&[("origin", "https://evil.example.com")]), &mut out);
        assert!(!out.contains_key("access-control-allow-origin"));
        assert_eq!(out["vary"], "Origin");
        let mut out = HeaderMap::new();
        c.decorate(&HeaderMap::new(), &mut out);
        assert!(out.is_empty());
    }
}
