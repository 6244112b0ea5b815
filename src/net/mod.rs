//! The edge: every listener otelgw opens goes through here — the OTLP/gRPC and OTLP/HTTP
//! receivers, the admin listener, the `health_check` extension and the `prometheus` exporter's
//! endpoint. Each feature exists once, for all of them:
//!
//! - [`bind`]: a configured `host:port` → a listening socket, with errors that name the address;
//!   [`check_endpoint`] / [`literal_addr`]: the same address checked at validation, without
//!   resolving names;
//! - [`serve`] ([`serve.rs`](serve)): the one hyper accept loop (HTTP/1.1, h2c, HTTP/2 over
//!   TLS) with the listener's [`Edge`] policy — connection cap, header/idle/age timeouts,
//!   HTTP/2 keepalive, authentication, CORS — and a graceful stop;
//! - [`tls`]: server TLS with mutual TLS and certificate reload;
//! - [`auth`]: the `bearertokenauth` / `basicauth` authenticators, server and client side;
//! - [`cors`]: browser preflights for OTLP/HTTP.

pub mod auth;
pub mod cors;
mod serve;
pub mod tls;

pub use serve::{
    serve, Edge, EdgeAuth, Limits, Peer, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_HEADER_TIMEOUT,
};

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use tokio::net::TcpListener;

use crate::component::BuildError;

/// The error and its causes, outermost first (`error sending request for url (…): client
/// error (Connect): tcp connect error: Connection refused (os error 111)`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// Resolves `host:port` to a socket address for clash checks (`localhost` → 127.0.0.1).
pub fn parse_listen_addr(endpoint: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = endpoint.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid listen address {endpoint:?}: expected host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid listen address {endpoint:?}: bad port {port:?}"))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port));
    }
    if host == "localhost" {
        return Ok(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("invalid listen address {endpoint:?}: cannot resolve host {host:?}"))
}

/// Checks a listen endpoint's form (`host:port`, `[v6]:port`, `:port`) without resolving the
/// host: a name that does not resolve here (a compose service name) is valid config, and
/// resolution failures belong to `run`.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let bad = |why: String| format!("invalid listen address {endpoint:?}: {why}");
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port".into()))?;
    port.parse::<u16>()
        .map_err(|_| bad(format!("bad port {port:?}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad(format!("{host:?} is not a host name or address")));
    }
    Ok(())
}

/// The address an endpoint listens on when that is known without resolving a name: an IP
/// literal, `localhost` (127.0.0.1) or an empty host (all interfaces). Used to find listener
/// clashes at validation.
pub fn literal_addr(endpoint: &str) -> Option<SocketAddr> {
    if let Ok(a) = endpoint.parse::<SocketAddr>() {
        return Some(a);
    }
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = match host {
        "" | "0.0.0.0" => IpAddr::from([0, 0, 0, 0]),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// Binds a listener on a configured endpoint. Must run inside the tokio runtime.
pub fn bind(endpoint: &str) -> Result<TcpListener, BuildError> {
    let err = |reason: String| BuildError::Listen {
        address: endpoint.to_string(),
        reason,
    };
    let addr = parse_listen_addr(endpoint).map_err(err)?;
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| err(e.to_string()))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| err(e.to_string()))?;
    TcpListener::from_std(std_listener).map_err(|e| err(e.to_string()))
}
