//! In-process fake metadata servers on 127.0.0.1 (or a unix socket), each answering with a
//! handler that sees the request (method, path and query, headers) and records it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};

use super::super::Cx;

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running fake; stops when dropped.
pub struct Fake {
    /// `http://127.0.0.1:<port>` (empty for a unix socket).
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Serves HTTP/1.1 on a free loopback port.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen, handler) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(handler) as Handler,
        );
        let (s, h) = (seen.clone(), handler);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serve(TokioIo::new(stream), s.clone(), h.clone());
            }
        });
        Fake { base, seen, task }
    }

    /// Serves HTTP/1.1 on a unix socket at `path`.
    pub async fn start_unix(
        path: &Path,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let (seen, handler) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(handler) as Handler,
        );
        let (s, h) = (seen.clone(), handler);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serve(TokioIo::new(stream), s.clone(), h.clone());
            }
        });
        Fake {
            base: String::new(),
            seen,
            task,
        }
    }

    /// Accepts connections and never answers.
    pub async fn silent() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Fake {
            base,
            seen: Arc::default(),
            task,
        }
    }

    /// `host:port`.
    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve<I>(io: I, seen: Arc<Mutex<Vec<Seen>>>, handler: Handler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: hyper::Request<Incoming>| {
        let s = Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or_default().to_string(),
            headers: req.headers().clone(),
        };
        seen.lock().unwrap().push(s.clone());
        let reply = handler(&s);
        let mut resp = hyper::Response::builder().status(reply.status);
        for (k, v) in reply.headers {
            resp = resp.header(k, v);
        }
        let resp = resp.body(Full::new(Bytes::from(reply.body))).unwrap();
        async move { Ok::<_, Infallible>(resp) }
    });
    tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .await;
    });
}

/// A loopback address nothing listens on.
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A context over `env` and the filesystem under `root`, with `timeout`.
pub fn cx_in(env: &[(&str, &str)], root: &Path, timeout_ms: u64) -> Cx {
    let map: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Cx::new(
        Box::new(move |k: &str| map.get(k).cloned()),
        root.to_path_buf(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .unwrap()
}

/// A context over `env` and an empty filesystem, with a 2s timeout.
pub fn cx(env: &[(&str, &str)]) -> Cx {
    cx_in(env, Path::new("/nonexistent-otelgw-test-root"), 2_000)
}

/// Attributes as `key → value` (lists joined with `|`).
pub fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::ArrayValue(a)) => a
                    .values
                    .iter()
                    .map(|v| match &v.value {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join("|"),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// `[(k, v)]` as the map [`attrs`] gives.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
