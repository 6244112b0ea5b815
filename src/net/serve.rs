//! The one accept loop every otelgw server runs on, with the edge policy applied once.
//!
//! Per listener ([`Edge`]): TLS (with reload and mutual TLS, [`super::tls`]), a cap on open
//! connections (excess connections are closed at accept and counted), authentication
//! ([`super::auth`]), CORS ([`super::cors`]) and response headers. Per connection
//! ([`Limits`]), enforced by a watchdog that sees the connection's bytes and requests:
//! - `read_header_timeout`: a connection that sends nothing, or starts an HTTP/1 request head
//!   and does not finish it, is closed that long after it started (slowloris); it also bounds
//!   the TLS handshake;
//! - `idle_timeout`: a connection with no request in flight for that long is closed gracefully
//!   (HTTP/1: closed; HTTP/2: `GOAWAY`);
//! - `max_connection_age` (+ `max_connection_age_grace`): past the age an HTTP/2 connection gets
//!   `GOAWAY` and an HTTP/1 connection answers its next request with `Connection: close`, so a
//!   long-lived client reconnects (and rebalances across replicas) without a failed request;
//!   after the grace whatever is left is closed;
//! - HTTP/2 keepalive pings, `max_concurrent_streams` and a header-list cap; HTTP/1
//!   keep-alive on or off.
//!
//! When `stop` fires the listener closes, idle connections close, HTTP/2 connections get
//! `GOAWAY`, requests in flight finish, and then the returned task ends.
//!
//! Every request reaches the component's service with a [`Peer`] extension: the client's
//! address and, when the listener authenticates, the identity the authenticator vouched for.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use super::auth::Authenticator;
use super::cors::Cors;
use super::tls::ServerTls;
use crate::telemetry::metrics::{names, Counter, Gauge, Registry};

/// Who sent a request: inserted into every request's extensions by [`serve`].
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The identity an authenticator vouched for (basic-auth user, or the bearer
    /// authenticator's id); `None` when the listener does not authenticate.
    pub identity: Option<Arc<str>>,
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most open connections on the listener (0: no cap).
    pub max_connections: usize,
    /// Time to finish the TLS handshake and each HTTP/1 request head.
    pub read_header_timeout: Duration,
    /// Close a connection with no request in flight for this long (none: never).
    pub idle_timeout: Option<Duration>,
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_grace: Duration,
    /// HTTP/2 keepalive ping interval and the time to wait for its answer.
    pub keepalive: Option<(Duration, Duration)>,
    pub max_concurrent_streams: Option<u32>,
    /// Largest HTTP/2 header list accepted.
    pub max_header_list_size: u32,
    /// HTTP/1 keep-alive.
    pub keep_alive: bool,
}

/// Defaults (documented in the README's security section).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_header_timeout: DEFAULT_READ_HEADER_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connection_age: None,
            max_connection_age_grace: Duration::from_secs(30),
            keepalive: None,
            max_concurrent_streams: None,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            keep_alive: true,
        }
    }
}

/// Authentication on a listener, and the counter for refusals.
#[derive(Clone)]
pub struct EdgeAuth {
    pub authenticator: Arc<Authenticator>,
    /// Counts refused requests (`otelgw_receiver_requests_total{outcome="unauthenticated"}` on
    /// receivers).
    pub refused: Counter,
}

/// A listener's edge policy.
pub struct Edge {
    /// Labels logs and the listener metrics (the component id).
    pub name: String,
    pub tls: Option<Arc<ServerTls>>,
    pub auth: Option<EdgeAuth>,
    pub cors: Option<Cors>,
    /// Added to every answer (`response_headers`).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    pub limits: Limits,
    metrics: EdgeMetrics,
}

#[derive(Clone)]
struct EdgeMetrics {
    open: Gauge,
    accepted: Counter,
    refused: Counter,
    tls_failed: Counter,
    header_timeout: Counter,
    idle: Counter,
    max_age: Counter,
}

