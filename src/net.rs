//! The edge toolkit: every listener otelgw opens goes through here — the OTLP/HTTP receiver,
//! the admin listener, the `health_check` extension and the `prometheus` exporter's endpoint
//! (the OTLP/gRPC receiver binds here and is served by tonic).
//!
//! - [`bind`]: a configured `host:port` → a listening socket, with errors that name the address.
//! - [`serve`]: the one hyper accept loop — HTTP/1.1 and h2c (or HTTP/2 over TLS when an
//!   acceptor is given), one task per connection, and a graceful stop: when `stop` fires the
//!   listener closes, idle connections close, and requests in flight finish before the returned
//!   task ends.
//!
//! Connection-level policy (TLS, authentication, connection caps, timeouts) is added here once,
//! for every listener.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::component::BuildError;

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

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP on `listener` until `stop` fires, then finishes the requests in flight.
/// `service` makes the service for one connection from the peer's address; `name` labels logs.
pub fn serve<F, S, B>(
    name: String,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    service: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(SocketAddr) -> S + Send + 'static,
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of descriptors and the like: wait instead of spinning
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let svc = service(peer);
            match &tls {
                None => {
                    let conn = graceful.watch(
                        builder
                            .serve_connection(TokioIo::new(stream), svc)
                            .into_owned(),
                    );
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Some(acceptor) => {
                    let (acceptor, builder) = (acceptor.clone(), builder.clone());
                    let graceful_conn = graceful.watcher();
                    let name = name.clone();
                    tokio::spawn(async move {
                        // a client that stalls its handshake is cut off, not kept forever
                        let stream = match tokio::time::timeout(
                            TLS_HANDSHAKE_TIMEOUT,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(listener = %name, error = %e, "tls handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(listener = %name, "tls handshake timed out");
                                return;
                            }
                        };
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), svc)
                            .into_owned();
                        if let Err(e) = graceful_conn.watch(conn).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(listener);
        graceful.shutdown().await;
    })
}
