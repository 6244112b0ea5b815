//! A scriptable fake HTTP backend for push exporters: a hyper server (HTTP/1.1 and h2c) on
//! 127.0.0.1 that records every request (method, path, headers, body, arrival time) and answers
//! from a [`Script`]: always the same reply (recording: 200; refusing: 429 with `Retry-After`,
//! 400, …), a sequence of replies and then a default (flaky), optionally after a delay (slow,
//! cut short by [`Backend::release`]), or from a handler closure (the Loki stand-in).
//!
//! Bounded: a delay ends by itself, and the server stops when the [`Backend`] is dropped (or
//! when the test's runtime ends).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One request as the backend received it (body complete).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: http::Method,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// When the body had arrived (before any scripted delay).
    pub at: Instant,
}

impl Recorded {
    /// A header's value as text (`None` when absent; panics when it is not visible ASCII).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// One answer: status, headers, body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// `status` with no headers and an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: Bytes::new(),
        }
    }

    /// An OTLP/HTTP success: 200, `application/x-protobuf`, an empty body (which is what a
    /// default `Export*ServiceResponse` encodes to).
    pub fn otlp_ok() -> Reply {
        Reply::status(200).protobuf()
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn protobuf(self) -> Reply {
        self.header("content-type", "application/x-protobuf")
    }

    pub fn retry_after(self, seconds: u64) -> Reply {
        self.header("retry-after", seconds)
    }

    fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut r = http::Response::new(Full::new(self.body));
        *r.status_mut() = http::StatusCode::from_u16(self.status).unwrap();
        for (name, value) in self.headers {
            r.headers_mut().append(name, value.parse().unwrap());
        }
        r
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// How the backend answers.
pub struct Script {
    /// Answered first, one per request, in order.
    first: VecDeque<Reply>,
    /// Answered once `first` is used up (unless there is a handler).
    then: Reply,
    handler: Option<Handler>,
    /// Held this long before answering (after recording), unless released.
    delay: Duration,
}

impl Script {
    /// Records and answers `reply` to every request: [`Reply::otlp_ok`] for a recording
    /// backend, or a refusal (`Reply::status(429).retry_after(1)`, `Reply::status(400)`).
    pub fn always(reply: Reply) -> Script {
        Script::flaky([], reply)
    }

    /// Always [`Reply::otlp_ok`].
    pub fn recording() -> Script {
        Script::always(Reply::otlp_ok())
    }

    /// `first`, one reply per request in order, then `then` for every later request.
    pub fn flaky(first: impl IntoIterator<Item = Reply>, then: Reply) -> Script {
        Script {
            first: first.into_iter().collect(),
            then,
            handler: None,
            delay: Duration::ZERO,
        }
    }

    /// Every request is answered by `f`, after it was recorded.
    pub fn handler(f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Script {
        Script {
            handler: Some(Arc::new(f)),
            ..Script::recording()
        }
    }

    /// Holds every answer for `delay` (a slow backend; a long delay is a stuck one) until
    /// [`Backend::release`] is called.
    pub fn slow(mut self, delay: Duration) -> Script {
        self.delay = delay;
        self
    }
}

struct State {
    script: Mutex<Script>,
    requests: Mutex<Vec<Recorded>>,
    /// True once released: delays end.
    released: tokio::sync::watch::Sender<bool>,
}

impl State {
    async fn answer(&self, req: http::Request<hyper::body::Incoming>) -> Option<Reply> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        let recorded = Recorded {
            method: parts.method,
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body,
            at: Instant::now(),
        };
        self.requests.lock().unwrap().push(recorded.clone());
        let delay = self.script.lock().unwrap().delay;
        if !delay.is_zero() {
            let mut released = self.released.subscribe();
            let _ = tokio::time::timeout(delay, released.wait_for(|r| *r)).await;
        }
        let handler = {
            let mut script = self.script.lock().unwrap();
            if let Some(reply) = script.first.pop_front() {
                return Some(reply);
            }
            match &script.handler {
                Some(handler) => handler.clone(),
                None => return Some(script.then.clone()),
            }
        };
        // outside the lock: requests on other connections are answered meanwhile
        Some(handler(&recorded))
    }
}

/// A running fake backend; stops accepting when dropped.
pub struct Backend {
    pub port: u16,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Backend {
    /// Starts on a free port.
    pub async fn start(script: Script) -> Backend {
        Backend::start_on(0, script).await
    }

    /// Starts on 127.0.0.1:`port` (0: any free port).
    pub async fn start_on(port: u16, script: Script) -> Backend {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            script: Mutex::new(script),
            requests: Mutex::default(),
            released: tokio::sync::watch::Sender::new(false),
        });
        let accept = tokio::spawn(serve(listener, state.clone()));
        Backend {
            port,
            state,
            accept,
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Ends the delay of a [`Script::slow`] backend: held requests are answered now, later ones
    /// at once.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            // out of file descriptors or the like: try again shortly
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    match state.answer(req).await {
                        Some(reply) => Ok(reply.into_response()),
                        // the client went away mid-body: drop the connection
                        None => Err("request body not received"),
                    }
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}