impl EdgeMetrics {
    fn new(reg: Option<&Registry>, listener: &str) -> EdgeMetrics {
        let Some(reg) = reg else {
            return EdgeMetrics {
                open: Gauge::default(),
                accepted: Counter::default(),
                refused: Counter::default(),
                tls_failed: Counter::default(),
                header_timeout: Counter::default(),
                idle: Counter::default(),
                max_age: Counter::default(),
            };
        };
        let closed = |reason: &str| {
            reg.counter(
                names::LISTENER_CONNECTIONS_CLOSED,
                "Connections the gateway closed, by reason (limit: refused at accept).",
                &[("listener", listener), ("reason", reason)],
            )
        };
        EdgeMetrics {
            open: reg.gauge(
                names::LISTENER_CONNECTIONS,
                "Open connections.",
                &[("listener", listener)],
            ),
            accepted: reg.counter(
                names::LISTENER_CONNECTIONS_ACCEPTED,
                "Connections accepted (refused ones are counted as closed with reason limit).",
                &[("listener", listener)],
            ),
            refused: closed("limit"),
            tls_failed: closed("tls_handshake"),
            header_timeout: closed("header_timeout"),
            idle: closed("idle"),
            max_age: closed("max_age"),
        }
    }
}

impl Edge {
    /// A plaintext listener with default limits; metrics go to `registry` when given.
    pub fn new(name: impl Into<String>, registry: Option<&Registry>) -> Edge {
        let name = name.into();
        Edge {
            metrics: EdgeMetrics::new(registry, &name),
            name,
            tls: None,
            auth: None,
            cors: None,
            response_headers: Vec::new(),
            limits: Limits::default(),
        }
    }

    pub fn with_tls(mut self, tls: Option<Arc<ServerTls>>) -> Edge {
        self.tls = tls;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Edge {
        self.limits = limits;
        self
    }

    fn builder(&self) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1().keep_alive(self.limits.keep_alive);
        let mut h2 = b.http2();
        h2.timer(TokioTimer::new())
            .max_header_list_size(self.limits.max_header_list_size)
            .max_concurrent_streams(self.limits.max_concurrent_streams);
        if let Some((interval, timeout)) = self.limits.keepalive {
            h2.keep_alive_interval(interval).keep_alive_timeout(timeout);
        }
        b
    }
}

/// What the request path shares across a listener's connections.
struct Shared {
    name: String,
    auth: Option<EdgeAuth>,
    cors: Option<Cors>,
    response_headers: Vec<(HeaderName, HeaderValue)>,
    /// When each peer address was last logged as refused (logs at most once a minute each).
    refusal_log: Mutex<HashMap<IpAddr, Instant>>,
}

const LOG_EVERY: Duration = Duration::from_secs(60);

impl Shared {
    fn log_refusal(&self, peer: IpAddr) {
        let now = Instant::now();
        let Ok(mut m) = self.refusal_log.lock() else {
            return;
        };
        if m.get(&peer)
            .is_some_and(|t| now.duration_since(*t) < LOG_EVERY)
        {
            return;
        }
        if m.len() >= 10_000 {
            m.retain(|_, t| now.duration_since(*t) < LOG_EVERY);
        }
        m.insert(peer, now);
        tracing::warn!(listener = %self.name, peer = %peer, "request refused: not authenticated");
    }
}

/// One connection's activity, written by its IO and its requests, read by its watchdog.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `start` (+1; 0 = none) of the first byte read while no request was
    /// in flight: an HTTP/1 request head in progress.
    head_started: AtomicU64,
    /// Milliseconds since `start` when the connection last became idle.
    idle_since: AtomicU64,
    any_bytes: AtomicBool,
    h2: AtomicBool,
    /// HTTP/1 past its age: answer the next request with `Connection: close`.
    close_after_next: AtomicBool,
}

