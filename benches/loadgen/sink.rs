//! A null OTLP/gRPC sink: accepts `Export` calls for all three signals over h2c, counts items by
//! walking the wire format ([`super::wire`]), answers an empty success. gzip-compressed messages
//! are inflated first (set the gateway's exporter to `compression: none` for the cheapest sink).
//! It also takes Loki pushes (`POST /loki/api/v1/push`, snappy protobuf, HTTP/1.1 or h2c) and
//! counts their lines as log records, so a pipeline ending in the `loki` exporter is measured
//! end to end.

use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otelgw::data::Signal;

#[derive(Default)]
pub struct Counts {
    pub items: [AtomicU64; 3],
    pub requests: AtomicU64,
}

impl Counts {
    pub fn get(&self, s: Signal) -> u64 {
        self.items[idx(s)].load(Ordering::Relaxed)
    }
}

fn idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

fn signal_of(path: &str) -> Option<Signal> {
    Signal::ALL.into_iter().find(|s| s.grpc_path() == path)
}

type RespBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn grpc_response(status: u32) -> http::Response<RespBody> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from(status));
    let frames = if status == 0 {
        vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ]
    } else {
        vec![Ok(Frame::trailers(trailers))]
    };
    let mut r = http::Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    r
}

/// A Loki push: inflates the snappy body and counts its lines (204, as Loki answers).
async fn loki_push(
    req: http::Request<hyper::body::Incoming>,
    counts: &Counts,
) -> http::Response<RespBody> {
    let status = |code: u16| {
        let mut r = http::Response::new(StreamBody::new(futures_util::stream::iter(vec![])));
        *r.status_mut() = http::StatusCode::from_u16(code).unwrap_or_default();
        r
    };
    let Ok(body) = req.into_body().collect().await else {
        return status(400);
    };
    let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&body.to_bytes()) else {
        return status(400);
    };
    counts.items[idx(Signal::Logs)]
        .fetch_add(super::wire::count_loki_entries(&raw), Ordering::Relaxed);
    counts.requests.fetch_add(1, Ordering::Relaxed);
    status(204)
}

async fn handle(
    req: http::Request<hyper::body::Incoming>,
    counts: Arc<Counts>,
) -> http::Response<RespBody> {
    if req.uri().path() == "/loki/api/v1/push" {
        return loki_push(req, &counts).await;
    }
    let Some(signal) = signal_of(req.uri().path()) else {
        return grpc_response(12);
    };
    let gzip = req
        .headers()
        .get("grpc-encoding")
        .is_some_and(|v| v == "gzip");
    let Ok(body) = req.into_body().collect().await else {
        return grpc_response(13);
    };
    let mut buf = body.aggregate();
    let mut n = 0;
    while buf.remaining() >= 5 {
        let compressed = buf.get_u8() == 1;
        let len = buf.get_u32() as usize;
        if buf.remaining() < len {
            return grpc_response(13);
        }
        let msg = buf.copy_to_bytes(len);
        n += if compressed && gzip {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&msg[..])
                .read_to_end(&mut out)
                .is_err()
            {
                return grpc_response(13);
            }
            super::wire::count_items(signal, &out)
        } else {
            super::wire::count_items(signal, &msg)
        };
    }
    counts.items[idx(signal)].fetch_add(n, Ordering::Relaxed);
    counts.requests.fetch_add(1, Ordering::Relaxed);
    grpc_response(0)
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, counts: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let counts = counts.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let counts = counts.clone();
                async move { Ok::<_, Infallible>(handle(req, counts).await) }
            });
            // h2c for OTLP/gRPC, HTTP/1.1 for Loki pushes
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
