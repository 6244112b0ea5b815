//! A null OTLP/gRPC sink: accepts `Export` calls for all three signals over h2c, counts items by
//! walking the wire format ([`super::wire`]), answers an empty success. gzip-compressed messages
//! are inflated first (set the gateway's exporter to `compression: none` for the cheapest sink).

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

async fn handle(
    req: http::Request<hyper::body::Incoming>,
    counts: Arc<Counts>,
) -> http::Response<RespBody> {
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
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