enum Verdict {
    Keep,
    /// Close now (nothing in flight).
    Drop(&'static str),
    /// Graceful close: finish what is in flight, refuse new requests.
    Drain(&'static str),
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            any_bytes: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            close_after_next: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn on_read(&self, first_bytes: &[u8]) {
        if !self.any_bytes.swap(true, Ordering::Relaxed) && first_bytes.starts_with(b"PRI * HTTP/2")
        {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(
                0,
                self.now_ms() + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn verdict(&self, l: &Limits) -> Verdict {
        let now = self.now_ms();
        let ms = |d: Duration| d.as_millis() as u64;
        let header = ms(l.read_header_timeout);
        if !self.any_bytes.load(Ordering::Relaxed) && now >= header {
            return Verdict::Drop("header_timeout");
        }
        let h2 = self.h2.load(Ordering::Relaxed);
        let idle = self.in_flight.load(Ordering::Relaxed) == 0;
        if idle && !h2 {
            let started = self.head_started.load(Ordering::Relaxed);
            if started > 0 && now.saturating_sub(started - 1) >= header {
                return Verdict::Drop("header_timeout");
            }
        }
        if let Some(age) = l.max_connection_age {
            let age = ms(age);
            if now >= age + ms(l.max_connection_age_grace) {
                return Verdict::Drain("max_age");
            }
            if now >= age {
                if h2 {
                    return Verdict::Drain("max_age");
                }
                self.close_after_next.store(true, Ordering::Relaxed);
            }
        }
        if let Some(t) = l.idle_timeout {
            if idle && now.saturating_sub(self.idle_since.load(Ordering::Relaxed)) >= ms(t) {
                return Verdict::Drain("idle");
            }
        }
        Verdict::Keep
    }
}

/// A request in flight on a connection; ends when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Relaxed);
        a.head_started.store(0, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's stream, reporting reads to its [`Activity`].
struct TrackedIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for TrackedIo<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..]);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The component's service behind the edge: CORS preflights, authentication, the [`Peer`]
/// extension, in-flight tracking and answer headers.
struct EdgeService<S> {
    inner: Arc<S>,
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    peer: SocketAddr,
}

type EdgeBody<B> = Either<B, Full<Bytes>>;

fn unauthenticated(grpc: bool, challenge: &'static str) -> Response<Full<Bytes>> {
    if grpc {
        // a trailers-only gRPC answer: UNAUTHENTICATED, no detail
        let mut r = Response::new(Full::new(Bytes::new()));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", HeaderValue::from_static("16"));
        h.insert("grpc-message", HeaderValue::from_static("unauthenticated"));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from_static(
        br#"{"code":16,"message":"unauthenticated"}"#,
    )));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

impl<S, B> hyper::service::Service<Request<Incoming>> for EdgeService<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<EdgeBody<B>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let flight = self.activity.begin();
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        let activity = self.activity.clone();
        let peer = self.peer;
        Box::pin(async move {
            let _flight = flight;
            let finish = |mut r: Response<EdgeBody<B>>, origin: Option<&http::HeaderMap>| {
                let h = r.headers_mut();
                if let (Some(cors), Some(req_headers)) = (&shared.cors, origin) {
                    cors.decorate(req_headers, h);
                }
                for (k, v) in &shared.response_headers {
                    h.insert(k.clone(), v.clone());
                }
                if activity.close_after_next.load(Ordering::Relaxed)
                    && !activity.h2.load(Ordering::Relaxed)
                {
                    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                r
            };
            let cors_headers = match &shared.cors {
                Some(cors) => {
                    if Cors::is_preflight(req.method(), req.headers()) {
                        let r: Response<Full<Bytes>> = cors.preflight(req.headers());
                        return Ok(finish(r.map(Either::Right), None));
                    }
                    req.headers().contains_key(header::ORIGIN).then(|| {
                        let mut h = http::HeaderMap::new();
                        if let Some(o) = req.headers().get(header::ORIGIN) {
                            h.insert(header::ORIGIN, o.clone());
                        }
                        h
                    })
                }
                None => None,
            };
            let mut identity = None;
            if let Some(auth) = &shared.auth {
                match auth.authenticator.check(req.headers()).await {
                    Some(id) => identity = Some(id),
                    None => {
                        auth.refused.inc();
                        shared.log_refusal(peer.ip());
                        let grpc = req
                            .headers()
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|c| c.starts_with("application/grpc"));
                        let r = unauthenticated(grpc, auth.authenticator.challenge());
                        return Ok(finish(r.map(Either::Right), cors_headers.as_ref()));
                    }
                }
            }
            req.extensions_mut().insert(Peer {
                addr: peer,
                identity,
            });
            let r = match inner.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(finish(r.map(Either::Left), cors_headers.as_ref()))
        })
    }
}

/// Serves HTTP (HTTP/1.1 and HTTP/2, over TLS when the edge has it) on `listener` until `stop`
/// fires, then finishes the requests in flight. `service` makes the service for one connection
/// from the peer's address.
pub fn serve<F, S, B>(
    edge: Edge,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
    service: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(SocketAddr) -> S + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        let builder = edge.builder();
        let limits = Arc::new(edge.limits.clone());
        let metrics = edge.metrics.clone();
        let tls = edge.tls.clone();
        let shared = Arc::new(Shared {
            name: edge.name.clone(),
            auth: edge.auth.clone(),
            cors: edge.cors.clone(),
            response_headers: edge.response_headers.clone(),
            refusal_log: Mutex::new(HashMap::new()),
        });
        let permits = (limits.max_connections > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(limits.max_connections)));
        let mut last_limit_log: Option<Instant> = None;
        // every connection task holds a sender: when all are gone, every connection ended
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of descriptors and the like: wait instead of spinning
                    tracing::warn!(listener = %edge.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = match &permits {
                None => None,
                Some(p) => match p.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        metrics.refused.inc();
                        if last_limit_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                            last_limit_log = Some(Instant::now());
                            tracing::warn!(
                                listener = %edge.name,
                                max_connections = limits.max_connections,
                                "connection refused: too many open connections"
                            );
                        }
                        drop(stream);
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let activity = Arc::new(Activity::new());
            let svc = EdgeService {
                inner: Arc::new(service(peer)),
                shared: shared.clone(),
                activity: activity.clone(),
                peer,
            };
            let conn = Connection {
                builder: builder.clone(),
                limits: limits.clone(),
                metrics: metrics.clone(),
                stop: stop.clone(),
                activity,
                name: edge.name.clone(),
            };
            let tls = tls.as_ref().map(|t| t.acceptor());
            let done = done_tx.clone();
            let open = metrics.open.clone();
            metrics.open.add(1);
            metrics.accepted.inc();
            tokio::spawn(async move {
                conn.run(stream, tls, svc).await;
                open.add(-1);
                drop(permit);
                drop(done);
            });
        }
        drop(listener);
        drop(done_tx);
        let _ = done_rx.recv().await;
    })
}

/// One accepted connection and what it needs to run.
struct Connection {
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    limits: Arc<Limits>,
    metrics: EdgeMetrics,
    stop: tokio::sync::watch::Receiver<bool>,
    activity: Arc<Activity>,
    name: String,
}

/// What a connection serves: an [`EdgeService`] hyper can drive (the bounds `serve` sets up).
trait ConnService<B>:
    hyper::service::Service<
        Request<Incoming>,
        Response = Response<EdgeBody<B>>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + 'static
{
}

impl<T, B> ConnService<B> for T where
    T: hyper::service::Service<
            Request<Incoming>,
            Response = Response<EdgeBody<B>>,
            Error = Infallible,
            Future: Send + 'static,
        > + Send
        + 'static
{
}

impl Connection {
    /// Finishes TLS (within `read_header_timeout`) and serves the connection until it ends.
    async fn run<S, B>(
        self,
        stream: tokio::net::TcpStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
        svc: S,
    ) where
        S: ConnService<B>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(acceptor) = tls else {
            let activity = self.activity.clone();
            return self
                .drive(
                    TrackedIo {
                        inner: stream,
                        activity,
                    },
                    svc,
                )
                .await;
        };
        // a client that stalls its handshake is cut off, not kept forever
        let handshake =
            tokio::time::timeout(self.limits.read_header_timeout, acceptor.accept(stream)).await;
        match handshake {
            Ok(Ok(inner)) => {
                let activity = self.activity.clone();
                self.drive(TrackedIo { inner, activity }, svc).await;
            }
            failed => {
                self.metrics.tls_failed.inc();
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::debug!(listener = %self.name, error = %why, "tls handshake failed");
            }
        }
    }

    async fn drive<I, S, B>(mut self, io: TrackedIo<I>, svc: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: ConnService<B>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let conn = self
            .builder
            .serve_connection(TokioIo::new(io), svc)
            .into_owned();
        tokio::pin!(conn);
        let l = &self.limits;
        let shortest = [
            Some(l.read_header_timeout),
            l.idle_timeout,
            l.max_connection_age,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(1));
        let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut draining = false;
        let mut hard_stop: Option<Instant> = None;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(listener = %self.name, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                _ = tokio::time::sleep(tick) => {
                    if hard_stop.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    match self.activity.verdict(l) {
                        Verdict::Keep => {}
                        Verdict::Drop(reason) => {
                            self.metrics.header_timeout.inc();
                            tracing::debug!(listener = %self.name, reason, "connection closed");
                            break;
                        }
                        Verdict::Drain(reason) => {
                            if !draining {
                                if reason == "idle" {
                                    self.metrics.idle.inc();
                                } else {
                                    self.metrics.max_age.inc();
                                }
                                conn.as_mut().graceful_shutdown();
                                draining = true;
                                hard_stop = Some(Instant::now() + l.max_connection_age_grace);
                            }
                        }
                    }
                }
            }
        }
    }
}
